"""Run the scenarios against the simulated tenant and measure each run next to its floor.

Time: the simulator's clock is driven by a `VirtualTime` that moves only when the client waits
(for `Retry-After`, for its own quota pacing, for a team to be provisioned) and, with a service
time (`latency_ms`), while a request is being served, on the clock of the connection that sent it,
so parallel round trips overlap. `sim_seconds` is therefore the time Graph's quotas and service time
impose with no compute time, the same on any machine. A scaled real-time clock (`--time-scale N`)
would count every millisecond of our own CPU as N simulated ones and measure the benchmark machine,
not Graph. `wall_seconds` is the real time the run took.

Each (school, client, service time) gets its own tenant, seeded with an Entra user for every person
of every scenario, and runs the scenarios in order: initial (empty tenant), no change, a typical
day, then the September rollover (forced: it archives every class team, far beyond
`safety.max_deletes`). smartsync keeps its delta state beside the journal as it would under cron;
the first three scenarios fall on one day, the rollover on another.
"""

from __future__ import annotations

import gc
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx

from benchmarks.floors import Floor, floor_for
from benchmarks.naive import NaiveGraphClient
from benchmarks.scenarios import NEXT_SEPTEMBER, TODAY, SchoolRosters, school_rosters
from smartsync.config import Config, parse_config
from smartsync.demo import DEMO_BASE_URL, DEMO_CLIENT, DEMO_SECRET, DEMO_TENANT, demo_seed
from smartsync.engine.delta import DeltaReader
from smartsync.engine.run import RunResult, run_sync
from smartsync.graph import GraphClient
from smartsync.graph.auth import TokenProvider
from smartsync.graph.retry import Backoff
from smartsync.journal import Journal, new_run_id
from smartsync.roster.model import Roster
from smartsync.simulator import Clock, Simulator, VirtualTime
from smartsync.simulator.latency import Latency

SCENARIOS = ("initial", "no_change", "typical_day", "rollover")
# Runs are hours apart (cron at 04:00, 08:00 and 12:00): no run inherits the last one's spent quota.
HOURS_BETWEEN_RUNS = 4.0
CLIENTS = ("smartsync", "naive")
COUNTERS = ("requests", "batch_round_trips", "ru", "writes", "throttled")
# Service times the scenarios run at: none (the quotas alone) and the live service's typical median.
LATENCIES_MS = (0.0, 150.0)


@dataclass(frozen=True)
class Measurement:
    """One scenario run by one client: what it cost, what the floor is, and the ratios."""

    scenario: str
    school: str
    client: str
    counts: dict[str, int]
    failed_changes: int
    skipped_changes: int
    changes: int
    sim_seconds: float
    wall_seconds: float
    peak_mb: float
    floor: Floor
    latency_ms: float = 0.0
    read: str = "full"  # "delta" when the run read only what changed

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "scenario": self.scenario,
            "school": self.school,
            "client": self.client,
            "latency_ms": self.latency_ms,
            "read": self.read,
        }
        out.update(self.counts)
        requests = self.counts["requests"]
        out["throttled_share"] = round(self.counts["throttled"] / requests, 4) if requests else 0.0
        out.update(
            {
                "failed_changes": self.failed_changes,
                "skipped_changes": self.skipped_changes,
                "changes": self.changes,
                "sim_seconds": round(self.sim_seconds, 1),
                "wall_seconds": round(self.wall_seconds, 2),
                "peak_mb": round(self.peak_mb, 1),
            }
        )
        out.update(self.floor.to_dict())
        out["ratios"] = self.ratios()
        return out

    def ratios(self) -> dict[str, float | None]:
        def ratio(value: float, floor: float) -> float | None:
            return round(value / floor, 3) if floor else None

        return {
            "writes": ratio(self.counts["writes"], self.floor.writes),
            "ru": ratio(self.counts["ru"], self.floor.ru),
            "sim_seconds": ratio(self.sim_seconds, self.floor.seconds),
        }


def bench_config(workdir: Path, codes: list[str] | None = None, **sync: Any) -> Config:
    """The default config (groups, administrative units and class teams on) for the simulated tenant.

    `codes`: the school codes of a trust's export (one config owns them all); default one school, NFA.
    """
    school: dict[str, Any] = {"code": "NFA", "name": "Northfield Academy"}
    safety: dict[str, Any] = {}
    if codes:
        school = {"codes": codes, "name": "Northfield Trust"}
        # One config for the whole trust: its typical day removes about 4,200 of 460,000 memberships,
        # past the default ceiling of 500, so it sets its own (as the README advises such a trust).
        safety = {"max_membership_removals": 10_000}
    return parse_config(
        {
            "tenant": {
                "tenant_id": DEMO_TENANT,
                "client_id": DEMO_CLIENT,
                "client_secret": DEMO_SECRET,
                "authority_host": DEMO_BASE_URL,
                "graph_endpoint": DEMO_BASE_URL,
            },
            "source": {"type": "realsmart-export", "path": str(workdir / "export")},
            "school": school,
            "safety": safety,
            "journal": {"path": str(workdir / "journal" / "changes.jsonl")},
            "sync": sync,
        }
    )


class VirtualTimeTokens:
    """Tokens for a run on virtual time: a new one every 50 virtual minutes, as the real clock would.

    msal and `TokenProvider` cache a token by the real clock, which hardly moves during a benchmark,
    while the simulated tenant expires it after an hour of its own (virtual) time.
    """

    LIFETIME_SECONDS = 50 * 60

    def __init__(self, config: Config, transport: httpx.BaseTransport, time: VirtualTime) -> None:
        self._config = config
        self._transport = transport
        self._time = time
        self._provider = TokenProvider(config.tenant, transport=transport)
        self._issued = time.now()

    def token(self) -> str:
        if self._time.now() - self._issued > self.LIFETIME_SECONDS:
            self._provider = TokenProvider(self._config.tenant, transport=self._transport)
            self._issued = self._time.now()
        return self._provider.token()


