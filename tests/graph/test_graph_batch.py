"""GraphClient.batch: splitting into $batch calls, order, per-item Retry-After and retry safety."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
import respx

from smartsync.graph import (
    GraphAuthError,
    GraphBadRequest,
    GraphClient,
    GraphOutcomeUnknown,
    GraphRequest,
    GraphThrottled,
)

TOKEN = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.c2lnbmF0dXJl"
Answer = Callable[[dict[str, Any], int], dict[str, Any]]


def ok_echo(sub: dict[str, Any], call: int) -> dict[str, Any]:
    return {"id": sub["id"], "status": 200, "headers": {}, "body": {"url": sub["url"]}}


class BatchEndpoint:
    """A mocked `POST /$batch`: records every call's sub-requests and answers each through `answer`."""

    def __init__(self, answer: Answer = ok_echo, reverse: bool = False, delay: float = 0.0) -> None:
        self.answer = answer
        self.reverse = reverse
        self.delay = delay
        self.calls: list[list[dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        subs = json.loads(request.content)["requests"]
        with self._lock:
            self.calls.append(subs)
            call = len(self.calls)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            responses = [self.answer(sub, call) for sub in subs]
        finally:
            with self._lock:
                self.in_flight -= 1
        if self.reverse:
            responses.reverse()
        return httpx.Response(200, json={"responses": responses})


def get_requests(n: int) -> list[GraphRequest]:
    return [GraphRequest("GET", f"/groups/g{i}") for i in range(n)]


def test_45_requests_make_3_batches_with_results_in_order(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    endpoint = BatchEndpoint(reverse=True)  # Graph may answer the items of a batch in any order
    route = graph.post("/$batch").mock(side_effect=endpoint)

    results = client.batch(get_requests(45))

    assert route.call_count == 3
    assert sorted(len(subs) for subs in endpoint.calls) == [5, 20, 20]
    assert [r.body["url"] for r in results] == [f"/groups/g{i}" for i in range(45)]
    assert all(r.ok and r.status == 200 for r in results)
    for subs in endpoint.calls:
        assert len({sub["id"] for sub in subs}) == len(subs)
        assert all(sub["url"].startswith("/groups/") for sub in subs)  # relative to /v1.0
    sent = route.calls.last.request
    assert str(sent.url) == "https://graph.microsoft.com/v1.0/$batch"
    assert sent.headers["Authorization"] == f"Bearer {TOKEN}"


def test_empty_batch_sends_nothing(client: GraphClient, graph: respx.MockRouter) -> None:
    route = graph.post("/$batch").respond(200, json={"responses": []})

    assert client.batch([]) == []
    assert route.call_count == 0


def test_bodies_and_headers_of_items_are_sent(client: GraphClient, graph: respx.MockRouter) -> None:
    endpoint = BatchEndpoint()
    graph.post("/$batch").mock(side_effect=endpoint)

    client.batch(
        [
            GraphRequest("PATCH", "/groups/g1", body={"displayName": "New"}),
            GraphRequest("GET", "/groups/$count", headers={"ConsistencyLevel": "eventual"}),
        ]
    )

    patch, count = endpoint.calls[0]
    assert patch["method"] == "PATCH" and patch["body"] == {"displayName": "New"}
    assert patch["headers"] == {"Content-Type": "application/json"}
    assert count["headers"] == {"ConsistencyLevel": "eventual"} and "body" not in count


@pytest.mark.parametrize("retry_after", ["2", "0.25"])
def test_throttled_items_go_again_in_a_later_batch(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float], retry_after: str
) -> None:
    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        if call == 1 and int(sub["url"].removeprefix("/groups/g")) % 3 == 0:
            return {"id": sub["id"], "status": 429, "headers": {"Retry-After": retry_after}, "body": {}}
        return ok_echo(sub, call)

    endpoint = BatchEndpoint(answer)
    graph.post("/$batch").mock(side_effect=endpoint)

    results = client.batch(get_requests(10))

    assert len(endpoint.calls) == 2
    assert [sub["url"] for sub in endpoint.calls[1]] == [
        "/groups/g0",
        "/groups/g3",
        "/groups/g6",
        "/groups/g9",
    ]
    assert sleeps == [float(retry_after)]
    assert [r.body["url"] for r in results] == [f"/groups/g{i}" for i in range(10)]
    assert all(r.ok for r in results)


def test_item_retry_after_as_http_date(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float]
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=20), usegmt=True)

    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        if call == 1:
            return {"id": sub["id"], "status": 429, "headers": {"retry-after": when}}
        return ok_echo(sub, call)

    graph.post("/$batch").mock(side_effect=BatchEndpoint(answer))

    assert all(r.ok for r in client.batch(get_requests(3)))
    (wait,) = sleeps
    assert 18.0 <= wait <= 20.0


