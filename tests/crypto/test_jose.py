"""Tests of the JOSE boundary (requirements JOSE-01..JOSE-09 and R-07 of docs/security-model.md)."""

from __future__ import annotations

import base64
import contextlib
import json
import zlib
from collections.abc import Callable
from typing import Any

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker.crypto.jose import (
    DEFAULT_JWE_ALGORITHMS,
    DEFAULT_JWE_ENCRYPTIONS,
    JwksCache,
    Key,
    KeyNotFound,
    KeySet,
    decrypt_jwe,
    decrypt_nested,
    encrypt_jwe,
    peek_header,
    sign_jwt,
    verify_jws,
    verify_jwt,
)
from authbroker.errors import (
    AuthBrokerError,
    ConfigError,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    ProviderUnavailable,
)
from authbroker.flow import Gen
from authbroker.http import HttpRequest, HttpResponse

CLAIMS = {"iss": "https://op.example", "sub": "user-1", "aud": "client", "exp": 2_000_000_000}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64json(obj: Any) -> str:
    return b64(json.dumps(obj, separators=(",", ":")).encode())


def unb64(seg: str) -> bytes:
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def pem_private(key: Any) -> bytes:
    return key.private_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="module")
def rsa_sig() -> Key:
    return Key.generate("RSA", use="sig", alg="RS256", kid="rsa-1")


@pytest.fixture(scope="module")
def rsa_enc() -> Key:
    return Key.generate("RSA", use="enc", alg="RSA-OAEP-256", kid="rsa-enc")


@pytest.fixture(scope="module")
def ec_sig() -> Key:
    return Key.generate("EC", use="sig", alg="ES256", kid="ec-1")


@pytest.fixture(scope="module")
def ec_enc() -> Key:
    return Key.generate("EC", use="enc", alg="ECDH-ES", kid="ec-enc")


def expect(exc_type: type[Exception], fn: Callable[[], object], code: str | None = None) -> Any:
    """Assert the exact error class (not a subclass) and, optionally, its code."""
    with pytest.raises(exc_type) as info:
        fn()
    assert type(info.value) is exc_type, repr(info.value)
    if code is not None:
        assert info.value.code == code  # type: ignore[attr-defined]
    return info.value


def forge(header: dict[str, Any], payload: dict[str, Any], key: Key, alg: str) -> str:
    """Sign an arbitrary header with our signer's primitive (for malformed headers)."""
    from authbroker.crypto.jose import jws

    h64, p64 = b64json(header), b64json(payload)
    sig = jws._sign(key, alg, f"{h64}.{p64}".encode())
    return f"{h64}.{p64}.{b64(sig)}"


# --- keys -------------------------------------------------------------------------------


def test_generate_defaults(rsa_sig: Key, ec_sig: Key) -> None:
    assert rsa_sig._rsa_bits == 3072  # ASVS 11.2.3
    assert ec_sig.crv == "P-256"
    okp = Key.generate("OKP", use="sig", alg="EdDSA")
    assert okp.crv == "Ed25519"
    # kid defaults to the RFC 7638 thumbprint: 43 base64url chars of SHA-256.
    assert len(okp.kid) == 43
    assert Key.generate("EC", use="sig", alg="ES384").crv == "P-384"


def test_generate_refuses_weak_rsa() -> None:
    expect(ConfigError, lambda: Key.generate("RSA", use="sig", alg="RS256", size=2048), "weak_key")


def test_repr_has_no_key_material(rsa_sig: Key) -> None:
    text = repr(rsa_sig)
    priv = rsa_sig.private_jwk()
    assert priv["d"] not in text and priv["n"] not in text


def test_jwk_round_trip(ec_sig: Key) -> None:
    pub = ec_sig.public_jwk()
    assert "d" not in pub and pub["kid"] == "ec-1" and pub["alg"] == "ES256"
    again = Key.from_jwk(pub)
    assert not again.is_private and again.kid == "ec-1"
    priv = Key.from_jwk(ec_sig.private_jwk())
    assert priv.is_private


@pytest.mark.parametrize(
    "jwk",
    [
        {},
        {"kty": "AKP", "alg": "ML-DSA-44", "pub": "AAAA"},
        {"kty": "EC", "crv": "secp256k1", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": ["P-256"], "x": "AA", "y": "AA"},
        {"kty": "RSA", "n": "!!", "e": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "Ed25519", "x": 5},
        {"kty": "RSA", "kid": 7, "n": "AQAB", "e": "AQAB"},
    ],
)
def test_from_jwk_garbage(jwk: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput):
        Key.from_jwk(jwk)


def test_from_pem_rsa_1024_is_weak() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    expect(InvalidInput, lambda: Key.from_pem(pem_private(small), use="sig", alg="RS256"))


def test_from_pem_garbage() -> None:
    expect(InvalidInput, lambda: Key.from_pem(b"not a pem", use="sig", alg="RS256"), "bad_pem")


# --- JWKS and selection (JOSE-02, JOSE-13) ------------------------------------------------


def test_from_jwks_skips_unusable_members(ec_sig: Key, rsa_sig: Key) -> None:
    weak = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key().public_numbers()
    )
    weak_jwk = {
        "kty": "RSA",
        "kid": "weak",
        "n": b64(weak.n.to_bytes(128, "big")),
        "e": b64(weak.e.to_bytes(3, "big")),
    }
    doc = {
        "keys": [
            {"kty": "AKP", "kid": "pq", "alg": "ML-DSA-65", "pub": "AAAA"},
            {"kty": "made-up", "kid": "x"},
            {"kty": "EC", "crv": "P-256", "kid": "broken", "x": "!!", "y": "??"},
            {"kty": "oct", "kid": "hmac", "alg": "HS256"},
            weak_jwk,
            "not an object",
            ec_sig.public_jwk(),
            rsa_sig.public_jwk(),
        ]
    }
    ks = KeySet.from_jwks(doc)
    assert [k.kid for k in ks.keys] == ["ec-1", "rsa-1"]
    assert not any(k.is_private for k in ks.keys)


@pytest.mark.parametrize("member", ["d", "p", "q", "dp", "dq", "qi", "oth", "k"])
def test_from_jwks_refuses_private_members(member: str, ec_sig: Key, rsa_sig: Key) -> None:
    """A published private (or symmetric) key is an OP misconfiguration: refused, named."""
    leaked = {**rsa_sig.public_jwk(), member: "AQAB"}
    if member == "k":
        leaked = {"kty": "oct", "kid": "hmac", "k": b64(b"k" * 32)}
    err = expect(
        ProviderError,
        lambda: KeySet.from_jwks({"keys": [ec_sig.public_jwk(), leaked]}, provider="ftn-prod"),
        "jwks_private_key",
    )
    assert err.details == {"provider": "ftn-prod"}
    assert "ftn-prod" in str(err) and "AQAB" not in str(err)


def test_from_jwks_refuses_a_full_private_jwk(ec_sig: Key) -> None:
    expect(ProviderError, lambda: KeySet.from_jwks({"keys": [ec_sig.private_jwk()]}))


