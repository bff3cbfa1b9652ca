"""A tiny loopback HTTP(S) server that simulators mount their provider side on.

Simulators are real peers: they listen on 127.0.0.1, optionally with TLS and
client-certificate verification (Swedish BankID, MSSPs), and the adapter talks to
them through the same HTTP drivers it uses in production. Binding only to loopback
keeps test traffic on this machine.

A handler takes a :class:`SimRequest` and returns a :class:`SimResponse`. The server
counts requests per path so tests can assert that an adapter *stopped* after a bad
message (no token call after a forged callback, and so on).
"""

from __future__ import annotations

import json
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["LoopbackServer", "SimRequest", "SimResponse"]


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
                outer.requests[parts.path] += 1
                try:
                    resp = outer.handler(req)
                except Exception as exc:  # a simulator bug must show, not hang the client
                    resp = SimResponse(500, f"simulator error: {type(exc).__name__}".encode())
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
