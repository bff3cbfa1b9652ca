"""Sans-I/O HTTP values and the two drivers that carry them.

Protocol code builds :class:`HttpRequest` values and reads :class:`HttpResponse`
values; it never opens a socket. The broker hands the requests to a
:class:`SyncDriver` (WSGI, CLI) or :class:`AsyncDriver` (ASGI). That keeps one
implementation of each protocol and makes protocol code testable without a network.

Single flight: concurrent identical GETs marked ``shareable`` (JWKS, discovery) share
one network request, so a key rotation seen by a burst of logins costs the provider
one fetch (security requirements R-07).

Retries: only connection failures of idempotent requests are retried. A POST that
reached the server may have had effect (a BankID order, an SMS), so it is never sent
twice behind the caller's back.

Deadline: ``HttpRequest.timeout`` bounds the whole call by the wall clock (connect,
TLS, sending, headers, body and any retries), not each socket read. A server that
drips one byte just inside a per-read timeout would otherwise hold a worker for as
long as it likes. The async driver wraps the call in :func:`asyncio.timeout`; the
sync driver installs a network backend whose every connect, read and write is given
only the time that remains (CPython's socket and TLS operations honour a timeout as a
whole, so each operation ends at the deadline). Name resolution is not bounded: use
IP literals or a local resolver for providers whose DNS you do not trust.

Transport: both drivers accept an httpx ``transport=`` (as ``httpx.Client`` does), used
by every client they create, mTLS ones included: a proxying transport, a recording
one, or :class:`authbroker.testing.SimulatorTransport` for in-process simulators. A
custom transport brings its own TLS settings (a request's ``mtls`` is then the
transport's business) and, in the sync driver, its own socket timeouts: the
wall-clock bound above is built into the default transport only. The async driver
keeps its deadline with any transport (:func:`asyncio.timeout` wraps the call).
"""

from __future__ import annotations

import contextvars
import functools
import json
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlencode

from .errors import AuthBrokerError, InvalidInput, ProviderUnavailable

if TYPE_CHECKING:  # httpx, ssl, asyncio load with the first driver, not with the package
    import asyncio
    import ssl

    import httpcore
    import httpx

__all__ = [
    "AsyncDriver",
    "HttpRequest",
    "HttpResponse",
    "MtlsConfig",
    "RequestObserver",
    "SyncDriver",
    "set_request_observer",
]

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
#: Provider responses larger than this are refused before parsing (DoS guard).
MAX_RESPONSE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class MtlsConfig:
    """Client certificate and pinned server CA for one provider (BankID, MSSPs).

    ``ca_file`` replaces the system trust store: only servers whose chain ends in
    it are accepted, which is how BankID's issuer CA is pinned.
    """

    cert_file: str | None = None
    key_file: str | None = None
    key_password: str | None = field(default=None, repr=False)
    ca_file: str | None = None

    def ssl_context(self) -> ssl.SSLContext:
        import ssl

        ctx = ssl.create_default_context(cafile=self.ca_file)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert_file:
            ctx.load_cert_chain(self.cert_file, self.key_file, password=self.key_password)
        return ctx


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One HTTP request a protocol wants made. ``tag`` names it for debug logs."""

    method: str
    url: str
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    timeout: float = 10.0
    mtls: MtlsConfig | None = None
    tag: str = ""
    #: Concurrent identical GETs may share one network request (single flight).
    #: Only for public documents (JWKS, discovery) whose answer is the same for all.
    shareable: bool = False

    @classmethod
    def get(cls, url: str, *, headers: Mapping[str, str] | None = None, **kw: Any) -> HttpRequest:
        return cls("GET", url, dict(headers or {}), **kw)

    @classmethod
    def post_form(
        cls,
        url: str,
        form: Mapping[str, str],
        *,
        headers: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> HttpRequest:
        h = {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})}
        return cls("POST", url, h, urlencode(form).encode(), **kw)

    @classmethod
    def post_json(
        cls,
        url: str,
        payload: Any,
        *,
        headers: Mapping[str, str] | None = None,
        **kw: Any,
    ) -> HttpRequest:
        h = {"Content-Type": "application/json", **(headers or {})}
        return cls("POST", url, h, json.dumps(payload, separators=(",", ":")).encode(), **kw)

    def __repr__(self) -> str:
        # Bodies and headers can carry secrets (client assertions, codes): never shown.
        return f"HttpRequest({self.method} {self.url.split('?')[0]!r}, tag={self.tag!r})"


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """A received response: status, lower-cased headers and the raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        """Parse the body as JSON or raise :class:`InvalidInput` (never ValueError)."""
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput("provider response is not valid JSON", code="bad_json") from exc

    def json_object(self) -> dict[str, Any]:
        """Parse the body as a JSON object; anything else is invalid input."""
        value = self.json()
        if not isinstance(value, dict):
            raise InvalidInput("provider response is not a JSON object", code="bad_json")
        return value

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def __repr__(self) -> str:
        return f"HttpResponse(status={self.status}, bytes={len(self.body)})"


