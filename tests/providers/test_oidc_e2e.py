"""End-to-end OIDC flows: each profile against its simulator, sync and async.

The browser is played by httpx: it follows the Redirect to the simulator's
authorization endpoint (auto-approving a test person, or through the consent page),
takes the Location back to the callback and hands its query to ``broker.advance``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit

import httpx
import pytest

from authbroker import AsyncBroker, Broker, Done, Loa, Redirect
from authbroker.config import ProviderConfig, Settings, load_config
from authbroker.crypto.jose import Key, KeySet
from authbroker.errors import (
    AlreadyUsed,
    ConfigError,
    FlowNotFound,
    InsufficientLoa,
    InvalidInput,
    UserCancelled,
)
from authbroker.identity import Identity
from authbroker.providers.oidc import (
    OidcProvider,
    generate_rp_keys,
    load_rp_keys,
    pkce_challenge,
    rp_public_jwks,
)
from authbroker.store.memory import AsyncMemoryStore, MemoryStore
from authbroker.testing import simulated_async_broker, simulated_broker
from authbroker.testing.simulators.oidc import OpenIdProviderSim, start
from authbroker.testing.simulators.oidc.consent import page_language
from conftest import run_together

BROWSER = httpx.Client(timeout=10)

# (provider, begin params, country, national id, loa, method)
PROFILES = [
    ("ftn", {}, "FI", "070770-905D", Loa.SUBSTANTIAL, "bank"),
    ("ftn", {"acr": "http://ftn.ficora.fi/2017/loa3"}, "FI", "070770-905D", Loa.HIGH, "bank"),
    ("bankid-no", {}, "NO", "27034698436", Loa.HIGH, "bankid"),
    ("tara", {}, "EE", "38001085718", Loa.HIGH, "mobile-id"),
    ("tara", {"acr": "substantial"}, "EE", "38001085718", Loa.SUBSTANTIAL, "mobile-id"),
    (
        "broker-oidc",
        {"method": "se-bankid-same-device"},
        "SE",
        "196802020575",
        Loa.SUBSTANTIAL,
        "bankid",
    ),
    ("broker-oidc", {"method": "no-bankid"}, "NO", "27034698436", Loa.HIGH, "bankid"),
    (
        "broker-oidc",
        {"method": "fi-mobile-id"},
        "FI",
        "070770-905D",
        Loa.SUBSTANTIAL,
        "mobiilivarmenne",
    ),
]
IDS = [f"{p[0]}-{'-'.join(p[1].values()) or 'default'}" for p in PROFILES]


@pytest.fixture(scope="module")
def broker() -> Iterator[Broker]:
    b = simulated_broker(load_config(environ={}), store=MemoryStore())
    yield b
    b.close()


def _op(b: Broker | AsyncBroker, name: str) -> OpenIdProviderSim:
    sim = b.simulator(name)
    assert sim is not None
    op = sim.extra["op"]
    assert isinstance(op, OpenIdProviderSim)
    return op


@pytest.fixture
def op_of(broker: Broker) -> Iterator[Any]:
    used: list[OpenIdProviderSim] = []

    def get(name: str) -> OpenIdProviderSim:
        op = _op(broker, name)
        op.control.reset()
        op.control.auto_approve = True
        used.append(op)
        return op

    yield get
    for op in used:
        op.control.reset()


def _callback(url: str) -> dict[str, str]:
    resp = BROWSER.get(url)
    assert resp.status_code == 302, resp.text
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def _check(identity: Identity, name: str, country: str, number: str, loa: Loa, method: str) -> None:
    assert identity.provider == name
    assert identity.national_id is not None
    assert identity.national_id.country == country
    assert identity.national_id.value == number
    assert identity.loa is loa
    assert identity.method == method
    assert identity.given_name and identity.family_name
    assert identity.birthdate == identity.national_id.birthdate
    assert number not in repr(identity)


@pytest.mark.parametrize(
    ("name", "params", "country", "number", "loa", "method"), PROFILES, ids=IDS
)
def test_profile_end_to_end_sync(
    broker: Broker,
    op_of: Any,
    name: str,
    params: dict[str, str],
    country: str,
    number: str,
    loa: Loa,
    method: str,
) -> None:
    op = op_of(name)
    step = broker.begin(name, binding="b1", params=params, return_to="/invoices")
    assert isinstance(step, Redirect)
    before = op.count("token")
    done = broker.advance(step.flow_id, _callback(step.url), binding="b1")
    assert isinstance(done, Done)
    assert done.return_to == "/invoices"
    _check(done.identity, name, country, number, loa, method)
    assert op.count("token") == before + 1


@pytest.mark.parametrize(
    ("name", "params", "country", "number", "loa", "method"), PROFILES, ids=IDS
)
async def test_profile_end_to_end_async(
    name: str, params: dict[str, str], country: str, number: str, loa: Loa, method: str
) -> None:
    b = simulated_async_broker(load_config(environ={}), store=AsyncMemoryStore())
    try:
        op = _op(b, name)
        op.control.auto_approve = True
        step = await b.begin(name, binding="b1", params=params)
        assert isinstance(step, Redirect)
        async with httpx.AsyncClient(timeout=10) as client:
            resp = await client.get(step.url)
        assert resp.status_code == 302
        query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        done = await b.advance(step.flow_id, query, binding="b1")
        assert isinstance(done, Done)
        _check(done.identity, name, country, number, loa, method)
    finally:
        await b.aclose()


def test_ftn_uses_signed_request_object_only(broker: Broker, op_of: Any) -> None:
    """PROF-01: FTN sends a request object; state/nonce only inside it."""
    op_of("ftn")
    step = broker.begin("ftn", insecure_unbound=True)
    assert isinstance(step, Redirect)
    query = dict(parse_qsl(urlsplit(step.url).query))
    assert set(query) == {"client_id", "response_type", "scope", "request"}
    claims = json.loads(
        __import__("base64").urlsafe_b64decode(query["request"].split(".")[1] + "==")
    )
    assert "sub" not in claims and "request_uri" not in claims
    assert claims["code_challenge_method"] == "S256"
    assert claims["exp"] - claims["iat"] <= 300


def test_bankid_no_uses_par(broker: Broker, op_of: Any) -> None:
    """OIDC-14: only client_id and request_uri travel through the browser; one use."""
    op = op_of("bankid-no")
    pushes = op.count("par")
    step = broker.begin("bankid-no", insecure_unbound=True)
    assert isinstance(step, Redirect)
    assert op.count("par") == pushes + 1
    query = dict(parse_qsl(urlsplit(step.url).query))
    assert set(query) == {"client_id", "request_uri"}
    assert isinstance(broker.advance(step.flow_id, _callback(step.url)), Done)
    # The request_uri is single use at the simulator.
    assert BROWSER.get(step.url).status_code == 400


def test_consent_page_and_cancel(broker: Broker, op_of: Any) -> None:
    op = op_of("tara")
    op.control.auto_approve = None
    step = broker.begin("tara", insecure_unbound=True)
    assert isinstance(step, Redirect)
    page = BROWSER.get(step.url)
    assert page.status_code == 200 and "ee-jaak" in page.text
    txn = page.text.split('name="txn" value="')[1].split('"')[0]
    approve = f"{op.issuer}/approve"
    resp = BROWSER.post(approve, data={"txn": txn, "person": "ee-mid"})
    assert resp.status_code == 302
    query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    done = broker.advance(step.flow_id, query)
    assert isinstance(done, Done)
    assert done.identity.national_id is not None
    assert done.identity.national_id.value == "60001017869"
    # Cancel button: error=access_denied -> UserCancelled, no token request.
    step = broker.begin("tara", insecure_unbound=True)
    assert isinstance(step, Redirect)
    page = BROWSER.get(step.url)
    txn = page.text.split('name="txn" value="')[1].split('"')[0]
    resp = BROWSER.post(approve, data={"txn": txn, "cancel": "1"})
    query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
    before = op.count("token")
    with pytest.raises(UserCancelled):
        broker.advance(step.flow_id, query)
    assert op.count("token") == before


def test_tara_bad_check_digit_is_refused(broker: Broker, op_of: Any) -> None:
    """PROF-03: an Estonian code with a wrong check digit never becomes an Identity."""
    op = op_of("tara")
    op.control.misbehave("national-id-bad-checksum")
    step = broker.begin("tara", insecure_unbound=True)
    assert isinstance(step, Redirect)
    with pytest.raises(InvalidInput):
        broker.advance(step.flow_id, _callback(step.url))


def test_broker_method_downgrade_is_refused(broker: Broker, op_of: Any) -> None:
    """PROF-04: the broker must answer with the acr of the requested method."""
    op = op_of("broker-oidc")
    op.control.misbehave("acr-other-method")
    step = broker.begin("broker-oidc", params={"method": "no-bankid"}, insecure_unbound=True)
    assert isinstance(step, Redirect)
    with pytest.raises(InsufficientLoa) as err:
        broker.advance(step.flow_id, _callback(step.url))
    assert err.value.code == "acr_mismatch"
    with pytest.raises(InvalidInput):
        broker.begin("broker-oidc", params={"method": "email-otp"}, insecure_unbound=True)


def test_mix_up_response_from_other_provider(broker: Broker, op_of: Any) -> None:
    """OIDC-07: B's response delivered to a flow begun at A fails before any token call."""
    a, b = op_of("bankid-no"), op_of("tara")
    step_a = broker.begin("bankid-no", insecure_unbound=True)
    step_b = broker.begin("tara", insecure_unbound=True)
    assert isinstance(step_a, Redirect) and isinstance(step_b, Redirect)
    callback_b = _callback(step_b.url)
    tokens = (a.count("token"), b.count("token"))
    with pytest.raises(InvalidInput):
        broker.advance(step_a.flow_id, callback_b)
    assert (a.count("token"), b.count("token")) == tokens