def test_jwks_cache_names_the_provider_of_a_leaky_jwks(ec_sig: Key) -> None:
    from authbroker.http import SyncDriver
    from runtimes import run_sync

    body = json.dumps({"keys": [ec_sig.private_jwk()]}).encode()

    class Canned(SyncDriver):
        def send(self, req: HttpRequest) -> HttpResponse:
            return HttpResponse(200, {"content-type": "application/json"}, body)

    cache = JwksCache("https://op.example/jwks", provider="bankid-no")
    err = expect(
        ProviderError,
        lambda: run_sync(cache.key_for({"alg": "ES256", "kid": "ec-1"}), Canned(), None),
        "jwks_private_key",
    )
    assert err.details == {"provider": "bankid-no"}


@pytest.mark.parametrize("doc", [[], {"keys": {}}, {"nokeys": []}, "x", {"keys": "abc"}])
def test_from_jwks_not_a_jwks(doc: Any) -> None:
    expect(InvalidInput, lambda: KeySet.from_jwks(doc), "bad_jwks")


def test_from_jwks_too_many_keys(ec_sig: Key) -> None:
    expect(InvalidInput, lambda: KeySet.from_jwks({"keys": [ec_sig.public_jwk()] * 101}))


def test_to_public_jwks(ec_sig: Key, rsa_sig: Key) -> None:
    doc = KeySet([ec_sig, rsa_sig]).to_public_jwks()
    assert all("d" not in k for k in doc["keys"])
    assert KeySet.from_jwks(doc).keys[1].kid == "rsa-1"


def test_select_exact_kid(ec_sig: Key, rsa_sig: Key) -> None:
    ks = KeySet([ec_sig, rsa_sig])
    assert ks.select(kid="rsa-1", alg="RS256") is rsa_sig
    expect(KeyNotFound, lambda: ks.select(kid="nope", alg="RS256"), "unknown_kid")


def test_select_no_kid_unique_candidate(ec_sig: Key, rsa_sig: Key) -> None:
    ks = KeySet([ec_sig, rsa_sig])
    assert ks.select(kid=None, alg="ES256") is ec_sig


def test_select_no_kid_ambiguous(ec_sig: Key) -> None:
    other = Key.generate("EC", use="sig", alg="ES256", kid="ec-2")
    expect(
        InvalidInput, lambda: KeySet([ec_sig, other]).select(kid=None, alg="ES256"), "ambiguous_key"
    )


def test_select_key_alg_must_equal_header_alg(rsa_sig: Key) -> None:
    # The key is bound to RS256: a PS256 header must not use it (CVE-2026-48523 class).
    expect(KeyNotFound, lambda: KeySet([rsa_sig]).select(kid="rsa-1", alg="PS256"))


def test_select_duplicate_kid_disambiguated_by_kty(ec_sig: Key) -> None:
    okp = Key.generate("OKP", use="sig", alg="EdDSA", kid="ec-1")
    ks = KeySet([ec_sig, okp])
    assert ks.select(kid="ec-1", alg="EdDSA") is okp
    assert ks.select(kid="ec-1", alg="ES256") is ec_sig


def test_select_respects_use(ec_enc: Key) -> None:
    expect(KeyNotFound, lambda: KeySet([ec_enc]).select(kid=None, alg="ES256"))


def test_select_curve_must_fit_alg() -> None:
    jwk = Key.generate("EC", use="sig", alg="ES384").public_jwk()
    del jwk["alg"]
    p384 = Key.from_jwk(jwk)
    expect(KeyNotFound, lambda: KeySet([p384]).select(kid=None, alg="ES256"))


# --- JWS happy paths and vectors ------------------------------------------------------------


@pytest.mark.parametrize(
    ("kty", "alg", "extra"),
    [
        ("RSA", "RS256", {}),
        ("RSA", "PS256", {}),
        ("RSA", "PS512", {}),
        ("EC", "ES256", {}),
        ("EC", "ES384", {"crv": "P-384"}),
        ("EC", "ES512", {"crv": "P-521"}),
        ("OKP", "EdDSA", {}),
    ],
)
def test_sign_verify_round_trip(kty: Any, alg: str, extra: dict[str, Any], rsa_sig: Key) -> None:
    if kty == "RSA":
        key = Key.from_jwk({**rsa_sig.private_jwk(), "alg": alg, "kid": "r-" + alg})
    else:
        key = Key.generate(kty, use="sig", alg=alg, **extra)
    token = sign_jwt(CLAIMS, key, headers={"typ": "JWT"})
    header, claims = verify_jwt(
        token, KeySet.from_jwks({"keys": [key.public_jwk()]}), algorithms=[alg]
    )
    assert claims == CLAIMS
    assert header == {"alg": alg, "kid": key.kid, "typ": "JWT"}


RFC7515_PAYLOAD = (
    "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
)
RFC7515_A3_JWK = {
    "kty": "EC",
    "crv": "P-256",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
RFC7515_A3_TOKEN = (
    "eyJhbGciOiJFUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"
)
RFC7515_A2_JWK = {
    "kty": "RSA",
    "e": "AQAB",
    "n": (
        "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddx"
        "HmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMs"
        "D1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSH"
        "SXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdV"
        "MTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8"
        "NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"
    ),
}
RFC7515_A2_TOKEN = (
    "eyJhbGciOiJSUzI1NiJ9."
    + RFC7515_PAYLOAD
    + ".cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7"
    "AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4"
    "BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K"
    "0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqv"
    "hJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrB"
    "p0igcN_IoypGlUPQGe77Rw"
)


@pytest.mark.parametrize(
    ("jwk", "token", "alg"),
    [(RFC7515_A3_JWK, RFC7515_A3_TOKEN, "ES256"), (RFC7515_A2_JWK, RFC7515_A2_TOKEN, "RS256")],
)
def test_rfc7515_vectors(jwk: dict[str, Any], token: str, alg: str) -> None:
    ks = KeySet.from_jwks({"keys": [jwk]})
    header, claims = verify_jwt(token, ks, algorithms=[alg])
    assert header == {"alg": alg}
    assert claims == {"iss": "joe", "exp": 1300819380, "http://example.com/is_root": True}
    # Flip one bit of the signature → InvalidSignature.
    sig = bytearray(unb64(token.rsplit(".", 1)[1]))
    sig[5] ^= 1
    tampered = token.rsplit(".", 1)[0] + "." + b64(bytes(sig))
    expect(InvalidSignature, lambda: verify_jws(tampered, ks, algorithms=[alg]), "bad_signature")


def test_signature_mismatch_is_invalid_signature(ec_sig: Key) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    h, _p, s = token.split(".")
    other_payload = b64json({**CLAIMS, "sub": "admin"})
    expect(
        InvalidSignature,
        lambda: verify_jwt(f"{h}.{other_payload}.{s}", KeySet([ec_sig]), algorithms=["ES256"]),
    )


# --- Wycheproof-style ECDSA cases built locally -------------------------------------------------


def test_es256_der_signature_rejected(ec_sig: Key) -> None:
    from cryptography.hazmat.primitives import hashes

    h64, p64 = b64json({"alg": "ES256", "kid": "ec-1"}), b64json(CLAIMS)
    der = ec_sig._priv.sign(f"{h64}.{p64}".encode(), ec.ECDSA(hashes.SHA256()))
    token = f"{h64}.{p64}.{b64(der)}"
    expect(InvalidSignature, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r, s, n: b"\x00" * (2 * n),  # r = s = 0
        lambda r, s, n: r + s + b"\x00",  # too long
        lambda r, s, n: r + s[:-1],  # too short
        lambda r, s, n: s + r,  # swapped
        lambda r, s, n: (
            r
            + (
                int(  # s replaced by n - s (high-s is valid ECDSA math: must still verify)
                    "FFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551", 16
                )
                - int.from_bytes(s, "big")
            ).to_bytes(n, "big")
        ),
        lambda r, s, n: b"",
    ],
)
def test_es256_malformed_signatures(
    ec_sig: Key, mutate: Callable[[bytes, bytes, int], bytes]
) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    h, p, s64 = token.split(".")
    raw = unb64(s64)
    new = mutate(raw[:32], raw[32:], 32)
    forged = f"{h}.{p}.{b64(new)}"
    ks = KeySet([ec_sig])
    if new[32:] != raw[32:] and new[:32] == raw[:32] and len(new) == 64:
        # Wycheproof marks the (r, n-s) malleated signature "valid" for plain ECDSA.
        verify_jws(forged, ks, algorithms=["ES256"])
    else:
        expect(InvalidSignature, lambda: verify_jws(forged, ks, algorithms=["ES256"]))


