"""RFC 9421 Appendix B (and §4.3) test vectors, RFC 9530 digests.

The vectors are in tests/data/rfc9421/vectors.json (RFC 9421 Appendix B), used as
they are. Signature bases are rebuilt from the published messages with the same code
the verifier uses and must be byte-exact for every example; the covered algorithms (HMAC-SHA256,
Ed25519, ECDSA P-256) must verify the published signatures, and the deterministic
ones must be reproduced byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from authbroker.api_auth import (
    ALG_ECDSA_P256,
    ALG_ED25519,
    ALG_HMAC,
    DigestMismatch,
    HmacSecret,
    Message,
    SignatureParams,
    algorithm_of,
    check_content_digest,
    content_digest,
    load_private_key,
    load_public_key,
    sfv,
    sign_base,
    signature_base,
    verify_base,
)
from authbroker.errors import InvalidInput, InvalidSignature

VECTORS_PATH = Path(__file__).resolve().parents[1] / "data" / "rfc9421" / "vectors.json"
VECTORS: dict[str, Any] = json.loads(VECTORS_PATH.read_text())
EXAMPLES = {e["id"]: e for e in VECTORS["examples"]}
KEYS = VECTORS["keys"]
COVERED = {ALG_HMAC, ALG_ED25519, ALG_ECDSA_P256}


def parse_http(text: str) -> tuple[str, list[tuple[str, str]], bytes]:
    head, _, body = text.partition("\n\n")
    lines = head.split("\n")
    headers = [(k, v) for k, v in (line.split(": ", 1) for line in lines[1:])]
    return lines[0], headers, body.strip("\n").encode()


def message_of(example: dict[str, Any]) -> Message:
    """The signed message of an example (the RFC gives no scheme: https assumed)."""
    if example["message"] in VECTORS["messages"]:
        m = VECTORS["messages"][example["message"]]
        if "status" in m:
            return Message(status=m["status"], headers=m["headers"], body=m["body"].encode())
        host = dict(m["headers"])["Host"]
        return Message(
            method=m["method"],
            target_uri=f"https://{host}{m['request_target']}",
            headers=[tuple(h) for h in m["headers"]],
            body=m["body"].encode(),
        )
    messages = example["messages"]
    text = messages.get("proxy_to_service_signed") or messages.get("proxy_signed_request")
    text = text or messages["original"]
    return request_from_text(text)


def request_from_text(text: str) -> Message:
    start, headers, body = parse_http(text)
    method, target, _ = start.split(" ")
    host = dict((k.lower(), v) for k, v in headers)["host"]
    return Message(method=method, target_uri=f"https://{host}{target}", headers=headers, body=body)


def params_of(example: dict[str, Any]) -> SignatureParams:
    members = sfv.parse_dictionary(
        example["signature_input"], code="x", max_bytes=8192, max_members=4
    )
    return SignatureParams.from_member(members[example["label"]], max_components=32)


def signing_key(key_id: str) -> Any:
    if key_id == "test-shared-secret":
        return HmacSecret.from_base64(KEYS[key_id]["base64"])
    return load_private_key(KEYS[key_id]["private_key_pem"])


def verifying_key(key_id: str) -> Any:
    if key_id == "test-shared-secret":
        return HmacSecret.from_base64(KEYS[key_id]["base64"])
    return load_public_key(KEYS[key_id]["public_key_pem"])


@pytest.mark.parametrize("example_id", sorted(EXAMPLES))
def test_signature_base_is_byte_exact(example_id: str) -> None:
    example = EXAMPLES[example_id]
    params = params_of(example)
    assert params.serialize() == example["signature_params_value"]
    base = signature_base(message_of(example), params)
    assert base.decode() == example["signature_base"]
    assert hashlib.sha256(base).hexdigest() == example["signature_base_sha256_hex"]


def test_signature_input_in_message_matches_example() -> None:
    # The verifier reads the label from the message's own Signature-Input header.
    message = message_of(EXAMPLES["B.3"])
    members = sfv.parse_dictionary(
        message.header("signature-input") or "", code="x", max_bytes=8192, max_members=4
    )
    assert list(members) == ["ttrp"]


COVERED_EXAMPLES = sorted(i for i, e in EXAMPLES.items() if e["algorithm"] in COVERED)


def test_the_covered_algorithms_have_vectors() -> None:
    assert COVERED_EXAMPLES == ["B.2.4", "B.2.5", "B.2.6", "B.3", "B.4"]


@pytest.mark.parametrize("example_id", COVERED_EXAMPLES)
def test_published_signature_verifies(example_id: str) -> None:
    example = EXAMPLES[example_id]
    key = verifying_key(example["key_id"])
    assert algorithm_of(key) == example["algorithm"]
    base = example["signature_base"].encode()
    signature = base64.b64decode(example["signature_b64"])
    assert len(signature) == example["signature_length_bytes"]
    verify_base(key, base, signature)
    # One flipped bit in the base or in the signature must fail.
    with pytest.raises(InvalidSignature):
        verify_base(key, base[:-1] + bytes([base[-1] ^ 1]), signature)
    with pytest.raises(InvalidSignature):
        verify_base(key, base, signature[:-1] + bytes([signature[-1] ^ 1]))


@pytest.mark.parametrize(
    "example_id", [i for i in COVERED_EXAMPLES if EXAMPLES[i]["deterministic"]]
)
def test_deterministic_signature_reproduced(example_id: str) -> None:
    example = EXAMPLES[example_id]
    base = signature_base(message_of(example), params_of(example))
    produced = sign_base(signing_key(example["key_id"]), base)
    assert base64.b64encode(produced).decode() == example["signature_b64"]


def test_deterministic_examples_are_hmac_and_ed25519() -> None:
    deterministic = [i for i in COVERED_EXAMPLES if EXAMPLES[i]["deterministic"]]
    assert deterministic == ["B.2.5", "B.2.6", "B.4"]


@pytest.mark.parametrize("example_id", ["B.2.4", "B.3"])
def test_ecdsa_fresh_signature_is_raw_r_s_and_verifies(example_id: str) -> None:
    example = EXAMPLES[example_id]
    base = example["signature_base"].encode()
    signature = sign_base(signing_key(example["key_id"]), base)
    assert len(signature) == 64
    verify_base(verifying_key(example["key_id"]), base, signature)
    # A DER-encoded signature is not the RFC 9421 §3.3.4 form.
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    der = signing_key(example["key_id"]).sign(base, ec.ECDSA(hashes.SHA256()))
    with pytest.raises(InvalidSignature):
        verify_base(verifying_key(example["key_id"]), base, der)


@pytest.mark.parametrize("index", range(5))
def test_b4_transformations(index: int) -> None:
    example = EXAMPLES["B.4"]
    change = example["transformations"][index]
    message = request_from_text(change["http_message"])
    base = signature_base(message, params_of(example))
    signature = base64.b64decode(example["signature_b64"])
    key = verifying_key("test-key-ed25519")
    if change["signature_still_valid"]:
        verify_base(key, base, signature)
    else:
        with pytest.raises(InvalidSignature):
            verify_base(key, base, signature)


def test_b24_fails_over_the_superseded_draft_digest() -> None:
    example = EXAMPLES["B.2.4"]
    old = VECTORS["messages"]["test-response"]["superseded_draft_content_digest"]
    message = message_of(example)
    changed = Message(
        status=200,
        headers=[(k, old if k == "Content-Digest" else v) for k, v in message.headers],
        body=message.body,
    )
    base = signature_base(changed, params_of(example))
    with pytest.raises(InvalidSignature):
        verify_base(
            verifying_key("test-key-ecc-p256"), base, base64.b64decode(example["signature_b64"])
        )
    with pytest.raises(DigestMismatch):
        check_content_digest(old, message.body)


def test_hmac_secret_and_public_keys_are_separate_types() -> None:
    # API-01: the HMAC secret is never a public key and vice versa.
    secret = signing_key("test-shared-secret")
    assert "redacted" in repr(secret) and KEYS["test-shared-secret"]["base64"][:8] not in repr(
        secret
    )
    ed = load_public_key(KEYS["test-key-ed25519"]["public_key_pem"])
    assert isinstance(ed, ed25519.Ed25519PublicKey)
    raw = ed.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    base = EXAMPLES["B.2.6"]["signature_base"].encode()
    # Signing with the public key bytes as an HMAC secret never verifies against the
    # Ed25519 record (the key fixes the algorithm).
    forged = HmacSecret(raw).mac(base)
    with pytest.raises(InvalidSignature):
        verify_base(ed, base, forged)


DIGESTS = VECTORS["content_digest"]["vectors"]


@pytest.mark.parametrize("vector", DIGESTS, ids=[v["id"] for v in DIGESTS])
def test_rfc9530_content_digest(vector: dict[str, Any]) -> None:
    body = vector["body"].encode()
    assert len(body) == vector["length"]
    for algorithm in ("sha-256", "sha-512"):
        if algorithm in vector:
            assert content_digest(body, algorithm) == vector[algorithm]
            assert check_content_digest(vector[algorithm], body) == algorithm
            with pytest.raises(DigestMismatch):
                check_content_digest(vector[algorithm], body + b"x")


def test_content_digest_with_both_algorithms_must_all_match() -> None:
    body = b'{"hello": "world"}'
    good = f"{content_digest(body, 'sha-256')}, {content_digest(body, 'sha-512')}"
    assert check_content_digest(good, body) == "sha-256"
    # RFC 9530's misprinted sha-256 next to a correct sha-512 is refused.
    bad = "sha-256=:d435Qo+nKZ+gLcUHn7GQtQ72hiBVAgqoLsZnZPiTGPk=:, " + content_digest(
        body, "sha-512"
    )
    with pytest.raises(DigestMismatch):
        check_content_digest(bad, body)


@pytest.mark.parametrize(
    "value",
    [
        "md5=:1B2M2Y8AsgTpgAmY7PhCfg==:",
        "sha-256=abc",
        "sha-256=:!!:",
        "",
        "sha-256=:YQ==:;x=(",
        "é",
    ],
)
def test_content_digest_malformed_or_unsupported(value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        check_content_digest(value, b"")
    assert not isinstance(info.value, DigestMismatch)
