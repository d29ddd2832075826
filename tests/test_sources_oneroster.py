"""OneRoster 1.1 and 1.2 CSV: the hand-built fixtures read with their expected counts, and problems."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from smartsync.roster.sources import InvalidExportError, read_oneroster
from smartsync.roster.sources.mapping import GradeMap
from smartsync.roster.validate import validate_roster

FIXTURES = Path(__file__).parent / "fixtures" / "sources"
V11 = FIXTURES / "oneroster-1.1"
V12 = FIXTURES / "oneroster-1.2"


def copy(source: Path, tmp_path: Path) -> Path:
    folder = tmp_path / source.name
    shutil.copytree(source, folder)
    return folder


def test_1_1_fixture_reads_with_the_expected_counts() -> None:
    roster = read_oneroster(V11)
    summary = validate_roster(roster)

    assert roster.source.startswith("oneroster-csv (OneRoster 1.1): ")
    assert (summary.learners, summary.staff, summary.suspended) == (4, 4, 1)
    assert (summary.class_groups, summary.mentor_groups) == (2, 1)
    assert summary.derived_year_groups == ("Year 8", "Year 10", "Year 11")
    assert summary.memberships == 11
    assert "S6" not in {p.id for p in roster.people} and "G1" not in {p.id for p in roster.people}


def test_1_1_maps_roles_subjects_homerooms_and_sign_in_addresses() -> None:
    roster = read_oneroster(V11)
    groups = {g.id: g for g in roster.groups}
    assert (groups["C1"].subject, groups["C2"].subject) == ("Mathematics", "English")  # course, then class
    assert groups["H1"].type == "mentor"
    roles = {(m.group_id, m.user_id): m.role for m in roster.memberships}
    assert roles[("H1", "T1")] == "mentor" and roles[("C1", "T1")] == "teacher"
    assert roles[("C2", "X1")] == "member"  # an aide
    assert roster.person("S2").email == "bilal.khan@nfa.example"  # bare username: the email column
    assert roster.person("S4").status == "suspended"  # enabledUser false
    assert (roster.person("S1").year_group, roster.person("S1").employee_id) == ("Year 10", "A1001")


def test_a_teacher_enrollment_of_a_student_is_reported_and_taken_as_a_learner() -> None:
    roster = read_oneroster(V11)
    assert {(m.user_id, m.role) for m in roster.memberships if m.group_id == "C1"} >= {("S3", "learner")}
    assert not any(m.is_owner for m in roster.memberships if m.user_id == "S3")
    assert any(n.startswith("enrollments.csv:4: user 'S3' is a student") for n in roster.notes)


def test_1_2_fixture_with_two_schools_and_roles_file() -> None:
    roster = read_oneroster(V12)
    summary = validate_roster(roster)

    assert roster.source.startswith("oneroster-csv (OneRoster 1.2): ")
    assert (summary.learners, summary.staff) == (3, 3)
    assert summary.class_groups == 2 and summary.memberships == 6
    assert summary.schools == ("SCH1", "SCH2")
    assert roster.person("U4").school == "SCH1"  # primary role wins over the secondary one
    assert roster.person("U5").school == "SCH2"  # a department belongs to its school
    assert roster.person("U8").school is None  # district staff: the config's school
    assert roster.person("U3").first_name == "Nan"  # preferred given name
    assert next(g for g in roster.groups if g.id == "K1").subject == "Biology"
    assert "role parent → not synced: 1 user" in summary.mappings
    assert "users without a role in roles.csv → not synced: 1 user" in summary.mappings


def test_a_zip_reads_like_the_folder(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as out:
        for file in V12.glob("*.csv"):
            out.write(file, f"oneroster/{file.name}")
    from_zip, from_folder = read_oneroster(archive), read_oneroster(V12)
    assert (from_zip.people, from_zip.groups, from_zip.memberships) == (
        from_folder.people,
        from_folder.groups,
        from_folder.memberships,
    )


def test_grade_map_entries_replace_the_default() -> None:
    roster = read_oneroster(V11, grade_map=GradeMap({"9": "Year 9", "07": ""}))
    assert roster.person("S1").year_group == "Year 9"  # written "09"
    assert roster.person("S5").year_group is None
    assert roster.person("S3").year_group == "Year 11"  # default still applies


def test_optional_files_may_be_absent(tmp_path: Path) -> None:
    folder = copy(V11, tmp_path)
    for name in ("manifest.csv", "courses.csv", "academicSessions.csv", "orgs.csv"):
        (folder / name).unlink()
    roster = read_oneroster(folder)
    assert len(roster.people) == 9 and len(roster.memberships) == 11
    assert next(g for g in roster.groups if g.id == "C1").subject is None


def test_problems_are_all_listed_with_file_line_and_column(tmp_path: Path) -> None:
    folder = copy(V11, tmp_path)
    users = folder / "users.csv"
    users.write_bytes(
        users.read_bytes()
        + b'"Z1","active","","true","SCH1","wizard","z@nfa.example","","Zed","Z"'
        + b',""' * 9
        + b"\r\n"
        + b'"T1","active","","true","SCH1","teacher","dup@nfa.example","","Dup","Id"'
        + b',""' * 9
        + b"\r\n"
    )
    enrollments = folder / "enrollments.csv"
    enrollments.write_bytes(
        enrollments.read_bytes()
        + b'"E90","active","","C9","SCH1","S1","student","false","","",""\r\n'
        + b'"E91","active","","C1","S404","S404","student","false","","",""\r\n'
        + b'"E92","active","","C1","SCH1","S1","pupil","false","","",""\r\n'
    )

    with pytest.raises(InvalidExportError) as caught:
        read_oneroster(folder)

    found = {(p.file, p.line, p.column): p.message for p in caught.value.problems}
    assert "unknown role 'wizard'" in found[("users.csv", 13, "role")]
    assert "duplicate user id 'T1'" in found[("users.csv", 14, "sourcedId")]
    assert "class id 'C9' is not a known class" in found[("enrollments.csv", 16, "classSourcedId")]
    assert "user id 'S404' is not a known user" in found[("enrollments.csv", 17, "userSourcedId")]
    assert "unknown enrollment role 'pupil'" in found[("enrollments.csv", 18, "role")]
    assert len(found) == 5
    assert len(caught.value.roster.people) == 9  # the valid rows, for validate's counts


def test_a_delta_export_and_a_missing_column_are_refused(tmp_path: Path) -> None:
    folder = copy(V12, tmp_path)
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text(encoding="utf-8").replace("file.users,bulk", "file.users,delta"))
    (folder / "classes.csv").write_text('"sourcedId","status"\r\n"K1","active"\r\n', encoding="utf-8")

    with pytest.raises(InvalidExportError) as caught:
        read_oneroster(folder)

    messages = {(p.file, p.column): p.message for p in caught.value.problems}
    assert "delta file" in messages[("manifest.csv", "file.users")]
    assert "required column 'title'" in messages[("classes.csv", "title")]


def test_a_missing_folder_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(InvalidExportError) as caught:
        read_oneroster(tmp_path / "nowhere")
    assert "does not exist" in caught.value.problems[0].message
