"""JSON batching, `POST /v1.0/$batch`, as Graph documents it.

At most 20 requests with unique ids; each runs on its own (its own throttling, its own faults, its
own status), in the order given; an item whose `dependsOn` names a failed item is not run and gets
424. A malformed envelope fails as a whole with 400 before anything runs. The round trip costs
nothing beyond its items.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from smartsync.simulator.graph_errors import graph_error, graph_error_body
from smartsync.simulator.http import SimRequest, SimResponse

MAX_BATCH_REQUESTS = 20
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})
_HEADER_NAMES = {"content-type": "Content-Type", "retry-after": "Retry-After", "location": "Location"}


class BatchFormatError(Exception):
    """The envelope breaks a batching rule; Graph answers 400 for the whole batch."""


@dataclass(frozen=True)
class BatchItem:
    id: str
    request: SimRequest
    depends_on: tuple[str, ...]


def _item_request(raw: dict[str, Any], item_id: str, envelope: SimRequest) -> SimRequest:
    method = str(raw.get("method", "")).upper()
    url = raw.get("url")
    if method not in _METHODS:
        raise BatchFormatError(f"Request '{item_id}' has an invalid method '{raw.get('method')}'.")
    if not isinstance(url, str) or not url:
        raise BatchFormatError(f"Request '{item_id}' has no url.")
    if "://" in url:
        raise BatchFormatError(f"Request '{item_id}': the url must be relative to /v1.0, got '{url}'.")
    parts = urlsplit(url if url.startswith("/") else "/" + url)
    path = "/v1.0" + unquote(parts.path)
    if path.rstrip("/").lower() == "/v1.0/$batch":
        raise BatchFormatError(f"Request '{item_id}': a batch cannot contain another batch.")
    headers_raw = raw.get("headers") or {}
    if not isinstance(headers_raw, dict):
        raise BatchFormatError(f"Request '{item_id}': headers must be an object.")
    headers = {str(name).lower(): str(value) for name, value in headers_raw.items()}
    for name in ("authorization", "client-request-id"):  # the envelope's identity applies to its items
        if name in envelope.headers and name not in headers:
            headers[name] = envelope.headers[name]
    body = b""
    if "body" in raw and raw["body"] is not None:
        if "content-type" not in headers:
            raise BatchFormatError(f"Request '{item_id}': a request with a body needs a Content-Type header.")
        value = raw["body"]
        body = value.encode("utf-8") if isinstance(value, str) else json.dumps(value).encode("utf-8")
    return SimRequest(
        method=method,
        path=path,
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        headers=headers,
        body=body,
        raw_query=parts.query,
    )


def parse_batch(envelope: SimRequest) -> list[BatchItem]:
    try:
        payload = envelope.json()
    except (UnicodeDecodeError, ValueError):
        raise BatchFormatError("Invalid batch payload format: the body is not JSON.") from None
    requests = payload.get("requests") if isinstance(payload, dict) else None
    if not isinstance(requests, list) or not requests:
        raise BatchFormatError(
            'Invalid batch payload format: expected {"requests": [...]} with at least one.'
        )
    if len(requests) > MAX_BATCH_REQUESTS:
        raise BatchFormatError(
            f"The batch holds {len(requests)} requests; at most {MAX_BATCH_REQUESTS} are allowed per batch."
        )
    items: list[BatchItem] = []
    seen: set[str] = set()
    for raw in requests:
        if not isinstance(raw, dict) or raw.get("id") in (None, ""):
            raise BatchFormatError("Invalid batch payload format: every request needs an id.")
        item_id = str(raw["id"])
        if item_id in seen:
            raise BatchFormatError(f"Request id '{item_id}' is used more than once; ids must be unique.")
        depends_raw = raw.get("dependsOn") or []
        if not isinstance(depends_raw, list):
            raise BatchFormatError(f"Request '{item_id}': dependsOn must be a list of request ids.")
        depends_on = tuple(str(dep) for dep in depends_raw)
        for dep in depends_on:
            if dep not in seen:
                raise BatchFormatError(
                    f"Request '{item_id}' depends on '{dep}', which is not an earlier request of this batch."
                )
        items.append(BatchItem(item_id, _item_request(raw, item_id, envelope), depends_on))
        seen.add(item_id)
    return items


def _response_entry(item_id: str, response: SimResponse) -> dict[str, Any]:
    headers = {
        _HEADER_NAMES.get(name.lower(), name): value
        for name, value in response.headers.items()
        if name.lower() != "content-length"
    }
    entry: dict[str, Any] = {"id": item_id, "status": response.status, "headers": headers}
    if response.body:
        try:
            entry["body"] = json.loads(response.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            entry["body"] = response.body.decode("utf-8", "replace")
    return entry


def run_batch(
    envelope: SimRequest,
    run_item: Callable[[BatchItem], SimResponse],
    now: Callable[[], float],
    record_skipped: Callable[[BatchItem, SimResponse], None] | None = None,
) -> SimResponse:
    """Validate the envelope, run each item through `run_item`, and assemble Graph's batch response."""
    try:
        items = parse_batch(envelope)
    except BatchFormatError as exc:
        return graph_error(400, "BadRequest", str(exc), now())
    failed: set[str] = set()
    entries: list[dict[str, Any]] = []
    for item in items:
        blocking = [dep for dep in item.depends_on if dep in failed]
        if blocking:
            body = graph_error_body(
                "FailedDependency",
                f"Request '{item.id}' was not run because request '{blocking[0]}' it depends on failed.",
                now(),
            )
            response = SimResponse.of_json(424, body)
            if record_skipped is not None:
                record_skipped(item, response)
        else:
            response = run_item(item)
        if not 200 <= response.status < 300:
            failed.add(item.id)
        entries.append(_response_entry(item.id, response))
    return SimResponse.of_json(200, {"responses": entries})
