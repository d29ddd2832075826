"""`smartsync preflight` as an admin runs it: the real CLI in a subprocess against `simulator serve`.

Acceptance of DESIGN §10: every check passes and the tenant afterwards holds no preflight object,
active or soft-deleted; with quirks the right checks fail and the following run still leaves exact
members and owners; a preflight killed with SIGKILL is cleaned up by the next one before it starts.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_reliability_support import (
    ServedTenant,
    actual_picture,
    cli_command,
    cli_env,
    expected_picture,
    mini_roster,
    run_cli,
    served_tenant,
    write_cli_config,
)

from smartsync.config import load_config
from smartsync.demo import DEMO_ROLES, DEMO_SECRET, demo_seed
from smartsync.engine.naming import is_preflight_name

ROSTER = mini_roster(classes=4, learners_per_class=5)


def seed() -> dict[str, Any]:
    data = demo_seed(ROSTER, missing_every=None)
    data["app"]["roles"] = [*DEMO_ROLES, "Application.Read.All"]
    return data


def preflight_objects(served: ServedTenant) -> list[str]:
    state = served.state()
    names = [g["mailNickname"] for store in ("groups", "deleted_groups") for g in state[store]]
    names += [
        u["description"]
        for store in ("administrative_units", "deleted_administrative_units")
        for u in state[store]
    ]
    return sorted(n for n in names if is_preflight_name(n))


def logged(served: ServedTenant) -> list[dict[str, Any]]:
    lines = served.request_log.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def exact(served: ServedTenant, config: Path) -> list[str]:
    import os

    os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
    try:
        loaded = load_config(config)[0]
    finally:
        del os.environ["SMARTSYNC_CLIENT_SECRET"]
    state = served.state()
    return expected_picture(state, ROSTER, loaded, date.today()).difference(actual_picture(state))


def test_served_preflight_passes_every_check_and_leaves_nothing(tmp_path: Path) -> None:
    with served_tenant(tmp_path / "server", seed()) as served:
        config = write_cli_config(tmp_path, served, ROSTER)

        result = run_cli(config, "preflight", "--teams", "--json")

        assert result.returncode == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["ok"] is True
        assert [c["name"] for c in document["checks"] if not c["ok"]] == []
        assert {"team.create", "team.archive", "team.members", "education_class.create"} <= {
            c["name"] for c in document["checks"]
        }
        assert document["cleanup"] == {"ok": True, "left": []}
        assert preflight_objects(served) == []
        purged = [r for r in logged(served) if r["method"] == "DELETE" and "/deletedItems/" in r["path"]]
        assert len(purged) >= 4  # the groups, the class and the unit went from deleted items too


def test_served_quirks_fail_their_checks_and_the_run_uses_the_fallbacks(tmp_path: Path) -> None:
    quirks = ("--quirks", "owners-patch-refused,teams-members-api-unavailable")
    with served_tenant(tmp_path / "server", seed(), extra=quirks) as served:
        config = write_cli_config(tmp_path, served, ROSTER)

        result = run_cli(config, "preflight", "--teams")

        assert result.returncode == 0, result.stderr  # both have fallbacks: the sync can do its job
        assert (
            "✗ group.patch_owners_members: owners in PATCH refused (400 Invalid bind property name owners"
            in (result.stdout)
        )
        assert "✗ team.members: the Teams membership API refused (400 Resource not found" in result.stdout
        run = run_cli(config, "run")
        assert run.returncode == 0, run.stderr
        assert exact(served, config) == []
        assert "owners one at a time" in " ".join(run.stdout.split())


def test_sigkill_mid_preflight_then_the_next_one_removes_the_leftovers_first(tmp_path: Path) -> None:
    with served_tenant(tmp_path / "server", seed()) as served:
        config = write_cli_config(tmp_path, served, ROSTER)
        process = subprocess.Popen(
            cli_command(config, "preflight", "--teams"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if any(r["method"] == "POST" and r["status"] == 201 for r in logged(served)):
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        process.communicate(timeout=30)
        assert process.returncode == -signal.SIGKILL
        leftovers = preflight_objects(served)
        assert leftovers, "the kill came after the cleanup"
        before = len(logged(served))

        again = run_cli(config, "preflight", "--teams")

        assert again.returncode == 0, again.stderr
        assert "left by an earlier preflight" in again.stderr
        assert preflight_objects(served) == []
        second = logged(served)[before:]
        first_create = next(i for i, r in enumerate(second) if r["method"] == "POST" and r["status"] == 201)
        old_deleted = [
            i
            for i, r in enumerate(second)
            if r["method"] == "DELETE" and r["path"].startswith("/v1.0/groups/")
        ]
        assert old_deleted and old_deleted[0] < first_create  # the leftovers went before anything new


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_preflight_cleans_up_before_it_exits(tmp_path: Path, signum: int) -> None:
    with served_tenant(tmp_path / "server", seed()) as served:
        config = write_cli_config(tmp_path, served, ROSTER)
        process = subprocess.Popen(
            cli_command(config, "preflight", "--teams"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            if any(r["method"] == "POST" and r["status"] == 201 for r in logged(served)):
                process.send_signal(signum)
                break
            time.sleep(0.002)
        _, stderr = process.communicate(timeout=60)

        assert process.returncode == 130, stderr
        assert "interrupted: the throwaway objects were deleted" in stderr
        assert preflight_objects(served) == []
        assert not (
            tmp_path / "journal" / "preflight.json"
        ).exists()  # an interrupted preflight proves nothing
