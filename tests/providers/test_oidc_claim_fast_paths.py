"""The ID-token claim checks (Core §3.1.3.7) on their fast paths, attacked.

The checks answer the common claim types (an int ``exp``, one string ``aud``, an
ASCII ``nonce``) without the general conversions. Every value the general rules
refuse must still be refused, as a typed :class:`~authbroker.errors.AuthBrokerError`
with its code: JSON can spell values (a 400-digit integer, a lone surrogate) that
the conversions themselves choke on.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from authbroker.config import ProviderConfig, Settings
from authbroker.crypto.jose import JwksCache, Key, KeySet, sign_jwt
from authbroker.errors import AuthBrokerError, Expired, InvalidInput
from authbroker.identity import Loa
from authbroker.kernel import SyncRuntime
from authbroker.providers.oidc import OidcProvider, validate_id_token_claims

ISSUER = "https://op.example"
CLIENT_ID = "rp-1"
NONCE = "n-0S6_WzA2Mj-nonce-value"
NOW = 1_800_000_000.0


def claims(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "iss": ISSUER,
        "sub": "user-1",
        "aud": CLIENT_ID,
        "exp": int(NOW) + 300,
        "iat": int(NOW),
        "auth_time": int(NOW) - 5,
        "nonce": NONCE,
    }
    base.update(changes)
    return {k: v for k, v in base.items() if v is not None}


def check(c: dict[str, Any], *, max_age: int | None = None) -> None:
    validate_id_token_claims(
        c, issuer=ISSUER, client_id=CLIENT_ID, nonce=NONCE, now=NOW, max_age=max_age
    )


def refused(c: dict[str, Any], code: str, exc: type[AuthBrokerError] = InvalidInput) -> None:
    with pytest.raises(AuthBrokerError) as info:
        check(c)
    assert type(info.value) is exc, repr(info.value)
    assert info.value.code == code


HUGE = 10**400  # valid JSON, too large for a float


@pytest.mark.parametrize("name", ["exp", "iat"])
@pytest.mark.parametrize(
    "value",
    [HUGE, -HUGE, 2**53, -(2**53), True, "1800000300", 1e300],
    ids=["huge", "-huge", "2^53", "-2^53", "true", "string", "1e300"],
)
def test_time_claims_out_of_range_or_not_numbers(name: str, value: Any) -> None:
    refused(claims(**{name: value}), "bad_time_claim")


def test_huge_nbf_is_refused_typed() -> None:
    refused(claims(nbf=HUGE), "nbf_future")


def test_huge_auth_time_with_max_age_is_refused_typed() -> None:
    with pytest.raises(InvalidInput) as info:
        check(claims(auth_time=HUGE), max_age=600)
    assert info.value.code == "auth_time_missing"


def test_time_claims_within_range_pass() -> None:
    check(claims(exp=float(NOW + 300), iat=NOW - 0.5, nbf=int(NOW)))
    check(claims(exp=2**53 - 1))


def test_expiry_still_enforced_on_ints() -> None:
    refused(claims(exp=int(NOW) - 61), "id_token_expired", Expired)


@pytest.mark.parametrize("value", ["\ud800", "https://op.example\udfff", "https://op.examplé"])
def test_issuer_that_has_no_utf8_form_or_differs(value: str) -> None:
    refused(claims(iss=value), "iss_mismatch")


@pytest.mark.parametrize("value", ["\ud800", NONCE + "\udc00", "é" + NONCE[1:], NONCE[:-1]])
def test_nonce_that_has_no_utf8_form_or_differs(value: str) -> None:
    refused(claims(nonce=value), "nonce_mismatch")


@pytest.mark.parametrize(
    ("aud", "code"),
    [
        ("rp-2", "aud_mismatch"),
        ("rp-1 ", "aud_mismatch"),
        ([], "aud_mismatch"),
        (["rp-1", "rp-2"], "aud_untrusted"),
        (["rp-1", 1], "aud_invalid"),
        (1, "aud_invalid"),
        ({"rp-1": 1}, "aud_invalid"),
        ("\ud800", "aud_mismatch"),
    ],
)
def test_audience_beyond_the_single_string(aud: Any, code: str) -> None:
    refused(claims(aud=aud), code)


def test_audience_forms_that_pass() -> None:
    check(claims(aud=CLIENT_ID))
    check(claims(aud=[CLIENT_ID]))
    check(claims(aud=[CLIENT_ID, CLIENT_ID]))


@pytest.mark.parametrize("sub", ["", "a\tb", "a\x7f", "é", "\ud800", "x" * 256, 5, None])
def test_subject_printable_ascii_only(sub: Any) -> None:
    c = claims()
    c["sub"] = sub
    refused(c, "sub_invalid")


def test_subject_printable_edges_pass() -> None:
    check(claims(sub=" "))
    check(claims(sub="~" * 255))


# --- the same values through the provider's real path (signature, then claims) ---------


@pytest.fixture(scope="module")
def op_key() -> Key:
    return Key.generate("EC", use="sig", alg="ES256", kid="op-1")


@pytest.fixture(scope="module")
def provider(op_key: Key) -> OidcProvider:
    config = ProviderConfig(
        name="fast",
        protocol="oidc",
        environment="test",
        display_name={"en": "fast"},
        loa=Loa.HIGH,
        country=None,
        options={
            "issuer": ISSUER,
            "client_id": CLIENT_ID,
            "client_auth": "private_key_jwt",
            "id_token_signing_algs": ["ES256"],
        },
    )
    rp_keys = KeySet([Key.generate("EC", use="sig", alg="ES256", kid="rp-sig")])
    provider = OidcProvider(config, Settings(), rp_keys=rp_keys)
    cache = JwksCache(ISSUER + "/jwks")
    cache.set_keys(KeySet([Key.from_jwk(op_key.public_jwk())]))
    provider._jwks = cache
    return provider


def verify(provider: OidcProvider, token: str) -> Any:
    data = {"issuer": ISSUER, "nonce": NONCE}
    return SyncRuntime().run(provider._verify_id_token(token, data, time.time()))


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"exp": HUGE}, "bad_time_claim"),
        ({"iat": -HUGE}, "bad_time_claim"),
        ({"iss": "\ud800"}, "iss_mismatch"),
        ({"nonce": "\udfff"}, "nonce_mismatch"),
    ],
)
def test_signed_token_with_unconvertible_claims(
    provider: OidcProvider, op_key: Key, change: dict[str, Any], code: str
) -> None:
    now = int(time.time())
    good = claims(exp=now + 300, iat=now, auth_time=now)
    assert verify(provider, sign_jwt(good, op_key))[1]["sub"] == "user-1"
    token = sign_jwt({**good, **change}, op_key)
    with pytest.raises(InvalidInput) as info:
        verify(provider, token)
    assert info.value.code == code


# --- hashes and the UserInfo subject: values that have no byte form --------------------


@pytest.mark.parametrize("value", ["é" * 22, "\ud800", 5, ["x"]])
@pytest.mark.parametrize("name", ["at_hash", "c_hash"])
def test_token_hash_that_cannot_match_is_refused_typed(name: str, value: Any) -> None:
    """``hmac.compare_digest`` raises TypeError on a non-ASCII str: refused instead."""
    from authbroker.providers.oidc.id_token import check_token_hashes

    with pytest.raises(InvalidInput) as info:
        check_token_hashes("RS256", {name: value}, access_token="at-1", code="code-1")
    assert info.value.code == f"{name}_mismatch"


def test_token_hashes_that_match_pass() -> None:
    from authbroker.providers.oidc import token_hash
    from authbroker.providers.oidc.id_token import check_token_hashes

    good = {"at_hash": token_hash("at-1", "RS256"), "c_hash": token_hash("code-1", "RS256")}
    check_token_hashes("RS256", good, access_token="at-1", code="code-1")


@pytest.mark.parametrize(("mine", "theirs"), [("user-1", "\ud800"), ("\udc00", "\udc00x")])
def test_userinfo_subject_without_utf8_form_is_refused_typed(mine: str, theirs: str) -> None:
    from authbroker.providers.oidc.userinfo import match_userinfo_subject

    with pytest.raises(InvalidInput) as info:
        match_userinfo_subject(["sub"], {"sub": mine}, {"sub": theirs})
    assert info.value.code == "userinfo_sub_mismatch"
    match_userinfo_subject(["sub"], {"sub": mine}, {"sub": mine})
