"""Mobiilivarmenne adapter against the simulated MSSP (MID-01..04).

The simulator is a real peer: it validates the MSS_SignatureReq, makes genuine CMS
signatures with per-user certificates of a test CA, and can be scripted per MSISDN
to answer any status/fault code of the FiCom guideline or to put one defect into the
signature. Time is injected (no sleeping): the clock jumps by the poll interval.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker import Broker, Done, Loa, Poll, Step
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import load_config
from authbroker.crypto.cms import verify_signed_data
from authbroker.errors import (
    AccessDenied,
    AuthBrokerError,
    ConfigError,
    Expired,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    RateLimited,
    UntrustedCertificate,
    UserCancelled,
)
from authbroker.http import HttpRequest, HttpResponse, SyncDriver
from authbroker.identity import Identity
from authbroker.providers.base import AdvanceContext
from authbroker.providers.mobiilivarmenne import (
    ADDITIONAL_SERVICE,
    PERSON_ID,
    STATUS,
    MobiilivarmenneProvider,
    from_config,
    normalize_msisdn,
    status_error,
)
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import simulated_async_broker, simulated_broker
from authbroker.testing.simulators.mobiilivarmenne import MSSP
from runtimes import run_sync

NAME = "mobiilivarmenne"
ANNA = "+358401234567"
VILLE = "+358401234568"


class Clock:
    def __init__(self) -> None:
        import time

        self.t = time.time()

    def __call__(self) -> float:
        return self.t


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def broker(clock: Clock) -> Iterator[Broker]:
    b = simulated_broker(load_config(environ={}), store=MemoryStore(), now=clock)
    yield b
    b.close()


@pytest.fixture(autouse=True)
def _real_time(clock: Clock) -> None:
    """Tests jump the clock forward; the simulator signs with the real signing time."""
    import time

    clock.t = time.time()


@pytest.fixture
def mssp(broker: Broker) -> Iterator[MSSP]:
    sim = broker.simulator(NAME)
    assert sim is not None
    m: MSSP = sim.extra["mssp"]
    m.reset()
    yield m
    m.reset()


def run_flow(broker: Broker, clock: Clock, msisdn: str = ANNA, **params: str) -> Step:
    step = broker.begin(
        NAME, params={"msisdn": msisdn, **params}, binding="b", client_ip="10.0.0.1"
    )
    for _ in range(20):
        if not isinstance(step, Poll):
            return step
        clock.t += max(step.interval, 0.0) + 0.01
        step = broker.advance(step.flow_id, {}, binding="b")
    raise AssertionError("flow did not finish")


# --- MSISDN ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw", ["040 1234567", "+358 40 123 4567", "0401234567", "+358401234567", "(040) 123-4567"]
)
def test_msisdn_normalized_to_e164(raw: str) -> None:
    assert normalize_msisdn(raw) == "+358401234567"


@pytest.mark.parametrize(
    "raw", ["", "12", "abc", "+358 9 1234 5678", "+46701234567", "0" * 40, "+358401234567\n1"]
)
def test_bad_msisdn_refused(raw: str) -> None:
    with pytest.raises(InvalidInput):
        normalize_msisdn(raw)


# --- end to end -----------------------------------------------------------------------


def test_end_to_end_sync(broker: Broker, clock: Clock, mssp: MSSP) -> None:
    mssp.script(ANNA, pending_polls=2)
    step = broker.begin(NAME, params={"msisdn": "040 1234567"}, binding="b", language="fi")
    assert isinstance(step, Poll)
    code = step.display.verification_code
    assert code and 4 <= len(code) <= 8 and code.isalnum()
    assert code in step.display.message["fi"] and code in step.display.message["sv"]
    assert step.interval == 1.0
    # The same event id went to the MSSP (so the phone shows it), MID-02.
    tx = list(mssp.transactions.values())[-1]
    services = {s["Description"]: s for s in tx.request["AdditionalServices"]}
    assert services[ADDITIONAL_SERVICE["event_id"]]["EventID"]["Value"] == code
    assert len(tx.challenge) == 32
    polls = 0
    while isinstance(step, Poll):
        clock.t += step.interval + 0.01
        step = broker.advance(step.flow_id, {}, binding="b")
        polls += 1
    assert polls == 3  # two outstanding (504) answers, then the signature
    assert isinstance(step, Done)
    ident = step.identity
    assert ident.national_id is not None
    assert ident.national_id.country == "FI"
    assert ident.national_id.value == "010170-960F"
    assert ident.loa == Loa.HIGH
    assert ident.method == "mobiilivarmenne"
    assert ident.attributes["satu"] == "999020016"
    assert ident.subject == "999020016"
    assert (ident.given_name, ident.family_name) == ("ANNA", "DEMO")
    assert ident.phone == ANNA


def test_rsa_user_and_status_500_verified_too(broker: Broker, clock: Clock, mssp: MSSP) -> None:
    mssp.script(VILLE, final_status=500)
    done = run_flow(broker, clock, VILLE)
    assert isinstance(done, Done)
    assert done.identity.national_id is not None
    assert done.identity.national_id.value == "150485-914A"


async def test_end_to_end_async(clock: Clock) -> None:
    sink = MemorySink()
    broker = simulated_async_broker(
        load_config(environ={}), store=AsyncMemoryStore(), audit=AuditLog([sink]), now=clock
    )
    try:
        step = await broker.begin(NAME, params={"msisdn": ANNA}, binding="b")
        while isinstance(step, Poll):
            clock.t += step.interval + 0.01
            step = await broker.advance(step.flow_id, {}, binding="b")
        assert isinstance(step, Done)
        assert step.identity.national_id is not None
        assert step.identity.national_id.value == "010170-960F"
        assert "010170" not in repr(sink.events)
    finally:
        await broker.aclose()


def _provider(broker: Broker, **overrides: Any) -> MobiilivarmenneProvider:
    sim = broker.simulator(NAME)
    assert sim is not None
    cfg = broker.settings.provider(NAME).with_options(**{**sim.overrides, **overrides})
    return from_config(cfg, broker.settings)


def test_synch_messaging_mode(broker: Broker, clock: Clock, mssp: MSSP) -> None:
    provider = _provider(broker, messaging_mode="synch")
    b = simulated_broker(
        broker.settings, store=MemoryStore(), providers={NAME: provider}, now=clock
    )
    before = mssp.transactions.copy()
    step = b.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert isinstance(step, Poll) and step.display.verification_code
    assert mssp.transactions == before  # nothing sent before the browser shows the code
    done = b.advance(step.flow_id)
    assert isinstance(done, Done)
    assert done.identity.attributes["satu"] == "999020016"


def test_polling_faster_than_interval_does_not_reach_mssp(
    broker: Broker, clock: Clock, mssp: MSSP
) -> None:
    sim = broker.simulator(NAME)
    assert sim is not None and sim.server is not None
    step = broker.begin(NAME, params={"msisdn": ANNA}, binding="b")
    assert isinstance(step, Poll)
    count = sim.server.requests["/rest/service"]  # type: ignore[attr-defined]
    again = broker.advance(step.flow_id, {}, binding="b")
    assert isinstance(again, Poll)
    assert 0 < again.interval <= 1.0
    assert sim.server.requests["/rest/service"] == count  # type: ignore[attr-defined]


def test_transaction_deadline_expires(broker: Broker, clock: Clock, mssp: MSSP) -> None:
    mssp.script(ANNA, pending_polls=1000)
    step = broker.begin(NAME, params={"msisdn": ANNA}, binding="b")
    clock.t += 179
    assert isinstance(broker.advance(step.flow_id, {}, binding="b"), Poll)
    clock.t += 40
    with pytest.raises(Expired):
        broker.advance(step.flow_id, {}, binding="b")


# --- every status code ----------------------------------------------------------------

FINAL_CODES = sorted(c for c, info in STATUS.items() if info.error is not None)


@pytest.mark.parametrize("code", FINAL_CODES)
def test_every_status_code_maps_to_typed_error(
    broker: Broker, clock: Clock, mssp: MSSP, code: int
) -> None:
    mssp.script(ANNA, outcome=code, pending_polls=1)
    expected = STATUS[code].error
    assert expected is not None
    with pytest.raises(AuthBrokerError) as err:
        run_flow(broker, clock)
    assert type(err.value) is expected
    assert err.value.code == STATUS[code].reason
    message = err.value.details["message"]
    assert set(message) == {"fi", "sv", "en"} and all(message.values())
    assert err.value.details["status"] == code


@pytest.mark.parametrize(
    ("code", "specifier", "expected"),
    [
        (101, 1011, InvalidInput),
        (101, 1012, InvalidInput),
        (101, 1014, ProviderError),
        (104, 1041, AccessDenied),
        (208, 2082, Expired),
        (401, 4011, UserCancelled),
        (402, 4021, AccessDenied),
        (105, 1052, ProviderError),
        (900, 9001, ProviderError),
    ],
)
def test_specifiers_at_request_time(
    broker: Broker, clock: Clock, mssp: MSSP, code: int, specifier: int, expected: type[Exception]
) -> None:
    mssp.script(ANNA, outcome=code, specifier=specifier, at_request=True)
    with pytest.raises(AuthBrokerError) as err:
        broker.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert type(err.value) is expected


def test_named_mappings() -> None:
    assert isinstance(status_error(401), UserCancelled)
    assert isinstance(status_error(208), Expired)
    assert isinstance(status_error(402), AccessDenied)
    assert isinstance(status_error(403), AccessDenied)
    assert isinstance(status_error(501), UntrustedCertificate)
    assert isinstance(status_error(105), ProviderError)
    assert type(status_error(12345)) is ProviderError  # unknown codes fail closed


def test_unknown_number_looks_like_no_mobile_id(broker: Broker, mssp: MSSP) -> None:
    """MID-01: a number without Mobile ID and an unknown one are indistinguishable."""
    with pytest.raises(ProviderError) as unknown:
        broker.begin(NAME, params={"msisdn": "+358409999999"}, insecure_unbound=True)
    mssp.script(ANNA, outcome=404, at_request=True)
    with pytest.raises(ProviderError) as nokey:
        broker.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert unknown.value.code == nokey.value.code == "mid_no_mobile_id"
    assert str(unknown.value) != ""  # messages differ only by the internal status name
    assert unknown.value.details["message"] == nokey.value.details["message"]
    assert "+358" not in str(unknown.value) + repr(unknown.value.details)


def test_nospam_code(broker: Broker, clock: Clock, mssp: MSSP) -> None:
    mssp.users[ANNA].nospam = "Secret7"
    with pytest.raises(InvalidInput) as err:
        broker.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert err.value.code == "mid_nospam"
    with pytest.raises(InvalidInput):
        broker.begin(NAME, params={"msisdn": ANNA, "nospam": "Wrong12"}, insecure_unbound=True)
    assert isinstance(run_flow(broker, clock, ANNA, nospam="Secret7"), Done)


# --- signature defects (MID-03) -------------------------------------------------------


@pytest.mark.parametrize(
    ("misbehave", "error", "code"),
    [
        ("forge", InvalidSignature, "cms_signature"),
        ("wrong_data", InvalidSignature, "cms_content"),
        ("other_challenge", InvalidSignature, "cms_content"),
        ("untrusted_ca", UntrustedCertificate, "untrusted_issuer"),
        ("expired_cert", UntrustedCertificate, "cert_expired"),
        ("wrong_key_usage", UntrustedCertificate, "key_usage"),
        ("no_attrs", InvalidInput, "cms_no_attrs"),
        ("two_signers", InvalidInput, "cms_signers"),
        ("sid_mismatch", InvalidSignature, "cms_signature"),
        ("not_der", InvalidInput, "cms_not_der"),
    ],
)
def test_signature_defects_rejected(
    broker: Broker, clock: Clock, mssp: MSSP, misbehave: str, error: type[Exception], code: str
) -> None:
    assert isinstance(run_flow(broker, clock), Done)  # a previous challenge exists
    mssp.script(ANNA, misbehave=misbehave)
    with pytest.raises(error) as err:
        run_flow(broker, clock)
    assert type(err.value) is error
    assert getattr(err.value, "code", None) == code


def test_detached_signature_over_other_data_rejected(mssp: MSSP) -> None:
    """Detached CMS: only the message digest binds the challenge."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    user = mssp.users[ANNA]
    detached = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"another challenge")
        .add_signer(user.cert, user.key, hashes.SHA256())
        .sign(
            serialization.Encoding.DER,
            [pkcs7.PKCS7Options.Binary, pkcs7.PKCS7Options.DetachedSignature],
        )
    )
    with pytest.raises(InvalidSignature) as err:
        verify_signed_data(detached, b"the challenge we sent")
    assert err.value.code == "cms_digest"
    assert verify_signed_data(detached, b"another challenge").signer == user.cert


