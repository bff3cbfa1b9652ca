"""Keys of the OpenID Provider simulator and of the RP it serves (pooled per process)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable

from ....config import ProviderConfig
from ....crypto.jose import Key, KeySet
from ....providers.oidc import generate_rp_keys, rp_key_algs

# Generated keys are shared by simulators of one process (RSA generation is slow);
# each simulator still has its own issuer, so tokens do not verify across them.
_POOL: dict[str, Key] = {}
_POOL_LOCK = threading.Lock()


def unbound(key: Key, kid: str) -> Key:
    """The same key material without a fixed alg (one RSA key signs RS256 and PS256)."""
    full = key.private_jwk() if key.is_private else key.public_jwk()
    jwk = {k: v for k, v in full.items() if k != "alg"}
    jwk["kid"] = kid
    return Key.from_jwk(jwk)


def pooled(name: str, factory: Callable[[], Key]) -> Key:
    with _POOL_LOCK:
        key = _POOL.get(name)
        if key is None:
            key = _POOL[name] = factory()
        return key


def rsa_key(use: str, kid: str) -> Key:
    alg = "PS256" if use == "sig" else "RSA-OAEP-256"
    return unbound(Key.generate("RSA", use=use, alg=alg), kid)  # type: ignore[arg-type]


def rp_keys(config: ProviderConfig) -> KeySet:
    """The RP's keys exactly as ``authbroker keys generate --provider`` makes them
    (pooled per algorithm pair: RSA generation is slow); none if it needs none."""
    sig_alg, enc_alg = rp_key_algs(config)
    if sig_alg is None and enc_alg is None:
        return KeySet()
    name = f"rp-keys-{sig_alg}-{enc_alg}"
    with _POOL_LOCK:
        members = [k for k in (_POOL.get(f"{name}-sig"), _POOL.get(f"{name}-enc")) if k]
        if not members:
            for member in generate_rp_keys(config)["keys"]:
                _POOL[f"{name}-{member['use']}"] = key = Key.from_jwk(member)
                members.append(key)
        return KeySet(members)


def extra_key(i: int) -> Key:
    return pooled(f"op-extra-{i}", lambda: rsa_key("sig", f"op-extra-{i}"))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
