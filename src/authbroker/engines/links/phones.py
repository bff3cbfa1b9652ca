"""The phone numbers a direct link may send its one-time codes to (OTP-06)."""

from __future__ import annotations

from collections.abc import Collection

import phonenumbers

from ...errors import InvalidInput

#: Codes go to mobiles only; a number that may be either passes (libphonenumber cannot
#: tell them apart in, e.g., the NANP).
_MOBILE_TYPES = frozenset(
    {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
)


def normalize_mobile(phone: str, default_region: str, allowed_regions: Collection[str]) -> str:
    """E.164 for a mobile number in an allowed region (InvalidInput otherwise)."""
    if not isinstance(phone, str) or len(phone) > 32:
        raise InvalidInput("phone number is not valid", code="bad_phone")
    try:
        number = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("phone number is not valid", code="bad_phone") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone number is not valid", code="bad_phone")
    if phonenumbers.number_type(number) not in _MOBILE_TYPES:
        raise InvalidInput("phone number is not a mobile number", code="phone_not_mobile")
    region = phonenumbers.region_code_for_number(number)
    if region not in allowed_regions:
        raise InvalidInput("phone number country is not allowed", code="phone_region")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