def test_sha1_digest_refused(mssp: MSSP) -> None:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    user = mssp.users[VILLE]
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"x")
        .add_signer(user.cert, user.key, hashes.SHA512())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    assert verify_signed_data(der, b"x").digest_algorithm == "sha512"
    with pytest.raises(InvalidInput) as err:
        verify_signed_data(der, b"x", allowed_digests=frozenset({"sha256"}))
    assert err.value.code == "cms_digest_alg"


@pytest.mark.parametrize("version", ["v3", "v4", "v5"])
def test_signed_data_version_must_fit_its_content(mssp: MSSP, version: str) -> None:
    # RFC 5652 5.1: one issuerAndSerialNumber signer, plain certificates, id-data: v1.
    # The version is not signed: a changed one is a changed message.
    from asn1crypto import cms as asn1_cms
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs7

    user = mssp.users[ANNA]
    der = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(b"x")
        .add_signer(user.cert, user.key, hashes.SHA256())
        .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary])
    )
    assert verify_signed_data(der, b"x").signer == user.cert
    info = asn1_cms.ContentInfo.load(der)
    info["content"]["version"] = version
    with pytest.raises(InvalidInput) as err:
        verify_signed_data(info.dump(), b"x")
    assert err.value.code == "cms_version"


# --- configuration and abuse limits ---------------------------------------------------


