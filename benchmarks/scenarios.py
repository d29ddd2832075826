"""The rosters each scenario syncs: the sample school, a typical school day, and the next September.

Everything is derived deterministically from `smartsync.roster.sample.generate(size)` and a seed, so two
runs of the benchmark sync exactly the same changes.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date

from smartsync.roster.model import Membership, Person, Roster
from smartsync.roster.sample import generate

TODAY = date(2025, 10, 1)
NEXT_SEPTEMBER = date(2026, 9, 15)
# A typical day: this share of the learners' class and MIS-group memberships changes (half of the
# moves leave a group, half join another of the same year), plus a few joiners and leavers.
DAILY_MEMBERSHIP_CHANGE = 0.02
DAILY_JOINERS_PER_SCHOOL = 3
DAILY_LEAVERS_PER_SCHOOL = 3
LAST_YEAR = 13


@dataclass(frozen=True)
class SchoolRosters:
    """The rosters of one sample school across the scenarios, and every person Entra knows."""

    size: str
    base: Roster
    typical_day: Roster
    rollover: Roster

    def everyone(self) -> Roster:
        """All people of every scenario (for seeding Entra users); no groups or memberships."""
        people: dict[str, Person] = {}
        for roster in (self.base, self.typical_day, self.rollover):
            for person in roster.people:
                people.setdefault(person.id, replace(person, status="active"))
        return Roster(people=tuple(people.values()), groups=self.base.groups)


def school_rosters(size: str, seed: int = 1) -> SchoolRosters:
    base = generate(size, seed)
    return SchoolRosters(size, base, typical_day(base, seed), rollover(base))


def _year_number(person: Person) -> int | None:
    text = (person.year_group or "").removeprefix("Year ").strip()
    return int(text) if text.isdigit() else None


def typical_day(roster: Roster, seed: int = 1) -> Roster:
    """The same school the next day: 2 % of learner memberships moved, a few joiners and leavers."""
    rng = random.Random(f"smartsync-bench/day/{seed}")
    people = {p.id: p for p in roster.people}
    groups = {g.id: g for g in roster.groups}
    movable = [
        m
        for m in roster.memberships
        if m.role == "learner" and groups[m.group_id].type in ("class", "group") and people[m.user_id].active
    ]
    members_of: dict[str, set[str]] = defaultdict(set)
    for m in roster.memberships:
        members_of[m.group_id].add(m.user_id)
    same_year: dict[tuple[str | None, str | None, str], list[str]] = defaultdict(list)
    for g in roster.groups:
        if g.type == "class":
            same_year[(g.school, g.year_group, g.type)].append(g.id)
    moves = rng.sample(movable, round(len(roster.memberships) * DAILY_MEMBERSHIP_CHANGE / 2))
    dropped: set[Membership] = set()
    added: list[Membership] = []
    for m in moves:
        group = groups[m.group_id]
        choices = [
            gid
            for gid in same_year.get((group.school, group.year_group, "class"), [])
            if m.user_id not in members_of[gid]
        ]
        if not choices:
            continue
        target = rng.choice(choices)
        dropped.add(m)
        members_of[target].add(m.user_id)
        added.append(Membership(target, m.user_id, "learner"))
    schools = sorted({p.school or "" for p in roster.people})
    joiners: list[Person] = []
    for school in schools:
        learners = [
            p for p in roster.people if p.role == "learner" and p.active and (p.school or "") == school
        ]
        for n, peer in enumerate(rng.sample(learners, min(DAILY_JOINERS_PER_SCHOOL, len(learners))), 1):
            joiner = replace(
                peer,
                id=f"bench-joiner-{school or 'x'}-{n}",
                email=f"joiner{n}.{school.lower() or 'x'}@{peer.email.split('@')[1]}",
                employee_id=None,
            )
            joiners.append(joiner)
            # A joiner goes where a classmate goes: same form, same classes, same groups.
            added.extend(
                Membership(m.group_id, joiner.id, m.role)
                for m in roster.memberships
                if m.user_id == peer.id and m not in dropped
            )
        leavers = rng.sample(learners, min(DAILY_LEAVERS_PER_SCHOOL, len(learners)))
        for leaver in leavers:
            people[leaver.id] = replace(leaver, status="left")
    memberships = tuple(m for m in roster.memberships if m not in dropped) + tuple(added)
    return replace(
        roster,
        people=(*people.values(), *joiners),
        memberships=tuple(dict.fromkeys(memberships)),
        source=f"{roster.source}; typical day {seed}",
    )


def rollover(roster: Roster) -> Roster:
    """The same school in the next academic year: every learner a year up, the last year gone.

    Classes keep their roster ids and members, so with `today` in the new academic year every class
    group is created again under the new year's key and last year's class teams are archived; year
    groups, form groups and the year-group administrative units change membership.
    """
    people: list[Person] = []
    for person in roster.people:
        year = _year_number(person)
        if person.role != "learner" or year is None:
            people.append(person)
        elif year >= LAST_YEAR:
            people.append(replace(person, status="left"))
        else:
            people.append(replace(person, year_group=f"Year {year + 1}"))
    return replace(roster, people=tuple(people), source=f"{roster.source}; next September")
