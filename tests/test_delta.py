"""Reads in proportion to change: delta state beside the journal, what a run with it reads, and every
reason it falls back to a full read (no state, a new day, expired links, a newer journal)."""

from __future__ import annotations

import stat
from datetime import date, timedelta
from pathlib import Path

import pytest
from harness import AUTUMN, Tenant, tenant

from smartsync.engine.actual import read_actual, read_users
from smartsync.engine.delta import STATE_NAME, DeltaReader
from smartsync.engine.run import RunResult, run_sync
from smartsync.graph import make_graph_client
from smartsync.journal import Journal, new_run_id
from smartsync.roster.model import Roster
from smartsync.roster.sample import generate
from smartsync.simulator.odata import GraphError


@pytest.fixture(scope="module")
def school() -> Roster:
    return generate("small", 1)


def _sync(
    t: Tenant, roster: Roster, *, today: date = AUTUMN, full_read: str = "daily"
) -> tuple[RunResult, int, str]:
    """One run with delta state: its result, the Graph requests it made and why it read in full."""
    reader = DeltaReader(t.config.journal.path, full_read)  # type: ignore[arg-type]
    before = t.sim.stats()["requests"]
    with Journal(t.config.journal.path, t.config.journal.retention_days) as journal:
        result = run_sync(
            t.config,
            roster,
            t.client,
            dry_run=False,
            journal=journal,
            run_id=new_run_id(),
            config_path="test",
            today=today,
            sleep=lambda _s: None,
            delta=reader,
        )
    assert reader.last_read is not None
    return result, t.sim.stats()["requests"] - before, reader.last_read.full_read_reason or "delta"


def _same_as_a_full_read(t: Tenant) -> None:
    """What the delta state says Entra holds is what a full read finds."""
    reader = DeltaReader(t.config.journal.path)
    state = reader.load()
    assert state is not None
    read = reader.read(
        t.client, "smartsync", groups=True, admin_units=True, today=date.fromisoformat(state.full_read_on)
    )
    assert read.full_read_reason is None
    assert read.have.groups == read_actual(t.client, "smartsync").groups
    assert read.have.admin_units == read_actual(t.client, "smartsync").admin_units
    assert sorted(read.users, key=lambda u: u.id) == sorted(read_users(t.client), key=lambda u: u.id)


def test_a_no_change_run_with_delta_state_makes_a_handful_of_requests(tmp_path: Path, school: Roster) -> None:
    with tenant(tmp_path, school) as t:
        first, _, why = _sync(t, school)
        assert why == "no delta state" and first.status == "ok"
        # The groups the first run created were read whole at its end, in first delta rounds of
        # their own, so the next run needs only the delta links.
        quiet, requests, why = _sync(t, school)
        assert why == "delta" and quiet.plan.changes == ()
        # Users 1, 190 managed groups in 4 queries of 50, 10 units in 1.
        assert requests == 1 + 4 + 1
        full, full_requests, why = _sync(t, school, full_read="every-run")
        assert why == "graph.full_read is every-run" and full.plan.changes == ()
        # Without delta state: users 1, the group list 1, 190 member and 190 owner lists, the unit
        # list 1 and 10 units' members; then one request per 50 ids to start tracking again.
        assert full_requests == (1 + 1 + 190 * 2 + 1 + 10) + (1 + 4 + 1)
        _same_as_a_full_read(t)


def test_changes_by_hand_and_by_the_roster_are_seen_and_the_state_is_private(
    tmp_path: Path, school: Roster
) -> None:
    with tenant(tmp_path, school) as t:
        _sync(t, school)
        _sync(t, school)
        groups = t.managed_groups()
        some = next(g for g in groups.values() if len(g["members"]) > 2)
        gone = t.sim.state.groups[some["id"]].members.pop()  # a member removed by hand
        renamed = next(g for g in groups.values() if g["id"] != some["id"])
        t.sim.state.groups[renamed["id"]].display_name = "Renamed by hand"
        result, _, why = _sync(t, school)
        assert why == "delta"
        ops = {(c.op, c.key) for c in result.plan.changes}
        key_of = {g["id"]: nick.removeprefix("smartsync-") for nick, g in groups.items()}
        assert ("group.members.add", key_of[some["id"]]) in ops
        assert ("group.update", key_of[renamed["id"]]) in ops
        assert gone in t.sim.state.groups[some["id"]].members  # repaired
        again, _, _ = _sync(t, school)
        assert again.plan.changes == ()
        _same_as_a_full_read(t)
        state_file = t.config.journal.path.with_name(STATE_NAME)
        assert stat.S_IMODE(state_file.stat().st_mode) == 0o600


