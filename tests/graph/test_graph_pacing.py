"""GraphClient.batch under a quota: a 429 while other items get through uses up no retries."""

from __future__ import annotations

import json

import httpx
import respx

from smartsync.graph import GraphClient, GraphRequest

GRAPH = "https://graph.microsoft.com"
TOKEN = "eyJhbGciOiJub25lIn0.eyJyb2xlcyI6W119.c2lnbmF0dXJl"


class RationedBatch:
    """A `$batch` endpoint that lets `per_call` items through per call and answers the rest 429."""

    def __init__(self, per_call: int) -> None:
        self.per_call = per_call
        self.items_sent: list[int] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        subs = json.loads(request.content)["requests"]
        self.items_sent.append(len(subs))
        responses = [
            {"id": sub["id"], "status": 204, "headers": {}}
            if n < self.per_call
            else {"id": sub["id"], "status": 429, "headers": {"Retry-After": "1"}, "body": {}}
            for n, sub in enumerate(subs)
        ]
        return httpx.Response(200, json={"responses": responses})


def test_a_long_queue_under_a_tight_quota_finishes_without_failures() -> None:
    endpoint = RationedBatch(per_call=3)
    with respx.mock(base_url=f"{GRAPH}/v1.0") as graph:
        graph.post("/$batch").mock(side_effect=endpoint)
        with GraphClient(GRAPH, lambda: TOKEN, sleep=lambda _s: None, max_retries=2, concurrency=1) as client:
            results = client.batch([GraphRequest("DELETE", f"/groups/g{n}") for n in range(60)])
    # Each item is refused many more times than max_retries, yet all get through: 429s are pacing.
    assert all(r.ok for r in results)
    assert len(endpoint.items_sent) > 2 * 3  # many more rounds than retries
