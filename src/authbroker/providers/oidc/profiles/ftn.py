"""Finnish Trust Network (FTN) claim mapping for the generic OIDC RP.

FTN brokers (Telia Tunnistus, Idura, Signicat) follow Traficom recommendation
213/2023 S: signed request objects, ``private_key_jwt`` and encrypted ID tokens,
all switched on by ``providers/ftn.toml`` (PROF-01) and enforced in
:mod:`authbroker.providers.oidc`. This module only turns the verified claims into
an :class:`~authbroker.identity.Identity` (Telia integration guide v2.35, claim table;
our FTN claim mapping):

* personal identity code from ``urn:oid:1.2.246.21`` (Telia), ``hetu`` (Idura) or
  ``nin`` (Signicat's normalized claim, only with ``nin_issuing_country`` FI or absent;
  Signicat's FTN claim names are not confirmed by its own FTN page), checksum-validated
  into ``NationalId(FI)``; without it there is no identity;
* SATU (electronic identification number, Mobiilivarmenne / ID card) from
  ``urn:oid:1.2.246.22`` (Telia, the Suomi.fi/FTN attribute OID) or ``satu`` (Idura:
  empty for banks), into ``attributes["satu"]`` when present;
* names from ``urn:oid:1.2.246.575.1.14`` / ``urn:oid:2.5.4.4`` (or the OIDC names);
* ``amr`` tells bank from Mobiilivarmenne (Telia method ids ``mpki.*``) and ID card
  (``pki.hst.*``);
* LoA from ``acr`` (``http://ftn.ficora.fi/2017/loa2`` substantial, ``loa3`` high),
  already checked against the requested level by the RP.
"""

from __future__ import annotations

import re
from typing import Any

from ....errors import InvalidInput
from ....identity import Identity, NationalId
from ..id_token import VerifiedClaims

__all__ = ["HETU_CLAIMS", "SATU_CLAIMS", "map_identity", "method_from_amr", "satu_of"]

#: Claims that carry the HETU, in order of preference: Telia, Idura, Signicat.
HETU_CLAIMS = ("urn:oid:1.2.246.21", "hetu", "nin")
#: Claims that carry the SATU: Telia (attribute OID), Idura.
SATU_CLAIMS = ("urn:oid:1.2.246.22", "satu")
#: SATU: eight digits and a check character (DVV's electronic identification number).
_SATU = re.compile(r"[0-9]{8}[0-9A-Z]")
GIVEN_NAME_CLAIMS = ("urn:oid:1.2.246.575.1.14", "given_name")
FAMILY_NAME_CLAIMS = ("urn:oid:2.5.4.4", "family_name")


def method_from_amr(amr: Any) -> str:
    """Telia's amr is a method URI ending in the method id (Telia integration guide v2.35)."""
    values = amr if isinstance(amr, list) else [amr]
    for value in values:
        if not isinstance(value, str):
            continue
        tail = value.rsplit("/", 1)[-1].lower()
        if tail.startswith("mpki.") or "mobile-id" in tail:
            return "mobiilivarmenne"
        if tail.startswith("pki.hst"):
            return "idcard"
    return "bank"


def _first(v: VerifiedClaims, names: tuple[str, ...]) -> str | None:
    for name in names:
        value = v.claim(name)
        if value:
            return value
    return None


def satu_of(v: VerifiedClaims) -> str | None:
    """The SATU when the broker sent one (empty means none); malformed is refused."""
    satu = _first(v, SATU_CLAIMS)
    if satu is None:
        return None
    if _SATU.fullmatch(satu) is None:
        raise InvalidInput("SATU claim is malformed", code="bad_claim")
    return satu


def map_identity(v: VerifiedClaims) -> Identity:
    country = v.claim("nin_issuing_country")
    if country is not None and country.upper() != "FI":
        raise InvalidInput("FTN response names another country", code="country_mismatch")
    hetu = _first(v, HETU_CLAIMS)
    if hetu is None:
        raise InvalidInput("FTN response has no personal identity code", code="no_national_id")
    national_id = NationalId.parse(hetu, "FI")
    amr = v.id_token.get("amr")
    attributes = {"acr": v.acr or ""}
    satu = satu_of(v)
    if satu is not None:
        attributes["satu"] = satu
    if isinstance(amr, str | list):
        first = amr if isinstance(amr, str) else next((a for a in amr if isinstance(a, str)), "")
        attributes["amr"] = first[:256]
    return Identity(
        provider=v.provider,
        method=method_from_amr(amr),
        subject=v.sub,
        national_id=national_id,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=_first(v, GIVEN_NAME_CLAIMS),
        family_name=_first(v, FAMILY_NAME_CLAIMS),
        attributes=attributes,
        raw=v.raw,
    )
