"""Every reference in the repository resolves inside it.

* A requirement id cited anywhere (``OTP-05``, ``R-02``, ``SEB-04`` ...) is defined in
  the requirement catalogue of ``docs/security-model.md``.
* No file points at a path outside the repository (``../shared``, a developer's
  machine): a reader of a clean checkout can follow every reference.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ID = re.compile(
    r"\b(?:API|EID|JOSE|LNK|LOG|MID|OIDC|OTP|PROF|PWD|R|SEB|SES|SMS|STO|TOK|TUP|WEB)-\d{2}\b"
)
OUTSIDE = re.compile(
    r"\.\./shared|shared/(?:protocols|testdata)|/work/|PROTOCOLS\.md|DESIGN\.md"
    r"|fi-ee\.md|se-no-otp-passwords\.md|security-requirements"
)
TEXT_SUFFIXES = {".py", ".md", ".toml", ".html", ".js", ".css", ".txt", ".yml", ".cfg", ""}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    files = []
    for name in listed:
        path = ROOT / name
        if path.suffix in TEXT_SUFFIXES and path.is_file():
            files.append(path)
    return files


def _catalogue() -> set[str]:
    text = (ROOT / "docs" / "security-model.md").read_text(encoding="utf-8")
    section = text.split("## Requirement catalogue", 1)
    assert len(section) == 2, "docs/security-model.md has no requirement catalogue"
    return set(re.findall(r'<span id="[a-z]+-\d+"></span>([A-Z]+-\d{2})', section[1]))


def test_every_cited_requirement_id_is_defined() -> None:
    defined = _catalogue()
    undefined: dict[str, list[str]] = {}
    for path in _tracked_text_files():
        if path.name == "test_docs_references.py":
            continue
        for rid in set(ID.findall(path.read_text(encoding="utf-8", errors="replace"))):
            if rid not in defined:
                undefined.setdefault(rid, []).append(str(path.relative_to(ROOT)))
    assert not undefined, f"requirement ids cited but not defined: {undefined}"


def test_no_reference_leaves_the_repository() -> None:
    offenders = []
    for path in _tracked_text_files():
        if path.name == "test_docs_references.py":
            continue
        for number, line in enumerate(
            path.read_text(encoding="utf-8", errors="replace").splitlines(), 1
        ):
            if OUTSIDE.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:100]}")
    assert not offenders, "\n".join(offenders)
