"""`smartsync log`: answering a person's history from the journal, as text and as JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smartsync.cli import cli
from smartsync.journal import Journal, read_events

PUPIL = "a.pupil@school.example"


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / "log" / "changes.jsonl"
    now = [datetime(2026, 11, 26, 4, 0, 2, tzinfo=UTC)]

    def clock() -> datetime:
        now[0] += timedelta(seconds=1)
        return now[0]

    with Journal(path, clock=clock) as journal:
        journal.start_run("20261126T040002Z-aaaa", "/etc/smartsync/config.yaml", dry_run=False)
        for user in (PUPIL, "b.pupil@school.example"):
            journal.change(
                op="group.members.add",
                key="NFA-class-1",
                group="9X/En2 English",
                object_id="g1",
                user=user,
                result="ok",
            )
        journal.end_run("ok", {"members_added": 2, "members_removed": 0})
        now[0] = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
        journal.start_run("20261127T080000Z-bbbb", "/etc/smartsync/config.yaml", dry_run=False)
        journal.change(
            op="group.members.remove",
            key="NFA-class-1",
            group="9X/En2 English",
            object_id="g1",
            user=PUPIL,
            result="ok",
        )
        journal.change(
            op="group.members.add",
            key="NFA-class-2",
            group="9Y/Ma1 Maths",
            object_id="g2",
            user=PUPIL,
            result="failed",
            error="Request_ResourceNotFound: the user no longer exists",
        )
        journal.end_run("partial", {"members_added": 0, "members_removed": 1}, ["1 change failed"])
        now[0] = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
        journal.start_run("20261128T120000Z-cccc", "/etc/smartsync/config.yaml", dry_run=True)
        journal.end_run("ok", {})
    return path


def test_when_did_a_pupil_leave_a_class_and_which_run_did_it(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--user", PUPIL.upper(), "--group", "9x/en2")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TIME", "RUN", "OP", "KEY", "GROUP", "ROLE", "USER", "RESULT"]
    removal = [line for line in lines if "group.members.remove" in line]
    assert len(removal) == 1
    assert " member " in removal[0] and removal[0].rstrip().endswith(" ok")
    assert "20261127T080000Z-bbbb" in removal[0] and "9X/En2 English" in removal[0] and PUPIL in removal[0]
    assert "b.pupil" not in result.stdout
    assert "9Y/Ma1" not in result.stdout
    assert "20261128T120000Z-cccc" not in result.stdout  # runs that did not touch the pupil stay out
    ends = [line for line in lines if " run.end " in line]
    assert len(ends) == 2
    assert any("partial: members_removed=1; 1 warning" in line for line in ends)
    assert lines[-1] == "2 changes in 2 runs."


def test_columns_line_up_and_failures_show_their_error(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--run", "20261127")
    assert result.exit_code == 0
    table = [line for line in result.stdout.splitlines() if line and not line.endswith("runs.")][:-1]
    op_column = table[0].index("OP")
    assert all(line[op_column:].startswith(("OP", "run.", "group.")) for line in table)
    failed = next(line for line in table if "9Y/Ma1" in line)
    assert failed.endswith("failed: Request_ResourceNotFound: the user no longer exists")
    assert "1 change in 1 run." in result.stdout or "2 changes in 1 run." in result.stdout


def test_dry_runs_are_marked(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--since", "2026-11-28")
    start = next(line for line in result.stdout.splitlines() if "run.start" in line)
    assert start.endswith("dry run, config /etc/smartsync/config.yaml")
    assert "ok: no changes" in result.stdout


def test_json_prints_the_matching_events(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--user", PUPIL, "--json")
    assert result.exit_code == 0
    events = json.loads(result.stdout)
    assert events == read_events(journal_file, user=PUPIL)
    assert [e["op"] for e in events if e["event"] == "change"] == [
        "group.members.add",
        "group.members.remove",
        "group.members.add",
    ]


def test_time_window(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--until", "2026-11-26", "--json")
    assert {e["run"] for e in json.loads(result.stdout)} == {"20261126T040002Z-aaaa"}


def test_reads_the_journal_named_by_the_config(
    journal_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", "not-used-by-log")
    config = tmp_path / "smartsync.yaml"
    config.write_text(
        "tenant: {tenant_id: t, client_id: c, client_secret: '${SMARTSYNC_CLIENT_SECRET}'}\n"
        "source: {path: export}\n"
        "school: {code: NFA}\n"
        f"journal: {{path: '{journal_file}'}}\n"
    )
    result = invoke("--config", str(config), "log", "--run", "20261126T040002Z-aaaa", "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)) == 4


def test_journal_not_written_yet_is_exit_0_with_a_note(tmp_path: Path) -> None:
    missing = tmp_path / "changes.jsonl"
    result = invoke("log", "--journal", str(missing))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert f"No journal at {missing} yet" in result.stderr
    as_json = invoke("log", "--journal", str(missing), "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout) == []


def test_journal_folder_missing_is_exit_2(tmp_path: Path) -> None:
    result = invoke("log", "--journal", str(tmp_path / "nowhere" / "changes.jsonl"))
    assert result.exit_code == 2
    assert "journal folder" in result.stderr and "--journal PATH" in result.stderr


def test_bad_date_is_a_usage_error(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--since", "yesterday-ish")
    assert result.exit_code == 2
    assert "2026-11-26T04:00" in result.stderr


def test_nothing_matching_says_so(journal_file: Path) -> None:
    result = invoke("log", "--journal", str(journal_file), "--user", "nobody@school.example")
    assert result.exit_code == 0
    assert result.stdout.strip() == "No journal entries match."


def test_torn_line_is_a_warning_not_a_failure(journal_file: Path) -> None:
    with journal_file.open("a") as handle:
        handle.write('{"time": "2026-11-29T04:00:00Z", "run": "x", "ev')
    result = invoke("log", "--journal", str(journal_file), "--json")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)) == 10
    assert "warning:" in result.stderr and "skipped an unreadable line" in result.stderr


def test_help_has_an_example_and_documents_the_missing_journal_case() -> None:
    result = invoke("log", "--help")
    assert result.exit_code == 0
    assert "smartsync log --user a.pupil@school.example --group 9X/En2" in result.stdout
    assert "exits 0" in result.stdout and "exits 2" in result.stdout
