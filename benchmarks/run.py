"""Run every benchmark, print the table and write ``benchmarks/results.md``.

``make bench`` runs this file. Each figure is a ratio of two measurements taken in
the same run (see ``benchmarks/_timing.py``), reported against its target from
issues 11 and 18 as met or as a gap with its measured cause and what it would take.
Nothing here asserts: the numbers are reported, never used to pass or fail a build
(timed assertions in tests are banned, docs/development.md).

Options: ``--quick`` (fewer repetitions, for a smoke run) and ``--only ID[,ID]``
(run a subset: jws, jwe, asgi, otp, login, import).
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.insert(1, str(ROOT / "src"))

from benchmarks._redis import redis_server  # noqa: E402
from benchmarks._report import Figure, markdown, table  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results.md"
LIBRARIES = (
    "authbroker",
    "cryptography",
    "joserfc",
    "PyJWT",
    "Authlib",
    "python-jose",
    "argon2-cffi",
    "redis",
    "starlette",
    "SQLAlchemy",
    "itsdangerous",
    "httpx",
)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _redis_version() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        return "not installed"
    out = subprocess.run([binary, "--version"], check=False, capture_output=True, text=True).stdout
    for part in out.split():
        if part.startswith("v="):
            return part[2:]
    return out.strip()


def machine_description() -> list[tuple[str, str]]:
    versions = []
    for name in LIBRARIES:
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        ("date", dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")),
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("OS", platform.platform()),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("OpenSSL", _openssl()),
        ("redis-server", _redis_version()),
        ("libraries", ", ".join(versions)),
        ("load average at start (1, 5, 15 min)", load),
    ]


def _openssl() -> str:
    try:
        from cryptography.hazmat.backends.openssl.backend import backend

        return str(backend.openssl_version_text())
    except Exception:  # pragma: no cover - informational only
        return "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (smoke run)")
    parser.add_argument("--only", default="", help="comma-separated subset")
    parser.add_argument("--output", default=str(RESULTS), help="where to write the markdown report")
    args = parser.parse_args(argv)
    only = {s.strip() for s in args.only.split(",") if s.strip()}
    repeat = 3 if args.quick else 9
    scale = 0.4 if args.quick else 1.0

    from benchmarks.bench_import import bench_import
    from benchmarks.bench_jose import bench_id_token, bench_nested
    from benchmarks.bench_links import bench_otp_verify
    from benchmarks.bench_passwords import bench_login
    from benchmarks.bench_web import bench_asgi, bench_served, bench_session_cpu

    machine = machine_description()
    started = time.monotonic()
    figures: list[Figure] = []
    with redis_server() as redis_url:
        steps: list[tuple[str, Callable[[], list[Figure]]]] = [
            # Short, many repetitions: a burst of load from a neighbour on a shared
            # machine then spoils a few samples of each case, not the median.
            ("jws", lambda: bench_id_token("RS256", repeat=3 * repeat, budget=0.05 * scale)),
            ("jws", lambda: bench_id_token("ES256", repeat=3 * repeat, budget=0.05 * scale)),
            ("jws", lambda: bench_id_token("EdDSA", repeat=3 * repeat, budget=0.05 * scale)),
            ("jwe", lambda: bench_nested(repeat=repeat, budget=0.3 * scale)),
            ("asgi", lambda: bench_asgi(redis_url, repeat=repeat, budget=0.3 * scale)),
            ("asgi", lambda: bench_session_cpu(repeat=repeat, budget=0.3 * scale)),
            (
                "served",
                lambda: bench_served(redis_url, repeat=max(3, repeat // 3), seconds=3 * scale),
            ),
            (
                "otp",
                lambda: bench_otp_verify(
                    redis_url, batches=repeat, per_batch=max(20, int(100 * scale))
                ),
            ),
            ("login", lambda: bench_login(repeat=repeat, budget=0.5 * scale)),
            ("import", lambda: bench_import(samples=repeat)),
        ]
        for name, step in steps:
            if only and name not in only:
                continue
            print(f"running {name} ...", file=sys.stderr, flush=True)
            figures.extend(step())
    elapsed = time.monotonic() - started
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    machine.append(("load average at end", load))
    print(table(figures))
    print(
        f"\n{sum(1 for f in figures if f.met)} of {len(figures)} targets met; "
        f"{elapsed:.0f} s. Report: {args.output}"
    )
    Path(args.output).write_text(markdown(figures, machine, elapsed), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
