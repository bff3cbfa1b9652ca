"""BankID (SE/NO) and FTN through a commercial OIDC eID broker.

Brokers such as Idura (formerly Criipto) pick the eID method from ``acr_values``
(``urn:grn:authn:se:bankid:same-device``, ``urn:grn:authn:no:bankid``...) and
return normalized claims (Idura's published acr values and claims, Idura FTN documentation): the
national identity number in ``ssn`` (SE), ``socialno`` (NO) or ``hetu`` (FI), or,
Signicat-style, ``nin`` with ``nin_issuing_country`` (§2.7).

The profile's ``[methods.<name>]`` tables list what may be requested:
``acr`` (sent as ``acr_values``), ``country`` and ``method`` (the Identity method).
The caller chooses with the begin parameter ``method``. PROF-04: the broker must
answer with exactly the acr that was requested (``acr_match = "exact"``), so a
user editing the URL cannot swap BankID for a weaker method.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ....errors import ConfigError, InvalidInput
from ....identity import Identity, NationalId
from ..id_token import AcrChoice, VerifiedClaims
from ..options import OidcOptions
from .bankid_no import parse_birthdate
from .ftn import satu_of

__all__ = ["NATIONAL_ID_CLAIMS", "choose_acr", "map_identity", "methods"]

NATIONAL_ID_CLAIMS: Mapping[str, str] = {"SE": "ssn", "NO": "socialno", "FI": "hetu"}


def _methods(opts: OidcOptions) -> dict[str, Mapping[str, Any]]:
    table = opts.raw.get("methods")
    if not isinstance(table, Mapping) or not table:
        raise ConfigError("must be a table of method tables", key="methods")
    out: dict[str, Mapping[str, Any]] = {}
    for name, spec in table.items():
        if (
            not isinstance(spec, Mapping)
            or not isinstance(spec.get("acr"), str)
            or spec.get("country") not in NATIONAL_ID_CLAIMS
            or not isinstance(spec.get("method", ""), str)
        ):
            raise ConfigError("needs acr, country (SE/NO/FI) and method", key=f"methods.{name}")
        if spec["acr"] not in opts.acr_loa:
            raise ConfigError("acr has no level in acr_loa", key=f"methods.{name}.acr")
        out[str(name)] = spec
    return out


def methods(opts: OidcOptions) -> list[str]:
    """Method names offered (validates the table at provider construction)."""
    return list(_methods(opts))


def choose_acr(opts: OidcOptions, params: Mapping[str, str]) -> AcrChoice:
    table = _methods(opts)
    name = params.get("method") or opts.raw.get("default_method") or next(iter(table))
    spec = table.get(str(name))
    if spec is None:
        raise InvalidInput("requested method is not offered", code="method_not_offered")
    acr = str(spec["acr"])
    return AcrChoice((acr,), opts.acr_loa[acr], method=str(name))


def map_identity(v: VerifiedClaims) -> Identity:
    table = _methods(v.options)
    spec = table.get(v.method or "")
    if spec is None:  # the flow record names the method; anything else is corrupt
        raise InvalidInput("flow has no broker method", code="method_missing")
    country = str(spec["country"])
    claimed_country = v.claim("country") or v.claim("nin_issuing_country")
    if claimed_country is not None and claimed_country.upper() != country:
        raise InvalidInput("broker returned a person of another country", code="country_mismatch")
    number = v.claim(NATIONAL_ID_CLAIMS[country]) or v.claim("nin")
    if not number:
        raise InvalidInput("broker response has no identity number", code="no_national_id")
    national_id = NationalId.parse(number, country, allow_synthetic=v.options.allow_synthetic_ids)
    scheme = v.claim("identityscheme") or v.claim("idp") or ""
    attributes = {"acr": v.acr or "", "broker_method": v.method or "", "scheme": scheme}
    if country == "FI":
        satu = satu_of(v)  # Idura: filled for Mobiilivarmenne, empty for banks
        if satu is not None:
            attributes["satu"] = satu
    return Identity(
        provider=v.provider,
        method=str(spec.get("method") or v.method),
        subject=v.sub,
        national_id=national_id,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=v.claim("given_name"),
        family_name=v.claim("family_name"),
        birthdate=parse_birthdate(v.claim("birthdate")),
        attributes=attributes,
        raw=v.raw,
    )
