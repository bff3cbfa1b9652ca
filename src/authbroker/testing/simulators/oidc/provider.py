"""The OpenID Provider simulator's endpoints (discovery, JWKS, PAR, token, UserInfo,
end_session)
and :func:`start`; the package docstring describes the simulator as a whole."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from ....config import ProviderConfig, Settings
from ....crypto.jose import Key, sign_jwt
from ....providers.oidc import pkce_challenge
from ...registry import RunningSimulator
from ..server import SimRequest, SimResponse
from .consent import STYLESHEET_PATH, stylesheet
from .control import MISBEHAVIOURS
from .core import PREFIX, _Refused
from .keys import extra_key
from .logout import OpLogout


class OpenIdProviderSim(OpLogout):
    """The provider side; one instance per started simulator."""

    def handle(self, req: SimRequest) -> SimResponse:
        path = req.path
        try:
            if path == f"{PREFIX}/.well-known/openid-configuration":
                return SimResponse.json(self.metadata())
            if path == self.jwks_path:
                return SimResponse.json(self.jwks())
            if path == f"{PREFIX}/authorize" and req.method == "GET":
                return self.authorize(req)
            if path == STYLESHEET_PATH and req.method == "GET":
                return stylesheet()
            if path == f"{PREFIX}/approve" and req.method == "POST":
                return self.approve_form(req)
            if path == f"{PREFIX}/par":
                return self.par(req)
            if path == f"{PREFIX}/token" and req.method == "POST":
                return self.token(req)
            if path == f"{PREFIX}/logout" and req.method == "GET":
                return self.end_session(req)
            if path == urlsplit(self.userinfo_endpoint()).path and req.method == "GET":
                return self.userinfo(req)
        except _Refused as exc:
            return SimResponse.json({"error": exc.error}, status=exc.status)
        return SimResponse(404, b"not found")

    # -- discovery and keys ----------------------------------------------------------

    def metadata(self) -> dict[str, Any]:
        c = self.control
        issuer = self.issuer
        if c.active("discovery-issuer-mismatch"):
            issuer += "INVALID"
        elif c.active("discovery-issuer-example"):
            issuer = "https://example.com"
        elif c.active("discovery-issuer-slash"):
            issuer += "/"
        o = self.options
        p = self.published
        meta: dict[str, Any] = {
            "issuer": issuer,
            "authorization_endpoint": f"{self.browser_url}{PREFIX}/authorize"
            if self.browser_url
            else f"{self.issuer}/authorize",
            "token_endpoint": f"{self.issuer}/token",
            "userinfo_endpoint": self.userinfo_endpoint(),
            "jwks_uri": f"{self.server.url}{self.jwks_path}",
            "pushed_authorization_request_endpoint": f"{self.issuer}/par",
            "require_pushed_authorization_requests": o.par,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "scopes_supported": list(o.scopes),
            "acr_values_supported": sorted(o.acr_loa),
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": list(p.token_endpoint_auth_methods),
            "token_endpoint_auth_signing_alg_values_supported": list(p.token_endpoint_auth_signing),
            "request_object_signing_alg_values_supported": list(p.request_object_signing),
            "id_token_signing_alg_values_supported": list(p.id_token_signing),
            "id_token_encryption_alg_values_supported": list(p.encryption_algs),
            "id_token_encryption_enc_values_supported": list(p.encryption_encs),
            "userinfo_signing_alg_values_supported": list(p.id_token_signing),
            "request_parameter_supported": bool(p.request_object_signing),
            "request_uri_parameter_supported": False,
            "require_signed_request_object": o.request_object,
            "authorization_response_iss_parameter_supported": True,
            "end_session_endpoint": f"{self.issuer}/logout",
            "backchannel_logout_supported": True,
            "backchannel_logout_session_supported": True,
        }
        if c.active("iss-param-not-advertised"):
            del meta["authorization_response_iss_parameter_supported"]
        if c.active("discovery-http-endpoint"):
            meta["token_endpoint"] = "http://op.example.com/token"  # noqa: S105
        if c.active("discovery-malformed-url"):
            meta["jwks_uri"] = "https://[::1/x"
        return meta

    def jwks(self) -> dict[str, Any]:
        c = self.control
        keys = [self.rsa_key.public_jwk(), self.ec_key.public_jwk()]
        if c.active("kid-absent-single"):
            keys = [{k: v for k, v in j.items() if k not in ("kid", "alg")} for j in keys]
        elif c.active("kid-absent-multiple"):
            extra = [extra_key(i) for i in range(2)]
            keys = [
                {k: v for k, v in j.items() if k not in ("kid", "alg")}
                for j in [self.rsa_key.public_jwk(), *(e.public_jwk() for e in extra)]
            ]
        if c.active("jwks-private-members"):
            keys[0] = self.rsa_key.private_jwk()
        if c.active("unparseable-key-in-jwks"):
            keys += [
                {"kty": "AKP", "alg": "ML-DSA-99", "kid": "akp-1", "pub": "AAAA"},
                {"kty": "made-up", "kid": "made-up-1", "x": "AAAA"},
            ]
        return {"keys": keys}

    def par(self, req: SimRequest) -> SimResponse:
        if req.method != "POST":
            raise _Refused("invalid_request", 405)
        form = req.form()
        self._authenticate_client(req, form)
        for name in ("client_assertion", "client_assertion_type"):
            form.pop(name, None)
        if "request_uri" in form:
            raise _Refused("invalid_request")
        params = self._parse_request(form)
        params.setdefault("client_id", self.client_id)
        self._validate(params)
        uri = "urn:ietf:params:oauth:request_uri:" + secrets.token_urlsafe(24)
        with self.lock:
            self.par_requests[uri] = (params, self.now() + 60)
        return SimResponse.json({"request_uri": uri, "expires_in": 60}, status=201)

    def token(self, req: SimRequest) -> SimResponse:
        c = self.control
        if c.active("token-redirect"):
            return SimResponse.redirect(f"{self.issuer}/elsewhere")
        form = req.form()
        self._authenticate_client(req, form)
        if form.get("grant_type") != "authorization_code":
            raise _Refused("unsupported_grant_type")
        code = form.get("code", "")
        with self.lock:
            grant = self.codes.pop(code, None)
            if grant is None:
                replayed = self.redeemed.get(code)
                if replayed is not None:
                    # RFC 6749 §4.1.2 / BCP: a reused code revokes what it issued.
                    for token in replayed.access_tokens:
                        self.access.pop(token, None)
                raise _Refused("invalid_grant")
            self.redeemed[code] = grant
            self.last_redeemed = code
        if c.active("token-error"):
            raise _Refused("invalid_grant")
        if grant.expires < self.now():
            raise _Refused("invalid_grant")
        if form.get("redirect_uri") != grant.params["redirect_uri"]:
            raise _Refused("invalid_grant")
        verifier = form.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or not secrets.compare_digest(
            pkce_challenge(verifier), grant.params["code_challenge"]
        ):
            raise _Refused("invalid_grant")
        access_token = secrets.token_urlsafe(32)
        if c.active("access-token-bad-char"):
            access_token += " x"
        elif c.active("access-token-non-ascii"):
            access_token += "\u00e9"
        with self.lock:
            grant.access_tokens.append(access_token)
            self.access[access_token] = grant
        body: dict[str, Any] = {
            "access_token": access_token,
            "token_type": "bEARER" if c.active("token-type-case") else "Bearer",
            "expires_in": 300,
            "id_token": self.id_token(grant, access_token, code),
        }
        if c.active("token-no-expires-in"):
            del body["expires_in"]
        response = SimResponse.json(body)
        response.headers["Cache-Control"] = "no-store"
        return response

    def userinfo(self, req: SimRequest) -> SimResponse:
        if "access_token" in req.query or req.body:
            raise _Refused("invalid_request")  # header only (FAPI 2.0, OIDC-12)
        header = req.headers.get("authorization", "")
        if not header.lower().startswith("bearer "):
            raise _Refused("invalid_token", 401)
        with self.lock:
            grant = self.access.get(header[7:].strip())
        if grant is None:
            raise _Refused("invalid_token", 401)
        c = self.control
        person = grant.person
        sub = self._sub(person)
        info: dict[str, Any] = {"sub": sub}
        info.update(self._person_claims(person, None, sub))
        info.pop("amr", None)
        info.pop("jti", None)
        info.pop("typ", None)
        if self.published.userinfo_server:
            # BankID TINFO: the resource server's own sub and the person's BankID id.
            info["sub"] = f"tinfo-{secrets.token_hex(8)}"
            info.pop("nnin_altsub", None)
            if "nnin" in grant.params.get("scope", "").split():
                info["nnin"] = self._number(person)
        if c.active("userinfo-sub-foobar") or c.active("userinfo-sub-append"):
            for name in ("sub", "bankid_altsub"):
                if name in info:
                    wrong = "foobar" if c.active("userinfo-sub-foobar") else info[name] + "invalid"
                    info[name] = wrong
        fmt = self.options.userinfo
        if fmt == "json" or c.active("userinfo-unsigned"):
            return SimResponse.json(info)
        info["iss"] = (
            "https://example.org/" if c.active("userinfo-iss-wrong") else self.userinfo_iss()
        )
        info["aud"] = "other-client" if c.active("userinfo-aud-wrong") else self.client_id
        alg = self._alg()
        key = self._signing(alg)
        if c.active("userinfo-wrong-key"):
            key = Key.generate("EC", use="sig", alg="ES256")
            alg = "ES256"
        kidless = c.active("kid-absent-single") or c.active("kid-absent-multiple")
        token = sign_jwt(info, key, alg=alg, include_kid=not kidless)
        token = self._maybe_encrypt(token, info, for_userinfo=True)
        return SimResponse(200, token.encode(), {"Content-Type": "application/jwt"})


def start(
    config: ProviderConfig,
    settings: Settings,
    *,
    in_process: bool = False,
    browser_url: str | None = None,
) -> RunningSimulator:
    """Start the OP for ``config`` (loopback or in process); the overrides point the RP at it.

    ``browser_url``: where browsers reach the OP's pages (its authorization endpoint),
    when that is not the server's own URL (the demo serves it under its origin)."""
    op = OpenIdProviderSim(config, settings, in_process=in_process, browser_url=browser_url)
    op.start()
    overrides: dict[str, Any] = {
        "issuer": op.issuer,
        "client_id": op.client_id,
        "rp_keys": {"keys": [k.private_jwk() for k in op.rp_keys.keys]},
    }
    if op.options.client_auth == "client_secret_basic":
        overrides["client_secret"] = op.client_secret
    if op.published.userinfo_server:
        overrides["userinfo_issuer"] = op.userinfo_iss()
    overrides.pop("discovery_url", None)
    return RunningSimulator(
        overrides=overrides,
        server=op,
        handle=op.server.handle,
        extra={
            "op": op,
            "control": op.control,
            "persons": [p.to_dict() for p in op.persons()],
            "requests": op.server.requests,
            "count": op.count,
            "rotate_signing_key": op.rotate_signing_key,
            "misbehaviours": dict(MISBEHAVIOURS),
        },
    )