def test_trust_anchors_required(broker: Broker) -> None:
    with pytest.raises(ConfigError) as err:
        _provider(broker, trust_anchors=[])
    assert err.value.key == "providers.mobiilivarmenne.trust_anchors"


def test_wrong_ap_password_is_provider_error(broker: Broker, mssp: MSSP) -> None:
    provider = _provider(broker, ap_password="wrong")
    b = simulated_broker(broker.settings, store=MemoryStore(), providers={NAME: provider})
    with pytest.raises(ProviderError) as err:
        b.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert err.value.code == "mid_auth"


def test_rate_limit_per_msisdn(broker: Broker, mssp: MSSP) -> None:
    provider = _provider(broker, max_requests_per_msisdn=2)
    b = simulated_broker(broker.settings, store=MemoryStore(), providers={NAME: provider})
    b.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    b.begin(
        NAME, params={"msisdn": "040 1234567"}, insecure_unbound=True
    )  # same number, other spelling
    before = len(mssp.transactions)
    with pytest.raises(RateLimited):
        b.begin(NAME, params={"msisdn": ANNA}, insecure_unbound=True)
    assert len(mssp.transactions) == before  # no push reached the phone
    b.begin(NAME, params={"msisdn": VILLE}, insecure_unbound=True)  # other numbers unaffected