def _to_response(resp: httpx.Response, body: bytes) -> HttpResponse:
    return HttpResponse(resp.status_code, {k.lower(): v for k, v in resp.headers.items()}, body)


class _DriverBase:
    def __init__(self, *, retries: int = 2, backoff: float = 0.2) -> None:
        self.retries = retries
        self.backoff = backoff
        self._contexts: dict[MtlsConfig, ssl.SSLContext] = {}

    def _verify(self, req: HttpRequest) -> ssl.SSLContext | bool:
        if req.mtls is None:
            return True
        ctx = self._contexts.get(req.mtls)
        if ctx is None:
            ctx = self._contexts[req.mtls] = req.mtls.ssl_context()
        return ctx

    def _attempts(self, req: HttpRequest) -> int:
        return 1 + (self.retries if req.method.upper() in IDEMPOTENT_METHODS else 0)


def _flight_key(req: HttpRequest) -> tuple[object, ...] | None:
    if not req.shareable or req.method.upper() != "GET" or req.body:
        return None
    return (req.url, tuple(sorted(req.headers.items())), req.mtls)


def _unavailable(req: HttpRequest, exc: Exception) -> ProviderUnavailable:
    import httpx

    # TimeoutError: asyncio.timeout() ending the call at its deadline.
    kind = "timeout" if isinstance(exc, httpx.TimeoutException | TimeoutError) else "connect"
    return ProviderUnavailable(
        f"{req.tag or 'provider'} request failed ({kind})",
        code=f"http_{kind}",
        details={"host": httpx.URL(req.url).host},
    )


#: Monotonic deadline of the sync call running in this thread (None: no call running).
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "authbroker_http_deadline", default=None
)


def _deadline_transport(verify: ssl.SSLContext | bool) -> httpx.HTTPTransport:
    """An httpx transport whose sockets never wait past the current call's deadline.

    httpx applies a timeout to each network operation; the whole call is bounded by
    giving every operation only the time left until :data:`_DEADLINE`. httpx has no
    public hook for the network backend, so the pool's backend is wrapped (checked
    at construction; the deadline tests fail loudly if httpx changes).
    """
    import httpx

    transport = httpx.HTTPTransport(verify=verify)
    pool = getattr(transport, "_pool", None)
    inner = getattr(pool, "_network_backend", None)
    if inner is None:  # pragma: no cover - guards an httpx upgrade
        raise RuntimeError("httpx transport has no network backend to bound")
    pool._network_backend = _bounded_backend_class()(inner)  # type: ignore[union-attr]
    return transport