# --- JOSE-01 algorithm allow-lists --------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_refused_even_if_listed(alg: str, ec_sig: Key) -> None:
    token = f"{b64json({'alg': alg})}.{b64json(CLAIMS)}."
    expect(
        InvalidInput,
        lambda: verify_jws(token, KeySet([ec_sig]), algorithms=[alg, "ES256"]),
        "alg_refused",
    )


def test_alg_not_in_allow_list(ec_sig: Key) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    expect(
        InvalidInput,
        lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["RS256"]),
        "alg_not_allowed",
    )


def test_allow_list_must_be_explicit(ec_sig: Key) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    expect(ConfigError, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=[]))
    expect(ConfigError, lambda: verify_jws(token, KeySet([ec_sig]), algorithms="ES256"))


def _hs256(secret: bytes, header: dict[str, Any]) -> str:
    import hashlib
    import hmac

    h64, p64 = b64json(header), b64json(CLAIMS)
    mac = hmac.new(secret, f"{h64}.{p64}".encode(), hashlib.sha256).digest()
    return f"{h64}.{p64}.{b64(mac)}"


def test_hs256_refused_unless_listed() -> None:
    key = Key.from_secret(b"s" * 32, alg="HS256")
    token = sign_jwt(CLAIMS, key)
    expect(
        InvalidInput,
        lambda: verify_jws(token, KeySet([key]), algorithms=["RS256"]),
        "alg_not_allowed",
    )
    assert verify_jwt(token, KeySet([key]), algorithms=["HS256"])[1] == CLAIMS


def test_hs256_short_secret_unusable() -> None:
    # RFC 7518 §3.2: refused when configured, and unusable if it came in another way.
    expect(ConfigError, lambda: Key.from_secret(b"short", alg="HS256"), "weak_key")
    key = Key.from_secret(b"s" * 32, alg="HS256", kid="h")
    expect(KeyNotFound, lambda: KeySet([key]).select(kid="h", alg="HS512"))


@pytest.mark.parametrize("form", ["pem", "der", "ssh", "jwk"])
def test_hs256_with_public_key_as_secret_refused(form: str, rsa_sig: Key, ec_sig: Key) -> None:
    """Key-confusion (X-16): the MAC key is the provider's public key in some form."""
    pub = rsa_sig._pub
    secret = {
        "pem": pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "der": pub.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "ssh": pub.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH),
        "jwk": json.dumps(rsa_sig.public_jwk()).encode(),
    }[form]
    ks = KeySet.from_jwks({"keys": [rsa_sig.public_jwk(), ec_sig.public_jwk()]})
    for header in ({"alg": "HS256", "kid": "rsa-1"}, {"alg": "HS256"}):
        token = _hs256(secret, header)
        expect(
            KeyNotFound, lambda t=token: verify_jws(t, ks, algorithms=["HS256", "RS256", "ES256"])
        )


def test_jwks_never_yields_hmac_keys() -> None:
    secret = b"k" * 32
    # A published secret refuses the whole document; an oct member without one is skipped.
    leaky = {"keys": [{"kty": "oct", "kid": "h", "k": b64(secret)}]}
    expect(ProviderError, lambda: KeySet.from_jwks(leaky), "jwks_private_key")
    ks = KeySet.from_jwks({"keys": [{"kty": "oct", "kid": "h", "alg": "HS256"}]})
    token = _hs256(secret, {"alg": "HS256", "kid": "h"})
    expect(KeyNotFound, lambda: verify_jws(token, ks, algorithms=["HS256"]), "unknown_kid")


def test_rsa_2048_peer_key_ok_1024_refused() -> None:
    k2048 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = Key.from_pem(pem_private(k2048), use="sig", alg="RS256", kid="p")
    token = sign_jwt(CLAIMS, key)
    assert verify_jwt(token, KeySet.from_jwks({"keys": [key.public_jwk()]}), algorithms=["RS256"])
    # An RSA-1024 key in a JWKS is skipped, so its tokens find no key (JOSE-13).
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    nums = weak.public_key().public_numbers()
    jwks = {
        "keys": [{"kty": "RSA", "kid": "w", "n": b64(nums.n.to_bytes(128, "big")), "e": "AQAB"}]
    }
    h64, p64 = b64json({"alg": "RS256", "kid": "w"}), b64json(CLAIMS)
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    sig = weak.sign(f"{h64}.{p64}".encode(), padding.PKCS1v15(), hashes.SHA256())
    token = f"{h64}.{p64}.{b64(sig)}"
    expect(KeyNotFound, lambda: verify_jws(token, KeySet.from_jwks(jwks), algorithms=["RS256"]))


def test_es256_header_with_p384_key_refused() -> None:
    p384 = Key.generate("EC", use="sig", alg="ES384", kid="k")
    p384.alg = None  # unbound key: only the curve check stands in the way
    token = forge(
        {"alg": "ES256", "kid": "k"}, CLAIMS, Key.generate("EC", use="sig", alg="ES256"), "ES256"
    )
    expect(
        KeyNotFound,
        lambda: verify_jws(token, KeySet([p384]), algorithms=["ES256"]),
        "no_matching_key",
    )


def test_eddsa_with_ec_key_refused(ec_sig: Key) -> None:
    ec_sig_unbound = Key.from_jwk({k: v for k, v in ec_sig.public_jwk().items() if k != "alg"})
    okp = Key.generate("OKP", use="sig", alg="EdDSA", kid="ec-1")
    token = sign_jwt(CLAIMS, okp)
    expect(KeyNotFound, lambda: verify_jws(token, KeySet([ec_sig_unbound]), algorithms=["EdDSA"]))


# --- JOSE-03: trust never comes from the token ----------------------------------------------


def test_embedded_jwk_ignored(ec_sig: Key) -> None:
    attacker = Key.generate("EC", use="sig", alg="ES256", kid="attacker")
    ks = KeySet.from_jwks({"keys": [ec_sig.public_jwk()]})
    # Claims our kid, embeds the attacker's key: verified with OUR key → bad signature.
    t1 = forge(
        {"alg": "ES256", "kid": "ec-1", "jwk": attacker.public_jwk()}, CLAIMS, attacker, "ES256"
    )
    expect(InvalidSignature, lambda: verify_jws(t1, ks, algorithms=["ES256"]))
    # Names the attacker's kid: not in our JWKS → no key.
    t2 = forge(
        {"alg": "ES256", "kid": "attacker", "jwk": attacker.public_jwk()}, CLAIMS, attacker, "ES256"
    )
    expect(KeyNotFound, lambda: verify_jws(t2, ks, algorithms=["ES256"]))


