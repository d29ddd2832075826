"""GraphClient against answers of the live service that its reference pages leave out (narrow checks)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import respx

from smartsync.graph import GraphClient, GraphRequest


def test_a_424_envelope_that_carries_responses_is_read_like_a_200(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        subs = json.loads(request.content)["requests"]
        responses: list[dict[str, Any]] = [
            {"id": s["id"], "status": 200, "headers": {}, "body": {"url": s["url"]}} for s in subs
        ]
        responses[0] = {"id": subs[0]["id"], "status": 424, "body": {"error": {"code": "FailedDependency"}}}
        return httpx.Response(424, json={"responses": list(reversed(responses))})

    graph.post("/$batch").mock(side_effect=answer)
    results = client.batch([GraphRequest("GET", f"/groups/g{i}") for i in range(3)])
    assert [r.status for r in results] == [424, 200, 200]
    assert [r.body["url"] for r in results[1:]] == ["/groups/g1", "/groups/g2"]


def test_a_throttled_item_without_retry_after_waits_the_backoff_and_goes_again(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float]
) -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        subs = json.loads(request.content)["requests"]
        status = 429 if len(calls) == 1 else 204
        return httpx.Response(200, json={"responses": [{"id": s["id"], "status": status} for s in subs]})

    graph.post("/$batch").mock(side_effect=answer)
    [result] = client.batch([GraphRequest("DELETE", "/groups/g/members/u/$ref")])
    assert result.ok and len(calls) == 2 and len(sleeps) == 1 and 0 < sleeps[0] <= 1.0


def test_a_throttled_write_that_went_through_counts_as_done(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    calls: list[int] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        sub = json.loads(request.content)["requests"][0]
        if len(calls) == 1:
            item = {"id": sub["id"], "status": 429, "headers": {"Retry-After": "0.249"}}
        else:
            message = (
                "One or more added object references already exist for the following modified properties"
            )
            item = {
                "id": sub["id"],
                "status": 400,
                "body": {"error": {"code": "Request_BadRequest", "message": message}},
            }
        return httpx.Response(200, json={"responses": [item]})

    graph.post("/$batch").mock(side_effect=answer)
    body = {"@odata.id": "https://graph.microsoft.com/v1.0/directoryObjects/u"}
    [result] = client.batch([GraphRequest("POST", "/groups/g/members/$ref", body, idempotent=True)])
    assert result.ok and result.already


def test_removing_a_non_member_answered_400_is_done(client: GraphClient, graph: respx.MockRouter) -> None:
    message = (
        "One or more removed object references do not exist for the following modified properties: 'members'."
    )
    graph.delete("/groups/g/members/u/$ref").mock(
        return_value=httpx.Response(400, json={"error": {"code": "Request_BadRequest", "message": message}})
    )
    assert client.request("DELETE", "/groups/g/members/u/$ref").already
