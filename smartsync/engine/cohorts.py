"""Vanishing cohorts: a year group, a school's learners or staff, shrinking by more than half in one run.

A year group missing from the export (a broken MIS report, a filter left on) otherwise removes
hundreds of memberships and deletes that year's group and unit, each step within the other limits.
The cohort objects smartsync manages (year groups, all learners, all staff, and their units) show
what a run would take from each cohort: the people its changes remove, or all of them when the
object is deleted or archived. The safety check (`smartsync.engine.safety`) refuses a plan in which one of
them loses more than `safety.max_cohort_loss_fraction` of its people.

In September whole year groups move up and leavers go, so the check rests from the academic year's
start for `ROLLOVER_DAYS` days (before it, the summer quiet window already holds removals back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from smartsync.config import YearConfig
from smartsync.engine.calendar import academic_year
from smartsync.engine.naming import code_of_key
from smartsync.engine.plan import Plan
from smartsync.engine.state import ActualState

ROLLOVER_DAYS = 14
# A cohort losing this many people or fewer is never refused: a handful leaving a small year is normal.
MIN_COHORT_LOSS = 10

# Kinds of the key (`NFA-year-Year_7`, `NFA-au_learners`) that stand for a cohort, and what they are.
COHORT_KINDS = {
    "year": "year group",
    "au_year": "year group",
    "all_learners": "all learners",
    "au_learners": "all learners",
    "all_staff": "all staff",
    "au_staff": "all staff",
}
_REMOVALS = ("group.members.remove", "admin_unit.members.remove")
_ENDINGS = ("group.delete", "admin_unit.delete", "team.archive")


@dataclass(frozen=True)
class CohortLoss:
    """One cohort object that the plan would shrink: `lost` of its `before` people."""

    key: str
    name: str
    cohort: str  # year group | all learners | all staff
    school: str
    unit: bool
    before: int
    lost: int

    @property
    def fraction(self) -> float:
        return self.lost / self.before if self.before else 0.0

    def describe(self) -> str:
        what = "admin unit" if self.unit else "group"
        return (
            f"'{self.name}' ({self.school} {self.cohort}, {what}) would lose {self.lost} of its "
            f"{self.before} people ({self.fraction:.0%})"
        )


def in_rollover(today: date, year: YearConfig) -> bool:
    """True in the first ROLLOVER_DAYS days of the academic year (the September rollover)."""
    start = academic_year(today, year.model_copy(update={"academic_year": None}))
    month, day = (int(part) for part in year.start.split("-"))
    begins = date(start.start_year, month, day)
    return begins <= today < begins + timedelta(days=ROLLOVER_DAYS)


def cohort_losses(plan: Plan, have: ActualState) -> tuple[CohortLoss, ...]:
    """Every managed cohort object the plan removes people from, with how many it would lose."""
    removed: dict[str, set[str]] = {}
    ended: set[str] = set()
    for change in plan.changes:
        if change.op in _REMOVALS:
            removed.setdefault(change.key, set()).update(u.id for u in change.users)
        elif change.op in _ENDINGS:
            ended.add(change.key)
    out: list[CohortLoss] = []
    objects = [(key, g.display_name, g.members, False) for key, g in have.groups.items() if not g.archived]
    objects += [(key, u.display_name, u.members, True) for key, u in have.admin_units.items()]
    for key, name, members, unit in objects:
        parts = key.split("-")
        cohort = COHORT_KINDS.get(parts[1]) if len(parts) > 1 else None
        if cohort is None or not members or (key not in removed and key not in ended):
            continue
        ids = {m.id for m in members}
        lost = len(ids) if key in ended else len(ids & removed[key])
        out.append(CohortLoss(key, name, cohort, code_of_key(key), unit, len(ids), lost))
    return tuple(sorted(out, key=lambda c: (-c.fraction, c.key)))