def test_fifty_concurrent_callbacks_one_identity(broker: Broker, op_of: Any) -> None:
    """OIDC-03 / X-21: 50 threads replay the same state+code: one identity, one token call."""
    op = op_of("bankid-no")
    step = broker.begin("bankid-no", binding="b")
    assert isinstance(step, Redirect)
    callback = _callback(step.url)
    before = op.count("token")
    results = run_together(
        50,
        lambda _: broker.advance(step.flow_id, callback, binding="b"),
        catch=(AlreadyUsed, FlowNotFound),
    )
    assert sum(isinstance(r, Done) for r in results) == 1
    assert len(results) == 50
    assert op.count("token") == before + 1


async def test_fifty_concurrent_async_callbacks_one_identity() -> None:
    b = simulated_async_broker(load_config(environ={}), store=AsyncMemoryStore())
    try:
        op = _op(b, "tara")
        op.control.auto_approve = True
        step = await b.begin("tara", binding="b")
        assert isinstance(step, Redirect)
        callback = _callback(step.url)
        before = op.count("token")

        async def attempt() -> object:
            try:
                return await b.advance(step.flow_id, callback, binding="b")
            except (AlreadyUsed, FlowNotFound) as exc:
                return exc

        results = await asyncio.gather(*(attempt() for _ in range(50)))
        assert sum(isinstance(r, Done) for r in results) == 1
        assert op.count("token") == before + 1
    finally:
        await b.aclose()


