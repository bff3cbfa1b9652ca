"""Verified results for the claim profiles and the ID-token claim checks (Core §3.1.3.7)."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from ...errors import (
    Expired,
    InsufficientLoa,
    InvalidInput,
)
from ...identity import Identity, Loa
from .helpers import (
    DEFAULT_MAX_ID_TOKEN_AGE,
    DEFAULT_SKEW,
    _is_number,
    claim_str,
    token_hash,
)
from .options import OidcOptions

__all__ = [
    "AcrChoice",
    "VerifiedClaims",
    "check_acr",
    "check_issuer_audience",
    "check_times",
    "check_token_hashes",
    "default_choose_acr",
    "validate_id_token_claims",
]


# --- verified results handed to the profile modules -----------------------------------


@dataclass(frozen=True, slots=True)
class AcrChoice:
    """The ``acr_values`` requested for one flow, their LoA floor and broker method."""

    values: tuple[str, ...]
    loa: Loa
    method: str | None = None


@dataclass(frozen=True, slots=True)
class VerifiedClaims:
    """Everything a profile needs to build an Identity; all of it already verified."""

    provider: str
    options: OidcOptions
    id_token: Mapping[str, Any] = field(repr=False)
    userinfo: Mapping[str, Any] | None = field(repr=False)
    acr: str | None
    loa: Loa
    method: str | None
    now: float
    #: The signed ID token as received (the inner JWS of an encrypted one): kept
    #: server-side for ``id_token_hint`` (RP-Initiated Logout 1.0 §2).
    id_token_jwt: str = field(default="", repr=False)

    @property
    def sub(self) -> str:
        return str(self.id_token["sub"])

    def claim(self, name: str, *, max_len: int = 256) -> str | None:
        """A string claim from the ID token, else from UserInfo."""
        value = claim_str(self.id_token, name, max_len=max_len)
        if value is None and self.userinfo is not None:
            value = claim_str(self.userinfo, name, max_len=max_len)
        return value

    @property
    def authenticated_at(self) -> datetime:
        ts = self.id_token.get("auth_time")
        if not _is_number(ts):
            ts = self.id_token.get("iat")
        return datetime.fromtimestamp(float(cast(float, ts)), UTC)

    @property
    def raw(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id_token": dict(self.id_token)}
        if self.id_token_jwt:
            data["id_token_jwt"] = self.id_token_jwt
        if self.userinfo is not None:
            data["userinfo"] = dict(self.userinfo)
        return data


def _generic_identity(v: VerifiedClaims) -> Identity:
    return Identity(
        provider=v.provider,
        method=v.method or "oidc",
        subject=v.sub,
        national_id=None,
        loa=v.loa,
        authenticated_at=v.authenticated_at,
        given_name=v.claim("given_name"),
        family_name=v.claim("family_name"),
        email=v.claim("email"),
        raw=v.raw,
    )


# --- ID token claim checks (Core §3.1.3.7) --------------------------------------------


def check_issuer_audience(
    claims: Mapping[str, Any], *, issuer: str, client_id: str, what: str = "ID token"
) -> None:
    """Core §3.1.3.7 items 2-5 (``iss``, ``aud``, ``azp``), shared with the logout token
    (Back-Channel Logout 1.0 §2.6 step 3: "in the same way ... as for ID Tokens")."""
    # Item 2: iss exactly equal, no normalisation. The issuer is public (the
    # discovery document), so a plain comparison: it also cannot fail on a string
    # that has no UTF-8 form (a lone surrogate, which JSON can spell).
    iss = claims.get("iss")
    if not isinstance(iss, str):
        raise InvalidInput(f"{what} has no issuer", code="iss_missing")
    if iss != issuer:
        raise InvalidInput(f"{what} issuer does not match", code="iss_mismatch")
    # Items 3-5: aud contains client_id; authbroker trusts no other audience.
    aud = claims.get("aud")
    if aud is None:
        raise InvalidInput(f"{what} has no audience", code="aud_missing")
    if aud != client_id:  # else one string naming this client: nothing more to check
        audiences = [aud] if isinstance(aud, str) else aud
        if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
            raise InvalidInput(f"{what} audience is malformed", code="aud_invalid")
        if client_id not in audiences:
            raise InvalidInput(f"{what} is not for this client", code="aud_mismatch")
        if any(a != client_id for a in audiences):
            raise InvalidInput(f"{what} names an untrusted audience", code="aud_untrusted")
    azp = claims.get("azp")
    if azp is not None and azp != client_id:
        raise InvalidInput(f"{what} azp is not this client", code="azp_mismatch")


def check_times(
    claims: Mapping[str, Any],
    *,
    now: float,
    skew: float = DEFAULT_SKEW,
    max_token_age: float = DEFAULT_MAX_ID_TOKEN_AGE,
    what: str = "ID token",
) -> None:
    """Core §3.1.3.7 items 9-10 and RFC 7519 §4.1.4-§4.1.5: ``exp``, ``iat``, ``nbf``
    (shared with the logout token, whose ``exp`` Back-Channel Logout 1.0 §2.4 requires)."""
    # Items 9-10 and RFC 7519 §4.1.5 (JOSE-11).
    exp, iat = claims.get("exp"), claims.get("iat")
    if exp is None:
        raise InvalidInput(f"{what} has no exp", code="exp_missing")
    if iat is None:
        raise InvalidInput(f"{what} has no iat", code="iat_missing")
    if not _is_number(exp) or not _is_number(iat):
        raise InvalidInput(f"{what} time claims are not numbers", code="bad_time_claim")
    # Numbers within ±2**53 (_is_number): int and float compare exactly, no conversion.
    if now >= exp + skew:
        raise Expired(f"{what} has expired", code="id_token_expired")
    if iat > now + skew:
        raise InvalidInput(f"{what} was issued in the future", code="iat_future")
    if now - iat > max_token_age + skew:
        raise Expired(f"{what} is too old", code="id_token_too_old")
    nbf = claims.get("nbf")
    if nbf is not None and (not _is_number(nbf) or nbf > now + skew):
        raise InvalidInput(f"{what} is not yet valid", code="nbf_future")


def validate_id_token_claims(
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    nonce: str,
    now: float,
    skew: float = DEFAULT_SKEW,
    max_token_age: float = DEFAULT_MAX_ID_TOKEN_AGE,
    max_age: int | None = None,
) -> None:
    """Items 2-5 and 9-11, 13 of Core §3.1.3.7 (signature and acr are checked elsewhere).

    Raises :class:`InvalidInput` (or :class:`Expired` for time) naming the check in
    ``code``; messages never contain claim values.
    """
    check_issuer_audience(claims, issuer=issuer, client_id=client_id)
    # Core §2: sub required, at most 255 ASCII characters (printable: 0x20-0x7e).
    sub = claims.get("sub")
    if (
        not isinstance(sub, str)
        or not 1 <= len(sub) <= 255
        or not (sub.isascii() and sub.isprintable())
    ):
        raise InvalidInput("ID token subject is missing or malformed", code="sub_invalid")
    check_times(claims, now=now, skew=skew, max_token_age=max_token_age)
    # Item 11: nonce always sent, so always required and compared exactly, in
    # constant time. Our nonce is ASCII (token_urlsafe): a claim that is not cannot
    # match, and is refused without encoding it (a lone surrogate has no UTF-8 form).
    got = claims.get("nonce")
    if not isinstance(got, str):
        raise InvalidInput("ID token has no nonce", code="nonce_missing")
    if not (got.isascii() and nonce.isascii() and hmac.compare_digest(got, nonce)):
        raise InvalidInput("ID token nonce does not match", code="nonce_mismatch")
    # Item 13: auth_time present and recent when max_age was requested.
    auth_time = claims.get("auth_time")
    if _is_number(auth_time):
        # An authentication "in the future" would pass any max_age and date the
        # Identity wrongly: beyond the skew it is refused like iat (items 10, 13).
        authenticated = float(cast(float, auth_time))
        if authenticated > now + skew:
            raise InvalidInput("ID token auth_time is in the future", code="auth_time_future")
        if max_age is not None and now - authenticated > max_age + skew:
            raise Expired("authentication is older than max_age", code="auth_time_too_old")
    elif max_age is not None:
        raise InvalidInput("ID token has no auth_time", code="auth_time_missing")


def check_token_hashes(
    alg: str,
    claims: Mapping[str, Any],
    *,
    access_token: str,
    code: str,
    at_hash_encoding: str = "base64url",
) -> None:
    """Core §3.1.3.8 / §3.3.2.11: ``at_hash`` and ``c_hash``, when present, match.

    A value that is not an ASCII string cannot match (and ``hmac.compare_digest``
    would raise ``TypeError`` on a non-ASCII one): refused with the mismatch code.
    """
    at_hash = claims.get("at_hash")
    if at_hash is not None:
        expected = token_hash(access_token, alg, encoding=at_hash_encoding)
        if not _ascii_equal(at_hash, expected):
            raise InvalidInput("ID token at_hash does not match", code="at_hash_mismatch")
    c_hash = claims.get("c_hash")
    if c_hash is not None and not _ascii_equal(c_hash, token_hash(code, alg)):
        raise InvalidInput("ID token c_hash does not match", code="c_hash_mismatch")


def _ascii_equal(value: Any, expected: str) -> bool:
    return isinstance(value, str) and value.isascii() and hmac.compare_digest(value, expected)


def check_acr(
    opts: OidcOptions, claims: Mapping[str, Any], data: Mapping[str, Any], default_loa: Loa
) -> tuple[str | None, Loa]:
    """Core §3.1.3.7 item 12, fail closed (PROF-03, PROF-04): the ``acr`` and its LoA.

    ``data`` is the flow's record (the requested values and their floor);
    ``default_loa`` is the provider's configured level, for flows without one.
    """
    acr = claims.get("acr")
    requested = [str(v) for v in data.get("acr") or ()]
    floor = Loa(int(data.get("loa", int(default_loa))))
    if acr is None:
        if opts.require_acr:
            raise InsufficientLoa("ID token has no acr", code="acr_missing")
        return None, floor
    if not isinstance(acr, str):
        raise InvalidInput("ID token acr is malformed", code="acr_invalid")
    loa = opts.acr_loa.get(acr)
    if loa is None:
        raise InsufficientLoa("ID token acr is not a known level", code="acr_unknown")
    if opts.acr_match == "exact" and requested and acr not in requested:
        raise InsufficientLoa("ID token acr is not the requested method", code="acr_mismatch")
    if loa < floor:
        raise InsufficientLoa(
            "authentication level is below the requested", code="acr_insufficient"
        )
    return acr, loa


def default_choose_acr(opts: OidcOptions, params: Mapping[str, str]) -> AcrChoice:
    """``acr`` begin parameter (one of ``acr_values_allowed``) or the profile default."""
    wanted = params.get("acr")
    if wanted is not None:
        if wanted not in opts.acr_values_allowed:
            raise InvalidInput("requested acr is not offered", code="acr_not_offered")
        values: tuple[str, ...] = (wanted,)
    else:
        values = opts.acr_values
    if not values:
        return AcrChoice((), Loa.LOW)
    return AcrChoice(values, min(opts.acr_loa[v] for v in values))