def test_throttled_items_fail_when_retries_run_out(graph: respx.MockRouter, sleeps: list[float]) -> None:
    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        if sub["url"] == "/groups/g1":
            return {"id": sub["id"], "status": 429, "headers": {"Retry-After": "1"}, "body": {}}
        return ok_echo(sub, call)

    endpoint = BatchEndpoint(answer)
    graph.post("/$batch").mock(side_effect=endpoint)
    with GraphClient(
        "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, max_retries=2
    ) as client:
        results = client.batch(get_requests(3))

    # The first try is free (the other items got through); then two retries of g1 alone.
    assert len(endpoint.calls) == 4
    assert sleeps == [1.0, 1.0, 1.0]  # no wait after the last try
    assert results[0].ok and results[2].ok
    assert isinstance(results[1].error, GraphThrottled) and not results[1].ok


def test_server_error_items_are_retried_only_when_safe(client: GraphClient, graph: respx.MockRouter) -> None:
    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        if call == 1:
            return {"id": sub["id"], "status": 503, "headers": {"Retry-After": "0.1"}, "body": {}}
        return {"id": sub["id"], "status": 204, "headers": {}}

    endpoint = BatchEndpoint(answer)
    graph.post("/$batch").mock(side_effect=endpoint)

    results = client.batch(
        [
            GraphRequest("POST", "/groups", body={"displayName": "x"}),
            GraphRequest("PATCH", "/groups/g1", body={"displayName": "y"}),
            GraphRequest("POST", "/groups/g1/members/$ref", body={"@odata.id": "u"}, idempotent=True),
        ]
    )

    assert [sub["method"] for sub in endpoint.calls[1]] == ["PATCH", "POST"]
    assert isinstance(results[0].error, GraphOutcomeUnknown) and results[0].status == 503
    assert results[1].ok and results[2].ok


