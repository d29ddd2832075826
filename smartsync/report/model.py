"""The report model: a plan or a run result as changes per object, in the school's words.

Pure (no rich, no Jinja2): both the terminal report (`report.py`) and the HTML page
(`report_html.py`) render what this module computes, so the two never disagree. A plan narrates
requests (a group's 20-at-a-time additions are several changes); the model folds them back into
one entry per managed object, keyed by the object's key so that two objects with one display name
are never confused, and counts people, so its totals are the summary table's.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from smartsync.engine.facts import NO_YEAR, year_from_name
from smartsync.engine.plan import Change
from smartsync.engine.state import LeftAlone, UserRef

if TYPE_CHECKING:
    from smartsync.engine.run import RunResult

# What the school calls each kind of managed object (the key's second part).
KIND_WORDS: dict[str, tuple[str, str]] = {
    "class": ("class", "Classes"),
    "mentor": ("tutor group", "Tutor groups"),
    "year": ("year group", "Year groups"),
    "group": ("MIS group", "MIS groups"),
    "all_learners": ("all-learners group", "All learners"),
    "all_staff": ("all-staff group", "All staff"),
    "au_learners": ("learners unit", "Units: learners"),
    "au_staff": ("staff unit", "Units: staff"),
    "au_mentors": ("mentors unit", "Units: mentors"),
    "au_year": ("year-group unit", "Units: year groups"),
    "user": ("account", "Accounts"),
}
_KIND_ORDER = tuple(KIND_WORDS)

# Notices that say how the run works rather than what is wrong: shown as notes, not warnings.
NOTE_CODES = frozenset({"teams_membership"})


@dataclass(frozen=True, order=True)
class PersonRef:
    """A person as the report names them: sign-in address, and display name where Entra has one."""

    address: str
    name: str = ""

    @property
    def short(self) -> str:
        """The address without its domain: unique in a school, and what a sysadmin types."""
        return self.address.split("@", 1)[0]

    @property
    def initialled(self) -> str:
        """`J. Kowalski` for a teacher named John Kowalski; the short address when no name is known."""
        parts = self.name.split()
        if len(parts) < 2:
            return self.name or self.short
        return f"{parts[0][0]}. {' '.join(parts[1:])}"


@dataclass(frozen=True)
class Failure:
    """A change Graph refused or that was skipped: what, Graph's message, and whom it concerned."""

    what: str
    error: str
    people: tuple[PersonRef, ...] = ()
    result: str = "failed"  # failed | skipped


@dataclass
class ObjectReport:
    """Everything one managed object went through in this plan or run."""

    key: str
    name: str
    category: str  # group | unit | account
    kind: str
    school: str
    year: str
    action: str = "changed"  # new | changed | restored | archived | deleted | disabled | enabled
    detail: str = ""  # "class team", "security group", ...
    team_created: bool = False
    # A soft-deleted group of this key was purged so this one could be made (it no longer fitted).
    replaces_deleted: bool = False
    old_name: str | None = None
    archived_name: str | None = None
    members_added: list[PersonRef] = field(default_factory=list)
    members_removed: list[PersonRef] = field(default_factory=list)
    owners_added: list[PersonRef] = field(default_factory=list)
    owners_removed: list[PersonRef] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    done: int = 0  # changes applied (a run), for the status
    planned: bool = True  # a plan, or a refused run: nothing happened yet

    @property
    def kind_word(self) -> str:
        return KIND_WORDS.get(self.kind, (self.kind.replace("_", " "), ""))[0]

    @property
    def kind_heading(self) -> str:
        return kind_heading(self.kind)

    @property
    def status(self) -> str:
        if self.planned:
            return "planned"
        if not self.failures:
            return "ok"
        if all(f.result == "skipped" for f in self.failures) and not self.done:
            return "skipped"
        return "partial" if self.done else "failed"

    @property
    def people(self) -> list[PersonRef]:
        seen = dict.fromkeys(
            [*self.owners_added, *self.members_added, *self.owners_removed, *self.members_removed]
        )
        return list(seen)

    def sort_key(self) -> tuple[Any, ...]:
        return (self.school, kind_rank(self.kind), year_rank(self.year), self.name.casefold(), self.key)


def kind_rank(kind: str) -> int:
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)


def kind_heading(kind: str) -> str:
    return KIND_WORDS.get(kind, ("", kind.replace("_", " ").capitalize()))[1]


def year_rank(year: str) -> tuple[int, int, str]:
    """Year 7 before Year 10; the whole-school objects after the year groups."""
    if year == NO_YEAR:
        return (1, 0, year)
    number = re.search(r"\d+", year)
    return (0, int(number.group()) if number else 99, year)


