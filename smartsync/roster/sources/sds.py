"""Reader for Microsoft School Data Sync CSV files, so schools leaving SDS keep the files they produce.

Three generations, told apart by their file names (folder or .zip):

- **SDS v1**: `School.csv`, `Section.csv`, `Student.csv`, `Teacher.csv`, `StudentEnrollment.csv`,
  `TeacherRoster.csv`. Columns are found by header name, with both the US names (`SIS ID`,
  `School SIS ID`, `Section SIS ID`) and the UK ones (`ID`, `School DfE Number`, `Section ID`,
  `DfE Number`). Students → learners (`Grade` → year group through `source.grade_map`), teachers →
  staff and owners of the sections `TeacherRoster.csv` gives them; sections → class groups with
  `Course Subject`; rows whose `Status` is present and not active are left out. SDS v1 usernames are
  often bare (`OKlein`): `source.username_domain` turns them into sign-in addresses.
- **SDS v2.1**: OneRoster-shaped `orgs.csv`, `users.csv`, `roles.csv` (who is a student, where, in
  which grade), `classes.csv`, `courses.csv` (subject), `enrollments.csv`; the other files
  (demographics, userFlags, relationships, academicSessions) are not needed.
- **SDS v2** (legacy): `orgs.csv`, `users.csv` with `role`, `grade`, `orgSourcedIds`, `classes.csv`,
  `enrollments.csv`.

v2 and v2.1 are read by the OneRoster engine (`smartsync.roster.sources.oneroster`).
"""

from __future__ import annotations

from pathlib import Path

from smartsync.errors import Problem
from smartsync.roster.model import Roster
from smartsync.roster.sources.mapping import (
    GradeMap,
    GroupRecord,
    MembershipRecord,
    Org,
    PersonRecord,
    RosterBuilder,
)
from smartsync.roster.sources.oneroster import Dialect, read_oneroster_files
from smartsync.roster.sources.realsmart import InvalidExportError
from smartsync.roster.sources.tables import Row, SourceFiles, Table, read_table, source_files

V1_FILES = (
    "school.csv",
    "section.csv",
    "student.csv",
    "teacher.csv",
    "studentenrollment.csv",
    "teacherroster.csv",
)
# Each column as its alternative header names: US first, then UK.
ID = ("SIS ID", "ID", "DfE Number")
SCHOOL_ID = ("School SIS ID", "School DfE Number")
SECTION_ID = ("Section SIS ID", "Section ID")
PERSON_ID = ("SIS ID", "ID")


def read_sds(path: Path, *, grade_map: GradeMap | None = None, username_domain: str | None = None) -> Roster:
    """Read SDS v1, v2 or v2.1 CSV files (folder or .zip); `InvalidExportError` listing every problem."""
    problems: list[Problem] = []
    files = source_files(path, problems)
    if files is None:
        raise InvalidExportError(problems, f"SDS files {path}", Roster(source=f"sds-csv: {path}"))
    grades = grade_map or GradeMap()
    if any(name in files for name in V1_FILES):
        uk = _is_uk(files)
        builder = RosterBuilder(
            f"sds-csv (SDS v1, {'UK' if uk else 'US'} column names): {path}",
            grades,
            problems,
            username_domain,
        )
        _read_v1(files, builder)
        return builder.build()
    if "users.csv" not in files:
        problems.append(
            Problem(
                str(path),
                None,
                None,
                "holds no School Data Sync files: expected SDS v2.1 (orgs.csv, users.csv, roles.csv, ...) "
                "or SDS v1 (School.csv, Section.csv, Student.csv, Teacher.csv, StudentEnrollment.csv, "
                "TeacherRoster.csv)",
            )
        )
        raise InvalidExportError(problems, f"SDS files {path}", Roster(source=f"sds-csv: {path}"))
    dialect = (
        Dialect("SDS v2.1", "sds-csv", ("orgs.csv", "users.csv", "roles.csv"))
        if "roles.csv" in files
        else Dialect("SDS v2", "sds-csv", ("orgs.csv", "users.csv"))
    )
    builder = RosterBuilder(f"sds-csv ({dialect.name}): {path}", grades, problems, username_domain)
    read_oneroster_files(files, dialect, builder)
    return builder.build()


def _is_uk(files: SourceFiles) -> bool:
    _name, data = files.get("student.csv", files.get("section.csv", ("", b"")))
    header = data.decode("utf-8-sig", errors="replace").splitlines()[:1]
    return bool(header) and "sis id" not in header[0].lower()