def test_discovery_is_cached(broker: Broker, op_of: Any) -> None:
    op = op_of("tara")
    broker.begin("tara", insecure_unbound=True)
    fetched = op.count("discovery")
    broker.begin("tara", insecure_unbound=True)
    assert op.count("discovery") == fetched


def test_pkce_rfc7636_appendix_b_vector() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


# --- configuration and RP keys ---------------------------------------------------------


def _sim_settings(name: str) -> tuple[Settings, ProviderConfig]:
    settings = load_config(environ={})
    return settings, settings.provider(name)


def test_client_secret_basic_with_special_characters() -> None:
    """OIDC-09: id and secret are form-urlencoded before base64."""
    settings, config = _sim_settings("tara")
    sim = start(config, settings)
    try:
        op = sim.extra["op"]
        op.client_secret = "s3cr:t%ü+ /=" + "x" * 32
        op.control.auto_approve = True
        provider = OidcProvider(
            config.with_options(**{**sim.overrides, "client_secret": op.client_secret}), settings
        )
        b = simulated_broker(settings, store=MemoryStore(), providers={"tara": provider})
        step = b.begin("tara", insecure_unbound=True)
        assert isinstance(step, Redirect)
        assert isinstance(b.advance(step.flow_id, _callback(step.url)), Done)
        b.close()
    finally:
        sim.stop()


