"""The relying party's own keys: generation, loading, checks, public and signed JWKS.

RP keys sign request objects and client assertions (``private_key_jwt``) and decrypt
encrypted ID tokens (:func:`decrypt_nested_token`); the signed JWKS is the FTN
federation's ``jwk-set+jwt``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ...config import ProviderConfig, Settings
from ...crypto.jose import (
    DEFAULT_JWE_ALGORITHMS,
    Key,
    KeySet,
    decrypt_jwe,
    sign_jwt,
)
from ...errors import (
    ConfigError,
    InvalidInput,
)
from .helpers import (
    _OWN_SIGNING_ALGS,
)
from .options import CONFIG_OPTIONS, OidcOptions

__all__ = [
    "SIGNED_JWKS_MEDIA_TYPE",
    "SIGNED_JWKS_TYP",
    "check_rp_keys",
    "decrypt_nested_token",
    "generate_rp_keys",
    "load_rp_keys",
    "rp_key_algs",
    "rp_public_jwks",
    "rp_signing_algs",
    "signed_rp_jwks",
]


# --- RP keys --------------------------------------------------------------------------

#: Without a profile list: the key algorithms authbroker prefers (FAPI-style).
_PREFERRED_JWE = ("RSA-OAEP-256", "RSA-OAEP", "ECDH-ES+A256KW", "ECDH-ES+A128KW", "ECDH-ES")
_RSA_JWE = frozenset({"RSA-OAEP", "RSA-OAEP-256"})


def rp_signing_algs(config: ProviderConfig) -> tuple[str, ...]:
    """``rp_signing_algs``: what the provider accepts for our request objects and
    client assertions (its ``request_object_signing_alg_values_supported`` /
    ``token_endpoint_auth_signing_alg_values_supported``), in our order of preference.

    A profile states its provider's published set; Telia, for one, accepts RS256
    only, so a PS256 request object is refused there (every FTN login failed).
    """
    algs: tuple[str, ...] = _read_one(config, "rp_signing_algs")
    if not algs or not set(algs) <= _OWN_SIGNING_ALGS:
        raise ConfigError(
            f"must list algorithms from {', '.join(sorted(_OWN_SIGNING_ALGS))}",
            key=config.key("rp_signing_algs"),
        )
    return algs


def _read_one(config: ProviderConfig, key: str) -> Any:
    """One option of ``config``, checked and defaulted by :data:`CONFIG_OPTIONS`."""
    return CONFIG_OPTIONS.read(config.options, config.key, only=(key,))[key]


def _rp_jwe_algs(config: ProviderConfig) -> tuple[str, ...]:
    # Not configured: every allowed algorithm, in our order of preference (the
    # schema's default is the accepted set, which has no order).
    if "jwe_algs" not in config.options:
        return _PREFERRED_JWE
    algs: tuple[str, ...] = _read_one(config, "jwe_algs")
    if not set(algs) <= DEFAULT_JWE_ALGORITHMS:
        raise ConfigError(
            "JWE algorithm not on the allow-list (JOSE-06)", key=config.key("jwe_algs")
        )
    return algs


def _uses_rp_keys(config: ProviderConfig) -> tuple[bool, bool]:
    """(needs a signing key, needs an encryption key) for this provider config."""
    sig = config.get("client_auth") == "private_key_jwt" or config.get("request_object") is True
    enc = config.get("id_token_encrypted") is True or config.get("userinfo") == "encrypted"
    return sig, enc


def rp_key_algs(
    config: ProviderConfig | None, kty: Literal["RSA", "EC"] = "RSA"
) -> tuple[str | None, str | None]:
    """(signing alg, encryption alg) of new RP keys of type ``kty`` for this provider.

    Each is the first of the provider's ``rp_signing_algs`` / ``jwe_algs`` that such a
    key can do, or None when the provider config needs no key of that use (no
    private_key_jwt or request object; no encrypted responses). Without a config:
    both, with authbroker's preferences.
    """
    need_sig, need_enc = _uses_rp_keys(config) if config else (True, True)
    sig_algs = rp_signing_algs(config) if config else CONFIG_OPTIONS.default("rp_signing_algs")
    jwe_algs = _rp_jwe_algs(config) if config else _PREFERRED_JWE
    family = ("ES",) if kty == "EC" else ("RS", "PS")
    sig = next((a for a in sig_algs if a.startswith(family)), None) if need_sig else None
    enc = (
        next((a for a in jwe_algs if (a in _RSA_JWE) == (kty == "RSA")), None) if need_enc else None
    )
    if (need_sig and sig is None) or (need_enc and enc is None):
        where = config.key("rp_signing_algs" if sig is None else "jwe_algs") if config else "kty"
        raise ConfigError(f"the provider accepts no {kty} key algorithm", key=where)
    return sig, enc


def generate_rp_keys(
    config: ProviderConfig | None = None, *, kty: Literal["RSA", "EC"] = "RSA"
) -> dict[str, Any]:
    """A fresh private JWKS for an RP: a signing and an encryption key, as needed.

    Separate keys per ``use`` with distinct kids (PROF-02), each bound to the one
    ``alg`` the provider of ``config`` accepts (:func:`rp_key_algs`): for FTN through
    Telia RS256 and RSA-OAEP. Without a config: PS256 and RSA-OAEP-256. Store the
    result as a secret (file readable only by the service, or an environment
    variable) and publish :func:`rp_public_jwks` to the provider.
    """
    sig_alg, enc_alg = rp_key_algs(config, kty)
    if config is not None and sig_alg is None and enc_alg is None:
        raise ConfigError(
            "this provider uses no RP keys (no private_key_jwt, request objects or encryption)",
            key=config.key("client_auth"),
        )
    keys: list[Key] = []
    if sig_alg is not None:
        keys.append(Key.generate(kty, use="sig", alg=sig_alg))
    if enc_alg is not None:
        crv = "P-256" if kty == "EC" else None
        keys.append(Key.generate(kty, use="enc", alg=enc_alg, crv=crv))
    return {"keys": [k.private_jwk() for k in keys]}


def check_rp_keys(config: ProviderConfig, keys: KeySet) -> None:
    """Refuse RP keys bound to an algorithm the provider does not accept.

    Such a key can never work: a request object or client assertion it signs is
    refused by the OP, and a token the OP encrypts with the algorithm it supports
    finds no matching key. The error names the key (kid), so ``check-config``
    points at the exact key to replace.
    """
    where = config.key("rp_keys_env" if config.get("rp_keys_env") else "rp_keys")
    sig_algs = rp_signing_algs(config)
    jwe_algs = _rp_jwe_algs(config)
    for k in keys.keys:
        if k.alg is None:
            continue
        accepted = sig_algs if k.use == "sig" else jwe_algs
        if k.alg not in accepted:
            raise ConfigError(
                f"key {k.kid} has alg {k.alg}, which the provider does not accept "
                f"(accepted for use {k.use}: {', '.join(accepted)})",
                key=where,
            )


def _private_keyset(document: Any, key: str) -> KeySet:
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ConfigError("must be a JWKS with private keys", key=key)
    keys: list[Key] = []
    for member in document["keys"]:
        try:
            k = Key.from_jwk(member)
        except InvalidInput as exc:
            raise ConfigError(f"contains an unusable key ({exc.code})", key=key) from None
        if not k.is_private or k.use not in ("sig", "enc"):
            raise ConfigError("every key must be private and have use sig or enc", key=key)
        keys.append(k)
    if len({k.kid for k in keys}) != len(keys):
        raise ConfigError("key ids must be unique", key=key)
    return KeySet(keys)


def load_rp_keys(config: ProviderConfig) -> KeySet | None:
    """The RP's private keys: ``rp_keys_env`` (JWKS JSON), ``rp_keys`` (a file path),
    or, in the simulator environment only, a JWKS table injected by the simulator."""
    return _load_private_keys(config, "rp_keys")


def _load_private_keys(config: ProviderConfig, name: str) -> KeySet | None:
    """A private JWKS from ``<name>_env``, a file path ``<name>`` or (simulator) inline."""
    env_name = config.get(f"{name}_env")
    if env_name:
        raw = config.secret(name)
        try:
            document = json.loads(raw or "")
        except ValueError:
            raise ConfigError("is not JSON", key=config.key(f"{name}_env")) from None
        return _private_keyset(document, config.key(f"{name}_env"))
    value = config.get(name)
    if value is None:
        return None
    if isinstance(value, Mapping):
        if config.environment != "simulator":
            raise ConfigError("inline keys are only allowed in the simulator", key=config.key(name))
        return _private_keyset(value, config.key(name))
    if not isinstance(value, str):
        raise ConfigError("must be a file path", key=config.key(name))
    try:
        document = json.loads(Path(value).read_text("utf-8"))
    except OSError:
        raise ConfigError("file cannot be read", key=config.key(name)) from None
    except ValueError:
        raise ConfigError("file is not JSON", key=config.key(name)) from None
    return _private_keyset(document, config.key(name))


def rp_public_jwks(config: ProviderConfig, settings: Settings | None = None) -> dict[str, Any]:
    """The RP's public JWKS to publish (middleware route, ``authbroker keys``)."""
    keys = load_rp_keys(config)
    if keys is None:
        raise ConfigError("no RP keys are configured", key=config.key("rp_keys"))
    return keys.to_public_jwks()


