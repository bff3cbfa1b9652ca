"""The JWS hot path's shortcuts refuse everything the full checks refuse.

The RP path decodes each segment with one strict base64url decoder (which is also
the alphabet check, JOSE-05), parses the payload's JSON without the whitespace
wrapper, memoizes key selection per :class:`KeySet` and answers a fresh JWKS without
entering the fetch routine. Each test here attacks one of those shortcuts: a token
the slow path would refuse must be refused the same way when the header is already
cached, the key already memoized and the JWKS warm.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import pytest

from authbroker.crypto.jose import (
    JwksCache,
    Key,
    KeyNotFound,
    KeySet,
    codec,
    jws,
    sign_jwt,
    verify_jwt,
)
from authbroker.errors import InvalidInput, InvalidSignature
from authbroker.http import HttpRequest, HttpResponse
from authbroker.kernel import SyncRuntime

CLAIMS = {"iss": "https://op.example", "sub": "user-1", "aud": "client", "exp": 2_000_000_000}
BAD_CHARS = ["+", "/", "=", " ", "\n", ".", "é", "%", "*", "\x00", "\ud800"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def expect(exc_type: type[Exception], fn: Callable[[], object], code: str) -> None:
    with pytest.raises(exc_type) as info:
        fn()
    assert type(info.value) is exc_type, repr(info.value)
    assert info.value.code == code  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def key() -> Key:
    return Key.generate("EC", use="sig", alg="ES256", kid="ec-1")


def signed(key: Key, h64: str, p64: str) -> str:
    data = f"{h64}.{p64}".encode("utf-8", "surrogatepass")
    return f"{h64}.{p64}.{b64(jws._sign(key, 'ES256', data))}"


# --- strict decoding: the decoder is the alphabet check --------------------------------


@pytest.mark.parametrize("bad", BAD_CHARS)
@pytest.mark.parametrize("segment", [1, 2])
def test_bad_character_with_the_header_cached(key: Key, segment: int, bad: str) -> None:
    """A cached header skips its own decoding, never the other segments' checks."""
    token = sign_jwt(CLAIMS, key)
    verify_jwt(token, KeySet([key]), algorithms=["ES256"])  # header now cached
    parts = token.split(".")
    parts[segment] = parts[segment][:7] + bad + parts[segment][7:]
    forged = ".".join(parts)
    code = "malformed"
    expect(InvalidInput, lambda: verify_jwt(forged, KeySet([key]), algorithms=["ES256"]), code)


@pytest.mark.parametrize("bad", BAD_CHARS)
def test_bad_character_in_an_uncached_header(key: Key, bad: str) -> None:
    h64 = b64(json.dumps({"alg": "ES256", "kid": "ec-1", "x": bad}).encode())
    h64 = h64[:5] + bad + h64[5:]
    token = signed(key, h64, b64(json.dumps(CLAIMS).encode()))
    assert h64 not in codec._HEADER_CACHE
    expect(
        InvalidInput, lambda: verify_jwt(token, KeySet([key]), algorithms=["ES256"]), "malformed"
    )
    assert h64 not in codec._HEADER_CACHE


@pytest.mark.parametrize("segment", [1, 2])
def test_non_canonical_payload_or_signature(key: Key, segment: int) -> None:
    """RFC 4648 §3.5: unused low bits set give a second spelling; refused even when the
    signature was made over that spelling."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    h64 = b64(b'{"alg":"ES256","kid":"ec-1"}')
    p64 = b64(json.dumps({**CLAIMS, "pad": "x" * 4}).encode())
    if segment == 1:
        assert len(p64) % 4 in (2, 3)
        p64 = p64[:-1] + alphabet[alphabet.index(p64[-1]) + 1]
        token = signed(key, h64, p64)
    else:
        token = signed(key, h64, p64)
        s64 = token.rsplit(".", 1)[1]
        assert len(s64) % 4 in (2, 3)
        token = token[:-1] + alphabet[alphabet.index(s64[-1]) + 1]
    expect(
        InvalidInput, lambda: verify_jwt(token, KeySet([key]), algorithms=["ES256"]), "bad_encoding"
    )


def test_length_one_mod_four_is_found_before_the_signature(key: Key) -> None:
    """Every segment is decoded before a key is chosen (JOSE-05): an impossible length
    is an encoding error, not a signature failure."""
    token = sign_jwt(CLAIMS, key)
    h, p, s = token.split(".")
    while len(p) % 4 != 1:
        p += "A"
    forged = f"{h}.{p}.{s}"
    expect(
        InvalidInput,
        lambda: verify_jwt(forged, KeySet([key]), algorithms=["ES256"]),
        "bad_encoding",
    )


@pytest.mark.parametrize("text", [b' {"sub":"a"}', b'{"sub":"a"}\n', b'\t{"sub":"a"} '])
def test_payload_json_with_surrounding_whitespace(key: Key, text: bytes) -> None:
    """RFC 8259 §2 allows whitespace around the value: the direct scan falls back."""
    token = signed(key, b64(b'{"alg":"ES256","kid":"ec-1"}'), b64(text))
    assert verify_jwt(token, KeySet([key]), algorithms=["ES256"])[1] == {"sub": "a"}


@pytest.mark.parametrize(
    "text",
    [
        b'{"sub":"a"}x',
        b'{"sub":"a"}{}',
        b'{"sub":"a","sub":"b"}',
        b' {"sub":"a","sub":"b"}',
        b"\xef\xbb\xbf{}",
        b"",
        b'"{"',
        b'{"a":{"b":1,"b":2}}',
    ],
)
def test_payload_json_still_strict(key: Key, text: bytes) -> None:
    token = signed(key, b64(b'{"alg":"ES256","kid":"ec-1"}'), b64(text))
    expect(InvalidInput, lambda: verify_jwt(token, KeySet([key]), algorithms=["ES256"]), "bad_json")


def test_flat_check_is_not_fooled_by_a_leading_brace_elsewhere(key: Key) -> None:
    """Leading whitespace moves the object's "{" off position 0: the full walk runs."""
    deep: Any = 1
    for _ in range(40):
        deep = {"d": deep}
    text = b" " + json.dumps({"sub": "a", "deep": deep}).encode()
    token = signed(key, b64(b'{"alg":"ES256","kid":"ec-1"}'), b64(text))
    expect(
        InvalidInput,
        lambda: verify_jwt(token, KeySet([key]), algorithms=["ES256"]),
        "json_too_deep",
    )


