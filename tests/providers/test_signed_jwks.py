"""Signed JWKS of the RP (OpenID Federation 1.0 signed_jwks_uri), which Traficom
requires for FTN when RP keys rotate automatically: printed by
``authbroker keys jwks --signed`` and served at ``{prefix}/jwks/<provider>.jwt``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from authbroker.cli import cli
from authbroker.cli.keys import generate_keys
from authbroker.config import load_config
from authbroker.crypto.jose import Key, KeySet, peek_header, verify_jwt
from authbroker.errors import ConfigError
from authbroker.providers.oidc import OidcProvider, signed_rp_jwks
from authbroker.store.memory import MemoryStore
from authbroker.testing import simulated_broker
from authbroker.web.wsgi import WsgiAuthMiddleware

FED = Key.generate("RSA", use="sig", alg="RS256", kid="fed-1")


def _settings(**ftn: Any) -> Any:
    options = {"federation_keys": {"keys": [FED.private_jwk()]}, **ftn}
    return load_config(environ={}, overrides={"providers": {"ftn": options}})


def _check(token: str, rp_public: dict[str, Any], entity: str) -> None:
    assert peek_header(token)["typ"] == "jwk-set+jwt"
    header, claims = verify_jwt(token, KeySet([FED]), algorithms=["RS256"])
    assert header["alg"] == "RS256" and header["kid"] == "fed-1"
    assert claims["iss"] == claims["sub"] == entity
    assert claims["iat"] <= time.time() < claims["exp"]
    assert claims["keys"] == rp_public["keys"]
    assert all("d" not in k for k in claims["keys"])


def test_provider_signs_its_jwks_with_the_federation_key() -> None:
    settings = _settings(entity_id="https://rp.example.fi")
    with simulated_broker(settings, store=MemoryStore()) as broker:
        provider = broker.provider("ftn")
        assert isinstance(provider, OidcProvider)
        _check(provider.signed_jwks(), provider.public_jwks(), "https://rp.example.fi")


def test_signed_jwks_refuses_without_a_separate_federation_key() -> None:
    settings = load_config(environ={})
    with simulated_broker(settings, store=MemoryStore()) as broker:
        provider = broker.provider("ftn")
        with pytest.raises(ConfigError) as err:
            provider.signed_jwks()
        assert err.value.key == "providers.ftn.federation_keys"
        # An RP key may not vouch for itself.
        sig = next(k for k in provider.rp_keys.keys if k.use == "sig")
        config = provider.config.with_options(federation_keys={"keys": [sig.private_jwk()]})
        with pytest.raises(ConfigError):
            signed_rp_jwks(config, provider.rp_keys)
        # A federation key Telia does not accept (PS256) is refused too.
        ps = Key.generate("RSA", use="sig", alg="PS256", kid="fed-ps")
        config = provider.config.with_options(federation_keys={"keys": [ps.private_jwk()]})
        with pytest.raises(ConfigError):
            signed_rp_jwks(config, provider.rp_keys)


def test_cli_prints_the_signed_jwks(tmp_path: Path) -> None:
    config = load_config(environ={}).provider("ftn")
    rp = tmp_path / "rp.json"
    fed = tmp_path / "fed.json"
    rp.write_text(
        json.dumps({"keys": [k.private_jwk() for k in generate_keys("rp", None, config)]})
    )
    fed_keys = generate_keys("federation", None, config)
    assert [(k.use, k.alg) for k in fed_keys] == [("sig", "RS256")]
    fed.write_text(json.dumps({"keys": [FED.private_jwk()]}))
    toml = tmp_path / "authbroker.toml"
    toml.write_text(
        f'[providers.ftn]\nrp_keys = "{rp}"\nfederation_keys = "{fed}"\nclient_id = "rp-1"\n'
    )
    result = CliRunner().invoke(
        cli, ["keys", "jwks", "--signed", "--provider", "ftn", "--config", str(toml)]
    )
    assert result.exit_code == 0, result.output
    public = CliRunner().invoke(cli, ["keys", "jwks", str(rp)])
    _check(result.output.strip(), json.loads(public.output), "rp-1")
    bad = CliRunner().invoke(cli, ["keys", "jwks", "--signed", str(rp)])
    assert bad.exit_code != 0


def test_web_serves_signed_jwks_next_to_jwks_json() -> None:
    settings = _settings(entity_id="https://rp.example.fi")
    with simulated_broker(settings, store=MemoryStore()) as broker:

        def app(environ: Any, start_response: Any) -> list[bytes]:
            start_response("404 Not Found", [])
            return [b""]

        middleware = WsgiAuthMiddleware(app, broker=broker)
        client = httpx.Client(
            transport=httpx.WSGITransport(app=middleware), base_url=settings.base_url
        )
        r = client.get("/auth/jwks/ftn.jwt")
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/jwk-set+jwt"
        plain = client.get("/auth/jwks.json").json()
        provider = broker.provider("ftn")
        _check(r.text, provider.public_jwks(), "https://rp.example.fi")
        assert all(k in plain["keys"] for k in provider.public_jwks()["keys"])
        # Providers without RP or federation keys publish nothing.
        assert client.get("/auth/jwks/tara.jwt").status_code == 404
        assert client.get("/auth/jwks/nope.jwt").status_code == 404
