"""Which schools a config owns (DESIGN §5): its codes in the export, and its objects in Entra.

Several configs share one tenant (one per school of a trust, or a second `sync.prefix`), and a
trust may share one export between them. A config therefore works on the export's rows of its own
codes only (`school.code` or `school.codes`; rows without a school belong to `school.code`), and
owns only the Entra objects whose key starts with one of its codes and that carry its prefix.
Everything else is left out with a notice, never read as "the roster no longer has it".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from smartsync.config import SchoolConfig
from smartsync.engine.naming import code_of_key
from smartsync.engine.state import Notice
from smartsync.roster.model import Roster


@dataclass(frozen=True)
class SchoolSelection:
    """The export's rows of the config's codes, what was left out, and codes that have no rows."""

    roster: Roster
    notices: tuple[Notice, ...] = ()
    vanished: tuple[str, ...] = ()


def owns_code(codes: Collection[str], code: str) -> bool:
    """True when `code` is one of `codes` (school codes compare without regard to case)."""
    return code.lower() in {c.lower() for c in codes}


def owns_key(codes: Collection[str] | None, key: str) -> bool:
    """True when the managed object's key belongs to one of `codes` (None: every code)."""
    return codes is None or owns_code(codes, code_of_key(key))


def select_schools(roster: Roster, school: SchoolConfig) -> SchoolSelection:
    """The rows of `roster` that belong to the config's school codes."""
    codes = school.all_codes

    def ours(value: str | None) -> bool:
        return not value or owns_code(codes, value)

    people = tuple(p for p in roster.people if ours(p.school))
    groups = tuple(g for g in roster.groups if ours(g.school))
    person_ids = {p.id for p in people}
    group_ids = {g.id for g in groups}
    crossing = 0
    if len(people) == len(roster.people) and len(groups) == len(roster.groups):
        selected = roster
    else:
        memberships = tuple(
            m for m in roster.memberships if m.user_id in person_ids and m.group_id in group_ids
        )
        crossing = sum(
            1 for m in roster.memberships if m.group_id in group_ids and m.user_id not in person_ids
        )
        selected = Roster(people, groups, memberships, roster.source, roster.notes)
    notices: list[Notice] = []
    other_people = Counter(str(p.school) for p in roster.people if not ours(p.school))
    other_groups = Counter(str(g.school) for g in roster.groups if not ours(g.school))
    if other_people or other_groups:
        parts = [
            f"{code} ({_count(other_people.get(code, 0), 'person', 'people')}, "
            f"{_count(other_groups.get(code, 0), 'group', 'groups')})"
            for code in sorted(set(other_people) | set(other_groups))
        ]
        across = (
            f" {crossing} memberships of this config's groups name people of those schools and are left "
            "out too."
            if crossing
            else ""
        )
        notices.append(
            Notice(
                "other_schools_left_out",
                f"The export also holds other schools, left out because this config owns only "
                f"{', '.join(codes)} (school.code / school.codes): {', '.join(parts)}.{across}",
            )
        )
    present = {
        (value or school.code).lower() for value in (*(p.school for p in people), *(g.school for g in groups))
    }
    # An export without any person is the empty-roster refusal's to name; here a code is missing
    # from an export that does hold people.
    vanished = tuple(c for c in codes if c.lower() not in present) if roster.people else ()
    return SchoolSelection(selected, tuple(notices), vanished)


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"
