"""The simulator's request log: one record per HTTP request and per `$batch` sub-request.

Tests and benchmarks count requests, resource units, writes, 429s and injected faults from it;
`smartsync simulator serve --request-log` writes it as JSON lines while serving. Secrets never reach
it: the token endpoint's `client_secret` and `client_assertion` form fields and any JSON `password`
(a new user's initial password) are replaced before a record is made, and headers (which carry
bearer tokens) are not recorded at all.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qsl

REDACTED = "[redacted]"
SECRET_FORM_FIELDS = frozenset({"client_secret", "client_assertion", "password", "refresh_token"})


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, str]
    body: Any  # parsed JSON, the (redacted) form of a token request, or None
    status: int
    ru: int  # resource units charged (0 when throttled, faulted before applying, or not Graph)
    writes: int  # write-quota units charged
    sim_time: float  # simulated epoch seconds when the request was handled
    batch_id: str | None = None  # which $batch round trip (its items and the envelope share it)
    batch_item_id: str | None = None  # the item's own id inside its $batch
    throttled: bool = False  # a 429 from the throttling model (not an injected fault)
    fault: str | None = None  # the injected fault kind, if any

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def loggable_body(body: bytes, content_type: str) -> Any:
    """The body as a value safe to keep: JSON parsed, forms parsed with secrets replaced."""
    if not body:
        return None
    if "application/x-www-form-urlencoded" in content_type:
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        return {key: (REDACTED if key in SECRET_FORM_FIELDS else value) for key, value in form.items()}
    try:
        return _without_passwords(json.loads(body.decode("utf-8")))
    except (UnicodeDecodeError, ValueError):
        return None


def _without_passwords(value: Any) -> Any:
    """A JSON body with every `password` (a new user's `passwordProfile`) replaced."""
    if isinstance(value, dict):
        return {k: REDACTED if k == "password" else _without_passwords(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_passwords(v) for v in value]
    return value


class JsonLinesSink:
    """Appends each record to a file as one JSON line as it happens, so an interrupted run keeps its log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: LoggedRequest) -> None:
        line = json.dumps(record.to_json(), sort_keys=True)
        with self._lock:
            self._file.write(line + "\n")
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


def write_jsonl(records: list[LoggedRequest], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.to_json(), sort_keys=True) + "\n")