@functools.cache
def _bounded_backend_class() -> type[Any]:
    """Define (once, lazily: httpcore loads with the first driver) the bounded backend."""
    import httpcore

    def bound(timeout: float | None, exc: type[Exception]) -> float | None:
        deadline = _DEADLINE.get()
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise exc("deadline exceeded")
        return left if timeout is None else min(timeout, left)

    class Stream(httpcore.NetworkStream):
        def __init__(self, inner: httpcore.NetworkStream) -> None:
            self._inner = inner

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._inner.read(max_bytes, bound(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._inner.write(buffer, bound(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._inner.close()

        def start_tls(
            self,
            ssl_context: ssl.SSLContext,
            server_hostname: str | None = None,
            timeout: float | None = None,
        ) -> httpcore.NetworkStream:
            left = bound(timeout, httpcore.ConnectTimeout)
            return Stream(self._inner.start_tls(ssl_context, server_hostname, left))

        def get_extra_info(self, info: str) -> Any:
            return self._inner.get_extra_info(info)

    class Backend(httpcore.NetworkBackend):
        def __init__(self, inner: httpcore.NetworkBackend) -> None:
            self._inner = inner

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            left = bound(timeout, httpcore.ConnectTimeout)
            return Stream(self._inner.connect_tcp(host, port, left, local_address, socket_options))

        def connect_unix_socket(
            self,
            path: str,
            timeout: float | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:  # pragma: no cover - no unix sockets to providers
            left = bound(timeout, httpcore.ConnectTimeout)
            return Stream(self._inner.connect_unix_socket(path, left, socket_options))

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return Backend


#: Wraps every request a driver sends: called with the request, it returns a context
#: manager whose value is called with the response status. ``None`` (the default)
#: costs one global read per request; :mod:`authbroker.telemetry` installs a span.
RequestObserver: TypeAlias = Callable[[HttpRequest], AbstractContextManager[Callable[[int], None]]]
_OBSERVER: RequestObserver | None = None


def set_request_observer(observer: RequestObserver | None) -> None:
    """Install (or with ``None`` remove) the process-wide :data:`RequestObserver`."""
    global _OBSERVER  # noqa: PLW0603 - one switch for every driver of the process
    _OBSERVER = observer


class SyncDriver(_DriverBase):
    """Blocking driver over :class:`httpx.Client` (one client per mTLS config).

    ``transport`` replaces the network transport of every client (see the module
    docstring: it is then responsible for its own TLS settings and timeouts).
    """

    def __init__(
        self,
        *,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(retries=retries, backoff=backoff)
        self.transport = transport
        self._clients: dict[MtlsConfig | None, httpx.Client] = {}
        self._flights: dict[tuple[object, ...], _Flight] = {}
        self._flight_lock = threading.Lock()

    def _client(self, req: HttpRequest) -> httpx.Client:
        import httpx

        client = self._clients.get(req.mtls)
        if client is None:
            transport = self.transport or _deadline_transport(self._verify(req))
            client = httpx.Client(transport=transport, follow_redirects=False)
            self._clients[req.mtls] = client
        return client

    def send(self, req: HttpRequest) -> HttpResponse:
        observer = _OBSERVER
        if observer is None:
            return self._send_shared(req)
        with observer(req) as record:
            response = self._send_shared(req)
            record(response.status)
            return response

    def _send_shared(self, req: HttpRequest) -> HttpResponse:
        key = _flight_key(req)
        if key is None:
            return self._send(req)
        with self._flight_lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait(req.timeout * (1 + self.retries) + 1)
            if flight.response is not None:
                return flight.response
            if flight.error is not None:
                raise flight.error
            return self._send(req)
        try:
            flight.response = self._send(req)
            return flight.response
        except AuthBrokerError as exc:
            flight.error = exc
            raise
        finally:
            with self._flight_lock:
                self._flights.pop(key, None)
            flight.done.set()

    def _send(self, req: HttpRequest) -> HttpResponse:
        import httpx

        attempts = self._attempts(req)
        deadline = time.monotonic() + req.timeout
        token = _DEADLINE.set(deadline)  # read by the transport's bounded sockets
        try:
            for attempt in range(attempts):
                try:
                    with self._client(req).stream(
                        req.method,
                        req.url,
                        headers=dict(req.headers),
                        content=req.body or None,
                        timeout=max(deadline - time.monotonic(), 0.001),
                    ) as resp:
                        body = _read_limited(resp.iter_bytes())
                        return _to_response(resp, body)
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    pause = self.backoff * (2**attempt)
                    if attempt + 1 >= attempts or time.monotonic() + pause >= deadline:
                        raise _unavailable(req, exc) from exc
                    time.sleep(pause)
                except httpx.HTTPError as exc:
                    raise _unavailable(req, exc) from exc
        finally:
            _DEADLINE.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()


class AsyncDriver(_DriverBase):
    """Non-blocking driver over :class:`httpx.AsyncClient`.

    ``transport`` replaces the network transport of every client (see the module
    docstring); the whole-call deadline still applies around it.
    """

    def __init__(
        self,
        *,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(retries=retries, backoff=backoff)
        self.transport = transport
        self._clients: dict[MtlsConfig | None, httpx.AsyncClient] = {}
        self._flights: dict[tuple[object, ...], asyncio.Future[HttpResponse]] = {}

    def _client(self, req: HttpRequest) -> httpx.AsyncClient:
        import httpx

        client = self._clients.get(req.mtls)
        if client is None:
            if self.transport is not None:
                client = httpx.AsyncClient(transport=self.transport, follow_redirects=False)
            else:
                client = httpx.AsyncClient(verify=self._verify(req), follow_redirects=False)
            self._clients[req.mtls] = client
        return client

    async def send(self, req: HttpRequest) -> HttpResponse:
        observer = _OBSERVER
        if observer is None:
            return await self._send_shared(req)
        with observer(req) as record:
            response = await self._send_shared(req)
            record(response.status)
            return response

    async def _send_shared(self, req: HttpRequest) -> HttpResponse:
        import asyncio

        key = _flight_key(req)
        if key is None:
            return await self._send(req)
        flight = self._flights.get(key)
        if flight is not None:
            try:
                return await asyncio.shield(flight)
            except asyncio.CancelledError:
                if flight.cancelled():  # the leader was cancelled, not us: go alone
                    return await self._send(req)
                raise
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            response = await self._send(req)
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # mark retrieved: there may be no joiner
            raise
        else:
            flight.set_result(response)
            return response
        finally:
            self._flights.pop(key, None)

    async def _send(self, req: HttpRequest) -> HttpResponse:
        import asyncio

        try:
            # One wall-clock deadline for the whole call, retries included.
            async with asyncio.timeout(req.timeout):
                return await self._attempts_until_done(req)
        except TimeoutError as exc:
            raise _unavailable(req, exc) from exc

    async def _attempts_until_done(self, req: HttpRequest) -> HttpResponse:
        import asyncio

        import httpx

        attempts = self._attempts(req)
        for attempt in range(attempts):
            try:
                async with self._client(req).stream(
                    req.method,
                    req.url,
                    headers=dict(req.headers),
                    content=req.body or None,
                    timeout=req.timeout,
                ) as resp:
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.aiter_bytes():
                        size += len(chunk)
                        if size > MAX_RESPONSE_BYTES:
                            raise _too_large()
                        chunks.append(chunk)
                    return _to_response(resp, b"".join(chunks))
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                if attempt + 1 >= attempts:
                    raise _unavailable(req, exc) from exc
                await asyncio.sleep(self.backoff * (2**attempt))
            except httpx.HTTPError as exc:
                raise _unavailable(req, exc) from exc
        raise AssertionError("unreachable")  # pragma: no cover

    async def aclose(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()


@dataclass(slots=True)
class _Flight:
    """One in-flight shareable request and what came of it."""

    done: threading.Event = field(default_factory=threading.Event)
    response: HttpResponse | None = None
    error: AuthBrokerError | None = None


def _too_large() -> InvalidInput:
    return InvalidInput("provider response exceeds the size limit", code="response_too_large")


def _read_limited(chunks: Any) -> bytes:
    out: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise _too_large()
        out.append(chunk)
    return b"".join(out)
