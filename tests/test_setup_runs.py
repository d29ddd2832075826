"""Acceptance: running for real from cron against the simulator over HTTPS. An expiring secret is
warned about in the run report and the journal's run.end line; `smartsync log --user` answers when a
pupil left a class and which run did it; retention prunes old journal lines; a failed run sends one
notification with its summary and a successful one sends none."""

from __future__ import annotations

import json
import stat
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from test_setup_support import (
    LEAST_PRIVILEGE,
    PROXY_VARIABLES,
    app_seed,
    https_simulator,
    invoke,
    secret_credential,
    write_config,
)

from smartsync.demo import demo_seed
from smartsync.errors import EXIT_OK
from smartsync.roster.model import Group, Membership, Person, Roster
from smartsync.roster.sample import write_export

PUPIL = "amy.p@nfa.example"
PEOPLE = (
    Person("L1", "learner", PUPIL, "Amy", "Pupil", "Year 9"),
    Person("L2", "learner", "ben.o@nfa.example", "Ben", "Other", "Year 9"),
    Person("S1", "staff", "t.teacher@nfa.example", "Tess", "Teacher"),
)
ENGLISH = Group("4711", "9X/En2", "class", subject="English", year_group="Year 9")
MATHS = Group("4712", "9X/Ma1", "class", subject="Maths", year_group="Year 9")
AUTUMN = Roster(
    PEOPLE,
    (ENGLISH, MATHS),
    (
        Membership("4711", "L1", "learner"),
        Membership("4711", "L2", "learner"),
        Membership("4711", "S1", "teacher"),
        Membership("4712", "L2", "learner"),
        Membership("4712", "S1", "teacher"),
    ),
)
# Amy moves from English set 2 to maths: she leaves 9X/En2 and joins 9X/Ma1.
SPRING = Roster(
    PEOPLE,
    (ENGLISH, MATHS),
    (
        Membership("4711", "L2", "learner"),
        Membership("4711", "S1", "teacher"),
        Membership("4712", "L1", "learner"),
        Membership("4712", "L2", "learner"),
        Membership("4712", "S1", "teacher"),
    ),
)
GROUPS_ONLY = {"admin_units": {"enabled": False}, "teams": {"enabled": False}}
# Moving one pupil of a tiny school is a large fraction of its memberships; the limit is not under test.
RELAXED = {"max_membership_removal_fraction": 1.0}


@pytest.fixture(autouse=True)
def _direct_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def school_seed(roster: Roster, **app: Any) -> dict[str, Any]:
    directory = demo_seed(roster, missing_every=None)
    return app_seed(users=directory["users"], groups=directory["groups"], **app)


def journal_lines(tmp_path: Path) -> list[dict[str, Any]]:
    path = tmp_path / "journal" / "changes.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_expiring_secret_warns_in_the_run_report_and_the_journal(tmp_path: Path) -> None:
    write_export(AUTUMN, tmp_path / "export")
    seed = school_seed(AUTUMN, password_credentials=[secret_credential(9, name="smartsync 2026")])
    with https_simulator(tmp_path, seed) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY)
        result = invoke(config, "run")

    assert result.exit_code == EXIT_OK, result.output
    warning = "The app's secret 'smartsync 2026' expires on"
    assert warning in result.output and "(in 9 days)" in result.output
    end = journal_lines(tmp_path)[-1]
    assert end["event"] == "run.end" and end["status"] == "ok"
    assert any(w.startswith(warning) for w in end["warnings"])


def test_a_secret_far_from_expiry_adds_no_warning(tmp_path: Path) -> None:
    write_export(AUTUMN, tmp_path / "export")
    with https_simulator(tmp_path, school_seed(AUTUMN)) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY)
        result = invoke(config, "run")

    assert result.exit_code == EXIT_OK, result.output
    assert "expires on" not in result.output
    assert "warnings" not in journal_lines(tmp_path)[-1]


