"""``import authbroker`` and ``import authbroker.web`` in fresh interpreters (absolute).

Each sample is a new subprocess timing its own import with ``time.perf_counter``
(interpreter start-up excluded). One untimed import first writes the bytecode cache,
so the samples see it warm, as users have it after the first run. One extra run with
``-X importtime`` names the heaviest imports, which is where a gap comes from, and
says whether jinja2 or sqlite3 were loaded.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from ._report import Figure

#: Subprocesses import this checkout's source, not whatever is installed.
_ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

TARGET_MS = 150.0
_SNIPPET = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"
_LAZY = ("jinja2", "sqlite3")


def _heaviest(module: str, n: int = 5) -> tuple[list[tuple[str, float]], list[str]]:
    """The heaviest non-authbroker imports, and which of jinja2/sqlite3 got loaded."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        capture_output=True,
        text=True,
        check=True,
        env=_ENV,
    )
    best: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        parts = line.split("|")
        if not line.startswith("import time:") or len(parts) != 3 or "cumulative" in line:
            continue
        package = parts[2].strip().split(".")[0]
        if package == "authbroker":
            continue
        # Nested imports are counted inside their parent's cumulative time; keep the
        # largest cumulative figure per third-party/stdlib package.
        best[package] = max(best.get(package, 0.0), int(parts[1]) / 1000)
    rows = list(best.items())
    rows.sort(key=lambda r: r[1], reverse=True)
    return rows[:n], [name for name in _LAZY if name in best]


def bench_import(*, samples: int) -> list[Figure]:
    return [_one("authbroker", "IMPORT", samples), _one("authbroker.web", "IMPORT-web", samples)]


def _one(module: str, id_: str, samples: int) -> Figure:
    snippet = _SNIPPET.format(module)
    subprocess.run(
        [sys.executable, "-c", f"import {module}"], check=True, env=_ENV
    )  # warm the cache
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", snippet], capture_output=True, text=True, check=True, env=_ENV
        ).stdout
        times.append(float(out.strip()) * 1000)
    median = statistics.median(times)
    rows, loaded = _heaviest(module)
    heavy = ", ".join(f"{name} {ms:.0f} ms" for name, ms in rows)
    lazy = f"{' and '.join(loaded)} loaded" if loaded else "neither jinja2 nor sqlite3 loaded"
    note = ""
    if median >= TARGET_MS:
        note = (
            f"Gap: {median - TARGET_MS:.0f} ms over the target; heaviest imports "
            f"(-X importtime of this run): {heavy}. Timings also depend on the "
            f"machine's load (see the load average above)."
        )
    return Figure(
        id_,
        f"import {module} (fresh interpreter, warm bytecode cache)",
        median,
        "ms",
        f"< {TARGET_MS:.0f} ms",
        median < TARGET_MS,
        detail=(
            f"median of {samples} fresh interpreters: {median:.1f} ms "
            f"(min {min(times):.1f}, max {max(times):.1f}); {lazy}. Heaviest top-level "
            f"imports (cumulative, one -X importtime run): {heavy}."
        ),
        note=note,
    )
