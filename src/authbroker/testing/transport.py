"""An httpx transport that serves in-process simulators without sockets.

Like httpx's ``MockTransport``, but the handlers are the simulators' own
(:class:`~authbroker.testing.simulators.server.InProcessServer`): a request for the
origin of a started in-process simulator is turned into a
:class:`~authbroker.testing.simulators.server.SimRequest`, answered by the
simulator's handler in the calling thread, and the
:class:`~authbroker.testing.simulators.server.SimResponse` becomes the httpx
response. Any other origin is refused as a connection error (an in-process test
never reaches the network by accident).

Give it to a driver: ``SyncDriver(transport=SimulatorTransport())`` or
``AsyncDriver(transport=SimulatorTransport())``; ``simulated_broker(in_process=True)``
does that.
"""

from __future__ import annotations

from urllib.parse import parse_qs

import httpx

from .simulators.server import SimRequest, in_process_server

__all__ = ["SimulatorTransport"]


class SimulatorTransport(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Routes requests for in-process simulators to their handlers; refuses the rest."""

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        origin = f"{request.url.scheme}://{request.url.host}:{request.url.port}"
        server = in_process_server(origin)
        if server is None:
            raise httpx.ConnectError(f"no in-process simulator at {origin}", request=request)
        body = request.read()
        sim_request = SimRequest(
            method=request.method,
            path=request.url.path,
            query=parse_qs(request.url.query.decode("ascii", "replace")),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
        )
        resp = server.handle(sim_request)
        return httpx.Response(
            resp.status, headers=list(resp.headers.items()), content=resp.body, request=request
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        return self.handle_request(request)
