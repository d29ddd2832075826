"""What `smartsync validate` reports: counts of a roster and the problems found in it.

Pure functions over a `Roster` (and optionally the config): nothing here reads files or contacts Entra.
The JSON shape is part of the contract (`validate --json`); the text form is for a sysadmin's terminal
or cron mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from smartsync.config import Config
from smartsync.errors import Problem
from smartsync.roster.model import Roster
from smartsync.roster.sources.mapping import MAPPING_NOTE

# How many group names to show inline before summarising the rest as "and N more".
_SHOWN_NAMES = 5


@dataclass(frozen=True)
class ValidationSummary:
    """Counts of one roster; people and memberships count only what a sync would act on."""

    source: str
    learners: int  # active learners
    staff: int  # active staff
    suspended: int
    left: int
    class_groups: int
    mentor_groups: int
    year_groups: int  # listed in the export, plus those derived from learners' year_group
    mis_groups: int
    derived_year_groups: tuple[str, ...]
    memberships: int  # all membership rows
    active_memberships: int  # rows naming an active person: the ones a sync applies
    learners_without_year_group: int
    groups_without_owner: tuple[str, ...]  # group names with no active teacher or mentor
    notes: tuple[str, ...]  # things worth knowing that are not errors
    # What a non-Realsmart source was mapped to ("grade 9 → Year 10: 30 learners"), in reading order.
    mappings: tuple[str, ...] = ()
    schools: tuple[str, ...] = ()  # school codes of a trust's roster; empty: all are the config's school

    @property
    def groups(self) -> dict[str, int]:
        return {
            "class": self.class_groups,
            "mentor": self.mentor_groups,
            "year": self.year_groups,
            "group": self.mis_groups,
        }

    def to_json(self, problems: Sequence[Problem] = ()) -> dict[str, Any]:
        """The `validate --json` document."""
        return {
            "source": self.source,
            "valid": not problems,
            "people": {
                "learners": self.learners,
                "staff": self.staff,
                "suspended": self.suspended,
                "left": self.left,
            },
            "groups": self.groups,
            "derived_year_groups": list(self.derived_year_groups),
            "memberships": self.memberships,
            "active_memberships": self.active_memberships,
            "learners_without_year_group": self.learners_without_year_group,
            "groups_without_owner": list(self.groups_without_owner),
            "schools": list(self.schools),
            "mappings": list(self.mappings),
            "notes": list(self.notes),
            "problems": [
                {"file": p.file, "line": p.line, "column": p.column, "message": p.message} for p in problems
            ],
        }

    def render_text(self, problems: Sequence[Problem] = ()) -> list[str]:
        """Plain lines for a terminal or cron mail."""
        derived = len(self.derived_year_groups)
        # The Realsmart export lists people in users.csv; other sources derive year groups from grades.
        origin = "the learners' grades" if self.mappings else "users.csv"
        derived_note = f" ({derived} derived from {origin})" if derived else ""
        lines = [f"Source: {self.source}"]
        if self.schools:
            lines.append(f"Schools: {len(self.schools)} ({_some(self.schools)})")
        if self.mappings:
            lines.append("Mapped:")
            lines.extend(f"  {mapping}" for mapping in self.mappings)
        lines += [
            f"People: {self.learners} learners, {self.staff} staff active "
            f"({self.suspended} suspended, {self.left} left: not synced)",
            f"Groups: {self.class_groups} class, {self.mentor_groups} mentor, "
            f"{self.year_groups} year{derived_note}, {self.mis_groups} MIS group",
            f"Memberships: {self.memberships} ({self.active_memberships} of active people)",
        ]
        if self.learners_without_year_group:
            lines.append(
                f"Learners without a year group: {self.learners_without_year_group} "
                + (
                    "(no grade, or one source.grade_map does not map)"
                    if self.mappings
                    else "(suspended or left)"
                )
            )
        if self.groups_without_owner:
            lines.append(
                f"Groups without an owner: {len(self.groups_without_owner)} "
                f"({_some(self.groups_without_owner)}): no active teacher or mentor, so no owner in Entra"
            )
        lines.extend(f"note: {note}" for note in self.notes)
        if problems:
            lines.append(f"Problems: {len(problems)} (nothing will be written until they are fixed)")
            lines.extend(f"  {problem}" for problem in problems)
        else:
            lines.append("No problems found.")
        return lines


def _some(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN_NAMES])
    return shown + (f" and {len(names) - _SHOWN_NAMES} more" if len(names) > _SHOWN_NAMES else "")


def derived_year_groups(roster: Roster) -> tuple[str, ...]:
    """Year groups of active learners that the export does not list as a `type: year` group."""
    listed = {g.year_group or g.name for g in roster.groups if g.type == "year"}
    found = {p.year_group for p in roster.learners if p.active and p.year_group}
    return tuple(sorted(found - listed, key=_year_order))


def _year_order(name: str) -> tuple[int, str]:
    # "Year 7" before "Year 10": order by the number when there is one.
    digits = "".join(ch for ch in name if ch.isdigit())
    return (int(digits) if digits else 10_000, name)


def _config_notes(roster: Roster, config: Config | None) -> list[str]:
    if config is None:
        return []
    notes = []
    active = [p for p in roster.people if p.active]
    if config.users.match == "employeeId":
        without = sum(1 for p in active if not p.employee_id)
        if without:
            notes.append(
                f"users.match is employeeId but {without} active people have no employee_id; "
                "they will match no Entra user"
            )
    return notes


def validate_roster(roster: Roster, config: Config | None = None) -> ValidationSummary:
    """Count what a sync of `roster` would act on, and note what looks odd (none of it is an error)."""
    active_ids = {p.id for p in roster.people if p.active}
    owned = {m.group_id for m in roster.memberships if m.is_owner and m.user_id in active_ids}
    kinds = [g.type for g in roster.groups]
    derived = derived_year_groups(roster)
    return ValidationSummary(
        source=roster.source,
        learners=sum(1 for p in roster.learners if p.active),
        staff=sum(1 for p in roster.staff if p.active),
        suspended=sum(1 for p in roster.people if p.status == "suspended"),
        left=sum(1 for p in roster.people if p.status == "left"),
        class_groups=kinds.count("class"),
        mentor_groups=kinds.count("mentor"),
        year_groups=kinds.count("year") + len(derived),
        mis_groups=kinds.count("group"),
        derived_year_groups=derived,
        memberships=len(roster.memberships),
        active_memberships=sum(1 for m in roster.memberships if m.user_id in active_ids),
        learners_without_year_group=sum(1 for p in roster.learners if not p.year_group),
        groups_without_owner=tuple(g.name for g in roster.groups if g.id not in owned),
        notes=(*(n for n in roster.notes if not n.startswith(MAPPING_NOTE)), *_config_notes(roster, config)),
        mappings=tuple(n.removeprefix(MAPPING_NOTE) for n in roster.notes if n.startswith(MAPPING_NOTE)),
        schools=tuple(
            sorted(
                {p.school for p in roster.people if p.school} | {g.school for g in roster.groups if g.school}
            )
        ),
    )


__all__ = ["ValidationSummary", "derived_year_groups", "validate_roster"]
