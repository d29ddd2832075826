"""The change journal: line format, permissions, crash tolerance, filters, retention and rotation."""

from __future__ import annotations

import json
import re
import stat
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from smartsync.errors import SmartsyncError
from smartsync.journal import Journal, new_run_id, parse_when, prune, read_events, rotated_path

T0 = datetime(2026, 11, 26, 4, 0, 2, tzinfo=UTC)


class FakeClock:
    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def write_run(
    journal: Journal,
    run_id: str,
    changes: list[tuple[str, str, str, str]],
    clock: FakeClock | None = None,
    status: str = "ok",
) -> None:
    """changes: (op, key, group display name, user)."""
    journal.start_run(run_id, "/etc/smartsync/config.yaml", dry_run=False)
    for op, key, group, user in changes:
        if clock:
            clock.advance(seconds=1)
        journal.change(op=op, key=key, group=group, object_id=f"id-{key}", user=user, result="ok")
    journal.end_run(status, {"members_added": len(changes)})


def test_lines_follow_the_documented_shape(tmp_path: Path) -> None:
    path = tmp_path / "log" / "changes.jsonl"
    clock = FakeClock()
    with Journal(path, clock=clock) as journal:
        journal.start_run("20261126T040002Z-3f2a", "/etc/smartsync/config.yaml", dry_run=False)
        journal.change(
            op="group.members.remove",
            key="NFA-class-4711",
            group="9X/En2 English",
            object_id="0b1c",
            user="a.pupil@school.example",
            result="ok",
        )
        journal.change(
            op="group.members.add",
            key="NFA-class-4711",
            group="9X/En2 English",
            object_id="0b1c",
            user="b.pupil@school.example",
            result="failed",
            error="Request_BadRequest: one or more references are invalid",
            attempt=3,
        )
        journal.end_run("partial", {"members_removed": 1, "members_added": 0}, ["1 change failed"])

    start, removed, failed, end = lines(path)
    assert start == {
        "time": "2026-11-26T04:00:02Z",
        "run": "20261126T040002Z-3f2a",
        "event": "run.start",
        "config": "/etc/smartsync/config.yaml",
        "dry_run": False,
    }
    assert removed == {
        "time": "2026-11-26T04:00:02Z",
        "run": "20261126T040002Z-3f2a",
        "event": "change",
        "op": "group.members.remove",
        "key": "NFA-class-4711",
        "group": "9X/En2 English",
        "object_id": "0b1c",
        "user": "a.pupil@school.example",
        "result": "ok",
    }
    assert "error" not in removed
    assert failed["result"] == "failed"
    assert failed["error"] == "Request_BadRequest: one or more references are invalid"
    assert failed["attempt"] == 3
    assert end == {
        "time": "2026-11-26T04:00:02Z",
        "run": "20261126T040002Z-3f2a",
        "event": "run.end",
        "status": "partial",
        "summary": {"members_removed": 1, "members_added": 0},
        "warnings": ["1 change failed"],
    }


def test_file_is_0600_and_folder_0700_when_created(tmp_path: Path) -> None:
    path = tmp_path / "new-folder" / "changes.jsonl"
    with Journal(path) as journal:
        write_run(journal, "r1", [])
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700


def test_wider_permissions_are_tightened_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    path.write_text("")
    path.chmod(0o644)
    seen: list[str] = []
    with Journal(path, on_warning=seen.append) as journal:
        write_run(journal, "r1", [])
    assert mode(path) == 0o600
    assert len(seen) == 1 and "644" in seen[0] and str(path) in seen[0]
    assert journal.warnings == seen


