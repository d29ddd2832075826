"""The real CLI end to end over HTTPS against the simulator's server, as an admin would use it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from served import served_tenant_section

from smartsync.cli import cli
from smartsync.demo import DEMO_SECRET, demo_seed
from smartsync.lock import RunLock
from smartsync.roster.model import Roster
from smartsync.roster.sample import generate, write_export
from smartsync.simulator import Simulator
from smartsync.simulator.server import RunningServer, start_server

ROSTER = generate("small")


@pytest.fixture
def server() -> Iterator[RunningServer]:
    running = start_server(lambda base: Simulator(demo_seed(ROSTER), base_url=base, time_scale=100.0))
    try:
        yield running
    finally:
        running.shutdown()


def write_config(tmp_path: Path, server: RunningServer, roster: Roster = ROSTER, **extra: Any) -> Path:
    export = tmp_path / "export"
    write_export(roster, export)
    config = {
        "tenant": served_tenant_section(server.base_url, server.ca_cert),
        "source": {"type": "realsmart-export", "path": "export"},
        "school": {"code": "NFA", "name": "Northfield Academy"},
        "year": {"academic_year": "2025-26"},
        "sync": {"teams": {"creation_retry_seconds": 0.1, "poll_seconds": 0.05}},
        "journal": {"path": str(tmp_path / "log" / "changes.jsonl")},
        **extra,
    }
    path = tmp_path / "smartsync.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def smartsync(config: Path, *args: str) -> Any:
    runner = CliRunner()
    return runner.invoke(cli, ["--config", str(config), *args], env={"SMARTSYNC_CLIENT_SECRET": DEMO_SECRET})


def managed(server: RunningServer) -> dict[str, dict[str, Any]]:
    state = server.simulator.dump_state()
    return {g["mailNickname"]: g for g in state["groups"] if g["mailNickname"].startswith("smartsync-")}


def unmanaged(server: RunningServer) -> str:
    state = server.simulator.dump_state()
    return json.dumps(
        [g for g in state["groups"] if not g["mailNickname"].startswith("smartsync-")], sort_keys=True
    )


def test_plan_run_and_rerun_through_the_real_cli(tmp_path: Path, server: RunningServer) -> None:
    config = write_config(tmp_path, server)
    untouched = unmanaged(server)

    planned = smartsync(config, "plan", "--json")
    assert planned.exit_code == 0, planned.output
    document = json.loads(planned.output)
    assert document["schema"] == "smartsync.plan/1" and document["dry_run"] is True
    creates = {c["key"] for c in document["changes"] if c["op"] == "group.create"}
    assert "NFA-class-2025-4001" not in creates  # 4001 is a mentor group in the sample
    assert "NFA-mentor-4001" in creates and "NFA-all_learners" in creates
    assert document["summary"]["teams_created"] > 100
    assert [w["code"] for w in document["warnings"]].count("user_not_found") == 3
    assert server.simulator.stats()["writes"] == 0  # a plan never writes

    applied = smartsync(config, "run")
    assert applied.exit_code == 0, applied.output
    assert "\x1b[" not in applied.output  # plain text, not a terminal
    assert applied.output.splitlines()[-1].startswith("Changed 190 groups and 10 units: ")
    groups = managed(server)
    assert set(groups) == {f"smartsync-{key}" for key in creates}
    assert unmanaged(server) == untouched

    again = smartsync(config, "run", "--json")
    assert again.exit_code == 0, again.output
    result = json.loads(again.output)
    assert result["changes"] == [] and result["dry_run"] is False and result["status"] == "ok"

    journal = [json.loads(line) for line in (tmp_path / "log" / "changes.jsonl").read_text().splitlines()]
    runs = [e["event"] for e in journal if not e["event"].startswith(("change", "intent"))]
    assert runs == ["run.start", "run.end"] * 2
    # Every intent the first run wrote before sending a slice was closed once its outcomes were journaled.
    intents = [e for e in journal if e["event"] == "intent"]
    closed = [e for e in journal if e["event"] == "intent.done"]
    assert intents and len(closed) == len(intents) and not any(e.get("open") for e in closed)
    adds = [e for e in journal if e["event"] == "change" and e["op"] == "group.members.add"]
    assert adds and all(e["user"] and e["object_id"] and e["result"] == "ok" for e in adds)
    assert oct((tmp_path / "log" / "changes.jsonl").stat().st_mode & 0o777) == "0o600"


def test_second_run_while_the_lock_is_held_exits_5_and_writes_nothing(
    tmp_path: Path, server: RunningServer
) -> None:
    config = write_config(tmp_path, server)
    with RunLock(tmp_path / "log" / "changes.jsonl.lock"):
        blocked = smartsync(config, "run")
    assert blocked.exit_code == 5
    assert "holds the lock" in blocked.output
    assert server.simulator.stats()["writes"] == 0


def test_safety_refusal_through_the_cli_exits_4_and_force_applies(
    tmp_path: Path, server: RunningServer
) -> None:
    config = write_config(tmp_path, server)
    assert smartsync(config, "run").exit_code == 0
    kept = tuple(g for g in ROSTER.groups if g.type != "class")
    kept_ids = {g.id for g in kept}
    no_classes = Roster(ROSTER.people, kept, tuple(m for m in ROSTER.memberships if m.group_id in kept_ids))
    write_export(no_classes, tmp_path / "export")
    before = json.dumps(server.simulator.dump_state(), sort_keys=True)
    refused = smartsync(config, "run")
    assert refused.exit_code == 4, refused.output
    assert "Refusing to delete or archive" in refused.output and "--force" in refused.output
    assert json.dumps(server.simulator.dump_state(), sort_keys=True) == before
    forced = smartsync(config, "run", "--force", "--json")
    assert forced.exit_code == 0, forced.output
    assert json.loads(forced.output)["summary"]["teams_archived"] > 20


def test_only_groups_leaves_units_and_teams_alone(tmp_path: Path, server: RunningServer) -> None:
    config = write_config(tmp_path, server)
    result = smartsync(config, "run", "--only", "groups", "--json")
    assert result.exit_code == 0, result.output
    ops = {c["op"] for c in json.loads(result.output)["changes"]}
    assert "group.create" in ops and not {o for o in ops if o.startswith(("admin_unit", "team"))}
    bad = smartsync(config, "run", "--only", "grups")
    assert bad.exit_code == 2 and "grups" in bad.output


def test_plan_and_run_write_html_pages_and_the_config_keeps_one_per_run(
    tmp_path: Path, server: RunningServer
) -> None:
    journal = {"path": str(tmp_path / "log" / "changes.jsonl"), "html_reports": True}
    config = write_config(tmp_path, server, journal=journal)
    planned = smartsync(config, "plan", "--html", str(tmp_path / "plan.html"))
    assert planned.exit_code == 0, planned.output
    page = (tmp_path / "plan.html").read_text(encoding="utf-8")
    assert "Plan: nothing was written" in page and "NFA-all_learners" in page
    assert (tmp_path / "plan.html").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "log" / "reports").exists()  # a plan writes no run page
    assert server.simulator.stats()["writes"] == 0

    applied = smartsync(config, "run")
    assert applied.exit_code == 0, applied.output
    pages = list((tmp_path / "log" / "reports").glob("*.html"))
    assert len(pages) == 1 and pages[0].stat().st_mode & 0o777 == 0o600
    run_id = json.loads((tmp_path / "log" / "changes.jsonl").read_text().splitlines()[0])["run"]
    assert pages[0].name == f"{run_id}.html"
    assert (
        applied.output.splitlines()[-1] == f"The whole report, to filter by year, kind or person: {pages[0]}"
    )
    assert "Done" in pages[0].read_text(encoding="utf-8")

    logged = CliRunner().invoke(
        cli,
        [
            "log",
            "--journal",
            str(tmp_path / "log" / "changes.jsonl"),
            "--html",
            str(tmp_path / "log.html"),
            "--group",
            "All learners",
        ],
    )
    assert logged.exit_code == 0, logged.output
    log_page = (tmp_path / "log.html").read_text(encoding="utf-8")
    assert "selected by --group All learners" in log_page and "<td>member</td>" in log_page
