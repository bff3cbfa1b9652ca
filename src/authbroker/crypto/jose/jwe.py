"""Compact JWE: decryption with uniform failures (JOSE-06..09) and encryption.

Decryption runs on ``cryptography`` directly (:mod:`.jwe_crypto`): it is on the
RP's hot path for every encrypted ID token, and going through joserfc's generic
objects cost about as much as the RSA work itself. Encryption is used only by the
simulators and tests and stays on joserfc, with an explicit per-call registry that
knows no compression; round trips in the tests therefore check our decryption
against an independent implementation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from joserfc import jwe as _jwe
from joserfc.errors import JoseError as _JoseError
from joserfc.jwe import JWERegistry

from ...errors import (
    ConfigError,
    InvalidInput,
)
from .algorithms import (
    _JWE_ALG_KTY,
    _JWE_ENCS,
    _NEVER,
    _allowed,
    _check_alg,
    _check_common_header,
)
from .codec import _b64d, _is_compact, _parse_header
from .jwe_crypto import _Failed, decrypt_content, unwrap_cek
from .jws import verify_jwt
from .keys import Key, KeySet
from .limits import (
    MAX_JWE_CHARS,
    MAX_PBES2_COUNT,
)

__all__ = ["decrypt_jwe", "decrypt_nested", "encrypt_jwe"]


class _Registry(JWERegistry):
    """Per-call joserfc registry for encryption: no compression (JOSE-05)."""

    algorithms = {  # noqa: RUF012 - deliberately replaces the shared class registry
        "alg": dict(JWERegistry.algorithms["alg"]),
        "enc": dict(JWERegistry.algorithms["enc"]),
        "zip": {},
    }


def _decrypt_failed() -> InvalidInput:
    # JOSE-09: one class, one code, one message for every post-header failure.
    return InvalidInput("token could not be decrypted", code="decrypt_failed")


def _jwe_header(token: str, max_size: int) -> dict[str, Any]:
    if not isinstance(token, str):
        raise InvalidInput("token is not a string", code="malformed")
    if len(token) > max_size:
        raise InvalidInput("token exceeds the size limit", code="too_large")
    if not _is_compact(token, 5):
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
    h64, ek64, iv64, ct64, tag64 = token.split(".")
    try:
        ek, iv, ct, tag = _b64d(ek64), _b64d(iv64), _b64d(ct64), _b64d(tag64)
    except InvalidInput as exc:
        raise _decrypt_failed() from exc
    aad = h64.encode("ascii")  # RFC 7516 §5.2 step 14: ASCII(BASE64URL(header))
    for key in candidates:
        if alg.startswith("ECDH-ES") and not _epk_matches(header, key):
            continue
        cek = unwrap_cek(header, key, alg, enc, ek)
        try:
            return header, decrypt_content(enc, cek, aad, iv, ct, tag)
        except _Failed:
            continue
    raise _decrypt_failed()


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
    if not _is_compact(inner, 3):
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
