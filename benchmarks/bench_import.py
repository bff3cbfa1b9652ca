"""``import authbroker`` in a fresh interpreter (absolute figure, not a ratio).

Each sample is a new subprocess timing its own ``import authbroker`` with
``time.perf_counter`` (interpreter start-up excluded). One extra run with
``-X importtime`` names the heaviest imports, which is where a gap comes from.
"""

from __future__ import annotations

import statistics
import subprocess
import sys

from ._report import Figure

TARGET_MS = 150.0
_SNIPPET = "import time; t = time.perf_counter(); import authbroker; print(time.perf_counter() - t)"


def _heaviest(n: int = 5) -> list[tuple[str, float]]:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import authbroker"],
        capture_output=True,
        text=True,
        check=True,
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
    return rows[:n]


def bench_import(*, samples: int) -> list[Figure]:
    times = []
    for _ in range(samples):
        out = subprocess.run(
            [sys.executable, "-c", _SNIPPET], capture_output=True, text=True, check=True
        ).stdout
        times.append(float(out.strip()) * 1000)
    median = statistics.median(times)
    heavy = ", ".join(f"{name} {ms:.0f} ms" for name, ms in _heaviest())
    note = ""
    if median >= TARGET_MS:
        note = (
            f"Gap: {median - TARGET_MS:.0f} ms over the target; heaviest imports: {heavy}. "
            f"`import authbroker` loads authbroker.engines.flows -> kernel -> http, and "
            f"authbroker.http imports httpx at module level; httpx in turn imports its "
            f"command-line extras (click, rich, pygments) whenever they are installed, "
            f"as they are with the cli extra. Importing httpx lazily inside the drivers "
            f"(and the SQLite store module only when a sqlite:// URL is opened) would "
            f"remove most of it. Timings also depend on the machine's load (see the "
            f"load average above)."
        )
    return [
        Figure(
            "IMPORT",
            "import authbroker (fresh interpreter)",
            median,
            "ms",
            f"< {TARGET_MS:.0f} ms",
            median < TARGET_MS,
            detail=(
                f"median of {samples} fresh interpreters: {median:.1f} ms "
                f"(min {min(times):.1f}, max {max(times):.1f}). Heaviest top-level "
                f"imports (cumulative, one -X importtime run): {heavy}."
            ),
            note=note,
        )
    ]
