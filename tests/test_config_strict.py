"""Strict configuration (issue 15 §3, §2): unknown or misspelt keys, sections and
providers, wrong types, production hygiene and the simulator warning."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from authbroker.cli import cli, main
from authbroker.config import load_config, load_profiles
from authbroker.config_schema import BROKER_SECTION, PROVIDER_COMMON, Schema, section_schema
from authbroker.engines.flows import Broker
from authbroker.errors import ConfigError
from authbroker.providers.registry import BUILTIN_PROTOCOLS, protocol_options
from authbroker.testing import simulated_broker

ROOT = Path(__file__).resolve().parents[1]
GOOD_KEY = "k" * 40
PROD_ENV = {"AUTHBROKER_SECRET_KEYS": GOOD_KEY}


def load_text(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> Any:
    path = tmp_path / "authbroker.toml"
    path.write_text(text, encoding="utf-8")
    return load_config(path, environ={} if environ is None else environ)


def problems(tmp_path: Path, text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    """key path -> reason of every error one load reports."""
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text, environ)
    return {str(e.key): e.reason for e in err.value.errors}


def test_misspelt_broker_key_is_an_error_with_suggestion(tmp_path: Path) -> None:
    # The issue: this used to load as the simulator environment, test persons and all.
    found = problems(tmp_path, '[broker]\nenviroment = "production"\n')
    assert found == {"broker.enviroment": "unknown key; did you mean `environment`?"}


def test_misspelt_provider_key(tmp_path: Path) -> None:
    found = problems(tmp_path, '[providers.ftn]\nclient_idd = "abc"\n')
    assert found == {"providers.ftn.client_idd": "unknown key; did you mean `client_id`?"}


@pytest.mark.parametrize(
    ("table", "key", "suggestion"),
    [
        ("providers.bankid-se", "cert_flie", "cert_file"),
        ("providers.tupas-op", "rcvdi", "rcvid"),
        ("providers.mobiilivarmenne", "ap_passwrd_env", "ap_password_env"),
        ("providers.web-eid", "ocsp_timout", "ocsp_timeout"),
        ("links", "code_tll", "code_ttl"),
        ("sms", "acount_sid", "account_sid"),
    ],
)
def test_misspelt_key_in_every_kind_of_table(
    tmp_path: Path, table: str, key: str, suggestion: str
) -> None:
    found = problems(tmp_path, f'[{table}]\n{key} = "x"\n')
    assert found == {f"{table}.{key}": f"unknown key; did you mean `{suggestion}`?"}


def test_nested_table_keys_are_checked(tmp_path: Path) -> None:
    found = problems(tmp_path, "[sms]\nretry = { max_attempt = 3 }\n")
    assert found == {"sms.retry.max_attempt": "unknown key; did you mean `max_attempts`?"}


def test_unknown_section(tmp_path: Path) -> None:
    found = problems(tmp_path, '[provders.ftn]\nclient_id = "x"\n')
    assert found == {"provders": "unknown section; did you mean `providers`?"}
    # Sections nobody reads are refused too, without a far-fetched suggestion.
    assert problems(tmp_path, "[frobnicate]\nx = 1\n") == {"frobnicate": "unknown section"}


def test_unknown_provider(tmp_path: Path) -> None:
    found = problems(tmp_path, "[providers.ftm]\n")
    assert found == {"providers.ftm": "unknown provider; did you mean `ftn`?"}
    found = problems(tmp_path, '[providers.mine]\nprofile = "tupas-nordae"\n')
    assert found == {
        "providers.mine.profile": "no provider profile named 'tupas-nordae'; "
        "did you mean `tupas-nordea`?"
    }


@pytest.mark.parametrize(
    ("text", "key", "reason"),
    [
        (
            "[providers.ftn]\npar = 'yes'",
            "providers.ftn.par",
            "must be true or false, not a string",
        ),
        ("[broker]\nflow_ttl = '600'", "broker.flow_ttl", "must be a number, not a string"),
        (
            "[broker]\nlanguages = 'fi'",
            "broker.languages",
            "must be an array of strings, not a string",
        ),
        (
            "[providers.ftn]\nclient_id = 42",
            "providers.ftn.client_id",
            "must be a string, not an integer",
        ),
        (
            "[providers.ftn]\nenabled = 1",
            "providers.ftn.enabled",
            "must be true or false, not an integer",
        ),
        ("[providers.ftn]\nacr_loa = []", "providers.ftn.acr_loa", "must be a table, not an array"),
        (
            "[providers.ftn]\nclient_secret_env = 3",
            "providers.ftn.client_secret_env",
            "must be a string (an environment variable name), not an integer",
        ),
        ("[links]\ncode_digits = 6.5", "links.code_digits", "must be an integer, not a float"),
        ("[links]\ncode_ttl = true", "links.code_ttl", "must be a number, not a boolean"),
        ("sms = 3", "sms", "must be a table"),
        (
            "[broker]\nenvironment = 'prodution'",
            "broker.environment",
            "must be one of simulator, test, production; did you mean `production`?",
        ),
        (
            "[providers.ftn]\nenvironment = 'tset'",
            "providers.ftn.environment",
            "must be one of simulator, test, production; did you mean `test`?",
        ),
    ],
)
def test_wrong_types(tmp_path: Path, text: str, key: str, reason: str) -> None:
    assert problems(tmp_path, text + "\n") == {key: reason}


def test_secret_env_forms_and_key_families(tmp_path: Path) -> None:
    settings = load_text(
        tmp_path,
        "[providers.tupas-op]\n"
        'secret_v2_env = "OP_V2"\n'
        'secret_v3 = "literal-in-simulator"\n'
        "[providers.ftn]\n"
        'client_secret_env = "FTN_SECRET"\n'
        "[sms]\n"
        'backend = "twilio"\n'
        'auth_token_env = "TWILIO"\n',
    )
    assert settings.provider("tupas-op").get("secret_v2_env") == "OP_V2"
    found = problems(tmp_path, '[providers.tupas-op]\nsecret_vx_env = "X"\n')
    assert list(found) == ["providers.tupas-op.secret_vx_env"]
    assert found["providers.tupas-op.secret_vx_env"].startswith("unknown key")


def test_errors_in_disabled_provider_tables_are_still_reported(tmp_path: Path) -> None:
    found = problems(tmp_path, "[providers.tupas-nordea]\nenabled = false\nurll = 'x'\n")
    assert found == {"providers.tupas-nordea.urll": "unknown key; did you mean `url`?"}


def test_all_errors_are_reported_together(tmp_path: Path) -> None:
    text = (
        '[broker]\nenviroment = "production"\nflow_ttl = "600"\n'
        "[provders]\nx = 1\n"
        '[providers.ftn]\nclient_idd = "abc"\npar = "yes"\n'
        "[providers.ftm]\n"
        "[links]\ncode_tll = 300\n"
    )
    with pytest.raises(ConfigError) as err:
        load_text(tmp_path, text)
    keys = [e.key for e in err.value.errors]
    assert sorted(str(k) for k in keys) == sorted(
        [
            "broker.enviroment",
            "broker.flow_ttl",
            "provders",
            "providers.ftn.client_idd",
            "providers.ftn.par",
            "providers.ftm",
            "links.code_tll",
        ]
    )
    message = str(err.value)
    assert message.startswith("7 configuration errors:")
    for inner in err.value.errors:
        assert f"  - {inner.message}" in message
    assert "did you mean `environment`?" in message
    assert "did you mean `client_id`?" in message


def test_custom_profile_files_are_checked_with_their_path(tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "acme.toml").write_text(
        'name = "acme"\nprotocol = "oidc"\nclient_auth = "client_secret_basic"\n'
        "scopse = ['openid']\n"
        "[environments.test]\nisuer = 'https://idp.example'\n",
        encoding="utf-8",
    )
    (folder / "weird.toml").write_text('name = "weird"\nprotocol = "carrier-pigeon"\n')
    path = tmp_path / "authbroker.toml"
    path.write_text("[providers.acme]\n[providers.weird]\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path, environ={}, profiles=load_profiles(folder))
    found = {str(e.key): e.reason for e in err.value.errors}
    assert found == {
        "profile acme.toml: scopse": "unknown key; did you mean `scopes`?",
        "profile acme.toml: environments.test.isuer": "unknown key; did you mean `issuer`?",
        "providers.weird.protocol": "unknown protocol 'carrier-pigeon'",
    }


# --- production hygiene (issue 15 §2) -------------------------------------------------

PRODUCTION_FTN = '[broker]\nenvironment = "production"\n[providers.ftn]\nclient_id = "c"\n'


def test_production_ftn_loads(tmp_path: Path) -> None:
    settings = load_text(tmp_path, PRODUCTION_FTN, PROD_ENV)
    assert settings.provider("ftn").environment == "production"


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("allow_loopback_http = true", "providers.ftn.allow_loopback_http"),
        ('acr_values = ["http://ftn.ficora.fi/2017/loatest2"]', "providers.ftn.acr_values"),
        ('acr_values = "http://ftn.ficora.fi/2017/loaTEST3"', "providers.ftn.acr_values"),
        (
            'acr_values_allowed = ["http://ftn.ficora.fi/2017/loa2", '
            '"http://ftn.ficora.fi/2017/loatest2"]',
            "providers.ftn.acr_values_allowed",
        ),
        (
            'extra_auth_params = { acr_values = "http://ftn.ficora.fi/2017/loatest2" }',
            "providers.ftn.extra_auth_params",
        ),
    ],
)
def test_production_refuses_preproduction_settings(tmp_path: Path, extra: str, key: str) -> None:
    found = problems(tmp_path, PRODUCTION_FTN + extra + "\n", PROD_ENV)
    assert list(found) == [key]
    assert "refused in production" in found[key]


def test_production_refuses_loatest_in_broker_methods(tmp_path: Path) -> None:
    text = (
        '[broker]\nenvironment = "production"\n'
        '[providers.broker-oidc]\nclient_id = "c"\nissuer = "https://broker.example"\n'
        '[providers.broker-oidc.methods.fi]\nacr = "http://ftn.ficora.fi/2017/loatest2"\n'
        'country = "FI"\n'
    )
    found = problems(tmp_path, text, PROD_ENV)
    assert list(found) == ["providers.broker-oidc.methods"]


def test_same_settings_are_fine_outside_production(tmp_path: Path) -> None:
    # The shipped FTN test environment itself requests loatest2.
    text = (
        '[broker]\nenvironment = "test"\n[providers.ftn]\nclient_id = "c"\n'
        "allow_loopback_http = true\n"
    )
    settings = load_text(tmp_path, text, PROD_ENV)
    assert settings.provider("ftn").get("acr_values") == ["http://ftn.ficora.fi/2017/loatest2"]


def test_every_shipped_profile_validates_in_every_environment() -> None:
    for name, profile in load_profiles().items():
        for environment in profile.environments:
            settings = load_config(
                environ=PROD_ENV,
                environment=environment,
                overrides={"providers": {name: {"environment": environment}}},
            )
            assert settings.provider(name).environment == environment


# --- simulator warning -----------------------------------------------------------------


def test_simulator_warning_names_the_providers_once(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_config(environ={}, overrides={"providers": {"ftn": {}, "tupas-op": {}}})
    with caplog.at_level(logging.WARNING, logger="authbroker"):
        broker = simulated_broker(settings)
        broker.close()
    records = [r for r in caplog.records if "SIMULATOR MODE" in r.getMessage()]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING
    assert "ftn, tupas-op" in records[0].getMessage()


def test_no_simulator_warning_for_real_providers(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_config(
        environ=PROD_ENV,
        overrides={"broker": {"environment": "test"}, "providers": {"ftn": {"client_id": "c"}}},
    )
    with caplog.at_level(logging.WARNING, logger="authbroker"):
        Broker(settings).close()
    assert not [r for r in caplog.records if "SIMULATOR" in r.getMessage()]


# --- the documented example --------------------------------------------------------------


def test_docs_configuration_example_loads(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "docs/configuration.md has no TOML example"
    for block in blocks:
        environ = {**PROD_ENV, "FTN_RP_KEYS": "{}", "BANKID_KEY_PASSWORD": "x"}
        settings = load_text(tmp_path, block, environ)
        assert settings.providers


# --- check-config ---------------------------------------------------------------------


def test_check_config_prints_every_error_and_exits_2(tmp_path: Path) -> None:
    cfg = tmp_path / "authbroker.toml"
    cfg.write_text(
        '[broker]\nenviroment = "production"\n[providers.ftn]\nclient_idd = "x"\n[providers.ftm]\n',
        encoding="utf-8",
    )
    assert main(["check-config", str(cfg)]) == 2  # the documented "configuration error"
    result = CliRunner().invoke(cli, ["check-config", str(cfg)])
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line.startswith("✗")]
    assert lines == [
        "✗ broker.enviroment: unknown key; did you mean `environment`?",
        "✗ providers.ftn.client_idd: unknown key; did you mean `client_id`?",
        "✗ providers.ftm: unknown provider; did you mean `ftn`?",
    ]
    assert "3 error(s)" in result.output


# --- the schema itself ----------------------------------------------------------------


def all_schemas() -> list[Schema]:
    found = [BROKER_SECTION, PROVIDER_COMMON, section_schema("links"), section_schema("sms")]
    for protocol in BUILTIN_PROTOCOLS:
        schema = protocol_options(protocol)
        assert schema is not None, protocol
        found.append(schema)
    return found


def test_schema_is_introspectable() -> None:
    for schema in all_schemas():
        keys = [o.key for o in schema.options]
        assert len(keys) == len(set(keys)), schema.name
        for option in schema.options:
            assert option.meaning and len(option.meaning) <= 100, (schema.name, option.key)
            assert option.kind in {
                "string",
                "boolean",
                "integer",
                "number",
                "table",
                "list",
                "string list",
                "string or string list",
                "string or integer",
                "string or table",
            }
    assert BROKER_SECTION.default("flow_ttl") == 600.0


#: Source files (or packages, read whole) whose option reads belong to a protocol's schema.
READERS = {
    "oidc": ["providers/oidc", "testing/simulators/oidc"],
    "bankid-se": ["providers/bankid_se", "testing/simulators/bankid_se"],
    "tupas": ["providers/tupas", "testing/simulators/tupas.py"],
    "mobiilivarmenne": ["providers/mobiilivarmenne", "testing/simulators/mobiilivarmenne.py"],
    "web-eid": ["providers/web_eid", "testing/simulators/web_eid.py"],
}
_READ = re.compile(
    r"(?:config\.(?:get|require|secret)\(|opts\.raw\.get\(|require_endpoint\(\s*config,\s*"
    r"|_\w+\(\s*config,\s*)\"(\w+)\""
)


@pytest.mark.parametrize("protocol", sorted(READERS))
def test_every_option_a_module_reads_is_declared(protocol: str) -> None:
    schema = protocol_options(protocol)
    assert schema is not None
    full = PROVIDER_COMMON + schema
    read: set[str] = set()
    for rel in READERS[protocol]:
        path = ROOT / "src" / "authbroker" / rel
        files = sorted(path.rglob("*.py")) if path.is_dir() else [path] if path.exists() else []
        if rel.startswith("providers/"):
            assert files, rel  # the adapter itself must be read, wherever simulators go
        for file in files:
            read |= set(_READ.findall(file.read_text(encoding="utf-8")))
    assert read, protocol
    assert sorted(k for k in read if full.option(k) is None) == []
