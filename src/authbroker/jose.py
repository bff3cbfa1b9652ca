"""JOSE boundary: keys, JWS/JWT verification, JWE decryption, JWKS caching.

This is the only module of authbroker that imports joserfc. Everything JOSE-shaped
that comes from outside (provider tokens, JWKS documents, encrypted ID tokens) enters
through here and leaves either as plain Python values or as an
:class:`~authbroker.errors.AuthBrokerError`; no joserfc, cryptography, binascii or
json exception escapes (development rules).

Design choices (requirements JOSE-01..JOSE-09 of docs/security-model.md):

* JWS signatures are verified here with ``cryptography`` on the public key object
  cached inside :class:`Key`, after our own strict parsing of the compact string.
  The raw string is checked (length, segment count, header size, base64url
  alphabet) before anything is decoded (JOSE-05), the header is parsed as strict
  JSON (no duplicate members, no NaN, bounded depth) and only then is a key
  chosen. That keeps the hot path close to a bare ``verify`` call and removes any
  library behaviour we do not control from signature checking.
* joserfc is used for key import/export, thumbprints and JWE (after the same
  pre-checks), with an explicit per-call algorithm registry.
* Trust never comes from the token: ``jwk``, ``jku``, ``x5u``, ``x5c``, ``x5t`` are
  never read (JOSE-03); ``crit`` and ``b64`` are refused (JOSE-04); ``zip`` is
  refused (JOSE-05).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Final, Literal, NamedTuple, cast
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from joserfc import jwe as _jwe

# The RSA key-transport model is not re-exported by joserfc.jwa; pinned joserfc<2.
from joserfc._rfc7518.jwe_algs import RSAAlgKeyEncryption
from joserfc.errors import DecodeError as _JoseDecodeError
from joserfc.errors import JoseError as _JoseError
from joserfc.jwe import JWERegistry
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.jwk import Key as _JoseKey

from .errors import (
    AuthBrokerError,
    ConfigError,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    ProviderUnavailable,
)
from .flow import Gen, fetch
from .http import HttpRequest

__all__ = [
    "DEFAULT_JWE_ALGORITHMS",
    "DEFAULT_JWE_ENCRYPTIONS",
    "MAX_HEADER_CHARS",
    "MAX_JWE_CHARS",
    "MAX_JWS_CHARS",
    "JwksCache",
    "Key",
    "KeyNotFound",
    "KeySet",
    "decrypt_jwe",
    "decrypt_nested",
    "encrypt_jwe",
    "peek_header",
    "sign_jwt",
    "verify_jws",
    "verify_jwt",
]

# --- limits (JOSE-05 of docs/security-model.md) -------------------

#: Compact JWS larger than this is refused before decoding (JOSE-05, class C4).
MAX_JWS_CHARS: Final = 16 * 1024
#: Compact JWE larger than this is refused before decoding.
MAX_JWE_CHARS: Final = 64 * 1024
#: Encoded protected header larger than this is refused.
MAX_HEADER_CHARS: Final = 2 * 1024
#: Maximum nesting of JSON containers in a header or claims set.
MAX_JSON_DEPTH: Final = 16
#: Maximum number of JSON values (members + array items) in a header or claims set.
MAX_JSON_NODES: Final = 1000
#: Maximum number of keys a JWKS may hold (JOSE-12).
MAX_JWKS_KEYS: Final = 100
#: Maximum size of a JWKS document in bytes (JOSE-12).
MAX_JWKS_BYTES: Final = 256 * 1024
#: Minimum RSA modulus accepted from peers (JOSE-13, FAPI2 §5.4.1).
MIN_RSA_BITS: Final = 2048
#: Minimum RSA modulus of keys we generate ourselves (ASVS 11.2.3).
MIN_OWN_RSA_BITS: Final = 3072
#: PBES2 iteration cap (only if a caller enables PBES2 explicitly): attacker-chosen p2c
#: must not become a CPU amplifier.
MAX_PBES2_COUNT: Final = 10_000

#: JOSE-06 default JWE allow-lists.
DEFAULT_JWE_ALGORITHMS: Final = frozenset(
    {"RSA-OAEP", "RSA-OAEP-256", "ECDH-ES", "ECDH-ES+A128KW", "ECDH-ES+A256KW"}
)
DEFAULT_JWE_ENCRYPTIONS: Final = frozenset({"A128CBC-HS256", "A256CBC-HS512", "A128GCM", "A256GCM"})

# --- algorithm tables -------------------------------------------------------------------

_SHA = {256: hashes.SHA256(), 384: hashes.SHA384(), 512: hashes.SHA512()}


class _SigAlg(NamedTuple):
    family: Literal["RS", "PS", "ES", "Ed", "HS"]
    kty: str
    crvs: frozenset[str] | None  # None: any (RSA, oct)
    bits: int  # hash size; EC: also selects the curve


_SIG_ALGS: Final[dict[str, _SigAlg]] = {
    **{f"RS{n}": _SigAlg("RS", "RSA", None, n) for n in (256, 384, 512)},
    **{f"PS{n}": _SigAlg("PS", "RSA", None, n) for n in (256, 384, 512)},
    "ES256": _SigAlg("ES", "EC", frozenset({"P-256"}), 256),
    "ES384": _SigAlg("ES", "EC", frozenset({"P-384"}), 384),
    "ES512": _SigAlg("ES", "EC", frozenset({"P-521"}), 512),
    # RFC 8037 "EdDSA" and the fully specified RFC 9864 "Ed25519".
    "EdDSA": _SigAlg("Ed", "OKP", frozenset({"Ed25519"}), 0),
    "Ed25519": _SigAlg("Ed", "OKP", frozenset({"Ed25519"}), 0),
    **{f"HS{n}": _SigAlg("HS", "oct", None, n) for n in (256, 384, 512)},
}

_PSS = {
    n: padding.PSS(mgf=padding.MGF1(_SHA[n]), salt_length=_SHA[n].digest_size)
    for n in (256, 384, 512)
}
_PKCS1 = padding.PKCS1v15()
_ECDSA = {n: ec.ECDSA(_SHA[n]) for n in (256, 384, 512)}
_EC_BYTES = {"P-256": 32, "P-384": 48, "P-521": 66}

_ECDH_CRVS: Final = frozenset({"P-256", "P-384", "P-521", "X25519"})
_JWE_ALG_KTY: Final[dict[str, tuple[str, ...]]] = {
    "RSA-OAEP": ("RSA",),
    "RSA-OAEP-256": ("RSA",),
    "ECDH-ES": ("EC", "OKP"),
    "ECDH-ES+A128KW": ("EC", "OKP"),
    "ECDH-ES+A192KW": ("EC", "OKP"),
    "ECDH-ES+A256KW": ("EC", "OKP"),
    # Only when a caller lists them explicitly (JOSE-06):
    "dir": ("oct",),
    "A128KW": ("oct",),
    "A192KW": ("oct",),
    "A256KW": ("oct",),
    "A128GCMKW": ("oct",),
    "A192GCMKW": ("oct",),
    "A256GCMKW": ("oct",),
    "PBES2-HS256+A128KW": ("oct",),
    "PBES2-HS384+A192KW": ("oct",),
    "PBES2-HS512+A256KW": ("oct",),
}
_JWE_ENCS: Final = frozenset(
    {"A128CBC-HS256", "A192CBC-HS384", "A256CBC-HS512", "A128GCM", "A192GCM", "A256GCM"}
)
#: Never accepted, whatever the caller lists (ASVS 11.3.1, Appendix C: PKCS#1 v1.5
#: key transport is a padding oracle; JOSE-01: "none").
_NEVER: Final = frozenset({"none", "rsa1_5"})

_EC_CRVS: Final = frozenset({"P-256", "P-384", "P-521"})
_OKP_CRVS: Final = frozenset({"Ed25519", "X25519"})
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_SIG_OPS: Final = frozenset({"sign", "verify"})
_ENC_OPS: Final = frozenset(
    {"encrypt", "decrypt", "wrapKey", "unwrapKey", "deriveKey", "deriveBits"}
)

_JWS_RE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_JWE_RE = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*){4}")
# Last character of a canonical unpadded base64url string whose length is 2 or 3 mod 4:
# the unused low bits must be zero (RFC 4648 §3.5), so a token has one spelling.
_B64_TO_STD = bytes.maketrans(b"-_", b"+/")
_B64_LAST_OK = {2: frozenset("AQgw"), 3: frozenset("AEIMQUYcgkosw048")}


class KeyNotFound(InvalidInput):
    """No usable key fits the token (unknown ``kid`` or no compatible key)."""

    default_code = "key_not_found"


# --- small helpers ----------------------------------------------------------------------


def _b64d(segment: str) -> bytes:
    """Strict base64url (no padding, canonical) decode of an alphabet-checked segment."""
    rem = len(segment) & 3
    if rem == 1 or (rem and segment[-1] not in _B64_LAST_OK[rem]):
        raise InvalidInput("token segment is not canonical base64url", code="bad_encoding")
    try:
        padded = (segment + "=" * (-len(segment) & 3)).encode("ascii")
        return binascii.a2b_base64(padded.translate(_B64_TO_STD))
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput("token segment is not base64url", code="bad_encoding") from exc


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")  # RFC 7519 §4 / JOSE-14
    return obj


def _bad_constant(name: str) -> Any:
    raise ValueError("non-finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("non-finite number")
    return value


_DECODER = json.JSONDecoder(
    object_pairs_hook=_no_dupes, parse_constant=_bad_constant, parse_float=_finite_float
)


def _check_shape(value: Any) -> None:
    """Bound nesting and size of parsed JSON (JOSE-05: depth and claim count)."""
    if (
        type(value) is dict
        and len(value) <= MAX_JSON_NODES
        and not any(type(v) in (dict, list) for v in value.values())
    ):
        return  # flat object: the common case, nothing to walk
    stack: list[tuple[Any, int]] = [(value, 1)]
    nodes = 0
    while stack:
        item, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            raise InvalidInput("JSON nested too deeply", code="json_too_deep")
        if isinstance(item, dict):
            nodes += len(item)
            stack.extend((v, depth + 1) for v in item.values() if isinstance(v, dict | list))
        elif isinstance(item, list):
            nodes += len(item)
            stack.extend((v, depth + 1) for v in item if isinstance(v, dict | list))
        if nodes > MAX_JSON_NODES:
            raise InvalidInput("JSON has too many members", code="json_too_large")


def _json_object(raw: bytes, what: str) -> dict[str, Any]:
    """Strict UTF-8 JSON object: no BOM, duplicates, NaN; bounded depth and size."""
    try:
        value = _DECODER.decode(raw.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInput(f"{what} is not valid JSON", code="bad_json") from exc
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} is not a JSON object", code="bad_json")
    _check_shape(value)
    return value


def _allowed(algorithms: Collection[str] | str, what: str) -> Collection[str]:
    if isinstance(algorithms, str) or not algorithms:
        # A bare string would turn "RS256" into {"R", "S", ...}; an empty list means
        # the caller forgot the allow-list. Both are programming errors.
        raise ConfigError(f"{what} must be a non-empty collection of names", code="alg_list")
    return algorithms


def _check_alg(alg: Any, allowed: Collection[str], table: Mapping[str, Any]) -> str:
    if not isinstance(alg, str):
        raise InvalidInput("token header has no valid alg", code="bad_header")
    # JOSE-01: "none" in any spelling is refused even when listed.
    if alg.lower() in _NEVER:
        raise InvalidInput("token algorithm is refused", code="alg_refused")
    if alg not in allowed or alg not in table:
        raise InvalidInput("token algorithm is not allowed", code="alg_not_allowed")
    return alg


def _check_common_header(header: Mapping[str, Any]) -> str | None:
    # JOSE-04: we implement no extension, so any crit is unsupported (RFC 7515
    # §4.1.11); unencoded payloads (RFC 7797) are never accepted.
    if "crit" in header:
        raise InvalidInput("token declares critical extensions", code="crit_unsupported")
    if "b64" in header and header["b64"] is not True:
        raise InvalidInput("unencoded payloads are not accepted", code="b64_unsupported")
    kid = header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise InvalidInput("token kid is not a string", code="bad_header")
    return kid


# --- keys -------------------------------------------------------------------------------


class Key:
    """One JWK, with the parsed key objects cached for fast repeated use.

    ``repr`` never shows key material. Build with :meth:`generate`,
    :meth:`from_jwk`, :meth:`from_pem` or :meth:`from_secret`.
    """

    __slots__ = (
        "_crv",
        "_jk",
        "_key_ops",
        "_priv",
        "_pub",
        "_rsa_bits",
        "_secret",
        "alg",
        "kid",
        "kty",
        "use",
    )

    kid: str
    kty: str
    alg: str | None
    use: str | None

    def __init__(self, jk: _JoseKey, *, kid: str | None, use: str | None, alg: str | None) -> None:
        """Wrap a joserfc key; prefer the classmethod constructors."""
        self._jk = jk
        self.kty = jk.key_type
        self.use = use
        self.alg = alg
        self._priv: Any = None
        self._pub: Any = None
        self._secret: bytes | None = None
        self._crv: str | None = None
        self._rsa_bits = 0
        ops = jk.get("key_ops")
        self._key_ops: frozenset[str] | None = (
            frozenset(ops)
            if isinstance(ops, list) and all(isinstance(o, str) for o in ops)
            else None
        )
        if isinstance(jk, OctKey):
            self._secret = jk.raw_value
        elif isinstance(jk, RSAKey):
            self._pub = jk.public_key
            self._priv = jk.private_key
            self._rsa_bits = self._pub.key_size
            if self._rsa_bits < MIN_RSA_BITS:
                raise InvalidInput("RSA key is too short", code="weak_key")
        elif isinstance(jk, ECKey):
            self._crv = jk.curve_name
            if self._crv not in _EC_CRVS:
                raise InvalidInput("EC curve is not supported", code="unsupported_key")
            self._pub = jk.public_key
            self._priv = jk.private_key
        elif isinstance(jk, OKPKey):
            self._crv = jk.curve_name
            if self._crv not in _OKP_CRVS:
                raise InvalidInput("OKP curve is not supported", code="unsupported_key")
            self._pub = jk.public_key
            self._priv = jk.private_key
        else:  # pragma: no cover - joserfc only has the four types above
            raise InvalidInput("key type is not supported", code="unsupported_key")
        self.kid = kid if kid else jk.thumbprint()

    # constructors ---------------------------------------------------------------------

    @classmethod
    def generate(
        cls,
        kty: Literal["RSA", "EC", "OKP"],
        *,
        use: Literal["sig", "enc"],
        alg: str,
        kid: str | None = None,
        size: int | None = None,
        crv: str | None = None,
    ) -> Key:
        """New private key. kid defaults to the RFC 7638 thumbprint."""
        try:
            jk: _JoseKey
            if kty == "RSA":
                bits = size or MIN_OWN_RSA_BITS
                if bits < MIN_OWN_RSA_BITS:
                    raise ConfigError("RSA keys we generate need 3072 bits", code="weak_key")
                jk = RSAKey.generate_key(bits, private=True)
            elif kty == "EC":
                sig = _SIG_ALGS.get(alg)
                default = next(iter(sig.crvs)) if sig and sig.crvs else "P-256"
                curve = crv or default
                if curve not in _EC_CRVS:
                    raise ConfigError("unsupported EC curve", code="unsupported_key")
                jk = ECKey.generate_key(cast(Any, curve), private=True)
            elif kty == "OKP":
                curve = crv or ("X25519" if use == "enc" else "Ed25519")
                if curve not in _OKP_CRVS:
                    raise ConfigError("unsupported OKP curve", code="unsupported_key")
                jk = OKPKey.generate_key(cast(Any, curve), private=True)
            else:
                raise ConfigError("unsupported key type", code="unsupported_key")
        except (_JoseError, ValueError, TypeError) as exc:
            raise ConfigError("key generation failed", code="keygen") from exc
        key = cls(jk, kid=kid, use=use, alg=alg)
        if not key._fits(alg, use):
            raise ConfigError("alg does not fit the key type", code="alg_key_mismatch")
        return key

    @classmethod
    def from_jwk(cls, jwk: Mapping[str, Any]) -> Key:
        """Import one JWK; :class:`InvalidInput` on anything unusable."""
        if not isinstance(jwk, Mapping):
            raise InvalidInput("JWK is not an object", code="bad_jwk")
        kty = jwk.get("kty")
        if kty not in ("RSA", "EC", "OKP", "oct"):
            raise InvalidInput("JWK type is not supported", code="unsupported_key")
        kid, use, alg = jwk.get("kid"), jwk.get("use"), jwk.get("alg")
        if kid is not None and not isinstance(kid, str):
            raise InvalidInput("JWK kid is not a string", code="bad_jwk")
        if use is not None and use not in ("sig", "enc"):
            raise InvalidInput("JWK use is not supported", code="bad_jwk")
        if alg is not None and not isinstance(alg, str):
            raise InvalidInput("JWK alg is not a string", code="bad_jwk")
        crv = jwk.get("crv")
        crvs = _EC_CRVS if kty == "EC" else _OKP_CRVS if kty == "OKP" else None
        if crvs is not None and not (isinstance(crv, str) and crv in crvs):
            raise InvalidInput("JWK curve is not supported", code="unsupported_key")
        n = jwk.get("n")
        if kty == "RSA" and isinstance(n, str) and len(n) < 342:  # < 256 bytes: < 2048 bits
            raise InvalidInput("RSA key is too short", code="weak_key")
        try:
            jk = JWKRegistry.import_key(dict(jwk), cast(Any, kty))
            return cls(jk, kid=kid, use=use, alg=alg)
        except AuthBrokerError:
            raise
        except Exception as exc:  # joserfc, cryptography, binascii: all mean "bad JWK"
            raise InvalidInput("JWK could not be imported", code="bad_jwk") from exc

    @classmethod
    def from_pem(
        cls,
        pem: bytes,
        *,
        use: Literal["sig", "enc"],
        alg: str,
        kid: str | None = None,
        password: bytes | None = None,
    ) -> Key:
        """Import a PEM public or private key (SPKI, PKCS#8 or traditional)."""
        try:
            raw: Any
            if b"PRIVATE KEY" in pem:
                raw = serialization.load_pem_private_key(pem, password=password)
            else:
                raw = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise InvalidInput("PEM key could not be loaded", code="bad_pem") from exc
        jk: _JoseKey
        if isinstance(raw, rsa.RSAPrivateKey | rsa.RSAPublicKey):
            jk = RSAKey(raw, raw)
        elif isinstance(raw, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
            jk = ECKey(raw, raw)
        elif isinstance(
            raw,
            ed25519.Ed25519PrivateKey
            | ed25519.Ed25519PublicKey
            | x25519.X25519PrivateKey
            | x25519.X25519PublicKey,
        ):
            jk = OKPKey(raw, raw)
        else:
            raise InvalidInput("PEM key type is not supported", code="unsupported_key")
        try:
            return cls(jk, kid=kid, use=use, alg=alg)
        except AuthBrokerError:
            raise
        except Exception as exc:
            raise InvalidInput("PEM key is not supported", code="unsupported_key") from exc

    @classmethod
    def from_secret(cls, secret: bytes, *, alg: str, kid: str | None = None) -> Key:
        """Symmetric key (``client_secret`` for HS*, or a JWE ``dir``/KW key).

        The only way to obtain an ``oct`` key: JWKS documents never yield one
        (JOSE-01: HMAC keys never come from a JWKS).
        """
        if not isinstance(secret, bytes) or not secret:
            raise ConfigError("secret must be non-empty bytes", code="bad_secret")
        spec = _SIG_ALGS.get(alg)
        if spec is not None and spec.family == "HS" and len(secret) * 8 < spec.bits:
            # RFC 7518 §3.2: an HMAC key must be at least as long as the hash output.
            raise ConfigError("secret is too short for this algorithm", code="weak_key")
        use = "sig" if spec is not None else "enc"
        return cls(OctKey(secret, secret), kid=kid or "secret", use=use, alg=alg)

    # accessors ------------------------------------------------------------------------

    @property
    def is_private(self) -> bool:
        return self._priv is not None or self._secret is not None

    @property
    def crv(self) -> str | None:
        return self._crv

    def _params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kid": self.kid}
        if self.use:
            out["use"] = self.use
        if self.alg:
            out["alg"] = self.alg
        return out

    def public_jwk(self) -> dict[str, Any]:
        """Public members plus kid/use/alg (for publishing a JWKS)."""
        if self.kty == "oct":
            raise ConfigError("symmetric keys have no public form", code="no_public_key")
        data = {k: v for k, v in self._jk.as_dict(private=False).items() if k != "key_ops"}
        data.update(self._params())
        return data

    def private_jwk(self) -> dict[str, Any]:
        """Full private JWK (for persisting our own keys; handle as a secret)."""
        if not self.is_private:
            raise ConfigError("this key has no private part", code="no_private_key")
        data = dict(self._jk.as_dict(private=True))
        data.update(self._params())
        return data

    def __repr__(self) -> str:
        return (
            f"Key(kid={self.kid!r}, kty={self.kty!r}, crv={self._crv!r}, alg={self.alg!r}, "
            f"use={self.use!r}, private={self.is_private})"
        )

    # selection ------------------------------------------------------------------------

    def _fits(self, alg: str, use: str) -> bool:
        """Whether this key may be used with ``alg`` for ``use`` (JOSE-02, JOSE-13)."""
        if self.use is not None and self.use != use:
            return False
        # PyJWT CVE-2026-48523: a key bound to an alg is never used with another.
        if self.alg is not None and self.alg != alg:
            return False
        if self._key_ops is not None and not (
            self._key_ops & (_SIG_OPS if use == "sig" else _ENC_OPS)
        ):
            return False
        if use == "sig":
            spec = _SIG_ALGS.get(alg)
            if spec is None or spec.kty != self.kty:
                return False
            if spec.crvs is not None and self._crv not in spec.crvs:
                return False
            if spec.family == "HS":
                # RFC 7518 §3.2: the key must be at least as long as the hash.
                return self._secret is not None and len(self._secret) * 8 >= spec.bits
            return True
        ktys = _JWE_ALG_KTY.get(alg)
        if ktys is None or self.kty not in ktys:
            return False
        if self.kty in ("EC", "OKP"):
            return self._crv in _ECDH_CRVS
        return True


class KeySet:
    """An immutable set of keys with JOSE-02 selection rules."""

    __slots__ = ("_by_kid", "keys")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self.keys: tuple[Key, ...] = tuple(keys)
        by_kid: dict[str, list[Key]] = {}
        for key in self.keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {k: tuple(v) for k, v in by_kid.items()}

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any],
        *,
        max_keys: int = MAX_JWKS_KEYS,
        provider: str | None = None,
    ) -> KeySet:
        """Import a provider's public JWKS, skipping members we cannot use (JOSE-02).

        Skipped: unknown ``kty`` (``AKP``, made-up types), unknown curves, weak RSA,
        unparseable members and ``oct`` keys (a JWKS is public: an HMAC key in it is
        never trusted, JOSE-01).

        A member carrying private key material (``d``, ``p``, ``q``, ``dp``, ``dq``,
        ``qi``, ``oth``, or ``k`` of a symmetric key) is refused outright with
        :class:`ProviderError` naming ``provider``: the provider has published its
        secret, so its keys can no longer prove anything and an operator must know
        (RFC 7517 §9.2, https://www.rfc-editor.org/rfc/rfc7517#section-9.2 ; a JWKS
        at a jwks_uri holds public keys, OIDC Core §10.1). Silently stripping them
        would keep trusting a compromised key.
        """
        if not isinstance(jwks, Mapping) or not isinstance(jwks.get("keys"), list):
            raise InvalidInput("document is not a JWKS", code="bad_jwks")
        members = jwks["keys"]
        if len(members) > max_keys:
            raise InvalidInput("JWKS has too many keys", code="jwks_too_large")
        if any(isinstance(m, Mapping) and not _PRIVATE_MEMBERS.isdisjoint(m) for m in members):
            name = provider or "unknown"
            raise ProviderError(
                f"JWKS of provider {name} publishes private key material",
                code="jwks_private_key",
                details={"provider": name},
            )
        keys: list[Key] = []
        for member in members:
            if not isinstance(member, Mapping) or member.get("kty") == "oct":
                continue
            try:
                keys.append(Key.from_jwk(member))
            except InvalidInput:
                continue
        return cls(keys)

    def to_public_jwks(self) -> dict[str, Any]:
        return {"keys": [k.public_jwk() for k in self.keys if k.kty != "oct"]}

    def has_kid(self, kid: str) -> bool:
        return kid in self._by_kid

    def __len__(self) -> int:
        return len(self.keys)

    def __repr__(self) -> str:
        return f"KeySet({[k.kid for k in self.keys]!r})"

    def select(self, *, kid: str | None, alg: str, use: str = "sig") -> Key:
        """The one key for (kid, alg, use), following JOSE-02.

        With a kid: exact match only. Without: the unique key whose type, curve,
        use and alg fit. Several fitting keys → ``ambiguous_key``; none →
        :class:`KeyNotFound`.
        """
        return self._select(kid, alg, use, private=False)

    def _select(self, kid: str | None, alg: str, use: str, *, private: bool) -> Key:
        found = self._candidates(kid, alg, use, private=private)
        if len(found) == 1:
            return found[0]
        raise InvalidInput("several keys fit the token", code="ambiguous_key")

    def _candidates(self, kid: str | None, alg: str, use: str, *, private: bool) -> list[Key]:
        """Every key that fits (kid, alg, use), at least one; else :class:`KeyNotFound`."""
        if kid is not None:
            pool = self._by_kid.get(kid)
            if pool is None:
                raise KeyNotFound("no key with this kid", code="unknown_kid")
        else:
            pool = self.keys
        if len(pool) == 1:  # fast path: the common case of a unique kid
            key = pool[0]
            if key._fits(alg, use) and (not private or key.is_private):
                return [key]
            raise KeyNotFound("no key fits the token algorithm", code="no_matching_key")
        found = [k for k in pool if k._fits(alg, use) and (not private or k.is_private)]
        if not found:
            raise KeyNotFound("no key fits the token algorithm", code="no_matching_key")
        return found


