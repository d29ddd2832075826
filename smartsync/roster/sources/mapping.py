"""Mapping another roster format's records onto the roster model, with every decision counted.

OneRoster and School Data Sync describe the same things as the Realsmart export in other words: US
grades instead of UK year groups, `student`/`teacher` instead of `learner`/`staff`, organisations
instead of school codes. `RosterBuilder` takes records already read from a format's files, checks what
every format must satisfy (unique ids and sign-in addresses, memberships naming known people and
groups, students never owning a group), and counts each mapping it applies so that `smartsync validate`
can show what was mapped to what ("grade 9 → Year 10: 30 learners").

Those counts travel in `Roster.notes` as lines starting with `MAPPING_NOTE`; `smartsync.roster.validate` shows
them apart from the other notes.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar

from smartsync.errors import Problem
from smartsync.roster.model import Group, GroupType, Membership, MembershipRole, Person, PersonRole, Roster
from smartsync.roster.sources.realsmart import InvalidExportError
from smartsync.roster.sources.tables import Row

MAPPING_NOTE = "mapped: "

MemberKind = Literal["learner", "owner", "member"]

# Organisation types that are a school for smartsync (a trust's member); departments roll up to one.
INSTITUTION_TYPES = frozenset({"school", "college", "university"})

# US grades (CEDS codes as OneRoster and SDS write them) to English year groups: a US grade N pupil is
# one year ahead in the English numbering (US grade 9, age 14-15, is Year 10).
_US_GRADES: dict[str, str] = {
    **{str(n): f"Year {n + 1}" for n in range(1, 13)},
    "KG": "Year 1",
    "K": "Year 1",
    "TK": "Reception",
    "PK": "Reception",
}

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def looks_like_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def grade_key(grade: str) -> str:
    """`09`, `9` and ` 9 ` are one grade; letters compare without case (`kg` is `KG`)."""
    value = grade.strip().upper()
    return str(int(value)) if value.isdigit() else value


@dataclass(frozen=True)
class GradeMap:
    """US grades to year groups, with the config's `source.grade_map` entries taking precedence.

    An entry mapping a grade to "" means: learners in that grade get no year group.
    """

    overrides: Mapping[str, str] = field(default_factory=dict)

    def year_group(self, grade: str) -> str | None:
        key = grade_key(grade)
        if not key:
            return None
        for given, year in self.overrides.items():
            if grade_key(given) == key:
                return year.strip() or None
        return _US_GRADES.get(key)


@dataclass(frozen=True)
class Org:
    id: str
    name: str
    type: str  # lower case
    parent: str


@dataclass(frozen=True)
class PersonRecord:
    row: Row
    id: str
    role: PersonRole
    role_as_written: str
    sign_in: str
    first_name: str
    last_name: str
    grades: tuple[str, ...]
    org_ids: tuple[str, ...]
    enabled: bool = True
    employee_id: str = ""
    id_column: tuple[str, ...] = ("sourcedId",)
    sign_in_column: tuple[str, ...] = ("username",)


@dataclass(frozen=True)
class GroupRecord:
    row: Row
    id: str
    name: str
    type: GroupType
    subject: str
    grades: tuple[str, ...]
    org_id: str
    id_column: tuple[str, ...] = ("sourcedId",)
    name_column: tuple[str, ...] = ("title",)


@dataclass(frozen=True)
class MembershipRecord:
    row: Row
    group_id: str
    user_id: str
    kind: MemberKind
    role_as_written: str
    group_column: tuple[str, ...] = ("classSourcedId",)
    user_column: tuple[str, ...] = ("userSourcedId",)


def _where(row: Row) -> str:
    return f"{row.file} line {row.line}"


def split_list(value: str) -> tuple[str, ...]:
    """OneRoster lists (`grades`, `orgSourcedIds`, `subjects`) are comma-separated inside one field."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


_Record = TypeVar("_Record", "PersonRecord", "GroupRecord")


