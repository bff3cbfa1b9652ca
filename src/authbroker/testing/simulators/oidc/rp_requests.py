"""What the RP sends the OpenID Provider simulator, verified as the real OP does.

Authorization requests (exact ``redirect_uri``, PKCE S256 only, signed request objects
per RFC 9101 https://www.rfc-editor.org/rfc/rfc9101 with the OIDF checks OIDC-13/X-28,
pushed requests per RFC 9126 https://www.rfc-editor.org/rfc/rfc9126) and client
authentication at the token endpoint (RFC 6749 §2.3.1, RFC 7523 ``private_key_jwt``).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from ....crypto.jose import verify_jwt
from ....errors import AuthBrokerError
from ....providers.oidc import CLIENT_ASSERTION_TYPE
from ..server import SimRequest
from .core import _Refused
from .tokens import OpTokens


class OpRequests(OpTokens):
    """Parses and verifies requests and client credentials; raises ``_Refused``."""

    def _verify_rp_jwt(self, token: str, algorithms: tuple[str, ...], error: str) -> dict[str, Any]:
        """Verify a JWT of the RP with exactly the algorithms the provider publishes."""
        if not algorithms:
            raise _Refused(error, 401 if error == "invalid_client" else 400)
        try:
            _, claims = verify_jwt(token, self.rp_public, algorithms=algorithms)
        except AuthBrokerError as exc:
            raise _Refused(error, 401 if error == "invalid_client" else 400) from exc
        return claims

    def _request_object(self, outer: Mapping[str, str]) -> dict[str, str]:
        """RFC 9101 §6 and the OIDF request-object checks (OIDC-13, X-28)."""
        claims = self._verify_rp_jwt(
            outer["request"], self.published.request_object_signing, "invalid_request_object"
        )
        now = self.now()
        if claims.get("iss") != self.client_id or claims.get("aud") != self.issuer:
            raise _Refused("invalid_request_object")
        if "sub" in claims or "request" in claims or "request_uri" in claims:
            raise _Refused("invalid_request_object")
        exp, iat = claims.get("exp"), claims.get("iat")
        if not isinstance(exp, int) or not isinstance(iat, int):
            raise _Refused("invalid_request_object")
        if exp <= now or exp - iat > 300 or iat > now + 60:
            raise _Refused("invalid_request_object")
        nbf = claims.get("nbf")
        if nbf is not None and (not isinstance(nbf, int) or nbf > now + 60):
            raise _Refused("invalid_request_object")
        for name in ("client_id", "response_type"):
            if name in outer and outer[name] != claims.get(name):
                raise _Refused("invalid_request")
        return {k: v for k, v in claims.items() if isinstance(v, str)}

    def _resolve(self, query: Mapping[str, str]) -> dict[str, str]:
        o = self.options
        if "request_uri" in query:
            with self.lock:
                entry = self.par_requests.pop(query["request_uri"], None)
            if entry is None or entry[1] < self.now():
                raise _Refused("invalid_request_uri")
            params = entry[0]
            if query.get("client_id") != params.get("client_id"):
                raise _Refused("invalid_request_uri")
        elif o.par:
            raise _Refused("invalid_request")  # PAR required for this client
        else:
            params = self._parse_request(query)
        return params

    def _parse_request(self, query: Mapping[str, str]) -> dict[str, str]:
        if "request" in query:
            return self._request_object(query)
        if self.options.request_object:
            raise _Refused("invalid_request")  # signed request object required
        return dict(query)

    def _validate(self, params: Mapping[str, str]) -> None:
        if params.get("client_id") != self.client_id:
            raise _Refused("unauthorized_client")
        if params.get("redirect_uri") != self.redirect_uri:
            raise _Refused("invalid_request")  # exact match, never redirect there
        if params.get("response_type") != "code":
            raise _Refused("unsupported_response_type")
        if "openid" not in params.get("scope", "").split():
            raise _Refused("invalid_scope")
        if params.get("code_challenge_method") != "S256" or not params.get("code_challenge"):
            raise _Refused("invalid_request")  # PKCE S256 required, plain refused
        for acr in params.get("acr_values", "").split():
            if acr not in self.options.acr_loa:
                raise _Refused("invalid_request")

    def _query(self, req: SimRequest) -> dict[str, str]:
        if any(len(v) > 1 for v in req.query.values()):
            raise _Refused("invalid_request")  # duplicated parameters
        return {k: v[0] for k, v in req.query.items()}

    def _authenticate_client(self, req: SimRequest, form: Mapping[str, str]) -> None:
        o = self.options
        if o.client_auth not in self.published.token_endpoint_auth_methods:
            raise _Refused("invalid_client", 401)  # the provider offers no such method
        if o.client_auth == "client_secret_basic":
            header = req.headers.get("authorization", "")
            if not header.startswith("Basic "):
                raise _Refused("invalid_client", 401)
            try:
                raw = base64.b64decode(header[6:], validate=True).decode("utf-8")
            except (ValueError, UnicodeDecodeError) as exc:
                raise _Refused("invalid_client", 401) from exc
            user, _, password = raw.partition(":")
            # RFC 6749 §2.3.1: both parts were form-urlencoded before base64.
            ok_id = secrets.compare_digest(unquote_plus(user), self.client_id)
            ok_secret = secrets.compare_digest(
                unquote_plus(password).encode(), self.client_secret.encode()
            )
            if not (ok_id and ok_secret):
                raise _Refused("invalid_client", 401)
        else:
            if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
                raise _Refused("invalid_client", 401)
            claims = self._verify_rp_jwt(
                form.get("client_assertion", ""),
                self.published.token_endpoint_auth_signing,
                "invalid_client",
            )
            now = self.now()
            aud = self.issuer if o.client_assertion_aud == "issuer" else f"{self.issuer}/token"
            exp, iat, jti = claims.get("exp"), claims.get("iat"), claims.get("jti")
            if (
                claims.get("iss") != self.client_id
                or claims.get("sub") != self.client_id
                or claims.get("aud") != aud
                or not isinstance(exp, int)
                or exp <= now
                or exp > now + 300
                or (isinstance(iat, int) and iat > now + 60)
                or not isinstance(jti, str)
                or len(jti) < 16
            ):
                raise _Refused("invalid_client", 401)
            with self.lock:
                if jti in self.seen_jti:
                    raise _Refused("invalid_client", 401)  # replayed assertion
                self.seen_jti.add(jti)
        if "client_id" in form and form["client_id"] != self.client_id:
            raise _Refused("invalid_client", 401)