# --- key selection memo -----------------------------------------------------------------


def test_memo_never_answers_another_alg_or_use() -> None:
    rsa = Key.generate("RSA", use="sig", alg="RS256", kid="r")
    keys = KeySet([rsa])
    assert keys.select(kid="r", alg="RS256") is rsa
    # The same kid with another alg, use or a private requirement: the full rules.
    expect(KeyNotFound, lambda: keys.select(kid="r", alg="PS256"), "no_matching_key")
    expect(
        KeyNotFound, lambda: keys._select("r", "RSA-OAEP", "enc", private=False), "no_matching_key"
    )
    public = KeySet([Key.from_jwk(rsa.public_jwk())])
    assert public.select(kid="r", alg="RS256").kid == "r"
    expect(
        KeyNotFound, lambda: public._select("r", "RS256", "sig", private=True), "no_matching_key"
    )


def test_memo_keeps_no_failures() -> None:
    """Unknown kids, refused algorithms and ambiguity are answered in full every time,
    and leave the memo as small as the successes (an attacker cannot grow it)."""
    a = Key.generate("EC", use="sig", alg="ES256", kid="a")
    b = Key.generate("EC", use="sig", alg="ES256", kid="b")
    keys = KeySet([a, b])
    for i in range(500):
        expect(KeyNotFound, lambda i=i: keys.select(kid=f"k{i}", alg="ES256"), "unknown_kid")
        expect(KeyNotFound, lambda: keys.select(kid="a", alg="RS256"), "no_matching_key")
        expect(InvalidInput, lambda: keys.select(kid=None, alg="ES256"), "ambiguous_key")
    assert keys.select(kid="a", alg="ES256") is a
    assert keys.select(kid="a", alg="ES256") is a
    assert len(keys._selected) == 1


class _Driver:
    """Serves the current JWKS document and counts the GETs."""

    def __init__(self, keys: list[Key]) -> None:
        self.keys = keys
        self.fetches = 0

    def send(self, request: HttpRequest) -> HttpResponse:
        self.fetches += 1
        body = json.dumps(KeySet(self.keys).to_public_jwks()).encode()
        return HttpResponse(200, {"content-type": "application/json"}, body)


def test_warm_cache_forgets_a_key_that_left_the_jwks() -> None:
    """The memo lives on one KeySet: after expiry and a refetch without the key, a
    token it signed is refused although the old set had it memoized."""
    old = Key.generate("EC", use="sig", alg="ES256", kid="old")
    new = Key.generate("EC", use="sig", alg="ES256", kid="new")
    clock = [1000.0]
    driver = _Driver([old])
    cache = JwksCache("https://op.example/jwks", ttl=300, now=lambda: clock[0])
    runtime = SyncRuntime(driver)
    token = sign_jwt(CLAIMS, old)
    for _ in range(3):
        runtime.run(cache.verify_jwt(token, algorithms=["ES256"]))
    assert driver.fetches == 1
    driver.keys = [new]
    clock[0] += 301
    expect(
        KeyNotFound,
        lambda: runtime.run(cache.verify_jwt(token, algorithms=["ES256"])),
        "unknown_kid",
    )
    assert driver.fetches == 2
    assert runtime.run(cache.verify_jwt(sign_jwt(CLAIMS, new), algorithms=["ES256"]))[1] == CLAIMS


def test_warm_cache_still_checks_the_signature_and_alg() -> None:
    key = Key.generate("EC", use="sig", alg="ES256", kid="k")
    cache = JwksCache("https://op.example/jwks")
    cache.set_keys(KeySet([key]))
    runtime = SyncRuntime()
    token = sign_jwt(CLAIMS, key)
    runtime.run(cache.verify_jwt(token, algorithms=["ES256"]))
    other = sign_jwt(CLAIMS, Key.generate("EC", use="sig", alg="ES256", kid="k"))
    expect(
        InvalidSignature,
        lambda: runtime.run(cache.verify_jwt(other, algorithms=["ES256"])),
        "bad_signature",
    )
    expect(
        InvalidInput,
        lambda: runtime.run(cache.verify_jwt(token, algorithms=["PS256"])),
        "alg_not_allowed",
    )
