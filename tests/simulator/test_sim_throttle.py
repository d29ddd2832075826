"""Graph's throttling model in the simulator: costs, tenant tiers, sliding windows, Retry-After."""

from __future__ import annotations

import time

import pytest
from test_sim_support import CLIENT_ID, access_token, graph_client, make_seed

from smartsync.simulator import Simulator
from smartsync.simulator.runtime import retry_after_text
from smartsync.simulator.throttle import Cost, Throttle, request_cost, ru_limit_for

GROUP = "00000000-0000-0000-0002-000000000000"


@pytest.mark.parametrize(
    ("method", "path", "query", "ru", "writes"),
    [
        ("GET", "/v1.0/users", {}, 2, 0),
        ("GET", "/v1.0/users", {"$select": "id,userPrincipalName"}, 1, 0),
        ("GET", "/v1.0/users", {"$expand": "memberOf"}, 3, 0),
        ("GET", "/v1.0/users/abc", {}, 1, 0),
        ("GET", "/v1.0/users/abc", {"$select": "id"}, 1, 0),  # never below 1
        ("GET", f"/v1.0/groups/{GROUP}/members", {}, 3, 0),
        ("GET", f"/v1.0/groups/{GROUP}/members", {"$select": "id"}, 2, 0),
        ("GET", f"/v1.0/groups/{GROUP}/members", {"$SELECT": "id", "$expand": "x"}, 3, 0),
        ("GET", "/v1.0/groups", {"$filter": "startswith(mailNickname,'smartsync-')"}, 1, 0),
        ("GET", f"/v1.0/groups/{GROUP}/owners", {}, 1, 0),
        ("POST", "/v1.0/groups", {}, 1, 1),
        ("PATCH", f"/v1.0/groups/{GROUP}", {}, 1, 1),
        ("DELETE", f"/v1.0/groups/{GROUP}/members/abc/$ref", {}, 1, 1),
        ("POST", "/v1.0/directoryObjects/getByIds", {}, 3, 0),
    ],
)
def test_resource_unit_costs_per_request_kind(
    method: str, path: str, query: dict[str, str], ru: int, writes: int
) -> None:
    cost = request_cost(method, path, query)
    assert (cost.ru, cost.writes) == (ru, writes)


def test_teams_creation_has_its_own_rate_buckets() -> None:
    assert request_cost("PUT", f"/v1.0/groups/{GROUP}/team", {}).teams_bucket == "team_put"
    assert request_cost("POST", "/v1.0/teams", {}).teams_bucket == "teams_post"
    assert request_cost("POST", "/v1.0/teams/x/archive", {}).teams_bucket is None


@pytest.mark.parametrize(("users", "limit"), [(0, 3500), (49, 3500), (50, 5000), (500, 5000), (501, 8000)])
def test_tenant_size_tiers(users: int, limit: int) -> None:
    assert ru_limit_for(users) == limit
    throttle = Throttle()
    for _ in range(limit):
        assert throttle.admit("app", Cost(ru=1, writes=0), 100.0, users) == 0.0
    assert throttle.admit("app", Cost(ru=1, writes=0), 100.0, users) > 0.0


def test_sliding_window_wait_is_exactly_until_enough_spending_ages_out() -> None:
    throttle = Throttle()
    read = Cost(ru=1000, writes=0)
    for at in (0.0, 2.0, 4.0):
        assert throttle.admit("app", read, at, 10) == 0.0
    assert throttle.admit("app", Cost(ru=500, writes=0), 5.0, 10) == 0.0  # 3,500 spent by t=5
    wait = throttle.admit("app", Cost(ru=600, writes=0), 6.0, 10)
    assert wait == pytest.approx(4.0, abs=1e-3)  # the 1,000 spent at t=0 leaves the window at t=10
    assert throttle.admit("app", Cost(ru=600, writes=0), 6.0 + wait - 0.01, 10) > 0.0
    assert throttle.admit("app", Cost(ru=600, writes=0), 6.0 + wait, 10) == 0.0


def test_write_quota_is_3000_per_150_seconds() -> None:
    throttle = Throttle()
    write = Cost(ru=1, writes=1)
    for index in range(3000):  # 20 per second: never more than 3,500 RU in 10 s
        assert throttle.admit("app", write, index * 0.05, 1000) == 0.0
    wait = throttle.admit("app", write, 150.0 - 0.05, 1000)
    assert wait == pytest.approx(0.05, abs=1e-3)  # the first write (t=0) leaves the window at t=150
    assert throttle.admit("app", write, 150.0, 1000) == 0.0
    assert throttle.admit("other-app", write, 150.0, 1000) == 0.0  # budgets are per app


