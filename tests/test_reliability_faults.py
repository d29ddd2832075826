"""Convergence under faults: 429, 503, 504, dropped connections and lost responses at 5-20 %.

With groups, administrative units and teams all switched on, at most two runs bring the tenant to
the desired state; nothing is created twice; nothing unmanaged and no user changes; and every
managed object, membership and team in the tenant has a successful line in the journal.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from harness import AUTUMN, Tenant, tenant
from test_reliability_support import (
    actual_picture,
    duplicates,
    expected_picture,
    journal_gaps,
    read_journal,
    unmanaged_snapshot,
)

from smartsync.graph import make_graph_client
from smartsync.graph.retry import Backoff
from smartsync.roster.model import Roster
from smartsync.roster.sample import generate
from smartsync.simulator.faults import FaultInjector

ALL_FAULTS = "kinds=429+503+504+drop+lost"


def converge(t: Tenant, roster: Roster, runs: int) -> int:
    """Apply until the tenant matches the roster; return the number of runs it took (0 if it never did)."""
    for run in range(1, runs + 1):
        t.sync(roster)
        state = t.state()
        if not expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)):
            return run
    return 0


@pytest.mark.slow  # about 2.5 s each: the sample school with every feature, under faults
@pytest.mark.parametrize(("seed", "rate"), [(3, 0.05), (7, 0.10), (19, 0.20)])
def test_every_fault_kind_converges_within_two_runs_with_nothing_lost_or_doubled(
    tmp_path: Path, seed: int, rate: float
) -> None:
    roster = generate("small")
    with tenant(tmp_path, roster, faults=f"rate={rate},seed={seed},{ALL_FAULTS}") as t:
        before = unmanaged_snapshot(t.state())
        runs = converge(t, roster, runs=2)
        state = t.state()
        want, have = expected_picture(state, roster, t.config, AUTUMN), actual_picture(state)
        assert runs, f"not converged after 2 runs: {want.difference(have)}"
        stats = t.sim.stats()
        assert "lost" in stats["faults_by_kind"] and len(stats["faults_by_kind"]) >= 4, stats
        assert stats["faults"] >= 50, stats
        assert duplicates(state) == []
        assert unmanaged_snapshot(state) == before
        # Every change that was made is in the journal, even one whose answer was lost.
        assert journal_gaps(state, read_journal(t.config.journal.path)) == []
        assert sum(1 for g in have.groups.values() if g.team) > 10
        # With the faults switched off, a fresh plan agrees that nothing is left to do.
        t.sim.faults = FaultInjector(None)
        assert t.sync(roster, dry_run=True).plan.changes == ()


class LoseThenRefuse(httpx.BaseTransport):
    """The first `$batch` adding members (to a group, or to a team) is applied and its answer lost;
    every retry of it gets 503."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.target: bytes | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.content if request.url.path.endswith("/$batch") else b""
        if self.target is None and (b"members@odata.bind" in body or b"/members/add" in body):
            self.target = body[body.index(b'"url"') :][:80]
            self.inner.handle_request(request)
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        if self.target is not None and self.target in body:
            return httpx.Response(503, json={"error": {"code": "serviceNotAvailable", "message": "busy"}})
        return self.inner.handle_request(request)


def test_a_change_applied_behind_a_lost_answer_is_journaled_as_made(tmp_path: Path) -> None:
    roster = generate("small")
    first_class = next(g.id for g in roster.groups if g.type == "class")
    earlier = replace(
        roster,
        memberships=tuple(
            m for m in roster.memberships if not (m.group_id == first_class and m.role == "learner")
        ),
    )
    with tenant(tmp_path, roster) as t:
        t.sync(earlier)
        lossy = LoseThenRefuse(t.sim.transport())
        healthy = t.client
        client, _tokens = make_graph_client(t.config, transport=lossy, backoff=Backoff(0.0005, 0.01))
        with client:
            t.client = client
            t.sync(roster)
        t.client = healthy
        assert lossy.target is not None
        t.sync(roster)
        state = t.state()
        assert expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)) == []
        assert journal_gaps(state, read_journal(t.config.journal.path)) == []
