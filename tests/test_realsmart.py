"""The Realsmart export reader: accepted variations, and bad exports through the real CLI."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartsync.cli import cli
from smartsync.config import SourceConfig
from smartsync.errors import InputDataError
from smartsync.roster.model import Membership
from smartsync.roster.sources import InvalidExportError, read_realsmart_export, read_roster

BAD_EXPORTS = Path(__file__).parent / "fixtures" / "bad_exports"
BAD_CASES = sorted(p.name for p in BAD_EXPORTS.iterdir() if p.is_dir())

USERS = (
    "id,role,email,first_name,last_name,year_group,status,employee_id\n"
    "u1,staff,a.teacher@northfield.example,Ann,Teacher,,active,ATE\n"
    "u2,learner,b.pupil25@northfield.example,Ben,Pupil,Year 7,,20250001\n"
    "u3,learner,z.obrien25@northfield.example,Zoë,O'Brien,Year 7,suspended,20250002\n"
)
GROUPS = "id,name,type,subject,year_group\ng1,7A,mentor,,Year 7\ng2,7x/Ma1,class,Maths,Year 7\n"
MEMBERSHIPS = (
    "group_id,user_id,role\ng1,u1,mentor\ng1,u2,learner\ng1,u3,learner\ng2,u1,teacher\ng2,u2,learner\n"
)


def write_export(
    folder: Path, users: str = USERS, groups: str = GROUPS, memberships: str = MEMBERSHIPS
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "users.csv").write_text(users, encoding="utf-8")
    (folder / "groups.csv").write_text(groups, encoding="utf-8")
    (folder / "memberships.csv").write_text(memberships, encoding="utf-8")
    return folder


def write_config(tmp_path: Path, source_path: str) -> Path:
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant:\n"
        "  tenant_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_secret_file: secret.txt\n"
        f"source:\n  type: realsmart-export\n  path: {json.dumps(source_path)}\n"
        "school:\n  code: NFA\n"
        f"journal:\n  path: {json.dumps(str(tmp_path / 'changes.jsonl'))}\n",
        encoding="utf-8",
    )
    return config


def export_path(case: Path) -> Path:
    json_file = case / "export.json"
    return json_file if json_file.exists() else case


# --- bad exports through the CLI ----------------------------------------------------------------------


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_export_exits_2_naming_every_problem(case: str, tmp_path: Path) -> None:
    folder = BAD_EXPORTS / case
    expected = (folder / "expect.txt").read_text(encoding="utf-8").splitlines()
    config = write_config(tmp_path, str(export_path(folder)))

    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])

    assert result.exit_code == 2, result.output
    output = result.stdout + result.stderr
    count_text, problem_lines = expected[0], expected[1:]
    assert f"has {count_text}; nothing was written" in result.stderr
    for line in problem_lines:
        assert line in output


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_export_json_lists_each_problem_with_its_location(case: str, tmp_path: Path) -> None:
    folder = BAD_EXPORTS / case
    expected = (folder / "expect.txt").read_text(encoding="utf-8").splitlines()
    config = write_config(tmp_path, str(export_path(folder)))

    result = CliRunner().invoke(cli, ["--config", str(config), "validate", "--json"])

    assert result.exit_code == 2
    document = json.loads(result.stdout)
    assert document["valid"] is False
    assert len(document["problems"]) == int(expected[0].split()[0])
    for problem in document["problems"]:
        assert set(problem) == {"file", "line", "column", "message"}
        assert problem["file"] and problem["message"]
        # CSV problems point at a line; JSON problems at the item ("users[1].id").
        assert problem["line"] is not None or problem["column"] or problem["file"].endswith(".csv")


def test_several_problems_are_reported_in_file_then_line_order(tmp_path: Path) -> None:
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(BAD_EXPORTS / "several_problems")
    located = [(p.file, p.line) for p in caught.value.problems]
    assert located == [
        ("users.csv", 3),
        ("users.csv", 4),
        ("users.csv", 5),
        ("users.csv", 6),
        ("groups.csv", 3),
        ("memberships.csv", 4),
        ("memberships.csv", 6),
    ]
    # The valid rows are still counted, so validate can show what the export holds.
    assert [p.id for p in caught.value.roster.people] == ["u1"]


def test_missing_export_path_is_an_input_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, str(tmp_path / "nowhere"))
    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert result.exit_code == 2
    assert "does not exist; check source.path" in result.stdout


def test_unreadable_zip_is_reported(tmp_path: Path) -> None:
    broken = tmp_path / "export.zip"
    broken.write_bytes(b"not a zip")
    with pytest.raises(InputDataError) as caught:
        read_realsmart_export(broken)
    assert "cannot be opened as a zip file" in str(caught.value.problems[0])


# --- accepted variations ----------------------------------------------------------------------------


def test_bom_crlf_odd_header_case_and_spaces_are_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    users = (
        " ID , Role ,EMAIL, First_Name ,LAST_NAME,Year_Group,Status,Employee_ID,Notes\r\n"
        "u1 , Staff , a.teacher@northfield.example ,Ann,Teacher,,,ATE,\r\n"
        'u2,learner,b.pupil25@northfield.example," Zoë ","O\'Brien",Year 7,Active,20250001,"two\r\nlines"\r\n'
        "\r\n"
    )
    (folder / "users.csv").write_bytes(b"\xef\xbb\xbf" + users.encode("utf-8"))
    (folder / "Groups.CSV").write_bytes(b"\xef\xbb\xbf" + GROUPS.replace("\n", "\r\n").encode("utf-8"))
    (folder / "memberships.csv").write_bytes(
        b"GROUP_ID,User_Id,ROLE\r\ng1,u1,Mentor\r\ng1,u2,learner\r\ng2,u1,teacher\r\n"
    )

    roster = read_realsmart_export(folder)

    ann, zoe = roster.people
    assert (ann.id, ann.role, ann.email, ann.status, ann.year_group) == (
        "u1",
        "staff",
        "a.teacher@northfield.example",
        "active",
        None,
    )
    assert (zoe.first_name, zoe.last_name, zoe.year_group) == ("Zoë", "O'Brien", "Year 7")
    assert [g.name for g in roster.groups] == ["7A", "7x/Ma1"]
    assert roster.memberships[0] == Membership("g1", "u1", "mentor")
    assert roster.notes == ("users.csv: column notes not used",)


def test_line_numbers_count_physical_lines_with_crlf_and_multiline_values(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    users = (
        "id,role,email,first_name,last_name,year_group\r\n"
        'u1,staff,a.teacher@northfield.example,Ann,"Teacher\r\nSmith",\r\n'
        "u2,pupil,b.pupil25@northfield.example,Ben,Pupil,Year 7\r\n"
    )
    write_export(folder, users=users, memberships="group_id,user_id,role\ng1,u1,mentor\n")
    (folder / "users.csv").write_bytes(b"\xef\xbb\xbf" + users.encode())

    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(folder)

    assert [str(p) for p in caught.value.problems] == [
        "users.csv:4 (column role): unknown role 'pupil'; expected one of learner, staff"
    ]


def test_zip_with_a_folder_inside_is_accepted(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export")
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name in ("users.csv", "groups.csv", "memberships.csv"):
            zf.write(folder / name, f"realsmart-2025-09-01/{name}")

    from_zip = read_realsmart_export(archive)
    from_folder = read_realsmart_export(folder)

    assert from_zip.people == from_folder.people
    assert from_zip.groups == from_folder.groups
    assert from_zip.memberships == from_folder.memberships
    assert from_zip.source == f"realsmart-export: {archive}"


def test_zip_problems_name_the_file_inside_the_zip(tmp_path: Path) -> None:
    archive = tmp_path / "export.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("users.csv", USERS.replace("u2,learner", "u2,teacher"))
        zf.writestr("groups.csv", GROUPS)
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(archive)
    assert [str(p) for p in caught.value.problems] == [
        "export.zip:users.csv:3 (column role): unknown role 'teacher'; expected one of learner, staff",
        "export.zip:memberships.csv: is missing; the export needs users.csv, groups.csv and memberships.csv",
    ]


def test_json_export_is_accepted_with_numeric_ids(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(
        json.dumps(
            {
                "users": [
                    {
                        "id": 1,
                        "role": "staff",
                        "email": "a.t@northfield.example",
                        "first_name": "Ann",
                        "last_name": "T",
                    },
                    {
                        "id": 2,
                        "role": "learner",
                        "email": "b.p@northfield.example",
                        "first_name": "Ben",
                        "last_name": "P",
                        "year_group": "Year 8",
                        "employee_id": None,
                    },
                ],
                "groups": [{"id": 10, "name": "8A", "type": "mentor", "year_group": "Year 8"}],
                "memberships": [
                    {"group_id": 10, "user_id": 1, "role": "mentor"},
                    {"group_id": 10, "user_id": 2, "role": "learner"},
                ],
            }
        ),
        encoding="utf-8",
    )

    roster = read_realsmart_export(export)

    assert [(p.id, p.role, p.year_group, p.employee_id) for p in roster.people] == [
        ("1", "staff", None, None),
        ("2", "learner", "Year 8", None),
    ]
    assert roster.memberships == (Membership("10", "1", "mentor"), Membership("10", "2", "learner"))


def test_json_that_is_not_an_object_is_reported(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(export)
    assert "must be a JSON object" in caught.value.problems[0].message


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text('{\n  "users": [\n    {"id": "u1",,}\n  ]\n}\n', encoding="utf-8")
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(export)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == ("export.json", 3)
    assert "is not valid JSON" in problem.message


def test_duplicate_membership_rows_are_a_note_not_an_error(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", memberships=MEMBERSHIPS + "g1,u2,learner\n")
    roster = read_realsmart_export(folder)
    assert roster.memberships.count(Membership("g1", "u2", "learner")) == 1
    assert roster.notes == ("1 duplicate membership row ignored (memberships.csv line 7 repeats line 3)",)


def test_duplicates_are_found_even_when_the_first_row_has_problems_too(tmp_path: Path) -> None:
    users = USERS.replace("u2,learner", "u2,pupil") + "u2,staff,b.pupil25@Northfield.example,Bo,Pupil,,,\n"
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(write_export(tmp_path / "export", users=users))
    assert [str(p) for p in caught.value.problems] == [
        "users.csv:3 (column role): unknown role 'pupil'; expected one of learner, staff",
        "users.csv:5 (column id): duplicate user id 'u2' (first at line 3)",
        "users.csv:5 (column email): duplicate email 'b.pupil25@Northfield.example' (first at line 3)",
    ]


def test_a_learner_can_never_be_a_teacher_or_mentor(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", memberships=MEMBERSHIPS + "g2,u2,teacher\ng1,u3,mentor\n")
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(folder)
    assert [str(p) for p in caught.value.problems] == [
        "memberships.csv:7 (column role): user 'u2' is a learner and cannot have role teacher",
        "memberships.csv:8 (column role): user 'u3' is a learner and cannot have role mentor",
    ]


def test_emails_are_compared_case_insensitively_but_kept_as_given(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", users=USERS.replace("a.teacher@", "A.Teacher@"))
    roster = read_realsmart_export(folder)
    assert roster.people[0].email == "A.Teacher@northfield.example"


def test_left_learner_may_have_no_year_group(tmp_path: Path) -> None:
    users = USERS + "u4,learner,d.gone@northfield.example,Dan,Gone,,left,\n"
    roster = read_realsmart_export(write_export(tmp_path / "export", users=users))
    assert roster.person("u4").status == "left"


def test_membership_naming_an_invalid_user_row_is_not_reported_twice(tmp_path: Path) -> None:
    folder = write_export(tmp_path / "export", users=USERS.replace("u2,learner", "u2,pupil"))
    with pytest.raises(InvalidExportError) as caught:
        read_realsmart_export(folder)
    assert len(caught.value.problems) == 1
    # Memberships of the rejected row are dropped from the partial roster, keeping it consistent.
    assert all(m.user_id != "u2" for m in caught.value.roster.memberships)


# --- read_roster --------------------------------------------------------------------------------------


def test_relative_source_path_is_resolved_against_the_config_folder(tmp_path: Path) -> None:
    write_export(tmp_path / "exports" / "today")
    source = SourceConfig(type="realsmart-export", path=Path("exports/today"))
    roster = read_roster(source, base_dir=tmp_path)
    assert len(roster.people) == 3
    assert roster.source == f"realsmart-export: {tmp_path / 'exports' / 'today'}"


def test_relative_source_path_through_the_cli_does_not_depend_on_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_export(tmp_path / "export")
    config = write_config(tmp_path, "export")
    monkeypatch.chdir(tmp_path.parent)
    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert result.exit_code == 0, result.output
    assert "People: 1 learners, 1 staff active (1 suspended, 0 left" in result.stdout
