"""One sync run: roster → want; Entra → have; diff → plan; safety; apply; result.

This module wires the pipeline together and owns nothing else: every step is a function of the
one before it. `plan` and `run --dry-run` stop after the safety check and never write to Entra.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any, Protocol

from smartsync.apply import Applier, Outcome
from smartsync.calendar import AcademicYear, academic_year, in_quiet_window
from smartsync.config import Config
from smartsync.delta import DeltaReader
from smartsync.desired import UserDirectory, build_desired
from smartsync.entra import read_actual, read_users
from smartsync.errors import EXIT_AUTH, EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED
from smartsync.graph import GraphClient
from smartsync.naming import academic_year_of_key
from smartsync.plan import Plan, RemovalRules, diff, hold_removals, summarise
from smartsync.roster import Roster
from smartsync.safety import Refusal, check
from smartsync.state import ActualState, DesiredState, UserRef

FEATURES = ("groups", "admin-units", "teams")
Progress = Callable[[str, int, int], None]


class ChangeJournal(Protocol):
    def start_run(self, run_id: str, config_path: str, dry_run: bool) -> None: ...
    def change(
        self,
        *,
        op: str,
        key: str,
        group: str | None,
        object_id: str | None,
        user: str | None,
        result: str,
        error: str | None = None,
        **extra: Any,
    ) -> None: ...
    def end_run(self, status: str, summary: dict[str, int], warnings: list[str] | None = None) -> None: ...


@dataclass
class RunResult:
    """The outcome of `plan` or `run`: the plan, what happened to each change, and any refusal."""

    plan: Plan
    dry_run: bool
    run_id: str = ""
    refused: Refusal | None = None
    forced: bool = False
    outcomes: list[Outcome] | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes or [] if o.result == "failed"]

    @property
    def status(self) -> str:
        if self.refused is not None and not self.forced:
            return "refused"
        if self.outcomes is None:
            return "ok"
        if not self.failed:
            return "ok"
        return "failed" if all(o.result != "ok" for o in self.outcomes) else "partial"

    @property
    def denied(self) -> bool:
        """Graph refused a change for lack of permission (the run stopped writing there)."""
        return any(o.denied for o in self.outcomes or [])

    @property
    def exit_code(self) -> int:
        if self.status != "refused" and self.denied:
            return EXIT_AUTH
        return {"ok": EXIT_OK, "refused": EXIT_REFUSED}.get(self.status, EXIT_PARTIAL)

    def summary(self) -> dict[str, int]:
        if self.outcomes is None:
            return self.plan.summary()
        return summarise(o.change for o in self.outcomes if o.result == "ok")

    def document(self) -> dict[str, Any]:
        """The plan / result document of DESIGN §6."""
        changes = []
        for index, change in enumerate(self.plan.changes):
            item = change.to_dict()
            if self.outcomes is not None:
                outcome = self.outcomes[index]
                item["result"] = outcome.result
                if outcome.error:
                    item["error"] = outcome.error
                if outcome.object_id and "object_id" not in item:
                    item["object_id"] = outcome.object_id
            changes.append(item)
        return {
            "schema": "smartsync.plan/1",
            "dry_run": self.dry_run,
            "run": self.run_id or None,
            "status": self.status,
            "summary": self.summary(),
            "changes": changes,
            "warnings": [n.to_dict() for n in self.plan.notices]
            + [{"code": "notice", "message": w} for w in self.warnings],
            "refused": self.refused.to_dict() if self.refused is not None else None,
        }


def select_features(config: Config, only: Collection[str] | None) -> tuple[bool, bool, bool]:
    """Which of groups / admin units / teams this run manages (config switches, narrowed by `--only`)."""
    teams = config.sync.teams.enabled and (not only or "teams" in only)
    groups = config.sync.groups.enabled and (not only or "groups" in only or teams)
    units = config.sync.admin_units.enabled and (not only or "admin-units" in only)
    return groups, units, teams


def compute_plan(
    config: Config,
    roster: Roster,
    client: GraphClient,
    *,
    only: Collection[str] | None = None,
    progress: Progress | None = None,
    today: date | None = None,
    delta: DeltaReader | None = None,
) -> tuple[Plan, DesiredState, ActualState]:
    today = today or date.today()
    groups, units, teams = select_features(config, only)
    if not teams and config.sync.teams.enabled:
        config = config.model_copy(
            update={
                "sync": config.sync.model_copy(
                    update={"teams": config.sync.teams.model_copy(update={"enabled": False})}
                )
            }
        )
    read = None
    if delta is not None:  # only what changed since the last run, where its delta state allows
        read = delta.read(
            client, config.sync.prefix, groups=groups, admin_units=units, today=today, progress=progress
        )
    users = read.users if read is not None else read_users(client)
    client.pace_for_tenant(len(users))
    directory = UserDirectory.build(users, config.users.match)
    want = build_desired(roster, config, directory, today=today)
    if not groups:
        want = replace(want, groups={})
    if not units:
        want = replace(want, admin_units={})
    if read is not None:
        have = read.have
    else:
        have = read_actual(client, config.sync.prefix, groups=groups, admin_units=units, progress=progress)
    if units and config.sync.admin_units.include_groups:
        want = with_groups_in_year_units(want, have)
    rules = RemovalRules(
        group=config.removal.group,
        team=config.removal.team,
        archive_prefix=config.sync.teams.archive_prefix,
        archived_on=today.isoformat(),
    )
    plan = diff(want, have, rules=rules)
    if in_quiet_window(today, config.year):
        year = academic_year(today, config.year)
        # With a derived academic year the MIS may already hold next year's classes under this
        # year's key; an explicitly set year (to build next year's classes early) is trusted.
        frozen = frozenset() if config.year.academic_year else _year_scoped_keys(want, have)
        plan = hold_removals(
            plan,
            f"the summer quiet window runs until the {AcademicYear(year.start_year + 1).label} academic "
            f"year starts (year.start {config.year.start}); the first run from then on applies them.",
            frozen,
        )
    return plan, want, have


def with_groups_in_year_units(want: DesiredState, have: ActualState) -> DesiredState:
    """Year units also hold that year's managed groups (those that exist already: new ones next run)."""
    by_year: dict[tuple[str | None, str], set[UserRef]] = {}
    for key, spec in want.groups.items():
        current = have.groups.get(key)
        if spec.year_group and current is not None and not current.archived:
            by_year.setdefault((spec.school, spec.year_group), set()).add(
                UserRef(current.display_name, current.id)
            )
    units = {
        key: replace(
            unit, members=unit.members | frozenset(by_year.get((unit.school, unit.year_group), set()))
        )
        if unit.year_group
        else unit
        for key, unit in want.admin_units.items()
    }
    return replace(want, admin_units=units)