def test_production_profile_requires_deployment_settings() -> None:
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        overrides={"broker": {"environment": "production"}, "providers": {NAME: {}}},
    )
    with pytest.raises(ConfigError):
        from_config(settings.provider(NAME), settings)


# --- fuzz: arbitrary MSSP answers only ever raise AuthBrokerError ---------------------


class _Canned(SyncDriver):
    def __init__(self, response: HttpResponse) -> None:
        super().__init__()
        self.response = response

    def send(self, req: HttpRequest) -> HttpResponse:
        return self.response


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "MSS_StatusResp",
                    "Status",
                    "StatusCode",
                    "Value",
                    "MSS_Signature",
                    "Base64Signature",
                    "MSSP_TransID",
                    "Fault",
                    "Code",
                    "SubCode",
                    "ServiceResponses",
                    "Description",
                    "Attributes",
                    "Name",
                    "AP_Info",
                    "MobileUser",
                    "MSISDN",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)

_VALID_CACHE: dict[str, Any] = {}


def _person_reply(status: str = "ok", **values: str) -> dict[str, Any]:
    return {
        "Description": ADDITIONAL_SERVICE["person_identity"],
        "Status": {"StatusCode": {"Value": PERSON_ID + status}},
        "Attributes": [{"Name": PERSON_ID + k, "Value": v} for k, v in values.items()],
    }


