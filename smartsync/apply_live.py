"""Applying against the live service: answers the reference pages do not mention, and what they mean.

`LiveAnswers` is the part of the `Applier` that reads an error before it becomes a failure:

- about an object this run created, "does not exist" is Entra still replicating it: the request is
  put aside and sent again after a pause, pauses growing, within the run's budget
  (`sync.replication`); progress shows the wait;
- naming a user, "does not exist" means that user is gone: the user is left out with a warning and
  the rest of the request goes again;
- a group Graph will never let the app write (mail-enabled, on-premises synced, dynamic), a guest
  refused by policy, or the 100-owner cap: a warning naming the group and the person, never a
  failure and never a retry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from smartsync.graph import GraphClient, GraphError, GraphResult
from smartsync.graph.consistency import ReplicationWait, named_id, not_there, refusal, replicating

if TYPE_CHECKING:
    from smartsync.apply import Outcome, _Call
    from smartsync.state import UserRef

_GUESTS = "refuses guests by policy"


class LiveAnswers:
    """Mixed into `Applier`; the attributes below are the Applier's."""

    client: GraphClient
    sleep: Callable[[float], None]
    progress: Callable[[str, int, int], None] | None
    directory_objects: str
    replication: ReplicationWait
    created: set[str]
    warnings: list[str]
    lagging: list[tuple[_Call, GraphResult]]

    def _settle(self, call: _Call, result: GraphResult, *, final: bool = False) -> list[_Call]:
        raise NotImplementedError  # the Applier's

    # -- the wait ------------------------------------------------------------------------------------

    def follow_up(self, retry: list[_Call], rounds: int) -> None:
        """Send follow-ups (at most `rounds` rounds) and, in between, what waits for replication."""
        sent = 0
        self.replication.restart()
        while retry or self.lagging:
            final = False
            if retry:
                sent += 1
                final = sent >= rounds
                sending = retry
            else:
                pause = self.replication.next_pause()
                lagging, self.lagging = self.lagging, []
                if pause is None:
                    for call, result in lagging:  # the budget is spent: these fail as answered
                        self._settle(call, result, final=True)
                    return
                if self.progress is not None:
                    self.progress(
                        "Waiting for Entra to replicate new objects",
                        int(self.replication.waited),
                        max(1, int(self.replication.budget_seconds)),
                    )
                self.sleep(pause)
                sending = [call for call, _ in lagging]
            results = self.client.batch([c.request for c in sending])
            retry = [
                f
                for call, result in zip(sending, results, strict=True)
                for f in self._settle(call, result, final=final)
            ]

    # -- reading one error ---------------------------------------------------------------------------

    def held_back(self, call: _Call, result: GraphResult) -> list[_Call] | None:
        """Follow-ups for an answer the live service explains, or None to settle it as usual."""
        error = result.error
        if error is None or call.purpose in ("team", "delete"):
            return None
        target = call.outcome.object_id if call.purpose != "create" else None
        if not self.replication.exhausted and replicating(error, target, self.created):
            self.lagging.append((call, result))
            return []
        if call.parts:
            return self._bulk(call, error)
        if call.user is not None:
            return self._single(call, error)
        if call.purpose == "create":
            return self._create(call, error)
        reason = refusal(error)
        if reason is not None:
            outcome = call.outcome
            message = (
                f"Group '{outcome.change.name}' ({outcome.change.key}) {reason}: smartsync leaves it as it is"
            )
            outcome.result, outcome.error = "skipped", message
            self.warnings.append(message)
            return []
        return None

    def _gone(self, outcome: Outcome, user: UserRef) -> None:
        message = (
            f"{user.address} no longer exists in Entra (Graph: the reference does not exist); left out of "
            f"'{outcome.change.name}', the rest went ahead"
        )
        outcome.users[user.id] = ("skipped", message)
        self.warnings.append(message)

    def _refused(self, outcome: Outcome, user: UserRef, reason: str) -> None:
        message = (
            f"Group '{outcome.change.name}' ({outcome.change.key}) {reason}: {user.address} was not changed"
        )
        outcome.users[user.id] = ("skipped", message)
        self.warnings.append(message)

    def _single(self, call: _Call, error: GraphError) -> list[_Call] | None:
        user = call.user
        assert user is not None
        adding = call.request.method == "POST"
        if adding and not_there(error) and named_id(error) == user.id:
            self._gone(call.outcome, user)
            return []
        reason = refusal(error)
        if reason is not None:
            self._refused(call.outcome, user, reason)
            return []
        return None

    def _bulk(self, call: _Call, error: GraphError) -> list[_Call] | None:
        named = named_id(error)
        gone = [part for part in call.parts if part[2].id == named] if not_there(error) else []
        if gone:
            for outcome, _, user in gone:
                self._gone(outcome, user)
            rest = tuple(part for part in call.parts if part[2].id != named)
            return [self._rebound(call, rest)] if rest else []
        reason = refusal(error)
        if reason is None or reason == _GUESTS:
            return None  # the Applier splits the PATCH into one request per person and asks again
        for outcome, _, user in call.parts:
            self._refused(outcome, user, reason)
        return []

    def _create(self, call: _Call, error: GraphError) -> list[_Call] | None:
        """A creation naming a user that is gone: create the group without that user."""
        named = named_id(error)
        body = call.request.body if isinstance(call.request.body, dict) else None
        if named is None or body is None or not not_there(error):
            return None
        ref = f"{self.directory_objects}/{named}"
        change = call.outcome.change
        people = [u for u in (*change.owners, *change.users) if u.id == named]
        if not people:
            return None
        trimmed: dict[str, Any] = {}
        for key, value in body.items():
            if key.endswith("@odata.bind") and isinstance(value, list):
                value = [v for v in value if v != ref]
                if not value:
                    continue
            trimmed[key] = value
        self._gone(call.outcome, people[0])
        return [replace(call, request=replace(call.request, body=trimmed))]

    def _rebound(self, call: _Call, parts: tuple[tuple[Outcome, str, UserRef], ...]) -> _Call:
        body: dict[str, Any] = {}
        for rel in ("owners", "members"):
            bound = [f"{self.directory_objects}/{user.id}" for _, part_rel, user in parts if part_rel == rel]
            if bound:
                body[f"{rel}@odata.bind"] = bound
        return replace(call, outcome=parts[0][0], parts=parts, request=replace(call.request, body=body))


def unique(refs: list[str]) -> list[str]:
    """A bind list with each object once: Graph refuses a list naming one object twice."""
    return list(dict.fromkeys(refs))


__all__ = ["LiveAnswers", "unique"]
