"""`smartsync validate`: counts, problems, the JSON document, speed, and no network."""

from __future__ import annotations

import csv
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from smartsync.cli import cli
from smartsync.errors import Problem
from smartsync.roster.model import Group, Membership, Person, Roster
from smartsync.roster.sample import bundled_sample_path
from smartsync.roster.validate import derived_year_groups, validate_roster

SAMPLE = bundled_sample_path()


def rows(name: str) -> list[dict[str, str]]:
    with (SAMPLE / name).open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def write_config(tmp_path: Path, source: Path, extra: str = "") -> Path:
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant:\n"
        "  tenant_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_secret_file: secret.txt\n"
        f"source:\n  path: {json.dumps(str(source))}\n"
        "school:\n  code: NFA\n" + extra,
        encoding="utf-8",
    )
    return config


def test_json_counts_of_the_bundled_sample_match_its_files(tmp_path: Path) -> None:
    users, groups, memberships = rows("users.csv"), rows("groups.csv"), rows("memberships.csv")
    active = {u["id"] for u in users if u["status"] == "active"}

    result = CliRunner().invoke(cli, ["--config", str(write_config(tmp_path, SAMPLE)), "validate", "--json"])

    assert result.exit_code == 0, result.output
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["people"]["learners"] == sum(
        1 for u in users if u["role"] == "learner" and u["id"] in active
    )
    assert document["people"]["staff"] == sum(1 for u in users if u["role"] == "staff" and u["id"] in active)
    assert document["people"]["suspended"] == sum(1 for u in users if u["status"] == "suspended")
    assert document["people"]["left"] == sum(1 for u in users if u["status"] == "left")
    assert document["groups"] == {
        "class": sum(1 for g in groups if g["type"] == "class"),
        "mentor": sum(1 for g in groups if g["type"] == "mentor"),
        "year": 7,  # Years 7-13, derived from users.csv: the sample lists no year groups
        "group": sum(1 for g in groups if g["type"] == "group"),
    }
    assert document["memberships"] == len(memberships)
    assert document["problems"] == []
    assert document["valid"] is True
    assert document["derived_year_groups"] == [f"Year {n}" for n in range(7, 14)]
    assert {"Pupil Premium", "SEN Register"} <= set(document["groups_without_owner"])


def test_text_report_of_the_bundled_sample(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["validate", "--source", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Source: realsmart-export: {SAMPLE}"
    assert lines[1].startswith("People: ") and " learners, " in lines[1]
    assert "7 year (7 derived from users.csv)" in lines[2]
    assert lines[-1] == "No problems found."


def test_validate_never_opens_a_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("validate tried to open a network connection")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    result = CliRunner().invoke(cli, ["--config", str(write_config(tmp_path, SAMPLE)), "validate"])
    assert result.exit_code == 0, result.output


def test_validate_with_source_needs_no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SMARTSYNC_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 2  # no config anywhere
    assert CliRunner().invoke(cli, ["validate", "--source", str(SAMPLE)]).exit_code == 0


def test_validate_help_documents_source() -> None:
    result = CliRunner().invoke(cli, ["validate", "--help"])
    # Click wraps help text to the width of the option column, which grows with every new option.
    help_text = " ".join(result.stdout.split())
    assert "--source PATH" in help_text
    assert "no config file is needed" in help_text


def test_config_problem_is_exit_2_naming_the_key(tmp_path: Path) -> None:
    config = write_config(tmp_path, SAMPLE, extra="sync:\n  groups:\n    kinds: [class, mentor, clas]\n")
    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert result.exit_code == 2
    assert (
        "sync.groups.kinds[2]: 'clas' is not one of class, mentor, year, group, all_learners, all_staff"
        in (result.stderr)
    )


def test_employee_id_matching_notes_people_without_one(tmp_path: Path) -> None:
    export = tmp_path / "export"
    export.mkdir()
    (export / "users.csv").write_text(
        "id,role,email,first_name,last_name,employee_id\nu1,staff,a@x.example,A,B,\nu2,staff,c@x.example,C,D,S2\n",
        encoding="utf-8",
    )
    (export / "groups.csv").write_text("id,name,type\ng1,Choir,group\n", encoding="utf-8")
    (export / "memberships.csv").write_text("group_id,user_id,role\ng1,u1,teacher\n", encoding="utf-8")
    config = write_config(tmp_path, export, extra="users:\n  match: employeeId\n")

    result = CliRunner().invoke(cli, ["--config", str(config), "validate"])

    assert result.exit_code == 0
    assert "note: users.match is employeeId but 1 active people have no employee_id" in result.stdout


# --- validate_roster on hand-made rosters -------------------------------------------------------------


def person(pid: str, role: str = "learner", year: str | None = "Year 7", status: str = "active") -> Person:
    return Person(pid, role, f"{pid}@x.example", pid, "X", year, status)  # type: ignore[arg-type]


def test_counts_skip_people_who_are_not_active_and_owners_who_left() -> None:
    roster = Roster(
        people=(
            person("l1"),
            person("l2", year="Year 8", status="suspended"),
            person("l3", year=None, status="left"),
            person("t1", "staff", None),
            person("t2", "staff", None, status="left"),
        ),
        groups=(
            Group("g1", "7x/Ma1", "class", "Maths", "Year 7"),
            Group("g2", "8x/Ma1", "class", "Maths", "Year 8"),
            Group("y7", "Year 7", "year", year_group="Year 7"),
        ),
        memberships=(
            Membership("g1", "t1", "teacher"),
            Membership("g1", "l1", "learner"),
            Membership("g2", "t2", "teacher"),
            Membership("g2", "l2", "learner"),
        ),
        source="test",
    )

    summary = validate_roster(roster)

    assert (summary.learners, summary.staff, summary.suspended, summary.left) == (1, 1, 1, 2)
    # Year 7 is listed; Year 8's only learner is suspended, so no year group is derived for it.
    assert summary.groups == {"class": 2, "mentor": 0, "year": 1, "group": 0}
    assert derived_year_groups(roster) == ()
    assert (summary.memberships, summary.active_memberships) == (4, 2)
    assert summary.learners_without_year_group == 1
    assert summary.groups_without_owner == ("8x/Ma1", "Year 7")


def test_derived_year_groups_are_in_school_order() -> None:
    roster = Roster(
        people=(person("a", year="Year 10"), person("b", year="Year 7"), person("c", year="Year 9"))
    )
    assert derived_year_groups(roster) == ("Year 7", "Year 9", "Year 10")


def test_to_json_has_the_contract_keys_and_problem_fields() -> None:
    problems = [
        Problem("users.csv", 3, "role", "unknown role 'pupil'"),
        Problem("export.json", None, "users[1]", "x"),
    ]
    document = validate_roster(Roster()).to_json(problems)
    assert {"people", "groups", "memberships", "problems"} <= set(document)
    assert document["people"]["learners"] == 0 and document["people"]["staff"] == 0
    assert set(document["groups"]) == {"class", "mentor", "year", "group"}
    assert document["problems"] == [
        {"file": "users.csv", "line": 3, "column": "role", "message": "unknown role 'pupil'"},
        {"file": "export.json", "line": None, "column": "users[1]", "message": "x"},
    ]
    json.dumps(document)


def test_text_lists_problems_after_the_counts() -> None:
    lines = validate_roster(Roster(source="s")).render_text([Problem("groups.csv", None, None, "is empty")])
    assert lines[-2:] == [
        "Problems: 1 (nothing will be written until they are fixed)",
        "  groups.csv: is empty",
    ]
