"""Web eID: the public test vectors of the Web eID project, each with its expected outcome.

Data: ``tests/data/web-eid`` (tokens, certificates and OCSP responses from the test
resources of ``web-eid/web-eid-authtoken-validation-java`` @ 7039e7f, MIT). Origins,
nonces, validation times and outcomes are those of that project's tests. Every vector
is validated at its pinned time: the valid Estonian token's certificate expired in
2026.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from authbroker.config import ProviderConfig, Settings
from authbroker.crypto.pki import load_certificates, parse_der_certificate
from authbroker.errors import (
    AuthBrokerError,
    ConfigError,
    InvalidInput,
    InvalidSignature,
    ProviderUnavailable,
    UntrustedCertificate,
)
from authbroker.http import HttpRequest, HttpResponse
from authbroker.identity import Identity, Loa
from authbroker.providers.base import AdvanceContext
from authbroker.providers.web_eid import WebEidProvider, from_config
from authbroker.store.memory import MemoryStore
from runtimes import run_sync

DATA = Path(__file__).parents[1] / "data" / "web-eid"
CONSTANTS: dict[str, str] = json.loads((DATA / "token_constants.json").read_text())
VALID_TOKEN = CONSTANTS["AbstractTestWithValidator.java:VALID_AUTH_TOKEN"]
NONCE = CONSTANTS["AbstractTestWithValidator.java:VALID_CHALLENGE_NONCE"]
ORIGIN = "https://ria.ee"
FI_ORIGIN = "https://47f0-46-131-86-189.ngrok-free.app"
TEMPLATE = CONSTANTS["AuthTokenCertificateTest.java:AUTH_TOKEN"]


def cert_const(name: str) -> str:
    return CONSTANTS[f"AuthTokenCertificateTest.java:{name}"]


def ts(when: str) -> float:
    return datetime.fromisoformat(when).replace(tzinfo=UTC).timestamp()


def provider(anchors: list[str], origin: str = ORIGIN, **options: Any) -> WebEidProvider:
    opts: dict[str, Any] = {
        "trusted_ca_certificates": [str(DATA / a) for a in anchors],
        "ocsp": False,  # the vectors' real OCSP services are not reachable from tests
        "origin": origin,
        **options,
    }
    cfg = ProviderConfig("web-eid", "web-eid", "test", {"en": "Web eID"}, Loa.HIGH, "EE", opts)
    return from_config(cfg, Settings())


def validate(
    p: WebEidProvider, token: str, nonce: str, when: str, store: MemoryStore | None = None
) -> Identity:
    now = ts(when)
    gen = p.advance(
        AdvanceContext("flow", now), {"nonce": nonce, "issued_at": now}, {"token": token}
    )
    return run_sync(gen, None, store or MemoryStore())


EE = ["TEST_of_ESTEID2018.cer"]


# --- the valid Estonian token --------------------------------------------------------


@pytest.mark.parametrize("when", ["2021-08-01", "2024-08-01", "2026-07-09T21:59:59"])
def test_valid_estonian_token(when: str) -> None:
    identity = validate(provider(EE), VALID_TOKEN, NONCE, when)
    assert identity.national_id is not None
    assert identity.national_id.country == "EE"
    assert identity.national_id.value == "38001085718"
    assert identity.subject == "PNOEE-38001085718"
    assert (identity.given_name, identity.family_name) == ("JAAK-KRISTJAN", "JÕEORG")
    assert identity.method == "idcard" and identity.loa is Loa.HIGH
    assert identity.raw["algorithm"] == "ES384"
    assert "38001085718" not in repr(identity)


def test_wrong_nonce_is_bad_signature() -> None:
    with pytest.raises(InvalidSignature):
        validate(provider(EE), VALID_TOKEN, NONCE[:-1] + "4", "2024-08-01")


def test_wrong_origin_is_bad_signature() -> None:
    with pytest.raises(InvalidSignature):
        validate(provider(EE, origin="https://invalid.org"), VALID_TOKEN, NONCE, "2024-08-01")


@pytest.mark.parametrize(
    ("when", "code"),
    [
        ("2018-10-17", "cert_not_yet_valid"),
        ("2018-08-17", "cert_not_yet_valid"),  # CA not yet valid either: user cert first
        ("2026-10-19", "cert_expired"),
        ("2033-10-19", "cert_expired"),  # CA expired too: user cert first
    ],
)
def test_certificate_validity_period(when: str, code: str) -> None:
    with pytest.raises(UntrustedCertificate) as err:
        validate(provider(EE), VALID_TOKEN, NONCE, when)
    assert err.value.code == code


def test_unrelated_expired_trust_anchor_does_not_matter() -> None:
    # TEST of SK OCSP RESPONDER 2020 expired 2024-06-13 and is unrelated to the chain.
    p = provider([*EE, "TEST_of_SK_OCSP_RESPONDER_2020.cer", "TEST_of_ESTEID-SK_2015.cer"])
    assert validate(p, VALID_TOKEN, NONCE, "2024-07-01").national_id is not None


def test_wrong_trust_anchor_is_untrusted() -> None:
    with pytest.raises(UntrustedCertificate) as err:
        validate(provider(["ESTEID2018.cer"]), VALID_TOKEN, NONCE, "2024-08-01")
    assert err.value.code == "untrusted_issuer"


def test_disallowing_the_id_card_policy_rejects_the_valid_token() -> None:
    p = provider(EE, disallowed_policies=["1.3.6.1.4.1.51361.1.2.1"])
    with pytest.raises(UntrustedCertificate) as err:
        validate(p, VALID_TOKEN, NONCE, "2024-08-01")
    assert err.value.code == "disallowed_policy"


def test_allow_list_of_policies() -> None:
    ok = provider(EE, allowed_policies=["1.3.6.1.4.1.51361.1.2.1"])
    assert validate(ok, VALID_TOKEN, NONCE, "2024-08-01").national_id is not None
    other = provider(EE, allowed_policies=["1.3.6.1.4.1.51361.1.1.1"])
    with pytest.raises(UntrustedCertificate) as err:
        validate(other, VALID_TOKEN, NONCE, "2024-08-01")
    assert err.value.code == "policy_not_allowed"


def test_token_with_wrong_certificate_fails_signature() -> None:
    token = CONSTANTS["AuthTokenSignatureTest.java:AUTH_TOKEN_WRONG_CERT"]
    with pytest.raises(InvalidSignature):
        validate(provider(EE), token, NONCE, "2024-08-01")


# --- certificate swapped into the AuthTokenCertificateTest template ---------------------


@pytest.mark.parametrize(
    ("name", "when", "error", "code"),
    [
        ("MISSING_KEY_USAGE_CERT", "2021-08-01", UntrustedCertificate, "key_usage_missing"),
        ("WRONG_PURPOSE_CERT", "2021-08-01", UntrustedCertificate, "wrong_purpose"),
        ("WRONG_POLICY_CERT", "2021-08-01", UntrustedCertificate, "disallowed_policy"),
        ("OLD_MOBILE_ID_CERT", "2021-03-01", UntrustedCertificate, "disallowed_policy"),
        ("NEW_MOBILE_ID_CERT", "2021-08-01", UntrustedCertificate, "disallowed_policy"),
        ("EXPIRED_RSA_CERT", "2021-08-01", UntrustedCertificate, "cert_expired"),
        ("EXPIRED_ECDSA_CERT", "2021-08-01", UntrustedCertificate, "cert_expired"),
        ("REVOKED_CERT", "2021-08-01", UntrustedCertificate, "cert_expired"),
    ],
)
def test_certificate_template_vectors(
    name: str, when: str, error: type[AuthBrokerError], code: str
) -> None:
    token = TEMPLATE.replace("X5C", cert_const(name))
    with pytest.raises(error) as err:
        validate(provider(EE), token, NONCE, when)
    assert type(err.value) is error
    assert err.value.code == code


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ('"unverifiedCertificate":"X5C",', "", "token_field"),  # missing
        ("X5C", "", "token_field"),  # empty
        ('"X5C"', "[1,2,3,4]", "token_field"),  # array
        ('"X5C"', "1234", "token_field"),  # number
        ("X5C", "This is not a certificate", "token_base64"),
        ("X5C", "VGhpcyBpcyBub3QgYSBjZXJ0aWZpY2F0ZQ", "token_base64"),  # no padding
        ("X5C", "VGhpcyBpcyBub3QgYSBjZXJ0aWZpY2F0ZQ==", "cert_decode"),
    ],
)
def test_certificate_field_defects(old: str, new: str, code: str) -> None:
    token = TEMPLATE.replace(old, new)
    with pytest.raises(InvalidInput) as err:
        validate(provider(EE), token, NONCE, "2021-08-01")
    assert type(err.value) is InvalidInput
    assert err.value.code == code


# --- Finnish and Belgian cards (4b.6, 4b.8) ------------------------------------------------


FI_CAS = ["DVV_TEST_Certificates_-_G5E.crt", "VRK_TEST_CA_for_Test_Purposes_-_G4.crt"]


@pytest.mark.parametrize(
    ("name", "nonce", "satu", "given", "family", "alg"),
    [
        (
            "FINNISH_TEST_ID_CARD_BACKMAN_JUHANI_AUTH_TOKEN",
            "x9qZDRO/ao2zprt3Z0bkW4CvvE/gALFtUIf3tcC0XxY=",
            "999020016",
            "JUHANI",
            "SPECIMEN-BACKMAN",
            "ES384",
        ),
        (
            "FINNISH_TEST_ID_CARD_BABAFO_VELI_AUTH_TOKEN",
            "ZqlDATkQRqh7LkqEbspBc2qDjot29oiNLlITdLgiVIo=",
            "99901112H",
            "VELI",
            "SPECIMEN-BABAFÖ",
            "PS256",
        ),
    ],
)
def test_finnish_cards(name: str, nonce: str, satu: str, given: str, family: str, alg: str) -> None:
    token = CONSTANTS[f"AuthTokenCertificateFinnishIdCardTest.java:{name}"]
    identity = validate(provider(FI_CAS, origin=FI_ORIGIN), token, nonce, "2024-12-24")
    # The card carries the SATU, never the HETU (4b.8).
    assert identity.national_id is None
    assert identity.attributes["satu"] == satu
    assert identity.attributes["country"] == "FI"
    assert (identity.given_name, identity.family_name) == (given, family)
    assert identity.raw["algorithm"] == alg


def test_finnish_card_not_trusted_by_estonian_anchor() -> None:
    token = CONSTANTS[
        "AuthTokenCertificateFinnishIdCardTest.java:FINNISH_TEST_ID_CARD_BACKMAN_JUHANI_AUTH_TOKEN"
    ]
    with pytest.raises(UntrustedCertificate):
        validate(
            provider(EE, origin=FI_ORIGIN),
            token,
            "x9qZDRO/ao2zprt3Z0bkW4CvvE/gALFtUIf3tcC0XxY=",
            "2024-12-24",
        )


@pytest.mark.parametrize(
    ("name", "nonce"),
    [
        ("BELGIAN_TEST_ID_CARD_AUTH_TOKEN_ECC", "iMeEwP2cgUINY2XoO/lqEpOUn7z/ysHRqGXkGKC4VXE="),
        ("BELGIAN_TEST_ID_CARD_AUTH_TOKEN_RSA", "YPVgYc7Qds0qmK/RilPLffnsIg7IIovM4BAWqGZWwiY="),
    ],
)
def test_belgian_cards(name: str, nonce: str) -> None:
    token = CONSTANTS[f"AuthTokenCertificateBelgianIdCardTest.java:{name}"]
    p = provider(["eID_TEST_EC_Citizen_CA.cer"], origin=FI_ORIGIN)
    identity = validate(p, token, nonce, "2024-12-24")
    assert identity.national_id is None
    assert identity.attributes["serial_number"] == "01050399864"
    with pytest.raises(InvalidSignature):
        validate(p, token, NONCE, "2024-12-24")


# --- token structure and algorithm (AuthTokenStructureTest / AuthTokenAlgorithmTest) -----


def _mutate(**changes: Any) -> str:
    obj = json.loads(VALID_TOKEN)
    for key, value in changes.items():
        if value is None:
            obj.pop(key, None)
        else:
            obj[key] = value
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("token", "code"),
    [
        ("", "token_missing"),
        ("x" * 99, "token_size"),
        ("{" + " " * 10_001 + "}", "token_size"),
        ("null" + " " * 100, "token_json"),
        ("[" * 5001 + "]" * 5001, "token_size"),
        ("[" * 4000 + "]" * 4000, "token_json"),
        (_mutate(format="invalid"), "token_format"),
        (_mutate(format="web-eid:2"), "token_format"),
        (_mutate(format="web-eid:2.0"), "token_format"),
        (_mutate(format="web-eid:11"), "token_format"),
        (_mutate(format="web-eid:1.1.1"), "token_format"),
        (_mutate(format="web-eid:1."), "token_format"),
        (_mutate(format="web-eid:1.\u0663"), "token_format"),  # a non-ASCII digit
        (_mutate(format="WEB-EID:1.0"), "token_format"),
        (_mutate(format="web-eid:1.0\n"), "token_format"),
        (_mutate(format=None), "token_format"),
        (_mutate(algorithm="NONE"), "unsupported_algorithm"),
        (_mutate(algorithm="none"), "unsupported_algorithm"),
        (_mutate(algorithm=""), "token_field"),
        (_mutate(algorithm="\u0000\t\n"), "unsupported_algorithm"),
        (_mutate(algorithm="HS256"), "unsupported_algorithm"),
        (_mutate(algorithm=None), "token_field"),
        (_mutate(signature=None), "token_field"),
        (_mutate(signature="not base64!"), "token_base64"),
        (_mutate(appVersion=5), "token_field"),
        (_mutate(unverifiedIntermediateCertificates=[]), "token_format"),  # 1.1 field in 1.0
        (VALID_TOKEN.replace('"format"', '"algorithm":"ES384","format"'), "token_json"),
        (VALID_TOKEN[:-1] + ',"x":NaN}', "token_json"),
        (VALID_TOKEN[:-2], "token_json"),
    ],
)
def test_malformed_tokens(token: str, code: str) -> None:
    store = MemoryStore()
    with pytest.raises(InvalidInput) as err:
        validate(provider(EE), token, NONCE, "2024-08-01", store)
    assert type(err.value) is InvalidInput
    assert err.value.code == code
    assert "MII" not in str(err.value)


def test_unknown_fields_are_ignored_and_never_change_the_identity() -> None:
    token = _mutate(
        action="web-eid:authenticate-success",
        subject="PNOEE-49403136515",
        serialNumber="PNOEE-49403136515",
    )
    identity = validate(provider(EE), token, NONCE, "2024-08-01")
    assert identity.national_id is not None and identity.national_id.value == "38001085718"


def test_rsa_algorithm_with_ec_certificate_is_rejected() -> None:
    with pytest.raises(InvalidInput) as err:
        validate(provider(EE), _mutate(algorithm="RS256"), NONCE, "2024-08-01")
    assert err.value.code == "algorithm_key_mismatch"
    with pytest.raises(InvalidInput) as err:
        validate(provider(EE), _mutate(algorithm="ES256"), NONCE, "2024-08-01")
    assert err.value.code == "algorithm_key_mismatch"


def test_algorithm_outside_configured_set_is_rejected() -> None:
    with pytest.raises(InvalidInput) as err:
        validate(provider(EE, allowed_algorithms=["ES256"]), VALID_TOKEN, NONCE, "2024-08-01")
    assert err.value.code == "unsupported_algorithm"


# --- OCSP fixtures (SubjectCertificateNotRevokedValidatorTest) ------------------------------


class FixtureDriver:
    """An HTTP driver whose every answer is one stored OCSP response."""

    def __init__(self, body: bytes, status: int = 200) -> None:
        self.body = body
        self.status = status
        self.requests: list[HttpRequest] = []

    def send(self, req: HttpRequest) -> HttpResponse:
        self.requests.append(req)
        return HttpResponse(self.status, {"content-type": "application/ocsp-response"}, self.body)


JAAK_2018 = parse_der_certificate(
    __import__("base64").b64decode(CONSTANTS["Certificates.java:JAAK_KRISTJAN_ESTEID2018_CERT"])
)
TEST_CA = load_certificates((DATA / "TEST_of_ESTEID2018.cer").read_bytes())[0]


def ocsp_check(
    fixture: str, when: str, *, designated: bool = False, status: int = 200
) -> FixtureDriver:
    options: dict[str, Any] = {"ocsp": True}
    if designated:
        options.update(
            ocsp_designated_url="https://ocsp.invalid/designated",
            ocsp_designated_certificate=str(DATA / "TEST_of_SK_OCSP_RESPONDER_2020.cer"),
        )
    p = provider(EE, **options)
    driver = FixtureDriver((DATA / fixture).read_bytes(), status)
    at = datetime.fromisoformat(when).replace(tzinfo=UTC)
    run_sync(p._check_ocsp(JAAK_2018, TEST_CA, at), driver, None)  # type: ignore[arg-type]
    return driver


def _ocsp_error(fixture: str, when: str, **kw: Any) -> AuthBrokerError:
    with pytest.raises(AuthBrokerError) as err:
        ocsp_check(fixture, when, **kw)
    return err.value


def test_ocsp_good_response_with_foreign_nonce_is_a_replay() -> None:
    err = _ocsp_error("ocsp_response.der", "2021-09-17T18:25:24")
    assert type(err) is UntrustedCertificate and err.code == "ocsp_nonce"


def test_ocsp_revoked() -> None:
    err = _ocsp_error("ocsp_response_revoked.der", "2021-09-18")
    assert type(err) is UntrustedCertificate and err.code == "revoked"


def test_ocsp_unknown_from_designated_responder() -> None:
    err = _ocsp_error("ocsp_response_unknown.der", "2021-09-18T00:16:25", designated=True)
    assert type(err) is UntrustedCertificate and err.code == "ocsp_unknown"


def test_ocsp_unknown_from_unauthorized_aia_responder() -> None:
    err = _ocsp_error("ocsp_response_unknown.der", "2021-09-18T00:16:25")
    assert type(err) is UntrustedCertificate and err.code == "ocsp_responder"


def test_ocsp_designated_responder_certificate_expired() -> None:
    err = _ocsp_error("ocsp_response_unknown.der", "2024-09-18T00:16:25", designated=True)
    assert type(err) is UntrustedCertificate and err.code == "ocsp_responder"


@pytest.mark.parametrize(
    "fixture", ["ocsp_response_with_2_responses.der", "ocsp_response_with_2_responder_certs.der"]
)
def test_ocsp_irregular_responses_rejected(fixture: str) -> None:
    err = _ocsp_error(fixture, "2021-09-23T17:31:40")
    assert type(err) is UntrustedCertificate and err.code.startswith("ocsp_")


@pytest.mark.parametrize(
    ("when", "code"),
    [("2021-09-18T00:40:00", "ocsp_stale"), ("2021-09-17T23:50:00", "ocsp_stale")],
)
def test_ocsp_freshness(when: str, code: str) -> None:
    # thisUpdate 00:13:43: 26 min old is beyond max age; 23.7 min ahead beyond skew.
    err = _ocsp_error("ocsp_response_revoked.der", when)
    assert type(err) is UntrustedCertificate and err.code == code


def test_ocsp_request_shape() -> None:
    from cryptography import x509
    from cryptography.x509 import ocsp

    with pytest.raises(UntrustedCertificate):
        driver = FixtureDriver((DATA / "ocsp_response.der").read_bytes())
        try:
            p = provider(EE, ocsp=True)
            at = datetime(2021, 9, 17, 18, 25, 24, tzinfo=UTC)
            run_sync(p._check_ocsp(JAAK_2018, TEST_CA, at), driver, None)  # type: ignore[arg-type]
        finally:
            (req,) = driver.requests
            assert req.method == "POST" and req.url == "http://aia.demo.sk.ee/esteid2018"
            assert req.headers["Content-Type"] == "application/ocsp-request"
            assert req.timeout == 5.0
            parsed = ocsp.load_der_ocsp_request(req.body)
            assert parsed.serial_number == JAAK_2018.serial_number
            nonce = parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
            assert len(nonce) == 32


def test_ocsp_http_error_is_unavailable() -> None:
    err = _ocsp_error("ocsp_response.der", "2021-09-17T18:25:24", status=502)
    assert type(err) is ProviderUnavailable


def test_ocsp_garbage_body_is_rejected() -> None:
    p = provider(EE, ocsp=True)
    at = datetime(2021, 9, 17, tzinfo=UTC)
    with pytest.raises(UntrustedCertificate) as err:
        run_sync(p._check_ocsp(JAAK_2018, TEST_CA, at), FixtureDriver(b"invalid"), None)  # type: ignore[arg-type]
    assert err.value.code == "ocsp_malformed"


# --- configuration rules --------------------------------------------------------------------


def _cfg(environment: str, **options: Any) -> ProviderConfig:
    opts: Mapping[str, Any] = {"trusted_ca_certificates": [str(DATA / EE[0])], **options}
    return ProviderConfig("web-eid", "web-eid", environment, {}, Loa.HIGH, "EE", opts)


@pytest.mark.parametrize("environment", ["test", "production"])
def test_fail_open_refused_outside_simulator(environment: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(_cfg(environment, ocsp_fail_open=True), Settings())
    assert err.value.key == "providers.web-eid.ocsp_fail_open"


def test_ocsp_cannot_be_disabled_in_production() -> None:
    with pytest.raises(ConfigError) as err:
        from_config(_cfg("production", ocsp=False), Settings())
    assert err.value.key == "providers.web-eid.ocsp"


@pytest.mark.parametrize(
    "origin",
    [
        "http://ria.ee",
        "https://ria.ee/",
        "https://ria.ee/login",
        "https://ria.ee?x=1",
        "https://user@ria.ee",
        "ria.ee",
        "https://ria.ee:99999",
    ],
)
def test_bad_origins_refused(origin: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(_cfg("test", origin=origin), Settings())
    assert err.value.key == "providers.web-eid.origin"


def test_missing_trust_anchors_refused() -> None:
    cfg = ProviderConfig("web-eid", "web-eid", "test", {}, Loa.HIGH, "EE", {})
    with pytest.raises(ConfigError) as err:
        from_config(cfg, Settings())
    assert err.value.key == "providers.web-eid.trusted_ca_certificates"


def test_shipped_profile_anchors_load() -> None:
    from authbroker.config import load_config
    from authbroker.providers.registry import create_provider

    for env, cns in [
        ("test", ["TEST of ESTEID2018", "Test ESTEID2025"]),
        ("production", ["ESTEID2018", "ESTEID2025"]),
    ]:
        settings = load_config(environment=env, environ={"AUTHBROKER_SECRET_KEYS": "k" * 40})
        p = create_provider(settings.provider("web-eid"), settings)
        assert isinstance(p, WebEidProvider)
        names = [a.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for a in p.anchors]
        assert names == cns
        assert p.ocsp_enabled and not p.ocsp_fail_open


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("ocsp", "yes", "true or false"),  # used to be truthy: OCSP on by accident only
        ("ocsp_fail_open", "no", "true or false"),  # used to be truthy: fail open!
        ("ocsp_timeout", 0, "more than 0"),
        ("ocsp_timeout", 31, "between"),
        ("ocsp_max_age", -1, "at least"),
        ("ocsp_max_skew", "900", "number"),
        ("max_token_length", 100, "between"),
        ("allowed_algorithms", [], "non-empty"),
        ("allowed_algorithms", ["ES256", "HS256"], "subset"),
        ("ocsp_nonce_disabled_urls", "http://ocsp.example", "array"),
        ("disallowed_policies", ["1.3.6.1.4.1.10015.1.3", "x"], "not an OID"),
    ],
)
def test_options_are_read_through_the_schema(option: str, value: Any, message: str) -> None:
    """Issue 17: each bad option is refused at construction, under its own key."""
    with pytest.raises(ConfigError) as err:
        from_config(_cfg("test", **{option: value}), Settings())
    assert err.value.key == f"providers.web-eid.{option}"
    assert message in str(err.value)


def test_one_inline_pem_string_is_one_trusted_ca() -> None:
    """A PEM text holds whitespace: it must not be split like a list of words."""
    raw = (DATA / EE[0]).read_bytes()
    cert = x509.load_pem_x509_certificate(raw) if b"-----BEGIN" in raw else None
    cert = cert or x509.load_der_x509_certificate(raw)
    pem = cert.public_bytes(Encoding.PEM).decode()
    assert " " in pem or "\n" in pem
    provider = from_config(_cfg("test", trusted_ca_certificates=pem), Settings())
    assert len(provider.anchors) == 1
    assert provider.ocsp_timeout == 5.0 and provider.max_token_chars == 10_000
