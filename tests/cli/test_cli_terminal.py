"""The CLI in a real terminal (tmux): the animated BankID QR is drawn and replaced by
the identity when the (simulated) user has scanned it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

TMUX = shutil.which("tmux")
AUTHBROKER = str(Path(sys.executable).with_name("authbroker"))

pytestmark = pytest.mark.skipif(
    TMUX is None and not os.environ.get("CI"), reason="tmux is not installed"
)


def _capture(session: str) -> str:
    assert TMUX is not None, "tmux must be installed in CI (see .ci/system)"
    return subprocess.run(
        [TMUX, "capture-pane", "-p", "-t", session], capture_output=True, text=True, check=True
    ).stdout


def _wait_for(session: str, predicate: object, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _capture(session)
        if predicate(screen):  # type: ignore[operator]
            return screen
        time.sleep(0.2)
    raise AssertionError(f"terminal never showed the expected screen:\n{screen}")


def test_bankid_qr_drawn_in_a_real_terminal(tmp_path: Path) -> None:
    assert TMUX is not None, "tmux must be installed in CI (see .ci/system)"
    session = f"ab-{uuid.uuid4().hex[:8]}"
    command = f"cd {tmp_path} && {AUTHBROKER} flow bankid-se --user-delay 3; sleep 60"
    subprocess.run(
        [TMUX, "new-session", "-d", "-s", session, "-x", "120", "-y", "60", command], check=True
    )
    try:
        qr_screen = _wait_for(
            session, lambda s: "outstandingTransaction" in s and s.count("█") > 300, 30
        )
        rows = [line for line in qr_screen.splitlines() if line.startswith("██")]
        # A QR code: a square block (two modules per text row), finder patterns in the
        # top corners, and the hint message below it.
        assert len(rows) >= 15
        width = len(rows[0].rstrip())
        assert abs(width - 2 * len(rows)) <= 4
        assert rows[1].startswith("██ ▄▄▄▄▄ █") and rows[1].rstrip().endswith("█ ▄▄▄▄▄ ██")
        assert "Start your BankID app" in qr_screen
        done = _wait_for(session, lambda s: "Identity from bankid-se" in s, 40)
        assert "SE:19******" in done and "█" not in done
    finally:
        subprocess.run([TMUX, "kill-session", "-t", session], check=False)
