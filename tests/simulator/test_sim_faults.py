"""Seeded fault injection: each kind, its effect on the tenant, reproducibility, and the spec syntax."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from test_sim_support import SECRET, access_token, graph_client, make_seed

from smartsync.simulator import FaultSpec, Simulator
from smartsync.simulator.faults import ALL_KINDS, FaultInjector, FaultSpecError

NEW_GROUP = {
    "displayName": "Fault test",
    "mailNickname": "faulttest",
    "mailEnabled": False,
    "securityEnabled": True,
}


def created(sim: Simulator) -> int:
    return sum(group["displayName"] == "Fault test" for group in sim.dump_state()["groups"])


def always(kind: str) -> Simulator:
    return Simulator(make_seed(), faults=FaultSpec(rate=1.0, seed=1, kinds=(kind,)))


def test_parse_reads_every_field() -> None:
    spec = FaultSpec.parse("rate=0.1,seed=7,kinds=429+503+504+drop+lost")
    assert spec == FaultSpec(rate=0.1, seed=7, kinds=ALL_KINDS)
    assert FaultSpec.parse("rate=0.25,seed=3") == FaultSpec(rate=0.25, seed=3, kinds=ALL_KINDS)
    assert FaultSpec.parse("rate=1,kinds=lost,login=true") == FaultSpec(rate=1.0, kinds=("lost",), login=True)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("rate=2", "between 0 and 1"),
        ("rate=0.1,kinds=429+teapot", "teapot"),
        ("rate=lots", "number"),
        ("speed=3", "speed=3"),
        ("rate=0.1,login=maybe", "login"),
    ],
)
def test_parse_explains_what_is_wrong(text: str, complaint: str) -> None:
    with pytest.raises(FaultSpecError, match=complaint):
        FaultSpec.parse(text)


def test_same_seed_gives_the_same_faults_and_another_seed_does_not() -> None:
    def draws(seed: int) -> list[str | None]:
        injector = FaultInjector(FaultSpec(rate=0.3, seed=seed))
        return [injector.draw(ALL_KINDS) for _ in range(200)]

    first = draws(7)
    assert first == draws(7)
    assert first != draws(8)
    assert 30 < sum(kind is not None for kind in first) < 90  # about 30 %
    assert {kind for kind in first if kind} == set(ALL_KINDS)


@pytest.mark.parametrize(
    ("kind", "code"), [("429", "TooManyRequests"), ("503", "serviceNotAvailable"), ("504", "UnknownError")]
)
def test_error_faults_answer_without_applying_the_request(kind: str, code: str) -> None:
    sim = always(kind)
    with graph_client(sim) as client:
        response = client.post("/groups", json=NEW_GROUP)

    assert response.status_code == int(kind)
    assert response.json()["error"]["code"] == code
    if kind == "429":
        assert float(response.headers["Retry-After"]) > 0
    assert created(sim) == 0
    record = sim.request_log[-1]
    assert (record.fault, record.status, record.ru, record.writes) == (kind, int(kind), 0, 0)
    assert sim.stats()["faults"] == 1 and sim.stats()["faults_by_kind"] == {kind: 1}


def test_drop_breaks_the_connection_before_the_request_is_applied() -> None:
    sim = always("drop")
    with graph_client(sim) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/groups", json=NEW_GROUP)
    assert created(sim) == 0
    assert sim.request_log[-1].fault == "drop"


def test_lost_applies_the_request_but_the_client_sees_only_a_broken_connection() -> None:
    sim = always("lost")
    with graph_client(sim) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/groups", json=NEW_GROUP)
    assert created(sim) == 1
    record = sim.request_log[-1]
    assert (record.fault, record.status, record.writes) == ("lost", 201, 1)


def test_login_is_spared_unless_asked_for() -> None:
    spared = Simulator(make_seed(), faults=FaultSpec(rate=1.0, kinds=("503",)))
    assert access_token(spared)
    hit = Simulator(make_seed(), faults=FaultSpec(rate=1.0, kinds=("503",), login=True))
    with httpx.Client(transport=hit.transport(), base_url=hit.base_url) as client:
        response = client.post(
            f"/{hit.state.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": hit.state.app.client_id,
                "client_secret": SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
        )
    assert response.status_code == 503
    assert hit.request_log[-1].fault == "503"


def test_batch_items_get_their_own_error_faults() -> None:
    sim = always("429")
    requests: list[dict[str, Any]] = [{"id": str(n), "method": "GET", "url": "/users"} for n in range(3)]
    with graph_client(sim) as client:
        response = client.post("/$batch", json={"requests": requests})

    assert response.status_code == 200  # the envelope is not a 429: its items are
    items = response.json()["responses"]
    assert [item["status"] for item in items] == [429, 429, 429]
    assert all(float(item["headers"]["Retry-After"]) > 0 for item in items)
    assert [r.fault for r in sim.request_log if r.batch_item_id] == ["429", "429", "429"]


def test_a_lost_batch_applies_its_items() -> None:
    sim = always("lost")
    body = {
        "requests": [
            {
                "id": "1",
                "method": "POST",
                "url": "/groups",
                "headers": {"content-type": "application/json"},
                "body": NEW_GROUP,
            }
        ]
    }
    with graph_client(sim) as client, pytest.raises(httpx.RemoteProtocolError):
        client.post("/$batch", json=body)
    assert created(sim) == 1


def test_fault_rate_over_many_requests_is_seeded_and_counted() -> None:
    def run() -> tuple[list[str | None], dict[str, Any]]:
        sim = Simulator(make_seed(), faults=FaultSpec(rate=0.2, seed=42, kinds=("429", "503", "504")))
        with graph_client(sim) as client:
            for _ in range(100):
                client.get("/users")
        return [r.fault for r in sim.request_log if r.path == "/v1.0/users"], sim.stats()

    faults, stats = run()
    assert (faults, stats["faults"]) == (run()[0], run()[1]["faults"])
    assert stats["faults"] == sum(kind is not None for kind in faults)
    assert 5 < stats["faults"] < 40
