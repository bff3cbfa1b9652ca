"""Logout at the OpenID Provider simulator: the ``end_session_endpoint`` and the
back-channel logout tokens it sends (and misbehaving ones, for the RP's tests).

* RP-Initiated Logout 1.0 §2-§3
  (https://openid.net/specs/openid-connect-rpinitiated-1_0.html): ``id_token_hint``
  must be an ID token this OP issued to this client (signature, ``iss``, ``aud``; it
  may have expired), ``client_id`` must agree with it, and ``post_logout_redirect_uri``
  must be registered exactly (§3: otherwise the OP must not redirect). The browser
  goes back with the ``state``; the OP's session (``sid``) ends.
* Back-Channel Logout 1.0 §2.4-§2.5
  (https://openid.net/specs/openid-connect-backchannel-1_0.html): a logout token is a
  JWT (``typ: logout+jwt``) with ``iss``, ``aud``, ``iat``, ``exp``, ``jti``, an
  ``events`` object holding the back-channel logout member, ``sid`` and/or ``sub`` and
  no ``nonce``, POSTed form-encoded as ``logout_token`` to the RP's
  ``backchannel_logout_uri``.
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx

from ....crypto.jose import KeySet, sign_jwt, verify_jwt
from ....errors import AuthBrokerError
from ....providers.oidc import BACKCHANNEL_LOGOUT_EVENT
from ..server import SimRequest, SimResponse
from .consent import OpFrontChannel
from .core import _Refused
from .keys import b64

#: Mutations of one back-channel logout token (``logout_token(mutations=...)``).
LOGOUT_MISBEHAVIOURS: Mapping[str, str] = {
    "logout-nonce": "the token carries a nonce (forbidden, §2.4)",
    "logout-events-wrong": "events holds another event URI, not the back-channel one",
    "logout-events-missing": "no events claim",
    "logout-sig-xor": "signature bytes XOR 0x5A",
    "logout-no-subject": "neither sub nor sid",
    "logout-aud-wrong": "aud = another client",
    "logout-iss-wrong": "iss = another issuer",
    "logout-expired": "exp in the past",
    "logout-typ-jwt-other": "typ = at+jwt",
}


class OpLogout(OpFrontChannel):
    """The OP's logout endpoints and back-channel sender."""

    def end_session(self, req: SimRequest) -> SimResponse:
        """``GET {issuer}/logout`` (RP-Initiated Logout 1.0 §2-§3)."""
        q = {k: v[0] for k, v in req.query.items() if v}
        if any(len(v) > 1 for v in req.query.values()):
            raise _Refused("invalid_request")
        hint = q.get("id_token_hint")
        if not hint:
            raise _Refused("invalid_request")
        try:
            # An expired ID token is still a valid hint (§2: "need not be unexpired");
            # verify_jwt checks the signature only.
            keys = KeySet([self.rsa_key, self.ec_key])
            _, claims = verify_jwt(hint, keys, algorithms=("RS256", "PS256", "ES256"))
        except AuthBrokerError as exc:
            raise _Refused("invalid_request") from exc
        if claims.get("iss") != self.issuer:
            raise _Refused("invalid_request")
        aud = claims.get("aud")
        if self.client_id not in ([aud] if isinstance(aud, str) else (aud or [])):
            raise _Refused("invalid_request")
        if q.get("client_id", self.client_id) != self.client_id:
            raise _Refused("invalid_request")
        uri = q.get("post_logout_redirect_uri")
        sid = claims.get("sid")
        with self.lock:
            self.end_session_requests.append(dict(q))
            if isinstance(sid, str):
                self.ended_sids.add(sid)
        if uri is None:
            return SimResponse(200, b"logged out", {"Content-Type": "text/plain"})
        if uri not in self.post_logout_redirect_uris:
            raise _Refused("invalid_request")  # §3: never redirect to an unregistered URI
        target = uri + ("&" if "?" in uri else "?")
        if "state" in q:
            target += urlencode({"state": q["state"]})
        return SimResponse.redirect(target.rstrip("?&"))

    def logout_token(
        self,
        *,
        sub: str | None = None,
        sid: str | None = None,
        mutations: tuple[str, ...] = (),
    ) -> str:
        """A back-channel logout token for ``sub``/``sid`` (with ``mutations`` from
        :data:`LOGOUT_MISBEHAVIOURS`)."""
        unknown = set(mutations) - set(LOGOUT_MISBEHAVIOURS)
        if unknown:
            raise ValueError(f"unknown logout mutation(s): {sorted(unknown)}")
        now = int(self.now())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": secrets.token_urlsafe(16),
            "events": {BACKCHANNEL_LOGOUT_EVENT: {}},
        }
        if sub is not None:
            claims["sub"] = sub
        if sid is not None:
            claims["sid"] = sid
        m = set(mutations)
        if "logout-nonce" in m:
            claims["nonce"] = secrets.token_urlsafe(16)
        if "logout-events-wrong" in m:
            claims["events"] = {"http://schemas.openid.net/event/other": {}}
        if "logout-events-missing" in m:
            del claims["events"]
        if "logout-no-subject" in m:
            claims.pop("sub", None)
            claims.pop("sid", None)
        if "logout-aud-wrong" in m:
            claims["aud"] = "other-client"
        if "logout-iss-wrong" in m:
            claims["iss"] = "https://example.org/"
        if "logout-expired" in m:
            claims.update(iat=now - 600, exp=now - 300)
        typ = "at+jwt" if "logout-typ-jwt-other" in m else "logout+jwt"
        alg = self._alg()
        token = sign_jwt(claims, self._signing(alg), alg=alg, headers={"typ": typ})
        if "logout-sig-xor" in m:
            head, _, sig = token.rpartition(".")
            raw = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            token = f"{head}.{b64(bytes(b ^ 0x5A for b in raw))}"
        return token

    def send_backchannel_logout(self, token: str, client: httpx.Client) -> httpx.Response:
        """POST ``token`` to the RP's ``backchannel_logout_uri`` (§2.5), as the OP's
        server does; ``client`` is the HTTP client that reaches the RP."""
        return client.post(
            self.backchannel_logout_uri,
            data={"logout_token": token},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )

    def sid_of(self, code: str | None = None) -> str | None:
        """The ``sid`` of the last (or the given) redeemed grant."""
        with self.lock:
            grant = self.redeemed.get(code or self.last_redeemed or "")
        return None if grant is None else grant.sid