@pytest.mark.parametrize("member", ["jku", "x5u"])
def test_url_headers_never_fetched(member: str, ec_sig: Key) -> None:
    attacker = Key.generate("EC", use="sig", alg="ES256", kid="ec-1")
    token = forge(
        {"alg": "ES256", "kid": "ec-1", member: "http://127.0.0.1:9/jwks"},
        CLAIMS,
        attacker,
        "ES256",
    )
    cache = JwksCache("https://op.example/jwks")
    cache.set_keys(KeySet([ec_sig]))
    gen = cache.verify_jwt(token, algorithms=["ES256"])
    # The generator raises without yielding any request (zero fetches).
    expect(InvalidSignature, lambda: next(gen))
    assert cache.fetch_count == 0


def test_x5c_ignored(ec_sig: Key) -> None:
    attacker = Key.generate("EC", use="sig", alg="ES256")
    token = forge({"alg": "ES256", "x5c": ["MIIB"]}, CLAIMS, attacker, "ES256")
    expect(InvalidSignature, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]))


# --- JOSE-04: crit and b64 ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [{"crit": ["cnf"], "cnf": 1}, {"crit": []}, {"crit": ["exp"], "exp": 1}, {"crit": "x"}],
)
def test_crit_refused(extra: dict[str, Any], ec_sig: Key) -> None:
    token = forge({"alg": "ES256", "kid": "ec-1", **extra}, CLAIMS, ec_sig, "ES256")
    expect(
        InvalidInput,
        lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]),
        "crit_unsupported",
    )


@pytest.mark.parametrize(
    "extra", [{"crit": ["b64"], "b64": False}, {"b64": False}, {"b64": "false"}]
)
def test_b64_false_refused(extra: dict[str, Any], ec_sig: Key) -> None:
    token = forge({"alg": "ES256", "kid": "ec-1", **extra}, CLAIMS, ec_sig, "ES256")
    with pytest.raises(InvalidInput) as info:
        verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"])
    assert type(info.value) is InvalidInput
    assert info.value.code in ("crit_unsupported", "b64_unsupported")


# --- JOSE-05: shape and size before decoding -------------------------------------------------


def test_ten_megabyte_token_rejected_fast(ec_sig: Key) -> None:
    import time

    token = "eyJhbGciOiJFUzI1NiJ9." + "A" * 10_000_000 + ".AAAA"
    t0 = time.perf_counter()
    expect(
        InvalidInput, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]), "too_large"
    )
    expect(InvalidInput, lambda: peek_header(token), "too_large")
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            token, KeySet([ec_sig]), algorithms=["RSA-OAEP"], encryptions=["A128GCM"]
        ),
        "too_large",
    )
    assert time.perf_counter() - t0 < 0.5


@pytest.mark.parametrize("token", ["a.b", "a.b.c.d", "a.b.c.d.e.f", "abc", "", ".b.c"])
def test_wrong_segment_count(token: str, ec_sig: Key) -> None:
    expect(
        InvalidInput, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]), "malformed"
    )


def test_jwe_segment_count(rsa_enc: Key) -> None:
    for token in ["a.b.c", "a.b.c.d", "a.b.c.d.e.f"]:
        expect(
            InvalidInput,
            lambda t=token: decrypt_jwe(
                t, KeySet([rsa_enc]), algorithms=["RSA-OAEP"], encryptions=["A128GCM"]
            ),
            "malformed",
        )


def test_header_segment_limit(ec_sig: Key) -> None:
    token = forge({"alg": "ES256", "kid": "ec-1", "pad": "x" * 2000}, CLAIMS, ec_sig, "ES256")
    expect(
        InvalidInput, lambda: verify_jws(token, KeySet([ec_sig]), algorithms=["ES256"]), "too_large"
    )


@pytest.mark.parametrize("bad", ["+", "/", "=", " ", "\n", "é", "%"])
def test_only_base64url_alphabet(bad: str, ec_sig: Key) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    h, p, s = token.split(".")
    forged = f"{h}.{p[:5]}{bad}{p[5:]}.{s}"
    expect(
        InvalidInput,
        lambda: verify_jws(forged, KeySet([ec_sig]), algorithms=["ES256"]),
        "malformed",
    )


def test_padding_rejected(ec_sig: Key) -> None:
    token = sign_jwt(CLAIMS, ec_sig)
    expect(
        InvalidInput,
        lambda: verify_jws(token + "==", KeySet([ec_sig]), algorithms=["ES256"]),
        "malformed",
    )


def test_non_canonical_base64_rejected(ec_sig: Key) -> None:
    header = b64json({"alg": "ES256", "kid": "ec-1"})
    assert len(header) % 4 in (2, 3)
    # Same bytes, different spelling: set the unused low bits of the last character.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(header[-1]) + 1]
    token = sign_jwt(CLAIMS, ec_sig)
    forged = header[:-1] + last + token[len(header) :]
    expect(
        InvalidInput,
        lambda: verify_jws(forged, KeySet([ec_sig]), algorithms=["ES256"]),
        "bad_encoding",
    )


def test_json_nesting_limit(ec_sig: Key) -> None:
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    token = sign_jwt({**CLAIMS, "deep": deep}, ec_sig)
    expect(
        InvalidInput,
        lambda: verify_jwt(token, KeySet([ec_sig]), algorithms=["ES256"]),
        "json_too_deep",
    )
    # 10 000 levels in the payload: the parser's own recursion guard → InvalidInput.
    h64 = b64json({"alg": "ES256", "kid": "ec-1"})
    raw = ("[" * 5000 + "]" * 5000).encode()
    from authbroker.crypto.jose import jws

    p64 = b64(raw)
    sig = jws._sign(ec_sig, "ES256", f"{h64}.{p64}".encode())
    tok = f"{h64}.{p64}.{b64(sig)}"
    expect(
        InvalidInput,
        lambda: verify_jwt(tok, KeySet([ec_sig]), algorithms=["ES256"], max_size=64 * 1024),
    )


def test_claim_count_limit(ec_sig: Key) -> None:
    token = sign_jwt({f"c{i}": 1 for i in range(1200)}, ec_sig)
    expect(
        InvalidInput,
        lambda: verify_jwt(token, KeySet([ec_sig]), algorithms=["ES256"], max_size=64 * 1024),
        "json_too_large",
    )


@pytest.mark.parametrize(
    "payload",
    [
        b'{"sub":"a","sub":"b"}',  # duplicate member (JOSE-14)
        b'{"exp":NaN}',
        b'{"exp":1e999}',
        b'{"exp":' + b"9" * 5000 + b"}",  # beyond CPython's int digit limit
        b"\xef\xbb\xbf{}",  # BOM
        b'["not","an","object"]',
        b'{"a":"\xff"}',  # not UTF-8
    ],
)
def test_strict_payload_json(payload: bytes, ec_sig: Key) -> None:
    from authbroker.crypto.jose import jws

    h64, p64 = b64json({"alg": "ES256", "kid": "ec-1"}), b64(payload)
    sig = jws._sign(ec_sig, "ES256", f"{h64}.{p64}".encode())
    token = f"{h64}.{p64}.{b64(sig)}"
    expect(
        InvalidInput, lambda: verify_jwt(token, KeySet([ec_sig]), algorithms=["ES256"]), "bad_json"
    )


