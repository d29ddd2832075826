"""The built-in simulated Microsoft Entra tenant (DESIGN §8).

An in-memory tenant speaking the subset of Graph v1.0 smartsync uses, plus the login endpoints msal
talks to, with Graph's quotas, seeded faults and a clock that can run faster than real time. It is a
second, independent reading of Graph's documentation and imports nothing from the rest of smartsync.

    from smartsync.simulator import Simulator, FaultSpec
    sim = Simulator(seed, time_scale=1000, faults=FaultSpec.parse("rate=0.05,seed=7"))
    client = httpx.Client(transport=sim.transport(), base_url=sim.base_url)
"""

from smartsync.simulator.clock import Clock, VirtualTime
from smartsync.simulator.faults import ConnectionDropped, FaultSpec
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.log import LoggedRequest
from smartsync.simulator.runtime import DEFAULT_BASE_URL, DEFAULT_CLIENT_SECRET, Simulator

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CLIENT_SECRET",
    "Clock",
    "ConnectionDropped",
    "FaultSpec",
    "LoggedRequest",
    "Principal",
    "SimRequest",
    "SimResponse",
    "Simulator",
    "VirtualTime",
]
