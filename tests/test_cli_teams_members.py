"""Teams membership through the real CLI over HTTPS against the simulator's server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_cli_sync import managed, smartsync, write_config
from test_sync_teams_members import FIRST, NICK, SECOND, ids

from smartsync.demo import demo_seed
from smartsync.roster.sample import write_export
from smartsync.simulator import Simulator
from smartsync.simulator.server import RunningServer, start_server


@pytest.fixture
def server() -> Iterator[RunningServer]:
    seed = demo_seed(FIRST, missing_every=None)
    running = start_server(lambda base: Simulator(seed, base_url=base, time_scale=100.0))
    try:
        yield running
    finally:
        running.shutdown()


def test_plan_and_run_show_and_use_the_teams_path(tmp_path: Path, server: RunningServer) -> None:
    config = write_config(tmp_path, server, FIRST)
    first = smartsync(config, "run")
    assert first.exit_code == 0, first.output
    group_id = managed(server)[NICK]["id"]

    write_export(SECOND, tmp_path / "export")
    planned = json.loads(smartsync(config, "plan", "--json").output)
    (notice,) = [w for w in planned["warnings"] if w["code"] == "teams_membership"]
    assert "1 group with a team (3 added, 1 removed)" in notice["message"]

    applied = smartsync(config, "run")
    assert applied.exit_code == 0, applied.output
    assert "Teams membership API" in applied.output
    paths = [(r.method, r.path) for r in server.simulator.request_log if "/members/" in r.path]
    assert ("POST", f"/v1.0/teams/{group_id}/members/add") in paths
    assert ("POST", f"/v1.0/teams/{group_id}/members/remove") in paths
    group = managed(server)[NICK]
    assert set(group["members"]) == ids("L2", "L3", "L4", "L5", "S1", "S2")
    assert set(group["team"]["members"]) == set(group["members"])
    assert set(group["team"]["owners"]) == ids("S1", "S2")