def test_duplicate_header_member(ec_sig: Key) -> None:
    from authbroker.crypto.jose import jws

    h64 = b64(b'{"alg":"none","alg":"ES256","kid":"ec-1"}')
    p64 = b64json(CLAIMS)
    sig = jws._sign(ec_sig, "ES256", f"{h64}.{p64}".encode())
    expect(
        InvalidInput,
        lambda: verify_jws(f"{h64}.{p64}.{b64(sig)}", KeySet([ec_sig]), algorithms=["ES256"]),
        "bad_json",
    )


def test_peek_header(ec_sig: Key, rsa_enc: Key) -> None:
    assert peek_header(sign_jwt(CLAIMS, ec_sig))["alg"] == "ES256"
    jwe = encrypt_jwe(b"x", rsa_enc, alg="RSA-OAEP-256", enc="A128GCM")
    assert peek_header(jwe)["enc"] == "A128GCM"
    expect(InvalidInput, lambda: peek_header("a.b.c.d"), "malformed")


# --- JWE (JOSE-06..JOSE-09) -------------------------------------------------------------------


@pytest.mark.parametrize("alg", sorted(DEFAULT_JWE_ALGORITHMS))
@pytest.mark.parametrize("enc", sorted(DEFAULT_JWE_ENCRYPTIONS))
def test_jwe_allowed_pairs(alg: str, enc: str, rsa_enc: Key, ec_enc: Key) -> None:
    key = rsa_enc if alg.startswith("RSA") else ec_enc
    key = Key.from_jwk({**key.private_jwk(), "alg": alg})
    token = encrypt_jwe(b"secret claims", key, alg=alg, enc=enc)
    header, plaintext = decrypt_jwe(
        token, KeySet([key]), algorithms=DEFAULT_JWE_ALGORITHMS, encryptions=DEFAULT_JWE_ENCRYPTIONS
    )
    assert plaintext == b"secret claims" and header["alg"] == alg


def test_jwe_x25519(rsa_enc: Key) -> None:
    key = Key.generate("OKP", use="enc", alg="ECDH-ES+A256KW")
    token = encrypt_jwe("hi", key, alg="ECDH-ES+A256KW", enc="A256GCM")
    assert (
        decrypt_jwe(token, KeySet([key]), algorithms=["ECDH-ES+A256KW"], encryptions=["A256GCM"])[1]
        == b"hi"
    )


def _raw_jwe(header: dict[str, Any]) -> str:
    return f"{b64json(header)}.{b64(b'k' * 256)}.{b64(b'i' * 12)}.{b64(b'c' * 16)}.{b64(b't' * 16)}"


@pytest.mark.parametrize("alg", ["RSA1_5", "rsa1_5"])
def test_jwe_rsa1_5_never(alg: str, rsa_enc: Key) -> None:
    token = _raw_jwe({"alg": alg, "enc": "A128GCM"})
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            token, KeySet([rsa_enc]), algorithms=[alg, "RSA-OAEP"], encryptions=["A128GCM"]
        ),
        "alg_refused",
    )
    expect(ConfigError, lambda: encrypt_jwe(b"x", rsa_enc, alg="RSA1_5", enc="A128GCM"))


@pytest.mark.parametrize("alg", ["dir", "A128KW", "A256KW", "PBES2-HS256+A128KW", "A128GCMKW"])
def test_jwe_symmetric_algs_refused_by_default(alg: str, rsa_enc: Key) -> None:
    token = _raw_jwe({"alg": alg, "enc": "A128GCM"})
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            token,
            KeySet([rsa_enc]),
            algorithms=DEFAULT_JWE_ALGORITHMS,
            encryptions=DEFAULT_JWE_ENCRYPTIONS,
        ),
        "alg_not_allowed",
    )


def test_jwe_dir_when_listed_explicitly() -> None:
    key = Key.from_secret(b"k" * 16, alg="dir", kid="d")
    token = encrypt_jwe(b"ok", key, alg="dir", enc="A128GCM")
    assert (
        decrypt_jwe(token, KeySet([key]), algorithms=["dir"], encryptions=["A128GCM"])[1] == b"ok"
    )


def test_jwe_enc_not_allowed(rsa_enc: Key) -> None:
    token = encrypt_jwe(b"x", rsa_enc, alg="RSA-OAEP-256", enc="A192GCM")
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            token,
            KeySet([rsa_enc]),
            algorithms=DEFAULT_JWE_ALGORITHMS,
            encryptions=DEFAULT_JWE_ENCRYPTIONS,
        ),
        "enc_not_allowed",
    )


def test_jwe_zip_refused(rsa_enc: Key) -> None:
    # 1000× inflation bomb: refused from the header alone, nothing is inflated.
    bomb = zlib.compress(b"A" * 1_000_000)[2:-4]
    token = encrypt_jwe(bomb, rsa_enc, alg="RSA-OAEP-256", enc="A128GCM")
    h, *rest = token.split(".")
    forged = ".".join([b64json({**json.loads(unb64(h)), "zip": "DEF"}), *rest])
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            forged, KeySet([rsa_enc]), algorithms=["RSA-OAEP-256"], encryptions=["A128GCM"]
        ),
        "zip_unsupported",
    )
    expect(
        ConfigError,
        lambda: encrypt_jwe(
            b"x", rsa_enc, alg="RSA-OAEP-256", enc="A128GCM", headers={"zip": "DEF"}
        ),
    )


def test_jwe_crit_refused(rsa_enc: Key) -> None:
    token = _raw_jwe({"alg": "RSA-OAEP-256", "enc": "A128GCM", "crit": ["x"], "x": 1})
    expect(
        InvalidInput,
        lambda: decrypt_jwe(
            token, KeySet([rsa_enc]), algorithms=["RSA-OAEP-256"], encryptions=["A128GCM"]
        ),
        "crit_unsupported",
    )


def _tamper(token: str, index: int, fn: Callable[[bytes], bytes]) -> str:
    parts = token.split(".")
    parts[index] = b64(fn(unb64(parts[index])))
    return ".".join(parts)


