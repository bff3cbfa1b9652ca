"""The `authbroker` command: flows against every simulator, exit codes, redaction."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from authbroker.cli import cli, main
from authbroker.config import load_config
from authbroker.identity import NationalId
from authbroker.redact import redact_body, redact_text, redact_url
from authbroker.testing import simulated_broker

PROVIDERS = sorted(load_config(environ={}).providers)
ID_PATTERN = re.compile(r"\b\d{6}[-+A-FU-Y]\d{3}[0-9A-Y]\b|\b\d{11,12}\b")


def test_every_builtin_provider_is_listed() -> None:
    expected = {
        "ftn",
        "bankid-no",
        "tara",
        "broker-oidc",
        "bankid-se",
        "mobiilivarmenne",
        "web-eid",
    }
    assert expected <= set(PROVIDERS)
    assert any(p.startswith("tupas-") for p in PROVIDERS)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_flow_simulator_json_for_every_provider(provider: str) -> None:
    result = CliRunner().invoke(
        cli,
        ["flow", provider, "--env", "simulator", "--json", "--timeout", "60"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["provider"] == provider
    assert data["loa"] in ("substantial", "high")
    nid = data["national_id"]
    assert nid is not None and nid["country"] in ("FI", "EE", "SE", "NO")
    # Masked by default: the full number never reaches the terminal.
    assert "*" in nid["value"]
    assert not ID_PATTERN.search(result.stdout)


def test_show_personal_data_prints_a_valid_number() -> None:
    result = CliRunner().invoke(
        cli, ["flow", "ftn", "--json", "--show-personal-data"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    nid = json.loads(result.stdout)["national_id"]
    assert NationalId.parse(nid["value"], nid["country"]).value == nid["value"]


def test_verbose_shows_messages_redacted() -> None:
    result = CliRunner().invoke(cli, ["flow", "ftn", "--verbose"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "→ GET" in out or "→ POST" in out
    assert "token" in out  # the token request is shown...
    assert not re.search(r"eyJ[\w-]{10,}\.", out)  # ...but no JWT in it
    assert not ID_PATTERN.search(out)


def test_exit_code_1_when_authentication_fails(capsys: pytest.CaptureFixture[str]) -> None:
    # A BankID test user scripted to cancel in the app.
    code = main(["flow", "bankid-se", "--person", "197203154567", "--timeout", "60"])
    assert code == 1
    assert "UserCancelled" in capsys.readouterr().out


def test_exit_code_2_for_usage_and_config_errors(tmp_path: Path) -> None:
    assert main(["flow", "no-such-provider"]) == 2
    assert main(["flow", "ftn", "--param", "novalue"]) == 2
    assert main(["check-config", str(tmp_path / "missing.toml")]) == 2
    bad = tmp_path / "bad.toml"
    bad.write_text('[broker]\nenvironment = "staging"\n')
    assert main(["check-config", str(bad)]) == 2
    assert main(["no-such-command"]) == 2


def test_check_config_reports_exact_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "authbroker.toml"
    cfg.write_text(
        '[broker]\nenvironment = "production"\nbase_url = "https://app.example"\n'
        '[providers.ftn]\nclient_id = "x"\n'
    )
    monkeypatch.setenv("AUTHBROKER_SECRET_KEYS", "k" * 40)
    result = CliRunner().invoke(cli, ["check-config", str(cfg)])
    assert result.exit_code != 0
    assert "providers.ftn." in result.output


def test_check_config_ok_for_embedded_defaults() -> None:
    assert main(["check-config"]) == 0


def test_providers_json_with_health() -> None:
    result = CliRunner().invoke(cli, ["providers", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == set(PROVIDERS)
    ftn_checks = {c["check"]: c["ok"] for c in rows["ftn"]["checks"]}
    assert ftn_checks.get("discovery") is True


def test_help_for_every_command() -> None:
    runner = CliRunner()
    for command in cli.commands:
        result = runner.invoke(cli, [command, "--help"])
        assert result.exit_code == 0
        assert "Usage:" in result.output


# --- redaction --------------------------------------------------------------------


def test_redaction_helpers() -> None:
    url = "https://op/cb?code=abc123&state=s&iss=https%3A%2F%2Fop&B02K_CUSTID=131052-308T"
    red = redact_url(url)
    assert "abc123" not in red and "131052-308T" not in red and "iss=https" in red
    body = b'{"id_token":"eyJhbGciOi.eyJzdWIi.sig","personalNumber":"199001010017","x":1}'
    out = redact_body(body)
    assert "eyJ" not in out and "199001010017" not in out and '"x": 1' in out
    assert redact_body(b"grant_type=authorization_code&code=XYZ&code_verifier=V") == (
        "grant_type=authorization_code&code=%3C3+chars%3E&code_verifier=%3C1+chars%3E"
    )
    assert "38001085718" not in redact_text("serial PNOEE-38001085718")


# --- keys -------------------------------------------------------------------------


def test_keys_generate_rotate_jwks(tmp_path: Path) -> None:
    runner = CliRunner()
    path = tmp_path / "rp.json"
    result = runner.invoke(cli, ["keys", "generate", "--out", str(path)])
    assert result.exit_code == 0, result.output
    public = json.loads(result.stdout)
    assert {k["use"] for k in public["keys"]} == {"sig", "enc"}
    assert all("d" not in k for k in public["keys"])  # public only
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert runner.invoke(cli, ["keys", "generate", "--out", str(path)]).exit_code == 2
    first_kids = [k["kid"] for k in public["keys"]]
    rotated = json.loads(runner.invoke(cli, ["keys", "rotate", str(path)]).stdout)
    kids = [k["kid"] for k in rotated["keys"]]
    assert len(kids) == 4 and set(first_kids) <= set(kids) and kids[:2] != first_kids
    again = json.loads(runner.invoke(cli, ["keys", "rotate", str(path)]).stdout)
    assert len(again["keys"]) == 4 and not set(first_kids) & {k["kid"] for k in again["keys"]}
    listed = json.loads(runner.invoke(cli, ["keys", "jwks", str(path)]).stdout)
    assert listed == again


def test_keys_for_tokens_are_eddsa(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["keys", "generate", "--for", "tokens", "--out", str(tmp_path / "t.json")]
    )
    assert result.exit_code == 0
    (key,) = json.loads(result.stdout)["keys"]
    assert key["kty"] == "OKP" and key["alg"] == "EdDSA"


# --- link -------------------------------------------------------------------------


def test_link_issue_open_verify(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AUTHBROKER_SECRET_KEYS", raising=False)
    store = ["--store", f"sqlite:///{tmp_path}/links.db"]
    runner = CliRunner()
    issued = runner.invoke(
        cli, ["link", "issue", "u-1", "0401234567", "invoice:approve", "inv-42", *store]
    )
    assert issued.exit_code == 0, issued.output
    url = json.loads(issued.stdout)["url"]
    assert url.startswith("http://127.0.0.1:8000/auth/link/")
    assert "inv-42" not in url and "0401234567" not in url  # nothing personal in the URL
    opened = runner.invoke(cli, ["link", "open", url, *store])
    assert opened.exit_code == 0, opened.output
    challenge = json.loads(opened.stdout)
    assert challenge["masked_phone"].endswith("67") and "0401234567" not in opened.stdout
    code = re.search(r"#(\d{6,})", opened.stderr)
    assert code is not None
    wrong = "0" * len(code.group(1)) if code.group(1) != "0" * len(code.group(1)) else "1" * 6
    assert (
        runner.invoke(cli, ["link", "verify", challenge["challenge_id"], wrong, *store]).exit_code
        == 1
    )
    ok = runner.invoke(cli, ["link", "verify", challenge["challenge_id"], code.group(1), *store])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["resource"] == "inv-42"
    replay = runner.invoke(
        cli, ["link", "verify", challenge["challenge_id"], code.group(1), *store]
    )
    assert replay.exit_code == 1 and "AlreadyUsed" in replay.output


# --- outside the simulator: the system browser and a loopback callback -------------


def test_redirect_flow_with_loopback_listener(monkeypatch: pytest.MonkeyPatch) -> None:
    """The path used with --env test/production: the URL is opened in a browser and the
    provider's redirect is caught on the loopback listener that is the base URL."""
    import threading

    import httpx
    from rich.console import Console

    from authbroker.cli import Catcher, run_flow
    from authbroker.testing.simulators.server import LoopbackServer

    catcher = Catcher()
    server = LoopbackServer(catcher).start()
    settings = load_config(environ={}, overrides={"broker": {"base_url": server.url}})
    opened: list[str] = []

    def browser(url: str) -> bool:  # the "system browser": follows every redirect
        opened.append(url)
        threading.Thread(
            target=lambda: httpx.get(url, follow_redirects=True, timeout=10), daemon=True
        ).start()
        return True

    monkeypatch.setattr("webbrowser.open", browser)
    try:
        with simulated_broker(settings) as broker:
            sim = broker.simulator("ftn")
            assert sim is not None
            sim.extra["control"].auto_approve = True
            done = run_flow(
                broker,
                "ftn",
                params={},
                console=Console(file=None),
                simulated=False,
                interactive=True,
                language="en",
                timeout=30,
                listener=(catcher, server),
            )
    finally:
        server.stop()
    assert opened and opened[0].startswith("http://127.0.0.1")
    assert done.identity.provider == "ftn" and done.identity.national_id is not None
    assert server.requests["/auth/callback/ftn"] == 1


