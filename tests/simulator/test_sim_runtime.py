"""The simulator as a whole: a seedless tenant, thread safety, stats, control endpoints, the JSONL log."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from test_sim_support import graph_client, jwt_payload, make_seed

from smartsync.simulator import DEFAULT_CLIENT_SECRET, Simulator


def test_a_seedless_simulator_accepts_the_default_app_with_every_role_smartsync_needs() -> None:
    sim = Simulator()
    with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as client:
        response = client.post(
            f"/{sim.state.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": sim.state.app.client_id,
                "client_secret": DEFAULT_CLIENT_SECRET,
                "scope": f"{sim.base_url}/.default",
            },
        )
    assert response.status_code == 200
    roles = set(jwt_payload(response.json()["access_token"])["roles"])
    assert {
        "User.Read.All",
        "Group.ReadWrite.All",
        "AdministrativeUnit.ReadWrite.All",
        "Team.Create",
    } <= roles


def test_concurrent_clients_are_served_consistently() -> None:
    sim = Simulator(make_seed(users=5), throttling=False)
    with graph_client(sim) as client:

        def create(index: int) -> int:
            body = {
                "displayName": f"T{index}",
                "mailNickname": f"t{index}",
                "mailEnabled": False,
                "securityEnabled": True,
            }
            return client.post("/groups", json=body).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(create, range(60)))

    assert statuses == [201] * 60
    names = {group["displayName"] for group in sim.dump_state()["groups"]}
    assert {f"T{index}" for index in range(60)} <= names
    stats = sim.stats()
    assert (stats["requests"], stats["writes"], stats["ru"]) == (60, 60, 60)
    assert len([r for r in sim.request_log if r.path == "/v1.0/groups"]) == 60


def test_control_endpoints_dump_state_and_advance_the_clock() -> None:
    sim = Simulator(make_seed(users=2))
    with httpx.Client(transport=sim.transport(), base_url=sim.base_url) as client:
        state = client.get("/_simulator/state").json()
        before = sim.clock.now()
        advanced = client.post("/_simulator/clock/advance", params={"seconds": "3600"})
        refused = client.post("/_simulator/clock/advance", params={"seconds": "soon"})
        stats = client.get("/_simulator/stats").json()

    assert state == sim.dump_state()
    assert [user["userPrincipalName"] for user in state["users"]] == [
        "user0@school.example",
        "user1@school.example",
    ]
    assert advanced.json()["now"] - before >= 3600
    assert refused.status_code == 400
    assert stats["requests"] == 0  # control endpoints are not Graph traffic
    assert sim.request_log == []


def test_request_log_is_written_as_json_lines(tmp_path: Path) -> None:
    sim = Simulator(make_seed(users=2))
    with graph_client(sim) as client:
        client.get("/users", params={"$select": "id"})
    path = tmp_path / "requests.jsonl"
    sim.request_log_jsonl(path)

    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    graph = records[-1]
    assert graph["method"] == "GET" and graph["path"] == "/v1.0/users"
    assert graph["query"] == {"$select": "id"} and graph["status"] == 200 and graph["ru"] == 1
    assert set(graph) >= {"body", "writes", "sim_time", "batch_id", "throttled", "fault"}
