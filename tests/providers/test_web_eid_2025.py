"""Web eID: ID cards issued since 2025 (ESTEID2025, Zetes Estonia) and web-eid:1.x formats.

* The shipped profile trusts exactly ESTEID2018 + ESTEID2025 in production and
  TEST of ESTEID2018 + Test ESTEID2025 in test, resolved through the
  ``esteid-certificates`` package; the fingerprints are the published ones
  (SHA-256, from the issuers' repositories).
* The simulator's 2025-style hierarchy (root -> issuing CA -> card, P-384,
  ecdsa-with-SHA384, delegated OCSP responder) passes end to end next to the 2018
  one, through the provider and through :class:`Broker`.
* Every ``web-eid:1.x`` format is accepted as the reference validator does;
  2.x and garbage are refused (the vectors file holds the refusals).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import esteid_certificates
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from test_web_eid_vectors import EE, NONCE, VALID_TOKEN, _mutate, provider, validate

from authbroker import Done
from authbroker.config import ProviderConfig, Settings, load_config
from authbroker.crypto.pki import is_issued_by, load_certificate_sources, load_certificates
from authbroker.errors import ConfigError, UntrustedCertificate
from authbroker.flow import Challenge
from authbroker.http import SyncDriver
from authbroker.identity import Identity, Loa
from authbroker.providers.base import AdvanceContext, BeginContext, Next
from authbroker.providers.registry import create_provider
from authbroker.providers.web_eid import WebEidProvider, from_config
from authbroker.store.memory import MemoryStore
from authbroker.testing import RunningSimulator, simulated_broker
from authbroker.testing.simulators.web_eid import (
    DEFAULT_USER,
    DEFAULT_USER_2025,
    HIERARCHY_2025,
    WebEidSimulator,
    start,
)
from runtimes import run_sync

ORIGIN = "https://app.example"

# Published SHA-256 fingerprints (CA repositories of Zetes Estonia http://crt.eidpki.ee/
# and SK ID Solutions https://www.skidsolutions.eu/resources/certificates/).
ESTEID2025 = "30EBA818E427A442BAD8F5B218B6B73CC5445D2170E94B8D36B230C006498AC7"
TEST_ESTEID2025 = "A5CAC6EA1C366EAC01F72CE5AD322ADE710D42639C4A1152B6793FACC2821DEA"
EEGOVCA2025 = "D482BE019730144FE90527A987F4F24E165C9AA75C93F35245549A7C4748198E"
TEST_EEGOVCA2025 = "833113376D4069DA6C64941E0C597F2C2CCC8DDDC53EE6404E976D9F0E8D421F"
ESTEID2018 = "C45AE81AC8B5ED5D8065213FD3DC250C7B3277368A3E97BD8299EFFAF8B65E31"
TEST_ESTEID2018 = "2291C167B5275152B53F1EFA2C1805C9A15EC8DEF7120E56A3726A2959B31049"


def fingerprint(cert: x509.Certificate) -> str:
    return cert.fingerprint(hashes.SHA256()).hex().upper()


# --- trust anchors from the esteid-certificates package ------------------------------


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ("production", [ESTEID2018, ESTEID2025]),
        ("test", [TEST_ESTEID2018, TEST_ESTEID2025]),
    ],
)
def test_profile_trusts_exactly_the_published_ca_fingerprints(
    environment: str, expected: list[str]
) -> None:
    settings = load_config(environment=environment, environ={"AUTHBROKER_SECRET_KEYS": "k" * 40})
    p = create_provider(settings.provider("web-eid"), settings)
    assert isinstance(p, WebEidProvider)
    assert [fingerprint(a) for a in p.anchors] == expected


@pytest.mark.parametrize(
    ("issuing", "root_file", "root_fp"),
    [
        ("ESTEID2025", "EEGovCA2025.pem", EEGOVCA2025),
        ("Test ESTEID2025", "testEEGovCA2025.pem", TEST_EEGOVCA2025),
    ],
)
def test_esteid2025_is_issued_by_the_published_eegovca2025(
    issuing: str, root_file: str, root_fp: str
) -> None:
    """The package's copies form the published chain: issuing CA signed by the root,
    EC P-384 keys, ecdsa-with-SHA384."""
    (ca,) = load_certificate_sources([f"esteid-certificates:{issuing}"])
    roots = [
        load_certificates(path.read_bytes())[0]
        for path in esteid_certificates.get_root_ca_files(test=issuing.startswith("Test"))
        if path.name == root_file
    ]
    assert [fingerprint(r) for r in roots] == [root_fp]
    assert is_issued_by(ca, roots[0])
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
    assert isinstance(ca.signature_hash_algorithm, hashes.SHA384)
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == (
        "Zetes Estonia OÜ"
    )


def test_unknown_package_certificate_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        load_certificate_sources(["esteid-certificates:ESTEID2099"], key="k.trusted")
    assert err.value.key == "k.trusted"
    with pytest.raises(ConfigError):
        provider([], trusted_ca_certificates=["esteid-certificates:"])


def test_real_token_validates_against_the_package_anchor() -> None:
    """The Web eID project's valid token chains to the package's TEST of ESTEID2018,
    mixed with an explicit PEM path (both spellings keep working)."""
    p = provider(EE, trusted_ca_certificates=["esteid-certificates:Test ESTEID2025"])
    with pytest.raises(UntrustedCertificate) as err:
        validate(p, VALID_TOKEN, NONCE, "2024-08-01")
    assert err.value.code == "untrusted_issuer"
    p = provider(
        EE,
        trusted_ca_certificates=[
            "esteid-certificates:Test ESTEID2025",
            "esteid-certificates:TEST of ESTEID2018",
        ],
    )
    assert validate(p, VALID_TOKEN, NONCE, "2024-08-01").subject == "PNOEE-38001085718"


# --- web-eid:1.x formats ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["web-eid:1", "web-eid:1.0", "web-eid:1.2", "web-eid:1.10"])
def test_any_web_eid_1_minor_version_is_accepted(fmt: str) -> None:
    """The reference accepts ``^web-eid:1(?:\\.\\d+)?$``; minor versions other than 1.1
    are validated as 1.0 (the signature does not cover ``format``)."""
    identity = validate(provider(EE), _mutate(format=fmt), NONCE, "2024-08-01")
    assert identity.subject == "PNOEE-38001085718"
    assert identity.raw["format"] == fmt


def test_later_minor_version_ignores_fields_it_does_not_use() -> None:
    token = _mutate(format="web-eid:1.2", unverifiedIntermediateCertificates=["AAAA"])
    assert validate(provider(EE), token, NONCE, "2024-08-01").subject == "PNOEE-38001085718"


# --- the simulator's 2025 hierarchy ----------------------------------------------------


@pytest.fixture(scope="module")
def running() -> Iterator[RunningSimulator]:
    cfg = ProviderConfig("web-eid", "web-eid", "simulator", {"en": "x"}, Loa.HIGH, "EE", {})
    sim = start(cfg, Settings())
    yield sim
    sim.stop()


@pytest.fixture(scope="module")
def driver() -> Iterator[SyncDriver]:
    d = SyncDriver(retries=0)
    yield d
    d.close()


def _provider(running: RunningSimulator, **options: Any) -> WebEidProvider:
    opts = {**running.overrides, "origin": ORIGIN, **options}
    cfg = ProviderConfig("web-eid", "web-eid", "simulator", {"en": "x"}, Loa.HIGH, "EE", opts)
    return from_config(cfg, Settings())


def _login(p: WebEidProvider, sim: WebEidSimulator, driver: SyncDriver, **token: Any) -> Identity:
    store, now = MemoryStore(), time.time()
    nxt = run_sync(p.begin(BeginContext("f" * 20, "", now)), None, store)
    assert isinstance(nxt, Next) and isinstance(nxt.step, Challenge)
    gen = p.advance(
        AdvanceContext("f" * 20, now),
        nxt.data,
        {"token": sim.make_token(ORIGIN, nxt.step.nonce, **token)},
    )
    return run_sync(gen, driver, store)


def test_2025_hierarchy_has_the_real_shape(running: RunningSimulator) -> None:
    sim: WebEidSimulator = running.extra["simulator"]
    chain = sim.hierarchies[HIERARCHY_2025]
    card = sim.cards[DEFAULT_USER_2025]
    assert chain.root_cert is not None and is_issued_by(chain.ca_cert, chain.root_cert)
    assert (
        chain.root_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        == 1
    )
    assert (
        chain.ca_cert.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length
        == 0
    )
    for cert in (chain.root_cert, chain.ca_cert, card.certificate, chain.responder_cert):
        key = cert.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp384r1"
        assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)
    assert is_issued_by(card.certificate, chain.ca_cert)
    assert is_issued_by(chain.responder_cert, chain.ca_cert)
    eku = chain.responder_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]
    aia = card.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess)
    assert [d.access_location.value for d in aia.value] == [sim.ocsp_url_2025]
    assert sim.ocsp_url_2025 != sim.ocsp_url


def test_2025_and_2018_cards_both_pass_end_to_end(
    running: RunningSimulator, driver: SyncDriver
) -> None:
    sim: WebEidSimulator = running.extra["simulator"]
    p = _provider(running)
    before = sim.ocsp_requests
    new = _login(p, sim, driver, user=DEFAULT_USER_2025)
    old = _login(p, sim, driver, user=DEFAULT_USER)
    assert sim.ocsp_requests == before + 2
    assert new.national_id is not None and new.national_id.value == DEFAULT_USER_2025
    assert new.raw["issuer"] == "Test ESTEID2025-SIM" and new.raw["algorithm"] == "ES384"
    assert old.raw["issuer"] == "TEST of ESTEID-SIM"
    # web-eid:1.1 with a signing certificate from the same 2025 CA.
    assert _login(p, sim, driver, user=DEFAULT_USER_2025, fmt="web-eid:1.1").subject == (
        f"PNOEE-{DEFAULT_USER_2025}"
    )


def test_2025_revoked_card_is_refused(running: RunningSimulator, driver: SyncDriver) -> None:
    sim: WebEidSimulator = running.extra["simulator"]
    with pytest.raises(UntrustedCertificate) as err:
        _login(_provider(running), sim, driver, user="49901011003")
    assert err.value.code == "revoked"


def test_2025_card_is_untrusted_without_esteid2025(
    running: RunningSimulator, driver: SyncDriver
) -> None:
    """The defect this fixes: trusting only the 2018 CA refuses every new card."""
    sim: WebEidSimulator = running.extra["simulator"]
    p = _provider(running, trusted_ca_certificates=[sim.ca_pem])
    with pytest.raises(UntrustedCertificate) as err:
        _login(p, sim, driver, user=DEFAULT_USER_2025)
    assert err.value.code == "untrusted_issuer"


def test_2025_responder_answers_only_for_its_own_ca(running: RunningSimulator) -> None:
    """RFC 6960 2.3: a responder asked about another CA's certificate says
    ``unauthorized``; the 2018 responder likewise refuses 2025 cards."""
    sim: WebEidSimulator = running.extra["simulator"]
    old, new = sim.cards[DEFAULT_USER], sim.cards[DEFAULT_USER_2025]
    chain = sim.hierarchies[HIERARCHY_2025]

    def ask(card_cert: x509.Certificate, issuer: x509.Certificate, hierarchy: str) -> Any:
        req = (
            ocsp.OCSPRequestBuilder()
            .add_certificate(card_cert, issuer, hashes.SHA1())  # CertID hash, as the adapter sends
            .build()
            .public_bytes(serialization.Encoding.DER)
        )
        return ocsp.load_der_ocsp_response(sim.answer(req, hierarchy)).response_status

    assert ask(new.certificate, chain.ca_cert, "2025") == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert ask(old.certificate, sim.ca_cert, "2025") == ocsp.OCSPResponseStatus.UNAUTHORIZED
    assert ask(new.certificate, chain.ca_cert, "2018") == ocsp.OCSPResponseStatus.UNAUTHORIZED
    # Right serial, wrong issuer in the CertID.
    assert ask(new.certificate, sim.ca_cert, "2025") == ocsp.OCSPResponseStatus.UNAUTHORIZED


def test_2025_ocsp_misbehaviour_is_refused(running: RunningSimulator, driver: SyncDriver) -> None:
    sim: WebEidSimulator = running.extra["simulator"]
    p = _provider(running)
    try:
        for switch, code in [("wrong_signer", "ocsp_responder"), ("wrong_nonce", "ocsp_nonce")]:
            sim.switches[switch] = True
            with pytest.raises(UntrustedCertificate) as err:
                _login(p, sim, driver, user=DEFAULT_USER_2025)
            assert err.value.code == code
            sim.switches[switch] = False
    finally:
        for key in sim.switches:
            sim.switches[key] = False


def test_broker_end_to_end_with_a_2025_card() -> None:
    broker = simulated_broker(load_config(environ={}), store=MemoryStore())
    try:
        step = broker.begin("web-eid", binding="browser-a")
        assert isinstance(step, Challenge)
        sim = broker.simulator("web-eid")
        assert sim is not None
        token = sim.extra["make_token"](broker.settings.base_url, step.nonce, DEFAULT_USER_2025)
        done = broker.advance(step.flow_id, {"token": token}, binding="browser-a")
        assert isinstance(done, Done)
        assert done.identity.subject == f"PNOEE-{DEFAULT_USER_2025}"
        assert done.identity.raw["issuer"] == "Test ESTEID2025-SIM"
    finally:
        broker.close()