def _state(broker: Broker, clock: Clock) -> tuple[MobiilivarmenneProvider, dict[str, Any], bytes]:
    """A real pending flow state and a genuine signature over its challenge."""
    if "state" not in _VALID_CACHE:
        provider = broker.provider(NAME)
        assert isinstance(provider, MobiilivarmenneProvider)
        sim = broker.simulator(NAME)
        assert sim is not None
        mssp: MSSP = sim.extra["mssp"]
        data = {
            "msisdn": ANNA,
            "challenge": base64.b64encode(b"c" * 32).decode(),
            "event_id": "ABCD",
            "language": "fi",
            "nospam": "",
            "started": clock.t,
            "deadline": clock.t + 10_000,
            "interval": 1.0,
            "sent": True,
            "transid": "T1",
            "next_poll": 0,
        }
        _VALID_CACHE["state"] = (provider, data, mssp.sign(mssp.users[ANNA], b"c" * 32))
    return _VALID_CACHE["state"]  # type: ignore[no-any-return]


def _advance(
    provider: MobiilivarmenneProvider, data: dict[str, Any], resp: HttpResponse, now: float
) -> object:
    ctx = AdvanceContext(flow_id="f" * 43, now=now)
    return run_sync(provider.advance(ctx, data, {}), _Canned(resp), MemoryStore())


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=_json,
    status=st.sampled_from([200, 400, 401, 500, 502]),
    ctype=st.sampled_from(["application/json", "text/html"]),
)
def test_fuzzed_mssp_json_raises_only_typed_errors(
    broker: Broker, clock: Clock, body: Any, status: int, ctype: str
) -> None:
    provider, data, _ = _state(broker, clock)
    resp = HttpResponse(status, {"content-type": ctype}, json.dumps(body).encode())
    try:
        result = _advance(provider, dict(data), resp, clock.t)
    except AuthBrokerError:
        return
    assert not isinstance(result, Identity)  # random JSON never yields an identity


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    position=st.integers(min_value=0, max_value=10_000),
    value=st.integers(min_value=0, max_value=255),
    truncate=st.booleans(),
    code=st.sampled_from(["500", "502", 502, "fi:_502"]),
)
def test_mutated_signature_raises_only_typed_errors(
    broker: Broker, clock: Clock, position: int, value: int, truncate: bool, code: object
) -> None:
    provider, data, der = _state(broker, clock)
    raw = bytearray(der)
    pos = position % len(raw)
    if truncate:
        raw = raw[:pos]
    else:
        raw[pos] = value
    body = {
        "MSS_StatusResp": {
            "MSSP_TransID": "T1",
            "Status": {"StatusCode": {"Value": code}},
            "MSS_Signature": {"Base64Signature": base64.b64encode(bytes(raw)).decode()},
            "ServiceResponses": [_person_reply(hetu="010170-960F", satu="999020016")],
        }
    }
    resp = HttpResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())
    try:
        result = _advance(provider, dict(data), resp, clock.t)
    except AuthBrokerError:
        assert bytes(raw) != der
        return
    assert isinstance(result, Identity)  # only the genuine bytes (or a no-op change)
    assert bytes(raw) == der


