"""A journal without holes: intent lines before each slice is sent, reconciled by the next run.

Applying goes out in slices of about 100 requests, and each slice's outcomes reach the journal as
soon as it returns. A run stopped in between (a crash, SIGKILL, a power cut) used to leave the
changes of that slice which Graph had already made without journal lines. Now:

- before a slice is sent, one `intent` line lists every change of it: op, key, group, object id and
  each user (sign-in address and object id; for a group creation also the role);
- once the slice's change lines are written, an `intent.done` line closes it. It lists (`open`) the
  users whose outcome stayed uncertain: their answer was lost and looking them up failed too;
- the next run, after reading the tenant and before applying anything, reconciles every intent that
  was not closed, and every `open` user of a closed one. A change the tenant shows as made gets a
  `change` line with `result: ok` and `reconciled: applied`; one it does not show gets `result:
  skipped` and `reconciled: not_applied` (this run's plan has it again if it is still wanted). An
  uncertain change that turns out not made keeps the `failed` line it already has. Those lines carry
  the interrupted run's id, with `reconciled_by` naming the run that found out, so `smartsync log
  --run` shows the interrupted run whole. An `intent.reconciled` line closes the intent.

"Made" is read from the tenant as this run found it: a group or unit exists (or is gone, for a
deletion), a user is (or is no longer) in its members or owners, a team exists or is archived, a
renamed object carries the new name. Intents of a kind this run did not read (`--only`) wait for a
run that does. Existing journal lines are never changed (DESIGN §6): these are new event types.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from smartsync.engine.state import ActualState, AdminUnitState, GroupState, UserRef
from smartsync.journal import rotated_path

INTENT = "intent"
DONE = "intent.done"
RECONCILED = "intent.reconciled"
_MARKER = b'"event":"intent'


class EventJournal(Protocol):
    def event(self, name: str, *, run: str | None = None, **fields: Any) -> None: ...


class _Change(Protocol):
    @property
    def op(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def object_id(self) -> str | None: ...
    @property
    def users(self) -> tuple[UserRef, ...]: ...
    @property
    def owners(self) -> tuple[UserRef, ...]: ...
    @property
    def set_fields(self) -> tuple[tuple[str, str], ...]: ...


class _Outcome(Protocol):
    @property
    def change(self) -> Any: ...
    @property
    def result(self) -> str: ...
    @property
    def users(self) -> dict[str, tuple[str, str | None]]: ...
    @property
    def uncertain(self) -> set[str]: ...
    @property
    def maybe_done(self) -> bool: ...
    @property
    def object_id(self) -> str | None: ...


def describe(
    change: _Change, object_id: str | None = None, only: Iterable[str] | None = None
) -> dict[str, Any]:
    """One change as an intent line lists it; `only` keeps just those users (by object id)."""
    wanted = set(only) if only is not None else None
    people: list[list[str]] = []
    for role, refs in (("owner", change.owners), ("member", change.users)):
        for ref in refs:
            if wanted is None or ref.id in wanted:
                people.append(
                    [ref.address, ref.id, role] if change.op == "group.create" else [ref.address, ref.id]
                )
    out: dict[str, Any] = {
        "op": change.op,
        "key": change.key,
        "group": change.name,
        "object_id": object_id or change.object_id,
        "users": people,
    }
    if change.op.endswith(".update") and change.set_fields:
        out["set"] = dict(change.set_fields)
    return out


class IntentLog:
    """Writes the intent before each slice and closes it after; given to the `Applier` by `run_sync`."""

    def __init__(self, journal: EventJournal) -> None:
        self.journal = journal
        self._count = 0

    def before(self, changes: Iterable[_Change]) -> str:
        self._count += 1
        slice_id = str(self._count)
        self.journal.event(INTENT, slice=slice_id, changes=[describe(c) for c in changes])
        return slice_id

    def after(self, slice_id: str, outcomes: Iterable[_Outcome]) -> None:
        still: list[dict[str, Any]] = []
        for outcome in outcomes:
            if outcome.result == "failed" and outcome.maybe_done:
                still.append(describe(outcome.change, outcome.object_id))
                continue
            doubtful = [u for u in outcome.uncertain if outcome.users.get(u, ("",))[0] == "failed"]
            if doubtful:
                still.append(describe(outcome.change, outcome.object_id, doubtful))
        fields: dict[str, Any] = {"slice": slice_id}
        if still:
            fields["open"] = still
        self.journal.event(DONE, **fields)


@dataclass(frozen=True)
class OpenIntent:
    """An intent (or the uncertain rest of one) that no run has settled yet."""

    run: str
    slice: str
    changes: tuple[dict[str, Any], ...]
    interrupted: bool  # no intent.done line: its run stopped before journaling the slice


@dataclass
class Reconciled:
    applied: int = 0
    not_applied: int = 0
    runs: set[str] = field(default_factory=set)

    def message(self) -> str | None:
        if not self.runs:
            return None
        runs = ", ".join(sorted(self.runs))
        return (
            f"Reconciled the journal of interrupted or uncertain run{'s' if len(self.runs) != 1 else ''} "
            f"{runs} against the tenant: {self.applied} change{'s' if self.applied != 1 else ''} found made, "
            f"{self.not_applied} not made (planned again where still wanted)."
        )


def _lines(path: Path, marker: bytes) -> Iterator[dict[str, Any]]:
    for source in (rotated_path(path), path):
        try:
            handle = open(source, "rb")  # noqa: SIM115 - closed by the `with` below
        except FileNotFoundError:
            continue
        with handle:
            for raw in handle:
                if marker not in raw:
                    continue
                try:
                    event = json.loads(raw)
                except ValueError:
                    continue  # a line torn by the crash being reconciled
                if isinstance(event, dict):
                    yield event


def open_intents(path: Path) -> list[OpenIntent]:
    """Intents in the journal at `path` (and its rotated `.1`) that no run has settled, oldest first."""
    intents: dict[tuple[str, str], dict[str, Any]] = {}
    done: dict[tuple[str, str], list[dict[str, Any]]] = {}
    settled: set[tuple[str, str]] = set()
    for event in _lines(path, _MARKER):
        run = str(event.get("run") or "")
        name = event.get("event")
        if name == RECONCILED:
            settled.add((str(event.get("for_run") or ""), str(event.get("slice"))))
            continue
        ident = (run, str(event.get("slice")))
        if name == INTENT:
            intents[ident] = event
        elif name == DONE:
            done[ident] = [c for c in event.get("open") or [] if isinstance(c, dict)]
    out: list[OpenIntent] = []
    for ident, event in intents.items():
        if ident in settled:
            continue
        if ident in done:
            if done[ident]:
                out.append(OpenIntent(ident[0], ident[1], tuple(done[ident]), interrupted=False))
            continue
        changes = tuple(c for c in event.get("changes") or [] if isinstance(c, dict))
        out.append(OpenIntent(ident[0], ident[1], changes, interrupted=True))
    return out


def _journaled(path: Path, runs: set[str]) -> set[tuple[str, str, str, str | None]]:
    """(run, op, key, user) of the change lines those runs did write before they stopped."""
    seen: set[tuple[str, str, str, str | None]] = set()
    if not runs:
        return seen
    for event in _lines(path, b'"event":"change"'):
        run = str(event.get("run") or "")
        if run in runs:
            user = event.get("user")
            seen.add((run, str(event.get("op")), str(event.get("key")), str(user).lower() if user else None))
    return seen


def ids(refs: Iterable[UserRef]) -> set[str]:
    return {r.id for r in refs}


def _is_made(change: dict[str, Any], user_id: str | None, role: str | None, have: ActualState) -> bool:
    op, key = str(change.get("op")), str(change.get("key"))
    group: GroupState | None = have.groups.get(key)
    unit: AdminUnitState | None = have.admin_units.get(key)
    match op:
        case "group.create":
            if group is None:
                return False
            if user_id is None:
                return True
            return user_id in ids(group.owners if role == "owner" else group.members)
        case "group.delete":
            return group is None
        case "group.update":
            name = (change.get("set") or {}).get("displayName")
            return group is not None and (name is None or group.display_name == name)
        case "group.members.add" | "group.members.remove" | "group.owners.add" | "group.owners.remove":
            if group is None:
                return op.endswith(".remove")
            there = user_id in ids(group.owners if ".owners." in op else group.members)
            return there == op.endswith(".add")
        case "team.create":
            return group is not None and group.is_team
        case "team.archive":
            return group is not None and group.archived
        case "admin_unit.create":
            if unit is None:
                return False
            return user_id is None or user_id in ids(unit.members)
        case "admin_unit.delete":
            return unit is None
        case "admin_unit.update":
            name = (change.get("set") or {}).get("displayName")
            return unit is not None and (name is None or unit.display_name == name)
        case "admin_unit.members.add" | "admin_unit.members.remove":
            if unit is None:
                return op.endswith(".remove")
            return (user_id in ids(unit.members)) == op.endswith(".add")
    return False


def _object_id(change: dict[str, Any], have: ActualState) -> str | None:
    key = str(change.get("key"))
    found = (
        have.admin_units.get(key) if str(change.get("op")).startswith("admin_unit.") else have.groups.get(key)
    )
    return change.get("object_id") or (found.id if found is not None else None)


def reconcile(
    path: Path, journal: EventJournal, run_id: str, have: ActualState, *, groups: bool, units: bool
) -> Reconciled:
    """Settle every open intent in the journal at `path` against `have`; journal what is found."""
    result = Reconciled()
    pending = open_intents(path)
    written = _journaled(path, {i.run for i in pending if i.interrupted})
    for intent in pending:
        kinds = {str(c.get("op", "")).split(".")[0] for c in intent.changes}
        if (not groups and kinds & {"group", "team"}) or (not units and "admin_unit" in kinds):
            continue  # this run did not read those objects: a later run settles the intent
        for change in intent.changes:
            op, key = str(change.get("op")), str(change.get("key"))
            people = [p for p in change.get("users") or [] if isinstance(p, list) and len(p) >= 2]
            targets: list[tuple[str | None, str | None, str | None]] = [
                (str(p[0]), str(p[1]), str(p[2]) if len(p) > 2 else None) for p in people
            ] or [(None, None, None)]
            for address, user_id, role in targets:
                if (intent.run, op, key, address.lower() if address else None) in written:
                    continue  # its line made it to the journal before the run stopped
                made = _is_made(change, user_id, role, have)
                if not made and not intent.interrupted:
                    continue  # uncertain and not made: the `failed` line it has is right
                fields: dict[str, Any] = {
                    "op": op,
                    "key": key,
                    "group": change.get("group"),
                    "object_id": _object_id(change, have),
                    "user": address,
                    "result": "ok" if made else "skipped",
                    "reconciled": "applied" if made else "not_applied",
                    "reconciled_by": run_id,
                }
                if role is not None:
                    fields["role"] = role
                if not made:
                    fields["error"] = (
                        f"not applied: run {intent.run} stopped before Graph made it; run {run_id} found it "
                        "not made and plans it again if still wanted"
                    )
                journal.event("change", run=intent.run, **fields)
                result.runs.add(intent.run)
                if made:
                    result.applied += 1
                else:
                    result.not_applied += 1
        journal.event(RECONCILED, slice=intent.slice, for_run=intent.run)
    return result
