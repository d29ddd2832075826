"""School Data Sync CSV: Microsoft's sample sets read with the counts their SOURCE.md states, and problems."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from smartsync.cli import cli
from smartsync.config import SourceConfig
from smartsync.roster.sources import InvalidExportError, read_roster, read_sds
from smartsync.roster.validate import validate_roster

SDS = Path(__file__).parent / "fixtures" / "sources" / "sds"
DOMAIN = "contoso.example"

# From each set's SOURCE.md: students, teachers, sections, enrollments + roster rows (v1);
# users with a role, classes, enrollments (v2, v2.1). Schools: distinct schools people and classes use.
EXPECTED = {
    "sds-v1-100users": dict(learners=86, staff=12, classes=28, memberships=602 + 28, schools=2),
    "sds-v1-25users": dict(learners=22, staff=2, classes=2, memberships=44 + 2, schools=0),
    "sds-v1-minrequired": dict(learners=22, staff=2, classes=2, memberships=44 + 2, schools=0),
    "sds-v1-uk-100users": dict(learners=86, staff=12, classes=28, memberships=602 + 28, schools=2),
    "sds-v1-uk-25users": dict(learners=22, staff=2, classes=28, memberships=154 + 4, schools=2),
    "sds-v1-uk-minrequired": dict(learners=22, staff=2, classes=28, memberships=154 + 4, schools=2),
    "sds-v2": dict(learners=22, staff=7, classes=4, memberships=29, schools=3),
    "sds-v2.1": dict(learners=4, staff=2, classes=2, memberships=6, schools=2),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_sample_set_reads_with_the_counts_of_its_source_md(name: str) -> None:
    roster = read_sds(SDS / name, username_domain=DOMAIN)
    summary = validate_roster(roster)
    want = EXPECTED[name]
    assert (summary.learners, summary.staff) == (want["learners"], want["staff"])
    assert summary.class_groups == want["classes"]
    assert summary.memberships == want["memberships"]
    assert len(summary.schools) == want["schools"]
    assert all("@" in p.email for p in roster.people)


def test_us_and_uk_column_names_give_the_same_roster() -> None:
    us = read_sds(SDS / "sds-v1-100users", username_domain=DOMAIN)
    uk = read_sds(SDS / "sds-v1-uk-100users", username_domain=DOMAIN)
    assert "US column names" in us.source and "UK column names" in uk.source
    assert (us.people, us.groups) == (uk.people, uk.groups)
    assert set(us.memberships) == set(uk.memberships)  # the UK files list the same rows in another order


def test_v1_maps_grades_subjects_teachers_and_usernames() -> None:
    roster = read_sds(SDS / "sds-v1-100users", username_domain=DOMAIN)
    ora = roster.person("13001")  # Grade 9 in Student.csv
    assert (ora.email, ora.year_group, ora.school, ora.employee_id) == (
        f"OKlein@{DOMAIN}",
        "Year 10",
        "10001",
        "13001",
    )
    algebra = next(g for g in roster.groups if g.id == "11001")
    assert (algebra.name, algebra.subject, algebra.type) == ("Math - Algebra 1", "Math", "class")
    owners = {m.user_id for m in roster.memberships if m.group_id == "11001" and m.is_owner}
    assert owners == {"14001"}
    mappings = validate_roster(roster).mappings
    assert "grade 9 → Year 10: 30 learners" in mappings
    assert "role teacher → staff: 12 people" in mappings


def test_columns_are_found_by_name_not_position(tmp_path: Path) -> None:
    folder = tmp_path / "sds"
    shutil.copytree(SDS / "sds-v1-25users", folder)
    student = folder / "Student.csv"
    lines = student.read_text(encoding="utf-8").splitlines()
    rows = [line.split(",") for line in lines]
    order = list(reversed(range(len(rows[0]))))
    student.write_text("\r\n".join(",".join(r[i] for i in order) for r in rows) + "\r\n", encoding="utf-8")

    shuffled = read_sds(folder, username_domain=DOMAIN)
    original = read_sds(SDS / "sds-v1-25users", username_domain=DOMAIN)
    assert (shuffled.people, shuffled.groups, shuffled.memberships) == (
        original.people,
        original.groups,
        original.memberships,
    )


def test_bare_usernames_without_a_domain_are_one_problem_per_file_naming_the_setting() -> None:
    with pytest.raises(InvalidExportError) as caught:
        read_sds(SDS / "sds-v1-25users")
    problems = caught.value.problems
    assert [(p.file, p.line, p.column) for p in problems] == [
        ("Student.csv", 2, "Username"),
        ("Teacher.csv", 2, "Username"),
    ]
    assert "22 usernames have no domain" in problems[0].message
    assert "source.username_domain" in problems[0].message
    # The valid part is still counted for `validate`.
    assert len(caught.value.roster.groups) == 2


def test_dangling_ids_and_missing_columns_are_reported_with_file_line_and_column(tmp_path: Path) -> None:
    folder = tmp_path / "sds"
    shutil.copytree(SDS / "sds-v1-uk-minrequired", folder)
    with (folder / "StudentEnrollment.csv").open("a", encoding="utf-8", newline="") as f:
        f.write("99999,13001\r\n11001,77777\r\n")
    (folder / "Teacher.csv").write_text("ID,School DfE Number\r\n14001,10001\r\n", encoding="utf-8")

    with pytest.raises(InvalidExportError) as caught:
        read_sds(folder, username_domain=DOMAIN)

    found = {(p.file, p.line, p.column) for p in caught.value.problems}
    assert ("Teacher.csv", 1, "Username") in found
    assert ("StudentEnrollment.csv", 156, "Section ID") in found
    assert ("StudentEnrollment.csv", 157, "ID") in found


def test_v2_1_skips_guardians_and_takes_school_and_grade_from_roles() -> None:
    roster = read_sds(SDS / "sds-v2.1")
    ids = {p.id for p in roster.people}
    assert "114002" not in ids and "114005" not in ids  # guardians: no role row
    jack = roster.person("114001")
    assert (jack.email, jack.year_group, jack.school) == ("jcraig@classrmtest31.org", "Year 11", "110003")
    kristen = roster.person("114007")  # primary role at the ministry, secondary at the school
    assert (kristen.role, kristen.school) == ("staff", "110003")
    biology = next(g for g in roster.groups if g.id == "112002")
    assert biology.subject == "14"  # courses.csv `subject` as SDS writes it


def test_a_folder_without_sds_files_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "notes.csv").write_text("a,b\r\n1,2\r\n", encoding="utf-8")
    with pytest.raises(InvalidExportError) as caught:
        read_sds(tmp_path)
    assert "School Data Sync" in caught.value.problems[0].message


def test_validate_command_shows_the_source_and_the_mappings(tmp_path: Path) -> None:
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant:\n"
        "  tenant_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_id: 00000000-0000-0000-0000-000000000000\n"
        "  client_secret_file: secret.txt\n"
        "source:\n"
        "  type: sds-csv\n"
        f"  path: {json.dumps(str(SDS / 'sds-v1-uk-100users'))}\n"
        f"  username_domain: {DOMAIN}\n"
        "  grade_map: {12: ''}\n"
        "school:\n  code: NFA\n",
        encoding="utf-8",
    )
    text = CliRunner().invoke(cli, ["--config", str(config), "validate"])
    assert text.exit_code == 0, text.output
    assert "Source: sds-csv (SDS v1, UK column names)" in text.output
    assert "grade 9 → Year 10: 30 learners" in text.output
    assert "grade 12 → no year group: 13 learners" in text.output

    document = json.loads(CliRunner().invoke(cli, ["--config", str(config), "validate", "--json"]).stdout)
    assert document["valid"] is True
    assert document["people"]["learners"] == 86
    assert document["schools"] == ["10001", "10002"]
    assert "org 10001 Contoso High School → school 10001: 67 people" in document["mappings"]


def test_read_roster_dispatches_sds_with_config_keys() -> None:
    source = SourceConfig(type="sds-csv", path=SDS / "sds-v1-25users", username_domain="@" + DOMAIN)
    roster = read_roster(source)
    assert roster.person("13001").email == f"OKlein@{DOMAIN}"
