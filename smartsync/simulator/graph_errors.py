"""Graph's error envelope, `{"error": {"code", "message", "innerError"}}`, built in one place.

Every error the simulator's runtime answers with (401 from token checks, 429 from throttling, injected
503/504, malformed `$batch`) uses this shape, as Graph documents it, so a client that parses one of
them parses them all.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from smartsync.simulator.http import SimResponse


def iso_utc(epoch_seconds: float) -> str:
    """An ISO 8601 UTC timestamp the way Graph writes them (`2024-01-01T00:00:00Z`)."""
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_error_body(
    code: str, message: str, sim_now: float, client_request_id: str = ""
) -> dict[str, object]:
    request_id = str(uuid.uuid4())
    return {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": iso_utc(sim_now),
                "request-id": request_id,
                "client-request-id": client_request_id or request_id,
            },
        }
    }


def graph_error(
    status: int,
    code: str,
    message: str,
    sim_now: float,
    *,
    headers: dict[str, str] | None = None,
    client_request_id: str = "",
) -> SimResponse:
    return SimResponse.of_json(status, graph_error_body(code, message, sim_now, client_request_id), headers)
