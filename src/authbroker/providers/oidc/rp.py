"""The OIDC relying party: discovery, authorization request, code exchange, ID token.

One class because every step reads the same per-provider state (options, keys,
the discovery and JWKS caches); the pieces without that state live beside it
(:mod:`.options`, :mod:`.keys`, :mod:`.id_token`, :mod:`.userinfo`, :mod:`.helpers`).
"""

from __future__ import annotations

import base64
import hmac
import importlib
import secrets
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any, cast
from urllib.parse import quote_plus

from ...config import ProviderConfig, Settings
from ...crypto.jose import (
    JwksCache,
    Key,
    KeySet,
    sign_jwt,
)
from ...errors import (
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    InvalidInput,
    ProviderError,
    ProviderUnavailable,
)
from ...flow import Redirect, store_put, store_put_if_absent, store_take
from ...http import HttpRequest
from ...identity import Identity
from ...kernel.effects import Gen, fetch
from ..base import (
    AdvanceContext,
    BeginContext,
    Next,
    ProviderInfo,
)
from .helpers import (
    _UNRESERVED,
    CLIENT_ASSERTION_TYPE,
    PROFILE_MODULES,
    _authorization_error,
    _check_url,
    _error_code,
    _shash,
    _token_response,
    _with_query,
    pkce_challenge,
)
from .id_token import (
    AcrChoice,
    VerifiedClaims,
    _generic_identity,
    check_acr,
    check_token_hashes,
    default_choose_acr,
    validate_id_token_claims,
)
from .keys import (
    _private_keyset,
    check_rp_keys,
    decrypt_nested_token,
    generate_rp_keys,
    load_rp_keys,
    rp_signing_algs,
    signed_rp_jwks,
)
from .logout import LogoutRequest, check_logout_claims
from .options import parse_options
from .userinfo import fetch_userinfo

__all__ = ["OidcProvider", "from_config"]


# --- the provider ---------------------------------------------------------------------