# --- JWS --------------------------------------------------------------------------------


class _Jws(NamedTuple):
    header: dict[str, Any]
    signing_input: bytes
    payload_b64: str
    signature: bytes


def _parse_jws(token: str, max_size: int) -> _Jws:
    # JOSE-05: shape checks on the raw string before any decoding.
    if not isinstance(token, str):
        raise InvalidInput("token is not a string", code="malformed")
    if len(token) > max_size:
        raise InvalidInput("token exceeds the size limit", code="too_large")
    if _JWS_RE.fullmatch(token) is None:
        raise InvalidInput("token is not a compact JWS", code="malformed")
    h64, p64, s64 = token.split(".")
    header = _parse_header(h64)
    signature = _b64d(s64)
    return _Jws(header, f"{h64}.{p64}".encode("ascii"), p64, signature)


#: Parsed headers by their exact encoded form. One issuer signs thousands of tokens
#: with the same few headers, so this removes a base64 + JSON parse from the hot path.
#: Keyed by the full string, so a hit is exactly what a parse would return; bounded,
#: and cleared wholesale when full so a flood of distinct headers costs nothing extra.
_HEADER_CACHE: dict[str, dict[str, Any]] = {}
_HEADER_CACHE_SIZE: Final = 256


def _parse_header(h64: str) -> dict[str, Any]:
    cached = _HEADER_CACHE.get(h64)
    if cached is not None:
        return dict(cached)  # callers get their own copy
    if len(h64) > MAX_HEADER_CHARS:
        raise InvalidInput("token header exceeds the size limit", code="too_large")
    header = _json_object(_b64d(h64), "token header")
    if any(isinstance(v, dict | list) for v in header.values()):
        return header  # nested members could be mutated through a shallow copy
    if len(_HEADER_CACHE) >= _HEADER_CACHE_SIZE:
        _HEADER_CACHE.clear()
    _HEADER_CACHE[h64] = header
    return dict(header)


