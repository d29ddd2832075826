"""The applier: a plan's changes in phases, each phase in slices, each slice in `$batch` round trips.

A slice is about `SLICE_REQUESTS` requests, never splitting one object, and its outcomes reach the
journal as soon as it is done. Within a slice the first round sends every request; follow-up rounds
send what the answers called for (one reference at a time after a refused PATCH, a creation looked
up and sent again after a lost answer, the rename after an archive). A permission refusal stops
writing: every later change is recorded as not attempted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from smartsync.engine.apply.accounts import AccountWrites
from smartsync.engine.apply.live import LiveAnswers
from smartsync.engine.apply.lookups import education_refused, settle_create
from smartsync.engine.apply.memberships import (
    bulk_additions,
    owners_refused,
    settle_bulk,
    settle_teams,
    teams_calls,
    verify_uncertain,
)
from smartsync.engine.apply.outcome import Call, Intents, Outcome, Progress, Recorder, header
from smartsync.engine.apply.policy import ApplyPolicy
from smartsync.engine.apply.requests import ADDITIONS, Requests
from smartsync.engine.apply.teams import Teams
from smartsync.engine.plan import REFS_PER_REQUEST, Change
from smartsync.engine.team_members import TeamsMembership
from smartsync.graph import GraphClient, GraphError, GraphResult
from smartsync.graph.consistency import ReplicationWait

# Follow-up requests get this many rounds per slice. A creation answered 503/504 or cut off is
# looked up and sent again once per round; at a 20 % fault rate three rounds still left about one
# creation in a hundred failed, six leave one in thousands.
FOLLOW_UP_ROUNDS = 6

# A phase goes out in slices of about this many requests: each slice's outcomes reach the journal
# as soon as it is done, so a crash loses the record of at most one slice's worth of changes.
SLICE_REQUESTS = 100

PHASES: tuple[frozenset[str], ...] = (
    # Accounts first (sync.users), so the groups and units made after them can hold them.
    frozenset({"user.create", "user.update", "user.enable"}),
    # Soft-deleted managed groups restored, or purged to be made again (`engine.deleted`).
    frozenset({"group.restore", "group.purge"}),
    frozenset({"group.create", "admin_unit.create"}),
    frozenset(
        {
            "group.update",
            "admin_unit.update",
            "group.owners.add",
            "group.members.add",
            "admin_unit.members.add",
        }
    ),
    frozenset({"group.owners.remove", "group.members.remove", "admin_unit.members.remove"}),
    frozenset(
        {"group.delete", "admin_unit.delete", "team.create", "team.archive", "user.disable", "user.delete"}
    ),
)

CREATIONS = ("group.create", "admin_unit.create", "user.create")


class Applier(LiveAnswers):
    def __init__(
        self,
        client: GraphClient,
        graph_url: str,
        *,
        policy: ApplyPolicy | None = None,
        record: Recorder | None = None,
        progress: Progress | None = None,
        sleep: Callable[[float], None] = time.sleep,
        on_refusal: Callable[[str, str], None] | None = None,
        accounts: AccountWrites | None = None,
        team_members: TeamsMembership | None = None,
        intents: Intents | None = None,
        replication: ReplicationWait | None = None,
        team_replication: ReplicationWait | None = None,
    ) -> None:
        self.client = client
        self.sleep = sleep
        # Waiting for Entra to replicate what this run created (`live`).
        self.replication = replication or ReplicationWait(0.0)
        self.created: dict[str, int] = {}
        self.warnings: list[str] = []
        self.lagging: list[tuple[Call, GraphResult]] = []
        self.seen: set[str] = set()
        self.archiving: list[tuple[Call, str | None]] = []
        # Groups whose membership changes go through Teams' own API (`engine.team_members`).
        self.team_members = team_members
        self.intents = intents
        self.ids: dict[str, str] = {}
        self.accounts = accounts or AccountWrites(None)
        self.requests = Requests(graph_url, self.ids, self.accounts)
        policy = policy or ApplyPolicy()
        self.policy = policy
        self.teams = Teams(
            client, self.requests, policy, sleep, team_replication or ReplicationWait(0.0), progress
        )
        # Starts as the policy says; turned off for the rest of the run when Graph refuses owners in a
        # PATCH. `on_refusal(check, Graph's answer)` records such a refusal for later runs.
        self.owners_in_patch = policy.owners_in_patch
        self.on_refusal = on_refusal
        self.record = record
        self.progress = progress
        self.failed_keys: set[str] = set()
        self.done = 0
        self.total = 0

    def apply(self, changes: Iterable[Change]) -> list[Outcome]:
        changes = list(changes)
        self.total = len(changes)
        for change in changes:
            if change.object_id:
                self.ids[change.key] = change.object_id
        outcomes: list[Outcome] = []
        for phase in PHASES:
            todo = [c for c in changes if c.op in phase]
            if not todo:
                continue
            if any(o.denied for o in outcomes):
                outcomes.extend(self._not_attempted(todo))
            else:
                outcomes.extend(self._run_phase(todo))
        order = {id(c): i for i, c in enumerate(changes)}
        return sorted(outcomes, key=lambda o: order[id(o.change)])

    def _not_attempted(self, changes: list[Change]) -> list[Outcome]:
        outcomes = []
        for change in changes:
            outcome = Outcome(
                change,
                "skipped",
                "not attempted: Graph refused an earlier change for lack of "
                "permission; run `smartsync check-credentials`",
            )
            outcomes.append(outcome)
            self._finish(outcome)
        return outcomes

    def _run_phase(self, changes: list[Change]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        teams: list[Outcome] = []
        held: list[tuple[str, list[Outcome]]] = []  # intents closed once their teams are finished
        for part in slices(changes):
            if any(o.denied for o in outcomes):
                outcomes.extend(self._not_attempted(part))
                continue
            # The intent reaches the journal before anything is sent, so a crash leaves no hole.
            intent = self.intents.before(part) if self.intents is not None else None
            done = self._run_slice(part)
            outcomes.extend(done)
            for outcome in done:
                if outcome.change.op == "team.create":
                    teams.append(outcome)  # finished once provisioning is known, below
                else:
                    self._finish(outcome)
            if intent is not None and self.intents is not None:
                if any(o.change.op == "team.create" for o in done):
                    held.append((intent, done))
                else:
                    self.intents.after(intent, done)
        self.teams.finish(teams)
        for outcome in teams:
            self._finish(outcome)
        for intent, done in held:
            assert self.intents is not None
            self.intents.after(intent, done)
        return outcomes

    def _run_slice(self, changes: list[Change]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        calls: list[Call] = []
        additions: dict[str, list[Outcome]] = {}
        via_teams: dict[str, list[Outcome]] = {}
        for change in changes:
            outcome = Outcome(change)
            outcomes.append(outcome)
            object_id = self.ids.get(change.key)
            if change.op not in CREATIONS and object_id is None:
                reason = (
                    "its group was not created" if change.key in self.failed_keys else "object id unknown"
                )
                outcome.result, outcome.error = "skipped", f"skipped: {reason}; the next run retries"
                continue
            outcome.object_id = object_id
            if self.team_members is not None and self.team_members.takes(change.op, object_id):
                via_teams.setdefault(str(object_id), []).append(outcome)
                continue
            if change.op in ADDITIONS and object_id is not None:
                additions.setdefault(object_id, []).append(outcome)
                continue
            calls.extend(self.requests.calls(change, outcome, object_id))
        for object_id, added in additions.items():
            calls.extend(
                bulk_additions(self.requests, object_id, added, owners_in_patch=self.owners_in_patch)
            )
        removals = self.team_members is not None and self.team_members.removals
        for object_id, routed in via_teams.items():
            calls.extend(teams_calls(self.requests, object_id, routed, removals=removals))
        # Requests naming objects still replicating wait on a probe; follow-ups go in later rounds.
        self.follow_up(self.send(calls), FOLLOW_UP_ROUNDS)
        if self.archiving:
            self.follow_up(self.confirm_archives(), FOLLOW_UP_ROUNDS)
        verify_uncertain(self.client, self.requests, outcomes)
        return outcomes

    def _settle(self, call: Call, result: GraphResult, *, final: bool = False) -> list[Call]:
        """Record one request's result; return follow-up requests to send, if any."""
        outcome, error = call.outcome, result.error
        held = self.held_back(call, result)
        if held is not None:
            return held
        if call.purpose == "create":
            if error is not None and education_refused(error, call):
                self._learned("education_class.create", error)
            follow = settle_create(self.client, call, result, final=final)
            self.note_created(outcome.object_id)  # it replicates: later requests naming it may wait
            return follow
        if call.purpose == "team":
            return self.teams.settle_team(call, result)
        if call.purpose == "restore":
            if error is None:
                self.note_created(outcome.object_id)  # a restored group replicates like a new one
            else:
                outcome.fail(error)
            return []
        if call.purpose == "archive":
            if error is not None:
                outcome.fail(error)
            else:
                # Marked archived (renamed) only once Teams archived it: see `confirm_archives`.
                self.archiving.append((call, header(result.headers, "location")))
            return []
        if call.purpose == "bulk":
            if error is not None and owners_refused(error, call) and self.owners_in_patch:
                self.owners_in_patch = False  # later PATCHes of this run carry members only
                self._learned("group.patch_owners_members", error)
            return settle_bulk(self.requests, call, error, final=final)
        if call.purpose == "teams":
            return settle_teams(self.requests, call, result, final=final)
        if call.purpose == "delete":
            if error is not None and error.status != 404:
                outcome.fail(error)
            return []
        if call.user is not None:
            if error is None:
                outcome.users[call.user.id] = ("ok", None)
            else:
                outcome.fail_user(call.user, error)
            return []
        if error is not None:
            outcome.fail(error)
        return []

    def _learned(self, check: str, error: GraphError) -> None:
        if self.on_refusal is not None:
            self.on_refusal(check, f"{error.status} {error.message}")

    def _finish(self, outcome: Outcome) -> None:
        if outcome.users and outcome.result == "ok":
            failures = [err for res, err in outcome.users.values() if res == "failed"]
            if failures:
                outcome.fail(f"{len(failures)} of {len(outcome.users)} failed: {failures[0]}")
        if outcome.result != "ok" and outcome.change.op in CREATIONS:
            self.failed_keys.add(outcome.change.key)
        if outcome.object_id:
            self.ids[outcome.change.key] = outcome.object_id
        if outcome.change.op == "user.create":
            # The password goes to the hand-out file once the account exists, and leaves memory.
            if outcome.result == "ok" and outcome.object_id:
                self.accounts.created(outcome.change)
                self.accounts.flush()
            else:
                self.accounts.forget(outcome.change)
        self.done += 1
        if self.record is not None:
            self.record(outcome)
        if self.progress is not None:
            self.progress("Applying changes", self.done, self.total)


def slices(changes: list[Change]) -> list[list[Change]]:
    """A phase's changes in slices of about SLICE_REQUESTS requests, never splitting one object."""
    by_key: dict[str, list[Change]] = {}
    for change in changes:
        by_key.setdefault(change.key, []).append(change)
    parts: list[list[Change]] = [[]]
    size = 0
    for group in by_key.values():
        if size >= SLICE_REQUESTS:
            parts.append([])
            size = 0
        parts[-1].extend(group)
        size += sum(_requests(c) for c in group)
    return [part for part in parts if part]


def _requests(change: Change) -> int:
    """About how many requests a change needs (for slicing only)."""
    if change.op in ADDITIONS:
        return -(-len(change.users) // REFS_PER_REQUEST)
    if change.op.endswith((".remove", "admin_unit.members.add")):
        return len(change.users)
    return 1
