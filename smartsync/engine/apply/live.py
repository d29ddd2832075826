"""Applying against the live service: answers the reference pages do not mention, and what they mean.

`LiveAnswers` is the part of the `Applier` (`runner`) that sends each slice's requests and reads an
error before it becomes a failure:

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

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from smartsync.engine.apply.outcome import Call, Outcome
from smartsync.engine.apply.policy import ApplyPolicy
from smartsync.engine.apply.requests import Requests, unique
from smartsync.engine.deleted import DELETED_GROUPS
from smartsync.engine.state import UserRef
from smartsync.graph import GraphClient, GraphError, GraphRequest, GraphResult
from smartsync.graph.consistency import (
    ReplicationWait,
    named_id,
    not_there,
    refusal,
    replicating,
    team_not_ready,
)

_GUESTS = "refuses guests by policy"
TEAMS = "(teams)"  # what team creations for new groups wait on together


class LiveAnswers:
    """Mixed into `Applier`; the attributes below are the Applier's."""

    client: GraphClient
    requests: Requests
    policy: ApplyPolicy
    sleep: Callable[[float], None]
    progress: Callable[[str, int, int], None] | None
    replication: ReplicationWait
    created: dict[str, int]  # objects this run created, numbered in the order they were made
    warnings: list[str]
    lagging: list[tuple[Call, GraphResult]]
    seen: set[str]  # new objects that answered as existing
    archiving: list[tuple[Call, str | None]]  # archives Teams accepted, to be confirmed

    def _settle(self, call: Call, result: GraphResult, *, final: bool = False) -> list[Call]:
        raise NotImplementedError  # the Applier's

    # -- the wait ------------------------------------------------------------------------------------

    def send(self, calls: list[Call], *, final: bool = False) -> list[Call]:
        """Send `calls`; return the follow-ups.

        While Entra is still replicating what this run created, every request naming a new object is
        refused. So requests naming new objects not yet seen to answer wait on one probe: a request
        naming the oldest of them (objects replicate in the order they were made), and team creations
        on one team creation. If the probe gets through, the rest go in the next round (any still
        refused then wait on their own); if not, they wait with it, and the run pays one refused write
        instead of one per request.
        """
        keys = {id(call): self._young(call) for call in calls}
        young = [k for k in keys.values() if k is not None and k != TEAMS]
        oldest = min(young, key=self.created.__getitem__) if young else None
        probes: list[Call] = []
        held: list[tuple[Call, str]] = []
        probing: set[str] = set()
        for call in calls:
            key = keys[id(call)]
            if key is None:
                probes.append(call)
            elif key not in probing and key in (TEAMS, oldest):
                probes.append(call)
                probing.add(key)
            else:
                held.append((call, key if key == TEAMS else str(oldest)))
        results = self.client.batch([c.request for c in probes]) if probes else []
        retry: list[Call] = []
        answers: dict[str, GraphResult] = {}
        for call, result in zip(probes, results, strict=True):
            key = keys[id(call)]
            if key is not None and key in probing:
                answers[key] = result
                error = result.error
                if key == TEAMS and (error is None or not team_not_ready(error)):
                    self.seen.add(TEAMS)
                elif key != TEAMS and (error is None or not replicating(error, key, self.created)):
                    # The others were made moments after it: send them all, and wait only for any refused.
                    rank = max(self.created[k] for k in young)
                    self.seen.update(t for t, n in self.created.items() if n <= rank)
            retry.extend(self._settle(call, result, final=final))
        for call, key in held:
            if key in self.seen:
                retry.append(call)
            elif key == TEAMS:  # Teams does not know the new groups yet: the team wait retries them
                call.outcome.result, call.outcome.error = "pending", str(answers[key].error)
            else:
                self.lagging.append((call, answers[key]))
        return retry

    def _young(self, call: Call) -> str | None:
        """What a call waits on: a new object not yet seen, or Teams ("teams") for any new group."""
        target = call.outcome.object_id
        if call.purpose == "create" or target is None or target not in self.created:
            return None
        if call.purpose == "team":
            return None if TEAMS in self.seen else TEAMS
        if self.replication.exhausted:
            return None
        return target if target not in self.seen else None

    def confirm_archives(self) -> list[Call]:
        """Poll accepted archives' operations, then read `isArchived` from `GET /teams/{id}`.

        (`/joinedTeams` is reported to lie about it.) Returns the renames of the teams now archived;
        the others are left for the next run, which sees them unrenamed and archives them again.
        """
        waiting, self.archiving = self.archiving, []
        polling = [(call, location) for call, location in waiting if location]
        deadline = time.monotonic() + self.policy.team_poll_timeout
        while polling and time.monotonic() < deadline:
            self.sleep(self.policy.team_poll_seconds)
            answers = self.client.batch(
                [GraphRequest("GET", location) for _, location in polling if location]
            )
            still = []
            for (call, location), answer in zip(polling, answers, strict=True):
                status = str((answer.body or {}).get("status") or "") if answer.error is None else ""
                if status == "failed":
                    call.outcome.fail(
                        "Teams could not archive the team (its operation failed); the next run tries again"
                    )
                elif status not in ("succeeded", "") and answer.error is None:
                    still.append((call, location))
            polling = still
        asking = [call for call, _ in waiting if call.outcome.result == "ok"]
        teams = self.client.batch([GraphRequest("GET", f"/teams/{c.outcome.object_id}") for c in asking])
        renames: list[Call] = []
        for call, team in zip(asking, teams, strict=True):
            outcome = call.outcome
            if team.error is None and isinstance(team.body, dict) and team.body.get("isArchived") is True:
                rename = GraphRequest(
                    "PATCH", f"/groups/{outcome.object_id}", dict(outcome.change.set_fields)
                )
                renames.append(replace(call, request=rename, purpose=""))
            elif team.error is not None:
                outcome.fail(f"the archive was accepted but the team could not be read back: {team.error}")
            else:
                outcome.result = "skipped"
                outcome.error = (
                    "pending: Teams has not finished archiving the team; the next run checks again"
                )
        return renames

    def note_created(self, object_id: str | None) -> None:
        if object_id:
            self.created.setdefault(object_id, len(self.created))

    def follow_up(self, retry: list[Call], rounds: int) -> None:
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
                if pause is None:  # the budget is spent: one last try each, and what fails fails
                    retry = self.send([call for call, _ in lagging], final=True)
                    continue
                if self.progress is not None:
                    self.progress(
                        "Waiting for Entra to replicate new objects",
                        int(self.replication.waited),
                        max(1, int(self.replication.budget_seconds)),
                    )
                self.sleep(pause)
                sending = [call for call, _ in lagging]
            retry = self.send(sending, final=final)

    # -- reading one error ---------------------------------------------------------------------------

    def held_back(self, call: Call, result: GraphResult) -> list[Call] | None:
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

    def _single(self, call: Call, error: GraphError) -> list[Call] | None:
        user = call.user
        assert user is not None
        adding = call.request.method == "POST"
        if adding and not_there(error) and named_id(error) == self.requests.user_id(user.id):
            self._gone(call.outcome, user)
            return []
        reason = refusal(error)
        if reason is not None:
            self._refused(call.outcome, user, reason)
            return []
        return None

    def _bulk(self, call: Call, error: GraphError) -> list[Call] | None:
        named = named_id(error)
        gone = (
            [part for part in call.parts if self.requests.user_id(part[2].id) == named]
            if not_there(error)
            else []
        )
        if gone:
            for outcome, _, user in gone:
                self._gone(outcome, user)
            rest = tuple(part for part in call.parts if self.requests.user_id(part[2].id) != named)
            return [self._rebound(call, rest)] if rest else []
        reason = refusal(error)
        if reason is None or reason == _GUESTS:
            return None  # the Applier splits the PATCH into one request per person and asks again
        for outcome, _, user in call.parts:
            self._refused(outcome, user, reason)
        return []

    def _create(self, call: Call, error: GraphError) -> list[Call] | None:
        """A creation naming a user that is gone: create the group without that user."""
        if error.status == 400 and "mailnickname already exists" in error.message.lower():
            return self._nickname_taken(call)
        named = named_id(error)
        body = call.request.body if isinstance(call.request.body, dict) else None
        if named is None or body is None or not not_there(error):
            return None
        ref = f"{self.requests.directory_objects}/{named}"
        change = call.outcome.change
        people = [u for u in (*change.owners, *change.users) if self.requests.user_id(u.id) == named]
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

    def _nickname_taken(self, call: Call) -> list[Call]:
        """A Microsoft 365 nickname in use: find out by what, and say so."""
        outcome = call.outcome
        spec = outcome.change.group
        nick = spec.mail_nickname if spec is not None else ""
        query = {"$filter": f"mailNickname eq '{nick}'", "$select": "id,displayName,mailNickname"}
        try:
            live = self.client.get_all("/groups", query)
            deleted = [
                r
                for r in self.client.get_all(DELETED_GROUPS, {"$select": "id,displayName,mailNickname"})
                if str(r.get("mailNickname") or "").lower() == nick.lower()
            ]
        except GraphError as exc:
            return self._skip_create(outcome, nick, f"an object smartsync could not look up ({exc})")
        if live:
            # Our own creation, applied although its answer said otherwise (a throttled or lost
            # request that went through): the group is there, which is what was wanted.
            outcome.object_id = str(live[0]["id"])
            self.note_created(outcome.object_id)
            return []
        if deleted:
            found = deleted[0]
            holder = (
                f"the deleted group '{found.get('displayName')}' ({found.get('id')}), deleted after this "
                "run planned; the next run restores or replaces it"
            )
        else:
            holder = "an object that is not a group (a mailbox, contact or user alias)"
        return self._skip_create(outcome, nick, holder)

    def _skip_create(self, outcome: Outcome, nick: str, holder: str) -> list[Call]:
        message = (
            f"Group '{outcome.change.name}' ({outcome.change.key}) was not created: its mail nickname "
            f"'{nick}' is taken by {holder}"
        )
        outcome.result, outcome.error = "skipped", message
        self.warnings.append(message)
        return []

    def _rebound(self, call: Call, parts: tuple[tuple[Outcome, str, UserRef], ...]) -> Call:
        body: dict[str, Any] = {}
        for rel in ("owners", "members"):
            bound = unique([self.requests.ref(user) for _, part_rel, user in parts if part_rel == rel])
            if bound:
                body[f"{rel}@odata.bind"] = bound
        return replace(call, outcome=parts[0][0], parts=parts, request=replace(call.request, body=body))


__all__ = ["LiveAnswers"]
