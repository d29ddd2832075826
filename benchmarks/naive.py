"""The naive client: what a straightforward script does, for comparison.

It runs the same plan as smartsync (so the two make the same changes) but sends one request at a
time, never uses `$batch`, and adds every owner and member with its own `POST .../$ref`, including
those smartsync binds into the group's creation. Like any reasonable script it waits for
`Retry-After` when throttled, and it keeps smartsync's `$select` on reads, so the comparison shows
what batching and concurrency buy, not what a careless query costs. Against the live service's
replication delay it does what Moodle's plugin does: a reference to a group created moments ago that
"does not exist" is tried again, up to 5 times 10 seconds apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from smartsync.graph import GraphClient, GraphError, GraphRequest, GraphResult
from smartsync.graph.consistency import not_there

BINDS = ("owners", "members")
REPLICATION_RETRIES = 5
REPLICATION_RETRY_SECONDS = 10.0


class NaiveGraphClient(GraphClient):
    """A `GraphClient` whose `batch` sends each request on its own, in order, one membership at a time."""

    def batch(self, requests: Sequence[GraphRequest]) -> list[GraphResult]:
        return [self._one(request) for request in requests]

    def _one(self, request: GraphRequest) -> GraphResult:
        body = request.body
        binds = (
            {rel: list(body.get(f"{rel}@odata.bind") or []) for rel in BINDS}
            if isinstance(body, dict)
            else {}
        )
        if not any(binds.values()) or request.method.upper() not in ("POST", "PATCH"):
            return self._send(request)
        assert isinstance(body, dict)
        rest: dict[str, Any] = {
            k: v for k, v in body.items() if k not in {f"{rel}@odata.bind" for rel in BINDS}
        }
        result: GraphResult | None = None
        if request.method.upper() == "POST":
            result = self._send(GraphRequest("POST", request.url, rest, request.headers, request.idempotent))
            if result.error is not None or not isinstance(result.body, dict):
                return result
            group_path = f"/groups/{result.body['id']}"
        else:
            group_path = request.url.split("?")[0]
            if rest:
                result = self._send(GraphRequest("PATCH", group_path, rest))
                if result.error is not None:
                    return result
        for rel in BINDS:
            for ref in binds[rel]:
                added = self._send_waiting(
                    GraphRequest("POST", f"{group_path}/{rel}/$ref", {"@odata.id": ref}, idempotent=True)
                )
                if added.error is not None:
                    return added
        return result or GraphResult(204, None)

    def _send_waiting(self, request: GraphRequest) -> GraphResult:
        result = self._send(request)
        for _ in range(REPLICATION_RETRIES):
            if result.error is None or not not_there(result.error):
                break
            self._sleep(REPLICATION_RETRY_SECONDS)
            result = self._send(request)
        return result

    def _send(self, request: GraphRequest) -> GraphResult:
        try:
            return self.request(
                request.method,
                request.url,
                json=request.body,
                headers=request.headers,
                idempotent=request.idempotent,
            )
        except GraphError as error:
            return GraphResult(error.status or 0, None, {}, error=error)
