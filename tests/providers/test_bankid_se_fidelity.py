"""Swedish BankID: the RP API v6.0 rules of issue 16 §4, each tried against the simulator.

* ``returnUrl`` is 1-512 characters: a callback URL that cannot fit is a start-up
  error; the simulator answers ``invalidParameters`` to longer ones, as BankID does.
* Same-device launch: ``https://app.bankid.com/?autostarttoken=…`` on mobile,
  ``bankid:///?autostarttoken=…`` on computers, chosen by the device hint or the
  user agent.
* The ``web`` / ``app`` device information and ``requirement.cardReader`` are sent
  and validated by shape; phone orders need personalNumber and callInitiator.
* ``--env test`` works out of the box: BankID's public test RP certificate and the
  pinned test server CA are shipped and load.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from test_bankid_se_flows import IP, NAME, OK_USER, Env, _order

from authbroker.config import builtin_profiles_dir, load_config
from authbroker.errors import ConfigError, InvalidInput
from authbroker.http import HttpRequest, MtlsConfig, SyncDriver
from authbroker.providers import bankid_se

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
DESKTOP = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture
def env() -> Iterator[Env]:
    e = Env()
    yield e
    e.close()


def _last_body(env: Env) -> dict[str, Any]:
    body = env.sim.log[-1][1]
    assert isinstance(body, dict)
    return body


# --- returnUrl 1-512 -------------------------------------------------------------------


def _broker_settings(base_url: str, environment: str = "test", **options: Any) -> Any:
    return load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment=environment,
        overrides={"broker": {"base_url": base_url}, "providers": {NAME: options}},
    )


def test_callback_url_too_long_for_return_url_is_a_startup_error() -> None:
    settings = _broker_settings("https://example.com/" + "a" * 580)
    assert len(settings.callback_base) > 600
    with pytest.raises(ConfigError) as err:
        bankid_se.from_config(settings.provider(NAME), settings)
    assert err.value.key == "broker.base_url"
    assert "512" in err.value.message


def test_longest_callback_that_fits_is_accepted() -> None:
    # 512 - len("?flow_id=<43>&nonce=<43>") = 410 characters of callback URL.
    base = "https://example.com/"
    fixed = len(f"{base}/auth/callback/{NAME}")
    settings = _broker_settings(base + "p" * (410 - fixed))
    provider = bankid_se.from_config(settings.provider(NAME), settings)
    assert len(provider.callback_url) == 410
    with pytest.raises(ConfigError):
        too_long = _broker_settings(base + "p" * (411 - fixed))
        bankid_se.from_config(too_long.provider(NAME), too_long)
    # Without same-device return URLs nothing has to fit.
    relaxed = _broker_settings(base + "p" * 600, same_device_return_nonce=False)
    bankid_se.from_config(relaxed.provider(NAME), relaxed)


@pytest.mark.parametrize(
    ("length", "accepted"), [(512, True), (513, False), (600, False), (0, False)]
)
def test_simulator_enforces_return_url_length(env: Env, length: int, accepted: bool) -> None:
    prefix = "https://rp.example/cb?x="
    url = (prefix + "y" * max(0, length - len(prefix)))[:length]
    status, answer = _call(env, "/auth", {"endUserIp": IP, "returnUrl": url})
    if accepted:
        assert status == 200 and "orderRef" in answer
    else:
        assert status == 400 and answer["errorCode"] == "invalidParameters"


def _call(env: Env, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """A raw RP API call with the simulator's RP certificate (mTLS)."""
    cfg = env.running.overrides
    mtls = MtlsConfig(
        cert_file=cfg["cert_file"],
        key_file=cfg.get("key_file") or None,
        key_password=cfg.get("key_password"),
        ca_file=cfg["ca_file"],
    )
    driver = SyncDriver(retries=0)
    try:
        resp = driver.send(
            HttpRequest.post_json(cfg["api_url"].rstrip("/") + path, body, mtls=mtls)
        )
    finally:
        driver.close()
    return resp.status, resp.json_object() if resp.body else {}


