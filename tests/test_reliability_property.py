"""Property-based: for any roster and any starting tenant, one run leaves nothing to do and harms nothing.

Hypothesis draws small rosters (learners, staff, classes, mentor groups, people without an Entra
account) and starting tenants: hand-made groups and administrative units whose names collide with
the ones smartsync will create, holding the same users, and sometimes what an earlier run for a
different roster left behind. After `run --force` (the limits are tested elsewhere): a fresh plan is
empty, every unmanaged object is byte for byte as it was, and no user object changed.
"""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import AUTUMN, tenant
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_reliability_support import actual_picture, duplicates, expected_picture, unmanaged_snapshot

from smartsync.demo import demo_seed, user_id_for
from smartsync.roster.model import Group, Membership, Person, Roster

YEARS = ("Year 7", "Year 8")


@dataclass(frozen=True)
class Start:
    """A starting tenant: the roster smartsync synced before (if any) and hand-made objects."""

    earlier: Roster | None
    unmanaged_groups: tuple[tuple[str, bool, tuple[int, ...]], ...]  # name, unified, member indexes
    unmanaged_units: tuple[tuple[str, tuple[int, ...]], ...]


@st.composite
def rosters(draw: st.DrawFn) -> Roster:
    learners = draw(st.integers(1, 10))
    staff = draw(st.integers(1, 3))
    people = [
        Person(f"L{n}", "learner", f"l{n}@prop.example", "Learner", f"N{n}", draw(st.sampled_from(YEARS)))
        for n in range(learners)
    ] + [Person(f"S{n}", "staff", f"s{n}@prop.example", "Staff", f"N{n}") for n in range(staff)]
    groups: list[Group] = []
    memberships: list[Membership] = []
    for n in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(("class", "class", "mentor", "group")))
        name = draw(st.sampled_from(("7A/Ma1", "7A/En1", "8B/Sc2", "Tutor 7", "Choir")))
        groups.append(Group(f"G{n}", name, kind, subject="Maths" if kind == "class" else None))
        chosen = draw(st.sets(st.integers(0, learners - 1), max_size=learners))
        memberships.extend(Membership(f"G{n}", f"L{i}", "learner") for i in sorted(chosen))
        if draw(st.booleans()):
            role = "teacher" if kind == "class" else "mentor" if kind == "mentor" else "member"
            memberships.append(Membership(f"G{n}", f"S{draw(st.integers(0, staff - 1))}", role))
    return Roster(tuple(people), tuple(groups), tuple(memberships))


@st.composite
def starts(draw: st.DrawFn, roster: Roster) -> Start:
    names = [f"{g.name} {g.subject or ''}".strip() for g in roster.groups] + ["All learners", "All staff"]
    people = len(roster.people)
    groups = tuple(
        (name, draw(st.booleans()), tuple(sorted(draw(st.sets(st.integers(0, people - 1), max_size=4)))))
        for name in draw(st.lists(st.sampled_from(names), max_size=3))
    )
    units = tuple(
        (name, tuple(sorted(draw(st.sets(st.integers(0, people - 1), max_size=4)))))
        for name in draw(st.lists(st.sampled_from(("Learners", "Staff", "Mentors", *YEARS)), max_size=2))
    )
    return Start(draw(st.none() | rosters()), groups, units)


def seed_for(roster: Roster, start: Start, missing_every: int | None) -> dict[str, Any]:
    seed = demo_seed(roster, missing_every=missing_every)
    people = sorted(roster.people, key=lambda p: p.id)
    seed["groups"] = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"prop/group/{n}")),
            "displayName": name,
            "mailNickname": f"handmade{n}",
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "members": [user_id_for(people[i].id) for i in members],
            "owners": [user_id_for(people[i].id) for i in members[:1]],
        }
        for n, (name, unified, members) in enumerate(start.unmanaged_groups)
    ]
    seed["administrative_units"] = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"prop/unit/{n}")),
            "displayName": name,
            "description": "Made by hand",
            "members": [user_id_for(people[i].id) for i in members],
        }
        for n, (name, members) in enumerate(start.unmanaged_units)
    ]
    # Owners and members must be users the tenant knows: drop references to people left without one.
    known = {u["id"] for u in seed["users"]}
    for obj in seed["groups"] + seed["administrative_units"]:
        for rel in ("members", "owners"):
            if rel in obj:
                obj[rel] = [m for m in obj[rel] if m in known]
    return seed


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[Roster, Start, int | None]:
    roster = draw(rosters())
    return roster, draw(starts(roster)), draw(st.sampled_from((None, 3, 5)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_after_a_run_nothing_is_left_to_do_and_nothing_unmanaged_or_any_user_changed(
    scenario: tuple[Roster, Start, int | None],
) -> None:
    roster, start, missing_every = scenario
    # The earlier roster must know everyone the tenant has, so seed from the union of people.
    everyone = {p.id: p for p in roster.people}
    if start.earlier is not None:
        everyone.update({p.id: p for p in start.earlier.people if p.id not in everyone})
    seed = seed_for(Roster(tuple(everyone.values()), (), ()), start, missing_every)
    with tempfile.TemporaryDirectory() as folder, tenant(Path(folder), roster, seed=seed) as t:
        if start.earlier is not None:
            t.sync(start.earlier, force=True)
        before = unmanaged_snapshot(t.state())
        users_before = [dict(u) for u in t.state()["users"]]
        result = t.sync(roster, force=True)
        assert result.status in ("ok", "partial"), result.failed[:1]
        assert result.status == "ok", [o.error for o in result.failed][:3]
        state = t.state()
        assert t.sync(roster, dry_run=True).plan.changes == ()
        assert expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)) == []
        assert unmanaged_snapshot(state) == before
        assert state["users"] == users_before
        assert duplicates(state) == []
