"""TUPAS adapter against the simulated bank (TUP-01..05).

MAC vectors are hand-verified ones computed from the TUPAS MAC rule (SHA-256 over the
field sequence and the shared secret); every other
test runs the real message exchange: the adapter builds the A01Y form, the simulated
bank checks it and answers with a B02K response, the adapter verifies it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from authbroker import AutoPost, Broker, Done, Loa
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import load_config
from authbroker.errors import (
    AccessDenied,
    AlreadyUsed,
    AuthBrokerError,
    ConfigError,
    Expired,
    FlowNotFound,
    InvalidInput,
    InvalidSignature,
    ProviderError,
    UserCancelled,
)
from authbroker.identity import Identity
from authbroker.providers.base import AdvanceContext
from authbroker.providers.tupas import (
    REQUEST_FIELDS,
    RESPONSE_FIELDS,
    TupasProvider,
    compute_mac,
    from_config,
    is_valid_satu,
    response_mac_values,
)
from authbroker.store.base import AsyncStateStore, StateStore
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import simulated_async_broker, simulated_broker
from authbroker.testing.simulators.tupas import BankControl, TupasBank
from conftest import run_together
from runtimes import run_async, run_sync

BANK = "tupas-nordea"
HETU_RE = re.compile(r"\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]")

# --- MAC vectors (TUPAS §1.8 vectors, re-computed here) -----------------------------------

PHP_BASE = ["123", "123", "123", "20161212232323123456", "123", "123", "01", "123", "123"]


def _php(alg: str, custtype: str = "123") -> list[str]:
    values = list(PHP_BASE)
    values[6] = alg
    values[8] = custtype
    return values


@pytest.mark.parametrize(
    ("values", "secret", "alg", "expected"),
    [
        (_php("01"), "333", "01", "9F5C42C17DC5F4DBBEF2347C361DFE06"),
        (_php("02"), "333", "02", "D3DDBDD399FBBED4F5227F5652FCC377074FE18A"),
        (
            _php("03"),
            "333",
            "03",
            "F65334D7D78C2109C44C0709727CF3E764CEDE3217F4AF4D9EDCEB83D826C48D",
        ),
        (
            [*_php("03", "08"), "123", "username"],
            "333",
            "03",
            "483CC4833F5705913268FD3B35A133ACA49A5C19CE5A9502E142424D8DF36F1E",
        ),
        (
            [
                "0003",
                "50020141123184741267849",
                "2676202678",
                "20141123064649123456",
                "TESTI ANNA",
                "0001",
                "03",
                "081181-9984",
                "01",
            ],
            "Esittelykauppiaansalainentunnus",
            "03",
            "DFECBA49225E966ECB4885DA40D64CD74B76341712A2A68BDF80307EC6715B42",
        ),
        (
            [
                "0003",
                "50020181017141433899056",
                "2512408990",
                "20010125140015123456",
                "FIRST LAST",
                "0001",
                "03",
                "9984",
                "02",
            ],
            "inputsecret",
            "03",
            "EBA959A76B87AE8996849E7C0C08D4AC44B053183BE12C0DAC2AD0C86F9F2542",
        ),
    ],
)
def test_mac_vectors(values: list[str], secret: str, alg: str, expected: str) -> None:
    assert compute_mac(values, secret, alg) == expected


def test_response_mac_values_skip_empty_optional_fields() -> None:
    params = {name: f"v{i}" for i, name in enumerate(RESPONSE_FIELDS)}
    assert response_mac_values(params) == [f"v{i}" for i in range(9)]
    params["B02K_USERID"] = ""
    params["B02K_USERNAME"] = "user"
    assert response_mac_values(params)[-1] == "user"
    assert len(response_mac_values(params)) == 10


def test_unknown_algorithm_refused() -> None:
    with pytest.raises(InvalidInput):
        compute_mac(["a"], "s", "04")


def test_satu_check_character() -> None:
    assert is_valid_satu("999020016")
    assert is_valid_satu("99901112H")
    assert not is_valid_satu("999020017")
    assert not is_valid_satu("99902001")


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = simulated_broker(load_config(environ={}), store=MemoryStore())
    yield b
    b.close()


@pytest.fixture
def bank(broker: Broker) -> Iterator[TupasBank]:
    sim = broker.simulator(BANK)
    assert sim is not None
    bank: TupasBank = sim.extra["bank"]
    bank.control.reset()
    yield bank
    bank.control.reset()


def post_to_bank(step: AutoPost, **extra: str) -> dict[str, str]:
    """The browser: post the form, follow the bank's redirect back (as query params)."""
    resp = httpx.post(step.url, data={**step.fields, **extra})
    assert resp.status_code == 302, resp.text
    location = resp.headers["location"]
    assert location.startswith("http://127.0.0.1:8000/")
    return dict(parse_qsl(urlsplit(location).query, keep_blank_values=True))


