"""Field-by-field request checks of the BankID RP API v6.0 simulator: every bad field
is ``invalidParameters`` (https://developers.bankid.com/api-references/errors)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from ....errors import InvalidInput
from ....identity import NationalId


class ApiError(Exception):
    def __init__(self, status: int, code: str, details: str = "") -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.details = details


def bad(details: str) -> ApiError:
    return ApiError(400, "invalidParameters", details)


#: Device information objects of auth/sign (RP API v6.0; field names and types as in
#: BankID's OpenAPI spec and ActiveLogin ``DeviceDataWeb``/``DeviceDataApp``): every
#: field a string; ``web.userAgent`` at most 256 characters (ActiveLogin
#: ``BankIdApiLimits``). Other length limits are not published; not enforced.
WEB_DEVICE_FIELDS = ("referringDomain", "userAgent", "deviceIdentifier")
APP_DEVICE_FIELDS = ("appIdentifier", "deviceOS", "deviceModelName", "deviceIdentifier")
MAX_USER_AGENT = 256
MAX_RETURN_URL = 512


def device_object(value: object, name: str, fields: tuple[str, ...]) -> None:
    if not isinstance(value, dict):
        raise bad(f"{name} must be an object")
    only(value, set(fields), name)
    for key in fields:
        if not isinstance(value.get(key), str):
            raise bad(f"{name}.{key} must be a string")


def b64decode(value: object, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or not 1 <= len(value) <= limit:
        raise bad(f"{what} must be base64 of 1-{limit} characters")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise bad(f"{what} is not base64") from None


def valid_pn(value: object, what: str) -> str:
    if not isinstance(value, str) or len(value) != 12 or not value.isdigit():
        raise bad(f"{what} must be 12 digits")
    try:
        NationalId.parse(value, "SE")
    except InvalidInput:
        raise bad(f"{what} is not a valid personal number") from None
    return value


def only(obj: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(obj) - allowed
    if unknown:
        raise bad(f"unknown field(s) in {where}")


def boolean(obj: Mapping[str, Any], key: str) -> None:
    if key in obj and not isinstance(obj[key], bool):
        raise bad(f"{key} must be a boolean")


def peer_cn(cert: Mapping[str, Any] | None) -> str | None:
    if not cert:
        return None
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return None
