"""A PostgreSQL server owned by one test module, so it can be killed and restarted.

The shared test PostgreSQL (tests/conftest_pg.py) must never be stopped, so the
fault tests build their own cluster with the distribution's binaries
(``/usr/lib/postgresql/<version>/bin``, the newest version found, or the directory
of ``initdb`` on ``PATH``): ``initdb`` into a temporary directory, then the
``postgres`` server itself on a free loopback port with its Unix socket in that
directory, so nothing clashes with a system cluster.

PostgreSQL refuses to run as root ("root execution of the PostgreSQL server is not
permitted", https://www.postgresql.org/docs/current/server-start.html), so under
root both programs run as the ``postgres`` account through ``runuser`` (util-linux)
and the directory is handed to that account.

:meth:`PostgresServer.kill` is a crash: SIGKILL to the server's whole process group
(the postmaster and every backend at once, as the kernel's OOM killer or a power cut
would do it). The dead server leaves ``postmaster.pid`` and the socket lock file
behind; PostgreSQL refuses to start while the PID written there is still alive, and
a killed backend may linger as a zombie for a moment, so :meth:`kill` removes both
files once the process group is gone. :meth:`start` then runs the normal crash
recovery (WAL replay): committed rows survive, as on a real server.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

#: The database the tests use (initdb creates it).
DATABASE = "postgres"


def find_bindir() -> Path | None:
    """The newest ``/usr/lib/postgresql/*/bin`` with initdb and postgres, else PATH."""

    def version(path: str) -> tuple[int, ...]:
        parts = Path(path).parent.name.split(".")
        return tuple(int(p) for p in parts if p.isdigit())

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    on_path = shutil.which("initdb")
    if on_path is not None:
        candidates.append(str(Path(on_path).parent))
    for candidate in candidates:
        bindir = Path(candidate)
        if (bindir / "initdb").exists() and (bindir / "postgres").exists():
            return bindir
    return None


def missing_tools() -> str | None:
    """Why a server cannot be built here (None when it can)."""
    if find_bindir() is None:
        return "PostgreSQL server binaries (initdb, postgres) are not installed"
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            return "runuser is needed to run PostgreSQL as the postgres user under root"
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root needs a 'postgres' account to run PostgreSQL"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _group_running(group: int) -> bool:
    """Whether a process of ``group`` still runs. A killed backend stays a zombie
    until it is reaped, which holds no memory or socket, so zombies do not count
    (Linux ``/proc/<pid>/stat``: state is field 3, process group field 5)."""
    if not os.path.isdir("/proc"):  # pragma: no cover - not Linux
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                return True
    return False


class PostgresServer:
    """initdb once, then start / kill (crash) / stop / restart the server."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="ab-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            account = pwd.getpwnam("postgres")
            os.chown(self.root, account.pw_uid, account.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        try:
            subprocess.run(
                [
                    *self._as_user,
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
                check=True,
                capture_output=True,
                timeout=120,
            )
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    @property
    def conninfo(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        assert self.proc is None
        log = open(self.root / "server.log", "ab")  # noqa: SIM115 - handed to the child
        try:
            self.proc = subprocess.Popen(
                [
                    *self._as_user,
                    str(self.bindir / "postgres"),
                    "-D",
                    str(self.data),
                    "-p",
                    str(self.port),
                    "-k",
                    str(self.root),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    # A test server: the OS keeps what a killed process wrote, so
                    # fsync buys nothing here and costs seconds on a shared disk.
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=60",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, killed as one
            )
        finally:
            log.close()
        self._wait_ready(time.monotonic() + 60)

    def _wait_ready(self, deadline: float) -> None:
        import psycopg

        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                break
            try:
                with psycopg.connect(self.conninfo, connect_timeout=1) as conn:
                    conn.execute("SELECT 1")
                return
            except psycopg.Error:
                time.sleep(0.05)
        tail = (self.root / "server.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"the test PostgreSQL did not start:\n{tail}")

    def kill(self) -> None:
        """Crash: SIGKILL to every process of the server at once."""
        if self.proc is None:
            return
        group = self.proc.pid  # start_new_session: the group id is the leader's pid
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
        self.proc.wait()
        self.proc = None
        deadline = time.monotonic() + 10
        while _group_running(group) and time.monotonic() < deadline:
            time.sleep(0.01)
        self._remove_lock_files()

    def _remove_lock_files(self) -> None:
        for path in (self.data / "postmaster.pid", self.root / f".s.PGSQL.{self.port}.lock"):
            path.unlink(missing_ok=True)

    def stop(self) -> None:
        """Fast shutdown (SIGINT): the server closes its sessions and checkpoints."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.kill()
        self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
