"""Facts about the plan's objects that the report needs and the plan alone does not carry.

Computed once per run from want and have, and carried in the plan's `extra`: each object's year
group, school, former name and member count, and the roster's names of the people involved, so that
a report or a page can say "owner J. Kowalski" and group objects by year without reading anything.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from smartsync.engine.state import ActualState, DesiredState

# Objects that belong to no year group (staff, all learners, units of the whole school).
NO_YEAR = "Whole school"

_YEAR_PREFIX = re.compile(r"^(?:Archived [^:]*: )?(\d{1,2})(?!\d)")


def object_facts(want: DesiredState, have: ActualState) -> dict[str, dict[str, str]]:
    """Kind, school and year group of every object of `want` and `have`, for the plan's `extra`.

    Objects leaving the roster are only in `have`, which knows no year group: their year is taken
    from a class name such as "7A/Ma1" where it can be, else they count as whole-school objects.
    """
    facts: dict[str, dict[str, str]] = {}
    for key, current in have.groups.items():
        facts[key] = {
            "year": year_from_name(current.display_name),
            "was": current.display_name,
            "members": str(len(current.members)),
        }
    for key, current_unit in have.admin_units.items():
        facts[key] = {"year": NO_YEAR, "was": current_unit.display_name}
    for key, spec in want.groups.items():
        facts[key] = {**facts.get(key, {}), "year": spec.year_group or NO_YEAR, "school": spec.school or ""}
    for key, unit in want.admin_units.items():
        facts[key] = {**facts.get(key, {}), "year": unit.year_group or NO_YEAR, "school": unit.school or ""}
    return facts


def people_names(people: Iterable[Any], find: Callable[[Any], Any]) -> dict[str, str]:
    """Roster names by Entra object id, so the report can say "owner J. Kowalski".

    `find` is the user directory's match of a roster person to an Entra user (or None).
    """
    names: dict[str, str] = {}
    for person in people:
        user = find(person)
        if user is not None and person.display_name:
            names[user.id] = person.display_name
    return names


_YEAR_PREFIX = re.compile(r"^(?:Archived [^:]*: )?(\d{1,2})(?!\d)")


def year_from_name(name: str) -> str:
    match = _YEAR_PREFIX.match(name)
    return f"Year {match.group(1)}" if match else NO_YEAR
