"""The in-process way in: an httpx transport that hands each request to a `Simulator`.

A client built with `httpx.Client(transport=sim.transport())` talks to the simulated tenant without
sockets, whatever host its URLs name (so msal's instance discovery, addressed to the public login
host, is answered too). Dropped connections (`drop`, `lost` faults) surface as
`httpx.RemoteProtocolError`, as they do over a real socket. Safe to share between threads: the
simulator serialises requests itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import httpx

from smartsync.simulator.faults import ConnectionDropped
from smartsync.simulator.http import SimRequest

if TYPE_CHECKING:
    from smartsync.simulator.runtime import Simulator


def to_sim_request(request: httpx.Request, body: bytes) -> SimRequest:
    raw_query = request.url.query.decode("ascii", "replace")
    return SimRequest(
        method=request.method.upper(),
        path=request.url.path,  # httpx keeps the path percent-decoded here
        query=dict(parse_qsl(raw_query, keep_blank_values=True)),
        headers={name.lower(): value for name, value in request.headers.items()},
        body=body,
        raw_query=raw_query,
    )


class SimulatorTransport(httpx.BaseTransport):
    def __init__(self, simulator: Simulator) -> None:
        self.simulator = simulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        sim_request = to_sim_request(request, request.read())
        try:
            response = self.simulator.handle(sim_request)
        except ConnectionDropped as exc:
            raise httpx.RemoteProtocolError(
                "Server disconnected without sending a response.", request=request
            ) from exc
        return httpx.Response(
            response.status, headers=list(response.headers.items()), content=response.body, request=request
        )
