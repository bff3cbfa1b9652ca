"""FTN through Telia Tunnistus: RP keys that fit Telia's published algorithms.

Telia's integration guide (v2.35, §2.1.1, §2.4.2, §2.6; https://github.com/JarmoTelia/tunnistus)
and its client metadata accept RS256 request objects and client assertions only and
encrypt ID tokens with RSA-OAEP (never RSA-OAEP-256). The simulator's ``ftn`` profile
accepts exactly that set, so keys made by ``authbroker keys generate --provider ftn``
log in and the old key types (PS256 signing, RSA-OAEP-256 encryption) are refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from click.testing import CliRunner

from authbroker import Done, Redirect
from authbroker.cli import cli
from authbroker.cli.keys import generate_keys
from authbroker.config import ProviderConfig, Settings, load_config
from authbroker.crypto.jose import Key, KeySet
from authbroker.errors import ConfigError
from authbroker.health import validate_settings
from authbroker.providers.oidc import OidcProvider, load_rp_keys
from authbroker.store.memory import MemoryStore
from authbroker.testing import RunningSimulator, simulated_broker
from authbroker.testing.simulators.oidc import PUBLISHED, OpenIdProviderSim, start

#: What the FTN profile looked like before the fix (PS256 first, RSA-OAEP-256 allowed).
OLD_FTN_OPTIONS: dict[str, Any] = {
    "rp_signing_algs": ["PS256", "ES256", "RS256"],
    "jwe_algs": ["RSA-OAEP", "RSA-OAEP-256"],
}


@pytest.fixture
def ftn_sim() -> Iterator[tuple[Settings, ProviderConfig, RunningSimulator, OpenIdProviderSim]]:
    settings = load_config(environ={})
    config = settings.provider("ftn")
    sim = start(config, settings)
    op = sim.extra["op"]
    assert isinstance(op, OpenIdProviderSim)
    op.control.auto_approve = True
    try:
        yield settings, config, sim, op
    finally:
        sim.stop()


def _generate(tmp_path: Path, *args: str) -> tuple[Path, dict[str, Any]]:
    out = tmp_path / "rp-keys.json"
    result = CliRunner().invoke(cli, ["keys", "generate", *args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out, json.loads(result.output)


def _login(settings: Settings, config: ProviderConfig, keys: KeySet) -> Done:
    provider = OidcProvider(config, settings, rp_keys=keys)
    with simulated_broker(settings, store=MemoryStore(), providers={"ftn": provider}) as broker:
        step = broker.begin("ftn", binding="b")
        assert isinstance(step, Redirect)
        resp = httpx.get(step.url, timeout=10)
        assert resp.status_code == 302, resp.text
        query = dict(parse_qsl(urlsplit(resp.headers["location"]).query))
        done = broker.advance(step.flow_id, query, binding="b")
        assert isinstance(done, Done)
        return done


def _old_keys() -> KeySet:
    return KeySet(
        [
            Key.generate("RSA", use="sig", alg="PS256", kid="old-sig"),
            Key.generate("RSA", use="enc", alg="RSA-OAEP-256", kid="old-enc"),
        ]
    )


def test_simulator_ftn_profile_publishes_telias_set() -> None:
    telia = PUBLISHED["ftn"]
    assert telia.request_object_signing == ("RS256",)
    assert telia.token_endpoint_auth_signing == ("RS256",)
    assert "RSA-OAEP-256" not in telia.encryption_algs
    assert telia.encryption_algs[0] == "RSA-OAEP"


def test_keys_generate_for_ftn_logs_in_at_telia_simulator(tmp_path: Path, ftn_sim: Any) -> None:
    settings, config, sim, op = ftn_sim
    path, public = _generate(tmp_path, "--provider", "ftn")
    assert sorted((k["use"], k["alg"]) for k in public["keys"]) == [
        ("enc", "RSA-OAEP"),
        ("sig", "RS256"),
    ]
    assert all(int(len(k["n"]) * 6) >= 2048 for k in public["keys"])
    # Registration with the provider: Telia gets the public JWKS.
    op.register_client_keys(public)
    rp_config = config.with_options(**{**sim.overrides, "rp_keys": str(path)})
    keys = load_rp_keys(rp_config)
    assert keys is not None
    done = _login(settings, rp_config, keys)
    assert done.identity.national_id is not None
    assert done.identity.national_id.country == "FI"


def test_old_key_types_are_refused_by_telia_simulator(ftn_sim: Any) -> None:
    settings, config, sim, op = ftn_sim
    old = _old_keys()
    # Registration: Telia publishes neither PS256 nor RSA-OAEP-256.
    with pytest.raises(ConfigError, match="old-sig"):
        op.register_client_keys(old.to_public_jwks())
    # Even registered without alg binding, a PS256 request object is refused at the
    # authorization endpoint (the old RP configuration signed with PS256).
    unbound = {
        "keys": [{k: v for k, v in j.items() if k != "alg"} for j in old.to_public_jwks()["keys"]]
    }
    op.register_client_keys(unbound)
    provider = OidcProvider(
        config.with_options(**sim.overrides, **OLD_FTN_OPTIONS), settings, rp_keys=old
    )
    with simulated_broker(settings, store=MemoryStore(), providers={"ftn": provider}) as broker:
        step = broker.begin("ftn", binding="b")
        assert isinstance(step, Redirect)
        resp = httpx.get(step.url, timeout=10)
    assert resp.status_code == 400
    assert "invalid_request_object" in resp.text


def test_ftn_profile_refuses_old_keys_naming_the_kid(ftn_sim: Any) -> None:
    settings, config, sim, _ = ftn_sim
    with pytest.raises(ConfigError) as err:
        OidcProvider(config.with_options(**sim.overrides), settings, rp_keys=_old_keys())
    assert "old-sig" in err.value.reason


def test_check_config_names_the_key_with_an_unaccepted_alg() -> None:
    old = _old_keys()
    private = {"keys": [k.private_jwk() for k in old.keys]}
    settings = load_config(
        environ={"FTN_RP_KEYS": json.dumps(private), "AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="production",
        overrides={
            "broker": {"base_url": "https://rp.example.fi"},
            "providers": {"ftn": {"client_id": "c"}},
        },
    )
    problems = validate_settings(settings)
    assert [p.key for p in problems] == ["providers.ftn.rp_keys_env"]
    assert "old-sig" in problems[0].message and "PS256" in problems[0].message
    # The keys `keys generate --provider ftn` makes pass the same check.
    fresh = {"keys": [k.private_jwk() for k in generate_keys("rp", None, settings.provider("ftn"))]}
    settings = load_config(
        environ={"FTN_RP_KEYS": json.dumps(fresh), "AUTHBROKER_SECRET_KEYS": "k" * 40},
        environment="production",
        overrides={
            "broker": {"base_url": "https://rp.example.fi"},
            "providers": {"ftn": {"client_id": "c"}},
        },
    )
    assert validate_settings(settings) == []


def test_rp_keys_for_a_provider_without_rp_keys_are_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["keys", "generate", "--provider", "tara", "--out", str(tmp_path / "k.json")]
    )
    assert result.exit_code != 0
    assert "uses no RP keys" in result.output
    assert not (tmp_path / "k.json").exists()
