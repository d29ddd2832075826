"""`smartsync demo`: the whole pipeline against the built-in simulated tenant.

Seeds the simulator with Entra users for the bundled sample school (a few roster people left out on
purpose, so the report shows unmatched-user warnings, and a few unmanaged groups, one with a name
that collides with a roster class, which must stay untouched), then runs the sync twice: the first
run creates groups and memberships, the second finds nothing to do. No config, no network. The tenant
has the live service's habits (replication delay, the app as owner, shuffled `$batch` answers), so
the first run shows smartsync waiting for new objects and still ending with nothing failed.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartsync.config import Config, parse_config
from smartsync.engine.run import RunResult, run_sync
from smartsync.graph import make_graph_client
from smartsync.graph.retry import Backoff
from smartsync.journal import Journal, new_run_id
from smartsync.roster.model import Roster
from smartsync.roster.sample import bundled_sample_path
from smartsync.roster.sources import read_roster
from smartsync.simulator import Simulator

DEMO_TENANT = "00000000-0000-4000-8000-00000000d3e0"
DEMO_CLIENT = "00000000-0000-4000-8000-00000000c11e"
DEMO_SECRET = "demo-secret-not-a-real-one"
DEMO_BASE_URL = "https://simulator.smartsync.invalid"
DEMO_ROLES = [
    "User.Read.All",
    "Group.ReadWrite.All",
    "GroupMember.ReadWrite.All",
    "AdministrativeUnit.ReadWrite.All",
    "Team.Create",
    "TeamSettings.ReadWrite.All",
    "EduRoster.ReadWrite.All",
    "TeamMember.ReadWrite.All",
]
MISSING_EVERY = 97  # every 97th roster person has no Entra account: shows the unmatched warnings
# The simulated clock runs 100 times faster than real time: Graph's quotas still bind (Teams allows
# 10 team creations a second), but the demo takes seconds. A new group is not usable for a team
# for 30 simulated seconds, as in the real service, so the first run shows the retries.
TIME_SCALE = 100.0
REPLICATION_DELAY = 30.0


@dataclass(frozen=True)
class DemoRun:
    label: str
    result: RunResult


@dataclass(frozen=True)
class DemoOutcome:
    runs: list[DemoRun]
    journal: Path
    simulator: Simulator
    unmanaged_before: list[dict[str, Any]]

    @property
    def unmanaged_untouched(self) -> bool:
        return unmanaged_groups(self.simulator) == self.unmanaged_before


def unmanaged_groups(sim: Simulator) -> list[dict[str, Any]]:
    """The tenant's groups that smartsync does not own, exactly as the tenant holds them."""
    return [
        g for g in sim.dump_state()["groups"] if not str(g.get("mailNickname", "")).startswith("smartsync-")
    ]


def demo_config(journal_dir: Path, sample: Path) -> Config:
    return parse_config(
        {
            "tenant": {
                "tenant_id": DEMO_TENANT,
                "client_id": DEMO_CLIENT,
                "client_secret": DEMO_SECRET,
                "authority_host": DEMO_BASE_URL,
                "graph_endpoint": DEMO_BASE_URL,
            },
            "source": {"type": "realsmart-export", "path": str(sample)},
            "school": {"code": "NFA", "name": "Northfield Academy"},
            "sync": {
                "teams": {
                    "creation_retry_seconds": 10.0 / TIME_SCALE,
                    "poll_seconds": 5.0 / TIME_SCALE,
                    "poll_timeout_seconds": 120.0 / TIME_SCALE,
                },
                # Waits for Entra to replicate new objects, on the demo's clock.
                "replication": {
                    "first_wait_seconds": 2.0 / TIME_SCALE,
                    "max_wait_seconds": 30.0 / TIME_SCALE,
                    "budget_minutes": 5.0 / TIME_SCALE,
                    "team_budget_minutes": 15.0 / TIME_SCALE,
                },
            },
            "journal": {"path": str(journal_dir / "changes.jsonl")},
        },
        "demo config",
    )


def user_id_for(person_id: str) -> str:
    """The Entra object id the seeded tenant gives a roster person (stable, so tests can name it)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"smartsync-demo/{person_id}"))


def demo_seed(roster: Roster, *, missing_every: int | None = MISSING_EVERY) -> dict[str, Any]:
    """Entra as a school has it before smartsync: users for most roster people, a few unmanaged groups."""
    users = []
    for index, person in enumerate(sorted(roster.people, key=lambda p: p.id)):
        if missing_every and index % missing_every == missing_every - 1:
            continue
        users.append(
            {
                "id": user_id_for(person.id),
                "userPrincipalName": person.email,
                "mail": person.email,
                "displayName": person.display_name,
                "givenName": person.first_name,
                "surname": person.last_name,
                "employeeId": person.employee_id,
                "accountEnabled": True,
            }
        )
    first_class = next((g for g in roster.groups if g.type == "class"), None)
    colliding = f"{first_class.name} {first_class.subject or ''}".strip() if first_class else "7A/Ma1 Maths"
    some = [u["id"] for u in users[:3]]
    groups = [
        {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"smartsync-demo/unmanaged/{name}")),
            "displayName": name,
            "mailNickname": nickname,
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "members": some,
            "owners": some[:1],
        }
        for name, nickname, unified in (
            ("Senior Leadership Team", "slt", True),
            ("IT Support", "itsupport", False),
            (colliding, "handmade-class", True),
        )
    ]
    return {
        "tenant_id": DEMO_TENANT,
        "app": {
            "client_id": DEMO_CLIENT,
            "client_secret": DEMO_SECRET,
            "roles": DEMO_ROLES,
            "password_credentials": [{"displayName": "demo", "endDateTime": "2099-01-01T00:00:00Z"}],
        },
        "users": users,
        "groups": groups,
        "administrative_units": [],
    }


def run_demo(
    show: Callable[[DemoRun], None],
    *,
    journal_dir: Path | None = None,
    sample: Path | None = None,
) -> DemoOutcome:
    """Run the sync twice against a fresh simulated tenant; `show` prints each run's report."""
    sample = sample or bundled_sample_path()
    journal_dir = journal_dir or Path(tempfile.mkdtemp(prefix="smartsync-demo-"))
    config = demo_config(journal_dir, sample)
    roster = read_roster(config.source)
    sim = Simulator(
        demo_seed(roster), base_url=DEMO_BASE_URL, time_scale=TIME_SCALE, replication_delay=REPLICATION_DELAY
    )
    runs: list[DemoRun] = []
    before = unmanaged_groups(sim)
    backoff = Backoff(base=0.5 / TIME_SCALE, cap=30.0 / TIME_SCALE)
    client, _tokens = make_graph_client(config, transport=sim.transport(), backoff=backoff)
    with client:
        for label in ("First run: creates groups, admin units and memberships", "Second run: nothing to do"):
            run_id = new_run_id()
            with Journal(config.journal.path, config.journal.retention_days) as journal:
                result = run_sync(
                    config,
                    roster,
                    client,
                    dry_run=False,
                    journal=journal,
                    run_id=run_id,
                    config_path="(demo)",
                )
            run = DemoRun(label, result)
            runs.append(run)
            show(run)
    return DemoOutcome(runs, config.journal.path, sim, before)
