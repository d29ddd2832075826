"""What happened to each change of a plan, and how to read a Graph error while applying it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from smartsync.engine.plan import Change
from smartsync.engine.state import UserRef
from smartsync.graph import GraphError, GraphOutcomeUnknown, GraphRequest, GraphThrottled, GraphUnavailable


@dataclass
class Outcome:
    """What happened to one change; `users` holds a per-user result where requests were per user."""

    change: Change
    result: str = "ok"  # ok | failed | skipped
    error: str | None = None
    object_id: str | None = None
    users: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    # Graph refused it for lack of permission (401/403): the run stops writing and exits 3.
    denied: bool = False
    # Users whose failure may hide a success (transient error after the request went out).
    uncertain: set[str] = field(default_factory=set)
    # The whole change failed in a way that may hide a success (its intent stays open: engine/intents.py).
    maybe_done: bool = False

    def fail(self, error: str | GraphError) -> None:
        self.result = "failed"
        self.error = str(error)
        if isinstance(error, GraphError) and error.status in (401, 403):
            self.denied = True
        if isinstance(error, GraphError) and transient(error):
            self.maybe_done = True

    def fail_user(self, user: UserRef, error: GraphError) -> None:
        self.users[user.id] = ("failed", str(error))
        if error.status in (401, 403):
            self.denied = True
        if transient(error):
            self.uncertain.add(user.id)


@dataclass(frozen=True)
class Call:
    """One Graph request and the change (and user) it serves."""

    outcome: Outcome
    request: GraphRequest
    user: UserRef | None = None
    # How its answer is read: create | team | archive | delete | bulk | "" (a plain write).
    purpose: str = ""
    # For a PATCH that adds owners and members: each reference with the change it serves.
    parts: tuple[tuple[Outcome, str, UserRef], ...] = ()


Recorder = Callable[[Outcome], None]
Progress = Callable[[str, int, int], None]


class Intents(Protocol):
    """Journals each slice's intent before it is sent and closes it after (`engine.intents.IntentLog`)."""

    def before(self, changes: list[Change]) -> str: ...
    def after(self, slice_id: str, outcomes: list[Outcome]) -> None: ...


def transient(error: GraphError) -> bool:
    """An error after which the request may or may not have been applied."""
    return isinstance(error, GraphOutcomeUnknown | GraphUnavailable | GraphThrottled) or not error.status


def refused_request(error: GraphError) -> bool:
    """A 4xx that is about the request's content (not auth, not throttling)."""
    return error.status is not None and 400 <= error.status < 500 and error.status not in (401, 403, 429)


def header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None