def _read_v1(files: SourceFiles, builder: RosterBuilder) -> None:
    problems = builder.problems

    def table(file: str, required: list[tuple[str, ...]]) -> Table | None:
        if file not in files:
            problems.append(
                Problem(
                    _v1_name(file),
                    None,
                    None,
                    "is missing; SDS v1 needs School.csv, Section.csv, Student.csv, Teacher.csv, "
                    "StudentEnrollment.csv and TeacherRoster.csv",
                )
            )
            return None
        name, data = files[file]
        return read_table(name, data, required, problems, allow_empty=file != "school.csv")

    schools = table("school.csv", [ID, ("Name",)])
    sections = table("section.csv", [PERSON_ID, SCHOOL_ID, ("Section Name",)])
    students = table("student.csv", [PERSON_ID, SCHOOL_ID, ("Username",)])
    teachers = table("teacher.csv", [PERSON_ID, SCHOOL_ID, ("Username",)])
    student_enrollments = table("studentenrollment.csv", [SECTION_ID, PERSON_ID])
    teacher_roster = table("teacherroster.csv", [SECTION_ID, PERSON_ID])

    if schools is not None:
        for row in schools.rows:
            builder.orgs[row.get(*ID)] = Org(row.get(*ID), row.get("Name"), "school", "")
    school_ids = set(builder.orgs)
    student_ids = {row.get(*PERSON_ID) for row in students.rows} if students is not None else set()
    # Student and teacher ids are separate namespaces in SDS v1; a teacher id that is also a student id
    # is kept apart so that neither person replaces the other.
    teacher_key: dict[str, str] = {}
    if teachers is not None:
        for row in teachers.rows:
            sis_id = row.get(*PERSON_ID)
            teacher_key[sis_id] = f"teacher-{sis_id}" if sis_id in student_ids else sis_id
    if students is not None:
        _v1_people(students, "learner", school_ids, builder, {})
    if teachers is not None:
        _v1_people(teachers, "staff", school_ids, builder, teacher_key)
    if sections is not None:
        for row in sections.rows:
            if not _v1_active(row):
                builder.skip_group(
                    row.get(*PERSON_ID), f"section status {row.get('Status').lower()} → not read"
                )
                continue
            school = row.get(*SCHOOL_ID)
            _check_school(row, school, school_ids, builder)
            builder.groups.append(
                GroupRecord(
                    row=row,
                    id=row.get(*PERSON_ID),
                    name=row.get("Section Name"),
                    type="class",
                    subject=row.get("Course Subject"),
                    grades=(),
                    org_id=school,
                    id_column=PERSON_ID,
                    name_column=("Section Name",),
                )
            )
    no_keys: dict[str, str] = {}
    for rows, kind, keys in (
        (student_enrollments, "learner", no_keys),
        (teacher_roster, "owner", teacher_key),
    ):
        if rows is None:
            continue
        for row in rows.rows:
            person = row.get(*PERSON_ID)
            builder.memberships.append(
                MembershipRecord(
                    row,
                    row.get(*SECTION_ID),
                    keys.get(person, person),
                    "learner" if kind == "learner" else "owner",
                    "student" if kind == "learner" else "teacher",
                    group_column=SECTION_ID,
                    user_column=PERSON_ID,
                )
            )


def _v1_name(file: str) -> str:
    names = {
        "school.csv": "School.csv",
        "section.csv": "Section.csv",
        "student.csv": "Student.csv",
        "teacher.csv": "Teacher.csv",
        "studentenrollment.csv": "StudentEnrollment.csv",
        "teacherroster.csv": "TeacherRoster.csv",
    }
    return names.get(file, file)


def _v1_active(row: Row) -> bool:
    return row.get("Status").lower() in ("", "active")


def _check_school(row: Row, school: str, school_ids: set[str], builder: RosterBuilder) -> None:
    if school and school_ids and school not in school_ids:
        builder.problems.append(row.problem(SCHOOL_ID, f"school '{school}' is not in School.csv"))


def _v1_people(
    table: Table, role: str, school_ids: set[str], builder: RosterBuilder, keys: dict[str, str]
) -> None:
    for row in table.rows:
        sis_id = row.get(*PERSON_ID)
        person_id = keys.get(sis_id, sis_id)
        if not _v1_active(row):
            builder.skip_person(person_id, f"{table.file} status {row.get('Status').lower()} → not read")
            continue
        school = row.get(*SCHOOL_ID)
        _check_school(row, school, school_ids, builder)
        builder.people.append(
            PersonRecord(
                row=row,
                id=person_id,
                role="learner" if role == "learner" else "staff",
                role_as_written="student" if role == "learner" else "teacher",
                sign_in=builder.sign_in(row.get("Username"), ""),
                first_name=row.get("First Name"),
                last_name=row.get("Last Name"),
                grades=(row.get("Grade"),) if row.get("Grade") else (),
                org_ids=(school,) if school else (),
                employee_id=row.get("Student Number", "Teacher Number"),
                id_column=PERSON_ID,
                sign_in_column=("Username",),
            )
        )


__all__ = ["read_sds"]