def test_deleted_and_new_objects_update_the_tracked_set(tmp_path: Path, school: Roster) -> None:
    fewer = Roster(
        people=school.people,
        groups=school.groups[5:],
        memberships=tuple(
            m for m in school.memberships if m.group_id not in {g.id for g in school.groups[:5]}
        ),
        source="fewer groups",
    )
    with tenant(tmp_path, fewer, removal={"group": "delete"}) as t:
        _sync(t, fewer)
        _sync(t, fewer)
        more, _, why = _sync(t, school)  # five groups more: created, then tracked
        assert why == "delta" and any(c.op == "group.create" for c in more.plan.changes)
        assert _sync(t, school)[0].plan.changes == ()
        _same_as_a_full_read(t)
        back, _, why = _sync(t, fewer)  # and deleted again: no longer tracked
        assert why == "delta" and any(c.op == "group.delete" for c in back.plan.changes)
        assert _sync(t, fewer)[0].plan.changes == ()
        _same_as_a_full_read(t)


def test_full_reads_on_a_new_day_and_when_graph_has_forgotten_the_links(
    tmp_path: Path, school: Roster
) -> None:
    with tenant(tmp_path, school) as t:
        _sync(t, school)
        assert _sync(t, school, today=AUTUMN + timedelta(days=1))[2] == "first run of the day"
        assert _sync(t, school, today=AUTUMN + timedelta(days=1))[2] == "delta"
        t.sim.clock.advance(8 * 24 * 3600)  # Graph keeps delta links for about seven days
        client, _tokens = make_graph_client(t.config, transport=t.sim.transport())
        with client:  # a new process, with a token valid on the tenant's new day
            result, _, why = _sync(Tenant(t.sim, t.config, client), school, today=AUTUMN + timedelta(days=1))
        assert why == "Graph no longer knows the delta links (they expire after about seven days)"
        assert result.plan.changes == ()


def test_a_journal_written_after_the_state_means_a_full_read(tmp_path: Path, school: Roster) -> None:
    with tenant(tmp_path, school) as t:
        _sync(t, school)
        with Journal(t.config.journal.path, 30) as journal:  # a run that did not save delta state
            journal.start_run(new_run_id(), "other", dry_run=False)
            journal.end_run("ok", {})
        assert _sync(t, school)[2] == "the journal changed after the delta state was saved"
        damaged = t.config.journal.path.with_name(STATE_NAME)
        damaged.write_text("{not json", encoding="utf-8")
        assert _sync(t, school)[2] == "no delta state"


def test_a_graph_that_refuses_delta_queries_still_gets_a_full_read_and_a_good_run(
    tmp_path: Path, school: Roster, monkeypatch: pytest.MonkeyPatch
) -> None:
    with tenant(tmp_path, school) as t:
        _sync(t, school)
        _sync(t, school)  # delta state in place

        def refuse(*_args: object) -> None:
            raise GraphError(400, "Request_UnsupportedQuery", "Unsupported query.")

        monkeypatch.setattr(t.sim.api.delta, "handle", refuse)
        some = next(iter(t.managed_groups().values()))
        t.sim.state.groups[some["id"]].display_name = "Renamed by hand"
        result, _, why = _sync(t, school)
        assert why == "the delta queries failed (Request_UnsupportedQuery)"
        assert result.status == "ok" and [c.op for c in result.plan.changes] == ["group.update"]
        assert _sync(t, school)[2] == "the journal changed after the delta state was saved"
