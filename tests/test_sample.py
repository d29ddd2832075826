"""The sample-school generator: deterministic bytes, realistic shape, and the bundled copy in step."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from smartsync.roster.model import Roster
from smartsync.roster.sample import bundled_sample_path, generate, main, write_export
from smartsync.roster.sources import read_realsmart_export

EXPORT_FILES = ("users.csv", "groups.csv", "memberships.csv")


def export_bytes(roster: Roster, folder: Path) -> dict[str, bytes]:
    write_export(roster, folder)
    return {name: (folder / name).read_bytes() for name in EXPORT_FILES}


@pytest.fixture(scope="module")
def small() -> Roster:
    return generate("small")


@pytest.fixture(scope="module")
def secondary() -> Roster:
    return generate("secondary")


def test_bundled_sample_is_the_small_school_with_the_default_seed(tmp_path: Path) -> None:
    bundled = {name: (bundled_sample_path() / name).read_bytes() for name in EXPORT_FILES}
    regenerate = "python -m smartsync.sample --size small --out smartsync/roster/data/sample-small"
    assert bundled == export_bytes(generate("small"), tmp_path), (
        f"the bundled sample is stale: run `{regenerate}`"
    )


def test_same_seed_gives_identical_bytes_and_another_seed_differs(tmp_path: Path) -> None:
    first = export_bytes(generate("secondary", seed=7), tmp_path / "a")
    again = export_bytes(generate("secondary", seed=7), tmp_path / "b")
    other = export_bytes(generate("secondary", seed=8), tmp_path / "c")
    assert first == again
    assert first["users.csv"] != other["users.csv"]
    assert first["memberships.csv"] != other["memberships.csv"]


def test_files_are_utf8_with_a_header_and_unix_line_ends(tmp_path: Path, small: Roster) -> None:
    files = export_bytes(small, tmp_path)
    assert files["users.csv"].startswith(
        b"id,role,email,first_name,last_name,year_group,status,employee_id,school\n"
    )
    assert files["groups.csv"].startswith(b"id,name,type,subject,year_group,school\n")
    assert files["memberships.csv"].startswith(b"group_id,user_id,role\n")
    for data in files.values():
        assert b"\r" not in data
        data.decode("utf-8")


@pytest.mark.parametrize("size", ["small", "secondary"])
def test_written_export_reads_back_unchanged_and_valid(size: str, tmp_path: Path) -> None:
    roster = generate(size)
    write_export(roster, tmp_path)
    read_back = read_realsmart_export(tmp_path)
    assert read_back.people == roster.people
    assert read_back.groups == roster.groups
    assert read_back.memberships == roster.memberships
    assert read_back.notes == ()  # no duplicate memberships, no unused columns


def test_sizes_are_roughly_as_documented(small: Roster, secondary: Roster) -> None:
    assert 270 <= len(small.learners) <= 330
    assert 27 <= len(small.staff) <= 33
    assert 1400 <= len(secondary.learners) <= 1600
    assert 140 <= len(secondary.staff) <= 160


def test_trust_has_twenty_schools_of_about_thirty_thousand_people() -> None:
    trust = generate("trust")

    assert 27_000 <= len(trust.people) <= 33_000
    schools = Counter(p.school for p in trust.people)
    assert len(schools) == 20 and None not in schools
    assert all(g.school in schools for g in trust.groups)
    assert len({p.email.lower() for p in trust.people}) == len(trust.people)
    assert len({p.employee_id for p in trust.people}) == len(trust.people)


def test_years_forms_and_a_smaller_sixth_form(secondary: Roster) -> None:
    per_year = Counter(p.year_group for p in secondary.learners)
    assert set(per_year) == {f"Year {n}" for n in range(7, 14)}
    assert per_year["Year 12"] < per_year["Year 11"] * 0.7
    mentor_names = [g.name for g in secondary.groups if g.type == "mentor"]
    assert {"7A", "7B", "11J", "12A", "13A"} <= set(mentor_names)


def test_class_names_subjects_and_teachers(secondary: Roster) -> None:
    classes = [g for g in secondary.groups if g.type == "class"]
    names = {g.name for g in classes}
    assert {"7x/Ma1", "10y/En2", "7A/Hi", "8A/Fr", "8B/Sp", "12/Ps1"} <= names
    assert all(re.fullmatch(r"\d{1,2}[A-Za-z]?/[A-Z][A-Za-z]\d*", name) for name in names)
    subjects = {g.subject for g in classes}
    assert {
        "Maths",
        "English",
        "Science",
        "History",
        "Geography",
        "French",
        "Spanish",
        "Computing",
    } <= subjects
    assert {"Art", "Music", "PE", "RE", "Drama"} <= subjects
    assert all(g.year_group and g.subject for g in classes)
    teachers = Counter(m.group_id for m in secondary.memberships if m.role == "teacher")
    assert {teachers[g.id] for g in classes} == {1, 2}
    teacher_roles = {secondary.person(m.user_id).role for m in secondary.memberships if m.role == "teacher"}
    assert teacher_roles == {"staff"}


def test_staff_teach_and_mentor(secondary: Roster) -> None:
    teaching = {m.user_id for m in secondary.memberships if m.role == "teacher"}
    mentoring = {m.user_id for m in secondary.memberships if m.role == "mentor"}
    assert len(teaching & mentoring) >= 40
    mentors_per_group = Counter(m.group_id for m in secondary.memberships if m.role == "mentor")
    assert all(mentors_per_group[g.id] == 1 for g in secondary.groups if g.type == "mentor")


def test_mis_groups_with_and_without_owners(small: Roster) -> None:
    mis = {g.name: g for g in small.groups if g.type == "group"}
    assert {"Year 11 Revision", "Choir", "Pupil Premium"} <= set(mis)
    assert mis["Year 11 Revision"].year_group == "Year 11"
    owned = {m.group_id for m in small.memberships if m.is_owner}
    assert mis["Choir"].id in owned
    assert mis["Pupil Premium"].id not in owned


def test_suspended_and_left_people(small: Roster) -> None:
    statuses = Counter(p.status for p in small.people)
    assert statuses["suspended"] >= 1 and statuses["left"] >= 2
    left = {p.id for p in small.people if p.status == "left"}
    assert not any(m.user_id in left for m in small.memberships)


def test_names_are_varied_and_emails_plain_ascii_and_unique(small: Roster) -> None:
    last_names = {p.last_name for p in small.people}
    first_names = {p.first_name for p in small.people}
    assert any("'" in name for name in last_names)
    assert any("-" in name for name in last_names)
    assert any(not name.isascii() for name in first_names | last_names)
    emails = [p.email for p in small.people]
    assert len({e.lower() for e in emails}) == len(emails)
    assert all(re.fullmatch(r"[a-z0-9.\-]+@northfield\.example", e) for e in emails)
    oconnor = next(p for p in small.people if p.last_name == "O'Connor" and p.role == "learner")
    assert re.fullmatch(r"[a-z]+\.oconnor\d\d@northfield\.example", oconnor.email)
    assert all(p.employee_id for p in small.people)


def test_unknown_size_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sample size 'huge'"):
        generate("huge")


def test_module_entry_point_writes_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--size", "small", "--seed", "1", "--out", str(tmp_path / "out")]) == 0
    assert (tmp_path / "out" / "users.csv").read_bytes() == (bundled_sample_path() / "users.csv").read_bytes()
    assert "memberships to" in capsys.readouterr().out
