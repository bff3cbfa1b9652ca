"""Compact JWS: strict parsing, signature verification and signing.

Signatures are verified with ``cryptography`` on the key object cached in
:class:`~authbroker.crypto.jose.keys.Key`, after the raw string has been checked
(length, segments, header size), every segment decoded as strict base64url and the
header parsed as strict JSON; only then is a key chosen (JOSE-05).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Collection, Mapping
from typing import Any, cast

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ...errors import (
    ConfigError,
    InvalidInput,
    InvalidSignature,
)
from .algorithms import (
    _EC_BYTES,
    _ECDSA,
    _NEVER,
    _PKCS1,
    _PSS,
    _SHA,
    _SIG_ALGS,
    _allowed,
    _check_alg,
    _check_common_header,
)
from .codec import _b64d, _b64e, _is_compact, _json_object, _parse_header
from .keys import Key, KeySet
from .limits import (
    MAX_JWE_CHARS,
    MAX_JWS_CHARS,
)

__all__ = ["peek_header", "sign_jwt", "verify_jws", "verify_jwt"]


#: (protected header, JWS Signing Input, payload bytes, signature bytes). A plain
#: tuple: this is built on every token, and a NamedTuple's ``__new__`` is Python code.
_Jws = tuple[dict[str, Any], bytes, bytes, bytes]


def _parse_jws(token: str, max_size: int) -> _Jws:
    """Split and decode a compact JWS (RFC 7515 §7.1) before any key is chosen.

    JOSE-05: the type and size are checked on the raw string, then each of the three
    segments is decoded strictly (:func:`~.codec._b64d` refuses any character outside
    the base64url alphabet, so a token with one is ``malformed`` before anything
    else is looked at). The payload is only decoded here; it is parsed as JSON after
    the signature has verified.
    """
    if not isinstance(token, str):
        raise InvalidInput("token is not a string", code="malformed")
    if len(token) > max_size:
        raise InvalidInput("token exceeds the size limit", code="too_large")
    # Exactly two dots, the header non-empty (three finds: memchr, no list).
    dot1 = token.find(".")
    dot2 = token.find(".", dot1 + 1)
    if dot1 <= 0 or dot2 < 0 or token.find(".", dot2 + 1) >= 0:
        raise InvalidInput("token is not a compact JWS", code="malformed")
    header = _parse_header(token[:dot1])
    payload = _b64d(token[dot1 + 1 : dot2])
    signature = _b64d(token[dot2 + 1 :])
    # Every segment decoded, so the token is ASCII: the JWS Signing Input is its
    # text up to the second dot (RFC 7515 §5.2 step 8).
    return header, token[:dot2].encode("ascii"), payload, signature


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
    header, signing_input, payload, signature = _parse_jws(token, max_size)
    alg, kid = _header_alg(header, allowed)
    key = keys._select(kid, alg, "sig", private=False)
    _verify_signature(key, alg, signing_input, signature)
    return header, payload


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
    if not _is_compact(token, 3) and not _is_compact(token, 5):
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