def begin(broker: Broker, name: str = BANK, **kw: Any) -> AutoPost:
    step = broker.begin(name, binding="browser-1", **kw)
    assert isinstance(step, AutoPost)
    return step


def stamp_used(broker: Broker, stamp: str, bank_number: str = "200") -> bool:
    assert isinstance(broker.store, MemoryStore)
    return broker.store.get(f"tupas:stamp:{bank_number}:{stamp}") is not None


# --- request --------------------------------------------------------------------------


def test_request_form_in_mac_order_with_valid_mac(broker: Broker, bank: TupasBank) -> None:
    step = begin(broker, language="sv")
    fields = dict(step.fields)
    assert list(fields) == [*REQUEST_FIELDS, "A01Y_MAC"]
    assert fields["A01Y_ACTION_ID"] == "701"
    assert fields["A01Y_RCVID"] == "87654321"
    assert fields["A01Y_ALG"] == "03"
    assert fields["A01Y_LANGCODE"] == "SV"
    assert re.fullmatch(r"\d{20}", fields["A01Y_STAMP"])
    assert fields["A01Y_RETLINK"].endswith("/auth/callback/tupas-nordea?tupas=ok")
    assert fields["A01Y_CANLINK"].endswith("?tupas=cancel")
    assert fields["A01Y_REJLINK"].endswith("?tupas=reject")
    assert fields["A01Y_MAC"] == compute_mac([fields[n] for n in REQUEST_FIELDS], "LEHTI", "03")
    assert bank.check_request(fields) is None


def test_stamps_unique_and_kept_in_flow(broker: Broker, bank: TupasBank) -> None:
    steps = [begin(broker) for _ in range(200)]
    stamps = {s.fields["A01Y_STAMP"] for s in steps}
    assert len(stamps) == 200
    provider = broker.provider(BANK)
    assert isinstance(provider, TupasProvider)


def test_bank_refuses_tampered_request(broker: Broker, bank: TupasBank) -> None:
    step = begin(broker)
    fields = dict(step.fields)
    fields["A01Y_RCVID"] = "12345678"
    resp = httpx.post(step.url, data=fields)
    assert resp.status_code == 400
    fields = dict(step.fields)
    fields["A01Y_RETLINK"] = "https://evil.example/"
    resp = httpx.post(step.url, data=fields)
    assert resp.status_code == 400
    assert bank.refused[-2:] == ["unknown RCVID", "bad MAC"]


# --- end to end -----------------------------------------------------------------------


def test_end_to_end_sync(broker: Broker, bank: TupasBank) -> None:
    step = begin(broker, return_to="/invoices")
    params = post_to_bank(step)
    done = broker.advance(step.flow_id, params, binding="browser-1")
    assert isinstance(done, Done)
    ident = done.identity
    assert ident.national_id is not None
    assert ident.national_id.country == "FI"
    assert ident.national_id.value == "010170-960F"
    assert ident.national_id.kind == "hetu"
    assert ident.loa == Loa.SUBSTANTIAL
    assert ident.method == "tupas"
    assert (ident.given_name, ident.family_name) == ("ANNA", "DEMO")
    assert ident.attributes["bank"] == "200"
    assert done.return_to == "/invoices"
    assert stamp_used(broker, step.fields["A01Y_STAMP"])
    with pytest.raises(FlowNotFound):
        broker.advance(step.flow_id, params, binding="browser-1")


