"""A journal without holes: intents before each slice, reconciled against the tenant by the next run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import Tenant, tenant
from test_reliability_crash import DieAtRequest, ProcessDied, graph_requests
from test_reliability_support import journal_gaps, mini_roster, read_journal

from smartsync.engine.apply import Outcome
from smartsync.engine.intents import IntentLog, open_intents, reconcile
from smartsync.engine.plan import Change
from smartsync.engine.state import ActualState, GroupState, UserRef
from smartsync.graph import GraphOutcomeUnknown, make_graph_client
from smartsync.journal import Journal, format_log_table, read_events


def crash(t: Tenant, at: int, *, after_applying: bool) -> None:
    dying = DieAtRequest(t.sim.transport(), at, after_applying=after_applying)
    healthy = t.client
    client, _tokens = make_graph_client(t.config, transport=dying)
    with client:
        t.client = client
        try:
            t.sync(mini_roster())
        except ProcessDied:
            pass
        else:
            raise AssertionError("the run was meant to die mid-apply")
        finally:
            t.client = healthy


def reads_of_a_first_run(tmp_path: Path) -> int:
    with tenant(tmp_path / "dry", mini_roster()) as t:
        t.sync(mini_roster(), dry_run=True)
        return graph_requests(t)


def runs(events: list[dict[str, Any]]) -> list[str]:
    return [e["run"] for e in events if e["event"] == "run.start"]


def test_a_run_killed_mid_slice_is_reconciled_by_the_next_run(tmp_path: Path) -> None:
    reads = reads_of_a_first_run(tmp_path)
    with tenant(tmp_path / "t", mini_roster()) as t:
        crash(t, reads + 3, after_applying=True)
        path = t.config.journal.path
        (interrupted,) = [i for i in open_intents(path)]
        assert interrupted.interrupted and interrupted.changes
        # Before the next run, the tenant holds changes the journal does not account for.
        assert journal_gaps(t.state(), read_journal(path)) != []

        rerun = t.sync(mini_roster())
        assert rerun.status == "ok"
        events = read_journal(path)
        crashed, second = runs(events)
        assert journal_gaps(t.state(), events) == []
        found = [e for e in events if e.get("reconciled") == "applied"]
        assert found and all(e["run"] == crashed and e["reconciled_by"] == second for e in found)
        assert all(e["result"] == "ok" for e in found)
        assert [e["for_run"] for e in events if e["event"] == "intent.reconciled"] == [crashed]
        assert any("Reconciled the journal" in w for w in rerun.warnings)
        assert open_intents(path) == []

        # Settled once: a third run finds nothing to reconcile.
        before = len(read_journal(path))
        third = t.sync(mini_roster())
        assert third.plan.changes == ()
        assert not [e for e in read_journal(path)[before:] if e.get("reconciled")]


def test_changes_never_sent_are_journaled_as_not_applied_and_made_by_the_next_run(tmp_path: Path) -> None:
    reads = reads_of_a_first_run(tmp_path)
    with tenant(tmp_path / "t", mini_roster()) as t:
        crash(t, reads + 2, after_applying=False)
        path = t.config.journal.path
        t.sync(mini_roster())
        events = read_journal(path)
        crashed, second = runs(events)
        skipped = [e for e in events if e.get("reconciled") == "not_applied"]
        assert skipped and all(e["run"] == crashed and e["result"] == "skipped" for e in skipped)
        assert "not applied" in skipped[0]["error"]
        # The next run planned them again and made them: each has its ok line under that run.
        for line in skipped:
            assert any(
                e["event"] == "change"
                and e["run"] == second
                and e["op"] == line["op"]
                and e["key"] == line["key"]
                and e["user"] == line["user"]
                and e["result"] == "ok"
                for e in events
            ), line
        assert journal_gaps(t.state(), events) == []


def test_an_uncertain_change_stays_open_until_the_tenant_says(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    pupil = UserRef("a.pupil@school.example", "u1")
    change = Change("group.members.add", "NFA-class-1", name="7A/Ma1", object_id="g1", users=(pupil,))
    with Journal(path) as journal:
        journal.start_run("run-1", "test", False)
        log = IntentLog(journal)
        slice_id = log.before([change])
        outcome = Outcome(change, object_id="g1")
        outcome.fail_user(pupil, GraphOutcomeUnknown(None, "OutcomeUnknown", "answer lost"))
        outcome.fail("1 of 1 failed")
        journal.change(
            op=change.op, key=change.key, group="7A/Ma1", object_id="g1", user=pupil.address, result="failed"
        )
        log.after(slice_id, [outcome])
        journal.end_run("failed", {})
    (still,) = open_intents(path)
    assert not still.interrupted and still.changes[0]["users"] == [[pupil.address, "u1"]]

    group = GroupState("g1", "NFA-class-1", "7A/Ma1", "microsoft365", "smartsync-NFA-class-1")
    with Journal(path) as journal:
        journal.start_run("run-2", "test", False)
        # Not there: the failed line stands, nothing is added, and the intent is closed.
        outcome_2 = reconcile(
            path, journal, "run-2", ActualState({"NFA-class-1": group}), groups=True, units=True
        )
        journal.end_run("ok", {})
    assert (outcome_2.applied, outcome_2.not_applied) == (0, 0)
    assert open_intents(path) == []


def test_an_uncertain_change_found_made_gets_its_ok_line(tmp_path: Path) -> None:
    path = tmp_path / "changes.jsonl"
    pupil = UserRef("a.pupil@school.example", "u1")
    change = Change("group.members.add", "NFA-class-1", name="7A/Ma1", object_id="g1", users=(pupil,))
    with Journal(path) as journal:
        journal.start_run("run-1", "test", False)
        log = IntentLog(journal)
        slice_id = log.before([change])
        outcome = Outcome(change, object_id="g1")
        outcome.fail_user(pupil, GraphOutcomeUnknown(None, "OutcomeUnknown", "answer lost"))
        log.after(slice_id, [outcome])
        journal.end_run("failed", {})
    group = GroupState(
        "g1", "NFA-class-1", "7A/Ma1", "microsoft365", "smartsync-NFA-class-1", members=frozenset({pupil})
    )
    have = ActualState({"NFA-class-1": group})
    with Journal(path) as journal:
        journal.start_run("run-2", "test", False)
        # A run that did not read groups leaves the intent for one that does.
        assert reconcile(path, journal, "run-2", have, groups=False, units=True).applied == 0
        assert reconcile(path, journal, "run-2", have, groups=True, units=True).applied == 1
        journal.end_run("ok", {})
    events = read_events(path)
    assert not [e for e in events if e["event"].startswith("intent")]  # bookkeeping stays out of `log`
    assert [e["event"] for e in read_events(path, intents=True)].count("intent") == 1
    (line,) = [e for e in events if e.get("reconciled")]
    assert line["run"] == "run-1" and line["reconciled_by"] == "run-2" and line["object_id"] == "g1"
    table = "\n".join(format_log_table(events))
    assert "ok: found made by run run-2" in table