@dataclass(frozen=True)
class Warning:
    message: str
    code: str = "notice"
    roster_id: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Totals:
    """The run in people and objects: the summary table and the last line."""

    groups_created: int = 0
    groups_changed: int = 0
    groups_deleted: int = 0
    units_created: int = 0
    units_changed: int = 0
    units_deleted: int = 0
    members_added: int = 0
    members_removed: int = 0
    owners_added: int = 0
    owners_removed: int = 0
    unit_members_added: int = 0
    unit_members_removed: int = 0
    teams_created: int = 0
    teams_archived: int = 0
    accounts_created: int = 0
    accounts_updated: int = 0
    accounts_disabled: int = 0
    accounts_enabled: int = 0
    accounts_deleted: int = 0
    failed: int = 0
    skipped: int = 0

    @property
    def groups(self) -> int:
        return self.groups_created + self.groups_changed + self.groups_deleted + self.teams_archived

    @property
    def units(self) -> int:
        return self.units_created + self.units_changed + self.units_deleted

    @property
    def accounts(self) -> int:
        return (
            self.accounts_created
            + self.accounts_updated
            + self.accounts_disabled
            + self.accounts_enabled
            + self.accounts_deleted
        )


@dataclass(frozen=True)
class KindRow:
    """One line of the per-kind (or per-year) count table."""

    label: str
    objects: int
    new: int
    changed: int
    removed: int
    added_people: int
    removed_people: int


@dataclass
class RunReport:
    """A plan or a run result, ready to render."""

    title: str
    dry_run: bool
    status: str  # ok | partial | failed | refused | planned
    run_id: str
    objects: list[ObjectReport]
    totals: Totals
    warnings: list[Warning]
    # What the run says about how it works, not about a problem (e.g. which membership path it uses).
    notes: list[str] = field(default_factory=list)
    refused_limit: str | None = None
    refused_message: str | None = None
    forced: bool = False
    # Objects of other schools or prefixes seen in the tenant and left alone, in words (or "").
    left_alone: str = ""
    # sync.users: where this run's new accounts' initial passwords are, and how many (never the passwords).
    handout: str = ""

    @property
    def failed_objects(self) -> list[ObjectReport]:
        return [o for o in self.objects if o.failures]

    @property
    def schools(self) -> list[str]:
        return sorted({o.school for o in self.objects})

    @property
    def years(self) -> list[str]:
        return sorted({o.year for o in self.objects}, key=year_rank)

    @property
    def kinds(self) -> list[str]:
        return sorted({o.kind for o in self.objects}, key=kind_rank)

    def per_kind(self) -> list[KindRow]:
        return _rows(self.objects, lambda o: o.kind_heading, [kind_heading(k) for k in self.kinds])

    def per_year(self) -> list[KindRow]:
        return _rows(self.objects, lambda o: o.year, self.years)

    @property
    def rollover(self) -> tuple[list[ObjectReport], list[ObjectReport]]:
        """Teams to be archived and classes to be created, side by side on the page."""
        archived = [o for o in self.objects if o.action == "archived"]
        created = [o for o in self.objects if o.action == "new" and o.kind == "class"]
        return archived, created

    @property
    def verdict(self) -> str:
        """The first word of the report: what happened, before any detail."""
        return {
            "refused": "Refused",
            "failed": "Failed",
            "partial": "Partly applied",
            "ok": "Done",
            "planned": "Plan",
        }[self.status]


def _rows(objects: list[ObjectReport], label_of: Any, order: list[str]) -> list[KindRow]:
    rows: dict[str, list[ObjectReport]] = {label: [] for label in order}
    for obj in objects:
        rows.setdefault(label_of(obj), []).append(obj)
    out = []
    for label, items in rows.items():
        out.append(
            KindRow(
                label,
                len(items),
                sum(1 for o in items if o.action == "new"),
                sum(1 for o in items if o.action == "changed"),
                sum(1 for o in items if o.action in ("archived", "deleted")),
                sum(len(o.members_added) for o in items),
                sum(len(o.members_removed) for o in items),
            )
        )
    return out


def _parts(key: str) -> tuple[str, str]:
    school, _, rest = key.partition("-")
    return school, rest.split("-", 1)[0] if rest else "group"


