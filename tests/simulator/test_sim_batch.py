"""JSON batching in the simulator: the 20-request limit, unique ids, per-item results, dependsOn."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_sim_support import CLIENT_ID, graph_client, make_seed

from smartsync.simulator import Simulator
from smartsync.simulator.throttle import Cost

USER = "00000000-0000-0000-0001-000000000000"
MISSING = "00000000-0000-0000-0001-999999999999"


def send(client: httpx.Client, requests: list[dict[str, Any]]) -> httpx.Response:
    return client.post("/$batch", json={"requests": requests})


def by_id(response: httpx.Response) -> dict[str, dict[str, Any]]:
    assert response.status_code == 200, response.text
    return {item["id"]: item for item in response.json()["responses"]}


def get(item_id: str, url: str, **extra: Any) -> dict[str, Any]:
    return {"id": item_id, "method": "GET", "url": url, **extra}


@pytest.fixture
def sim() -> Simulator:
    return Simulator(make_seed(users=3))


def test_twenty_requests_pass_and_twenty_one_are_refused_as_a_whole(sim: Simulator) -> None:
    with graph_client(sim) as client:
        twenty = send(client, [get(str(n), f"/users/{USER}") for n in range(20)])
        twenty_one = send(client, [get(str(n), f"/users/{USER}") for n in range(21)])

    assert len(by_id(twenty)) == 20
    assert twenty_one.status_code == 400
    assert twenty_one.json()["error"]["code"] == "BadRequest"
    assert "20" in twenty_one.json()["error"]["message"]
    assert len([r for r in sim.request_log if r.batch_item_id is not None]) == 20  # nothing of the 21 ran


@pytest.mark.parametrize(
    "requests",
    [
        [get("1", "/users"), get("1", "/groups")],  # duplicate id
        [get("1", "/users", dependsOn=["2"]), get("2", "/groups")],  # depends on a later request
        [get("1", "/users", dependsOn=["nope"])],
        [
            {"id": "1", "method": "POST", "url": "/groups", "body": {"displayName": "x"}}
        ],  # body, no Content-Type
        [{"id": "1", "method": "GET", "url": "https://graph.microsoft.com/v1.0/users"}],  # absolute url
        [{"id": "1", "method": "FETCH", "url": "/users"}],
        [{"method": "GET", "url": "/users"}],  # no id
        [],
    ],
)
def test_malformed_batches_get_400_and_nothing_runs(sim: Simulator, requests: list[dict[str, Any]]) -> None:
    with graph_client(sim) as client:
        response = send(client, requests)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "BadRequest"
    assert all(r.batch_item_id is None for r in sim.request_log)


def test_each_item_has_its_own_status_headers_and_body(sim: Simulator) -> None:
    group = {
        "displayName": "Made in a batch",
        "mailNickname": "batch1",
        "mailEnabled": False,
        "securityEnabled": True,
    }
    with graph_client(sim) as client:
        response = send(
            client,
            [
                get("ok", f"/users/{USER}?$select=id,userPrincipalName"),
                get("missing", f"/users/{MISSING}"),
                {
                    "id": "create",
                    "method": "POST",
                    "url": "/groups",
                    "headers": {"Content-Type": "application/json"},
                    "body": group,
                },
            ],
        )
    items = by_id(response)

    assert items["ok"]["status"] == 200
    assert items["ok"]["body"]["userPrincipalName"] == "user0@school.example"
    assert items["missing"]["status"] == 404
    assert items["missing"]["body"]["error"]["code"] == "Request_ResourceNotFound"
    assert items["create"]["status"] == 201
    assert items["create"]["headers"]["Content-Type"].startswith("application/json")
    assert any(g["displayName"] == "Made in a batch" for g in sim.dump_state()["groups"])
    stats = sim.stats()
    assert (stats["requests"], stats["round_trips"], stats["batch_round_trips"]) == (3, 1, 1)
    assert (stats["ru"], stats["writes"]) == (1 + 1 + 1, 1)  # the batch itself costs nothing
    items_logged = [r for r in sim.request_log if r.batch_item_id]
    assert {r.batch_id for r in sim.request_log if r.path.startswith("/v1.0/")} == {"1"}
    assert [r.path for r in items_logged] == [f"/v1.0/users/{USER}", f"/v1.0/users/{MISSING}", "/v1.0/groups"]
    assert items_logged[2].body == group


def test_depends_on_a_failed_request_gives_424_down_the_chain(sim: Simulator) -> None:
    with graph_client(sim) as client:
        items = by_id(
            send(
                client,
                [
                    get("a", f"/users/{MISSING}"),
                    get("b", f"/users/{USER}", dependsOn=["a"]),
                    get("c", f"/users/{USER}", dependsOn=["b"]),
                    get("d", f"/users/{USER}"),
                    get("e", f"/users/{USER}", dependsOn=["d"]),
                ],
            )
        )

    assert {key: item["status"] for key, item in items.items()} == {
        "a": 404,
        "b": 424,
        "c": 424,
        "d": 200,
        "e": 200,
    }
    assert items["b"]["body"]["error"]["code"] == "FailedDependency"
    assert [r.status for r in sim.request_log if r.batch_item_id in {"b", "c"}] == [424, 424]
    assert sum(r.ru for r in sim.request_log) == 3  # only a, d and e reached Graph


def test_throttled_items_get_their_own_429_with_retry_after(sim: Simulator) -> None:
    with graph_client(sim) as client:
        sim.throttle.admit(CLIENT_ID, Cost(ru=3500 - 4, writes=0), sim.clock.now(), 3)
        items = by_id(send(client, [get(str(n), "/users") for n in range(4)]))  # 2 RU each

        assert [items[str(n)]["status"] for n in range(4)] == [200, 200, 429, 429]
        retry_after = float(items["2"]["headers"]["Retry-After"])
        assert items["2"]["body"]["error"]["code"] == "TooManyRequests"
        sim.clock.advance(retry_after)
        again = by_id(send(client, [get("2", "/users"), get("3", "/users")]))

    assert [again["2"]["status"], again["3"]["status"]] == [200, 200]
    assert sim.stats()["throttled"] == 2


def test_an_unauthenticated_batch_is_refused_before_any_item_runs(sim: Simulator) -> None:
    with httpx.Client(transport=sim.transport(), base_url=f"{sim.base_url}/v1.0") as client:
        response = send(client, [get("1", "/users")])
    assert response.status_code == 401
    assert [r.path for r in sim.request_log] == ["/v1.0/$batch"]