def _verify_signature(key: Key, alg: str, data: bytes, sig: bytes) -> None:
    spec = _SIG_ALGS[alg]
    try:
        if spec.family == "RS":
            key._pub.verify(sig, data, _PKCS1, _SHA[spec.bits])
        elif spec.family == "PS":
            key._pub.verify(sig, data, _PSS[spec.bits], _SHA[spec.bits])
        elif spec.family == "ES":
            # RFC 7518 §3.4: fixed-length R || S, never DER.
            n = _EC_BYTES[cast(str, key._crv)]
            if len(sig) != 2 * n:
                raise _CryptoInvalidSignature
            r = int.from_bytes(sig[:n], "big")
            s = int.from_bytes(sig[n:], "big")
            key._pub.verify(encode_dss_signature(r, s), data, _ECDSA[spec.bits])
        elif spec.family == "Ed":
            key._pub.verify(sig, data)
        else:
            secret = cast(bytes, key._secret)
            mac = hmac.new(secret, data, f"sha{spec.bits}").digest()
            if not hmac.compare_digest(mac, sig):
                raise _CryptoInvalidSignature
    except (_CryptoInvalidSignature, ValueError, TypeError) as exc:
        raise InvalidSignature("token signature does not verify", code="bad_signature") from exc


def _verify_parsed(parsed: _Jws, key: Key, alg: str) -> bytes:
    _verify_signature(key, alg, parsed.signing_input, parsed.signature)
    return _b64d(parsed.payload_b64)