def _year_scoped_keys(want: DesiredState, have: ActualState) -> frozenset[str]:
    wanted = {key for key, spec in want.groups.items() if spec.academic_year}
    return frozenset(wanted | {key for key in have.groups if academic_year_of_key(key)})


def run_sync(
    config: Config,
    roster: Roster,
    client: GraphClient,
    *,
    dry_run: bool,
    force: bool = False,
    only: Collection[str] | None = None,
    journal: ChangeJournal | None = None,
    run_id: str = "",
    config_path: str = "",
    progress: Progress | None = None,
    warnings: list[str] | None = None,
    today: date | None = None,
    sleep: Callable[[float], None] | None = None,
    delta: DeltaReader | None = None,
) -> RunResult:
    plan, _, _ = compute_plan(
        config, roster, client, only=only, progress=progress, today=today, delta=None if dry_run else delta
    )
    refusal = check(plan, config.safety)
    result = RunResult(
        plan=plan,
        dry_run=dry_run,
        run_id=run_id,
        refused=refusal,
        forced=force and refusal is not None,
        warnings=list(warnings or []),
    )
    if dry_run:
        return result
    if journal is not None:
        journal.start_run(run_id, config_path, dry_run)
    if refusal is not None and not force:
        if journal is not None:
            journal.end_run("refused", plan.summary(), [refusal.message])
        if delta is not None:
            delta.commit()
        return result

    def record(outcome: Outcome) -> None:
        if journal is not None:
            _journal_outcome(journal, outcome)

    applier = Applier(
        client,
        config.tenant.graph_url,
        welcome_email=config.sync.groups.welcome_email,
        hide_from_outlook=config.sync.groups.hide_from_outlook,
        record=record,
        progress=progress,
        team_retries=config.sync.teams.creation_retries,
        team_retry_seconds=config.sync.teams.creation_retry_seconds,
        team_poll_seconds=config.sync.teams.poll_seconds,
        team_poll_timeout=config.sync.teams.poll_timeout_seconds,
        **({"sleep": sleep} if sleep is not None else {}),
    )
    result.outcomes = applier.apply(plan.changes)
    if journal is not None:
        journal.end_run(result.status, result.summary(), [n.message for n in plan.notices] + result.warnings)
    if delta is not None:
        created = [(o.change.op, o.object_id) for o in result.outcomes if o.result == "ok" and o.object_id]
        delta.commit(created, client)
    return result


def _journal_outcome(journal: ChangeJournal, outcome: Outcome) -> None:
    change = outcome.change
    people = list(change.owners) + list(change.users)
    if not people:
        journal.change(
            op=change.op,
            key=change.key,
            group=change.name,
            object_id=outcome.object_id,
            user=None,
            result=outcome.result,
            error=outcome.error,
        )
        return
    for role, refs in (("owner", change.owners), ("member", change.users)):
        for ref in refs:
            result, error = outcome.users.get(ref.id, (outcome.result, outcome.error))
            extra: dict[str, Any] = {"role": role} if change.op == "group.create" else {}
            journal.change(
                op=change.op,
                key=change.key,
                group=change.name,
                object_id=outcome.object_id,
                user=ref.address,
                result=result,
                error=error,
                **extra,
            )
