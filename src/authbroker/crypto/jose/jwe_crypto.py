"""JWE key management and content decryption on ``cryptography`` directly.

Why not joserfc here: the RP decrypts every encrypted ID token, and joserfc's
generic registry, key and header objects cost about as much as the RSA work
itself. Decryption needs a small, fixed set of primitives (RFC 7518 §4 and §5),
each a few calls into ``cryptography``; writing them here keeps every check in
our hands and the hot path close to the floor. Encryption (simulators and tests
only) stays on joserfc, so every round trip in the test suite is also an
interoperability test between two independent implementations.

Every failure below raises :class:`_Failed`; :mod:`.jwe` turns it into the one
uniform ``decrypt_failed`` error (JOSE-09). A key-unwrap failure never raises
here: :func:`unwrap_cek` substitutes a random CEK so the failure surfaces only at
the tag check, as RFC 7516 §11.5 requires against padding oracles.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, x25519
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.concatkdf import ConcatKDFHash
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

from ...errors import InvalidInput
from .codec import _b64d
from .keys import Key

__all__ = ["ENC_KEY_BYTES", "decrypt_content", "unwrap_cek"]


class _Failed(Exception):
    """Internal: any decryption failure; never leaves :mod:`.jwe`."""


class _Enc(NamedTuple):
    cbc: bool
    key_bytes: int  # CEK length (CBC: MAC key + ENC key, RFC 7518 §5.2.3-5.2.5)
    hash_name: str  # CBC-HS only


# RFC 7518 §5.1 table: https://www.rfc-editor.org/rfc/rfc7518#section-5.1
_ENCS: Final[dict[str, _Enc]] = {
    "A128CBC-HS256": _Enc(True, 32, "sha256"),
    "A192CBC-HS384": _Enc(True, 48, "sha384"),
    "A256CBC-HS512": _Enc(True, 64, "sha512"),
    "A128GCM": _Enc(False, 16, ""),
    "A192GCM": _Enc(False, 24, ""),
    "A256GCM": _Enc(False, 32, ""),
}
#: CEK length in bytes per ``enc`` (RFC 7518 §5.2.3-5.2.5, §5.3).
ENC_KEY_BYTES: Final = {name: spec.key_bytes for name, spec in _ENCS.items()}

_OAEP: Final = {
    # RFC 7518 §4.3: RSA-OAEP is SHA-1 with MGF1-SHA-1 (as OAEP uses it, not a
    # collision-sensitive use; FTN's first choice); RSA-OAEP-256 is SHA-256 both.
    "RSA-OAEP": padding.OAEP(
        mgf=padding.MGF1(hashes.SHA1()),  # noqa: S303
        algorithm=hashes.SHA1(),  # noqa: S303
        label=None,
    ),
    "RSA-OAEP-256": padding.OAEP(
        mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None
    ),
}
_KW_BYTES: Final = {"A128KW": 16, "A192KW": 24, "A256KW": 32}
_EC_CURVES: Final = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
_EC_COORD_BYTES: Final = {"P-256": 32, "P-384": 48, "P-521": 66}
_PBES2: Final = {
    "PBES2-HS256+A128KW": (hashes.SHA256(), 16),
    "PBES2-HS384+A192KW": (hashes.SHA384(), 24),
    "PBES2-HS512+A256KW": (hashes.SHA512(), 32),
}


def _member(header: Mapping[str, Any], name: str) -> bytes:
    """A base64url header member (iv, tag, p2s, apu, apv, epk coordinates)."""
    value = header.get(name)
    if not isinstance(value, str):
        raise _Failed
    try:
        return _b64d(value)
    except InvalidInput as exc:
        raise _Failed from exc


def _epk_public(epk: Mapping[str, Any], crv: str) -> Any:
    """Load the sender's ephemeral public key, on the recipient's curve only.

    JOSE-08 / RFC 7518 §4.6 and §8.4 (invalid-curve attacks,
    https://www.rfc-editor.org/rfc/rfc7518#section-8.4): the point is loaded through
    ``EllipticCurvePublicNumbers.public_key``, which refuses a point not on the curve.
    Coordinates must have exactly the curve's length (RFC 7518 §6.2.1.2).
    """
    if crv == "X25519":
        x = _member(epk, "x")
        if len(x) != 32 or set(epk) - {"kty", "crv", "x", "kid", "alg", "use"}:
            raise _Failed
        return x25519.X25519PublicKey.from_public_bytes(x)
    size = _EC_COORD_BYTES[crv]
    x, y = _member(epk, "x"), _member(epk, "y")
    if len(x) != size or len(y) != size:
        raise _Failed
    numbers = ec.EllipticCurvePublicNumbers(
        int.from_bytes(x, "big"), int.from_bytes(y, "big"), _EC_CURVES[crv]
    )
    return numbers.public_key()  # ValueError when the point is not on the curve


def _length_prefixed(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _ecdh_key(header: Mapping[str, Any], key: Key, alg: str, enc: str) -> bytes:
    """ECDH-ES key agreement and Concat KDF (RFC 7518 §4.6.2, NIST SP 800-56A §5.8.1)."""
    epk = header.get("epk")
    if not isinstance(epk, Mapping) or key._crv is None:
        raise _Failed
    peer = _epk_public(epk, key._crv)
    if key._crv == "X25519":
        shared = key._priv.exchange(peer)
        # RFC 7748 §6.1: an all-zero output means a small-order point; abort.
        if not any(shared):
            raise _Failed
    else:
        shared = key._priv.exchange(ec.ECDH(), peer)
    direct = alg == "ECDH-ES"
    algorithm_id = enc if direct else alg
    length = ENC_KEY_BYTES[enc] if direct else _KW_BYTES[alg.removeprefix("ECDH-ES+")]
    apu = _member(header, "apu") if "apu" in header else b""
    apv = _member(header, "apv") if "apv" in header else b""
    otherinfo = (
        _length_prefixed(algorithm_id.encode("ascii"))
        + _length_prefixed(apu)
        + _length_prefixed(apv)
        + (length * 8).to_bytes(4, "big")
    )
    return ConcatKDFHash(hashes.SHA256(), length, otherinfo).derive(shared)


def _unwrap(header: Mapping[str, Any], key: Key, alg: str, enc: str, ek: bytes) -> bytes:
    if alg in _OAEP:
        return bytes(key._priv.decrypt(ek, _OAEP[alg]))
    if alg.startswith("ECDH-ES"):
        derived = _ecdh_key(header, key, alg, enc)
        if alg == "ECDH-ES":
            if ek:  # RFC 7516 §5.2 step 10: direct agreement has an empty encrypted key
                raise _Failed
            return derived
        return aes_key_unwrap(derived, ek)
    secret = key._secret
    if secret is None:
        raise _Failed
    if alg == "dir":
        if ek:
            raise _Failed
        return secret
    if alg in _KW_BYTES:
        if len(secret) != _KW_BYTES[alg]:
            raise _Failed
        return aes_key_unwrap(secret, ek)
    if alg.endswith("GCMKW"):  # RFC 7518 §4.7
        iv, tag = _member(header, "iv"), _member(header, "tag")
        if len(secret) != _KW_BYTES[alg.removesuffix("GCMKW") + "KW"]:
            raise _Failed
        if len(iv) != 12 or len(tag) != 16:
            raise _Failed
        return AESGCM(secret).decrypt(iv, ek + tag, None)
    if alg in _PBES2:  # RFC 7518 §4.8; the count was range-checked with the header
        digest, size = _PBES2[alg]
        p2s = _member(header, "p2s")
        if len(p2s) < 8:  # RFC 7518 §4.8.1.1: a salt of 8 or more octets MUST be used
            raise _Failed
        kdf = PBKDF2HMAC(digest, size, alg.encode("ascii") + b"\0" + p2s, header["p2c"])
        return aes_key_unwrap(kdf.derive(secret), ek)
    raise _Failed


def unwrap_cek(header: Mapping[str, Any], key: Key, alg: str, enc: str, ek: bytes) -> bytes:
    """The content-encryption key, or a random one of the right length on any failure.

    RFC 7516 §11.5 (https://www.rfc-editor.org/rfc/rfc7516#section-11.5): a failed
    key unwrap (OAEP padding, AES-KW integrity, a bad ``epk``) must not be
    distinguishable from a bad tag, so it continues with a random CEK and fails
    only at the authentication tag, like every other corruption (JOSE-09).
    ``dir`` with a key of the wrong length is treated the same way.
    """
    size = ENC_KEY_BYTES[enc]
    try:
        cek = _unwrap(header, key, alg, enc, ek)
    except Exception:
        cek = b""
    if len(cek) != size:
        return secrets.token_bytes(size)
    return cek


def decrypt_content(enc: str, cek: bytes, aad: bytes, iv: bytes, ct: bytes, tag: bytes) -> bytes:
    """Authenticated decryption of the JWE ciphertext (RFC 7518 §5.2 and §5.3).

    AES_CBC_HMAC_SHA2 (§5.2.2.2): the tag is checked first, in constant time, over
    AAD || IV || C || AL where AL is the AAD length in bits as a 64-bit big-endian
    integer; only an authentic ciphertext is decrypted and unpadded, so padding
    errors are never observable (no padding oracle). AES-GCM (§5.3) checks its tag
    inside ``cryptography``'s AEAD. Raises :class:`_Failed` on any failure.
    """
    spec = _ENCS[enc]
    if len(cek) != spec.key_bytes:
        raise _Failed
    if spec.cbc:
        half = spec.key_bytes // 2
        mac_key, enc_key = cek[:half], cek[half:]
        al = (len(aad) * 8).to_bytes(8, "big")
        mac = hmac.new(mac_key, aad + iv + ct + al, spec.hash_name).digest()[:half]
        ok = hmac.compare_digest(mac, tag)
        if not ok or len(iv) != 16 or not ct or len(ct) % 16:
            raise _Failed
        decryptor = Cipher(algorithms.AES(enc_key), modes.CBC(iv)).decryptor()
        padded = decryptor.update(ct) + decryptor.finalize()
        # PKCS#7 (RFC 5652 §6.3): authenticated already, so a constant-time unpad is
        # not needed for secrecy; still checked strictly.
        pad = padded[-1]
        if not 1 <= pad <= 16 or padded[-pad:] != bytes([pad]) * pad:
            raise _Failed
        return padded[:-pad]
    if len(iv) != 12 or len(tag) != 16:
        raise _Failed
    try:
        return AESGCM(cek).decrypt(iv, ct + tag, aad)
    except Exception as exc:
        raise _Failed from exc
