"""Estonian TARA claim mapping for the generic OIDC RP (TARA TechnicalSpecification v1.21).

TARA puts the person in ``sub`` as a country prefix plus the national identifier
(``EE38001085718``; eIDAS identifiers of other countries up to 256 characters),
names and birth date in ``profile_attributes``, and the method in ``amr``
(``idcard``, ``mID``, ``smartid``, ``eIDAS``). ``acr`` is ``low`` /
``substantial`` / ``high``. Its ``at_hash`` uses standard base64 (legacy quirk),
which the profile selects with ``at_hash_encoding = "base64"``.

Fail closed (PROF-03): an Estonian code with a bad check digit, or an ``amr`` we do
not know, never becomes an Identity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....errors import InvalidInput
from ....identity import Identity, NationalId
from ..helpers import claim_str
from ..id_token import VerifiedClaims
from .bankid_no import parse_birthdate

__all__ = ["AMR_METHODS", "map_identity"]

AMR_METHODS: Mapping[str, str] = {
    "idcard": "idcard",
    "mID": "mobile-id",
    "smartid": "smartid",
    "eIDAS": "eidas",
}


def _method(amr: Any) -> str:
    values = [amr] if isinstance(amr, str) else amr
    if not isinstance(values, list) or not values:
        raise InvalidInput("TARA response has no amr", code="amr_missing")
    for value in values:
        if isinstance(value, str) and value in AMR_METHODS:
            return AMR_METHODS[value]
    raise InvalidInput("TARA response names an unknown method", code="amr_unknown")


def map_identity(v: VerifiedClaims) -> Identity:
    sub = v.sub
    national_id = None
    if len(sub) < 3 or not sub[:2].isascii() or not sub[:2].isalpha() or not sub[:2].isupper():
        raise InvalidInput("TARA subject has no country prefix", code="bad_claim")
    if sub[:2] == "EE":
        national_id = NationalId.parse(sub[2:], "EE")
    attrs = v.id_token.get("profile_attributes")
    if not isinstance(attrs, Mapping):
        attrs = v.userinfo or {}
    given = claim_str(attrs, "given_name")
    family = claim_str(attrs, "family_name")
    birthdate = parse_birthdate(claim_str(attrs, "date_of_birth"))
    return Identity(
        provider=v.provider,
        method=_method(v.id_token.get("amr")),
        subject=sub,
        national_id=national_id,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=given,
        family_name=family,
        birthdate=birthdate,
        email=v.claim("email"),
        phone=v.claim("phone_number"),
        attributes={"acr": v.acr or "", "country": sub[:2]},
        raw=v.raw,
    )
