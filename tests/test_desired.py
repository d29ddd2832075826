"""Desired state: roster + config rules + Entra users → the groups and units Entra should hold."""

from __future__ import annotations

from datetime import date
from typing import Any

from smartsync.config import Config, parse_config
from smartsync.engine.desired import UserDirectory, build_desired
from smartsync.engine.state import EntraUser
from smartsync.roster.model import Group, Membership, Person, Roster


def config(**sync: Any) -> Config:
    return parse_config(
        {
            "tenant": {"tenant_id": "t", "client_id": "c", "client_secret": "s"},
            "source": {"path": "export"},
            "school": {"code": "NFA", "name": "Northfield Academy"},
            "sync": sync,
        }
    )


PEOPLE = (
    Person("L1", "learner", "a.pupil@nfa.example", "Amy", "Pupil", "Year 7"),
    Person("L2", "learner", "b.pupil@nfa.example", "Ben", "O'Brien", "Year 7"),
    Person("L3", "learner", "c.pupil@nfa.example", "Zoë", "Smith-Jones", "Year 8"),
    Person("L4", "learner", "gone@nfa.example", "Left", "Pupil", "Year 8", status="left"),
    Person("L5", "learner", "nouser@nfa.example", "No", "Account", "Year 8"),
    Person("S1", "staff", "t.teacher@nfa.example", "Tess", "Teacher"),
    Person("S2", "staff", "m.mentor@nfa.example", "Matt", "Mentor"),
)
GROUPS = (
    Group("4711", "7A/Ma1", "class", subject="Maths", year_group="Year 7"),
    Group("M7A", "7A", "mentor", year_group="Year 7"),
    Group("G1", "Choir", "group"),
)
MEMBERSHIPS = (
    Membership("4711", "L1", "learner"),
    Membership("4711", "L2", "learner"),
    Membership("4711", "L4", "learner"),
    Membership("4711", "L5", "learner"),
    Membership("4711", "S1", "teacher"),
    Membership("M7A", "L1", "learner"),
    Membership("M7A", "S2", "mentor"),
    Membership("G1", "L3", "member"),
)
ROSTER = Roster(PEOPLE, GROUPS, MEMBERSHIPS)
AUTUMN = date(2025, 10, 1)
USERS = [
    EntraUser(f"id-{p.id}", p.email.upper(), p.email, p.employee_id)
    for p in PEOPLE
    if p.email != "nouser@nfa.example"
]


def addresses(refs: frozenset[Any]) -> set[str]:
    return {r.address.lower() for r in refs}


def test_groups_per_kind_with_owners_and_names() -> None:
    want = build_desired(ROSTER, config(), UserDirectory.build(USERS, "userPrincipalName"), today=AUTUMN)
    assert sorted(want.groups) == [
        "NFA-all_learners",
        "NFA-all_staff",
        "NFA-class-2025-4711",
        "NFA-group-G1",
        "NFA-mentor-M7A",
        "NFA-year-Year_7",
        "NFA-year-Year_8",
    ]
    cls = want.groups["NFA-class-2025-4711"]
    assert cls.display_name == "7A/Ma1 Maths"
    assert cls.type == "microsoft365"
    assert cls.mail_nickname == "smartsync-NFA-class-2025-4711"
    assert cls.team_template == "educationClass" and cls.education_class
    assert cls.academic_year == "2025-26"
    assert addresses(cls.owners) == {"t.teacher@nfa.example"}
    # Teachers are members too; the leaver and the unmatched pupil are not.
    assert addresses(cls.members) == {"a.pupil@nfa.example", "b.pupil@nfa.example", "t.teacher@nfa.example"}
    assert want.groups["NFA-mentor-M7A"].display_name == "Mentor group 7A"
    assert addresses(want.groups["NFA-mentor-M7A"].owners) == {"m.mentor@nfa.example"}
    assert want.groups["NFA-year-Year_8"].display_name == "Year 8 learners"
    assert addresses(want.groups["NFA-year-Year_8"].members) == {"c.pupil@nfa.example"}
    assert want.groups["NFA-year-Year_8"].type == "security"
    assert addresses(want.groups["NFA-all_staff"].members) == {
        "t.teacher@nfa.example",
        "m.mentor@nfa.example",
    }
    assert len(want.groups["NFA-all_learners"].members) == 3


