"""The long reliability soak behind `make soak`: many seeds, higher fault rates, many crashes.

Three kinds of round, each on a fresh simulated tenant:
- faults: the sample school with every feature, 5-30 % of requests failing (429, 503, 504, dropped
  connections, lost responses); converged within two runs (three above 20 %);
- crashes: a run stopped dead at a random Graph request during apply, in process, then rerun;
- kills: the real CLI killed with SIGKILL at a random point of apply against `smartsync simulator
  serve`, then rerun.

A round "loses" what still differs from the roster after its reruns, and "duplicates" any managed
object that exists twice. Then one more fault-free run reconciles the journal (intents), and every
change the tenant holds must have its `ok` journal line. The last line is the summary the README quotes:
`soak: N runs, N faults injected, N objects, 0 lost, 0 duplicated`; the exit status is 1 when
anything was lost or duplicated.

    python tests/soak.py [--seeds 12] [--kills 6]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import AUTUMN, Tenant, tenant
from test_reliability_crash import DieAtRequest, ProcessDied, graph_requests
from test_reliability_support import (
    actual_picture,
    duplicates,
    expected_picture,
    journal_gaps,
    mini_roster,
    read_journal,
    sigkill_round,
    unmanaged_snapshot,
)

from smartsync.graph import GraphError, make_graph_client
from smartsync.roster.model import Roster
from smartsync.roster.sample import generate
from smartsync.simulator.faults import FaultInjector

RATES = (0.05, 0.10, 0.15, 0.20, 0.30)


@dataclass
class Tally:
    runs: int = 0
    faults: int = 0
    objects: int = 0
    lost: int = 0
    duplicated: int = 0
    journal_gaps: dict[str, int] = field(default_factory=dict)
    crashes: int = 0
    kills: int = 0
    notes: list[str] = field(default_factory=list)

    def settle(self, kind: str, label: str, t: Tenant, roster: Roster, before: str) -> None:
        state = t.state()
        problems = expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state))
        twice = duplicates(state)
        self.lost += len(problems)
        self.duplicated += len(twice)
        self.objects += actual_picture(state).objects()
        # What the last run left uncertain (or a crash left unrecorded) is settled by the next run.
        sync_counting(t, roster, self)
        state = t.state()
        gaps = len(journal_gaps(state, read_journal(t.config.journal.path)))
        self.journal_gaps[kind] = self.journal_gaps.get(kind, 0) + gaps
        if unmanaged_snapshot(state) != before:
            self.lost += 1
            problems.append("an unmanaged object or a user changed")
        if problems or twice:
            self.notes.append(f"{label}: {problems[:3]} {twice[:3]}")


def sync_counting(t: Tenant, roster: Roster, tally: Tally) -> None:
    tally.runs += 1
    try:
        t.sync(roster)
    except GraphError as exc:  # a run that stops on a read failure: the next run carries on
        tally.notes.append(f"run stopped: {exc.code}")


def fault_round(tally: Tally, roster: Roster, seed: int, rate: float) -> None:
    budget = 2 if rate <= 0.20 else 3
    with (
        tempfile.TemporaryDirectory() as folder,
        tenant(Path(folder), roster, faults=f"rate={rate},seed={seed}") as t,
    ):
        before = unmanaged_snapshot(t.state())
        for _ in range(budget):
            sync_counting(t, roster, tally)
            state = t.state()
            if not expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)):
                break
        tally.faults += int(t.sim.stats()["faults"])
        t.sim.faults = FaultInjector(None)
        tally.settle(f"faults {rate:.0%}", f"faults rate={rate} seed={seed}", t, roster, before)


def crash_round(tally: Tally, roster: Roster, rng: random.Random, span: tuple[int, int]) -> None:
    reads, whole = span
    die_at = rng.randint(reads + 1, reads + (whole - reads) * 3 // 4)
    with tempfile.TemporaryDirectory() as folder, tenant(Path(folder), roster) as t:
        before = unmanaged_snapshot(t.state())
        dying = DieAtRequest(t.sim.transport(), die_at, after_applying=rng.random() < 0.5)
        healthy = t.client
        client, _tokens = make_graph_client(t.config, transport=dying)
        tally.runs += 1
        with client:
            t.client = client
            try:
                t.sync(roster)
            except ProcessDied:
                tally.crashes += 1
        t.client = healthy
        for _ in range(2):
            sync_counting(t, roster, tally)
            state = t.state()
            if not expected_picture(state, roster, t.config, AUTUMN).difference(actual_picture(state)):
                break
        tally.settle("crashes", f"crash at request {die_at}", t, roster, before)


def clean_span(roster: Roster) -> tuple[int, int]:
    with tempfile.TemporaryDirectory() as folder, tenant(Path(folder), roster) as t:
        t.sync(roster, dry_run=True)
        reads = graph_requests(t)
        t.sync(roster)
        return reads, graph_requests(t) - reads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seeds", type=int, default=12, help="seeds per fault rate, and crash rounds (x2)")
    parser.add_argument("--kills", type=int, default=6, help="SIGKILL rounds against the served tenant")
    args = parser.parse_args(argv)
    started = time.monotonic()
    tally = Tally()
    school = generate("small")
    for rate in RATES:
        for seed in range(args.seeds):
            fault_round(tally, school, 1000 + seed, rate)
        print(
            f"faults {rate:.0%}: {args.seeds} rounds, {tally.runs} runs so far, lost {tally.lost}", flush=True
        )
    rng = random.Random(7)
    for roster in (mini_roster(), school):
        span = clean_span(roster)
        for _ in range(args.seeds):
            crash_round(tally, roster, rng, span)
    print(f"crashes: {tally.crashes} runs stopped dead mid-apply, lost {tally.lost}", flush=True)
    for n in range(args.kills):
        roster = school if n % 2 else mini_roster()
        kill_after = rng.randint(10, 400 if n % 2 else 60)
        with tempfile.TemporaryDirectory() as folder:
            outcome = sigkill_round(Path(folder), roster, kill_after)
        tally.runs += 1 + outcome.reruns
        tally.kills += outcome.killed
        tally.objects += outcome.objects
        tally.lost += len(outcome.problems) + outcome.unmanaged_changed
        tally.duplicated += len(outcome.duplicates)
        tally.journal_gaps["kills"] = tally.journal_gaps.get("kills", 0) + outcome.journal_gaps
        if outcome.problems or outcome.duplicates:
            tally.notes.append(
                f"kill after {kill_after} writes: {outcome.problems[:3]} {outcome.duplicates[:3]}"
            )
    print(f"kills: {tally.kills} of {args.kills} processes killed mid-apply with SIGKILL", flush=True)
    for note in tally.notes[:20]:
        print(f"  note: {note}")
    gaps = ", ".join(f"{kind} {n}" for kind, n in tally.journal_gaps.items())
    print(f"applied changes without an ok journal line once the next run has reconciled: {gaps}")
    print(f"elapsed {time.monotonic() - started:.0f} s")
    print(
        f"soak: {tally.runs} runs, {tally.faults} faults injected, {tally.objects} objects, "
        f"{tally.lost} lost, {tally.duplicated} duplicated"
    )
    return 0 if tally.lost == 0 and tally.duplicated == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