@pytest.mark.parametrize(
    "name",
    [
        "tupas-aktia",
        "tupas-alandsbanken",
        "tupas-danskebank",
        "tupas-handelsbanken",
        "tupas-omasp",
        "tupas-op",
        "tupas-poppankki",
        "tupas-s-pankki",
        "tupas-saastopankki",
    ],
)
def test_every_bank_profile_end_to_end(broker: Broker, name: str) -> None:
    step = begin(broker, name)
    done = broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")
    assert isinstance(done, Done)
    assert done.identity.national_id is not None
    assert done.identity.provider == name


async def test_end_to_end_async() -> None:
    sink = MemorySink()
    broker = simulated_async_broker(
        load_config(environ={}), store=AsyncMemoryStore(), audit=AuditLog([sink])
    )
    try:
        step = await broker.begin("tupas-op", binding="b")
        assert isinstance(step, AutoPost)
        async with httpx.AsyncClient() as client:
            resp = await client.post(step.url, data=dict(step.fields))
        params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        done = await broker.advance(step.flow_id, params, binding="b")
        assert isinstance(done, Done)
        assert done.identity.national_id is not None
        assert done.identity.national_id.value == "010170-960F"
        assert "010170" not in repr(sink.events)
    finally:
        await broker.aclose()


# --- tampering: every single field ----------------------------------------------------


@pytest.mark.parametrize(
    "field",
    [*RESPONSE_FIELDS, "B02K_MAC", "B02K_USERID", "B02K_USERNAME"],
)
def test_tampering_any_single_field_is_rejected(
    broker: Broker, bank: TupasBank, field: str
) -> None:
    bank.control.customer = "corporate"  # has USERID/USERNAME too
    bank.control.tamper = field
    step = begin(broker)
    params = post_to_bank(step)
    with pytest.raises(InvalidInput) as err:
        broker.advance(step.flow_id, params, binding="browser-1")
    if field not in ("B02K_VERS", "B02K_ALG"):
        assert isinstance(err.value, InvalidSignature)
    assert not stamp_used(broker, step.fields["A01Y_STAMP"])
    with pytest.raises(FlowNotFound):  # failure consumed the flow
        broker.advance(step.flow_id, params, binding="browser-1")


def test_untampered_corporate_response_is_accepted(broker: Broker, bank: TupasBank) -> None:
    bank.control.customer = "corporate"
    step = begin(broker)
    done = broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")
    assert isinstance(done, Done)
    assert done.identity.national_id is not None
    assert done.identity.national_id.value == "081181-9984"
    assert done.identity.attributes["business_id"] == "1234567-1"
    assert (done.identity.given_name, done.identity.family_name) == ("ANNA", "TESTI")


@pytest.mark.parametrize(
    ("switch", "value", "error", "code"),
    [
        ("stamp", "20200101000000123456", InvalidInput, "tupas_stamp"),
        ("bank_number", "500", InvalidInput, "tupas_bank"),
        ("age", 3600.0, InvalidInput, "tupas_time"),
        ("age", -600.0, InvalidInput, "tupas_time"),
        ("key_version", "0009", InvalidSignature, "tupas_keyvers"),
        ("alg", "01", InvalidSignature, "tupas_legacy_alg"),
        ("alg", "02", InvalidSignature, "tupas_legacy_alg"),
    ],
)
def test_bad_responses_rejected(
    broker: Broker,
    bank: TupasBank,
    switch: str,
    value: object,
    error: type[Exception],
    code: str,
) -> None:
    setattr(bank.control, switch, value)
    step = begin(broker)
    params = post_to_bank(step)
    with pytest.raises(error) as err:
        broker.advance(step.flow_id, params, binding="browser-1")
    assert getattr(err.value, "code", None) == code
    assert not stamp_used(broker, step.fields["A01Y_STAMP"])


def test_response_older_than_window_is_expired(broker: Broker, bank: TupasBank) -> None:
    # Issued after the flow began (so not "outside the flow") but past max_response_age.
    clock = {"t": 0.0}
    sink = MemorySink()
    b = simulated_broker(
        broker.settings,
        store=MemoryStore(),
        providers={BANK: broker.provider(BANK)},
        audit=AuditLog([sink]),
        now=lambda: __import__("time").time() + clock["t"],
    )
    step = b.begin(BANK, insecure_unbound=True)
    assert isinstance(step, AutoPost)
    params = post_to_bank(step)
    clock["t"] = 301.0
    with pytest.raises(Expired):
        b.advance(step.flow_id, params)


