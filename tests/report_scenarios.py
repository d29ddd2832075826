"""The bundled sample school's report scenarios: a first run, a typical day, a rollover, a refusal.

Each runs the real pipeline against the simulated tenant; the golden-file and browser tests render
what they return. Run ids are fixed so that the rendered reports are the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from harness import tenant

from smartsync.config import SourceConfig
from smartsync.demo import demo_seed
from smartsync.engine.run import RunResult
from smartsync.roster.model import Membership, Person, Roster
from smartsync.roster.sample import bundled_sample_path
from smartsync.roster.sources import read_roster

SEPTEMBER = date(2026, 9, 2)
JUNE = date(2026, 6, 1)
JOINER = Person("J900", "learner", "new.joiner@northfield.example", "Nia", "Joiner", "Year 7")


@dataclass(frozen=True)
class Scenarios:
    first_run: RunResult
    typical_day: RunResult
    rollover: RunResult
    refusal: RunResult
    day_facts: dict[str, str]


def sample_roster() -> Roster:
    return read_roster(
        SourceConfig.model_validate({"type": "realsmart-export", "path": bundled_sample_path()})
    )


def _fixed(result: RunResult, run_id: str) -> RunResult:
    return replace(result, run_id=run_id)


def typical_day(roster: Roster) -> tuple[Roster, dict[str, str]]:
    """Two learners move class, one leaves, one joins, and one class changes teacher."""
    people = {p.id: p for p in roster.people}
    groups = {g.id: g for g in roster.groups}
    memberships = list(roster.memberships)
    classes = [g for g in roster.groups if g.type == "class" and g.year_group == "Year 9"]
    first, second = classes[0], classes[1]
    in_first = [m for m in memberships if m.group_id == first.id and m.role == "learner"]
    in_second = {m.user_id for m in memberships if m.group_id == second.id}
    movers = [m for m in in_first if m.user_id not in in_second][:2]
    for move in movers:
        memberships.remove(move)
        memberships.append(Membership(second.id, move.user_id, "learner"))
    leaver = next(p for p in roster.people if p.role == "learner" and p.year_group == "Year 10" and p.active)
    people[leaver.id] = replace(leaver, status="left")
    target = next(g for g in roster.groups if g.type == "class" and g.year_group == "Year 8")
    old_teacher = next(m for m in memberships if m.group_id == target.id and m.role == "teacher")
    teachers = {m.user_id for m in memberships if m.group_id == target.id and m.role == "teacher"}
    new_teacher = next(p for p in roster.people if p.role == "staff" and p.id not in teachers and p.active)
    memberships.remove(old_teacher)
    memberships.append(Membership(target.id, new_teacher.id, "teacher"))
    people[JOINER.id] = JOINER
    joiner_class = next(g for g in roster.groups if g.type == "class" and g.year_group == "Year 7")
    memberships.append(Membership(joiner_class.id, JOINER.id, "learner"))
    facts = {
        "moved_from": f"{first.name} {first.subject}",
        "moved_to": f"{second.name} {second.subject}",
        "leaver": leaver.email,
        "teacher_class": f"{target.name} {target.subject}",
        "new_teacher": people[new_teacher.id].email,
        "old_teacher": people[old_teacher.user_id].email,
    }
    assert groups
    return replace(roster, people=tuple(people.values()), memberships=tuple(memberships)), facts


def run_scenarios(tmp_path: Path, roster: Roster | None = None) -> Scenarios:
    roster = roster or sample_roster()
    day, facts = typical_day(roster)
    seed = demo_seed(replace(roster, people=(*roster.people, JOINER)))
    with tenant(tmp_path / "day", roster, seed=seed) as t:
        first = _fixed(t.sync(roster), "20251001T040000Z-f1r5")
        today = _fixed(t.sync(day), "20251002T040000Z-d4y1")
    with tenant(tmp_path / "rollover", roster) as t:
        t.sync(roster, today=JUNE)
        refused = _fixed(t.sync(roster, today=SEPTEMBER), "20260902T040000Z-0ref")
        rollover = _fixed(t.sync(roster, today=SEPTEMBER, force=True), "20260902T041500Z-r011")
    return Scenarios(first, today, rollover, refused, facts)