# --- same-device launch ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"device": "mobile"}, "https://app.bankid.com/?autostarttoken="),
        ({"device": "desktop", "user_agent": IPHONE}, "bankid:///?autostarttoken="),
        ({"user_agent": IPHONE}, "https://app.bankid.com/?autostarttoken="),
        ({"user_agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"}, "https://app."),
        ({"user_agent": DESKTOP}, "bankid:///?autostarttoken="),
        ({}, "bankid:///?autostarttoken="),
    ],
)
def test_launch_link_by_device(env: Env, params: dict[str, str], expected: str) -> None:
    step = env.begin(same_device="1", **params)
    order = _order(env)
    assert step.display.autostart_url is not None
    assert step.display.autostart_url.startswith(expected)
    assert step.display.autostart_url.endswith(
        f"autostarttoken={order.auto_start_token}&redirect=null"
    )
    # RFA13 either way; the app still starts with the same token.
    assert env.sim.autostart(order.auto_start_token, OK_USER) == "ok"


# --- device information and cardReader -------------------------------------------------


def test_web_device_information_is_sent(env: Env) -> None:
    env.begin(user_agent=DESKTOP + "\x07", device_id="d" * 40)
    web = _last_body(env)["web"]
    assert web == {
        "referringDomain": "127.0.0.1",
        "userAgent": DESKTOP,  # control characters dropped
        "deviceIdentifier": "d" * 40,
    }
    env.begin(ip="192.0.2.11", user_agent="U" * 300, device_id="d" * 40)
    assert len(_last_body(env)["web"]["userAgent"]) == 256
    env.begin(ip="192.0.2.12")  # nothing known about the device: no object
    assert "web" not in _last_body(env) and "app" not in _last_body(env)


def test_app_device_information_is_sent(env: Env) -> None:
    env.begin(
        app_identifier="com.example.app",
        device_os="IOS 17.5",
        device_model="Apple iPhone15,2",
        device_id="device-1",
        user_agent=DESKTOP,
    )
    body = _last_body(env)
    assert body["app"] == {
        "appIdentifier": "com.example.app",
        "deviceOS": "IOS 17.5",
        "deviceModelName": "Apple iPhone15,2",
        "deviceIdentifier": "device-1",
    }
    assert "web" not in body


@pytest.mark.parametrize(
    "params",
    [
        {
            "app_identifier": "com.example.app",
            "device_os": "",
            "device_model": "m",
            "device_id": "i",
        },
        {"app_identifier": "x" * 257, "device_os": "o", "device_model": "m", "device_id": "i"},
        {"user_agent": DESKTOP, "device_id": "bad\nid"},
    ],
)
def test_bad_device_information_is_refused_before_any_call(
    env: Env, params: dict[str, str]
) -> None:
    with pytest.raises(InvalidInput) as err:
        env.begin(**params)
    assert err.value.code == "device_data"
    assert env.count("/auth") == 0


@pytest.mark.parametrize(
    "web",
    [
        "not an object",
        {"referringDomain": "a", "userAgent": "b"},  # deviceIdentifier missing
        {"referringDomain": "a", "userAgent": "b", "deviceIdentifier": 5},
        {"referringDomain": "a", "userAgent": "b" * 257, "deviceIdentifier": "c"},
        {"referringDomain": "a", "userAgent": "b", "deviceIdentifier": "c", "extra": "d"},
    ],
)
def test_simulator_validates_web_object(env: Env, web: Any) -> None:
    status, answer = _call(env, "/auth", {"endUserIp": IP, "web": web})
    assert status == 400 and answer["errorCode"] == "invalidParameters"


@pytest.mark.parametrize(
    "app",
    [
        [],
        {"appIdentifier": "a", "deviceOS": "b", "deviceModelName": "c"},
        {"appIdentifier": "a", "deviceOS": None, "deviceModelName": "c", "deviceIdentifier": "d"},
    ],
)
def test_simulator_validates_app_object(env: Env, app: Any) -> None:
    status, answer = _call(env, "/auth", {"endUserIp": IP, "app": app})
    assert status == 400 and answer["errorCode"] == "invalidParameters"


