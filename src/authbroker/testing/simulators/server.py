"""A tiny loopback HTTP(S) server that simulators mount their provider side on.

Simulators are real peers: they listen on 127.0.0.1, optionally with TLS and
client-certificate verification (Swedish BankID, MSSPs), and the adapter talks to
them through the same HTTP drivers it uses in production. Binding only to loopback
keeps test traffic on this machine.

A handler takes a :class:`SimRequest` and returns a :class:`SimResponse`. The server
counts requests per path so tests can assert that an adapter *stopped* after a bad
message (no token call after a forged callback, and so on).

:class:`InProcessServer` has the same face without a socket: its URL is reached only
through :class:`~authbroker.testing.transport.SimulatorTransport`, which calls the
handler in the caller's thread. It serves simulators that check no TLS client
certificate (OIDC, TUPAS, MSSP, OCSP) in fast tests; a simulator that must see the
client's certificate (BankID) or a browser that must reach it keeps a loopback server.
"""

from __future__ import annotations

import itertools
import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "InProcessServer",
    "LoopbackServer",
    "SimRequest",
    "SimResponse",
    "in_process_server",
    "serve",
]


@dataclass(frozen=True, slots=True)
class SimRequest:
    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    client_cert: Mapping[str, Any] | None = None

    def form(self) -> dict[str, str]:
        """Form fields (single-valued; a repeated field keeps its first value)."""
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def arg(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class SimResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200) -> SimResponse:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    @classmethod
    def html(cls, text: str, status: int = 200) -> SimResponse:
        return cls(status, text.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> SimResponse:
        return cls(status, b"", {"Location": location})


Handler = Callable[[SimRequest], SimResponse]


def dispatch(handler: Handler, requests: Counter[str], req: SimRequest) -> SimResponse:
    """Count ``req`` and answer it; a simulator bug becomes a 500, never a hang."""
    requests[req.path] += 1
    try:
        return handler(req)
    except Exception as exc:  # a simulator bug must show, not hang the client
        return SimResponse(500, f"simulator error: {type(exc).__name__}".encode())


class _Server(ThreadingHTTPServer):
    """Wraps accepted sockets in TLS in the handler thread, so a stalled handshake
    cannot block the accept loop."""

    tls: ssl.SSLContext | None = None
    # socketserver's default backlog of 5 drops bursts of concurrent connects (the
    # client then waits a second for a SYN retransmit): allow realistic bursts.
    request_queue_size = 128

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            secure = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return  # failed handshake (e.g. no client certificate): drop
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()


class LoopbackServer:
    """Serve ``handler`` on 127.0.0.1 in a background thread until :meth:`stop`.

    ``tls`` is a server-side SSLContext (set ``verify_mode = CERT_REQUIRED`` and load
    the client CA on it for mutual TLS). Use as a context manager in tests.
    """

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None, port: int = 0):
        self.handler = handler
        self.tls = tls
        self.requests: Counter[str] = Counter()
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body are separate writes: without TCP_NODELAY every response
            # waits for the peer's delayed ACK (about 40 ms on Linux).
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                cert = None
                if isinstance(self.connection, ssl.SSLSocket):
                    cert = self.connection.getpeercert() or None
                req = SimRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                    client_cert=cert,
                )
                resp = dispatch(outer.handler, outer.requests, req)
                self.send_response(resp.status)
                for k, v in resp.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(resp.body)))
                self.end_headers()
                self.wfile.write(resp.body)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                # Request lines carry codes and identity numbers: never logged.
                return

        self._httpd = _Server(("127.0.0.1", port), _Handler)
        self._httpd.tls = tls
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def handle(self, req: SimRequest) -> SimResponse:
        """Answer ``req`` without the socket (the demo serves pages under its origin)."""
        return dispatch(self.handler, self.requests, req)

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> LoopbackServer:
        # A short poll interval makes stop() return quickly (tests start many servers).
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> LoopbackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


#: Live in-process servers by origin (``http://localhost:PORT``), for the transport.
_IN_PROCESS: dict[str, InProcessServer] = {}
_IN_PROCESS_LOCK = threading.Lock()
#: Fake ports: unique per process, in the privileged range where nothing listens, so
#: a request that somehow bypassed the transport is refused, not served by a stranger.
_PORTS = itertools.count(1)


class InProcessServer:
    """A simulator endpoint without a socket (same interface as :class:`LoopbackServer`).

    While started it is listed under its origin, which
    :class:`~authbroker.testing.transport.SimulatorTransport` routes to
    :meth:`handle`. No TLS: a handler that checks client certificates cannot run here.
    """

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.tls: ssl.SSLContext | None = None
        self.requests: Counter[str] = Counter()
        self.port = _free_port()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def handle(self, req: SimRequest) -> SimResponse:
        return dispatch(self.handler, self.requests, req)

    def start(self) -> InProcessServer:
        with _IN_PROCESS_LOCK:
            if self.url in _IN_PROCESS:  # pragma: no cover - two servers got one port
                raise RuntimeError("in-process simulator port taken")
            _IN_PROCESS[self.url] = self
        return self

    def stop(self) -> None:
        with _IN_PROCESS_LOCK:
            if _IN_PROCESS.get(self.url) is self:
                del _IN_PROCESS[self.url]

    def __enter__(self) -> InProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with _IN_PROCESS_LOCK:
        for _ in range(1023):
            port = next(_PORTS) % 1023 + 1
            if f"http://localhost:{port}" not in _IN_PROCESS:
                return port
    raise RuntimeError("too many in-process simulators")  # pragma: no cover


def in_process_server(origin: str) -> InProcessServer | None:
    """The started in-process server at ``origin`` (scheme://host:port), if any."""
    with _IN_PROCESS_LOCK:
        return _IN_PROCESS.get(origin)


def serve(handler: Handler, *, in_process: bool = False) -> LoopbackServer | InProcessServer:
    """Start ``handler`` on loopback, or in process when ``in_process``."""
    if in_process:
        return InProcessServer(handler).start()
    return LoopbackServer(handler).start()
