"""`smartsync preflight`: its checks, its cleanup, the quirks that make checks fail, and what runs learn.

The real CLI runs against the simulator's HTTPS server in this process (a new group is not usable for
a team for a few simulated seconds, as in the live service). Each quirk refuses one call the way a
live tenant does; the matching check must fail with its consequence, and the sync that follows must
still leave exactly the wanted members and owners, using the fallback, and say so in its report.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from served import served_tenant_section
from test_reliability_support import actual_picture, expected_picture, mini_roster

from smartsync.cli import cli
from smartsync.config import Config, load_config
from smartsync.demo import DEMO_ROLES, DEMO_SECRET, demo_seed
from smartsync.engine.actual import read_actual
from smartsync.engine.naming import is_preflight_name, key_from_au_description, key_from_nickname
from smartsync.preflight.results import CHECK_NAMES, load_results, results_path
from smartsync.roster.sample import write_export
from smartsync.simulator import Simulator
from smartsync.simulator.quirks import QuirkSpecError, parse_quirks
from smartsync.simulator.server import RunningServer, start_server

ROSTER = mini_roster(classes=4, learners_per_class=5)
ALL_CHECKS = [n for n in CHECK_NAMES if n != "admin_unit.include_group"]


def seed() -> dict[str, Any]:
    data = demo_seed(ROSTER, missing_every=None)
    data["app"]["roles"] = [*DEMO_ROLES, "Application.Read.All"]
    return data


@contextmanager
def serving(*quirks: str) -> Iterator[RunningServer]:
    running = start_server(
        lambda base: Simulator(seed(), base_url=base, time_scale=100.0, replication_delay=1.0, quirks=quirks)
    )
    try:
        yield running
    finally:
        running.shutdown()


def write_config(tmp_path: Path, server: RunningServer, **sync: Any) -> Path:
    write_export(ROSTER, tmp_path / "export")
    teams = {"creation_retry_seconds": 0.02, "poll_seconds": 0.02, **sync.pop("teams", {})}
    config = {
        "tenant": served_tenant_section(server.base_url, server.ca_cert),
        "source": {"type": "realsmart-export", "path": "export"},
        "school": {"code": "MIN", "name": "Mini School"},
        "sync": {"teams": teams, **sync},
        "journal": {"path": str(tmp_path / "log" / "changes.jsonl")},
    }
    path = tmp_path / "smartsync.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    path.chmod(0o600)
    return path


def smartsync(config: Path, *args: str) -> Result:
    return CliRunner().invoke(
        cli, ["--config", str(config), *args], env={"SMARTSYNC_CLIENT_SECRET": DEMO_SECRET}
    )


def flat(text: str) -> str:
    """Report text with the terminal's line wrapping undone."""
    return " ".join(text.split())


def loaded(path: Path) -> Config:
    os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
    try:
        return load_config(path)[0]
    finally:
        del os.environ["SMARTSYNC_CLIENT_SECRET"]


def preflight_objects(server: RunningServer) -> list[str]:
    """Every object, active or soft-deleted, that carries the preflight marker."""
    state = server.simulator.dump_state()
    found = []
    for store in ("groups", "deleted_groups"):
        found += [f"{store} {g['mailNickname']}" for g in state[store] if "preflight" in g["mailNickname"]]
    for store in ("administrative_units", "deleted_administrative_units"):
        found += [f"{store} {u['displayName']}" for u in state[store] if "preflight" in str(u["displayName"])]
    return found


def checks(result: Result) -> dict[str, dict[str, Any]]:
    document = json.loads(result.stdout)
    return {c["name"]: c for c in document["checks"]}


def exact(server: RunningServer, config: Path) -> list[str]:
    """What differs from the roster in the managed groups and units (kept preflight objects aside)."""
    state = server.simulator.dump_state()
    state["groups"] = [g for g in state["groups"] if not is_preflight_name(g["mailNickname"])]
    return expected_picture(state, ROSTER, loaded(config), date.today()).difference(actual_picture(state))


def test_every_check_passes_and_nothing_is_left(tmp_path: Path) -> None:
    with serving() as server:
        config = write_config(tmp_path, server)
        before = smartsync(config, "check-credentials")
        assert "run `smartsync preflight` before the first sync" in flat(before.stdout)
        assert json.loads(smartsync(config, "check-credentials", "--json").stdout)["preflight_ran"] is False

        result = smartsync(config, "preflight", "--teams", "--json")

        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert set(document) == {"ok", "checks", "cleanup"}
        assert document["ok"] is True
        assert [c["name"] for c in document["checks"]] == ALL_CHECKS
        assert all(c["ok"] for c in document["checks"]), document["checks"]
        assert all(set(c) == {"name", "ok", "detail", "consequence"} for c in document["checks"])
        assert document["cleanup"] == {"ok": True, "left": []}
        assert preflight_objects(server) == []
        kept = results_path(loaded(config))
        assert stat.S_IMODE(kept.stat().st_mode) == 0o600
        results = load_results(kept)
        assert results is not None and results.time.startswith(str(date.today().year))
        assert "preflight has never run" not in smartsync(config, "check-credentials").stdout
        assert json.loads(smartsync(config, "check-credentials", "--json").stdout)["preflight_ran"] is True


