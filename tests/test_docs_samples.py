"""Every code sample in README.md and docs/ runs, so a sample that stops working fails CI.

Python blocks are executed with Sybil, one namespace per page, in page order. Where a
page elides something a real application has (a browser cookie, the round trip
through the provider), an invisible block (``<!-- invisible-code-block: python``)
defines it from :mod:`docs_support`, and some pages add invisible checks after a
sample. TOML blocks must parse; ``authbroker`` command lines in ``sh`` blocks run
through the CLI against the simulators; the help texts quoted in ``text`` blocks of
docs/cli.md must equal the command's own ``--help``.

A block that cannot run here is listed in ``NOT_RUN`` with the reason.
"""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
from sybil import Sybil
from sybil.parsers.markdown import PythonCodeBlockParser

# Fixtures postgres_url, pg_schema (the deployment page's PostgreSQL sample).
pytest_plugins = ["conftest_pg"]

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

#: (page, first words of the command) that are not run, with the reason.
NOT_RUN = {
    "make test": "CI itself is `make test`; running it inside the suite would recurse",
    "make demo": "serves until stopped; tests/browser/test_browser_demo.py drives the demo",
    "openssl pkcs12": "needs the BankID test certificate file downloaded by the reader",
    "pip install": "installs into the reader's environment (the dev extra has them all)",
}


def _rel(page: Path) -> str:
    return str(page.relative_to(ROOT))


def _fenced(page: Path, language: str) -> list[tuple[int, str]]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in re.finditer(rf"^```{language}\n(.*?)^```", text, re.S | re.M):
        blocks.append((text.count("\n", 0, match.start()) + 1, match.group(1)))
    return blocks


def _with_schema(url: str, schema: str) -> str:
    """The test PostgreSQL URL with ``schema`` first on the search path."""
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


PYTHON_PAGES = [p for p in PAGES if _fenced(p, "python")]


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=_rel)
def test_python_samples_run(
    page: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if any("redis://" in body for _, body in _fenced(page, "python")):
        request.getfixturevalue("redis_url")  # skips (fails in CI) without the test Redis
    if "AUTHBROKER_CREDENTIALS_URL" in page.read_text(encoding="utf-8"):
        schema = request.getfixturevalue("pg_schema")
        url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("AUTHBROKER_CREDENTIALS_URL", _with_schema(url, schema))
    monkeypatch.chdir(tmp_path)  # samples may write files (databases, keys)
    monkeypatch.delenv("AUTHBROKER_CONFIG", raising=False)
    document = Sybil(parsers=[PythonCodeBlockParser()]).parse(page)
    # Flask and friends look their application module up by __name__.
    document.namespace["__name__"] = "__main__"
    closers: list[Any] = []
    document.namespace["_closers"] = closers
    try:
        for example in document:
            try:
                example.evaluate()
            except Exception as exc:
                raise AssertionError(f"{_rel(page)}:{example.line}: {exc!r}") from exc
    finally:
        for close in reversed(closers):
            close()


@pytest.mark.parametrize("page", [p for p in PAGES if _fenced(p, "toml")], ids=_rel)
def test_toml_samples_parse(page: Path) -> None:
    for line, body in _fenced(page, "toml"):
        try:
            tomllib.loads(body)
        except tomllib.TOMLDecodeError as exc:
            raise AssertionError(f"{_rel(page)}:{line}: {exc}") from exc


def _sh_blocks() -> list[tuple[str, int, list[str]]]:
    """Every ``sh`` block: its page, first line and command lines (comments dropped)."""
    found = []
    for page in PAGES:
        for line, body in _fenced(page, "sh"):
            commands = [c.split("  #", 1)[0].strip() for c in body.splitlines()]
            found.append((_rel(page), line, [c for c in commands if c]))
    return found


@pytest.mark.parametrize(
    ("page", "line", "commands"), _sh_blocks(), ids=[f"{p}:{n}" for p, n, _ in _sh_blocks()]
)
def test_cli_examples_run(
    page: str, line: int, commands: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The commands of one block run in order, in one working directory."""
    from docs_support import run_cli

    ran = 0
    for command in commands:
        if any(command.startswith(start) for start in NOT_RUN):
            continue
        words = shlex.split(command)
        assert words[0] == "authbroker", f"{page}:{line}: unknown command {command!r}"
        code, output = run_cli(words[1:], tmp_path, monkeypatch)
        assert code == 0, f"{page}:{line}: {command!r} exited {code}:\n{output}"
        ran += 1
    if not ran:
        pytest.skip(
            "; ".join(sorted({NOT_RUN[s] for s in NOT_RUN for c in commands if c.startswith(s)}))
        )


def _help_blocks() -> list[tuple[int, list[str], str]]:
    """``text`` blocks of docs/cli.md: (line, command words, quoted text). The command is
    the one named by the nearest heading above (`authbroker flow PROVIDER` → flow)."""
    page = ROOT / "docs" / "cli.md"
    text = page.read_text(encoding="utf-8")
    blocks = []
    for line, body in _fenced(page, "text"):
        before = text.split("\n")[: line - 1]
        heading = next((h for h in reversed(before) if h.startswith("#")), "")
        match = re.search(r"`authbroker ?([a-z -]*)", heading)
        words = [w for w in (match.group(1) if match else "").split() if w.islower()]
        blocks.append((line, words, body))
    return blocks


def _normalized(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize(("line", "words", "quoted"), _help_blocks(), ids=str)
def test_cli_help_quoted_in_the_docs_is_the_real_one(
    line: int, words: list[str], quoted: str
) -> None:
    from click.testing import CliRunner

    from authbroker.cli import cli

    result = CliRunner().invoke(cli, [*words, "--help"], prog_name="authbroker", terminal_width=200)
    assert result.exit_code == 0, result.output
    # Line wrapping depends on the terminal: compare with all white space folded.
    real = " ".join(_normalized(result.output))
    for quoted_line in _normalized(quoted):
        assert quoted_line in real, f"docs/cli.md:{line}: {quoted_line!r} is not in the help"