def test_lost_batch_response_resends_only_idempotent_items(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    endpoint = BatchEndpoint(lambda sub, call: {"id": sub["id"], "status": 204, "headers": {}})
    attempts: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        attempts.append(1)
        if len(attempts) == 1:
            raise httpx.ReadError("connection reset by peer")
        return endpoint(request)

    graph.post("/$batch").mock(side_effect=flaky)

    results = client.batch(
        [
            GraphRequest("POST", "/groups", body={"displayName": "x"}),
            GraphRequest("DELETE", "/groups/g1/members/u1/$ref"),
            GraphRequest("POST", "/teams/t1/archive", idempotent=True),
            GraphRequest("POST", "/directory/administrativeUnits", body={"displayName": "AU"}),
        ]
    )

    assert len(attempts) == 2
    assert [(sub["method"], sub["url"]) for sub in endpoint.calls[0]] == [
        ("DELETE", "/groups/g1/members/u1/$ref"),
        ("POST", "/teams/t1/archive"),
    ]
    assert isinstance(results[0].error, GraphOutcomeUnknown)
    assert isinstance(results[3].error, GraphOutcomeUnknown)
    assert results[1].ok and results[2].ok


def test_whole_batch_throttled_is_resent(
    client: GraphClient, graph: respx.MockRouter, sleeps: list[float]
) -> None:
    endpoint = BatchEndpoint()
    replies = iter([httpx.Response(429, headers={"Retry-After": "4"})])

    def throttled_once(request: httpx.Request) -> httpx.Response:
        return next(replies, None) or endpoint(request)

    route = graph.post("/$batch").mock(side_effect=throttled_once)

    results = client.batch([GraphRequest("POST", "/groups", body={}), *get_requests(2)])

    assert route.call_count == 2 and len(endpoint.calls[0]) == 3
    assert sleeps == [4.0]
    assert all(r.ok for r in results)


def test_whole_batch_refused_gives_every_item_the_error(client: GraphClient, graph: respx.MockRouter) -> None:
    error = {
        "error": {
            "code": "Authorization_RequestDenied",
            "message": "Insufficient privileges.",
            "innerError": {},
        }
    }
    route = graph.post("/$batch").respond(403, json=error)

    results = client.batch(get_requests(3))

    assert route.call_count == 1
    assert all(isinstance(r.error, GraphAuthError) for r in results)


def test_item_errors_are_typed_and_never_raised(client: GraphClient, graph: respx.MockRouter) -> None:
    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        url = sub["url"]
        if url == "/groups/g1/members/$ref":
            message = (
                "One or more added object references already exist for the following modified properties."
            )
            return {
                "id": sub["id"],
                "status": 400,
                "body": {"error": {"code": "Request_BadRequest", "message": message}},
            }
        if url == "/groups/g1/owners/u9/$ref":
            return {
                "id": sub["id"],
                "status": 404,
                "body": {"error": {"code": "Request_ResourceNotFound", "message": "x"}},
            }
        if url == "/groups":
            body = {
                "error": {
                    "code": "Request_BadRequest",
                    "message": "Another object with the same value for property mailNickname already exists.",
                    "innerError": {"request-id": "rid-7", "date": "2024-01-01T00:00:00"},
                }
            }
            return {"id": sub["id"], "status": 400, "body": body}
        return {"id": sub["id"], "status": 204}

    graph.post("/$batch").mock(side_effect=BatchEndpoint(answer))

    added, removed, created, other = client.batch(
        [
            GraphRequest("POST", "/groups/g1/members/$ref", body={"@odata.id": "u"}, idempotent=True),
            GraphRequest("DELETE", "/groups/g1/owners/u9/$ref"),
            GraphRequest("POST", "/groups", body={"displayName": "x"}),
            GraphRequest("DELETE", "/groups/g2"),
        ]
    )

    assert added.ok and added.already and added.status == 204
    assert removed.ok and removed.already
    assert isinstance(created.error, GraphBadRequest) and created.error.request_id == "rid-7"
    assert "mailNickname already exists" in str(created.error) and not created.ok
    assert other.ok and not other.already


def test_missing_item_answer_is_outcome_unknown_for_posts(
    client: GraphClient, graph: respx.MockRouter
) -> None:
    calls: list[int] = []

    def first_drops_item_1(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        subs = json.loads(request.content)["requests"]
        kept = subs[1:] if len(calls) == 1 else subs
        return httpx.Response(200, json={"responses": [{"id": s["id"], "status": 204} for s in kept]})

    graph.post("/$batch").mock(side_effect=first_drops_item_1)

    post, get = client.batch([GraphRequest("POST", "/groups", body={}), GraphRequest("GET", "/groups/g1")])

    assert isinstance(post.error, GraphOutcomeUnknown) and get.ok and len(calls) == 1


def test_batches_run_concurrently_within_the_limit(graph: respx.MockRouter, sleeps: list[float]) -> None:
    endpoint = BatchEndpoint(delay=0.02)
    graph.post("/$batch").mock(side_effect=endpoint)
    with GraphClient(
        "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, concurrency=3
    ) as client:
        results = client.batch(get_requests(200))

    assert len(endpoint.calls) == 10
    assert 2 <= endpoint.max_in_flight <= 3
    assert [r.body["url"] for r in results] == [f"/groups/g{i}" for i in range(200)]


def test_throttling_halves_concurrency(graph: respx.MockRouter, sleeps: list[float]) -> None:
    def answer(sub: dict[str, Any], call: int) -> dict[str, Any]:
        if call <= 2:
            return {"id": sub["id"], "status": 429, "headers": {"Retry-After": "1"}}
        return ok_echo(sub, call)

    graph.post("/$batch").mock(side_effect=BatchEndpoint(answer))
    with GraphClient(
        "https://graph.microsoft.com", lambda: TOKEN, sleep=sleeps.append, concurrency=4
    ) as client:
        results = client.batch(get_requests(20))
        assert client.concurrency_now == 1  # 4 -> 2 -> 1 after two throttled calls

    assert all(r.ok for r in results)
    assert sleeps == [1.0, 1.0]


def test_absolute_item_urls_are_refused(client: GraphClient) -> None:
    with pytest.raises(ValueError, match="relative"):
        client.batch([GraphRequest("GET", "https://graph.microsoft.com/v1.0/groups")])