def test_cancel_and_reject_links_are_typed(broker: Broker, bank: TupasBank) -> None:
    bank.control.action = "cancel"
    step = begin(broker)
    params = post_to_bank(step)
    assert params == {"tupas": "cancel"}
    with pytest.raises(UserCancelled):
        broker.advance(step.flow_id, params, binding="browser-1")
    bank.control.action = "reject"
    step = begin(broker)
    with pytest.raises(ProviderError):
        broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")


def test_replayed_response_into_new_flow_is_refused(broker: Broker, bank: TupasBank) -> None:
    step = begin(broker)
    assert isinstance(broker.advance(step.flow_id, post_to_bank(step), binding="browser-1"), Done)
    bank.control.replay = True  # the bank (or an attacker) re-sends the old response
    step2 = begin(broker)
    with pytest.raises(InvalidInput) as err:
        broker.advance(step2.flow_id, post_to_bank(step2), binding="browser-1")
    assert err.value.code == "tupas_stamp"


def _direct(broker: Broker) -> tuple[TupasProvider, AdvanceContext]:
    provider = broker.provider(BANK)
    assert isinstance(provider, TupasProvider)
    import time

    return provider, AdvanceContext(flow_id="f" * 43, now=time.time())


def _issue(broker: Broker, provider: TupasProvider) -> tuple[dict[str, Any], dict[str, str]]:
    import time

    from authbroker.providers.base import BeginContext

    ctx = BeginContext(flow_id="f" * 43, callback_url="http://127.0.0.1:8000/cb", now=time.time())
    nxt = run_sync(provider.begin(ctx), None, broker.store)
    assert isinstance(nxt.step, AutoPost)
    return nxt.data, post_to_bank(nxt.step)


def test_stamp_consumed_once_by_the_adapter_itself(broker: Broker, bank: TupasBank) -> None:
    provider, ctx = _direct(broker)
    data, params = _issue(broker, provider)
    ident = run_sync(provider.advance(ctx, data, params), None, broker.store)
    assert isinstance(ident, Identity) and ident.national_id is not None
    with pytest.raises(AlreadyUsed):
        run_sync(provider.advance(ctx, data, params), None, broker.store)


def test_fifty_concurrent_submissions_yield_one_identity(broker: Broker, bank: TupasBank) -> None:
    provider, ctx = _direct(broker)
    data, params = _issue(broker, provider)
    results = run_together(
        50,
        lambda _: run_sync(provider.advance(ctx, data, params), None, broker.store),
        catch=(AuthBrokerError,),
    )
    assert sum(not isinstance(r, AuthBrokerError) for r in results) == 1
    assert sum(isinstance(r, AlreadyUsed) for r in results) == 49


def test_stamp_single_use_on_every_store(
    broker: Broker, bank: TupasBank, sync_store: StateStore
) -> None:
    """TUP-03 on memory, SQLite and Redis: 50 threads, one identity."""
    provider, ctx = _direct(broker)
    data, params = _issue(broker, provider)
    results = run_together(
        50,
        lambda _: run_sync(provider.advance(ctx, data, params), None, sync_store),
        catch=(AuthBrokerError,),
    )
    assert sum(isinstance(r, Identity) for r in results) == 1
    assert sum(isinstance(r, AlreadyUsed) for r in results) == 49


async def test_stamp_single_use_on_every_async_store(
    broker: Broker, bank: TupasBank, async_store: AsyncStateStore
) -> None:
    provider, ctx = _direct(broker)
    data, params = _issue(broker, provider)

    async def attempt() -> object:
        try:
            return await run_async(provider.advance(ctx, data, params), None, async_store)
        except AuthBrokerError as exc:
            return exc

    results = await asyncio.gather(*(attempt() for _ in range(50)))
    assert sum(isinstance(r, Identity) for r in results) == 1
    assert sum(isinstance(r, AlreadyUsed) for r in results) == 49


def test_fifty_concurrent_callbacks_through_broker(broker: Broker, bank: TupasBank) -> None:
    step = begin(broker)
    params = post_to_bank(step)
    results = run_together(
        50,
        lambda _: broker.advance(step.flow_id, params, binding="browser-1"),
        catch=(AuthBrokerError,),
    )
    assert sum(isinstance(r, Done) for r in results) == 1
    assert all(isinstance(r, Done | AlreadyUsed | FlowNotFound) for r in results)


