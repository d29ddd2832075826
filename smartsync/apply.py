"""Apply a plan through the Graph client, recording the outcome of every change.

Changes run in four phases so that Graph's ordering rules hold: creations; renames and additions
(owners before members); removals; deletions. Within a phase every request goes out in `$batch`
round trips of 20. A failed change does not stop the run: it is recorded, later changes that depend
on it are skipped, and the next run picks it up. Two rules make reruns safe: a creation whose
response was lost is looked up by its marker before anything is created again, and a bulk addition
Graph refuses (one member already there, one user gone) is retried one reference at a time, where
"already there" counts as done. What the live service answers beyond the reference pages (objects
still replicating, users gone meanwhile, groups the app may not write) is read by `apply_live.py`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from smartsync.apply_live import LiveAnswers, unique
from smartsync.graph import (
    GraphClient,
    GraphError,
    GraphOutcomeUnknown,
    GraphRequest,
    GraphResult,
    GraphThrottled,
    GraphUnavailable,
)
from smartsync.graph.consistency import ReplicationWait, team_not_ready
from smartsync.naming import au_description, group_description
from smartsync.plan import REFS_PER_REQUEST, Change
from smartsync.state import UserRef

# Follow-up requests (one reference at a time after a refused bulk add, a creation looked up and
# sent again after a lost answer, the rename after an archive) get this many rounds per phase. A
# creation answered 503/504 or cut off is looked up and sent again once per round; at a 20 % fault
# rate three rounds still left about one creation in a hundred failed, six leave one in thousands.
FOLLOW_UP_ROUNDS = 6

# A phase goes out in slices of about this many requests: each slice's outcomes reach the journal
# as soon as it is done, so a crash loses the record of at most one slice's worth of changes.
SLICE_REQUESTS = 100

# Membership changes whose failure may hide a success (the answer was lost, or retries ran out after
# Graph applied it) are checked against the object's list before they are reported failed.
MEMBERSHIP_LISTS = {
    "group.members.add": "members",
    "group.members.remove": "members",
    "group.owners.add": "owners",
    "group.owners.remove": "owners",
    "admin_unit.members.add": "members",
    "admin_unit.members.remove": "members",
}

# The relationship each addition binds; additions to one group share PATCHes (`_bulk_additions`).
ADDITIONS = {"group.owners.add": "owners", "group.members.add": "members"}

PHASES: tuple[frozenset[str], ...] = (
    frozenset({"group.restore", "group.purge"}),  # soft-deleted groups (deleted.py), before creations
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
    frozenset({"group.delete", "admin_unit.delete", "team.create", "team.archive"}),
)


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

    def fail(self, error: str | GraphError) -> None:
        self.result = "failed"
        self.error = str(error)
        if isinstance(error, GraphError) and error.status in (401, 403):
            self.denied = True

    def fail_user(self, user: UserRef, error: GraphError) -> None:
        self.users[user.id] = ("failed", str(error))
        if error.status in (401, 403):
            self.denied = True
        if _transient(error):
            self.uncertain.add(user.id)


@dataclass(frozen=True)
class _Call:
    """One Graph request and the change (and user) it serves."""

    outcome: Outcome
    request: GraphRequest
    user: UserRef | None = None
    purpose: str = ""
    # For a PATCH that adds owners and members: each reference with the change it serves.
    parts: tuple[tuple[Outcome, str, UserRef], ...] = ()


Recorder = Callable[[Outcome], None]
Progress = Callable[[str, int, int], None]


class Applier(LiveAnswers):
    def __init__(
        self,
        client: GraphClient,
        graph_url: str,
        *,
        welcome_email: bool = False,
        hide_from_outlook: bool = True,
        record: Recorder | None = None,
        progress: Progress | None = None,
        team_retries: int = 3,
        team_retry_seconds: float = 10.0,
        team_poll_seconds: float = 5.0,
        team_poll_timeout: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        replication: ReplicationWait | None = None,
        team_replication: ReplicationWait | None = None,
    ) -> None:
        self.client = client
        # Waiting for Entra to replicate what this run created (apply_live.py).
        self.replication = replication or ReplicationWait(0.0)
        self.team_replication = team_replication or ReplicationWait(0.0)
        self.created: dict[str, int] = {}
        self.warnings: list[str] = []
        self.lagging: list[tuple[_Call, GraphResult]] = []
        self.seen: set[str] = set()
        self.archiving: list[tuple[_Call, str | None]] = []
        self.graph_v1 = f"{graph_url.rstrip('/')}/v1.0"
        self.directory_objects = f"{self.graph_v1}/directoryObjects"
        self.team_retries = team_retries
        self.team_retry_seconds = team_retry_seconds
        self.team_poll_seconds = team_poll_seconds
        self.team_poll_timeout = team_poll_timeout
        self.sleep = sleep
        self.operations: dict[int, str] = {}  # id(outcome) -> teamsAsyncOperation path to poll
        self.welcome_email = welcome_email
        self.hide_from_outlook = hide_from_outlook
        self.record = record
        self.progress = progress
        self.ids: dict[str, str] = {}
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

    # -- phases -------------------------------------------------------------------------------------

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
        for part in _slices(changes):
            if any(o.denied for o in outcomes):
                outcomes.extend(self._not_attempted(part))
                continue
            done = self._run_slice(part)
            outcomes.extend(done)
            for outcome in done:
                if outcome.change.op == "team.create":
                    teams.append(outcome)  # finished once provisioning is known, below
                else:
                    self._finish(outcome)
        self._retry_new_teams(teams)
        self._wait_for_teams(teams)
        for outcome in teams:
            self._finish(outcome)
        return outcomes

    def _run_slice(self, changes: list[Change]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        calls: list[_Call] = []
        additions: dict[str, list[Outcome]] = {}
        for change in changes:
            outcome = Outcome(change)
            outcomes.append(outcome)
            object_id = self.ids.get(change.key)
            if change.op not in ("group.create", "admin_unit.create") and object_id is None:
                reason = (
                    "its group was not created" if change.key in self.failed_keys else "object id unknown"
                )
                outcome.result, outcome.error = "skipped", f"skipped: {reason}; the next run retries"
                continue
            outcome.object_id = object_id
            if change.op in ADDITIONS and object_id is not None:
                additions.setdefault(object_id, []).append(outcome)
                continue
            calls.extend(self._calls(change, outcome, object_id))
        for object_id, added in additions.items():
            calls.extend(self._bulk_additions(object_id, added))
        self.follow_up(self.send(calls), FOLLOW_UP_ROUNDS)
        if self.archiving:
            self.follow_up(self.confirm_archives(), FOLLOW_UP_ROUNDS)
        self._verify_uncertain(outcomes)
        return outcomes

    def _verify_uncertain(self, outcomes: list[Outcome]) -> None:
        """Look up membership changes that failed in a way that may hide a success.

        When an answer was lost, or retries ran out after Graph had applied the request, the change
        may be made. Reading the object's list settles it, so the journal records what was done.
        """
        doubtful = [o for o in outcomes if o.uncertain and o.object_id and o.change.op in MEMBERSHIP_LISTS]
        if not doubtful:
            return
        paths = sorted({_list_path(o) for o in doubtful})
        params = "$select=id&$top=999"
        present: dict[str, set[str]] = {}
        results = self.client.batch([GraphRequest("GET", f"{path}?{params}") for path in paths])
        for path, result in zip(paths, results, strict=True):
            body = result.body if isinstance(result.body, dict) else {}
            try:
                if result.error is not None or body.get("@odata.nextLink"):
                    rows = self.client.get_all(path, {"$select": "id", "$top": "999"})
                else:
                    rows = body.get("value") or []
            except GraphError:
                continue  # still unknown: the failure stands and the next run compares again
            present[path] = {str(r.get("id")) for r in rows if isinstance(r, dict)}
        for outcome in doubtful:
            there = present.get(_list_path(outcome))
            if there is None:
                continue
            adding = outcome.change.op.endswith(".add")
            for user_id in outcome.uncertain:
                if (user_id in there) == adding:
                    outcome.users[user_id] = ("ok", None)

    def _retry_new_teams(self, outcomes: list[Outcome]) -> None:
        """Graph may answer 404 for up to 15 minutes after a group is created: retry, then leave it."""
        waiting = [o for o in outcomes if o.result == "pending"]
        attempt = 0
        while waiting:
            attempt += 1
            # The configured retries first, then growing pauses within the team budget.
            pause = (
                self.team_retry_seconds
                if attempt <= self.team_retries
                else self.team_replication.next_pause()
            )
            if pause is None:
                break
            if self.progress is not None and attempt > self.team_retries:
                budget = self.team_replication.budget_seconds
                self.progress(
                    "Waiting for new groups to reach Teams",
                    int(self.team_replication.waited),
                    max(1, int(budget)),
                )
            self.sleep(pause)
            # The oldest group first, alone: the others are sent once Teams took that one.
            self._send_teams(waiting[:1])
            if waiting[0].result != "pending":
                self._send_teams(waiting[1:])
            waiting = [o for o in waiting if o.result == "pending"]
        for outcome in waiting:
            outcome.result = "skipped"
            outcome.error = (
                "pending: Graph has not finished setting up the new group yet; the next run creates the team"
            )

    def _wait_for_teams(self, outcomes: list[Outcome]) -> None:
        """Poll accepted team creations (202 + Location) until Teams reports them done.

        A team shows up in the group's resourceProvisioningOptions only once provisioning finishes;
        waiting here keeps the next run from asking for the same team again.
        """
        waiting = [o for o in outcomes if id(o) in self.operations and o.result == "ok"]
        deadline = time.monotonic() + self.team_poll_timeout
        while waiting and time.monotonic() < deadline:
            self.sleep(self.team_poll_seconds)
            requests = [GraphRequest("GET", self.operations[id(o)]) for o in waiting]
            still: list[Outcome] = []
            for outcome, result in zip(waiting, self.client.batch(requests), strict=True):
                body = result.body if isinstance(result.body, dict) else {}
                status = str(body.get("status") or "")
                if result.error is not None and result.error.status != 404:
                    continue  # cannot tell; the team was accepted, the next run checks again
                if status == "failed":
                    error = body.get("error") or {}
                    outcome.fail(
                        f"Teams could not create the team: {error.get('message') or error or status}"
                    )
                elif status != "succeeded":
                    still.append(outcome)
            waiting = still

    def _finish(self, outcome: Outcome) -> None:
        if outcome.users and outcome.result == "ok":
            failures = [err for res, err in outcome.users.values() if res == "failed"]
            if failures:
                outcome.fail(f"{len(failures)} of {len(outcome.users)} failed: {failures[0]}")
        if outcome.result != "ok" and outcome.change.op in ("group.create", "admin_unit.create"):
            self.failed_keys.add(outcome.change.key)
        if outcome.object_id:
            self.ids[outcome.change.key] = outcome.object_id
        self.done += 1
        if self.record is not None:
            self.record(outcome)
        if self.progress is not None:
            self.progress("Applying changes", self.done, self.total)

    # -- requests per change ------------------------------------------------------------------------

    def _ref(self, user: UserRef) -> str:
        return f"{self.directory_objects}/{user.id}"

    def _calls(self, change: Change, outcome: Outcome, oid: str | None) -> list[_Call]:
        op = change.op
        if op == "group.create" and change.group is not None and change.group.education_class:
            req = GraphRequest("POST", "/education/classes", self._class_body(change))
            return [_Call(outcome, req, purpose="create")]
        if op == "group.create":
            return [
                _Call(outcome, GraphRequest("POST", "/groups", self._group_body(change)), purpose="create")
            ]
        if op == "team.create":
            if change.template == "educationClass":
                team_body = {
                    "template@odata.bind": f"{self.graph_v1}/teamsTemplates('educationClass')",
                    "group@odata.bind": f"{self.graph_v1}/groups('{oid}')",
                }
                req = GraphRequest("POST", "/teams", team_body, idempotent=True)
            else:
                req = GraphRequest("PUT", f"/groups/{oid}/team", {})
            return [_Call(outcome, req, purpose="team")]
        if op == "team.archive":
            req = GraphRequest("POST", f"/teams/{oid}/archive", None, idempotent=True)
            return [_Call(outcome, req, purpose="archive")]
        if op == "admin_unit.create":
            assert change.unit is not None
            body: dict[str, Any] = {
                "displayName": change.unit.display_name,
                "description": au_description(change.key),
            }
            if change.unit.restricted:
                body["isMemberManagementRestricted"] = True
            req = GraphRequest("POST", "/directory/administrativeUnits", body)
            return [_Call(outcome, req, purpose="create")]
        if op in ("group.update", "admin_unit.update"):
            base = "/groups" if op == "group.update" else "/directory/administrativeUnits"
            return [_Call(outcome, GraphRequest("PATCH", f"{base}/{oid}", dict(change.set_fields)))]
        if op in ADDITIONS:
            return self._bulk_additions(str(oid), [outcome])
        if op == "admin_unit.members.add":
            path = f"/directory/administrativeUnits/{oid}/members/$ref"
            return [
                _Call(outcome, GraphRequest("POST", path, {"@odata.id": self._ref(u)}, idempotent=True), u)
                for u in change.users
            ]
        if op in ("group.members.remove", "group.owners.remove", "admin_unit.members.remove"):
            if op == "admin_unit.members.remove":
                base = f"/directory/administrativeUnits/{oid}/members"
            else:
                base = f"/groups/{oid}/{'members' if op == 'group.members.remove' else 'owners'}"
            return [_Call(outcome, GraphRequest("DELETE", f"{base}/{u.id}/$ref"), u) for u in change.users]
        if op == "group.delete":
            return [_Call(outcome, GraphRequest("DELETE", f"/groups/{oid}"), purpose="delete")]
        if op == "group.restore":
            req = GraphRequest("POST", f"/directory/deletedItems/{oid}/restore", None, idempotent=True)
            return [_Call(outcome, req, purpose="restore")]
        if op == "group.purge":
            return [
                _Call(outcome, GraphRequest("DELETE", f"/directory/deletedItems/{oid}"), purpose="delete")
            ]
        if op == "admin_unit.delete":
            return [
                _Call(
                    outcome, GraphRequest("DELETE", f"/directory/administrativeUnits/{oid}"), purpose="delete"
                )
            ]
        outcome.fail(f"unsupported change {op}")
        return []

    def _bulk_additions(self, oid: str, outcomes: list[Outcome]) -> list[_Call]:
        """Owner and member additions to one group, 20 references to a PATCH, owners first.

        The plan keeps owners and members apart; Graph takes both in one request, so a new class
        with two teachers and 28 pupils (30 members, 2 owners) needs two PATCHes, not three.
        """
        refs = [
            (outcome, ADDITIONS[outcome.change.op], user)
            for op in ("group.owners.add", "group.members.add")
            for outcome in outcomes
            if outcome.change.op == op
            for user in outcome.change.users
        ]
        calls: list[_Call] = []
        for start in range(0, len(refs), REFS_PER_REQUEST):
            parts = tuple(refs[start : start + REFS_PER_REQUEST])
            body: dict[str, Any] = {}
            for rel in ("owners", "members"):
                bound = unique([self._ref(user) for _, part_rel, user in parts if part_rel == rel])
                if bound:
                    body[f"{rel}@odata.bind"] = bound
            request = GraphRequest("PATCH", f"/groups/{oid}", body)
            calls.append(_Call(parts[0][0], request, purpose="bulk", parts=parts))
        return calls

    def _group_body(self, change: Change) -> dict[str, Any]:
        spec = change.group
        assert spec is not None
        unified = spec.type == "microsoft365"
        body: dict[str, Any] = {
            "displayName": spec.display_name,
            "mailNickname": spec.mail_nickname,
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "description": group_description(spec.kind),
        }
        if unified:
            body["visibility"] = "Private"
            options = []
            if not self.welcome_email:
                options.append("WelcomeEmailDisabled")
            if self.hide_from_outlook:
                options.append("HideGroupInOutlook")
            if options:
                body["resourceBehaviorOptions"] = options
        if change.owners:
            body["owners@odata.bind"] = unique([self._ref(u) for u in change.owners])
        if change.users:
            body["members@odata.bind"] = unique([self._ref(u) for u in change.users])
        return body

    def _class_body(self, change: Change) -> dict[str, Any]:
        spec = change.group
        assert spec is not None
        return {
            "displayName": spec.display_name,
            "mailNickname": spec.mail_nickname,
            "description": group_description(spec.kind, education_class=True),
            "externalId": spec.roster_id or spec.key,
            "externalName": spec.display_name,
            "externalSource": "manual",
        }

    # -- results --------------------------------------------------------------------------------------

    def _settle(self, call: _Call, result: GraphResult, *, final: bool = False) -> list[_Call]:
        """Record one request's result; return follow-up requests to send, if any."""
        outcome, error = call.outcome, result.error
        held = self.held_back(call, result)
        if held is not None:
            return held
        if call.purpose == "create":
            if error is None:
                outcome.object_id = str((result.body or {}).get("id") or "") or None
                self.note_created(outcome.object_id)
                return []
            if isinstance(error, GraphOutcomeUnknown):
                found = self._find_created(outcome.change)
                if found is not None:
                    outcome.object_id = found
                    self.note_created(found)
                    return []
                if not final:
                    # Looked up by its marker and not there: creating it again cannot make a duplicate.
                    return [call]
            outcome.fail(error)
            return []
        if call.purpose == "team":
            if error is None:
                location = _header(result.headers, "location")
                if result.status == 202 and location:
                    self.operations[id(outcome)] = location
                return []
            if error.status == 409:  # already a team (an earlier, interrupted run)
                return []
            if team_not_ready(error):  # the group has not reached Teams yet
                outcome.result, outcome.error = "pending", _describe(error)
                return []
            outcome.fail(error)
            return []
        if call.purpose == "restore":
            if error is None:
                self.note_created(outcome.object_id)  # a restored group replicates like a new one
            else:
                outcome.fail(error)
            return []
        if call.purpose == "archive":
            if error is not None:
                outcome.fail(error)
                return []
            # Marked archived (renamed) only once Teams archived it: see confirm_archives.
            self.archiving.append((call, _header(result.headers, "location")))
            return []
        if call.purpose == "delete":
            if error is None or error.status == 404:
                return []
            outcome.fail(error)
            return []
        if call.purpose == "bulk":
            if error is None:
                for part, _, user in call.parts:
                    part.users[user.id] = ("ok", None)
                return []
            if not final and (_refused_request(error) or "guests" in error.message.lower()):
                # One bad or already-present reference fails the whole PATCH; retry one at a time.
                return [
                    _Call(
                        part,
                        GraphRequest(
                            "POST",
                            f"/groups/{part.object_id}/{rel}/$ref",
                            {"@odata.id": self._ref(user)},
                            idempotent=True,
                        ),
                        user,
                    )
                    for part, rel, user in call.parts
                ]
            for part, _, user in call.parts:
                part.fail_user(user, error)
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

    def _find_created(self, change: Change) -> str | None:
        """After a lost response: did the creation happen? Look for the object by its marker."""
        try:
            if change.op == "group.create" and change.group is not None:
                nick = change.group.mail_nickname
                rows = self.client.get_all(
                    "/groups", {"$filter": f"mailNickname eq '{nick}'", "$select": "id,mailNickname"}
                )
            else:
                marker = au_description(change.key)
                rows = [
                    r
                    for r in self.client.get_all(
                        "/directory/administrativeUnits", {"$select": "id,description", "$top": "999"}
                    )
                    if r.get("description") == marker
                ]
        except GraphError:
            return None
        return str(rows[0]["id"]) if rows else None