def test_demo_without_the_web_extra_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name: str, *args: object, **kwargs: object) -> object:
        return None if name == "uvicorn" else real(name, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    assert main(["demo", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "web extra" in err and "uvicorn" in err


def test_providers_every_check_passes_on_a_fresh_simulator_setup() -> None:
    """No false ✗ in the simulator environment: the command can gate a deploy."""
    result = CliRunner().invoke(cli, ["providers", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    failing = [
        (row["name"], c) for row in json.loads(result.stdout) for c in row["checks"] if not c["ok"]
    ]
    assert failing == []


def _expired_pem() -> str:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expired test CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(days=30))
        .not_valid_after(now - dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def test_providers_fails_on_404_and_expired_inline_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An HTTP 404 is not ✓, inline PEM is a certificate (not a path), and any failing
    check makes the command exit non-zero."""
    from authbroker.testing.simulators.server import LoopbackServer, SimResponse

    server = LoopbackServer(lambda req: SimResponse(404, b"moved")).start()
    try:
        config = tmp_path / "authbroker.toml"
        config.write_text(
            f"""
[broker]
environment = "simulator"

[providers.ftn]
enabled = false

[providers.web-eid]
environment = "test"
trusted_ca_certificates = [{json.dumps(_expired_pem())}]

[providers.tupas-op]
environment = "test"
url = "{server.url}/tupas"
"""
        )
        code = main(["providers", "--json", "--config", str(config)])
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert code == 1, out
    rows = {r["name"]: r for r in json.loads(out)}
    tupas = {c["check"]: c for c in rows["tupas-op"]["checks"]}
    assert tupas["url"] == {"check": "url", "ok": False, "detail": "HTTP 404"}
    web_eid = rows["web-eid"]["checks"]
    assert any(
        not c["ok"] and "expired test CA" in c["check"] and "not valid now" in c["detail"]
        for c in web_eid
    ), web_eid