class BenchTenant:
    """A simulated tenant on virtual time, and a client (smartsync's or the naive one) to sync into it."""

    def __init__(self, people: Roster, client_kind: str, workdir: Path, latency_ms: float = 0.0) -> None:
        self.time = VirtualTime()
        self.sim = Simulator(
            demo_seed(people, missing_every=None),
            base_url=DEMO_BASE_URL,
            clock=Clock(1.0, real_time=self.time.now),
            throttling=True,
            latency=Latency(latency_ms),
            delay=self.time.sleep,
        )
        self.latency_ms = latency_ms
        self.config = bench_config(workdir, sorted({p.school for p in people.people if p.school}))
        self.client_kind = client_kind

    def _make_client(self) -> GraphClient:
        transport = self.sim.transport()
        tokens = VirtualTimeTokens(self.config, transport, self.time)
        naive = self.client_kind == "naive"
        return (NaiveGraphClient if naive else GraphClient)(
            self.config.tenant.graph_url,
            tokens.token,
            transport=transport,
            concurrency=1 if naive else self.config.graph.concurrency,
            max_retries=self.config.graph.max_retries,
            timeout=self.config.graph.timeout_seconds,
            sleep=self.time.sleep,
            clock=self.time.now,
            backoff=Backoff(),
            pacing=not naive,
            start_task=self.time.start_task,
        )

    def run(
        self, scenario: str, school: str, roster: Roster, *, today: date, force: bool = False
    ) -> Measurement:
        self.time.sleep(HOURS_BETWEEN_RUNS * 3600)
        state_before = self.sim.dump_state()
        before = self.sim.stats()
        gc.collect()
        started_wall = time.perf_counter()
        started_sim = self.time.now()
        result, read = self._sync(roster, today=today, force=force)
        sim_seconds = self.time.now() - started_sim
        wall_seconds = time.perf_counter() - started_wall
        after = self.sim.stats()
        # The counters above are all the benchmark needs; the log would hold every request's body.
        self.sim.request_log.clear()
        outcomes = result.outcomes or []
        return Measurement(
            scenario=scenario,
            school=school,
            client=self.client_kind,
            counts={key: int(after[key] - before[key]) for key in COUNTERS},
            failed_changes=sum(1 for o in outcomes if o.result == "failed"),
            skipped_changes=sum(1 for o in outcomes if o.result == "skipped"),
            changes=len(result.plan.changes),
            sim_seconds=sim_seconds,
            wall_seconds=wall_seconds,
            peak_mb=_peak_rss_mb(),
            floor=floor_for(
                result.plan.changes,
                state_before,
                delta=read == "delta",
                latency_ms=self.latency_ms,
                concurrency=1 if self.client_kind == "naive" else self.config.graph.concurrency,
            ),
            latency_ms=self.latency_ms,
            read=read,
        )

    def _sync(self, roster: Roster, *, today: date, force: bool) -> tuple[RunResult, str]:
        """The run's result, and whether it read with delta state ("delta") or in full ("full")."""
        # A new client per run, as cron starts a new process: its token is fresh on the tenant's clock.
        client = self._make_client()
        # The naive script reads everything every time; smartsync keeps delta state beside the journal.
        reader = None if self.client_kind == "naive" else DeltaReader(self.config.journal.path)
        with client, Journal(self.config.journal.path, self.config.journal.retention_days) as journal:
            result = run_sync(
                self.config,
                roster,
                client,
                dry_run=False,
                force=force,
                journal=journal,
                run_id=new_run_id(),
                config_path="benchmark",
                today=today,
                sleep=self.time.sleep,
                delta=reader,
            )
        incremental = (
            reader is not None and reader.last_read is not None and reader.last_read.full_read_reason is None
        )
        return result, "delta" if incremental else "full"


def _peak_rss_mb() -> float:
    """The process's peak resident memory so far (MB): the high-water mark of everything run until now."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1e6 if sys.platform == "darwin" else peak / 1e3  # bytes on macOS, KiB elsewhere


def run_school(
    size: str,
    clients: tuple[str, ...] = CLIENTS,
    scenarios: tuple[str, ...] = SCENARIOS,
    *,
    latencies: tuple[float, ...] = LATENCIES_MS,
    rosters: SchoolRosters | None = None,
    progress: Callable[[Measurement], None] | None = None,
) -> list[Measurement]:
    """Every scenario for one sample school, for each client and service time, in order, each pair on
    a fresh tenant."""
    rosters = rosters or school_rosters(size)
    plan: dict[str, tuple[Roster, date, bool]] = {
        "initial": (rosters.base, TODAY, False),
        "no_change": (rosters.base, TODAY, False),
        "typical_day": (rosters.typical_day, TODAY, False),
        "rollover": (rosters.rollover, NEXT_SEPTEMBER, True),
    }
    out: list[Measurement] = []
    for client, latency_ms in ((c, ms) for c in clients for ms in latencies):
        with tempfile.TemporaryDirectory(prefix="smartsync-bench-") as tmp:
            tenant = BenchTenant(rosters.everyone(), client, Path(tmp), latency_ms)
            last = max(SCENARIOS.index(s) for s in scenarios)
            # Each scenario starts from where the one before it left the tenant.
            for scenario in SCENARIOS[: last + 1]:
                roster, today, force = plan[scenario]
                measurement = tenant.run(scenario, size, roster, today=today, force=force)
                if scenario in scenarios:
                    out.append(measurement)
                    if progress is not None:
                        progress(measurement)
    return out