def test_teams_rates_per_second() -> None:
    throttle = Throttle()
    put = Cost(ru=1, writes=1, teams_bucket="team_put")
    post = Cost(ru=1, writes=1, teams_bucket="teams_post")
    assert all(throttle.admit("app", put, 10.0, 10) == 0.0 for _ in range(6))
    assert throttle.admit("app", put, 10.5, 10) == pytest.approx(0.5, abs=1e-3)
    assert all(throttle.admit("app", post, 10.5, 10) == 0.0 for _ in range(10))
    assert throttle.admit("app", post, 10.9, 10) > 0.0
    assert throttle.admit("app", put, 11.0, 10) == 0.0


def test_disabled_throttling_admits_everything() -> None:
    throttle = Throttle(enabled=False)
    assert all(throttle.admit("app", Cost(ru=100, writes=1), 0.0, 1) == 0.0 for _ in range(100))


@pytest.mark.parametrize(
    ("real", "text"), [(0.0123, "0.013"), (0.0000001, "0.001"), (2.0, "2"), (1.5, "1.5"), (7.0004, "7.001")]
)
def test_retry_after_rounds_up_to_the_millisecond(real: float, text: str) -> None:
    assert retry_after_text(real) == text


def test_burst_over_quota_gets_429_and_honouring_retry_after_succeeds() -> None:
    sim = Simulator(make_seed(users=3))
    with graph_client(sim) as client:
        # 3,500 RU per 10 s for a tenant under 50 users; most of it is spent up front to keep the test fast.
        sim.throttle.admit(CLIENT_ID, Cost(ru=3500 - 50 * 3, writes=0), sim.clock.now(), 3)
        statuses = [client.get(f"/groups/{GROUP}/members").status_code for _ in range(51)]
        assert statuses == [200] * 50 + [429]  # 3 RU each
        throttled = client.get(f"/groups/{GROUP}/members")
        assert throttled.status_code == 429
        assert throttled.json()["error"]["code"] == "TooManyRequests"
        retry_after = float(throttled.headers["Retry-After"])
        assert 9.0 < retry_after <= 10.001
        sim.clock.advance(retry_after - 1.0)
        assert client.get(f"/groups/{GROUP}/members").status_code == 429  # early is not enough
        sim.clock.advance(1.0)
        assert client.get(f"/groups/{GROUP}/members").status_code == 200

    log = sim.request_log
    assert [r.throttled for r in log if r.status == 429] == [True, True, True]
    assert [r.ru for r in log if r.path.startswith("/v1.0")] == [3] * 50 + [0, 0, 0, 3]  # 429s cost nothing
    assert sim.stats()["throttled"] == 3


def test_retry_after_is_in_real_seconds_on_a_fast_clock() -> None:
    sim = Simulator(make_seed(users=3), time_scale=1000)
    with graph_client(sim) as client:
        sim.throttle.admit(CLIENT_ID, Cost(ru=3500, writes=0), sim.clock.now(), 3)
        throttled = client.get("/users")
        assert throttled.status_code == 429
        retry_after = float(throttled.headers["Retry-After"])
        assert 0.0 < retry_after <= 0.011  # a 10 s simulated wait is 10 ms of real time
        time.sleep(retry_after)
        assert client.get("/users").status_code == 200


def test_throttled_writes_are_not_applied() -> None:
    sim = Simulator(make_seed(users=3))
    sim.throttle.admit(CLIENT_ID, Cost(ru=0, writes=3000), sim.clock.now(), 3)
    body = {"displayName": "New", "mailNickname": "new", "mailEnabled": False, "securityEnabled": True}
    with graph_client(sim, access_token(sim)) as client:
        response = client.post("/groups", json=body)
        assert response.status_code == 429
        assert all(g["displayName"] != "New" for g in sim.dump_state()["groups"])
        sim.clock.advance(float(response.headers["Retry-After"]))
        assert client.post("/groups", json=body).status_code == 201
    assert sum(g["displayName"] == "New" for g in sim.dump_state()["groups"]) == 1
    assert sim.stats()["writes"] == 1