def test_jwe_failures_are_uniform(rsa_enc: Key, ec_enc: Key) -> None:
    """JOSE-09: wrong key, bad tag, truncation, bad padding → identical error."""
    ks = KeySet([rsa_enc])
    algs, encs = ["RSA-OAEP-256"], ["A128CBC-HS256", "A128GCM"]
    cbc = encrypt_jwe(b"x" * 40, rsa_enc, alg="RSA-OAEP-256", enc="A128CBC-HS256")
    gcm = encrypt_jwe(b"x" * 40, rsa_enc, alg="RSA-OAEP-256", enc="A128GCM")
    # Wrong key: same kid, different RSA key.
    other = Key.from_jwk(
        {**Key.generate("RSA", use="enc", alg="RSA-OAEP-256").private_jwk(), "kid": "rsa-enc"}
    )
    cases = {
        "wrong_key": (cbc, KeySet([other])),
        "bad_tag": (_tamper(cbc, 4, lambda b: bytes([b[0] ^ 1]) + b[1:]), ks),
        "bad_gcm_tag": (_tamper(gcm, 4, lambda b: bytes([b[0] ^ 1]) + b[1:]), ks),
        "truncated_ciphertext": (_tamper(cbc, 3, lambda b: b[:-16]), ks),
        "truncated_tag": (_tamper(gcm, 4, lambda b: b[:8]), ks),
        "bad_padding": (_tamper(cbc, 3, lambda b: b[:-1] + bytes([b[-1] ^ 0x55])), ks),
        "corrupt_encrypted_key": (_tamper(cbc, 1, lambda b: bytes([b[0] ^ 1]) + b[1:]), ks),
        "short_encrypted_key": (_tamper(cbc, 1, lambda b: b[:10]), ks),
        "bad_iv_length": (_tamper(gcm, 2, lambda b: b + b"x"), ks),
        "empty_ciphertext": (_tamper(gcm, 3, lambda b: b""), ks),
    }
    seen = set()
    for name, (token, keys) in cases.items():
        err = expect(
            InvalidInput,
            lambda t=token, k=keys: decrypt_jwe(t, k, algorithms=algs, encryptions=encs),
        )
        seen.add((type(err), err.code, err.message, err.http_status))
        assert err.code == "decrypt_failed", name
    assert len(seen) == 1


def test_ecdh_epk_curve_must_match(ec_enc: Key) -> None:
    """JOSE-08: an epk on another curve (or off the curve) never reaches the KDF."""
    token = encrypt_jwe(b"x", ec_enc, alg="ECDH-ES", enc="A128GCM")
    header = json.loads(unb64(token.split(".")[0]))
    p384 = Key.generate("EC", use="enc", alg="ECDH-ES", crv="P-384").public_jwk()
    x25519 = Key.generate("OKP", use="enc", alg="ECDH-ES").public_jwk()
    off_curve = {
        **header["epk"],
        "y": b64((int.from_bytes(unb64(header["epk"]["y"]), "big") ^ 1).to_bytes(32, "big")),
    }
    for epk in (
        {k: p384[k] for k in ("kty", "crv", "x", "y")},
        {k: x25519[k] for k in ("kty", "crv", "x")},
        off_curve,
        {**header["epk"], "crv": "P-384"},
        "not-a-jwk",
    ):
        forged = ".".join([b64json({**header, "epk": epk}), *token.split(".")[1:]])
        expect(
            InvalidInput,
            lambda f=forged: decrypt_jwe(
                f, KeySet([ec_enc]), algorithms=["ECDH-ES"], encryptions=["A128GCM"]
            ),
            "decrypt_failed",
        )


def test_jwe_needs_private_key(ec_enc: Key) -> None:
    public_only = KeySet.from_jwks({"keys": [ec_enc.public_jwk()]})
    token = encrypt_jwe(b"x", ec_enc, alg="ECDH-ES", enc="A128GCM")
    expect(
        KeyNotFound,
        lambda: decrypt_jwe(token, public_only, algorithms=["ECDH-ES"], encryptions=["A128GCM"]),
    )


# --- JWE without kid during RP key rotation (issue 15) -------------------------------------------


@pytest.fixture(scope="module")
def rsa_enc_next() -> Key:
    return Key.generate("RSA", use="enc", alg="RSA-OAEP-256", kid="rsa-enc-2")


@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("enc", ["A128GCM", "A128CBC-HS256"])
def test_jwe_without_kid_tries_each_rotation_key(
    which: int, enc: str, rsa_enc: Key, rsa_enc_next: Key
) -> None:
    keys = [rsa_enc, rsa_enc_next]
    token = encrypt_jwe(b"claims", keys[which], alg="RSA-OAEP-256", enc=enc, include_kid=False)
    assert "kid" not in peek_header(token)
    _, plaintext = decrypt_jwe(token, KeySet(keys), algorithms=["RSA-OAEP-256"], encryptions=[enc])
    assert plaintext == b"claims"


def test_jwe_without_kid_ecdh_rotation_skips_other_curves() -> None:
    old = Key.generate("EC", use="enc", alg="ECDH-ES", kid="ec-old")
    new = Key.generate("EC", use="enc", alg="ECDH-ES", kid="ec-new")
    p384 = Key.generate("EC", use="enc", alg="ECDH-ES", kid="ec-384", crv="P-384")
    keys = KeySet([p384, old, new])
    for key in (old, new, p384):
        token = encrypt_jwe(b"c", key, alg="ECDH-ES", enc="A256GCM", include_kid=False)
        assert decrypt_jwe(token, keys, algorithms=["ECDH-ES"], encryptions=["A256GCM"])[1] == b"c"


def test_jwe_without_kid_failure_is_the_same_whatever_key_failed(
    rsa_enc: Key, rsa_enc_next: Key
) -> None:
    """No oracle: one error (class, code, message) for every way every key fails."""
    algs, encs = ["RSA-OAEP-256"], ["A128GCM"]
    stranger = Key.generate("RSA", use="enc", alg="RSA-OAEP-256", kid="stranger")
    both = KeySet([rsa_enc, rsa_enc_next])

    def kidless(key: Key) -> str:
        return encrypt_jwe(b"x" * 40, key, alg="RSA-OAEP-256", enc="A128GCM", include_kid=False)

    def bad_tag(token: str) -> str:
        return _tamper(token, 4, lambda b: bytes([b[0] ^ 1]) + b[1:])

    cases = {
        "stranger_two_keys": (kidless(stranger), both),
        "stranger_one_key": (kidless(stranger), KeySet([rsa_enc])),
        "bad_tag_first_key": (bad_tag(kidless(rsa_enc)), both),
        "bad_tag_second_key": (bad_tag(kidless(rsa_enc_next)), both),
        "bad_key_second": (_tamper(kidless(rsa_enc_next), 1, lambda b: b[:10]), both),
    }
    seen = set()
    for name, (token, keys) in cases.items():
        err = expect(
            InvalidInput,
            lambda t=token, k=keys: decrypt_jwe(t, k, algorithms=algs, encryptions=encs),
        )
        assert err.code == "decrypt_failed", name
        seen.add((type(err), err.code, err.message, err.http_status))
    assert len(seen) == 1


def test_jwe_with_kid_still_uses_exactly_that_key(rsa_enc: Key, rsa_enc_next: Key) -> None:
    both = KeySet([rsa_enc, rsa_enc_next])
    token = encrypt_jwe(b"c", rsa_enc_next, alg="RSA-OAEP-256", enc="A128GCM")
    assert decrypt_jwe(token, both, algorithms=["RSA-OAEP-256"], encryptions=["A128GCM"])[1]
    # The kid names the first key but the token is for the second: no fallback.
    header = {**peek_header(token), "kid": "rsa-enc"}
    forged = ".".join([b64json(header), *token.split(".")[1:]])
    expect(
        InvalidInput,
        lambda: decrypt_jwe(forged, both, algorithms=["RSA-OAEP-256"], encryptions=["A128GCM"]),
        "decrypt_failed",
    )


# --- JOSE-07 nested tokens ----------------------------------------------------------------------


