"""Shared pieces of the store outage tests (Redis, PostgreSQL): a simulated broker on
the store under test with its audit trail, an OIDC login driven to its callback, and
an HTTP driver that takes the store down right after the token response (the worst
moment of a callback: the code is spent, the flow not yet completed)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx

from authbroker import Broker, Redirect
from authbroker.audit import AuditLog, MemorySink
from authbroker.config import load_config
from authbroker.errors import StoreUnavailable
from authbroker.http import HttpRequest, HttpResponse, SyncDriver
from authbroker.store import StateStore
from authbroker.testing import simulated_broker


class OutageEnv:
    """A simulated broker on ``store``; ``grants()`` counts completed flows."""

    def __init__(self, store: StateStore, driver: SyncDriver | None = None) -> None:
        self.sink = MemorySink()
        self.store = store
        self.broker = simulated_broker(
            load_config(environ={}), store=store, driver=driver, audit=AuditLog([self.sink])
        )

    def grants(self) -> int:
        return self.sink.names().count("flow.completed")

    def close(self) -> None:
        self.broker.close()
        self.store.close()


class DownAfterToken(SyncDriver):
    """Runs ``down`` (stop or kill the store's server) right after the token response
    arrives, once, when armed."""

    def __init__(self, down: Callable[[], object]) -> None:
        super().__init__()
        self.down = down
        self.armed = False

    def send(self, req: HttpRequest) -> HttpResponse:
        resp = super().send(req)
        if self.armed and req.tag == "token":
            self.armed = False
            self.down()
        return resp


def auto_approve(broker: Broker, name: str) -> Any:
    """The simulated OP signs the test person in at once."""
    running = broker.simulator(name)
    assert running is not None
    running.extra["op"].control.auto_approve = True
    return running


def callback_params(url: str) -> dict[str, str]:
    """Follow the authorization URL to the OP; the query of its redirect back."""
    resp = httpx.get(url, timeout=10)
    assert resp.status_code == 302, resp.text
    return dict(parse_qsl(urlsplit(resp.headers["location"]).query))


def begin_oidc(env: OutageEnv, name: str = "ftn") -> tuple[str, dict[str, str]]:
    """Begin an OIDC login and return its flow id and the callback's parameters."""
    auto_approve(env.broker, name)
    step = env.broker.begin(name, binding="b", return_to="/after")
    assert isinstance(step, Redirect)
    return step.flow_id, callback_params(step.url)


class Traffic:
    """Threads that each put a unique value and take it twice, in a loop, until
    stopped: what ``take`` returned (a value seen twice is a lost single use), when a
    typed outage (``StoreUnavailable``) happened and when a write succeeded. Any other
    exception is kept and fails :meth:`stop`."""

    def __init__(self, store: StateStore, threads: int = 4) -> None:
        self.store = store
        self.taken: list[bytes] = []
        self.failed: list[float] = []
        self.written: list[float] = []
        self.unexpected: list[BaseException] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._work, args=(i,)) for i in range(threads)]

    def _work(self, worker: int) -> None:
        i = 0
        while not self._stop.is_set():
            i += 1
            key, value = f"w{worker}:{i}", f"{worker}:{i}".encode()
            try:
                self.store.put(key, value, 60)
                self.written.append(time.monotonic())
                for _ in range(2):
                    got = self.store.take(key)
                    if got is not None:
                        self.taken.append(got)
            except StoreUnavailable:
                self.failed.append(time.monotonic())
                time.sleep(0.02)
            except BaseException as exc:
                self.unexpected.append(exc)
                return

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)
        assert not self.unexpected, self.unexpected[:3]

    def failure_window(self) -> float:
        """Seconds from the first typed failure to the last (0 if none)."""
        return (self.failed[-1] - self.failed[0]) if self.failed else 0.0