def test_log_user_finds_a_pupils_changes_across_runs(tmp_path: Path) -> None:
    with https_simulator(tmp_path, school_seed(AUTUMN)) as server:
        config = write_config(tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY, safety=RELAXED)
        runs = []
        for roster in (AUTUMN, AUTUMN, SPRING):
            # Runs hours apart, as from cron: what the last run created has replicated by then.
            server.simulator.clock.advance(3600)
            write_export(roster, tmp_path / "export")
            outcome = invoke(config, "run")
            assert outcome.exit_code == EXIT_OK, outcome.output
            runs.append(journal_lines(tmp_path)[-1]["run"])

    assert len(set(runs)) == 3
    events = json.loads(invoke(config, "log", "--user", PUPIL, "--json").stdout)
    changes = [e for e in events if e["event"] == "change"]
    assert {e["user"] for e in changes} == {PUPIL}
    # Created into English (and the year and all-learners groups) in the first run, moved in the third;
    # the second run changed nothing for her and is not shown.
    assert {e["run"] for e in changes} == {runs[0], runs[2]}
    left = [e for e in changes if e["op"] == "group.members.remove"]
    assert [(e["group"], e["run"], e["result"]) for e in left] == [("9X/En2 English", runs[2], "ok")]
    joined = [e for e in changes if e["op"] == "group.members.add"]
    assert [(e["group"], e["run"]) for e in joined] == [("9X/Ma1 Maths", runs[2])]

    # "When did this pupil leave 9X/En2, and which run did it?" as a table.
    table = invoke(config, "log", "--user", PUPIL, "--group", "9X/En2")
    assert table.exit_code == 0
    assert runs[2] in table.output and "9X/En2" in table.output and "9X/Ma1" not in table.output
    assert runs[1] not in table.output
    other = json.loads(invoke(config, "log", "--user", "ben.o@nfa.example", "--json").stdout)
    assert not [e for e in other if e["event"] == "change" and e["op"] == "group.members.remove"]


def test_retention_prunes_old_journal_lines_on_the_next_run(tmp_path: Path) -> None:
    journal = tmp_path / "journal" / "changes.jsonl"
    journal.parent.mkdir(mode=0o700)
    old = (datetime.now(UTC) - timedelta(days=45)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recent = (datetime.now(UTC) - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    stale = [
        {"time": old, "run": "old-run", "event": "run.start", "config": "x", "dry_run": False},
        {"time": old, "run": "old-run", "event": "run.end", "status": "ok", "summary": {}},
        {"time": recent, "run": "recent-run", "event": "run.start", "config": "x", "dry_run": False},
        {"time": recent, "run": "recent-run", "event": "run.end", "status": "ok", "summary": {}},
    ]
    journal.write_text("".join(json.dumps(e) + "\n" for e in stale), encoding="utf-8")
    journal.chmod(0o600)
    write_export(AUTUMN, tmp_path / "export")
    with https_simulator(tmp_path, school_seed(AUTUMN)) as server:
        config = write_config(
            tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY,
            journal={"path": str(journal), "retention_days": 30},
        )  # fmt: skip
        assert invoke(config, "run").exit_code == EXIT_OK

    runs = [e["run"] for e in journal_lines(tmp_path)]
    assert "old-run" not in runs and runs[:2] == ["recent-run", "recent-run"] and len(set(runs)) == 2
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600


class _Receiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ReceiverHandler)
        self.posts: list[dict[str, Any]] = []


class _ReceiverHandler(BaseHTTPRequestHandler):
    server: _Receiver

    def do_POST(self) -> None:
        self.server.posts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the test reads what arrived."""


@pytest.fixture
def receiver() -> Iterator[_Receiver]:
    server = _Receiver()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_failed_run_notifies_once_with_its_summary_and_a_good_run_not_at_all(
    tmp_path: Path, receiver: _Receiver
) -> None:
    write_export(AUTUMN, tmp_path / "export")
    notifications = {"webhook": {"url": f"http://127.0.0.1:{receiver.server_address[1]}/hook"}}
    read_only = [r for r in LEAST_PRIVILEGE if r not in ("Group.ReadWrite.All", "GroupMember.ReadWrite.All")]
    with https_simulator(tmp_path, school_seed(AUTUMN, roles=[*read_only, "Group.Read.All"])) as server:
        config = write_config(
            tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY, notifications=notifications
        )
        failed = invoke(config, "run")
    assert failed.exit_code != EXIT_OK
    assert len(receiver.posts) == 1
    post = receiver.posts[0]
    assert post["status"] in ("failed", "partial") and post["school"] in ("NFA", "Northfield Academy")
    # The missing permission is found before the first write (the run stops, naming it).
    assert failed.exit_code == 3, failed.output
    assert "GroupMember.ReadWrite.All" in post["message"] and "Nothing was written" in post["message"]
    assert post["run"] == journal_lines(tmp_path)[-1]["run"]

    with https_simulator(tmp_path / "second", school_seed(AUTUMN)) as server:
        config = write_config(
            tmp_path, server.base_url, server.ca_cert, sync=GROUPS_ONLY, notifications=notifications
        )
        succeeded = invoke(config, "run")
    assert succeeded.exit_code == EXIT_OK, succeeded.output
    assert len(receiver.posts) == 1
