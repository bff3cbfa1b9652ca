"""CLI polish of issue 21: test persons, input errors at once, "did you mean",
progress without a terminal, `authbroker link` JSON, its state directory, and
tokens / challenge ids that begin with "-"."""

from __future__ import annotations

import itertools
import json
import re
import secrets
import stat
import time
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from authbroker.cli import cli, main
from authbroker.config import load_config
from authbroker.testing.simulators.bankid_se import TEST_USERS

PROVIDERS = sorted(load_config(environ={}).providers)


# --- test persons -------------------------------------------------------------------


def test_persons_lists_the_bankid_simulators_users() -> None:
    result = CliRunner().invoke(cli, ["persons", "bankid-se", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    persons = {p["id"]: p for p in json.loads(result.stdout)}
    assert set(persons) == set(TEST_USERS)
    assert persons["197203154567"]["note"] == "ends userCancel"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_persons_for_every_provider(provider: str) -> None:
    result = CliRunner().invoke(cli, ["persons", provider, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    persons = json.loads(result.stdout)
    if provider == "web-eid":
        assert persons == []
    else:
        assert persons and all(p["id"] and p["name"] for p in persons)


def test_flow_person_help_lists_the_persons_and_runs_no_flow() -> None:
    result = CliRunner().invoke(
        cli, ["flow", "mobiilivarmenne", "--person", "help"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert "+358401234567" in result.output
    assert "Identity from" not in result.output


def test_a_chosen_person_still_acts() -> None:
    result = CliRunner().invoke(
        cli, ["flow", "tupas-nordea", "--person", "ville", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["given_name"].upper() == "VILLE"


def test_unknown_person_is_a_usage_error_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    code = main(["flow", "bankid-se", "--person", "199001010018", "--timeout", "60"])
    assert code == 2
    assert time.monotonic() - started < 10  # not a wait for the simulator to give up
    err = capsys.readouterr().err
    assert "did you mean `199001010017`" in err
    assert "197203154567" in err  # the valid ones are named


def test_unknown_provider_did_you_mean(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["flow", "bankid-sw", "--json"]) == 2
    assert main(["persons", "mobiilivarmene"]) == 2
    out = capsys.readouterr()
    text = out.out + out.err
    assert "did you mean `bankid-se`" in text
    assert "did you mean `mobiilivarmenne`" in text


# --- progress without a terminal ----------------------------------------------------


def test_progress_is_printed_when_output_is_not_a_terminal() -> None:
    result = CliRunner().invoke(
        cli, ["flow", "bankid-se", "--user-delay", "1.5", "--json"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("waiting: ")]
    assert any("[outstandingTransaction]" in line for line in lines), result.stderr
    assert all(a != b for a, b in itertools.pairwise(lines))  # per change only
    assert "█" not in result.stderr  # no QR drawn into a log
    assert json.loads(result.stdout)["provider"] == "bankid-se"


# --- authbroker link ----------------------------------------------------------------


def _iso(value: str) -> datetime:
    assert value.endswith("Z"), value
    return datetime.fromisoformat(value)


@pytest.fixture
def dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    work, state = tmp_path / "work", tmp_path / "state"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    monkeypatch.delenv("AUTHBROKER_SECRET_KEYS", raising=False)
    return work, state


def _cycle(runner: CliRunner, *store: str) -> tuple[dict[str, str], ...]:
    issued = runner.invoke(cli, ["link", "issue", "u-1", "0401234567", "doc:sign", "d-1", *store])
    assert issued.exit_code == 0, issued.output
    link = json.loads(issued.stdout)
    opened = runner.invoke(cli, ["link", "open", link["url"], *store])
    assert opened.exit_code == 0, opened.output
    challenge = json.loads(opened.stdout)
    code = re.search(r"#(\d{6,})", opened.stderr)
    assert code is not None
    verified = runner.invoke(
        cli, ["link", "verify", challenge["challenge_id"], code.group(1), *store]
    )
    assert verified.exit_code == 0, verified.output
    return link, challenge, json.loads(verified.stdout)


def test_link_prints_json_with_iso_times(dirs: tuple[Path, Path]) -> None:
    before = time.time()
    link, challenge, grant = _cycle(CliRunner())
    expires = _iso(link["expires_at"]).timestamp()
    assert before + 3600 - 5 <= expires <= time.time() + 3600 + 5
    assert before - 1 <= _iso(challenge["resend_after"]).timestamp() < expires
    assert before < _iso(challenge["expires_at"]).timestamp() < expires
    assert _iso(grant["expires_at"]).timestamp() > before
    assert grant["scope"] == "doc:sign" and grant["resource"] == "d-1"


def test_link_default_store_is_private_and_outside_the_working_directory(
    dirs: tuple[Path, Path],
) -> None:
    work, state = dirs
    runner = CliRunner()
    _cycle(runner)
    assert list(work.iterdir()) == []  # no database, no secret in the checkout
    home = state / "authbroker"
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("links.db", "links.db.secret"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name
    assert "warning" not in runner.invoke(cli, ["link", "open", "x"]).stderr


def test_link_store_in_the_working_directory_warns(dirs: tuple[Path, Path]) -> None:
    work, _ = dirs
    result = CliRunner().invoke(
        cli, ["link", "issue", "u", "0401234567", "a:b", "r", "--store", "sqlite:///here.db"]
    )
    assert result.exit_code == 0, result.output
    assert "inside the working directory" in result.stderr
    assert stat.S_IMODE((work / "here.db").stat().st_mode) == 0o600


def test_challenge_ids_and_tokens_beginning_with_a_dash(
    dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every id the engine makes starts with "-h" (a dash and click's short help name):
    still read as arguments, never as options."""
    real = secrets.token_urlsafe

    def dashed(nbytes: int | None = None) -> str:
        return "-h" + real(nbytes)[2:]

    monkeypatch.setattr(secrets, "token_urlsafe", dashed)
    runner = CliRunner()
    for _ in range(3):
        _, challenge, grant = _cycle(runner)
        assert challenge["challenge_id"].startswith("-h")
        assert grant["resource"] == "d-1"
    # After "--" too, and a dashed unknown id is the typed "not found", not a usage error.
    missing = runner.invoke(cli, ["link", "verify", "--", "-hnot-a-challenge", "123456"])
    assert missing.exit_code == 1, missing.output
    assert "No such option" not in missing.output