# --- issue 23: the HETU must be bound to the verified signer --------------------------


HOSTILE_PERSON_REPLIES = [
    ({"person_reply": "no_satu"}, "mid_person_unbound"),
    ({"person_reply": "partial_failure"}, "mid_person_unbound"),
    ({"misbehave": "cert_without_satu"}, "mid_person_unbound"),
    ({"person_reply": "other_satu"}, "mid_person"),
]


@pytest.mark.parametrize(("script", "code"), HOSTILE_PERSON_REPLIES)
def test_unbound_hetu_refused_by_default(
    broker: Broker, clock: Clock, mssp: MSSP, script: dict[str, str], code: str
) -> None:
    """A PersonIdentity HETU not tied to the signer's certificate by SATU logs nobody in."""
    sink = MemorySink()
    b = simulated_broker(
        broker.settings,
        store=MemoryStore(),
        providers={NAME: broker.provider(NAME)},
        now=clock,
        audit=AuditLog([sink]),
    )
    mssp.script(ANNA, **script)
    with pytest.raises(InvalidInput) as err:
        run_flow(b, clock)
    assert err.value.code == code
    assert "010170" not in str(err.value) and "150485" not in str(err.value)
    assert [e.reason for e in sink.events if e.outcome == "failure"][-1] == code
    b.close()


@pytest.mark.parametrize(("script", "code"), HOSTILE_PERSON_REPLIES[:3])
def test_unbound_hetu_dropped_when_national_id_not_required(
    broker: Broker, clock: Clock, mssp: MSSP, script: dict[str, str], code: str
) -> None:
    provider = _provider(broker, require_national_id=False)
    b = simulated_broker(
        broker.settings, store=MemoryStore(), providers={NAME: provider}, now=clock
    )
    mssp.script(ANNA, **script)
    done = run_flow(b, clock)
    assert isinstance(done, Done)
    assert done.identity.national_id is None
    if "misbehave" in script:
        assert "satu" not in done.identity.attributes
        assert done.identity.subject.startswith("cert:")
    else:
        assert done.identity.subject == "999020016"


def test_forged_satu_refused_even_without_national_id(
    broker: Broker, clock: Clock, mssp: MSSP
) -> None:
    provider = _provider(broker, require_national_id=False)
    b = simulated_broker(
        broker.settings, store=MemoryStore(), providers={NAME: provider}, now=clock
    )
    mssp.script(ANNA, person_reply="other_satu")
    with pytest.raises(InvalidInput) as err:
        run_flow(b, clock)
    assert err.value.code == "mid_person"


def test_partial_failure_with_matching_satu_is_bound(
    mssp: MSSP, broker: Broker, clock: Clock
) -> None:
    """#partialFailure means some attribute is missing; a matching SATU still binds."""
    provider, data, der = _state(broker, clock)
    body = {
        "MSS_StatusResp": {
            "MSSP_TransID": "T1",
            "Status": {"StatusCode": {"Value": "502"}},
            "MSS_Signature": {"Base64Signature": base64.b64encode(der).decode()},
            "ServiceResponses": [
                _person_reply("partialFailure", hetu="010170-960F", satu="999020016")
            ],
        }
    }
    resp = HttpResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())
    result = _advance(provider, dict(data), resp, clock.t)
    assert isinstance(result, Identity)
    assert result.national_id is not None and result.national_id.value == "010170-960F"


