"""Reader for OneRoster CSV bulk exports (1EdTech OneRoster 1.1 and 1.2), folder or .zip.

Mapping onto the roster model:

- `users.csv`: role `student` → learner; teacher, administrator, aide and the other staff roles →
  staff; guardians, parents and relatives are not synced. In 1.2 the roles are in `roles.csv` (the
  `primary` one wins). `grades` → year group through `source.grade_map` (default: US grade N is
  Year N+1). `enabledUser` false → suspended (kept, not synced). Sign-in address: the username when it
  is an address, else `email`, else username@`source.username_domain`.
- `classes.csv`: `classType` homeroom → mentor group, anything else → class; subject from the
  course's `subjects` (else the class's own). `enrollments.csv`: student → learner, teacher → owner,
  aide/administrator/proctor → member.
- `orgs.csv`: schools (departments roll up to theirs). One school: everything belongs to the config's
  `school.code`; several: each person and class to its school, keyed by the school's sourcedId.

Real exports are tolerated: any `metadata.*` extension columns, every field quoted, enumerations in
any case, a byte-order mark, optional files absent (the manifest says which are). Only records with
`status` active (or no status) are read; others are counted and left out, and enrollments naming them
are ignored rather than reported.

The same engine reads School Data Sync v2 and v2.1 files (OneRoster-derived), see
`smartsync.roster.sources.sds`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from smartsync.errors import Problem
from smartsync.roster.model import GroupType, PersonRole, Roster
from smartsync.roster.sources.mapping import (
    GradeMap,
    GroupRecord,
    MemberKind,
    MembershipRecord,
    Org,
    PersonRecord,
    RosterBuilder,
    split_list,
)
from smartsync.roster.sources.realsmart import InvalidExportError
from smartsync.roster.sources.tables import Row, SourceFiles, Table, read_table, source_files

LEARNER_ROLES = frozenset({"student", "learner"})
NOT_SYNCED_ROLES = frozenset({"guardian", "parent", "relative"})
STAFF_ROLES = frozenset(
    {
        "teacher",
        "administrator",
        "aide",
        "proctor",
        "counselor",
        "principal",
        "siteadministrator",
        "districtadministrator",
        "systemadministrator",
        "staff",
        "faculty",
        "professor",
        "lecturer",
        "instructor",
        "adjunct",
        "assistant",
        "chair",
        "itadmin",
        "researcher",
        "substitute",
        "educator",
    }
)
OWNER_ENROLLMENT_ROLES = frozenset({"teacher", "professor", "lecturer", "instructor"})
MEMBER_ENROLLMENT_ROLES = STAFF_ROLES - OWNER_ENROLLMENT_ROLES
ACTIVE_STATUSES = frozenset({"", "active"})


@dataclass(frozen=True)
class Dialect:
    """What differs between OneRoster and the School Data Sync formats built on it."""

    name: str  # "OneRoster 1.1", "SDS v2.1", ...
    source_type: str  # the config's source.type
    required_files: tuple[str, ...]


# ---------------------------------------------------------------------------------------------------
# Entry point


def read_oneroster(
    path: Path, *, grade_map: GradeMap | None = None, username_domain: str | None = None
) -> Roster:
    """Read a OneRoster 1.1 or 1.2 CSV bulk export (folder or .zip); `InvalidExportError` on problems."""
    problems: list[Problem] = []
    files = source_files(path, problems)
    if files is None:
        raise InvalidExportError(
            problems, f"OneRoster export {path}", Roster(source=f"oneroster-csv: {path}")
        )
    manifest = _manifest(files, problems)
    version = manifest.get("oneroster.version", "")
    if not version:
        version = "1.2" if "roles.csv" in files else "1.1"
    dialect = Dialect(f"OneRoster {version}", "oneroster-csv", ("users.csv",))
    for name, mode in manifest.items():
        if name.startswith("file.") and mode == "delta":
            problems.append(
                Problem(
                    files["manifest.csv"][0],
                    None,
                    name,
                    f"{name[5:]}.csv is a delta file (changes only); smartsync needs a bulk export of "
                    "everyone, so export in bulk mode",
                )
            )
    absent = {
        name[5:] + ".csv" for name, mode in manifest.items() if name.startswith("file.") and mode == "absent"
    }
    present = {name: value for name, value in files.items() if name not in absent}
    builder = RosterBuilder(
        f"{dialect.source_type} ({dialect.name}): {path}", grade_map or GradeMap(), problems, username_domain
    )
    read_oneroster_files(present, dialect, builder)
    return builder.build()


def _manifest(files: SourceFiles, problems: list[Problem]) -> dict[str, str]:
    """manifest.csv as propertyName -> lower-case value; {} when there is none (OneRoster 1.0)."""
    if "manifest.csv" not in files:
        return {}
    name, data = files["manifest.csv"]
    table = read_table(name, data, [("propertyName",), ("value",)], problems)
    if table is None:
        return {}
    return {row.get("propertyName").lower(): row.get("value").lower() for row in table.rows}


# ---------------------------------------------------------------------------------------------------
# The shared engine (OneRoster, SDS v2, SDS v2.1)


def read_oneroster_files(files: SourceFiles, dialect: Dialect, builder: RosterBuilder) -> None:
    """Feed the OneRoster-shaped tables among `files` into `builder` (which collects the problems)."""
    problems = builder.problems
    for required in dialect.required_files:
        if required not in files:
            problems.append(
                Problem(
                    required,
                    None,
                    None,
                    f"is missing; a {dialect.name} export needs {', '.join(dialect.required_files)}",
                )
            )

    def table(file: str, required: list[tuple[str, ...]]) -> Table | None:
        if file not in files:
            return None
        name, data = files[file]
        return read_table(name, data, required, problems, allow_empty=file not in dialect.required_files)

    orgs = table("orgs.csv", [("sourcedId",)])
    users = table("users.csv", [("sourcedId",), ("username",)])
    roles = table("roles.csv", [("userSourcedId",), ("role",)])
    courses = table("courses.csv", [("sourcedId",)])
    classes = table("classes.csv", [("sourcedId",), ("title",)])
    enrollments = table("enrollments.csv", [("classSourcedId",), ("userSourcedId",), ("role",)])

    if orgs is not None:
        for row in _active(orgs, builder, "orgs"):
            builder.orgs[row.get("sourcedId")] = Org(
                row.get("sourcedId"), row.get("name"), row.get("type").lower(), row.get("parentSourcedId")
            )
    if users is not None:
        if roles is None and not users.has("role"):
            problems.append(
                Problem(
                    users.file,
                    1,
                    "role",
                    "users.csv has no 'role' column and there is no roles.csv; one of them must say who "
                    "is a student and who is staff",
                )
            )
        else:
            _people(users, roles, builder)
    if classes is not None:
        _classes(classes, courses, builder)
    if enrollments is not None:
        if classes is None:
            problems.append(
                Problem(enrollments.file, None, None, "lists enrollments but classes.csv is missing")
            )
        else:
            _enrollments(enrollments, builder)
    elif classes is not None:
        builder.notes.append("classes.csv but no enrollments.csv: the classes have no members")


def _active(table: Table, builder: RosterBuilder, what: str) -> list[Row]:
    """Rows whose status is active or empty; the others are counted ("status tobedeleted → not synced")."""
    kept: list[Row] = []
    for row in table.rows:
        status = row.get("status").lower()
        if status in ACTIVE_STATUSES:
            kept.append(row)
            continue
        builder.count(f"{what} status {status} → not read", what)
        if what == "users":
            builder.skipped_people.add(row.get("sourcedId"))
        elif what == "classes":
            builder.skipped_groups.add(row.get("sourcedId"))
    return kept


@dataclass(frozen=True)
class _RoleRow:
    row: Row
    role: str  # lower case
    written: str
    org: str
    grade: str
    primary: bool


def _role_rows(roles: Table | None, builder: RosterBuilder) -> dict[str, list[_RoleRow]]:
    by_user: dict[str, list[_RoleRow]] = defaultdict(list)
    if roles is None:
        return by_user
    for row in _active(roles, builder, "roles"):
        primary = row.get("roleType").lower() == "primary" or row.get("isPrimary").lower() == "true"
        written = row.get("role")
        by_user[row.get("userSourcedId")].append(
            _RoleRow(row, written.lower(), written, row.get("orgSourcedId"), row.get("grade"), primary)
        )
    return by_user


def _person_role(
    written: str, row: Row, column: str, builder: RosterBuilder
) -> PersonRole | Literal["not synced"] | None:
    """learner / staff / "not synced" (guardians); None, and a problem, when the role is unknown."""
    role = written.lower()
    if role in LEARNER_ROLES:
        return "learner"
    if role in STAFF_ROLES:
        return "staff"
    if role in NOT_SYNCED_ROLES:
        return "not synced"
    if not role:
        builder.problems.append(row.problem(column, "the role is empty; expected student, teacher, ..."))
    else:
        builder.problems.append(
            row.problem(
                column,
                f"unknown role '{written}'; expected student, teacher, administrator, aide, guardian, "
                "parent, relative (or another staff role)",
            )
        )
    return None


def _people(users: Table, roles: Table | None, builder: RosterBuilder) -> None:
    role_rows = _role_rows(roles, builder)
    for row in _active(users, builder, "users"):
        user_id = row.get("sourcedId")
        orgs = split_list(row.get("orgSourcedIds", "primaryOrgSourcedId"))
        grades = split_list(row.get("grades", "grade"))
        if roles is not None and user_id in role_rows:
            ranked = sorted(role_rows[user_id], key=lambda r: not r.primary)
            chosen = ranked[0]
            written = chosen.written
            orgs = tuple(dict.fromkeys([*(r.org for r in ranked if r.org), *orgs]))
            grades = grades or tuple(r.grade for r in ranked if r.grade)
            where, column = chosen.row, "role"
        elif roles is not None and not users.has("role"):
            builder.skip_person(user_id, "users without a role in roles.csv → not synced")
            continue
        else:
            written, where, column = row.get("role"), row, "role"
        role = _person_role(written, where, column, builder)
        if role is None:
            builder.skipped_people.add(user_id)  # reported once; its enrollments are not reported again
            continue
        if role == "not synced":
            builder.skip_person(user_id, f"role {written} → not synced")
            continue
        builder.people.append(
            PersonRecord(
                row=row,
                id=user_id,
                role=role,
                role_as_written=written.lower(),
                sign_in=builder.sign_in(row.get("username"), row.get("email")),
                first_name=row.get("preferredGivenName", "givenName"),
                last_name=row.get("preferredFamilyName", "familyName"),
                grades=grades,
                org_ids=orgs,
                enabled=row.get("enabledUser").lower() != "false",
                employee_id=row.get("identifier"),
            )
        )


def _classes(classes: Table, courses: Table | None, builder: RosterBuilder) -> None:
    subjects: dict[str, str] = {}
    if courses is not None:
        for row in _active(courses, builder, "courses"):
            subject = next(iter(split_list(row.get("subjects", "subject"))), "")
            if subject:
                subjects[row.get("sourcedId")] = subject
    for row in _active(classes, builder, "classes"):
        class_type = row.get("classType").lower()
        kind: GroupType = "mentor" if class_type == "homeroom" else "class"
        if class_type:
            builder.count(f"classType {class_type} → {kind} group", "classes")
        own_subject = next(iter(split_list(row.get("subjects"))), "")
        builder.groups.append(
            GroupRecord(
                row=row,
                id=row.get("sourcedId"),
                name=row.get("title"),
                type=kind,
                subject=subjects.get(row.get("courseSourcedId"), own_subject),
                grades=split_list(row.get("grades")),
                org_id=row.get("schoolSourcedId", "orgSourcedId"),
            )
        )


def _enrollments(enrollments: Table, builder: RosterBuilder) -> None:
    for row in _active(enrollments, builder, "enrollments"):
        written = row.get("role")
        role = written.lower()
        kind: MemberKind
        if role in LEARNER_ROLES:
            kind = "learner"
        elif role in OWNER_ENROLLMENT_ROLES:
            kind = "owner"
        elif role in MEMBER_ENROLLMENT_ROLES:
            kind = "member"
        elif role in NOT_SYNCED_ROLES:
            builder.count(f"enrollment role {role} → not synced", "enrollments")
            continue
        else:
            builder.problems.append(
                row.problem(
                    "role",
                    f"unknown enrollment role '{written}'; expected student, teacher, aide, administrator "
                    "or proctor",
                )
            )
            continue
        builder.memberships.append(
            MembershipRecord(row, row.get("classSourcedId"), row.get("userSourcedId"), kind, role)
        )


__all__ = ["Dialect", "read_oneroster", "read_oneroster_files"]