def test_rp_encryption_key_rotation_overlap() -> None:
    """PROF-02: tokens encrypted to a retired key decrypt while it is kept, then fail."""
    settings, config = _sim_settings("ftn")
    sim = start(config, settings)
    try:
        op = sim.extra["op"]
        op.control.auto_approve = True
        base = config.with_options(**sim.overrides)
        old = load_rp_keys(base)
        assert old is not None
        new_enc = Key.generate("RSA", use="enc", alg="RSA-OAEP", kid="rp-enc-2")
        sig = [k for k in old.keys if k.use == "sig"]
        enc_old = [k for k in old.keys if k.use == "enc"]
        for keys, ok in (([*sig, new_enc, *enc_old], True), ([*sig, new_enc], False)):
            provider = OidcProvider(base, settings, rp_keys=KeySet(keys))
            b = simulated_broker(settings, store=MemoryStore(), providers={"ftn": provider})
            step = b.begin("ftn", insecure_unbound=True)
            assert isinstance(step, Redirect)
            if ok:
                assert isinstance(b.advance(step.flow_id, _callback(step.url)), Done)
            else:
                with pytest.raises(InvalidInput):
                    b.advance(step.flow_id, _callback(step.url))
            b.close()
    finally:
        sim.stop()


def test_rp_public_jwks_and_key_loading(tmp_path: Path) -> None:
    private = generate_rp_keys(load_config(environ={}).provider("ftn"))
    path = tmp_path / "rp.json"
    path.write_text(json.dumps(private))
    settings = load_config(
        environ={"FTN_KEYS": json.dumps(private), "AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="production",
        overrides={"providers": {"ftn": {"client_id": "c"}}},
    )
    config = settings.provider("ftn")
    # Production reads the keys from the environment (rp_keys_env in the profile).
    config = config.with_options(rp_keys_env="FTN_KEYS")
    public = rp_public_jwks(config)
    uses = sorted(k["use"] for k in public["keys"])
    assert uses == ["enc", "sig"]
    assert len({k["kid"] for k in public["keys"]}) == 2
    assert all("d" not in k for k in public["keys"])
    provider = OidcProvider(config, settings)
    assert provider.public_jwks() == public
    # File path form.
    file_config = config.with_options(rp_keys_env=None, rp_keys=str(path))
    assert rp_public_jwks(file_config) == public
    # Inline keys are only for the simulator; missing keys are a config error.
    with pytest.raises(ConfigError):
        load_rp_keys(config.with_options(rp_keys_env=None, rp_keys=private))
    with pytest.raises(ConfigError) as err:
        OidcProvider(config.with_options(rp_keys_env=None), settings)
    assert err.value.key == "providers.ftn.rp_keys"
    with pytest.raises(ConfigError):
        load_rp_keys(config.with_options(rp_keys_env=None, rp_keys=str(tmp_path / "none")))


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("issuer", "http://tara.example.ee"),
        ("id_token_signing_algs", ["HS256"]),
        ("id_token_signing_algs", ["none"]),
        ("jwe_algs", ["RSA1_5"]),
        ("scopes", ["profile"]),
        ("acr_values", ["urn:unknown"]),
        ("clock_skew", 600),
        ("claims_profile", "nope"),
    ],
)
def test_unsafe_configuration_is_refused(option: str, value: Any) -> None:
    settings = load_config(
        environ={"TARA_CLIENT_SECRET": "x" * 40, "AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="test",
        overrides={"providers": {"tara": {"client_id": "c"}}},
    )
    config = settings.provider("tara").with_options(**{option: value})
    with pytest.raises(ConfigError) as err:
        OidcProvider(config, settings)
    assert err.value.key is not None and err.value.key.startswith("providers.tara.")


def test_real_endpoints_resolve_from_profiles() -> None:
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="production",
        overrides={"providers": {"tara": {"client_id": "c"}, "bankid-no": {"client_id": "c"}}},
    )
    assert settings.provider("tara").get("issuer") == "https://tara.ria.ee"
    assert settings.provider("bankid-no").get("issuer") == "https://auth.bankid.no/auth/realms/prod"


