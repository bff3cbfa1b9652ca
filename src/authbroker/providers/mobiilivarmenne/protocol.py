"""Mobiilivarmenne (FiCom MSS, ETSI TS 102 204) constants, MSISDN rules and helpers."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import phonenumbers

from ...errors import (
    InvalidInput,
)

# --- protocol constants (MID §3.2-3.4) --------------------------------------------------

MSS_FORMAT_PKCS7 = "http://uri.etsi.org/TS102204/v1.1.2#PKCS7"
SIGNATURE_PROFILES: Mapping[str, str] = {
    "authentication": "http://mss.ficom.fi/TS102206/v1.0.0/authentication-profile.xml",
    "signature": "http://mss.ficom.fi/TS102206/v1.0.0/signature-profile.xml",
    "consent": "http://mss.ficom.fi/TS102206/v1.0.0/consent-profile.xml",
}
_FICOM = "http://mss.ficom.fi/TS102204/v1.0.0#"
ADDITIONAL_SERVICE: Mapping[str, str] = {
    "event_id": _FICOM + "eventId",
    "no_spam": _FICOM + "noSpam",
    "user_lang": _FICOM + "userLang",
    "person_identity": _FICOM + "personIdentity",
}
PERSON_ID = "http://mss.ficom.fi/TS102204/v1.0.0/PersonID#"
_MESSAGING_MODES = ("asynchClientServer", "synch")
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]{0,31}")
_EVENT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I look-alikes
_NOSPAM = re.compile(r"[A-Za-z][A-Za-z0-9]{2,15}")
_STATUS_CODE = re.compile(r"(?:^|[^0-9])([0-9]{3,4})$")


# --- MSISDN ---------------------------------------------------------------------------


def normalize_msisdn(
    value: str, *, region: str = "FI", allowed_regions: frozenset[str] = frozenset({"FI"})
) -> str:
    """A phone number typed by the user as E.164 (``+358401234567``), or InvalidInput.

    FiCom requires international format with ``+`` (MID §3.2); numbers of other
    regions are refused unless configured, as Mobiilivarmenne is issued by Finnish
    operators.
    """
    if not isinstance(value, str) or not 3 <= len(value) <= 32:
        raise InvalidInput("phone number is not valid", code="msisdn")
    try:
        number = phonenumbers.parse(value, region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInput("phone number is not valid", code="msisdn") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidInput("phone number is not valid", code="msisdn")
    if phonenumbers.region_code_for_number(number) not in allowed_regions:
        raise InvalidInput("phone numbers of this country are not supported", code="msisdn")
    kind = phonenumbers.number_type(number)
    if kind not in (
        phonenumbers.PhoneNumberType.MOBILE,
        phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    ):
        raise InvalidInput("not a mobile phone number", code="msisdn")
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))


# --- helpers --------------------------------------------------------------------------


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"MSSP response: {what} missing", code="mid_response")
    return value


def _code(value: Any) -> int | None:
    """``"504"``, ``504``, ``"fi:_401"``, ``"env:Receiver"`` -> int or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 <= value < 100000 else None
    if isinstance(value, str) and len(value) <= 64:
        match = _STATUS_CODE.search(value)
        if match:
            return int(match.group(1))
    return None


def _instant(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


#: Every key a ``mobiilivarmenne`` provider table or profile may hold (checked at
