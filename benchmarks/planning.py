"""CPU time and peak memory of planning (roster + users → desired state → diff) for a sample school.

Planning is measured without Graph: the users are those the benchmark seeds, and the actual state
is either empty (the initial sync's plan) or exactly what the roster wants with every group a team
(the no-change plan, the largest input the diff sees on a normal day).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.runner import bench_config
from benchmarks.scenarios import TODAY, school_rosters
from smartsync.demo import user_id_for
from smartsync.engine.desired import UserDirectory, build_desired
from smartsync.engine.plan import Plan, diff
from smartsync.engine.state import ActualState, AdminUnitState, DesiredState, EntraUser, GroupState
from smartsync.roster.model import Roster


def _users(roster: Roster) -> list[EntraUser]:
    return [EntraUser(user_id_for(p.id), p.email, p.email, p.employee_id) for p in roster.people]


def _held(want: DesiredState) -> ActualState:
    groups = {
        key: GroupState(
            id=f"group-{n}",
            key=key,
            display_name=spec.display_name,
            type=spec.type,
            mail_nickname=spec.mail_nickname,
            members=spec.members,
            owners=spec.owners,
            is_team=spec.team_template is not None,
            education_class=spec.education_class,
        )
        for n, (key, spec) in enumerate(want.groups.items())
    }
    units = {
        key: AdminUnitState(f"unit-{n}", key, spec.display_name, spec.members, spec.restricted)
        for n, (key, spec) in enumerate(want.admin_units.items())
    }
    return ActualState(groups=groups, admin_units=units)


def _plan(roster: Roster, users: list[EntraUser], have: ActualState | None) -> tuple[Plan, DesiredState]:
    config = bench_config(Path("."))
    want = build_desired(roster, config, UserDirectory.build(users, config.users.match), today=TODAY)
    return diff(want, have if have is not None else ActualState()), want


def measure_planning(size: str) -> dict[str, Any]:
    """Seconds of CPU and peak MB for the initial and the no-change plan of one sample school.

    Keys: "initial" and "no_change" (each with changes, cpu_seconds, peak_mb), "size", "school".
    """
    roster = school_rosters(size).base
    users = _users(roster)
    _, want = _plan(roster, users, None)
    held = _held(want)
    out: dict[str, Any] = {"school": size}
    for name, have in (("initial", None), ("no_change", held)):
        gc.collect()
        tracemalloc.start()
        cpu = time.process_time()
        plan, _ = _plan(roster, users, have)
        cpu = time.process_time() - cpu
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
        # tracemalloc slows allocation down; time it again without tracing for the CPU figure.
        gc.collect()
        untraced = time.process_time()
        _plan(roster, users, have)
        untraced = time.process_time() - untraced
        out[name] = {
            "changes": len(plan.changes),
            "cpu_seconds": round(untraced, 2),
            "cpu_seconds_traced": round(cpu, 2),
            "peak_mb": round(peak, 1),
        }
    out["size"] = {
        "people": len(roster.people),
        "memberships": len(roster.memberships),
        "groups": len(want.groups),
        "admin_units": len(want.admin_units),
    }
    return out
