"""Configuration loading (errors name the exact key) and audit events (no secrets)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from authbroker.audit import AuditLog, CallableSink, JsonLinesSink, MemorySink, scrub
from authbroker.config import builtin_profiles_dir, load_config, load_profiles
from authbroker.errors import ConfigError
from authbroker.identity import Loa

GOOD_KEY = "k" * 40


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def profiles_dir(tmp_path: Path) -> Path:
    d = tmp_path / "profiles"
    d.mkdir()
    write(
        d,
        "demo.toml",
        """
name = "demo"
protocol = "oidc"
country = "FI"
loa = "substantial"
client_id = "from-profile"
[display_name]
en = "Demo"
[environments.simulator]
issuer = "http://sim"
[environments.production]
issuer = "https://idp.example"
""",
    )
    return d


def test_embedded_defaults_use_simulators_and_memory(profiles_dir: Path) -> None:
    settings = load_config(environ={}, profiles=load_profiles(profiles_dir))
    assert settings.environment == "simulator"
    assert settings.store_url == "memory://"
    assert len(settings.secret_keys[0]) >= 32
    cfg = settings.provider("demo")
    assert cfg.options["issuer"] == "http://sim"
    assert cfg.loa is Loa.SUBSTANTIAL


def test_deployment_overrides_profile(tmp_path: Path, profiles_dir: Path) -> None:
    path = write(
        tmp_path,
        "authbroker.toml",
        """
[broker]
environment = "production"
base_url = "https://app.example/"
return_to_origins = ["https://app.example"]
[providers.demo]
client_id = "mine"
client_secret_env = "DEMO_SECRET"
""",
    )
    env = {"AUTHBROKER_SECRET_KEYS": GOOD_KEY, "DEMO_SECRET": "s3cr3t"}
    settings = load_config(path, environ=env, profiles=load_profiles(profiles_dir))
    cfg = settings.provider("demo")
    assert cfg.options["client_id"] == "mine"
    assert cfg.options["issuer"] == "https://idp.example"
    assert cfg.secret("client_secret") == "s3cr3t"
    assert settings.callback_base == "https://app.example/auth"
    assert "s3cr3t" not in repr(cfg) and GOOD_KEY not in repr(settings)


@pytest.mark.parametrize(
    ("toml", "env", "key"),
    [
        ('[broker]\nenvironment = "staging"', {}, "broker.environment"),
        ('[broker]\nenvironment = "production"', {}, "AUTHBROKER_SECRET_KEYS"),
        ("[providers.nope]\n", {}, "providers.nope"),  # the table name is what is unknown
        ('[providers.demo]\nenvironment = "test"', {}, "providers.demo.environment"),
        ("[broker]\nflow_ttl = 99999", {}, "broker.flow_ttl"),
        ("providers = 3", {}, "providers"),
    ],
)
def test_config_errors_name_the_key(
    tmp_path: Path, profiles_dir: Path, toml: str, env: dict[str, str], key: str
) -> None:
    path = write(tmp_path, "authbroker.toml", toml)
    with pytest.raises(ConfigError) as err:
        load_config(path, environ=env, profiles=load_profiles(profiles_dir))
    assert err.value.key == key


def test_short_secret_keys_refused(profiles_dir: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(environ={"AUTHBROKER_SECRET_KEYS": "short"}, profiles={})
    assert err.value.key == "AUTHBROKER_SECRET_KEYS"
    assert "short" not in str(err.value)


def test_missing_secret_env_named(tmp_path: Path, profiles_dir: Path) -> None:
    path = write(
        tmp_path,
        "a.toml",
        '[broker]\nenvironment = "production"\n[providers.demo]\nclient_secret_env = "NOPE"\n',
    )
    cfg = load_config(
        path, environ={"AUTHBROKER_SECRET_KEYS": GOOD_KEY}, profiles=load_profiles(profiles_dir)
    ).provider("demo")
    with pytest.raises(ConfigError) as err:
        cfg.secret("client_secret")
    assert err.value.key == "providers.demo.client_secret_env"


def test_invalid_toml_and_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "bad.toml", "[broker"), environ={})
    d = tmp_path / "p"
    d.mkdir()
    write(d, "x.toml", 'name = "x"\n')
    with pytest.raises(ConfigError) as err:
        load_profiles(d)
    assert "protocol" in str(err.value)


def test_builtin_profiles_load() -> None:
    profiles = load_profiles(builtin_profiles_dir())
    for profile in profiles.values():
        assert profile.protocol
        assert "simulator" in profile.environments or profile.environments


# --- audit ------------------------------------------------------------------------


def test_scrub_drops_secret_keys() -> None:
    out = scrub(
        {
            "code": "123456",
            "otp": "1",
            "password": "p",
            "access_token": "t",
            "loa": "high",
            "n": 3,
            "nested": {"x": 1},
        }
    )
    assert out == {"loa": "high", "n": 3}


def test_json_lines_sink(caplog: pytest.LogCaptureFixture) -> None:
    log = AuditLog([JsonLinesSink()])
    with caplog.at_level(logging.INFO, logger="authbroker.audit"):
        log.emit("otp.failed", "failure", subject="user-1", details={"code": "654321", "n": 2})
    line = json.loads(caplog.records[0].getMessage())
    assert line["event"] == "otp.failed" and line["details"] == {"n": 2}
    assert "654321" not in caplog.text


def test_callable_sink_failure_does_not_propagate() -> None:
    def boom(event: object) -> None:
        raise RuntimeError("x")

    memory = MemorySink()
    log = AuditLog([CallableSink(boom), memory])
    log.emit("flow.begun", "info")
    assert memory.names() == ["flow.begun"]


def test_unknown_event_name_is_programming_error() -> None:
    with pytest.raises(ValueError):
        AuditLog([MemorySink()]).emit("made.up", "info")