def test_national_id_required_needs_person_identity(broker: Broker) -> None:
    with pytest.raises(ConfigError) as err:
        _provider(broker, person_identity=False)
    assert err.value.key == "providers.mobiilivarmenne.require_national_id"
    assert _provider(broker, person_identity=False, require_national_id=False)


def _production_settings() -> Any:
    return load_config(
        environ={
            "AUTHBROKER_SECRET_KEYS": "k" * 40,
            "AUTHBROKER_MOBIILIVARMENNE_AP_PASSWORD": "pw",
        },
        overrides={
            "broker": {"environment": "production", "base_url": "https://rp.example"},
            "providers": {
                NAME: {
                    "endpoint": "https://ae.example/rest/service",
                    "ap_id": "http://ae.example/rp",
                    "person_identity": True,
                    "trust_anchors": [MSSP(ap_id="x", ap_password="y").pki.ca_pem],
                }
            },
        },
    )


def test_production_profile_refuses_unpinned_tls(tmp_path: Any) -> None:
    settings = _production_settings()
    with pytest.raises(ConfigError) as err:
        from_config(settings.provider(NAME), settings)
    assert err.value.key == "providers.mobiilivarmenne.ca_file"
    ca = tmp_path / "ae-ca.pem"
    ca.write_text(MSSP(ap_id="x", ap_password="y").pki.ca_pem)
    provider = from_config(settings.provider(NAME).with_options(ca_file=str(ca)), settings)
    assert provider.mtls is not None and provider.mtls.ca_file == str(ca)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("allowed_regions", "FI", "array"),  # not the regions F and I
        ("default_region", 358, "string"),
        ("max_requests_per_msisdn", 2.5, "integer"),  # not silently 2
        ("max_requests_per_ip", 0, "between"),
        ("transaction_timeout", 601, "between"),
        ("poll_interval", 0, "between"),
        ("signing_time_skew", -1, "between"),
        ("person_identity_attributes", "hetu satu", "array"),
        ("http_user", 1, "string"),
        ("key_usage", ["digital_signature", "bogus"], "list of"),
        ("ap_id", "", "required"),
    ],
)
def test_options_are_read_through_the_schema(
    broker: Broker, option: str, value: Any, message: str
) -> None:
    """Issue 17: every bad option is refused at construction, under its own key."""
    with pytest.raises(ConfigError) as err:
        _provider(broker, **{option: value})
    assert err.value.key == f"providers.mobiilivarmenne.{option}"
    assert message in str(err.value)


def test_one_inline_pem_string_is_one_trust_anchor(broker: Broker, mssp: MSSP) -> None:
    """A PEM text holds whitespace: it must not be split like a list of words."""
    provider = _provider(broker, trust_anchors=mssp.pki.ca_pem, intermediates=mssp.pki.ca_pem)
    assert len(provider.anchors) == 1 and len(provider.intermediates) == 1
    assert isinstance(provider.max_per_msisdn, int) and isinstance(provider.max_per_ip, int)
    assert provider.flow_ttl == provider.timeout + 60


@pytest.mark.parametrize(
    ("profile", "usage"),
    [("authentication", "digital_signature"), ("signature", "non_repudiation")],
)
def test_key_usage_follows_the_signature_profile(broker: Broker, profile: str, usage: str) -> None:
    """The shipped profile pins no key usage, so a signing profile really requires
    nonRepudiation (it used to be pinned to digitalSignature for every profile)."""
    provider = _provider(broker, signature_profile=profile)
    assert provider.key_usage == frozenset({usage})