def build(result: RunResult, *, title: str | None = None) -> RunReport:
    """The report of a plan or a run: one `ObjectReport` per object, in school, kind, year order."""
    plan = result.plan
    facts: Mapping[str, Mapping[str, str]] = plan.extra.get("objects", {})
    names: Mapping[str, str] = plan.extra.get("people", {})
    refused = result.refused is not None and not result.forced
    planned = result.outcomes is None or refused

    def person(ref: UserRef) -> PersonRef:
        return PersonRef(ref.address, names.get(ref.id, ""))

    objects: dict[str, ObjectReport] = {}
    for index, change in enumerate(plan.changes):
        outcome = None if planned or result.outcomes is None else result.outcomes[index]
        obj = objects.get(change.key)
        if obj is None:
            school, kind = _parts(change.key)
            fact = facts.get(change.key, {})
            year = fact.get("year") or year_from_name(change.name or "")
            obj = ObjectReport(
                key=change.key,
                name=change.name or change.key,
                category=_category(change.op),
                kind=kind,
                school=fact.get("school") or school,
                year=year,
                planned=planned,
            )
            if change.op in ("group.update", "admin_unit.update"):
                obj.old_name = fact.get("was")
            objects[change.key] = obj
        _apply(obj, change, outcome, person)

    items = sorted(objects.values(), key=ObjectReport.sort_key)
    notes = [n.message for n in plan.notices if n.code in NOTE_CODES]
    warnings = [
        Warning(n.message, n.code, n.roster_id, n.email) for n in plan.notices if n.code not in NOTE_CODES
    ]
    warnings += [Warning(w) for w in result.warnings]
    status = result.status if not (result.dry_run and result.status == "ok") else "planned"
    heading = title or ("Plan (dry run: nothing written)" if result.dry_run else "Sync run")
    return RunReport(
        title=heading,
        dry_run=result.dry_run,
        status=status,
        run_id=result.run_id,
        objects=items,
        totals=_totals(items),
        warnings=warnings,
        notes=notes,
        refused_limit=result.refused.limit if result.refused is not None else None,
        refused_message=result.refused.message if result.refused is not None else None,
        forced=result.forced,
        left_alone=_left_alone(plan.left_alone),
        handout=(
            f"{result.handout.path} ({count(result.handout.rows, 'row')}, readable only by this user); "
            "hand them out, then delete the file"
            if result.handout is not None
            else ""
        ),
    )


def _left_alone(seen: tuple[LeftAlone, ...]) -> str:
    """What was seen and left alone, e.g. "9 groups and 10 admin units of other schools …", or ""."""
    if not seen:
        return ""
    owners = sorted({f"{o.prefix or '(older marker)'}/{o.school}" for o in seen})
    groups = sum(o.count for o in seen if o.kind == "group")
    units = sum(o.count for o in seen if o.kind == "admin_unit")
    return (
        f"{count(groups, 'group')} and {count(units, 'admin unit')} of other schools or prefixes "
        f"({', '.join(owners)}); this config owns only its own"
    )


_VERBS = {
    "group.create": "create the group",
    "group.update": "rename",
    "group.delete": "delete the group",
    "group.members.add": "add members",
    "group.members.remove": "remove members",
    "group.owners.add": "add owners",
    "group.owners.remove": "remove owners",
    "admin_unit.create": "create the unit",
    "admin_unit.update": "rename",
    "admin_unit.delete": "delete the unit",
    "admin_unit.members.add": "add members",
    "admin_unit.members.remove": "remove members",
    "team.create": "make the team",
    "team.archive": "archive the team",
    "group.restore": "restore the deleted group",
    "group.purge": "purge the deleted group",
}


