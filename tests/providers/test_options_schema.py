"""Issue 17 §3: the option schema is the one reading of a provider's options.

Types, choices, ranges, required keys and defaults live in ``CONFIG_OPTIONS``;
``Schema.read`` applies them, and the adapters keep only the rules between keys.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import pytest

from authbroker.config import load_config
from authbroker.config_schema import Option, Schema
from authbroker.errors import ConfigError
from authbroker.providers import bankid_se
from authbroker.providers.oidc import CONFIG_OPTIONS as OIDC_OPTIONS
from authbroker.providers.oidc import OidcOptions, parse_options

SCHEMA = Schema(
    "t",
    "test table",
    (
        Option("name", "string", None, "required name", required=True),
        Option("flag", "boolean", False, "a flag"),
        Option("ratio", "number", 1, "a ratio", bounds=(0, 2)),
        Option("count", "integer", None, "a count", bounds=(0, None)),
        Option("words", "string or string list", ["a"], "words"),
        Option("mode", "string", "x", "a mode", choices=("x", "y")),
        Option("token", "string", None, "a secret", secret=True),
        Option("secret_v1", "string", None, "a key family", pattern=r"secret_v[0-9]+"),
    ),
)


def _key(key: str) -> str:
    return f"t.{key}"


def test_read_fills_defaults_and_normalizes() -> None:
    values = SCHEMA.read({"name": "n", "words": "b c", "ratio": 2}, _key)
    assert values == {
        "name": "n",
        "flag": False,
        "ratio": 2.0,
        "count": None,
        "words": ("b", "c"),
        "mode": "x",
    }
    assert isinstance(values["ratio"], float)
    # Secrets and key families are read by their modules, never by the schema.
    assert "token" not in values and "secret_v1" not in values
    assert SCHEMA.read({"name": "n"}, _key)["words"] == ("a",)


@pytest.mark.parametrize(
    ("options", "key", "reason"),
    [
        ({}, "t.name", "is required"),
        ({"name": ""}, "t.name", "is required"),
        ({"name": "n", "flag": "false"}, "t.flag", "must be true or false, not a string"),
        ({"name": "n", "ratio": 2.5}, "t.ratio", "must be a number between 0 and 2"),
        ({"name": "n", "ratio": True}, "t.ratio", "must be a number, not a boolean"),
        ({"name": "n", "count": -1}, "t.count", "must be at least 0"),
        ({"name": "n", "mode": "z"}, "t.mode", "must be one of x, y"),
    ],
)
def test_read_refuses_bad_values(options: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as err:
        SCHEMA.read(options, _key)
    assert err.value.key == key
    assert err.value.reason == reason


def test_read_reports_every_problem_at_once() -> None:
    with pytest.raises(ConfigError) as err:
        SCHEMA.read({"flag": 1, "ratio": 9}, _key)
    assert sorted(e.key or "" for e in err.value.errors) == ["t.flag", "t.name", "t.ratio"]


def test_read_only_reads_the_named_keys() -> None:
    assert SCHEMA.read({"flag": True}, _key, only=("flag",)) == {"flag": True}


def test_load_config_refuses_out_of_range_values() -> None:
    """The same ranges hold at load_config as at construction (one declaration)."""
    problems = [(e.key, e.reason) for e in _load_problems("clock_skew = 500")]
    assert ("providers.ftn.clock_skew", "must be a number between 0 and 120") in problems


def _load_problems(line: str) -> tuple[ConfigError, ...]:
    import tomllib

    overrides = tomllib.loads(f'[providers.ftn]\nclient_id = "c"\n{line}\n')
    with pytest.raises(ConfigError) as err:
        load_config(overrides=overrides, environ={})
    return err.value.errors


# --- OIDC: OidcOptions defaults are the schema's -------------------------------------

#: OidcOptions field -> option key, where the names differ.
_OIDC_KEYS = {
    "skew": "clock_skew",
    "id_token_algs": "id_token_signing_algs",
    "profile": "claims_profile",
}


def test_oidc_defaults_come_from_the_schema() -> None:
    settings = load_config(environ={})
    config = settings.provider("ftn")
    minimal = config.__class__(
        name="x",
        protocol="oidc",
        environment="test",
        display_name={},
        loa=config.loa,
        country=None,
        options={"issuer": "https://op.example/", "client_id": "c"},
    )
    opts = parse_options(minimal)
    checked = 0
    for f in fields(OidcOptions):
        option = OIDC_OPTIONS.option(_OIDC_KEYS.get(f.name, f.name))
        if option is None or option.default is None or option.required:
            continue
        default = option.default
        expected = tuple(default) if isinstance(default, list) else default
        assert getattr(opts, f.name) == expected, f.name
        checked += 1
    assert checked >= 20


# --- BankID: booleans are booleans ----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("pin_code", "false"),
        ("return_risk", "no"),
        ("block_high_risk", 0),
        ("same_device_return_nonce", "off"),
        ("require_device_ip_match", "yes"),
    ],
)
def test_bankid_se_refuses_a_non_boolean_flag(key: str, value: object) -> None:
    """``bool("false")`` is True: a quoted flag used to switch the option *on*."""
    settings = load_config(environ={})
    config = settings.provider("bankid-se").with_options(
        api_url="https://127.0.0.1:1/rp/v6.0",
        cert_file="rp.pem",
        ca_file="ca.pem",
        **{key: value},
    )
    with pytest.raises(ConfigError) as err:
        bankid_se.from_config(config, settings)
    assert err.value.key == f"providers.bankid-se.{key}"
