"""Logout with an OpenID Provider: the back-channel logout token's claim checks and the
RP-initiated logout request.

* OpenID Connect Back-Channel Logout 1.0
  (https://openid.net/specs/openid-connect-backchannel-1_0.html): the OP POSTs a
  ``logout_token`` (a JWT signed like an ID token) naming the ``sid`` and/or ``sub``
  whose sessions end. §2.6 lists the checks, done here in that order (the signature
  by :meth:`~authbroker.providers.oidc.rp.OidcProvider.verify_logout_token` before):
  ``iss``/``aud``/``iat`` as for an ID token, ``sub`` or ``sid`` present, an ``events``
  object with the back-channel logout member, **no** ``nonce`` (so an ID token can
  never pass as a logout token), and a single-use ``jti`` (the replay cache is the
  caller's, in the store). §2.4 also requires ``exp``.
* OpenID Connect RP-Initiated Logout 1.0
  (https://openid.net/specs/openid-connect-rpinitiated-1_0.html) §2: the browser goes
  to the OP's ``end_session_endpoint`` with ``id_token_hint``, ``client_id``,
  ``post_logout_redirect_uri`` and ``state``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ...errors import InvalidInput
from .helpers import _PRINTABLE, DEFAULT_MAX_ID_TOKEN_AGE, DEFAULT_SKEW
from .id_token import check_issuer_audience, check_times

__all__ = ["BACKCHANNEL_LOGOUT_EVENT", "LOGOUT_TOKEN_TYPES", "LogoutRequest", "check_logout_claims"]

#: Back-Channel Logout 1.0 §2.4: the member of ``events`` that makes a logout token.
BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout"
#: §2.4 recommends ``typ: logout+jwt`` (RFC 8725 §3.11 explicit typing); a token with
#: another type (``at+jwt``, ``secevent+jwt``...) is some other JWT and is refused.
LOGOUT_TOKEN_TYPES = frozenset({"logout+jwt", "application/logout+jwt", "jwt"})


@dataclass(frozen=True, slots=True)
class LogoutRequest:
    """A verified logout token: who asked (``issuer``) and which sessions end."""

    issuer: str
    jti: str = field(repr=False)
    exp: float
    sub: str | None = field(default=None, repr=False)
    sid: str | None = field(default=None, repr=False)


def _optional_id(claims: Mapping[str, Any], name: str) -> str | None:
    value = claims.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 1 <= len(value) <= 255 or not _PRINTABLE.fullmatch(value):
        raise InvalidInput(f"logout token {name} is malformed", code=f"{name}_invalid")
    return value


def check_logout_claims(
    header: Mapping[str, Any],
    claims: Mapping[str, Any],
    *,
    issuer: str,
    client_id: str,
    now: float,
    skew: float = DEFAULT_SKEW,
    max_token_age: float = DEFAULT_MAX_ID_TOKEN_AGE,
) -> LogoutRequest:
    """Back-Channel Logout 1.0 §2.6 steps 3-6 on a token whose signature was verified.

    Raises :class:`InvalidInput` (or ``Expired``) with the failed check in ``code``;
    messages carry no claim values.
    """
    typ = header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower() not in LOGOUT_TOKEN_TYPES):
        raise InvalidInput("token is not a logout token", code="logout_token_typ")
    what = "logout token"
    check_issuer_audience(claims, issuer=issuer, client_id=client_id, what=what)
    check_times(claims, now=now, skew=skew, max_token_age=max_token_age, what=what)
    sub = _optional_id(claims, "sub")
    sid = _optional_id(claims, "sid")
    if sub is None and sid is None:
        raise InvalidInput("logout token names no sub or sid", code="logout_no_subject")
    events = claims.get("events")
    if not isinstance(events, Mapping) or not isinstance(
        events.get(BACKCHANNEL_LOGOUT_EVENT), Mapping
    ):
        raise InvalidInput("logout token has no back-channel logout event", code="logout_events")
    if "nonce" in claims:
        # §2.4: "A nonce Claim MUST NOT be present" (no ID token passes as one).
        raise InvalidInput("logout token carries a nonce", code="logout_nonce")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not 1 <= len(jti) <= 255:
        raise InvalidInput("logout token has no jti", code="logout_jti")
    return LogoutRequest(issuer=issuer, jti=jti, exp=float(claims["exp"]), sub=sub, sid=sid)
