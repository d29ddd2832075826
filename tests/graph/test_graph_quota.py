"""Quota pacing: the client keeps its own account of Graph's quotas and is not throttled."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from smartsync.graph import GraphClient, GraphRequest
from smartsync.graph.quota import Cost, QuotaPacer, estimate_cost, ru_limit_for_users
from smartsync.simulator import Clock, Simulator, VirtualTime

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "simulator"))
from test_sim_support import access_token, make_seed

GROUP = "00000000-0000-0000-0002-000000000000"


@pytest.mark.parametrize(
    ("method", "url", "ru", "writes", "teams"),
    [
        ("GET", "/users?$select=id&$top=999", 1, 0, None),
        ("GET", "https://graph.microsoft.com/v1.0/users", 2, 0, None),
        ("GET", f"/groups/{GROUP}/members?$select=id", 2, 0, None),
        ("GET", f"/groups/{GROUP}/owners", 1, 0, None),
        ("GET", "/groups/delta?$deltatoken=abc", 1, 0, None),
        ("PATCH", f"/groups/{GROUP}", 1, 1, None),
        ("POST", "/teams", 1, 1, "teams_post"),
        ("PUT", f"/groups/{GROUP}/team", 1, 1, "team_put"),
    ],
)
def test_costs_follow_the_documented_table(
    method: str, url: str, ru: int, writes: int, teams: str | None
) -> None:
    assert estimate_cost(method, url) == Cost(ru, writes, teams)


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_writes_beyond_3000_in_150_seconds_wait_until_the_first_leave_the_window() -> None:
    time = FakeTime()
    pacer = QuotaPacer(time.sleep, lambda: time.now, ru_limit=8000)
    for _ in range(147):  # 2,940 writes: the quota less the 2 % kept for what is in flight
        pacer.reserve([Cost(1, 1)] * 20)
    assert time.slept == []
    time.now = 10.0
    pacer.reserve([Cost(1, 1)] * 20)
    assert time.now == pytest.approx(150.0, abs=0.01)  # the first 20 left the window at t=150


def test_a_429_is_taken_back_and_narrows_the_quota() -> None:
    time = FakeTime()
    pacer = QuotaPacer(time.sleep, lambda: time.now, ru_limit=8000)
    at = pacer.reserve([Cost(1, 1)] * 20)
    pacer.throttled(Cost(1, 1), at)
    assert pacer.writes.total(time.now) == 19
    assert pacer.writes.limit == pytest.approx(2700)
    for _ in range(30):
        pacer.throttled(Cost(1, 1), at)
    assert pacer.writes.limit == 1500  # never below half the documented quota


def test_a_reported_use_above_our_own_account_shrinks_the_limits_and_the_tier_follows_the_tenant() -> None:
    time = FakeTime()
    pacer = QuotaPacer(time.sleep, lambda: time.now)
    assert pacer.ru.limit == 3500
    pacer.for_tenant_users(1000)
    assert pacer.ru.limit == ru_limit_for_users(1000) == 8000
    pacer.reserve([Cost(1, 0)] * 20)
    pacer.observe({"x-ms-resource-unit": "2"}, Cost(1, 0))
    assert pacer.ru.total(time.now) == 21
    pacer.observe({"X-Ms-Throttle-Limit-Percentage": "0.9"}, Cost(1, 0))  # we spent 21 of 8,000
    assert pacer.ru.limit < 8000 and pacer.writes.limit < 3000


@pytest.mark.parametrize("pacing", [True, False])
def test_3200_writes_are_paced_to_the_write_quota_instead_of_throttled(pacing: bool) -> None:
    time = VirtualTime()
    sim = Simulator(make_seed(users=3, groups=1), clock=Clock(1.0, real_time=time.now))
    token = access_token(sim)
    client = GraphClient(
        sim.base_url,
        lambda: token,
        transport=sim.transport(),
        sleep=time.sleep,
        clock=time.now,
        start_task=time.start_task,
        pacing=pacing,
        max_retries=20,
    )
    with client:
        client.pace_for_tenant(3)
        results = client.batch(
            [GraphRequest("PATCH", f"/groups/{GROUP}", {"description": f"v{n}"}) for n in range(3200)]
        )
    assert all(r.ok for r in results)
    throttled = sim.stats()["throttled"]
    if pacing:
        assert throttled == 0
        assert 150.0 <= time.now() <= 160.0  # the last 200 wait for the first to leave the window
    else:
        assert throttled > 0
