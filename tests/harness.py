"""Shared test harness: a config, a seeded simulator and a sync run against it, all in-process."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from smartsync.config import Config, parse_config
from smartsync.demo import DEMO_BASE_URL, DEMO_CLIENT, DEMO_SECRET, DEMO_TENANT, demo_seed
from smartsync.engine.run import RunResult, run_sync
from smartsync.graph import GraphClient, make_graph_client
from smartsync.graph.quota import QuotaPacer
from smartsync.graph.retry import Backoff
from smartsync.journal import Journal, new_run_id
from smartsync.roster.model import Roster
from smartsync.simulator import FaultSpec, Simulator

AUTUMN = date(2025, 10, 1)


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    data: dict[str, Any] = {
        "tenant": {
            "tenant_id": DEMO_TENANT,
            "client_id": DEMO_CLIENT,
            "client_secret": DEMO_SECRET,
            "authority_host": DEMO_BASE_URL,
            "graph_endpoint": DEMO_BASE_URL,
        },
        "source": {"type": "realsmart-export", "path": str(tmp_path / "export")},
        "school": {"code": "NFA", "name": "Northfield Academy"},
        "journal": {"path": str(tmp_path / "journal" / "changes.jsonl")},
        "sync": {"teams": {"creation_retry_seconds": 0, "poll_seconds": 0, "poll_timeout_seconds": 5}},
    }
    for section, values in overrides.items():
        if isinstance(values, dict) and isinstance(data.get(section), dict):
            merged = dict(data[section])
            for key, value in values.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            data[section] = merged
        else:
            data[section] = values
    return parse_config(data)


@dataclass
class Tenant:
    """A simulated tenant plus the config and client to sync into it."""

    sim: Simulator
    config: Config
    client: GraphClient
    runs: list[RunResult] = field(default_factory=list)

    def sync(
        self,
        roster: Roster,
        *,
        dry_run: bool = False,
        force: bool = False,
        today: date = AUTUMN,
        only: tuple[str, ...] | None = None,
    ) -> RunResult:
        with Journal(self.config.journal.path, self.config.journal.retention_days) as journal:
            result = run_sync(
                self.config,
                roster,
                self.client,
                dry_run=dry_run,
                force=force,
                journal=None if dry_run else journal,
                run_id=new_run_id(),
                config_path="test",
                today=today,
                only=only,
                # Waits pass on the simulator's fast clock (replication, Teams), not in real time.
                sleep=lambda seconds: time.sleep(self.sim.clock.to_real(seconds)),
            )
        self.runs.append(result)
        return result

    def state(self) -> dict[str, Any]:
        return self.sim.dump_state()

    def user_owners(self, group: dict[str, Any]) -> list[str]:
        """A group's owners that are users: Graph makes the app itself an owner of what it creates."""
        users = {u["id"] for u in self.state()["users"]}
        return [o for o in group.get("owners") or [] if o in users]

    def managed_groups(self) -> dict[str, dict[str, Any]]:
        return {
            g["mailNickname"]: g
            for g in self.state()["groups"]
            if str(g.get("mailNickname", "")).startswith("smartsync-")
        }


@contextmanager
def tenant(
    tmp_path: Path,
    roster: Roster,
    *,
    seed: dict[str, Any] | None = None,
    faults: str | None = None,
    time_scale: float = 1000.0,
    replication_delay: float = 0.0,
    missing_every: int | None = None,
    **config_overrides: Any,
) -> Iterator[Tenant]:
    sim = Simulator(
        seed if seed is not None else demo_seed(roster, missing_every=missing_every),
        base_url=DEMO_BASE_URL,
        time_scale=time_scale,
        faults=FaultSpec.parse(faults) if faults else None,
        replication_delay=replication_delay,
    )
    config = make_config(tmp_path, **config_overrides)
    # The simulated clock runs fast, so waits without Retry-After shrink with it.
    backoff = Backoff(base=0.5 / time_scale, cap=30.0 / time_scale)
    pacing = QuotaPacer(time_scale=time_scale)  # the quotas' windows pass as much faster
    client, _tokens = make_graph_client(config, transport=sim.transport(), backoff=backoff, pacing=pacing)
    with client:
        yield Tenant(sim, config, client)