async def test_fifty_concurrent_async_submissions_yield_one_identity() -> None:
    broker = simulated_async_broker(load_config(environ={}), store=AsyncMemoryStore())
    try:
        step = await broker.begin("tupas-s-pankki", binding="b")
        assert isinstance(step, AutoPost)
        async with httpx.AsyncClient() as client:
            resp = await client.post(step.url, data=dict(step.fields))
        params = dict(parse_qsl(urlsplit(resp.headers["location"]).query))

        async def attempt() -> object:
            try:
                return await broker.advance(step.flow_id, params, binding="b")
            except AuthBrokerError as exc:
                return exc

        results = await asyncio.gather(*(attempt() for _ in range(50)))
        assert sum(isinstance(r, Done) for r in results) == 1
    finally:
        await broker.aclose()


# --- field checks ---------------------------------------------------------------------


def test_unknown_missing_and_oversized_fields(broker: Broker, bank: TupasBank) -> None:
    provider, ctx = _direct(broker)
    data, params = _issue(broker, provider)
    for bad in (
        {**params, "B02K_EXTRA": "1"},
        {k: v for k, v in params.items() if k != "B02K_IDNBR"},
        {**params, "B02K_CUSTNAME": "X" * 41},
        {**params, "B02K_CUSTNAME": "A\nB"},
        {**params, "B02K_STAMP": params["B02K_STAMP"][:-1]},
        {**params, "tupas": "maybe"},
    ):
        with pytest.raises(InvalidInput):
            run_sync(provider.advance(ctx, data, bad), None, broker.store)
    assert not stamp_used(broker, data["stamp"])
    # The genuine response still works afterwards: nothing was consumed.
    ident = run_sync(provider.advance(ctx, data, params), None, broker.store)
    assert isinstance(ident, Identity) and ident.national_id is not None


def test_satu_identity(broker: Broker, bank: TupasBank) -> None:
    bank.control.customer = "satu"
    step = begin(broker)
    done = broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")
    assert isinstance(done, Done)
    assert done.identity.national_id is None
    assert done.identity.attributes["satu"] == "999020016"
    assert done.identity.subject == "999020016"
    assert done.identity.subject_type == "person"


@pytest.mark.parametrize("customer", ["truncated", "notfound"])
def test_unusable_identifier_types_refused(broker: Broker, bank: TupasBank, customer: str) -> None:
    bank.control.customer = customer
    step = begin(broker)
    with pytest.raises(ProviderError):
        broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")


# --- configuration: legacy algorithms and key versions --------------------------------


def _config(broker: Broker, **overrides: Any) -> Any:
    base = broker.settings.provider(BANK)
    sim = broker.simulator(BANK)
    assert sim is not None
    return base.with_options(**{**sim.overrides, **overrides})


def test_legacy_algorithm_needs_profile_flag(broker: Broker, bank: TupasBank) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(_config(broker, algorithm="01"), broker.settings)
    assert err.value.key == "providers.tupas-nordea.algorithm"


@pytest.mark.parametrize("alg", ["01", "02"])
def test_legacy_algorithm_accepted_when_profile_allows(
    broker: Broker, bank: TupasBank, alg: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="authbroker.providers.tupas"):
        provider = from_config(
            _config(broker, allow_legacy_algorithms=True, algorithm=alg), broker.settings
        )
    assert "legacy" in caplog.text
    b = simulated_broker(broker.settings, store=MemoryStore(), providers={BANK: provider})
    step = b.begin(BANK, insecure_unbound=True)
    assert isinstance(step, AutoPost)
    assert step.fields["A01Y_ALG"] == alg
    assert len(step.fields["A01Y_MAC"]) == {"01": 32, "02": 40}[alg]
    assert isinstance(b.advance(step.flow_id, post_to_bank(step)), Done)