def _header_alg(header: Mapping[str, Any], algorithms: Collection[str]) -> tuple[str, str | None]:
    alg = _check_alg(header.get("alg"), algorithms, _SIG_ALGS)
    if "enc" in header or "zip" in header:
        raise InvalidInput("token header is not a JWS header", code="bad_header")
    return alg, _check_common_header(header)


def verify_jws(
    token: str,
    keys: KeySet,
    *,
    algorithms: Collection[str],
    max_size: int = MAX_JWS_CHARS,
) -> tuple[dict[str, Any], bytes]:
    """Verify a compact JWS; return (protected header, payload bytes)."""
    allowed = _allowed(algorithms, "algorithms")
    parsed = _parse_jws(token, max_size)
    alg, kid = _header_alg(parsed.header, allowed)
    key = keys._select(kid, alg, "sig", private=False)
    return parsed.header, _verify_parsed(parsed, key, alg)


def verify_jwt(
    token: str,
    keys: KeySet,
    *,
    algorithms: Collection[str],
    max_size: int = MAX_JWS_CHARS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Verify a signed JWT; return (header, claims). Claims are not validated here."""
    header, payload = verify_jws(token, keys, algorithms=algorithms, max_size=max_size)
    return header, _json_object(payload, "token payload")


def peek_header(token: str, max_size: int = MAX_JWE_CHARS) -> dict[str, Any]:
    """Decode the protected header of a compact JWS or JWE without trusting it.

    Use it to choose between :func:`verify_jwt` and :func:`decrypt_jwe`; a JWE header
    has ``enc``. Nothing in the result is authenticated.
    """
    if not isinstance(token, str):
        raise InvalidInput("token is not a string", code="malformed")
    if len(token) > max_size:
        raise InvalidInput("token exceeds the size limit", code="too_large")
    if _JWS_RE.fullmatch(token) is None and _JWE_RE.fullmatch(token) is None:
        raise InvalidInput("token is not a compact JWS or JWE", code="malformed")
    # The same bounded header cache as verification: peeking and then verifying the
    # same token decodes its header once.
    return _parse_header(token.split(".", 1)[0])


def _default_alg(key: Key) -> str:
    if key.alg:
        return key.alg
    if key.kty == "RSA":
        return "PS256"
    if key.kty == "EC":
        return {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512"}[cast(str, key._crv)]
    if key.kty == "OKP":
        return "EdDSA"
    return "HS256"


def _sign(key: Key, alg: str, data: bytes) -> bytes:
    spec = _SIG_ALGS[alg]
    priv = key._priv
    if spec.family == "RS":
        return cast(bytes, priv.sign(data, _PKCS1, _SHA[spec.bits]))
    if spec.family == "PS":
        return cast(bytes, priv.sign(data, _PSS[spec.bits], _SHA[spec.bits]))
    if spec.family == "ES":
        r, s = decode_dss_signature(priv.sign(data, _ECDSA[spec.bits]))
        n = _EC_BYTES[cast(str, key._crv)]
        return r.to_bytes(n, "big") + s.to_bytes(n, "big")
    if spec.family == "Ed":
        return cast(bytes, priv.sign(data))
    return hmac.new(cast(bytes, key._secret), data, f"sha{spec.bits}").digest()


def sign_jwt(
    claims: Mapping[str, Any],
    key: Key,
    *,
    alg: str | None = None,
    headers: Mapping[str, Any] | None = None,
    include_kid: bool = True,
) -> str:
    """Sign claims as a compact JWS. ``typ`` and other members go in ``headers``.

    ``include_kid=False`` leaves ``kid`` out of the header (simulators publishing
    kid-less JWKS, conformance cases ``rp-id_token-kid-absent-*``).
    """
    alg = alg or _default_alg(key)
    if alg.lower() in _NEVER or alg not in _SIG_ALGS:
        raise ConfigError("signing algorithm is not supported", code="alg_not_allowed")
    if not key.is_private or not key._fits(alg, "sig"):
        raise ConfigError("key cannot sign with this algorithm", code="alg_key_mismatch")
    header: dict[str, Any] = {"alg": alg, "kid": key.kid}
    if headers:
        for name in ("alg", "crit", "b64", "zip", "enc"):
            if name in headers and not (name == "alg" and headers[name] == alg):
                raise ConfigError(f"header {name} cannot be set here", code="bad_header")
        header.update(headers)
    if not include_kid:
        header.pop("kid", None)
    try:
        h64 = _b64e(json.dumps(header, separators=(",", ":"), allow_nan=False).encode())
        p64 = _b64e(json.dumps(dict(claims), separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidInput("claims are not JSON-serializable", code="bad_claims") from exc
    signing_input = f"{h64}.{p64}"
    return f"{signing_input}.{_b64e(_sign(key, alg, signing_input.encode('ascii')))}"


# --- JWE --------------------------------------------------------------------------------


class _UniformRsaOaep(RSAAlgKeyEncryption):
    """RSA-OAEP whose key-unwrap failure is indistinguishable from a bad tag.

    RFC 7516 §11.5: on a CEK decryption failure, continue with a random CEK so the
    failure surfaces only at the authentication-tag check, in the same way and at
    about the same time as any other corruption (JOSE-09, no padding oracle).
    Returning a CEK of the wrong length makes joserfc substitute a random one.
    """

    def decrypt_cek(self, recipient: Any) -> bytes:
        try:
            return super().decrypt_cek(recipient)
        except _JoseDecodeError:
            return secrets.token_bytes(1)


class _Registry(JWERegistry):
    """Per-call JWE registry with our uniform-failure RSA-OAEP models."""

    algorithms = {  # noqa: RUF012 - deliberately replaces the shared class registry
        "alg": {
            **JWERegistry.algorithms["alg"],
            **{
                name: _UniformRsaOaep(
                    name,
                    model.description,
                    cast(RSAAlgKeyEncryption, model).padding,
                    model.recommended,
                )
                for name, model in JWERegistry.algorithms["alg"].items()
                if name in ("RSA-OAEP", "RSA-OAEP-256")
            },
        },
        "enc": dict(JWERegistry.algorithms["enc"]),
        "zip": {},  # JOSE-05: compression is never accepted
    }


def _decrypt_failed() -> InvalidInput:
    # JOSE-09: one class, one code, one message for every post-header failure.
    return InvalidInput("token could not be decrypted", code="decrypt_failed")


def _jwe_header(token: str, max_size: int) -> dict[str, Any]:
    if not isinstance(token, str):
        raise InvalidInput("token is not a string", code="malformed")
    if len(token) > max_size:
        raise InvalidInput("token exceeds the size limit", code="too_large")
    if _JWE_RE.fullmatch(token) is None:
        raise InvalidInput("token is not a compact JWE", code="malformed")
    # The same bounded header cache as verification: peeking and then verifying the
    # same token decodes its header once.
    return _parse_header(token.split(".", 1)[0])


def _check_jwe_header(
    header: Mapping[str, Any], algorithms: Collection[str], encryptions: Collection[str]
) -> tuple[str, str, str | None]:
    alg = _check_alg(header.get("alg"), algorithms, _JWE_ALG_KTY)
    enc = header.get("enc")
    if not isinstance(enc, str) or enc not in encryptions or enc not in _JWE_ENCS:
        raise InvalidInput("token encryption is not allowed", code="enc_not_allowed")
    if "zip" in header:
        raise InvalidInput("compressed tokens are not accepted", code="zip_unsupported")
    if alg.startswith("PBES2"):
        p2c = header.get("p2c")
        if not isinstance(p2c, int) or isinstance(p2c, bool) or not 1000 <= p2c <= MAX_PBES2_COUNT:
            raise InvalidInput("PBES2 count out of range", code="bad_header")
    return alg, enc, _check_common_header(header)


def _epk_matches(header: Mapping[str, Any], key: Key) -> bool:
    """JOSE-08: the ephemeral key must be a public key on the recipient's curve."""
    epk = header.get("epk")
    return (
        isinstance(epk, Mapping)
        and epk.get("kty") == key.kty
        and epk.get("crv") == key._crv
        and "d" not in epk
    )


def decrypt_jwe(
    token: str,
    keys: KeySet,
    *,
    algorithms: Collection[str],
    encryptions: Collection[str],
    max_size: int = MAX_JWE_CHARS,
) -> tuple[dict[str, Any], bytes]:
    """Decrypt a compact JWE; return (protected header, plaintext bytes).

    Header problems (alg/enc not allowed, zip, crit, no key) have their own codes:
    they depend on nothing secret. Every failure after that — wrong key, bad tag,
    bad padding, truncated segments, a bad ``epk`` — is the same
    ``InvalidInput(code="decrypt_failed")`` (JOSE-09).

    Without ``kid``, every private key that fits ``alg`` is tried in turn (RFC 7516
    §4.1.6 makes ``kid`` optional; during a documented RP key rotation two keys
    fit). Each try is a full decryption ending at the authentication tag, and if all
    fail the error is the one above, whichever key failed and how: the order of the
    keys leaks nothing a single-key failure would not.
    """
    allowed_alg = _allowed(algorithms, "algorithms")
    allowed_enc = _allowed(encryptions, "encryptions")
    header = _jwe_header(token, max_size)
    alg, enc, kid = _check_jwe_header(header, allowed_alg, allowed_enc)
    candidates = keys._candidates(kid, alg, "enc", private=True)
    if kid is not None and len(candidates) > 1:
        raise InvalidInput("several keys fit the token", code="ambiguous_key")
    registry = _Registry(algorithms=[alg, enc], strict_check_header=False)
    cause: Exception | None = None
    for key in candidates:
        if alg.startswith("ECDH-ES") and not _epk_matches(header, key):
            continue
        try:
            obj = _jwe.decrypt_compact(token, key._jk, registry=registry)
        except Exception as exc:
            cause = exc
            continue
        if obj.plaintext is not None:  # joserfc always sets it on success
            return header, obj.plaintext
    raise _decrypt_failed() from cause


def decrypt_nested(
    token: str,
    *,
    decryption_keys: KeySet,
    verification_keys: KeySet,
    jwe_algorithms: Collection[str],
    jwe_encryptions: Collection[str],
    jws_algorithms: Collection[str],
    max_size: int = MAX_JWE_CHARS,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Decrypt a nested JWT and verify its inner JWS; return (JWS header, claims).

    JOSE-07 (Core §3.1.3.7 item 1, made MUST): anyone can encrypt to our public
    key, so the plaintext must be a JWS signed by the provider. Bare JSON, or any
    inner token that does not verify, is rejected.
    """
    _, plaintext = decrypt_jwe(
        token,
        decryption_keys,
        algorithms=jwe_algorithms,
        encryptions=jwe_encryptions,
        max_size=max_size,
    )
    try:
        inner = plaintext.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InvalidInput("encrypted token does not contain a JWS", code="not_nested") from exc
    if _JWS_RE.fullmatch(inner) is None:
        raise InvalidInput("encrypted token does not contain a JWS", code="not_nested")
    return verify_jwt(inner, verification_keys, algorithms=jws_algorithms, max_size=max_size)


def encrypt_jwe(
    plaintext: bytes | str,
    key: Key,
    *,
    alg: str,
    enc: str,
    headers: Mapping[str, Any] | None = None,
    include_kid: bool = True,
) -> str:
    """Encrypt to ``key`` as a compact JWE (simulators, tests, nested ID tokens).

    ``include_kid=False`` leaves ``kid`` out (RFC 7516 §4.1.6 makes it optional), as
    some providers do; :func:`decrypt_jwe` then tries each fitting key.
    """
    if alg.lower() in _NEVER or alg not in _JWE_ALG_KTY or enc not in _JWE_ENCS:
        raise ConfigError("JWE algorithm is not supported", code="alg_not_allowed")
    if not key._fits(alg, "enc"):
        raise ConfigError("key cannot encrypt with this algorithm", code="alg_key_mismatch")
    protected: dict[str, Any] = {}
    if headers:
        for name in ("zip", "crit", "alg", "enc"):
            if name in headers:
                raise ConfigError(f"header {name} cannot be set here", code="bad_header")
        protected.update(headers)
    protected.update({"alg": alg, "enc": enc, "kid": key.kid})
    if not include_kid:
        del protected["kid"]
    registry = _Registry(algorithms=[alg, enc], strict_check_header=False)
    try:
        return _jwe.encrypt_compact(protected, plaintext, key._jk, registry=registry)
    except (_JoseError, ValueError, TypeError) as exc:
        raise ConfigError("JWE encryption failed", code="encrypt_failed") from exc


# --- JWKS cache -------------------------------------------------------------------------


def _max_age(cache_control: str) -> float | None:
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(value)
    return None


class JwksCache:
    """One issuer's JWKS, fetched from its configured ``jwks_uri`` only (JOSE-12).

    Keys are cached for ``ttl`` seconds (or the response's ``Cache-Control:
    max-age``, clamped to [``min_refetch_interval``, ``ttl``]). An unknown kid
    triggers one forced refetch, and forced refetches are spaced at least
    ``min_refetch_interval`` apart (R-07), whatever the traffic. A failed fetch
    leaves the cached keys in place until their TTL.

    The cache is sans-I/O: :meth:`key_for` and :meth:`verify_jwt` yield the GET
    (tag ``"jwks"``) and are driven by :func:`authbroker.flow.run_sync` or
    :func:`~authbroker.flow.run_async`. Callers that meet an unknown kid while a
    forced refetch is in flight join it rather than being refused; the GET is marked
    ``shareable`` so the driver turns all of them into one network request.
    """

    def __init__(
        self,
        jwks_uri: str,
        *,
        ttl: float = 3600,
        min_refetch_interval: float = 60,
        now: Callable[[], float] = time.monotonic,
        timeout: float = 10.0,
        provider: str | None = None,
    ) -> None:
        parts = urlsplit(jwks_uri)
        loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
        if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
            # JOSE-12 / FAPI2: JWKS only over TLS (plain HTTP only for loopback simulators).
            raise ConfigError("jwks_uri must use https", key="jwks_uri", code="insecure_url")
        self.jwks_uri = jwks_uri
        #: Named in errors about the documents served (a JWKS with private keys).
        self.provider = provider
        self.ttl = ttl
        self.min_refetch_interval = min_refetch_interval
        self.timeout = timeout
        self._now = now
        self._keys: KeySet | None = None
        self._expires_at = 0.0
        self._last_forced: float | None = None
        self._forcing_since: float | None = None
        #: Number of JWKS fetches started (for tests and metrics).
        self.fetch_count = 0

    def set_keys(self, keyset: KeySet) -> None:
        """Prime the cache (tests, benchmarks, warm start)."""
        self._keys = keyset
        self._expires_at = self._now() + self.ttl

    def _fetch(self) -> Gen[KeySet]:
        self.fetch_count += 1
        request = HttpRequest.get(
            self.jwks_uri,
            headers={"Accept": "application/json"},
            timeout=self.timeout,
            tag="jwks",
            shareable=True,
        )
        response = yield from fetch(request)
        if response.status != 200:
            raise ProviderUnavailable(
                "JWKS endpoint answered with an error",
                code="jwks_unavailable",
                details={"status": response.status},
            )
        if len(response.body) > MAX_JWKS_BYTES:
            raise InvalidInput("JWKS exceeds the size limit", code="jwks_too_large")
        try:
            document = _DECODER.decode(response.body.decode("utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidInput("JWKS is not valid JSON", code="bad_json") from exc
        keyset = KeySet.from_jwks(document, provider=self.provider)
        ttl = self.ttl
        max_age = _max_age(response.headers.get("cache-control", ""))
        if max_age is not None:
            ttl = min(self.ttl, max(self.min_refetch_interval, max_age))
        self._keys = keyset
        self._expires_at = self._now() + ttl
        return keyset

    def key_for(self, header: Mapping[str, Any], *, use: str = "sig") -> Gen[Key]:
        """The key for a token header, fetching or refetching the JWKS as needed."""
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
            raise InvalidInput("token header has no valid alg/kid", code="bad_header")
        keys = self._keys
        fetched = False
        if keys is None or self._now() >= self._expires_at:
            keys = yield from self._fetch()
            fetched = True
        try:
            return keys._select(kid, alg, use, private=False)
        except KeyNotFound as exc:
            # Rotation: only an unknown kid (or, without kid, no fitting key at all)
            # justifies a refetch; a known kid with the wrong alg does not.
            if kid is not None and exc.code != "unknown_kid":
                raise
            if fetched:
                raise KeyNotFound("no key with this kid", code="unknown_kid") from exc
        now = self._now()
        joining = self._forcing_since is not None and now - self._forcing_since < self.timeout
        if (
            not joining
            and self._last_forced is not None
            and now - self._last_forced < self.min_refetch_interval
        ):
            raise KeyNotFound("no key with this kid", code="unknown_kid")
        # Callers arriving while a forced refetch is in flight join it: their GET is
        # marked shareable, so the driver sends one request for all of them.
        if not joining:
            self._forcing_since = now
        self._last_forced = now
        try:
            keys = yield from self._fetch()
        finally:
            self._forcing_since = None
        try:
            return keys._select(kid, alg, use, private=False)
        except KeyNotFound as exc:
            raise KeyNotFound("no key with this kid", code="unknown_kid") from exc

    def verify_jwt(
        self,
        token: str,
        *,
        algorithms: Collection[str],
        max_size: int = MAX_JWS_CHARS,
    ) -> Gen[tuple[dict[str, Any], dict[str, Any]]]:
        """Verify a JWT signed with one of this issuer's keys."""
        allowed = _allowed(algorithms, "algorithms")
        parsed = _parse_jws(token, max_size)
        alg, _ = _header_alg(parsed.header, allowed)  # refuse before any fetch
        key = yield from self.key_for(parsed.header)
        payload = _verify_parsed(parsed, key, alg)
        return parsed.header, _json_object(payload, "token payload")
