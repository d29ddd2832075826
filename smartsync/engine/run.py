"""One sync run: roster → want; Entra → have; diff → plan; safety; apply; result.

This module wires the pipeline together and owns nothing else: every step is a function of the
one before it. `plan` and `run --dry-run` stop after the safety check and never write to Entra.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, Protocol

from smartsync.config import Config
from smartsync.credentials import missing_for_plan, missing_permission_message
from smartsync.engine import accounts as account_lifecycle
from smartsync.engine.actual import read_actual, read_users
from smartsync.engine.apply import Applier, ApplyPolicy, Outcome
from smartsync.engine.apply.accounts import AccountWrites
from smartsync.engine.calendar import AcademicYear, academic_year, in_quiet_window
from smartsync.engine.cohorts import cohort_losses, in_rollover
from smartsync.engine.deleted import prefer_restore, read_deleted_groups
from smartsync.engine.delta import DeltaReader
from smartsync.engine.desired import UserDirectory, build_desired
from smartsync.engine.facts import object_facts, people_names
from smartsync.engine.intents import IntentLog, reconcile
from smartsync.engine.naming import academic_year_of_key
from smartsync.engine.plan import Plan, RemovalRules, diff, hold_removals, summarise
from smartsync.engine.safety import Refusal, check
from smartsync.engine.schools import select_schools
from smartsync.engine.state import ActualState, DesiredState, UserRef
from smartsync.engine.team_members import for_plan as teams_membership_path
from smartsync.engine.unwritable import hold_unwritable
from smartsync.errors import EXIT_AUTH, EXIT_OK, EXIT_PARTIAL, EXIT_REFUSED, AuthError
from smartsync.graph import GraphClient
from smartsync.graph.consistency import ReplicationWait
from smartsync.handout import Handout, HandoutInfo, handout_path, prune_handouts
from smartsync.preflight.results import PreflightResults, adaptations, blocking_refusal, met_mid_run
from smartsync.roster.model import Roster

FEATURES = ("groups", "admin-units", "teams", "accounts")
Progress = Callable[[str, int, int], None]


class ChangeJournal(Protocol):
    path: Path

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
    def end_run(
        self,
        status: str,
        summary: dict[str, int],
        warnings: list[str] | None = None,
        *,
        written: int | None = None,
    ) -> None: ...
    def event(self, name: str, *, run: str | None = None, **fields: Any) -> None: ...


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
    handout: HandoutInfo | None = None  # the new accounts' hand-out file (sync.users), when written

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
            "left_alone": [item.to_dict() for item in self.plan.left_alone],
            **(
                {"handout": {"path": str(self.handout.path), "rows": self.handout.rows}}
                if self.handout
                else {}
            ),
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
    # A config owns only its own school codes, in the export as in Entra (DESIGN §5).
    schools = select_schools(roster, config.school)
    roster = schools.roster
    account_plan: account_lifecycle.AccountPlan | None = None
    if config.sync.users is not None and (not only or "accounts" in only):
        accounts = account_lifecycle.read_accounts(client, config.sync.users.marker_attribute)
        users = [a.user for a in accounts]
        wants_domains = config.sync.users.create or config.sync.users.rename
        account_plan = account_lifecycle.plan_accounts(
            roster,
            config,
            accounts,
            today=today,
            verified_domains=(lambda: account_lifecycle.read_verified_domains(client))
            if wants_domains
            else None,
        )
    else:
        users = []
    read = None
    if delta is not None:  # only what changed since the last run, where its delta state allows
        read = delta.read(
            client,
            config.sync.prefix,
            groups=groups,
            admin_units=units,
            today=today,
            progress=progress,
            codes=config.school.all_codes,
        )
    if account_plan is None:
        users = read.users if read is not None else read_users(client)
    client.pace_for_tenant(len(users))
    directory = UserDirectory.build(users, config.users.match)
    if account_plan is not None:
        directory = account_plan.directory(directory)
    want = build_desired(roster, config, directory, today=today)
    if not groups:
        want = replace(want, groups={})
    if not units:
        want = replace(want, admin_units={})
    if read is not None:
        have = read.have
    else:
        have = read_actual(
            client,
            config.sync.prefix,
            groups=groups,
            admin_units=units,
            progress=progress,
            codes=config.school.all_codes,
        )
    want, have = hold_unwritable(want, have)
    if units and config.sync.admin_units.include_groups:
        # Restricted-management units take no Microsoft 365 groups (Graph refuses them).
        restricted = config.sync.admin_units.restricted_management
        want = with_groups_in_year_units(want, have, security_only=restricted)
    rules = RemovalRules(
        group=config.removal.group,
        team=config.removal.team,
        archive_prefix=config.sync.teams.archive_prefix,
        archived_on=today.isoformat(),
    )
    plan = diff(want, have, rules=rules)
    if groups and plan.count("group.create"):
        plan = prefer_restore(plan, read_deleted_groups(client, config.sync.prefix))
    if account_plan is not None:
        # Account changes go first: adoptions, then joiners, movers, returners and leavers.
        plan = replace(
            plan,
            changes=account_plan.changes + plan.changes,
            notices=account_plan.notices + plan.notices,
        )
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
    _, teams_notices = teams_membership_path(config, client, have, plan.changes)
    if teams_notices:
        plan = replace(plan, notices=plan.notices + teams_notices)
    # What the report needs beyond the changes: each object's year group and people's names.
    plan = replace(
        plan,
        notices=schools.notices + plan.notices,
        vanished_schools=schools.vanished,
        cohort_losses=() if in_rollover(today, config.year) else cohort_losses(plan, have),
        extra={
            **plan.extra,
            "objects": object_facts(want, have),
            "people": people_names(roster.people, directory.find),
        },
    )
    return plan, want, have


def with_groups_in_year_units(
    want: DesiredState, have: ActualState, *, security_only: bool = False
) -> DesiredState:
    """Year units also hold that year's managed groups (those that exist already: new ones next run)."""
    by_year: dict[tuple[str | None, str], set[UserRef]] = {}
    for key, spec in want.groups.items():
        current = have.groups.get(key)
        if security_only and current is not None and current.type != "security":
            continue
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
    granted_roles: Collection[str] | None = None,
    learned: PreflightResults | None = None,
    on_refusal: Callable[[str, str], None] | None = None,
    delta: DeltaReader | None = None,
) -> RunResult:
    """Plan, check, apply. `granted_roles` (the token's roles) are compared with what the plan needs
    before the first write; None skips that comparison. `learned` is what preflight (or an earlier
    run) found this tenant refuses; `on_refusal(check, Graph's answer)` records a refusal met now."""
    # What preflight (or an earlier run) learned: a refusal the sync cannot work around stops it here.
    stop = blocking_refusal(config, learned)
    if stop is not None:
        raise stop
    plan, _, have = compute_plan(
        config, roster, client, only=only, progress=progress, today=today, delta=None if dry_run else delta
    )
    refusal = check(plan, config.safety)
    missing = missing_for_plan(granted_roles, plan.changes) if granted_roles is not None else {}
    if missing and dry_run:
        warnings = [
            *(warnings or []),
            "`run` would stop before writing: " + missing_permission_message(missing),
        ]
    elif missing and (refusal is None or force):
        message = "Nothing was written: " + missing_permission_message(missing)
        if journal is not None:
            journal.start_run(run_id, config_path, dry_run)
            journal.end_run("failed", plan.summary(), [message], written=0)
        raise AuthError(message)
    result = RunResult(
        plan=plan,
        dry_run=dry_run,
        run_id=run_id,
        refused=refusal,
        forced=force and refusal is not None,
        warnings=list(warnings or []) + adaptations(learned),
    )
    if dry_run:
        return result
    if journal is not None:
        journal.start_run(run_id, config_path, dry_run)
        # Before anything is applied: settle what interrupted runs left open (intents.py).
        groups, units, _ = select_features(config, only)
        settled = reconcile(journal.path, journal, run_id, have, groups=groups, units=units).message()
        if settled:
            result.warnings.append(settled)
    if refusal is not None and not force:
        if journal is not None:
            journal.end_run("refused", plan.summary(), [refusal.message], written=0)
        if delta is not None:
            delta.commit()
        return result

    def record(outcome: Outcome) -> None:
        if journal is not None:
            _journal_outcome(journal, outcome)

    met: set[str] = set()

    def refused(check: str, detail: str) -> None:
        if check in met:
            return  # once per run is enough
        met.add(check)
        result.warnings.append(met_mid_run(check, detail))
        if on_refusal is not None:
            on_refusal(check, detail)

    handout: Handout | None = None
    if config.sync.users is not None:
        prune_handouts(config.journal.path.parent, config.sync.users.handout_retention_days, _now(today))
        if any(c.op == "user.create" for c in plan.changes):
            handout = Handout(handout_path(config.journal.path, run_id or "run"))

    applier = Applier(
        client,
        config.tenant.graph_url,
        policy=ApplyPolicy.from_config(config, owners_in_patch=learned is None or learned.owners_in_patch),
        record=record,
        progress=progress,
        on_refusal=refused,
        **({"sleep": sleep} if sleep is not None else {}),
        accounts=AccountWrites(handout),
        team_members=teams_membership_path(config, client, have, plan.changes)[0],
        intents=IntentLog(journal) if journal is not None else None,
        replication=replication_wait(config),
        team_replication=replication_wait(config, teams=True),
    )
    try:
        result.outcomes = applier.apply(plan.changes)
    finally:
        if handout is not None:
            handout.close()
            result.handout = handout.info()
    result.warnings.extend(applier.warnings)
    if journal is not None:
        written = sum(1 for o in result.outcomes if o.result == "ok")
        journal.end_run(
            result.status,
            result.summary(),
            [n.message for n in plan.notices] + result.warnings,
            written=written,
        )
    if delta is not None:
        created = [(o.change.op, o.object_id) for o in result.outcomes if o.result == "ok" and o.object_id]
        delta.commit(created, client)
    return result


def _now(today: date | None) -> datetime:
    """The run's moment: now, or the end of an injected run date (tests drive the calendar)."""
    if today is None or today == date.today():
        return datetime.now(UTC)
    return datetime.combine(today, time(23, 59), UTC)


def replication_wait(config: Config, *, teams: bool = False) -> ReplicationWait:
    """How the Applier waits for Entra to replicate new objects (or new groups to reach Teams)."""
    rep = config.sync.replication
    minutes = rep.team_budget_minutes if teams else rep.budget_minutes
    return ReplicationWait(minutes * 60.0, rep.first_wait_seconds, rep.max_wait_seconds)


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