def test_nested_ok(rsa_enc: Key, ec_sig: Key) -> None:
    inner = sign_jwt(CLAIMS, ec_sig)
    outer = encrypt_jwe(inner, rsa_enc, alg="RSA-OAEP-256", enc="A256GCM", headers={"cty": "JWT"})
    header, claims = decrypt_nested(
        outer,
        decryption_keys=KeySet([rsa_enc]),
        verification_keys=KeySet.from_jwks({"keys": [ec_sig.public_jwk()]}),
        jwe_algorithms=DEFAULT_JWE_ALGORITHMS,
        jwe_encryptions=DEFAULT_JWE_ENCRYPTIONS,
        jws_algorithms=["ES256"],
    )
    assert claims == CLAIMS and header["alg"] == "ES256"


@pytest.mark.parametrize(
    "plaintext",
    [json.dumps(CLAIMS).encode(), b"\xff\xfe", b"a.b.c.d.e"],
)
def test_nested_bare_json_refused(plaintext: bytes, rsa_enc: Key, ec_sig: Key) -> None:
    outer = encrypt_jwe(plaintext, rsa_enc, alg="RSA-OAEP-256", enc="A256GCM")
    expect(
        InvalidInput,
        lambda: decrypt_nested(
            outer,
            decryption_keys=KeySet([rsa_enc]),
            verification_keys=KeySet([ec_sig]),
            jwe_algorithms=["RSA-OAEP-256"],
            jwe_encryptions=["A256GCM"],
            jws_algorithms=["ES256"],
        ),
        "not_nested",
    )


def test_nested_inner_none_refused(rsa_enc: Key, ec_sig: Key) -> None:
    inner = f"{b64json({'alg': 'none'})}.{b64json(CLAIMS)}."
    outer = encrypt_jwe(inner, rsa_enc, alg="RSA-OAEP-256", enc="A256GCM")
    expect(
        InvalidInput,
        lambda: decrypt_nested(
            outer,
            decryption_keys=KeySet([rsa_enc]),
            verification_keys=KeySet([ec_sig]),
            jwe_algorithms=["RSA-OAEP-256"],
            jwe_encryptions=["A256GCM"],
            jws_algorithms=["ES256", "none"],
        ),
        "alg_refused",
    )


def test_nested_inner_wrong_signer(rsa_enc: Key, ec_sig: Key) -> None:
    attacker = Key.generate("EC", use="sig", alg="ES256", kid="ec-1")
    outer = encrypt_jwe(sign_jwt(CLAIMS, attacker), rsa_enc, alg="RSA-OAEP-256", enc="A256GCM")
    expect(
        InvalidSignature,
        lambda: decrypt_nested(
            outer,
            decryption_keys=KeySet([rsa_enc]),
            verification_keys=KeySet([ec_sig]),
            jwe_algorithms=["RSA-OAEP-256"],
            jwe_encryptions=["A256GCM"],
            jws_algorithms=["ES256"],
        ),
    )


def test_signed_only_where_encryption_agreed(rsa_enc: Key, ec_sig: Key) -> None:
    expect(
        InvalidInput,
        lambda: decrypt_nested(
            sign_jwt(CLAIMS, ec_sig),
            decryption_keys=KeySet([rsa_enc]),
            verification_keys=KeySet([ec_sig]),
            jwe_algorithms=["RSA-OAEP-256"],
            jwe_encryptions=["A256GCM"],
            jws_algorithms=["ES256"],
        ),
        "malformed",
    )


# --- interop with PyJWT ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256", "EdDSA"])
def test_pyjwt_interop(alg: str, rsa_sig: Key) -> None:
    if alg.startswith(("RS", "PS")):
        key = Key.from_jwk({**rsa_sig.private_jwk(), "alg": alg, "kid": "i"})
    elif alg == "ES256":
        key = Key.generate("EC", use="sig", alg=alg, kid="i")
    else:
        key = Key.generate("OKP", use="sig", alg=alg, kid="i")
    pub_pem = key._pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    # ours → PyJWT
    ours = sign_jwt(CLAIMS, key, headers={"typ": "JWT"})
    assert pyjwt.decode(ours, pub_pem, algorithms=[alg], audience="client") == CLAIMS
    # PyJWT → ours
    theirs = pyjwt.encode(CLAIMS, pem_private(key._priv), algorithm=alg, headers={"kid": "i"})
    ks = KeySet.from_jwks({"keys": [key.public_jwk()]})
    assert verify_jwt(theirs, ks, algorithms=[alg])[1] == CLAIMS


# --- sign_jwt guard rails -------------------------------------------------------------------


def test_sign_jwt_guards(ec_sig: Key) -> None:
    expect(ConfigError, lambda: sign_jwt(CLAIMS, ec_sig, alg="none"))
    expect(ConfigError, lambda: sign_jwt(CLAIMS, ec_sig, alg="RS256"))
    expect(ConfigError, lambda: sign_jwt(CLAIMS, ec_sig, headers={"crit": ["x"]}))
    public = Key.from_jwk(ec_sig.public_jwk())
    expect(ConfigError, lambda: sign_jwt(CLAIMS, public))
    expect(InvalidInput, lambda: sign_jwt({"x": object()}, ec_sig), "bad_claims")


# --- JWKS cache (JOSE-12, R-07) -------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def drive(gen: Gen[Any], responder: Callable[[HttpRequest], HttpResponse]) -> Any:
    """Minimal sync runner: answers each yielded HttpRequest with responder()."""
    try:
        effect = next(gen)
        while True:
            assert isinstance(effect, HttpRequest)
            assert effect.tag == "jwks" and effect.method == "GET"
            effect = gen.send(responder(effect))
    except StopIteration as stop:
        return stop.value


class Jwks:
    def __init__(self, *keys: Key) -> None:
        self.keys = list(keys)
        self.requests: list[HttpRequest] = []
        self.status = 200
        self.body: bytes | None = None

    def __call__(self, req: HttpRequest) -> HttpResponse:
        self.requests.append(req)
        body = (
            self.body
            if self.body is not None
            else json.dumps(KeySet(self.keys).to_public_jwks()).encode()
        )
        return HttpResponse(self.status, {"content-type": "application/json"}, body)


def test_cache_fetches_once_and_reuses(ec_sig: Key) -> None:
    clock, server = Clock(), Jwks(ec_sig)
    cache = JwksCache("https://op.example/jwks", now=clock)
    token = sign_jwt(CLAIMS, ec_sig)
    for _ in range(5):
        assert drive(cache.verify_jwt(token, algorithms=["ES256"]), server)[1] == CLAIMS
    assert len(server.requests) == 1
    clock.t += 3601  # TTL passed → one normal refresh
    drive(cache.verify_jwt(token, algorithms=["ES256"]), server)
    assert len(server.requests) == 2


def test_cache_rotation_single_refetch(ec_sig: Key) -> None:
    clock, server = Clock(), Jwks(ec_sig)
    cache = JwksCache("https://op.example/jwks", now=clock)
    drive(cache.verify_jwt(sign_jwt(CLAIMS, ec_sig), algorithms=["ES256"]), server)
    new = Key.generate("EC", use="sig", alg="ES256", kid="ec-2")
    server.keys = [new]
    token = sign_jwt(CLAIMS, new)
    for _ in range(100):
        assert drive(cache.verify_jwt(token, algorithms=["ES256"]), server)[1] == CLAIMS
    assert len(server.requests) == 2  # initial + one forced refetch for the rotation


