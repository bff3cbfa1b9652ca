"""Published JWE test vectors: our decryption against outside truth (JOSE-06..09).

The vectors in tests/data/jose/jwe-vectors.json come from RFC 7516 Appendix A.3
(https://www.rfc-editor.org/rfc/rfc7516#appendix-A.3), RFC 7520 §5
(https://www.rfc-editor.org/rfc/rfc7520#section-5) and the JOSE cookbook's X25519
example; each entry names its source. Every vector must decrypt to the published
plaintext when its algorithms are allowed, and every tampered part of it must end
in the one uniform ``decrypt_failed`` error.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from authbroker.crypto.jose import Key, KeySet, decrypt_jwe
from authbroker.crypto.jose.jwe_crypto import decrypt_content
from authbroker.errors import InvalidInput

VECTORS: list[dict[str, Any]] = json.loads(
    (Path(__file__).parents[1] / "data" / "jose" / "jwe-vectors.json").read_text("utf-8")
)["vectors"]
REFUSED = {"RFC 7520 §5.1": "alg_refused", "RFC 7520 §5.9": "zip_unsupported"}
DECRYPTABLE = [v for v in VECTORS if v["section"] not in REFUSED]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def _key(vector: dict[str, Any]) -> Key:
    raw = vector["key"]
    if isinstance(raw, str):  # RFC 7520 §5.3: a password for PBES2
        return Key.from_secret(raw.encode("utf-8"), alg=vector["alg"], kid="pwd")
    jwk = {k: v for k, v in raw.items() if k not in ("use", "alg")}
    if jwk["kty"] == "oct":
        return Key.from_secret(_unb64(jwk["k"]), alg=vector["alg"], kid=jwk.get("kid"))
    return Key.from_jwk({**jwk, "use": "enc", "alg": vector["alg"]})


def _decrypt(token: str, vector: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    return decrypt_jwe(
        token,
        KeySet([_key(vector)]),
        algorithms=[vector["alg"], "RSA1_5"] if "RSA1_5" in vector["alg"] else [vector["alg"]],
        encryptions=[vector["enc"]],
    )


@pytest.mark.parametrize("vector", DECRYPTABLE, ids=lambda v: v["section"])
def test_vector_decrypts_to_published_plaintext(vector: dict[str, Any]) -> None:
    header, plaintext = _decrypt(vector["compact"], vector)
    assert plaintext == vector["plaintext"].encode("utf-8")
    assert header["alg"] == vector["alg"] and header["enc"] == vector["enc"]


@pytest.mark.parametrize("vector", DECRYPTABLE, ids=lambda v: v["section"])
@pytest.mark.parametrize("part", [1, 2, 3, 4])
def test_vector_tampered_part_fails_uniformly(vector: dict[str, Any], part: int) -> None:
    """Flip one bit of each of encrypted key, IV, ciphertext and tag (JOSE-09)."""
    parts = vector["compact"].split(".")
    raw = _unb64(parts[part])
    if not raw:  # dir / ECDH-ES: the encrypted key must stay empty; add a byte instead
        parts[part] = _b64(b"\0")
    else:
        parts[part] = _b64(raw[:-1] + bytes([raw[-1] ^ 1]))
    with pytest.raises(InvalidInput) as info:
        _decrypt(".".join(parts), vector)
    assert info.value.code == "decrypt_failed"


@pytest.mark.parametrize("vector", DECRYPTABLE, ids=lambda v: v["section"])
def test_vector_tampered_header_fails(vector: dict[str, Any]) -> None:
    """The protected header is the AAD: a changed (still valid) header fails the tag."""
    h64, *rest = vector["compact"].split(".")
    header = json.loads(_unb64(h64))
    forged = _b64(json.dumps({**header, "x-extra": 1}).encode())
    with pytest.raises(InvalidInput) as info:
        _decrypt(".".join([forged, *rest]), vector)
    assert info.value.code == "decrypt_failed"


@pytest.mark.parametrize("section", sorted(REFUSED))
def test_refused_vectors_stay_refused(section: str) -> None:
    """RSA1_5 (ASVS 11.3.1) and zip (JOSE-05) are refused even when published."""
    vector = next(v for v in VECTORS if v["section"] == section)
    with pytest.raises(InvalidInput) as info:
        _decrypt(vector["compact"], vector)
    assert info.value.code == REFUSED[section]


def test_rsa1_5_vector_content_layer() -> None:
    """RFC 7520 §5.1 publishes its CEK: our A128CBC-HS256 decrypts the content with it."""
    vector = next(v for v in VECTORS if v["section"] == "RFC 7520 §5.1")
    h64, _, iv, ct, tag = vector["compact"].split(".")
    plaintext = decrypt_content(
        "A128CBC-HS256", _unb64(vector["cek"]), h64.encode(), _unb64(iv), _unb64(ct), _unb64(tag)
    )
    assert plaintext == vector["plaintext"].encode("utf-8")