def _apply(obj: ObjectReport, change: Change, outcome: Any, person: Any) -> None:
    """Fold one change (and its outcome, after a run) into its object's report."""
    op = change.op
    people = [*change.owners, *change.users]
    if outcome is not None and outcome.result != "ok":
        obj.failures.append(
            Failure(
                _VERBS.get(op, op),
                outcome.error or outcome.result,
                tuple(person(u) for u in people),
                outcome.result,
            )
        )
        return
    ok_users = list(change.users)
    ok_owners = list(change.owners)
    if outcome is not None and outcome.users:
        failed: dict[str, list[PersonRef]] = {}
        for ref in people:
            user_result, error = outcome.users.get(ref.id, ("ok", None))
            if user_result != "ok":
                failed.setdefault(error or user_result, []).append(person(ref))
        for error, who in failed.items():
            obj.failures.append(Failure(_VERBS.get(op, op), error, tuple(who)))
        bad = {ref.id for ref in people if outcome.users.get(ref.id, ("ok", None))[0] != "ok"}
        ok_users = [u for u in change.users if u.id not in bad]
        ok_owners = [u for u in change.owners if u.id not in bad]
    if outcome is not None:
        obj.done += 1
    match op:
        case "group.create":
            obj.action = "new"
            spec = change.group
            if spec is not None:
                obj.detail = (
                    "class"
                    if spec.education_class
                    else f"{spec.type} group".replace("microsoft365", "Microsoft 365")
                )
            obj.members_added += [person(u) for u in ok_users]
            obj.owners_added += [person(u) for u in ok_owners]
        case "admin_unit.create":
            obj.action = "new"
            obj.detail = "restricted unit" if change.unit is not None and change.unit.restricted else "unit"
        case "group.members.add" | "admin_unit.members.add":
            obj.members_added += [person(u) for u in ok_users]
        case "group.members.remove" | "admin_unit.members.remove":
            obj.members_removed += [person(u) for u in ok_users]
        case "group.owners.add":
            obj.owners_added += [person(u) for u in ok_users]
        case "group.owners.remove":
            obj.owners_removed += [person(u) for u in ok_users]
        case "group.update" | "admin_unit.update":
            obj.name = dict(change.set_fields).get("displayName", obj.name)
        case "team.create":
            obj.team_created = True
        case "team.archive":
            obj.action = "archived"
            obj.archived_name = dict(change.set_fields).get("displayName")
        case "group.delete" | "admin_unit.delete":
            obj.action = "deleted"
        case "group.restore":
            obj.action = "restored"
        case "group.purge":
            obj.replaces_deleted = True
        case "user.create":
            obj.action = "new"
        case "user.update":
            account = change.account
            fields = [name for name, _ in account.properties] if account is not None else []
            if account is not None and account.marker and not fields:
                fields = ["marked as smartsync's"]
            obj.detail = ", ".join(fields)
        case "user.disable":
            obj.action = "disabled"
        case "user.enable":
            obj.action = "enabled"
        case "user.delete":
            obj.action = "deleted"


def _category(op: str) -> str:
    if op.startswith("admin_unit"):
        return "unit"
    return "account" if op.startswith("user.") else "group"


def _totals(objects: list[ObjectReport]) -> Totals:
    groups = [o for o in objects if o.category == "group"]
    units = [o for o in objects if o.category == "unit"]
    accounts = [o for o in objects if o.category == "account"]

    def done(items: list[ObjectReport], action: str) -> int:
        return sum(1 for o in items if o.action == action and o.status in ("planned", "ok", "partial"))

    return Totals(
        groups_created=done(groups, "new"),
        groups_changed=done(groups, "changed"),
        groups_deleted=done(groups, "deleted"),
        units_created=done(units, "new"),
        units_changed=done(units, "changed"),
        units_deleted=done(units, "deleted"),
        members_added=sum(len(o.members_added) for o in groups),
        members_removed=sum(len(o.members_removed) for o in groups),
        owners_added=sum(len(o.owners_added) for o in groups),
        owners_removed=sum(len(o.owners_removed) for o in groups),
        unit_members_added=sum(len(o.members_added) for o in units),
        unit_members_removed=sum(len(o.members_removed) for o in units),
        teams_created=sum(1 for o in groups if o.team_created),
        teams_archived=done(groups, "archived"),
        accounts_created=done(accounts, "new"),
        accounts_updated=done(accounts, "changed"),
        accounts_disabled=done(accounts, "disabled"),
        accounts_enabled=done(accounts, "enabled"),
        accounts_deleted=done(accounts, "deleted"),
        failed=sum(1 for o in objects for f in o.failures if f.result != "skipped"),
        skipped=sum(1 for o in objects for f in o.failures if f.result == "skipped"),
    )


def summary_of(report: RunReport) -> dict[str, int]:
    """The totals under the summary keys of the plan document, to check them against it."""
    t = report.totals
    return {
        "groups_created": t.groups_created,
        "groups_deleted": t.groups_deleted,
        "members_added": t.members_added,
        "members_removed": t.members_removed,
        "owners_added": t.owners_added,
        "owners_removed": t.owners_removed,
        "admin_units_created": t.units_created,
        "admin_units_deleted": t.units_deleted,
        "admin_unit_members_added": t.unit_members_added,
        "admin_unit_members_removed": t.unit_members_removed,
        "teams_created": t.teams_created,
        "teams_archived": t.teams_archived,
        "accounts_created": t.accounts_created,
        "accounts_updated": t.accounts_updated,
        "accounts_disabled": t.accounts_disabled,
        "accounts_enabled": t.accounts_enabled,
        "accounts_deleted": t.accounts_deleted,
    }


def count(number: int, word: str, plural: str | None = None) -> str:
    """`1 group`, `4,020 memberships`."""
    return f"{number:,} {word if number == 1 else plural or word + 's'}"


__all__ = [
    "NO_YEAR",
    "Failure",
    "ObjectReport",
    "PersonRef",
    "RunReport",
    "Totals",
    "build",
    "count",
    "summary_of",
]