def test_key_rotation_uses_returned_key_version(broker: Broker, bank: TupasBank) -> None:
    bank.secrets["0002"] = "second-generation-key"
    try:
        provider = from_config(_config(broker, secret_v2="second-generation-key"), broker.settings)
        b = simulated_broker(broker.settings, store=MemoryStore(), providers={BANK: provider})
        bank.control.key_version = "0002"
        step = b.begin(BANK, insecure_unbound=True)
        assert isinstance(step, AutoPost)
        assert isinstance(b.advance(step.flow_id, post_to_bank(step)), Done)
    finally:
        del bank.secrets["0002"]


def test_literal_secret_refused_outside_simulator(broker: Broker) -> None:
    from dataclasses import replace

    cfg = replace(_config(broker), environment="test")
    with pytest.raises(ConfigError):
        from_config(cfg.with_options(url="https://tupas.example/"), broker.settings)


def test_production_profile_requires_rcvid_and_env_secret() -> None:
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        overrides={"broker": {"environment": "production"}, "providers": {BANK: {}}},
    )
    with pytest.raises(ConfigError):
        from_config(settings.provider(BANK), settings)
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40, "AUTHBROKER_TUPAS_NORDEA_SECRET_V1": "s" * 20},
        overrides={"broker": {"environment": "production"}, "providers": {BANK: {"rcvid": "X1"}}},
    )
    provider = from_config(settings.provider(BANK), settings)
    assert provider.url.startswith("https://")


# --- logs never carry the identity code -----------------------------------------------


def test_no_identity_code_in_logs(bank: TupasBank, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        b = simulated_broker(load_config(environ={}), store=MemoryStore(), audit=AuditLog())
        try:
            step = b.begin(BANK, insecure_unbound=True)
            assert isinstance(step, AutoPost)
            sim = b.simulator(BANK)
            assert sim is not None
            params = post_to_bank(step)
            done = b.advance(step.flow_id, params)
            assert isinstance(done, Done)
            bank2: TupasBank = sim.extra["bank"]
            bank2.control.tamper = "B02K_CUSTID"
            step = b.begin(BANK, insecure_unbound=True)
            assert isinstance(step, AutoPost)
            with pytest.raises(InvalidSignature) as err:
                b.advance(step.flow_id, post_to_bank(step))
        finally:
            b.close()
    # Only authbroker's own loggers: the test's HTTP client (the "browser") logs the
    # callback URL itself, which is exactly why decision 11 says to mask access logs.
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("authbroker"))
    assert "flow.completed" in ours and "flow.failed" in ours
    assert not HETU_RE.search(ours)
    assert not HETU_RE.search(str(err.value) + repr(err.value))
    assert not HETU_RE.search(repr(done.identity) + str(done.identity))


# --- fuzz: arbitrary callback parameters only ever raise AuthBrokerError --------------

_FIELD_NAMES = st.sampled_from(
    [*RESPONSE_FIELDS, "B02K_MAC", "B02K_USERID", "B02K_USERNAME", "tupas", "B02K_X", "x"]
)


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    mutations=st.dictionaries(_FIELD_NAMES, st.text(max_size=80), max_size=6),
    drop=st.sets(_FIELD_NAMES, max_size=3),
)
def test_fuzzed_callback_params_raise_only_typed_errors(
    broker: Broker, mutations: dict[str, str], drop: set[str]
) -> None:
    provider, ctx = _direct(broker)
    sim = broker.simulator(BANK)
    assert sim is not None
    control: BankControl = sim.extra["control"]
    control.reset()
    data, params = _fuzz_base(broker, provider)
    params = {k: v for k, v in {**params, **mutations}.items() if k not in drop}
    with contextlib.suppress(AuthBrokerError):
        run_sync(provider.advance(ctx, dict(data), params), None, MemoryStore())


_FUZZ_CACHE: dict[str, Any] = {}


def _fuzz_base(broker: Broker, provider: TupasProvider) -> tuple[dict[str, Any], dict[str, str]]:
    if "base" not in _FUZZ_CACHE:
        _FUZZ_CACHE["base"] = _issue(broker, provider)
    data, params = _FUZZ_CACHE["base"]
    return dict(data), dict(params)


# --- issue 23: the response is bound to what the request asked for --------------------