def test_profile_file_under_another_provider_name() -> None:
    """A deployment may enable a profile file under its own name (`profile = "ftn"`)."""
    settings = load_config(environ={}, overrides={"providers": {"my-ftn": {"profile": "ftn"}}})
    assert settings.provider("my-ftn").options["claims_profile"] == "ftn"
    with simulated_broker(settings, store=MemoryStore()) as b:
        op = _op(b, "my-ftn")
        op.control.auto_approve = True
        step = b.begin("my-ftn", binding="b")
        assert isinstance(step, Redirect)
        done = b.advance(step.flow_id, _callback(step.url), binding="b")
        assert isinstance(done, Done)
        assert done.identity.provider == "my-ftn"
        assert done.identity.national_id is not None
        assert done.identity.national_id.country == "FI"


def test_consent_page_is_a_real_page_readable_on_a_phone(broker: Broker, op_of: Any) -> None:
    """Issue 21: viewport, ``lang`` from the request, an external stylesheet under a CSP."""
    op = op_of("tara")
    op.control.auto_approve = None
    step = broker.begin("tara", language="et", insecure_unbound=True)  # sent as ui_locales
    assert isinstance(step, Redirect)
    assert dict(parse_qsl(urlsplit(step.url).query))["ui_locales"] == "et"
    page = BROWSER.get(step.url, headers={"Accept-Language": "sv"})
    text = page.text
    assert page.status_code == 200 and 'name="person"' in text
    assert text.startswith('<!doctype html><html lang="et">')
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert "<style" not in text and "style=" not in text and "<script" not in text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "style-src 'self'" in csp and "unsafe" not in csp
    href = text.split('<link rel="stylesheet" href="', 1)[1].split('"', 1)[0]
    css = BROWSER.get(urljoin(step.url, href))  # relative: works under any mount
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-width" in css.text and "viewport" not in css.text
    # Nothing wider than a 375 px phone: no fixed pixel widths at all.
    assert not [w for w in css.text.split(";") if "width:" in w and w.strip().endswith("px")]
    # Without ui_locales (a language TARA does not take) the best Accept-Language wins.
    step = broker.begin("tara", language="de", insecure_unbound=True)
    assert isinstance(step, Redirect)
    assert "ui_locales" not in dict(parse_qsl(urlsplit(step.url).query))
    page = BROWSER.get(step.url, headers={"Accept-Language": "sv;q=0.5, fi, *;q=0.1"})
    assert page.text.startswith('<!doctype html><html lang="fi">')
    # The error page (never a redirect to an unverified redirect_uri) is the same kind of page.
    refused = BROWSER.get(f"{op.issuer}/authorize?client_id=x", headers={"Accept-Language": "fi"})
    assert refused.status_code == 400 and refused.text.startswith('<!doctype html><html lang="fi">')
    assert "width=device-width" in refused.text and "content-security-policy" in refused.headers


@pytest.mark.parametrize(
    ("ui_locales", "accept", "lang"),
    [
        ("et fi", "sv", "et"),
        ('"><x fi', "", "fi"),
        ("", "sv;q=0.5, fi, *;q=0.1", "fi"),
        ("", "q=;, sv;q=abc, <b>", "en"),
        ("", "fi;q=0", "en"),
        ("x" * 40, "", "en"),
    ],
)
def test_consent_page_language_takes_only_language_tags(
    ui_locales: str, accept: str, lang: str
) -> None:
    params = {"ui_locales": ui_locales} if ui_locales else {}
    assert page_language(params, {"accept-language": accept} if accept else {}) == lang
