"""Crash safety: a run that dies in the middle of applying leaves nothing the next run cannot repair.

In process, a transport stops the run dead at a chosen Graph request (before or just after the
tenant applied it), for several seeds; the next runs must converge with nothing duplicated and
nothing unmanaged touched. One case kills the real CLI with SIGKILL while it applies, against
`smartsync simulator serve`, and checks the same through the served tenant.
"""

from __future__ import annotations

import random
import threading
from pathlib import Path

import httpx
import pytest
from harness import AUTUMN, Tenant, tenant
from test_reliability_support import (
    actual_picture,
    duplicates,
    expected_picture,
    mini_roster,
    read_journal,
    sigkill_round,
    unmanaged_snapshot,
)

from smartsync.graph import make_graph_client
from smartsync.roster.model import Roster


class ProcessDied(BaseException):
    """Stands for the process ending at this point: nothing after it runs, nothing catches it."""


class DieAtRequest(httpx.BaseTransport):
    """Passes Graph requests through until the `die_at`-th, then every request dies (the process is gone)."""

    def __init__(self, inner: httpx.BaseTransport, die_at: int, *, after_applying: bool) -> None:
        self.inner = inner
        self.die_at = die_at
        self.after_applying = after_applying
        self.seen = 0
        self.dead = False
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if not request.url.path.startswith("/v1.0/"):
            return self.inner.handle_request(request)  # sign-in
        with self._lock:
            self.seen += 1
            dying = self.seen >= self.die_at and not self.dead
            self.dead = self.dead or dying
            dead_before = self.dead and not dying
        if dead_before:
            raise ProcessDied()
        if dying:
            if self.after_applying:
                self.inner.handle_request(request)
            raise ProcessDied()
        return self.inner.handle_request(request)


def graph_requests(t: Tenant) -> int:
    return sum(1 for r in t.sim.request_log if r.batch_item_id is None and r.path.startswith("/v1.0/"))


def recovered(t: Tenant, roster: Roster) -> list[str]:
    """Run (at most twice) after the crash; return what still differs from the roster."""
    problems: list[str] = []
    for _ in range(2):
        t.sync(roster)
        state = t.state()
        problems = expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state))
        if not problems:
            break
    return problems


@pytest.fixture(scope="module")
def requests_of_a_clean_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, int]:
    """(Graph requests before apply starts, Graph requests of a whole first run) for the mini roster."""
    roster = mini_roster()
    with tenant(tmp_path_factory.mktemp("clean"), roster) as t:
        t.sync(roster, dry_run=True)
        reads = graph_requests(t)
        t.sync(roster)
        return reads, graph_requests(t) - reads


@pytest.mark.parametrize("seed", range(8))
def test_a_run_that_dies_mid_apply_is_repaired_by_the_next_run_without_duplicates(
    tmp_path: Path, seed: int, requests_of_a_clean_run: tuple[int, int]
) -> None:
    reads, whole_run = requests_of_a_clean_run
    assert whole_run > reads + 5  # there is an apply phase to die in
    rng = random.Random(seed)
    # The later requests of a run wait for new objects to replicate and poll team creation, as often
    # as time allows, so their number varies with the machine's load: die in the first half of apply.
    die_at = rng.randint(reads + 1, reads + (whole_run - reads) // 2)
    roster = mini_roster()
    with tenant(tmp_path, roster) as t:
        before = unmanaged_snapshot(t.state())
        dying = DieAtRequest(t.sim.transport(), die_at, after_applying=seed % 2 == 1)
        healthy_client = t.client
        client, _tokens = make_graph_client(t.config, transport=dying)
        with client:
            t.client = client
            with pytest.raises(ProcessDied):
                t.sync(roster)
        assert dying.dead
        t.client = healthy_client
        assert recovered(t, roster) == []
        state = t.state()
        assert duplicates(state) == []
        assert unmanaged_snapshot(state) == before
        assert t.sync(roster, dry_run=True).plan.changes == ()


@pytest.mark.slow  # about 4 s: a served tenant and three CLI processes; `make soak` runs many more
@pytest.mark.parametrize("kill_after_writes", [30])
def test_the_cli_killed_with_sigkill_during_apply_converges_on_the_next_run(
    tmp_path: Path, kill_after_writes: int
) -> None:
    outcome = sigkill_round(tmp_path, mini_roster(), kill_after_writes)
    assert outcome.killed, "the run finished before it could be killed"
    assert outcome.problems == []
    assert outcome.duplicates == []
    assert not outcome.unmanaged_changed
    assert outcome.objects > 10
    # What the killed process made without journaling it, the rerun reconciled from its intents.
    assert outcome.journal_gaps == 0
    events = read_journal(tmp_path / "journal" / "changes.jsonl")
    # The killed run never wrote its end line; the run after it did, and its changes are all there.
    ends = [e["status"] for e in events if e.get("event") == "run.end"]
    starts = [e for e in events if e.get("event") == "run.start"]
    assert len(starts) == len(ends) + 1 and ends[-1] == "ok"