def test_cache_unknown_kid_flood_rate_limited(ec_sig: Key) -> None:
    clock, server = Clock(), Jwks(ec_sig)
    cache = JwksCache("https://op.example/jwks", now=clock, min_refetch_interval=60)
    cache.set_keys(KeySet([ec_sig]))
    attacker = Key.generate("EC", use="sig", alg="ES256")
    for i in range(1000):
        token = forge({"alg": "ES256", "kid": f"random-{i}"}, CLAIMS, attacker, "ES256")
        expect(
            KeyNotFound,
            lambda t=token: drive(cache.verify_jwt(t, algorithms=["ES256"]), server),
            "unknown_kid",
        )
    assert len(server.requests) == 1  # one forced fetch per interval
    clock.t += 61
    token = forge({"alg": "ES256", "kid": "again"}, CLAIMS, attacker, "ES256")
    expect(KeyNotFound, lambda: drive(cache.verify_jwt(token, algorithms=["ES256"]), server))
    assert len(server.requests) == 2


def test_cache_known_kid_wrong_alg_no_refetch(ec_sig: Key) -> None:
    server = Jwks(ec_sig)
    cache = JwksCache("https://op.example/jwks", now=Clock())
    cache.set_keys(KeySet([ec_sig]))
    expect(
        KeyNotFound,
        lambda: drive(cache.key_for({"alg": "ES384", "kid": "ec-1"}), server),
        "no_matching_key",
    )
    assert server.requests == []


def test_cache_endpoint_down(ec_sig: Key) -> None:
    clock, server = Clock(), Jwks(ec_sig)
    server.status = 503
    cache = JwksCache("https://op.example/jwks", now=clock)
    token = sign_jwt(CLAIMS, ec_sig)
    expect(
        ProviderUnavailable, lambda: drive(cache.verify_jwt(token, algorithms=["ES256"]), server)
    )
    # Cached keys stay valid until their TTL even if the endpoint is down.
    cache.set_keys(KeySet([ec_sig]))
    assert drive(cache.verify_jwt(token, algorithms=["ES256"]), server)[1] == CLAIMS


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"keys": 5}', b"\xff"])
def test_cache_bad_document(body: bytes, ec_sig: Key) -> None:
    server = Jwks()
    server.body = body
    cache = JwksCache("https://op.example/jwks", now=Clock())
    with pytest.raises(InvalidInput):
        drive(cache.key_for({"alg": "ES256", "kid": "x"}), server)


def test_cache_requires_https() -> None:
    expect(ConfigError, lambda: JwksCache("http://op.example/jwks"))
    JwksCache("http://127.0.0.1:8080/jwks")  # loopback simulators


def test_cache_refuses_alg_before_fetching(ec_sig: Key) -> None:
    server = Jwks(ec_sig)
    cache = JwksCache("https://op.example/jwks", now=Clock())
    token = f"{b64json({'alg': 'none'})}.{b64json(CLAIMS)}."
    expect(
        InvalidInput,
        lambda: drive(cache.verify_jwt(token, algorithms=["ES256"]), server),
        "alg_refused",
    )
    assert server.requests == []


# --- only typed errors escape (hypothesis) ------------------------------------------------------

_text = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCXYZ0123456789-_.", max_size=400),
    st.lists(
        st.text(alphabet="AQgwEIMeyJhbGciOi0123456789-_", max_size=60), min_size=1, max_size=6
    ).map(".".join),
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(token=_text)
def test_fuzz_only_typed_errors(token: str, ec_sig: Key, rsa_enc: Key) -> None:
    ks_sig, ks_enc = KeySet([ec_sig]), KeySet([rsa_enc])
    for call in (
        lambda: verify_jws(token, ks_sig, algorithms=["ES256", "RS256", "HS256", "EdDSA"]),
        lambda: verify_jwt(token, ks_sig, algorithms=["ES256"]),
        lambda: decrypt_jwe(
            token, ks_enc, algorithms=DEFAULT_JWE_ALGORITHMS, encryptions=DEFAULT_JWE_ENCRYPTIONS
        ),
        lambda: peek_header(token),
    ):
        with contextlib.suppress(AuthBrokerError):
            call()


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.one_of(
        _json,
        st.fixed_dictionaries({"keys": st.lists(_json, max_size=4)}),
        st.fixed_dictionaries(
            {
                "keys": st.lists(
                    st.fixed_dictionaries(
                        {
                            "kty": st.sampled_from(["RSA", "EC", "OKP", "oct", "AKP", "x"]),
                            "crv": st.sampled_from(
                                ["P-256", "P-384", "Ed25519", "X25519", "secp256k1"]
                            ),
                            "x": st.text(max_size=50),
                            "y": st.text(max_size=50),
                            "n": st.text(max_size=50),
                            "e": st.text(max_size=5),
                            "kid": _json,
                            "use": _json,
                            "alg": _json,
                            "key_ops": _json,
                        }
                    ),
                    max_size=3,
                )
            }
        ),
    )
)
def test_fuzz_from_jwks_only_typed_errors(doc: Any) -> None:
    with contextlib.suppress(AuthBrokerError):
        KeySet.from_jwks(doc)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzz_mutated_valid_token(data: st.DataObject, ec_sig: Key) -> None:
    """JOSE-14: mutations of a valid token end in a typed error (or, rarely, verify)."""
    token = sign_jwt(CLAIMS, ec_sig)
    pos = data.draw(st.integers(0, len(token) - 1))
    char = data.draw(st.sampled_from(list("+/=.A_-\x00é ")))
    mutated = token[:pos] + char + token[pos + 1 :]
    with contextlib.suppress(AuthBrokerError):
        verify_jwt(mutated, KeySet([ec_sig]), algorithms=["ES256"])


def test_rsa_oaep_unwrap_failure_uses_random_cek(rsa_enc: Key) -> None:
    """RFC 7516 §11.5: a failed RSA-OAEP unwrap continues with a random CEK."""
    from authbroker.crypto.jose import jwe, jwe_crypto

    token = encrypt_jwe(b"x", rsa_enc, alg="RSA-OAEP-256", enc="A128CBC-HS256")
    header = json.loads(unb64(token.split(".")[0]))
    ek = unb64(token.split(".")[1])
    good = jwe_crypto.unwrap_cek(header, rsa_enc, "RSA-OAEP-256", "A128CBC-HS256", ek)
    assert good == jwe_crypto.unwrap_cek(header, rsa_enc, "RSA-OAEP-256", "A128CBC-HS256", ek)
    bad_ek = bytes([ek[0] ^ 1]) + ek[1:]
    for alg in ("RSA-OAEP", "RSA-OAEP-256"):
        cek1 = jwe_crypto.unwrap_cek(header, rsa_enc, alg, "A128CBC-HS256", bad_ek)
        cek2 = jwe_crypto.unwrap_cek(header, rsa_enc, alg, "A128CBC-HS256", bad_ek)
        assert len(cek1) == len(cek2) == 32 and cek1 != cek2 and good not in (cek1, cek2)
    assert jwe._Registry.algorithms["zip"] == {}


@given(st.text(alphabet="AZaz09-_.=+/ é\n", max_size=40))
def test_is_compact_is_the_regex_language(text: str) -> None:
    """The fast shape check accepts exactly what the compact-serialization regexes do."""
    from authbroker.crypto.jose.codec import _JWE_RE, _JWS_RE, _is_compact

    assert _is_compact(text, 3) == (_JWS_RE.fullmatch(text) is not None)
    assert _is_compact(text, 5) == (_JWE_RE.fullmatch(text) is not None)