class OidcProvider:
    """Generic OIDC RP; ``profile`` supplies acr selection and claim mapping."""

    flow_ttl = 600.0

    def __init__(
        self,
        config: ProviderConfig,
        settings: Settings,
        *,
        rp_keys: KeySet | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.config = config
        self.settings = settings
        self.options = opts = parse_options(config)
        self._profile: ModuleType | None = (
            importlib.import_module(PROFILE_MODULES[opts.profile]) if opts.profile else None
        )
        self._clock = clock
        self._meta: dict[str, Any] | None = None
        self._meta_expires = 0.0
        self._meta_fetched: float | None = None
        self._jwks: JwksCache | None = None
        self._secret: str | None = None
        if opts.client_auth == "client_secret_basic":
            self._secret = config.secret("client_secret")
        keys = rp_keys if rp_keys is not None else load_rp_keys(config)
        if keys is None and opts.needs_rp_keys:
            if config.environment != "simulator":
                raise ConfigError(
                    "RP keys are required for this profile (rp_keys or rp_keys_env)",
                    key=config.key("rp_keys"),
                )
            keys = _private_keyset(generate_rp_keys(config), config.key("rp_keys"))
        if keys is not None:
            check_rp_keys(config, keys)
        self.rp_keys = keys or KeySet()
        self._signing: tuple[Key, str] | None = (
            self._pick_signing_key() if opts.needs_rp_keys else None
        )
        methods: tuple[str, ...] = ()
        if self._profile is not None and hasattr(self._profile, "methods"):
            methods = tuple(self._profile.methods(opts))
        self.info = ProviderInfo.from_config(config, methods=methods)

    # -- keys and metadata -------------------------------------------------------------

    def _pick_signing_key(self) -> tuple[Key, str]:
        """The RP key that signs request objects and client assertions, and its alg.

        Newest first: the first listed signing key signs; the others stay published
        for overlap during rotation (PROF-02). The alg is the key's own, else
        ``rp_signing_alg``, else the first of the provider's ``rp_signing_algs`` the
        key can do; it must be one the provider accepts (Telia: RS256 only).
        """
        wanted = self.config.get("rp_signing_kid")
        accepted = rp_signing_algs(self.config)
        for k in self.rp_keys.keys:
            if k.use != "sig" or (wanted and k.kid != wanted):
                continue
            chosen = k.alg or self.config.get("rp_signing_alg")
            candidates = [str(chosen)] if chosen else list(accepted)
            for alg in candidates:
                if alg in accepted and k._fits(alg, "sig"):
                    return k, alg
        raise ConfigError(
            f"no RP signing key for an algorithm the provider accepts ({', '.join(accepted)})",
            key=self.config.key("rp_keys"),
        )

    def public_jwks(self) -> dict[str, Any]:
        """The RP's public signing + encryption keys (for the provider to fetch)."""
        return self.rp_keys.to_public_jwks()

    def signed_jwks(self, now: float | None = None) -> str:
        """The same keys as a signed JWK Set (:func:`signed_rp_jwks`)."""
        return signed_rp_jwks(self.config, self.rp_keys, now=now)

    def _metadata(self) -> Gen[dict[str, Any]]:
        now = self._clock()
        if self._meta is not None and now < self._meta_expires:
            return self._meta
        opts = self.options
        resp = yield from fetch(
            HttpRequest.get(
                opts.discovery_url,
                headers={"Accept": "application/json"},
                timeout=opts.timeout,
                tag="discovery",
                shareable=True,
            )
        )
        if resp.status != 200:
            raise ProviderUnavailable(
                "provider metadata is unavailable",
                code="discovery_unavailable",
                details={"status": resp.status},
            )
        meta = resp.json_object()
        # Discovery §4.3 / RFC 8414 §3.3: byte-for-byte equal, no normalisation.
        issuer = meta.get("issuer")
        if not isinstance(issuer, str) or not hmac.compare_digest(
            issuer.encode(), opts.issuer.encode()
        ):
            raise ProviderError(
                "provider metadata names another issuer", code="discovery_issuer_mismatch"
            )
        loop = opts.allow_loopback_http
        name = self.config.name
        for field_name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            _check_url(meta.get(field_name), field_name, provider=name, allow_loopback_http=loop)
        if opts.userinfo != "none":
            _check_url(
                meta.get("userinfo_endpoint"),
                "userinfo_endpoint",
                provider=name,
                allow_loopback_http=loop,
            )
        if opts.par:
            _check_url(
                meta.get("pushed_authorization_request_endpoint"),
                "pushed_authorization_request_endpoint",
                provider=name,
                allow_loopback_http=loop,
            )
        elif meta.get("require_pushed_authorization_requests") is True:
            raise ConfigError(
                "the provider requires PAR; set par = true", key=self.config.key("par")
            )
        methods = meta.get("code_challenge_methods_supported")
        if isinstance(methods, list) and "S256" not in methods:
            raise ProviderError("provider does not support PKCE S256", code="no_pkce_s256")
        jwks_uri = str(meta["jwks_uri"])
        if self._jwks is None or self._jwks.jwks_uri != jwks_uri:
            self._jwks = JwksCache(
                jwks_uri,
                ttl=opts.jwks_ttl,
                min_refetch_interval=opts.jwks_min_refetch_interval,
                now=self._clock,
                timeout=opts.timeout,
                provider=self.config.name,
            )
        self._meta = meta
        self._meta_fetched = now
        self._meta_expires = now + opts.discovery_ttl
        return meta

    def metadata_status(self) -> dict[str, Any]:
        """Age in whole seconds of the cached discovery document and JWKS, and whether
        both are within their TTL, read from the caches only (no fetch: the health
        endpoint must answer even when the provider is down). ``None`` ages and
        ``fresh``: not fetched since start (the first login fetches them)."""
        now = self._clock()
        jwks = self._jwks
        jwks_at = None if jwks is None else jwks.fetched_at
        meta_age = None if self._meta_fetched is None else int(now - self._meta_fetched)
        jwks_age = None if jwks_at is None else int(now - jwks_at)
        if self._meta is None:
            return {"discovery_age": None, "jwks_age": jwks_age, "fresh": None}
        fresh = (
            self._meta is not None and now < self._meta_expires and jwks is not None and jwks.fresh
        )
        return {"discovery_age": meta_age, "jwks_age": jwks_age, "fresh": fresh}

    @property
    def jwks(self) -> JwksCache | None:
        """The issuer's JWKS cache (after the first discovery)."""
        return self._jwks

    # -- client authentication ---------------------------------------------------------

    def _client_auth(
        self, form: dict[str, str], meta: Mapping[str, Any], now: float
    ) -> dict[str, str]:
        opts = self.options
        if opts.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: form-urlencode id and secret, then base64 "id:secret".
            secret = self._secret or ""
            raw = f"{quote_plus(opts.client_id)}:{quote_plus(secret)}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}
        key, alg = cast(tuple[Key, str], self._signing)
        aud = opts.issuer if opts.client_assertion_aud == "issuer" else str(meta["token_endpoint"])
        claims = {
            # RFC 7523 §3 / Core §9: iss = sub = client_id; aud a plain string.
            "iss": opts.client_id,
            "sub": opts.client_id,
            "aud": aud,
            "jti": secrets.token_urlsafe(32),
            "iat": int(now),
            "exp": int(now) + 60,
        }
        form["client_id"] = opts.client_id
        form["client_assertion_type"] = CLIENT_ASSERTION_TYPE
        form["client_assertion"] = sign_jwt(claims, key, alg=alg)
        return {}

    # -- begin -------------------------------------------------------------------------

    def _choose_acr(self, params: Mapping[str, str]) -> AcrChoice:
        if self._profile is not None and hasattr(self._profile, "choose_acr"):
            return cast(AcrChoice, self._profile.choose_acr(self.options, params))
        return default_choose_acr(self.options, params)

    def begin(self, ctx: BeginContext) -> Gen[Next]:
        opts = self.options
        meta = yield from self._metadata()
        choice = self._choose_acr(ctx.params)
        state = secrets.token_urlsafe(32)
        nonce = secrets.token_urlsafe(32)  # 43 characters: within FAPI's 64
        verifier = secrets.token_urlsafe(32)  # RFC 7636 §4.1: 43 unreserved characters
        now = ctx.now
        request: dict[str, str] = {
            "response_type": "code",
            "client_id": opts.client_id,
            "redirect_uri": ctx.callback_url,
            "scope": " ".join(opts.scopes),
            "state": state,
            "nonce": nonce,
            "code_challenge": pkce_challenge(verifier),
            "code_challenge_method": "S256",
        }
        if choice.values:
            request["acr_values"] = " ".join(choice.values)
        if opts.max_age is not None:
            request["max_age"] = str(opts.max_age)
        if ctx.language in opts.ui_locales:
            request["ui_locales"] = ctx.language
        for name, value in opts.extra_auth_params.items():
            request.setdefault(name, value)
        front = self._request_object(request, now) if opts.request_object else request
        if opts.par:
            front = yield from self._push(front, meta, now)
        url = _with_query(str(meta["authorization_endpoint"]), front)
        # OIDC-03: the state is a single-use store entry besides the flow record.
        yield from store_put("oidc:state:" + _shash(state), b"1", self.flow_ttl)
        data = {
            "state": state,
            "nonce": nonce,
            "verifier": verifier,
            "issuer": opts.issuer,
            "redirect_uri": ctx.callback_url,
            "acr": list(choice.values),
            "loa": int(choice.loa),
            "method": choice.method,
            "iss_param": meta.get("authorization_response_iss_parameter_supported") is True
            or opts.require_iss_param,
        }
        return Next(Redirect(url), data)

    def _request_object(self, request: Mapping[str, str], now: float) -> dict[str, str]:
        """RFC 9101 §4-§6 / Core §6.1: a signed request object sent by value."""
        opts = self.options
        claims: dict[str, Any] = dict(request)
        claims.update(
            iss=opts.client_id,
            aud=opts.issuer,
            iat=int(now),
            nbf=int(now),
            exp=int(now) + 300,
            jti=secrets.token_urlsafe(32),
        )
        key, alg = cast(tuple[Key, str], self._signing)
        headers = {"typ": opts.request_object_typ} if opts.request_object_typ else None
        jar = sign_jwt(claims, key, alg=alg, headers=headers)
        # client_id and response_type (and scope, for OIDC) also outside (Core §6.1).
        return {
            "client_id": opts.client_id,
            "response_type": "code",
            "scope": request["scope"],
            "request": jar,
        }

    def _push(
        self, front: Mapping[str, str], meta: Mapping[str, Any], now: float
    ) -> Gen[dict[str, str]]:
        """RFC 9126 §2: push the request; the browser only carries the request_uri."""
        opts = self.options
        form = dict(front)
        headers = self._client_auth(form, meta, now)
        resp = yield from fetch(
            HttpRequest.post_form(
                str(meta["pushed_authorization_request_endpoint"]),
                form,
                headers=headers,
                timeout=opts.timeout,
                tag="par",
            )
        )
        if resp.status >= 500:
            raise ProviderUnavailable("PAR endpoint failed", code="par_unavailable")
        if resp.status not in (200, 201):
            raise ProviderError(
                "provider refused the pushed request",
                code="par_refused",
                details={"status": resp.status, "error": _error_code(resp)},
            )
        body = resp.json_object()
        uri = body.get("request_uri")
        if not isinstance(uri, str) or not 0 < len(uri) <= 512:
            raise InvalidInput("PAR response has no request_uri", code="par_bad_response")
        return {"client_id": opts.client_id, "request_uri": uri}

    # -- advance -----------------------------------------------------------------------

    def advance(
        self, ctx: AdvanceContext, data: Mapping[str, Any], params: Mapping[str, str]
    ) -> Gen[Identity]:
        opts = self.options
        # OIDC-03: state first; nothing else is looked at before it matches.
        state = params.get("state")
        if not isinstance(state, str) or not state:
            raise InvalidInput("authorization response has no state", code="state_missing")
        if not hmac.compare_digest(state.encode(), str(data["state"]).encode()):
            raise InvalidInput("authorization response state does not match", code="state_mismatch")
        taken = yield from store_take("oidc:state:" + _shash(state))
        if taken is None:
            raise AlreadyUsed("authorization response was already used", code="state_replayed")
        # RFC 9207 §2.4: compare iss when present; required when advertised.
        iss = params.get("iss")
        if iss is not None:
            if not hmac.compare_digest(iss.encode(), str(data["issuer"]).encode()):
                raise InvalidInput(
                    "authorization response is from another issuer", code="iss_param_mismatch"
                )
        elif data.get("iss_param"):
            raise InvalidInput("authorization response has no iss", code="iss_param_missing")
        if "error" in params:
            raise _authorization_error(params)
        code = params.get("code")
        if not isinstance(code, str) or _UNRESERVED.fullmatch(code) is None:
            raise InvalidInput("authorization response has no valid code", code="code_missing")
        meta = yield from self._metadata()
        tokens = yield from self._redeem(code, data, meta, ctx.now)
        alg, claims, signed = yield from self._verify_id_token(
            str(tokens["id_token"]), data, ctx.now
        )
        check_token_hashes(
            alg,
            claims,
            access_token=str(tokens["access_token"]),
            code=code,
            at_hash_encoding=opts.at_hash_encoding,
        )
        acr, loa = check_acr(opts, claims, data, self.config.loa)
        userinfo = None
        if opts.userinfo != "none":
            userinfo = yield from fetch_userinfo(
                opts,
                cast(JwksCache, self._jwks),
                self._decrypt_nested,
                str(tokens["access_token"]),
                claims,
                meta,
            )
        verified = VerifiedClaims(
            provider=self.config.name,
            options=opts,
            id_token=claims,
            userinfo=userinfo,
            acr=acr,
            loa=loa,
            method=data.get("method"),
            now=ctx.now,
            id_token_jwt=signed,
        )
        try:
            if self._profile is None:
                return _generic_identity(verified)
            return cast(Identity, self._profile.map_identity(verified))
        except AuthBrokerError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput("provider claims cannot be mapped", code="bad_claims") from exc

    def _redeem(
        self, code: str, data: Mapping[str, Any], meta: Mapping[str, Any], now: float
    ) -> Gen[dict[str, Any]]:
        opts = self.options
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": str(data["redirect_uri"]),
            "code_verifier": str(data["verifier"]),
        }
        headers = self._client_auth(form, meta, now)
        headers["Accept"] = "application/json"
        resp = yield from fetch(
            HttpRequest.post_form(
                str(meta["token_endpoint"]),
                form,
                headers=headers,
                timeout=opts.timeout,
                tag="token",
            )
        )
        return _token_response(resp)

    def _verify_id_token(
        self, token: str, data: Mapping[str, Any], now: float
    ) -> Gen[tuple[str, dict[str, Any], str]]:
        """(alg, claims, the signed JWS) of a verified ID token."""
        opts = self.options
        # RFC 7516 §9: a compact JWE has five parts, a JWS three. Deciding by the
        # count (not by a peeked header) lets each path parse its header once; the
        # dots are counted only when there is a third (a JWS is parsed by its path).
        third_dot = token.find(".", token.find(".", token.find(".") + 1) + 1)
        if third_dot >= 0 and token.count(".") == 4:
            token = self._decrypt_nested(token, "ID token")
        elif opts.id_token_encrypted:
            # JOSE-07 / PROF-01: encryption was agreed; a signed-only token is refused.
            raise InvalidInput("ID token was not encrypted", code="not_encrypted")
        jwks = cast(JwksCache, self._jwks)
        header, claims = yield from jwks.verify_jwt(token, algorithms=opts.id_token_algs)
        validate_id_token_claims(
            claims,
            issuer=str(data["issuer"]),
            client_id=opts.client_id,
            nonce=str(data["nonce"]),
            now=now,
            skew=opts.skew,
            max_token_age=opts.max_id_token_age,
            max_age=opts.max_age,
        )
        return str(header["alg"]), claims, token

    # -- logout ------------------------------------------------------------------------

    def verify_logout_token(self, token: str, now: float) -> Gen[LogoutRequest]:
        """Back-Channel Logout 1.0 §2.6
        (https://openid.net/specs/openid-connect-backchannel-1_0.html#Validation): a
        nested JWE is decrypted (step 1), the signature verified with the OP's JWKS and
        the ID-token algorithms (step 2), the claims checked
        (:func:`~authbroker.providers.oidc.logout.check_logout_claims`, steps 3-6), and
        last the ``jti`` taken as single use until the token expires (step 7), so a
        refused token burns no ``jti``."""
        opts = self.options
        if not token or len(token) > 65536:
            raise InvalidInput("no logout token", code="logout_token_missing")
        yield from self._metadata()
        if token.count(".") == 4:  # a JWE (RFC 7516 §9), as for the ID token
            token = self._decrypt_nested(token, "logout token")
        jwks = cast(JwksCache, self._jwks)
        header, claims = yield from jwks.verify_jwt(token, algorithms=opts.id_token_algs)
        request = check_logout_claims(
            header,
            claims,
            issuer=opts.issuer,
            client_id=opts.client_id,
            now=now,
            skew=opts.skew,
            max_token_age=opts.max_id_token_age,
        )
        ttl = max(1.0, request.exp + opts.skew - now)
        first = yield from store_put_if_absent(
            "oidc:logout-jti:" + _shash(opts.issuer + "\0" + request.jti), b"1", ttl
        )
        if not first:
            raise AlreadyUsed("logout token was already used", code="logout_replayed")
        return request

    def end_session_url(
        self, *, id_token_hint: str, post_logout_redirect_uri: str, state: str
    ) -> Gen[str | None]:
        """Where to send the browser to log out at the OP (RP-Initiated Logout 1.0 §2,
        https://openid.net/specs/openid-connect-rpinitiated-1_0.html#RPLogout), or None
        when the OP publishes no ``end_session_endpoint`` or ``rp_initiated_logout`` is
        off. ``post_logout_redirect_uri`` must be checked by the caller (allow-list) and
        registered at the OP."""
        opts = self.options
        if not opts.rp_initiated_logout:
            return None
        meta = yield from self._metadata()
        endpoint = meta.get("end_session_endpoint")
        if endpoint is None:
            return None
        _check_url(
            endpoint,
            "end_session_endpoint",
            provider=self.config.name,
            allow_loopback_http=opts.allow_loopback_http,
        )
        params = {
            "id_token_hint": id_token_hint,
            "client_id": opts.client_id,
            "post_logout_redirect_uri": post_logout_redirect_uri,
            "state": state,
        }
        return _with_query(str(endpoint), params)

    def _decrypt_nested(self, token: str, what: str) -> str:
        return decrypt_nested_token(self.rp_keys, self.options, token, what)


def from_config(config: ProviderConfig, settings: Settings) -> OidcProvider:
    """Registry entry point for protocol ``oidc``."""
    return OidcProvider(config, settings)