#: OpenID Federation 1.0, "Signed JWK Set": the JWT ``typ`` and the HTTP media type.
SIGNED_JWKS_TYP = "jwk-set+jwt"
SIGNED_JWKS_MEDIA_TYPE = "application/jwk-set+jwt"


def signed_rp_jwks(
    config: ProviderConfig, keys: KeySet | None = None, *, now: float | None = None
) -> str:
    """The RP's public JWKS as a signed JWT (OpenID Federation 1.0 ``signed_jwks_uri``,
    https://openid.net/specs/openid-federation-1_0.html#name-signed-jwk-set).

    Traficom requires it for FTN when RP keys rotate automatically (Telia's guide,
    https://github.com/JarmoTelia/tunnistus): the provider trusts a JWKS it fetches
    only through the signature of a long-lived *federation* key registered with it
    out of band, so that key (``federation_keys`` / ``federation_keys_env``) is never
    one of the RP keys it vouches for. Claims: ``iss`` = ``sub`` = the RP's entity id
    (``entity_id``, default ``client_id``), ``iat``, ``exp`` (``signed_jwks_lifetime``
    seconds, default one day) and ``keys``; header ``typ: jwk-set+jwt``; signed with an
    algorithm the provider accepts (``rp_signing_algs``; Telia: RS256).
    """
    keys = keys if keys is not None else load_rp_keys(config)
    if keys is None or not len(keys):
        raise ConfigError("no RP keys are configured", key=config.key("rp_keys"))
    federation = _load_private_keys(config, "federation_keys")
    if federation is None:
        raise ConfigError(
            "a federation signing key is required for a signed JWKS",
            key=config.key("federation_keys"),
        )
    accepted = rp_signing_algs(config)
    own = {k.kid for k in keys.keys}
    for signer in federation.keys:
        if signer.use != "sig" or signer.kid in own:
            continue
        for alg in (signer.alg,) if signer.alg else accepted:
            if alg in accepted and signer._fits(alg, "sig"):
                entity = config.get("entity_id") or config.require("client_id")
                issued = int(time.time() if now is None else now)
                lifetime = int(_read_one(config, "signed_jwks_lifetime"))
                claims = {
                    "iss": str(entity),
                    "sub": str(entity),
                    "iat": issued,
                    "exp": issued + lifetime,
                    "keys": keys.to_public_jwks()["keys"],
                }
                return sign_jwt(claims, signer, alg=alg, headers={"typ": SIGNED_JWKS_TYP})
    raise ConfigError(
        f"no federation signing key (apart from the RP keys) for {', '.join(accepted)}",
        key=config.key("federation_keys"),
    )


def decrypt_nested_token(rp_keys: KeySet, opts: OidcOptions, token: str, what: str) -> str:
    """The inner JWS of a nested JWE sent to the RP (ID token, logout token, UserInfo).

    Decrypted with the RP's own keys and the agreed algorithms (JOSE-06); the caller
    verifies the JWS it returns. ``what`` names the token in errors.
    """
    if not any(k.use == "enc" for k in rp_keys.keys):
        raise InvalidInput(f"{what} is encrypted but no key was agreed", code="unexpected_jwe")
    _, plaintext = decrypt_jwe(token, rp_keys, algorithms=opts.jwe_algs, encryptions=opts.jwe_encs)
    try:
        inner = plaintext.decode("ascii")
    except UnicodeDecodeError:
        inner = ""
    # JOSE-07: the plaintext must be a JWS; bare JSON encrypted to our public key
    # could come from anyone.
    if inner.count(".") != 2 or inner.startswith("{"):
        raise InvalidInput(f"encrypted {what} does not contain a JWS", code="not_nested")
    return inner
