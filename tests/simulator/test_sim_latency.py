"""Service time in the simulator: lognormal per request, a $batch costs its slowest item, and on a
virtual clock each sending thread keeps its own time, so concurrency shows in the elapsed time."""

from __future__ import annotations

import statistics
import threading

import pytest
from test_sim_support import CLIENT_ID, access_token, graph_client, make_seed

from smartsync.graph import GraphClient, GraphRequest
from smartsync.simulator import Clock, Simulator, VirtualTime
from smartsync.simulator.latency import Latency, ServiceTime
from smartsync.simulator.throttle import Cost

GROUP = "00000000-0000-0000-0002-000000000000"


def test_service_times_are_lognormal_around_the_median() -> None:
    service = ServiceTime(Latency(150.0, 0.5, seed=3))
    draws = [service.draw() for _ in range(4000)]
    assert statistics.median(draws) == pytest.approx(0.150, rel=0.05)
    assert min(draws) > 0.02 and max(draws) < 1.5
    assert ServiceTime(Latency(150.0, 0.5, seed=3)).draw() == ServiceTime(Latency(150.0, 0.5, seed=3)).draw()


def test_a_batch_costs_about_its_slowest_item_and_zero_latency_costs_nothing() -> None:
    service = ServiceTime(Latency(150.0, 0.5))
    batches = [service.batch(20) for _ in range(500)]
    singles = [service.draw() for _ in range(500)]
    assert statistics.median(batches) > 2 * statistics.median(singles)
    assert statistics.median(batches) < 8 * statistics.median(singles)  # not the sum of 20 items
    assert ServiceTime().batch(20) == 0.0


@pytest.mark.parametrize("median_ms", [-1.0, float("nan")])
def test_a_negative_median_is_refused(median_ms: float) -> None:
    with pytest.raises(ValueError, match="latency median"):
        Latency(median_ms)


def test_virtual_time_keeps_one_clock_per_thread_and_the_driver_continues_from_the_furthest() -> None:
    time = VirtualTime(100.0)
    assert time.now() == 100.0
    ends: list[float] = []

    def lane(seconds: float) -> None:
        time.sleep(seconds)
        ends.append(time.now())

    threads = [threading.Thread(target=lane, args=(s,)) for s in (1.0, 2.0, 3.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ends) == [101.0, 102.0, 103.0]  # in parallel, not 106
    assert time.now() == 103.0  # the driver goes on after the slowest
    time.sleep(1.0)
    late = threading.Thread(target=lambda: ends.append(time.now()))
    late.start()
    late.join()
    assert ends[-1] == 104.0  # a new round starts where the driver is


def _client(sim: Simulator, time: VirtualTime, concurrency: int) -> GraphClient:
    token = access_token(sim)
    return GraphClient(
        sim.base_url,
        lambda: token,
        transport=sim.transport(),
        concurrency=concurrency,
        sleep=time.sleep,
        clock=time.now,
        start_task=time.start_task,
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_parallel_round_trips_overlap_on_the_virtual_clock(concurrency: int) -> None:
    time = VirtualTime()
    sim = Simulator(
        make_seed(users=3),
        clock=Clock(1.0, real_time=time.now),
        latency=Latency(150.0, 0.0),  # no spread: every round trip takes exactly 150 ms
        delay=time.sleep,
    )
    with _client(sim, time, concurrency) as client:
        started = time.now()
        results = client.batch([GraphRequest("GET", f"/groups/{GROUP}/owners") for _ in range(80)])
        simulated = time.now() - started  # virtual time, not the wall clock
    assert all(r.ok for r in results)
    assert simulated == pytest.approx(0.150 * 4 / concurrency, abs=1e-6)  # 4 round trips of 20


def test_responses_carry_resource_units_and_past_80_percent_the_share_of_the_quota() -> None:
    sim = Simulator(make_seed(users=3))
    with graph_client(sim) as client:
        first = client.get(f"/groups/{GROUP}/members")
        assert first.headers["x-ms-resource-unit"] == "3"
        assert "x-ms-throttle-limit-percentage" not in first.headers
        sim.throttle.admit(CLIENT_ID, Cost(ru=3000, writes=0), sim.clock.now(), 3)  # 3,500 per 10 s here
        busy = client.get(f"/groups/{GROUP}/owners")
    assert float(busy.headers["x-ms-throttle-limit-percentage"]) == pytest.approx(3004 / 3500, abs=0.01)


def test_the_simulator_spends_one_service_time_per_round_trip_outside_its_lock() -> None:
    waits: list[float] = []
    sim = Simulator(make_seed(users=3), latency=Latency(100.0, 0.0), delay=waits.append)
    with graph_client(sim) as client:
        waits.clear()  # the token request above took none: only Graph requests are served slowly
        assert client.get(f"/groups/{GROUP}/owners").status_code == 200
        batch = {
            "requests": [{"id": str(n), "method": "GET", "url": f"/groups/{GROUP}/owners"} for n in range(5)]
        }
        assert client.post("/$batch", json=batch).status_code == 200
    assert waits == pytest.approx([0.1, 0.1])  # a $batch of five costs its slowest, not five