def test_unmatched_active_people_become_warnings_with_roster_id() -> None:
    want = build_desired(ROSTER, config(), UserDirectory.build(USERS, "userPrincipalName"), today=AUTUMN)
    assert [(n.code, n.roster_id, n.email) for n in want.notices] == [
        ("user_not_found", "L5", "nouser@nfa.example")
    ]
    assert want.roster_people == 6 and want.matched_people == 5


def test_match_by_employee_id() -> None:
    people = (Person("L1", "learner", "x@nfa.example", "A", "B", "Year 7", employee_id="ADM001"),)
    roster = Roster(people, (), ())
    users = [EntraUser("id-1", "someone.else@nfa.example", None, "adm001")]
    want = build_desired(roster, config(), UserDirectory.build(users, "employeeId"))
    assert want.matched_people == 1
    assert addresses(want.groups["NFA-all_learners"].members) == {"someone.else@nfa.example"}


def test_kinds_and_templates_from_config() -> None:
    cfg = config(groups={"kinds": ["class"], "names": {"class": "{school_code} {name} ({subject})"}})
    want = build_desired(ROSTER, cfg, UserDirectory.build(USERS, "userPrincipalName"), today=AUTUMN)
    assert [g.display_name for g in want.groups.values()] == ["NFA 7A/Ma1 (Maths)"]


def test_admin_units_per_kind_and_year() -> None:
    want = build_desired(ROSTER, config(), UserDirectory.build(USERS, "userPrincipalName"), today=AUTUMN)
    units = {u.display_name: addresses(u.members) for u in want.admin_units.values()}
    assert units == {
        "Learners": {"a.pupil@nfa.example", "b.pupil@nfa.example", "c.pupil@nfa.example"},
        "Staff": {"t.teacher@nfa.example", "m.mentor@nfa.example"},
        "Mentors": {"m.mentor@nfa.example"},
        "Year 7": {"a.pupil@nfa.example", "b.pupil@nfa.example"},
        "Year 8": {"c.pupil@nfa.example"},
    }


def test_trust_export_makes_groups_per_school() -> None:
    people = (
        Person("L1", "learner", "a@one.example", "A", "A", "Year 7", school="ONE"),
        Person("L2", "learner", "b@two.example", "B", "B", "Year 7", school="TWO"),
    )
    users = [EntraUser(f"id-{p.id}", p.email) for p in people]
    want = build_desired(Roster(people, (), ()), config(), UserDirectory.build(users, "userPrincipalName"))
    assert {"ONE-year-Year_7", "TWO-year-Year_7", "ONE-all_learners", "TWO-all_learners"} <= set(want.groups)
    names = sorted(u.display_name for u in want.admin_units.values())
    assert "Learners (ONE)" in names and "Learners (TWO)" in names


def test_classes_belong_to_their_academic_year() -> None:
    directory = UserDirectory.build(USERS, "userPrincipalName")
    before = build_desired(ROSTER, config(), directory, today=date(2026, 8, 31))
    after = build_desired(ROSTER, config(), directory, today=date(2026, 9, 1))
    assert "NFA-class-2025-4711" in before.groups
    assert "NFA-class-2026-4711" in after.groups and "NFA-class-2025-4711" not in after.groups
    # Only classes are year-scoped by default: mentor groups keep their key.
    assert "NFA-mentor-M7A" in before.groups and "NFA-mentor-M7A" in after.groups


def test_class_without_teacher_gets_fallback_owner_or_a_warning() -> None:
    roster = Roster(
        PEOPLE, (Group("99", "8B/Fr1", "class", subject="French"),), (Membership("99", "L3", "learner"),)
    )
    directory = UserDirectory.build(USERS, "userPrincipalName")
    plain = build_desired(roster, config(groups={"kinds": ["class"]}), directory, today=AUTUMN)
    assert [n.code for n in plain.notices if n.code.startswith("team")] == ["team_without_owner"]
    assert plain.groups["NFA-class-2025-99"].owners == frozenset()
    cfg = config(groups={"kinds": ["class"]}, teams={"fallback_owners": ["T.Teacher@nfa.example"]})
    fallback = build_desired(roster, cfg, directory, today=AUTUMN)
    assert addresses(fallback.groups["NFA-class-2025-99"].owners) == {"t.teacher@nfa.example"}
    assert not [n for n in fallback.notices if n.code.startswith("team")]