def test_card_reader_requirement() -> None:
    e = Env(card_reader="class2")
    try:
        e.begin()
        assert _last_body(e)["requirement"] == {"cardReader": "class2"}
        e.begin(ip="192.0.2.13", call_initiator="RP", personal_number="198512242382")
        assert "requirement" not in _last_body(e)  # not a phone-order requirement
    finally:
        e.close()
    with pytest.raises(ConfigError) as err:
        Env(card_reader="class3")
    assert err.value.key == f"providers.{NAME}.card_reader"


def test_phone_auth_needs_personal_number_and_call_initiator(env: Env) -> None:
    with pytest.raises(InvalidInput) as err:
        env.begin(call_initiator="user")
    assert err.value.code == "personal_number"
    env.begin(call_initiator="user", personal_number="198512242382")
    assert _last_body(env) == {"personalNumber": "198512242382", "callInitiator": "user"}
    for body in (
        {"callInitiator": "user"},
        {"personalNumber": "198512242382"},
        {"personalNumber": "198512242382", "callInitiator": "rp"},
    ):
        status, answer = _call(env, "/phone/auth", body)
        assert status == 400 and answer["errorCode"] == "invalidParameters"


# --- the public test environment --------------------------------------------------------


def test_test_environment_works_out_of_the_box() -> None:
    settings = load_config(environ={"AUTHBROKER_SECRET_KEYS": "k" * 40}, environment="test")
    provider = bankid_se.from_config(settings.provider(NAME), settings)
    assert provider.api_url == "https://appapi2.test.bankid.com/rp/v6.0"
    ctx = provider.mtls.ssl_context()  # certificate, key and password load
    assert isinstance(ctx, ssl.SSLContext)
    assert provider.mtls.ca_file is not None and provider.mtls.cert_file is not None
    ca = x509.load_pem_x509_certificate(Path(provider.mtls.ca_file).read_bytes())
    assert ca.fingerprint(hashes.SHA256()).hex().upper() == (
        "F3D0740EBFB3700E3B81AA791FEE451472698C84E199C2EB48A443FF1D5B405C"
    )
    assert ca.subject.rfc4514_string().startswith("CN=Test BankID SSL Root CA v1 Test")
    rp = x509.load_pem_x509_certificate(Path(provider.mtls.cert_file).read_bytes())
    assert rp.fingerprint(hashes.SHA256()).hex().upper() == (
        "EF15B3E1837BD4ADE7E4BFA1D0A07E9BE936E0389C10806077D0EB51271AD5F5"
    )
    assert Path(provider.mtls.cert_file).parent == builtin_profiles_dir() / "bankid-se"


def test_published_test_password_is_only_used_for_the_shipped_test_certificate(
    tmp_path: Path,
) -> None:
    shipped = builtin_profiles_dir() / "bankid-se" / "FPTestcert5_20240610.pem"
    copy = tmp_path / "other.pem"
    copy.write_bytes(shipped.read_bytes())
    settings = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="test",
        overrides={"providers": {NAME: {"cert_file": str(copy)}}},
    )
    with pytest.raises(ConfigError):
        bankid_se.from_config(settings.provider(NAME), settings)
    prod = load_config(
        environ={"AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="production",
        overrides={"providers": {NAME: {"cert_file": bankid_se.TEST_RP_CERT_FILE}}},
    )
    with pytest.raises(ConfigError):
        bankid_se.from_config(prod.provider(NAME), prod)


def test_production_pins_the_bankid_root() -> None:
    pem = (builtin_profiles_dir() / "bankid-se" / "bankid-ssl-root-ca-v1.pem").read_bytes()
    ca = x509.load_pem_x509_certificate(pem)
    assert ca.fingerprint(hashes.SHA256()).hex().upper() == (
        "E6A2D45C0A1051C959428649F86A09A9B2152CD551993CC2EB4CF094BDACBECB"
    )
    assert ca.subject.rfc4514_string().startswith("CN=BankID SSL Root CA v1")
