"""The simulator's own request/response values, independent of any HTTP library.

The in-process httpx transport and the HTTPS server both turn what they receive into a `SimRequest`,
hand it to `Simulator.handle`, and turn the `SimResponse` back into their own form. The Graph core
(`api.py`) sees only these values, so it can be tested without sockets or httpx.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SimRequest:
    method: str  # upper case
    path: str  # URL path, percent-decoded, e.g. "/v1.0/groups/abc/members/$ref"
    query: dict[str, str] = field(default_factory=dict)  # decoded query parameters, e.g. {"$select": "id"}
    headers: dict[str, str] = field(default_factory=dict)  # keys in lower case
    body: bytes = b""
    raw_query: str = ""  # the query string as received, for building @odata.nextLink

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass
class SimResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @classmethod
    def of_json(cls, status: int, payload: Any, headers: dict[str, str] | None = None) -> SimResponse:
        out = {"content-type": "application/json"}
        out.update(headers or {})
        return cls(status, out, json.dumps(payload).encode("utf-8"))

    @classmethod
    def empty(cls, status: int, headers: dict[str, str] | None = None) -> SimResponse:
        return cls(status, dict(headers or {}), b"")

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else None


@dataclass(frozen=True)
class Principal:
    """Who is calling: the app the token was issued to and its granted application permissions."""

    app_id: str
    roles: frozenset[str]
