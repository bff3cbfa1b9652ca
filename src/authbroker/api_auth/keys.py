"""Keys, algorithms and integration credentials.

RFC 9421 §3.2 / §7.3.6: the verifier decides the algorithm from the key it has on
record, never from the message. Each key type here has exactly one algorithm, so an
Ed25519 key can never be used as an HMAC secret (the key-confusion attack of
§7.3.4) and a signature cannot pick a weaker algorithm. HMAC secrets are their own
type (:class:`HmacSecret`), never raw ``bytes``, so they cannot be mistaken for a
public key either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import TypeAlias

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import ConfigError, InvalidSignature

__all__ = [
    "ALG_ECDSA_P256",
    "ALG_ED25519",
    "ALG_HMAC",
    "ApiKey",
    "HmacSecret",
    "IntegrationCredential",
    "KeyResolver",
    "MemoryKeyRegistry",
    "ResolvedKey",
    "SigningKey",
    "VerifyingKey",
    "algorithm_of",
    "load_private_key",
    "load_public_key",
    "sign_base",
    "verify_base",
]

ALG_HMAC = "hmac-sha256"  # RFC 9421 §3.3.3
ALG_ED25519 = "ed25519"  # RFC 9421 §3.3.6
ALG_ECDSA_P256 = "ecdsa-p256-sha256"  # RFC 9421 §3.3.4
_P256_COORD = 32
#: RFC 2104 / NIST SP 800-107: a key shorter than the hash output weakens HMAC.
MIN_HMAC_SECRET = 32


class HmacSecret:
    """A shared integration secret; its value never appears in a repr or log."""

    __slots__ = ("_secret",)

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_HMAC_SECRET:
            raise ConfigError(f"an HMAC secret needs at least {MIN_HMAC_SECRET} bytes")
        self._secret = secret

    @classmethod
    def from_base64(cls, value: str) -> HmacSecret:
        try:
            return cls(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ConfigError("the HMAC secret is not valid Base64") from exc

    def mac(self, data: bytes) -> bytes:
        return hmac.new(self._secret, data, hashlib.sha256).digest()

    def fingerprint(self) -> str:
        """A non-secret identifier of the secret (for operators comparing configs)."""
        return hashlib.sha256(b"authbroker-hmac-fp\x00" + self._secret).hexdigest()[:16]

    def __repr__(self) -> str:
        return "HmacSecret(<redacted>)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, HmacSecret) and hmac.compare_digest(self._secret, other._secret)

    def __hash__(self) -> int:
        return hash(self.fingerprint())


SigningKey: TypeAlias = HmacSecret | ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey
VerifyingKey: TypeAlias = HmacSecret | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey


def algorithm_of(key: SigningKey | VerifyingKey) -> str:
    """The one RFC 9421 algorithm a key is used with."""
    if isinstance(key, HmacSecret):
        return ALG_HMAC
    if isinstance(key, ed25519.Ed25519PrivateKey | ed25519.Ed25519PublicKey):
        return ALG_ED25519
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if isinstance(key.curve, ec.SECP256R1):
            return ALG_ECDSA_P256
        raise ConfigError("only P-256 ECDSA keys are supported", code="unsupported_key")
    raise ConfigError("unsupported key type for API signatures", code="unsupported_key")


def sign_base(key: SigningKey, base: bytes) -> bytes:
    """Sign a signature base (RFC 9421 §3.3); ECDSA output is raw r‖s (§3.3.4)."""
    algorithm = algorithm_of(key)
    if isinstance(key, HmacSecret):
        return key.mac(base)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(base)
    if isinstance(key, ec.EllipticCurvePrivateKey) and algorithm == ALG_ECDSA_P256:
        r, s = decode_dss_signature(key.sign(base, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(_P256_COORD, "big") + s.to_bytes(_P256_COORD, "big")
    raise ConfigError("a public key cannot sign", code="unsupported_key")


def verify_base(key: VerifyingKey, base: bytes, signature: bytes) -> None:
    """Raise :class:`InvalidSignature` unless ``signature`` is valid for ``base``."""
    algorithm = algorithm_of(key)
    try:
        if isinstance(key, HmacSecret):
            if not hmac.compare_digest(key.mac(base), signature):
                raise _CryptoInvalidSignature
            return
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, base)
            return
        if isinstance(key, ec.EllipticCurvePublicKey) and algorithm == ALG_ECDSA_P256:
            # §3.3.4: exactly 64 bytes, r and s as 32-byte big-endian integers.
            if len(signature) != 2 * _P256_COORD:
                raise _CryptoInvalidSignature
            r = int.from_bytes(signature[:_P256_COORD], "big")
            s = int.from_bytes(signature[_P256_COORD:], "big")
            key.verify(encode_dss_signature(r, s), base, ec.ECDSA(hashes.SHA256()))
            return
    except (_CryptoInvalidSignature, ValueError) as exc:
        raise InvalidSignature("the request signature is not valid", code="bad_signature") from exc
    raise ConfigError("a private key was registered where a public key belongs")


def load_public_key(pem: str | bytes) -> VerifyingKey:
    """A registered client public key from PEM (Ed25519 or P-256)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise ConfigError("not a PEM public key") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey):
        raise ConfigError(
            "only Ed25519 and P-256 public keys are supported", code="unsupported_key"
        )
    algorithm_of(key)
    return key