def test_lines_are_on_disk_before_close(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    journal = Journal(path)
    journal.start_run("r1", "c.yaml", dry_run=False)
    journal.change(op="group.create", key="k", group="g", object_id=None, user=None, result="ok")
    # Another reader sees both lines while the journal is still open, as it would after a crash.
    assert [e["event"] for e in read_events(path)] == ["run.start", "change"]
    journal.close()


def test_exception_inside_the_context_records_a_failed_end(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    with pytest.raises(KeyboardInterrupt), Journal(path) as journal:
        journal.start_run("r1", "c.yaml", dry_run=False)
        raise KeyboardInterrupt
    end = lines(path)[-1]
    assert end["event"] == "run.end" and end["status"] == "failed"
    assert end["warnings"] == ["run stopped by KeyboardInterrupt"]


def test_change_before_start_run_is_a_programming_error(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "changes.jsonl")
    with pytest.raises(RuntimeError, match="start_run"):
        journal.change(op="group.create", key="k", group="g", object_id=None, user=None, result="ok")
    with pytest.raises(ValueError, match="run status"):
        journal.start_run("r1", "c.yaml", dry_run=False)
        journal.end_run("fine", {})
    journal.close()


def test_torn_last_line_is_skipped_with_a_warning_and_next_run_starts_clean(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    with Journal(path) as journal:
        write_run(journal, "r1", [("group.members.add", "k", "7A/Ma1", "a@school.example")])
    with path.open("ab") as handle:
        handle.write(b'{"time": "2026-11-26T04:00:09Z", "run": "r1", "event": "chan')  # crash mid-write

    seen: list[str] = []
    assert len(read_events(path, on_warning=seen.append)) == 3
    assert len(seen) == 1 and ":4:" in seen[0]

    with Journal(path) as journal:
        write_run(journal, "r2", [])
    seen.clear()
    runs = [e["run"] for e in read_events(path, on_warning=seen.append)]
    assert runs == ["r1", "r1", "r1", "r2", "r2"]
    assert len(seen) == 1  # only the torn line; the next run's lines were not glued onto it


def test_new_run_id_sorts_by_time_and_is_unique() -> None:
    first = new_run_id(T0)
    later = new_run_id(T0 + timedelta(hours=4))
    assert re.fullmatch(r"20261126T040002Z-[0-9a-f]{4}", first)
    assert first < later
    assert len({new_run_id(T0) for _ in range(50)}) > 1


def _sample_journal(tmp_path: Path) -> Path:
    path = tmp_path / "changes.jsonl"
    clock = FakeClock()
    with Journal(path, clock=clock) as journal:
        write_run(
            journal,
            "20261126T040002Z-aaaa",
            [
                ("group.members.add", "NFA-class-1", "9X/En2 English", "A.Pupil@School.example"),
                ("group.members.add", "NFA-class-2", "7A/Ma1 Maths", "b.pupil@school.example"),
            ],
            clock,
        )
        clock.now = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
        write_run(
            journal,
            "20261127T080000Z-bbbb",
            [("group.members.remove", "NFA-class-1", "9X/En2 English", "a.pupil@school.example")],
            clock,
        )
        clock.now = datetime(2026, 11, 28, 12, 0, 0, tzinfo=UTC)
        write_run(journal, "20261128T120000Z-cccc", [], clock)
    return path


def test_user_and_group_filters_answer_when_a_pupil_left_a_class(tmp_path: Path) -> None:
    path = _sample_journal(tmp_path)
    events = read_events(path, user="a.pupil@school.example", group="9x/en2")
    changes = [e for e in events if e["event"] == "change"]
    assert [(e["op"], e["run"]) for e in changes] == [
        ("group.members.add", "20261126T040002Z-aaaa"),
        ("group.members.remove", "20261127T080000Z-bbbb"),
    ]
    # The runs those changes belong to come with their start and end, the run without a match does not.
    assert {e["run"] for e in events} == {"20261126T040002Z-aaaa", "20261127T080000Z-bbbb"}
    assert sum(1 for e in events if e["event"] == "run.end") == 2


def test_group_filter_matches_key_exactly_and_name_by_substring(tmp_path: Path) -> None:
    path = _sample_journal(tmp_path)
    by_key = [e for e in read_events(path, group="nfa-class-2") if e["event"] == "change"]
    assert [e["user"] for e in by_key] == ["b.pupil@school.example"]
    assert [e for e in read_events(path, group="NFA-class") if e["event"] == "change"] == []
    assert len([e for e in read_events(path, group="maths") if e["event"] == "change"]) == 1


def test_time_and_run_filters(tmp_path: Path) -> None:
    path = _sample_journal(tmp_path)
    on_27th = read_events(path, since=date(2026, 11, 27), until=date(2026, 11, 27))
    assert {e["run"] for e in on_27th} == {"20261127T080000Z-bbbb"}
    after = read_events(path, since=datetime(2026, 11, 27, 9, 0))  # naive means UTC
    assert {e["run"] for e in after} == {"20261128T120000Z-cccc"}
    before = read_events(path, until=datetime(2026, 11, 26, 4, 0, 4, tzinfo=UTC))
    assert [e["event"] for e in before] == ["run.start", "change"]
    assert {e["run"] for e in read_events(path, run="20261127")} == {"20261127T080000Z-bbbb"}
    assert read_events(path, run="nope") == []


def test_missing_journal_reads_as_empty(tmp_path: Path) -> None:
    assert read_events(tmp_path / "none.jsonl") == []


def test_unreadable_journal_names_the_user_to_run_as(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "changes.jsonl"
    path.write_text("")

    def denied(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    # Patched rather than chmod 000, which does not stop a test run as root.
    monkeypatch.setattr("smartsync.journal.open", denied, raising=False)
    with pytest.raises(SmartsyncError, match=r"permission denied.*sudo -u smartsync"):
        read_events(path)


def _line(moment: datetime, run: str = "r") -> str:
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    return json.dumps({"time": stamp, "run": run, "event": "run.start"}) + "\n"


def test_prune_drops_old_lines_atomically_and_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    now = datetime(2027, 12, 1, tzinfo=UTC)
    old = [_line(now - timedelta(days=500)), "garbage\n", _line(now - timedelta(days=401))]
    recent = [_line(now - timedelta(days=399)), "torn later line\n", _line(now - timedelta(days=1))]
    path.write_text("".join(old + recent))
    path.chmod(0o600)
    assert prune(path, 400, now) == 3
    assert path.read_text() == "".join(recent)
    assert mode(path) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["changes.jsonl"]  # no temporary file left
    assert prune(path, 400, now) == 0
    assert prune(tmp_path / "absent.jsonl", 400, now) == 0


def test_start_run_prunes_at_most_about_once_a_day(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    clock = FakeClock(datetime(2026, 1, 1, 4, tzinfo=UTC))
    for day in range(12):
        clock.now = datetime(2026, 1, 1, 4, tzinfo=UTC) + timedelta(days=day)
        with Journal(path, retention_days=10, clock=clock) as journal:
            write_run(journal, f"day{day}", [])
    first_runs = [e["run"] for e in read_events(path)]
    # Day 11: the first line (day 0) is 11 days old, within retention + 1 day, so nothing was pruned yet.
    assert first_runs[0] == "day0"
    clock.now += timedelta(days=1)
    with Journal(path, retention_days=10, clock=clock) as journal:
        write_run(journal, "day12", [])
    kept = [e["run"] for e in read_events(path)]
    assert kept[0] == "day2" and kept[-1] == "day12"


def test_rotates_to_dot_one_when_still_too_large(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    clock = FakeClock()
    make: Callable[[], Journal] = lambda: Journal(path, clock=clock, rotate_bytes=2000)  # noqa: E731
    for run in range(10):
        with make() as journal:
            write_run(journal, f"run{run}", [("group.members.add", "k", "g", f"u{i}@x") for i in range(5)])
    older = rotated_path(path)
    assert older.exists() and mode(older) == 0o600
    assert path.stat().st_size <= 2000 + 1000
    # Readers see the rotated generation first, then the current one, in order and without gaps at the seam.
    runs = [e["run"] for e in read_events(path) if e["event"] == "run.start"]
    assert runs == sorted(runs) and runs[-1] == "run9"
    assert len(runs) == len(set(runs))


def test_parse_when_accepts_dates_times_and_ages() -> None:
    now = datetime(2026, 11, 26, 12, tzinfo=UTC)
    assert parse_when("2026-11-26") == date(2026, 11, 26)
    assert parse_when("2026-11-26T04:00") == datetime(2026, 11, 26, 4, tzinfo=UTC)
    assert parse_when("2026-11-26 04:00:02Z") == datetime(2026, 11, 26, 4, 0, 2, tzinfo=UTC)
    assert parse_when("2026-11-26T05:00:00+01:00") == datetime(2026, 11, 26, 4, tzinfo=UTC)
    assert parse_when("7d", now) == now - timedelta(days=7)
    assert parse_when("12h", now) == now - timedelta(hours=12)
    assert parse_when("2w", now) == now - timedelta(days=14)
    with pytest.raises(ValueError, match="2026-11-26T04:00"):
        parse_when("last tuesday")


def test_a_first_line_longer_than_the_read_limit_is_dated_from_its_start(tmp_path: Path) -> None:
    from smartsync.journal import _needs_prune

    path = tmp_path / "changes.jsonl"
    now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)
    users = [[f"pupil{n}@school.example", f"id-{n}"] for n in range(3000)]  # an intent line of ~120 KB
    recent = {"time": "2026-11-20T04:00:00Z", "run": "r", "event": "intent", "slice": "1", "changes": users}
    path.write_text(json.dumps(recent, separators=(",", ":")) + "\n", encoding="utf-8")
    assert path.stat().st_size > 64 * 1024
    assert not _needs_prune(path, 400, now)
    assert _needs_prune(path, 3, now)