@dataclass
class RosterBuilder:
    """Collects a format's records, checks them together and builds the `Roster`."""

    label: str  # what was read, for `validate` and messages: "oneroster-csv (OneRoster 1.1): <path>"
    grade_map: GradeMap
    problems: list[Problem]
    username_domain: str | None = None
    orgs: dict[str, Org] = field(default_factory=dict)
    people: list[PersonRecord] = field(default_factory=list)
    groups: list[GroupRecord] = field(default_factory=list)
    memberships: list[MembershipRecord] = field(default_factory=list)
    skipped_people: set[str] = field(default_factory=set)
    skipped_groups: set[str] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)
    mapped: Counter[tuple[str, str]] = field(default_factory=Counter)  # (mapping, what is counted)

    def count(self, mapping: str, unit: str, by: int = 1) -> None:
        self.mapped[(mapping, unit)] += by

    def skip_person(self, person_id: str, why: str) -> None:
        self.skipped_people.add(person_id)
        self.count(why, "users")

    def skip_group(self, group_id: str, why: str) -> None:
        self.skipped_groups.add(group_id)
        self.count(why, "classes")

    # -------------------------------------------------------------------------------------------
    # Sign-in addresses

    def sign_in(self, username: str, email: str) -> str:
        """The address compared with Entra: a UPN-like username, else the email, else username@domain."""
        if looks_like_email(username):
            return username
        if looks_like_email(email):
            return email
        if username and self.username_domain:
            return f"{username}@{self.username_domain.lstrip('@')}"
        return username

    # -------------------------------------------------------------------------------------------
    # Schools

    def _institution_of(self, org_id: str) -> str | None:
        seen: set[str] = set()
        current: str | None = org_id
        while current and current not in seen:
            seen.add(current)
            org = self.orgs.get(current)
            if org is None:
                return None
            if org.type in INSTITUTION_TYPES:
                return org.id
            current = org.parent or None
        return None

    def _school_codes(self) -> dict[str, str | None]:
        """Org id -> school code. One school: everyone is the config's `school.code` (None)."""
        referenced = {o for p in self.people for o in p.org_ids} | {g.org_id for g in self.groups if g.org_id}
        institution = {org_id: self._institution_of(org_id) for org_id in referenced}
        schools = {i for i in institution.values() if i}
        if len(schools) <= 1:
            return dict.fromkeys(institution)
        return institution

    # -------------------------------------------------------------------------------------------
    # Building

    def build(self) -> Roster:
        """The roster; raises `InvalidExportError` listing every problem (with the valid part for counts)."""
        schools = self._school_codes()
        people = self._build_people(schools)
        people_by_id = {p.id: p for p in people}
        groups = self._build_groups(schools)
        group_by_id = {g.id: g for g in groups}
        memberships = self._build_memberships(people_by_id, group_by_id)
        self._school_notes(people, schools)
        roster = Roster(
            people=tuple(people),
            groups=tuple(groups),
            memberships=tuple(memberships),
            source=self.label,
            notes=(*self._mapping_notes(), *self.notes),
        )
        if self.problems:
            raise InvalidExportError(self.problems, self.label, roster)
        return roster

    def _build_people(self, schools: Mapping[str, str | None]) -> list[Person]:
        first_id: dict[str, PersonRecord] = {}
        first_sign_in: dict[str, PersonRecord] = {}
        bare: dict[str, list[PersonRecord]] = defaultdict(list)
        people: list[Person] = []
        for record in self.people:
            ok = True
            if not self._first_with_id(record, first_id, "user"):
                continue
            if not record.sign_in:
                self.problems.append(
                    record.row.problem(record.sign_in_column, "the username is empty; it is required")
                )
                ok = False
            elif "@" not in record.sign_in:
                bare[record.row.file].append(record)
                ok = False
            elif not looks_like_email(record.sign_in):
                self.problems.append(
                    record.row.problem(record.sign_in_column, f"'{record.sign_in}' is not a sign-in address")
                )
                ok = False
            else:
                earlier = first_sign_in.setdefault(record.sign_in.lower(), record)
                if earlier is not record:
                    self.problems.append(
                        record.row.problem(
                            record.sign_in_column,
                            f"duplicate sign-in address '{record.sign_in}' (first at {_where(earlier.row)})",
                        )
                    )
                    ok = False
            if not ok:
                continue
            year_group = self._year_group(record) if record.role == "learner" else None
            self.count(f"role {record.role_as_written} → {record.role}", "people")
            if not record.enabled:
                self.count("enabledUser false → suspended (not synced)", "people")
            school = next((schools.get(o) for o in record.org_ids if schools.get(o)), None)
            people.append(
                Person(
                    id=record.id,
                    role=record.role,
                    email=record.sign_in,
                    first_name=record.first_name,
                    last_name=record.last_name,
                    year_group=year_group,
                    status="active" if record.enabled else "suspended",
                    employee_id=record.employee_id or None,
                    school=school,
                )
            )
        for records in bare.values():
            shown = ", ".join(f"'{r.sign_in}'" for r in records[:3])
            self.problems.append(
                records[0].row.problem(
                    records[0].sign_in_column,
                    f"{len(records)} username{'s have' if len(records) > 1 else ' has'} no domain "
                    f"({shown}{', ...' if len(records) > 3 else ''}) and no email address; set "
                    "source.username_domain in the config (e.g. username_domain: school.example) so that "
                    "they become sign-in addresses such as name@school.example",
                )
            )
        return people

    def _year_group(self, record: PersonRecord) -> str | None:
        for grade in record.grades:
            year = self.grade_map.year_group(grade)
            self.count(f"grade {grade_key(grade)} → {year or 'no year group'}", "learners")
            if year:
                return year
        return None

    def _first_with_id(self, record: _Record, first_id: dict[str, _Record], kind: str) -> bool:
        """True for the first record with a given non-empty id; a problem is noted for any other."""
        if not record.id:
            self.problems.append(record.row.problem(record.id_column, "the id is empty; it is required"))
            return False
        earlier = first_id.setdefault(record.id, record)
        if earlier is not record:
            self.problems.append(
                record.row.problem(
                    record.id_column, f"duplicate {kind} id '{record.id}' (first at {_where(earlier.row)})"
                )
            )
            return False
        return True

    def _build_groups(self, schools: Mapping[str, str | None]) -> list[Group]:
        first_id: dict[str, GroupRecord] = {}
        groups: list[Group] = []
        for record in self.groups:
            if not self._first_with_id(record, first_id, "class"):
                continue
            if not record.name:
                self.problems.append(
                    record.row.problem(record.name_column, "the title is empty; it is required")
                )
                continue
            years = {y for y in (self.grade_map.year_group(g) for g in record.grades) if y}
            groups.append(
                Group(
                    id=record.id,
                    name=record.name,
                    type=record.type,
                    subject=record.subject or None,
                    year_group=years.pop() if len(years) == 1 else None,
                    school=schools.get(record.org_id) if record.org_id else None,
                )
            )
        return groups

    def _build_memberships(
        self, people: Mapping[str, Person], groups: Mapping[str, Group]
    ) -> list[Membership]:
        known_people = {r.id for r in self.people}
        known_groups = {r.id for r in self.groups}
        memberships: list[Membership] = []
        seen: set[tuple[str, str, str]] = set()
        dropped = 0
        for record in self.memberships:
            if record.group_id in self.skipped_groups or record.user_id in self.skipped_people:
                dropped += 1
                continue
            ok = True
            if not record.group_id:
                self.problems.append(record.row.problem(record.group_column, "the class id is empty"))
                ok = False
            elif record.group_id not in known_groups:
                self.problems.append(
                    record.row.problem(
                        record.group_column, f"class id '{record.group_id}' is not a known class"
                    )
                )
                ok = False
            if not record.user_id:
                self.problems.append(record.row.problem(record.user_column, "the user id is empty"))
                ok = False
            elif record.user_id not in known_people:
                self.problems.append(
                    record.row.problem(record.user_column, f"user id '{record.user_id}' is not a known user")
                )
                ok = False
            person, group = people.get(record.user_id), groups.get(record.group_id)
            if not ok or person is None or group is None:
                continue
            kind = record.kind
            if kind == "owner" and person.role == "learner":
                # A pupil never owns a group or a Team; the class still lists them, as a learner.
                self.notes.append(
                    f"{record.row.file}:{record.row.line}: user '{person.id}' is a student but enrolled as "
                    f"'{record.role_as_written}' in class '{group.id}'; taken as a learner, not an owner"
                )
                kind = "learner"
            role: MembershipRole
            if kind == "owner":
                role = "mentor" if group.type == "mentor" else "teacher"
            elif kind == "learner":
                role = "learner"
            else:
                role = "member"
            owner = " (owner)" if kind == "owner" else ""
            self.count(f"enrollment role {record.role_as_written} → {role}{owner}", "enrollments")
            key = (group.id, person.id, role)
            if key in seen:
                continue
            seen.add(key)
            memberships.append(Membership(group.id, person.id, role))
        if dropped:
            self.notes.append(
                f"{dropped} enrollment{'s' if dropped > 1 else ''} of inactive or skipped users or classes "
                "ignored"
            )
        return memberships

    def _school_notes(self, people: Iterable[Person], schools: Mapping[str, str | None]) -> None:
        per_school = Counter(p.school for p in people if p.school)
        for code, count in sorted(per_school.items()):
            org = self.orgs.get(code)
            name = f" {org.name}" if org and org.name else ""
            self.count(f"org {code}{name} → school {code}", "people", count)

    def _mapping_notes(self) -> list[str]:
        ordered = sorted(self.mapped.items(), key=lambda item: _natural(item[0][0]))
        return [f"{MAPPING_NOTE}{what}: {count} {_unit(unit, count)}" for (what, unit), count in ordered]


_SINGULAR = {"people": "person", "classes": "class"}
_NUMBER = re.compile(r"(\d+)")


def _unit(plural: str, count: int) -> str:
    return plural if count != 1 else _SINGULAR.get(plural, plural.removesuffix("s"))


def _natural(text: str) -> tuple[tuple[int, str], ...]:
    # "grade 9" before "grade 10".
    return tuple((int(part), "") if part.isdigit() else (-1, part) for part in _NUMBER.split(text))


__all__ = [
    "INSTITUTION_TYPES",
    "MAPPING_NOTE",
    "GradeMap",
    "GroupRecord",
    "MemberKind",
    "MembershipRecord",
    "Org",
    "PersonRecord",
    "RosterBuilder",
    "grade_key",
    "looks_like_email",
    "split_list",
]