@pytest.mark.parametrize("answer", ["01", "02"])
def test_response_algorithm_must_equal_request_algorithm(
    broker: Broker, bank: TupasBank, answer: str
) -> None:
    """Legacy algorithms tolerated by the profile must not downgrade a SHA-256 request."""
    provider = from_config(_config(broker, allow_legacy_algorithms=True), broker.settings)
    b = simulated_broker(broker.settings, store=MemoryStore(), providers={BANK: provider})
    step = b.begin(BANK, insecure_unbound=True)
    assert isinstance(step, AutoPost)
    assert step.fields["A01Y_ALG"] == "03"
    bank.control.alg = answer  # a correct MAC, but with the weaker algorithm
    params = post_to_bank(step)
    assert params["B02K_ALG"] == answer
    with pytest.raises(InvalidSignature) as err:
        b.advance(step.flow_id, params)
    assert err.value.code == "tupas_alg_mismatch"
    assert isinstance(b.store, MemoryStore)
    assert b.store.get(f"tupas:stamp:200:{step.fields['A01Y_STAMP']}") is None


def test_company_login_refused_for_personal_login(broker: Broker, bank: TupasBank) -> None:
    """CUSTTYPE 03 (business id only) names no person: refused unless opted in."""
    sink = MemorySink()
    b = simulated_broker(
        broker.settings,
        store=MemoryStore(),
        providers={BANK: broker.provider(BANK)},
        audit=AuditLog([sink]),
    )
    bank.control.customer = "company"
    step = b.begin(BANK, binding="browser-1")
    assert isinstance(step, AutoPost)
    with pytest.raises(AccessDenied) as err:
        b.advance(step.flow_id, post_to_bank(step), binding="browser-1")
    assert err.value.code == "tupas_organization"
    assert isinstance(b.store, MemoryStore)
    assert b.store.get(f"tupas:stamp:200:{step.fields['A01Y_STAMP']}") is None
    assert [e.reason for e in sink.events if e.outcome == "failure"][-1] == "tupas_organization"
    b.close()


def test_company_login_typed_as_organization_when_opted_in(broker: Broker, bank: TupasBank) -> None:
    provider = from_config(_config(broker, allow_organization_identities=True), broker.settings)
    b = simulated_broker(broker.settings, store=MemoryStore(), providers={BANK: provider})
    bank.control.customer = "company"
    step = b.begin(BANK, insecure_unbound=True)
    assert isinstance(step, AutoPost)
    done = b.advance(step.flow_id, post_to_bank(step))
    assert isinstance(done, Done)
    ident = done.identity
    assert ident.subject_type == "organization"
    assert ident.national_id is None
    assert ident.subject == "1234567-1"
    assert ident.attributes["business_id"] == "1234567-1"
    assert ident.attributes["company_name"] == "TESTIYRITYS OY"
    assert ident.to_dict()["subject_type"] == "organization"


def test_organization_option_must_be_boolean(broker: Broker) -> None:
    with pytest.raises(ConfigError) as err:
        from_config(_config(broker, allow_organization_identities="yes"), broker.settings)
    assert err.value.key == "providers.tupas-nordea.allow_organization_identities"


def test_corporate_user_login_stays_a_person(broker: Broker, bank: TupasBank) -> None:
    """CUSTTYPE 08 carries the corporate user's HETU: a personal login."""
    bank.control.customer = "corporate"
    step = begin(broker)
    done = broker.advance(step.flow_id, post_to_bank(step), binding="browser-1")
    assert isinstance(done, Done)
    assert done.identity.subject_type == "person"
    assert done.identity.national_id is not None


# --- character set: ISO-8859-1 percent-encoding, end to end through the web layer ------


