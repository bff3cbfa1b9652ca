"""Keys and key sets: import, generation, thumbprints and JOSE-02 selection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from joserfc.errors import JoseError as _JoseError
from joserfc.jwk import ECKey, JWKRegistry, OctKey, OKPKey, RSAKey
from joserfc.jwk import Key as _JoseKey

from ...errors import (
    AuthBrokerError,
    ConfigError,
    InvalidInput,
    ProviderError,
)
from .algorithms import (
    _EC_CRVS,
    _ECDH_CRVS,
    _ENC_OPS,
    _JWE_ALG_KTY,
    _OKP_CRVS,
    _PRIVATE_MEMBERS,
    _SIG_ALGS,
    _SIG_OPS,
)
from .limits import (
    MAX_JWKS_KEYS,
    MIN_OWN_RSA_BITS,
    MIN_RSA_BITS,
)

__all__ = ["Key", "KeyNotFound", "KeySet"]


class KeyNotFound(InvalidInput):
    """No usable key fits the token (unknown ``kid`` or no compatible key)."""

    default_code = "key_not_found"


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
    """An immutable set of keys with JOSE-02 selection rules.

    Selection is memoized per (kid, alg, use, private): the set never changes, so a
    key once selected for a combination is the answer every time (a rotation brings
    a new :class:`KeySet`, and with it an empty memo). Only successes are stored, so
    the memo holds at most one entry per key and algorithm a selection accepted, and
    a token naming unknown kids or refused algorithms adds nothing to it.
    """

    __slots__ = ("_by_kid", "_selected", "keys")

    def __init__(self, keys: Iterable[Key] = ()) -> None:
        self.keys: tuple[Key, ...] = tuple(keys)
        by_kid: dict[str, list[Key]] = {}
        for key in self.keys:
            by_kid.setdefault(key.kid, []).append(key)
        self._by_kid = {k: tuple(v) for k, v in by_kid.items()}
        self._selected: dict[tuple[str | None, str, str, bool], Key] = {}

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
        memo = (kid, alg, use, private)
        key = self._selected.get(memo)
        if key is not None:
            return key
        found = self._candidates(kid, alg, use, private=private)
        if len(found) == 1:
            self._selected[memo] = found[0]
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