def _slices(changes: list[Change]) -> list[list[Change]]:
    """A phase's changes in slices of about SLICE_REQUESTS requests, never splitting one object."""
    by_key: dict[str, list[Change]] = {}
    for change in changes:
        by_key.setdefault(change.key, []).append(change)
    slices: list[list[Change]] = [[]]
    size = 0
    for group in by_key.values():
        if size >= SLICE_REQUESTS:
            slices.append([])
            size = 0
        slices[-1].extend(group)
        size += sum(_requests(c) for c in group)
    return [part for part in slices if part]


def _requests(change: Change) -> int:
    """About how many requests a change needs (for slicing only)."""
    if change.op in ADDITIONS:
        return -(-len(change.users) // REFS_PER_REQUEST)
    if change.op.endswith((".remove", "admin_unit.members.add")):
        return len(change.users)
    return 1


def _list_path(outcome: Outcome) -> str:
    if outcome.change.op.startswith("admin_unit."):
        return f"/directory/administrativeUnits/{outcome.object_id}/members"
    return f"/groups/{outcome.object_id}/{MEMBERSHIP_LISTS[outcome.change.op]}"


def _transient(error: GraphError) -> bool:
    """An error after which the request may or may not have been applied."""
    return isinstance(error, GraphOutcomeUnknown | GraphUnavailable | GraphThrottled) or not error.status


def _header(headers: Any, name: str) -> str | None:
    for key, value in dict(headers or {}).items():
        if key.lower() == name:
            return str(value)
    return None


def _refused_request(error: GraphError) -> bool:
    """A 4xx that is about the request's content (not auth, not throttling)."""
    return error.status is not None and 400 <= error.status < 500 and error.status not in (401, 403, 429)


def _describe(error: GraphError) -> str:
    return str(error)