def _wsgi_me(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    """The application behind the middleware: shows the logged-in identity as JSON."""
    import json

    from authbroker.web.wsgi import PRINCIPAL_KEY

    principal = environ[PRINCIPAL_KEY]
    start_response("200 OK", [("content-type", "application/json")])
    return [json.dumps(dict(principal.identity)).encode()]


@pytest.mark.parametrize("customer", ["aakkoset", "anna"])
def test_scandinavian_letters_end_to_end_through_the_web_layer(customer: str) -> None:
    """The bank percent-encodes ISO-8859-1 (Ä = %C4); the name arrives intact."""
    import html as html_lib

    from authbroker.web import require, route
    from authbroker.web.wsgi import WsgiAuthMiddleware

    broker = simulated_broker(load_config(environ={}), store=MemoryStore())
    sim = broker.simulator(BANK)
    assert sim is not None
    sim.extra["control"].customer = customer
    middleware = WsgiAuthMiddleware(_wsgi_me, broker=broker, rules=[route("/me", require())])
    transport = httpx.WSGITransport(app=middleware)
    try:
        with httpx.Client(
            transport=transport, base_url="http://127.0.0.1:8000", follow_redirects=False
        ) as client:
            page = client.get(f"/auth/begin/{BANK}", params={"return_to": "/me"})
            assert page.status_code == 200, page.text
            fields = dict(
                (html_lib.unescape(n), html_lib.unescape(v))
                for n, v in re.findall(r'name="([^"]+)" value="([^"]*)"', page.text)
            )
            action = html_lib.unescape(re.findall(r'action="([^"]+)"', page.text)[0])
            back = httpx.post(action, data=fields)
            assert back.status_code == 302
            location = urlsplit(back.headers["location"])
            if customer == "aakkoset":
                # What real banks send: ISO-8859-1 bytes, not UTF-8 (%C3%84).
                assert "M%C4KI-%D6STERG%C5RD+%C5SA" in location.query
            r = client.get(location.path + "?" + location.query)
            assert r.status_code == 303, r.text
            assert r.headers["location"] == "/me"
            me = client.get("/me").json()
    finally:
        broker.close()
    expected = {"aakkoset": ("ÅSA", "MÄKI-ÖSTERGÅRD"), "anna": ("ANNA", "DEMO")}[customer]
    assert (me["given_name"], me["family_name"]) == expected
    assert me["national_id"]["country"] == "FI"


def test_raw_query_decoded_in_bank_charset_by_the_adapter(broker: Broker, bank: TupasBank) -> None:
    """Callers of Broker.advance may forward the raw query (RAW_QUERY) themselves."""
    from authbroker.providers.base import RAW_QUERY

    bank.control.customer = "aakkoset"
    step = begin(broker)
    resp = httpx.post(step.url, data=dict(step.fields))
    query = urlsplit(resp.headers["location"]).query
    done = broker.advance(step.flow_id, {RAW_QUERY: query}, binding="browser-1")
    assert isinstance(done, Done)
    assert done.identity.family_name == "MÄKI-ÖSTERGÅRD"


@pytest.mark.parametrize(
    "query",
    ["tupas=ok&tupas=ok", "B02K_CUSTNAME=M\u00c4KI", "x=" + "a" * 9000],
)
def test_bad_raw_queries_are_typed_errors(broker: Broker, bank: TupasBank, query: str) -> None:
    from authbroker.providers.base import RAW_QUERY

    step = begin(broker)
    with pytest.raises(InvalidInput):
        broker.advance(step.flow_id, {RAW_QUERY: query}, binding="browser-1")


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("clock_skew", 301, "between"),
        ("clock_skew", -1, "between"),
        ("max_response_age", 0, "more than 0"),
        ("max_response_age", 3601, "between"),
        ("name_order", "given_first", "one of"),
        ("response_versions", ["0002", "x1"], "four digits"),
        ("response_versions", [True], "four digits"),
        ("version", "00002", "four digits"),
        ("algorithm", 3, "string"),
        ("id_type", "2", "two digits"),
        ("rcvid", "", "required"),
        ("bank_number", "41", "three-digit"),
    ],
)
def test_options_are_read_through_the_schema(
    broker: Broker, option: str, value: Any, message: str
) -> None:
    """Issue 17: each bad option is refused at construction, under its own key."""
    with pytest.raises(ConfigError) as err:
        from_config(_config(broker, **{option: value}), broker.settings)
    assert err.value.key == f"providers.tupas-nordea.{option}"
    assert message in str(err.value)


def test_schema_defaults_and_integer_versions(broker: Broker) -> None:
    cfg = _config(broker, version=3, key_version=1, response_versions=[2, "0003"])
    provider = from_config(cfg, broker.settings)
    assert provider.version == "0003" and provider.key_version == "0001"
    assert provider.accepted_versions == frozenset({"0002", "0003"})
    assert provider.flow_ttl == broker.settings.flow_ttl
    assert provider.max_age == 300.0 and provider.skew == 60.0
    assert provider.name_order == "family_first" and provider.allow_organizations is False