def test_text_output_names_the_person_and_marks_each_check(tmp_path: Path) -> None:
    with serving() as server:
        config = write_config(tmp_path, server, admin_units={"include_groups": True})
        result = smartsync(config, "preflight")
        assert result.exit_code == 0, result.output
        assert (
            "Test person: staff0@mini.example (the first roster staff member found in Entra" in result.stderr
        )
        assert "✓ admin_unit.include_group: placing a group in a unit" in result.stdout
        assert "✓ group.patch_owners_members: owners in PATCH" in result.stdout
        assert "team.create" not in result.stdout  # only with --teams
        assert "OK: everything this config needs works." in result.stdout
        assert preflight_objects(server) == []


def test_preflight_user_from_the_config_and_an_unknown_one(tmp_path: Path) -> None:
    with serving() as server:
        config = write_config(tmp_path, server)
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
        data["preflight"] = {"user": "staff2@mini.example"}
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        result = smartsync(config, "preflight")
        assert result.exit_code == 0, result.output
        assert "Test person: staff2@mini.example (preflight.user in the config)" in result.stderr

        data["preflight"] = {"user": "nobody@mini.example"}
        config.write_text(yaml.safe_dump(data), encoding="utf-8")
        refused = smartsync(config, "preflight")
        assert refused.exit_code == 2
        assert "preflight.user nobody@mini.example is not a user in this tenant" in refused.stderr


def test_owners_patch_refused_falls_back_to_owners_one_at_a_time(tmp_path: Path) -> None:
    with serving("owners-patch-refused") as server:
        config = write_config(tmp_path, server)
        result = smartsync(config, "preflight", "--json")
        assert result.exit_code == 0, result.output  # the sync can do its job without it
        check = checks(result)["group.patch_owners_members"]
        assert check["ok"] is False
        assert check["detail"] == "400 Invalid bind property name owners in request."
        assert "smartsync will add owners one at a time" in check["consequence"]

        server.simulator.request_log.clear()
        run = smartsync(config, "run")

        assert run.exit_code == 0, run.output
        assert exact(server, config) == []
        assert "found group.patch_owners_members refused" in flat(run.stdout)
        assert "owners one at a time" in flat(run.stdout)
        patches = [r for r in server.simulator.request_log if r.method == "PATCH" and r.status == 400]
        assert patches == []  # no PATCH carried owners: none was refused


def test_owners_patch_refused_met_mid_run_is_recorded_and_followed(tmp_path: Path) -> None:
    with serving("owners-patch-refused") as server:
        config = write_config(tmp_path, server)  # no preflight: education classes get owners by PATCH

        run = smartsync(config, "run")

        assert run.exit_code == 0, run.output
        assert exact(server, config) == []
        assert "Graph refused group.patch_owners_members (400 Invalid bind property name owners" in flat(
            run.stdout
        )
        results = load_results(results_path(loaded(config)))
        assert results is not None and not results.owners_in_patch
        assert "group.patch_owners_members" in results.seen_by_runs
        plan = smartsync(config, "plan")
        assert plan.exit_code == 0
        assert "found group.patch_owners_members refused" in flat(plan.stdout)


def test_education_classes_refused_stops_plan_until_the_template_is_standard(tmp_path: Path) -> None:
    with serving("edu-classes-unavailable") as server:
        config = write_config(tmp_path, server)
        result = smartsync(config, "preflight", "--teams", "--json")
        assert result.exit_code == 3, result.output
        found = checks(result)
        assert found["education_class.create"]["ok"] is False
        assert found["education_class.create"]["detail"].startswith("400 Property 'extension_")
        assert "sync.teams.template: standard" in found["education_class.create"]["consequence"]
        # The team check shows the advised template works in this tenant.
        assert found["team.create"]["ok"] is True
        assert "standard team" in found["team.create"]["detail"]
        assert preflight_objects(server) == []

        plan = smartsync(config, "plan")
        assert plan.exit_code == 2
        assert "Set `sync.teams.template: standard`" in flat(plan.stderr)
        assert server.simulator.dump_state()["groups"] == seed_groups(server)

        standard = write_config(tmp_path, server, teams={"template": "standard"})
        run = smartsync(standard, "run")
        assert run.exit_code == 0, run.output
        assert exact(server, standard) == []


def test_education_classes_refused_mid_run_are_recorded_and_stop_the_next_plan(tmp_path: Path) -> None:
    with serving("edu-classes-unavailable") as server:
        config = write_config(tmp_path, server)  # no preflight

        run = smartsync(config, "run")

        assert run.exit_code == 1  # the classes failed; everything else was applied
        assert "Graph refused education_class.create (400 Property 'extension_" in flat(run.stdout)
        results = load_results(results_path(loaded(config)))
        assert results is not None and results.refused("education_class.create") is not None
        plan = smartsync(config, "plan")
        assert plan.exit_code == 2
        assert "Set `sync.teams.template: standard`" in flat(plan.stderr)


