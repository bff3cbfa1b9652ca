"""Norwegian BankID (OIDC) claim mapping for the generic OIDC RP.

Facts from BankID Norway's OIDC documentation (https://developer.bankid.no/): code
flow with PKCE S256 only; ``sub`` is
unstable, the stable BankID person id is ``bankid_altsub``; the national identity
number (``nnin``) comes as ``nnin_altsub`` in the ID token (scope ``nnin_altsub``)
or ``nnin`` from UserInfo (scope ``nnin``); UserInfo is a signed JWT. ``acr`` is
``urn:bankid:bid;LOA=4`` (high) or ``urn:bankid:bis;LOA=3`` (biometric,
substantial), mapped to a LoA by the profile's ``acr_loa`` table.
"""

from __future__ import annotations

from datetime import date

from ....errors import InvalidInput
from ....identity import Identity, NationalId
from ..id_token import VerifiedClaims

__all__ = ["map_identity", "parse_birthdate"]


def parse_birthdate(value: str | None) -> date | None:
    """OIDC ``birthdate`` (Core §5.1, ``YYYY-MM-DD``); anything else is refused."""
    if value is None:
        return None
    try:
        return date.fromisoformat(value) if len(value) == 10 else _bad_date()
    except ValueError:
        return _bad_date()


def _bad_date() -> date:
    raise InvalidInput("birthdate claim is malformed", code="bad_claim")


def map_identity(v: VerifiedClaims) -> Identity:
    nnin = v.claim("nnin_altsub") or v.claim("nnin")
    national_id = (
        NationalId.parse(nnin, "NO", allow_synthetic=v.options.allow_synthetic_ids)
        if nnin
        else None
    )
    altsub = v.claim("bankid_altsub")
    acr = v.acr or ""
    method = "bankid-biometric" if acr.startswith("urn:bankid:bis") else "bankid"
    birthdate = parse_birthdate(v.claim("birthdate"))
    if (
        national_id is not None
        and birthdate is not None
        and national_id.birthdate
        not in (
            None,
            birthdate,
        )
    ):
        raise InvalidInput("birthdate does not match the identity number", code="bad_claim")
    return Identity(
        provider=v.provider,
        method=method,
        # The stable BankID person id when granted; sub may change (§2.3).
        subject=altsub or v.sub,
        national_id=national_id,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=v.claim("given_name"),
        family_name=v.claim("family_name"),
        birthdate=birthdate,
        attributes={"acr": acr, "sub": v.sub},
        raw=v.raw,
    )