def load_private_key(pem: str | bytes, password: bytes | None = None) -> SigningKey:
    """A client signing key from PEM (Ed25519 or P-256)."""
    data = pem.encode("ascii") if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=password)
    except (ValueError, TypeError) as exc:
        raise ConfigError("not a usable PEM private key") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey):
        raise ConfigError(
            "only Ed25519 and P-256 private keys are supported", code="unsupported_key"
        )
    algorithm_of(key)
    return key


# --- credentials ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IntegrationCredential:
    """Who calls: a partner's integration acting as one user of the service.

    ``companies`` is the static set of companies (organisation ids) the credential may
    touch; ``None`` leaves the decision entirely to the application's company
    resolver. Both are checked when both are given.
    """

    credential_id: str
    partner_id: str
    user_id: str
    companies: frozenset[str] | None = None
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class ApiKey:
    """One key of a credential. A credential has several during a rotation.

    ``not_after`` retires a key gracefully (old key still accepted until then);
    ``revoked`` ends it at once.
    """

    key_id: str
    credential_id: str
    key: VerifyingKey = field(repr=False)
    not_before: float | None = None
    not_after: float | None = None
    revoked: bool = False

    @property
    def algorithm(self) -> str:
        return algorithm_of(self.key)


@dataclass(frozen=True, slots=True)
class ResolvedKey:
    key: ApiKey
    credential: IntegrationCredential


#: ``resolve(key_id)``: the key and its credential, or None when unknown. May be async.
KeyResolver: TypeAlias = Callable[[str], "ResolvedKey | Awaitable[ResolvedKey | None] | None"]


class MemoryKeyRegistry:
    """An in-process credential/key registry (tests, small deployments, the demo).

    Production applications usually resolve keys from their own database: any
    callable ``key_id -> ResolvedKey | None`` (sync or async) does. This class shows
    the life cycle: add, rotate (several active keys), retire, revoke.
    """

    def __init__(self, *, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._lock = threading.Lock()
        self._credentials: dict[str, IntegrationCredential] = {}
        self._keys: dict[str, ApiKey] = {}

    def add_credential(self, credential: IntegrationCredential) -> None:
        with self._lock:
            if credential.credential_id in self._credentials:
                raise ConfigError("credential id already registered")
            self._credentials[credential.credential_id] = credential

    def add_key(self, key: ApiKey) -> None:
        algorithm_of(key.key)
        if not isinstance(
            key.key, HmacSecret | ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey
        ):
            raise ConfigError("register the public key, not the private key")
        with self._lock:
            if key.credential_id not in self._credentials:
                raise ConfigError("add the credential before its keys")
            if key.key_id in self._keys:
                # Key ids are never reused: a signature must name exactly one key.
                raise ConfigError("key id already registered")
            self._keys[key.key_id] = key

    def rotate(self, new_key: ApiKey, *, retire: str | None = None, grace: float = 0.0) -> None:
        """Add ``new_key``; the key ``retire`` stays valid for ``grace`` more seconds."""
        self.add_key(new_key)
        if retire is not None:
            self.retire_key(retire, self._now() + grace)

    def retire_key(self, key_id: str, not_after: float) -> None:
        with self._lock:
            key = self._require_key(key_id)
            self._keys[key_id] = replace(key, not_after=not_after)

    def revoke_key(self, key_id: str) -> None:
        with self._lock:
            self._keys[key_id] = replace(self._require_key(key_id), revoked=True)

    def revoke_credential(self, credential_id: str) -> None:
        with self._lock:
            credential = self._credentials.get(credential_id)
            if credential is None:
                raise ConfigError("unknown credential id")
            self._credentials[credential_id] = replace(credential, revoked=True)

    def keys_of(self, credential_id: str) -> list[ApiKey]:
        with self._lock:
            return [k for k in self._keys.values() if k.credential_id == credential_id]

    def resolve(self, key_id: str) -> ResolvedKey | None:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None:
                return None
            return ResolvedKey(key=key, credential=self._credentials[key.credential_id])

    __call__ = resolve

    def _require_key(self, key_id: str) -> ApiKey:
        key = self._keys.get(key_id)
        if key is None:
            raise ConfigError("unknown key id")
        return key

    @classmethod
    def of(
        cls,
        credentials: Iterable[IntegrationCredential],
        keys: Iterable[ApiKey],
        *,
        now: Callable[[], float] = time.time,
    ) -> MemoryKeyRegistry:
        registry = cls(now=now)
        for credential in credentials:
            registry.add_credential(credential)
        for key in keys:
            registry.add_key(key)
        return registry