def seed_groups(server: RunningServer) -> list[dict[str, Any]]:
    return [
        g for g in server.simulator.dump_state()["groups"] if not g["mailNickname"].startswith("smartsync-")
    ]


def test_restricted_unit_membership_refused_stops_with_the_role(tmp_path: Path) -> None:
    with serving("rmau-members-refused") as server:
        config = write_config(tmp_path, server, admin_units={"restricted_management": True})
        result = smartsync(config, "preflight", "--json")
        assert result.exit_code == 3, result.output
        check = checks(result)["admin_unit.members"]
        assert check["ok"] is False
        assert check["detail"] == "403 Insufficient privileges to complete the operation."
        assert "User Administrator role" in check["consequence"]
        assert preflight_objects(server) == []

        run = smartsync(config, "run")
        assert run.exit_code == 3
        assert "User Administrator role" in flat(run.stderr) and "scoped to each restricted unit" in flat(
            run.stderr
        )
        assert [
            g for g in server.simulator.dump_state()["groups"] if g["mailNickname"].startswith("smartsync-")
        ] == []

        unrestricted = write_config(tmp_path, server)
        assert smartsync(unrestricted, "run").exit_code == 0
        assert exact(server, unrestricted) == []


def test_teams_membership_api_unavailable_is_reported_not_fatal(tmp_path: Path) -> None:
    with serving("teams-members-api-unavailable") as server:
        config = write_config(tmp_path, server, teams={"template": "standard"})
        result = smartsync(config, "preflight", "--teams", "--json")
        assert result.exit_code == 0, result.output
        check = checks(result)["team.members"]
        assert check["ok"] is False
        assert check["detail"] == "400 Resource not found for the segment 'add'."
        assert "group APIs" in check["consequence"]

        run = smartsync(config, "run")
        assert run.exit_code == 0, run.output
        assert exact(server, config) == []
        assert "found team.members refused" in flat(run.stdout)


def test_kept_objects_are_ignored_by_the_sync_and_removed_by_the_next_preflight(tmp_path: Path) -> None:
    with serving() as server:
        config = write_config(tmp_path, server, admin_units={"include_groups": True})
        kept = smartsync(config, "preflight", "--keep", "--json")
        assert kept.exit_code == 0, kept.output
        left = json.loads(kept.stdout)["cleanup"]["left"]
        assert len(left) == 5  # security, Microsoft 365 and PATCH groups, the unit, the class
        before = sorted(preflight_objects(server))
        assert len(before) == 5

        assert smartsync(config, "run").exit_code == 0
        assert exact(server, config) == []
        assert sorted(preflight_objects(server)) == before  # not deleted, not adopted
        state = server.simulator.dump_state()
        kept_groups = [g for g in state["groups"] if is_preflight_name(g["mailNickname"])]
        assert all(g["displayName"].startswith("smartsync-preflight-") for g in kept_groups)

        again = smartsync(config, "preflight")
        assert again.exit_code == 0, again.output
        assert "removed 5 object(s) left by an earlier preflight" in again.stderr
        assert preflight_objects(server) == []


def test_preflight_objects_are_never_managed() -> None:
    nickname = "smartsync-preflight-20261204T013456Z-c674-sec"
    assert key_from_nickname("smartsync", nickname) is None
    assert key_from_nickname("smartsync", nickname.upper()) is None
    assert (
        key_from_au_description("smartsync-preflight-20261204T013456Z-c674: throwaway [smartsync:x]") is None
    )
    # A school whose code is "preflight" still owns its own groups.
    assert key_from_nickname("smartsync", "smartsync-preflight-class-4711") == "preflight-class-4711"


def test_the_sync_reads_no_preflight_object(tmp_path: Path) -> None:
    with serving() as server:
        config = write_config(tmp_path, server)
        assert smartsync(config, "preflight", "--keep").exit_code == 0
        from smartsync.graph import make_graph_client

        client, _ = make_graph_client(loaded(config))
        os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
        try:
            with client:
                have = read_actual(client, "smartsync")
        finally:
            del os.environ["SMARTSYNC_CLIENT_SECRET"]
        assert have.groups == {} and have.admin_units == {}


def test_unknown_quirk_is_refused() -> None:
    assert parse_quirks("owners-patch-refused, edu-classes-unavailable") == {
        "owners-patch-refused",
        "edu-classes-unavailable",
    }
    with pytest.raises(QuirkSpecError, match="known quirks: owners-patch-refused"):
        parse_quirks("owners-refused")
    result = CliRunner().invoke(cli, ["simulator", "serve", "--port", "0", "--quirks", "nope"])
    assert result.exit_code == 2
    assert "unknown quirk nope" in result.stderr


def test_a_damaged_results_file_is_warned_about_and_ignored(tmp_path: Path) -> None:
    path = tmp_path / "preflight.json"
    path.write_text("{not json", encoding="utf-8")
    warnings: list[str] = []
    assert load_results(path, on_warning=warnings.append) is None
    assert warnings and "is damaged" in warnings[0]
    assert load_results(tmp_path / "absent.json", on_warning=warnings.append) is None
    assert len(warnings) == 1  # never having run is not a problem
