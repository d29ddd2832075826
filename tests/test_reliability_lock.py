"""Concurrency: two real `smartsync run` processes at once, and a run killed while it holds the lock.

The first run is frozen (SIGSTOP) as soon as it holds the lock, so the overlap is certain rather
than a race; the second must exit 5 having written nothing. A run killed with SIGKILL while holding
the lock must not block the next one.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from test_reliability_support import (
    cli_command,
    cli_env,
    mini_roster,
    run_cli,
    served_tenant,
    write_cli_config,
)

from smartsync.demo import demo_seed
from smartsync.lock import holder_path


def start_and_freeze_once_locked(config: Path, lock: Path) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        cli_command(config, "run", "--json"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=cli_env(),
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            holder = json.loads(holder_path(lock).read_text(encoding="utf-8") or "{}")
        except (FileNotFoundError, ValueError):
            holder = {}
        if holder.get("pid") == process.pid:
            process.send_signal(signal.SIGSTOP)
            return process
        time.sleep(0.001)
    raise AssertionError("the first run never held the lock")


@pytest.mark.slow  # about 5 s: a served tenant and four CLI processes
def test_a_second_run_exits_5_while_the_first_holds_the_lock_and_a_killed_run_releases_it(
    tmp_path: Path,
) -> None:
    roster = mini_roster()
    with served_tenant(tmp_path / "server", demo_seed(roster)) as served:
        config = write_cli_config(tmp_path, served, roster)
        lock = tmp_path / "journal" / "changes.jsonl.lock"

        first = start_and_freeze_once_locked(config, lock)
        writes_before = served.requests_logged()
        second = run_cli(config, "run")
        assert second.returncode == 5, second.stderr
        assert f"pid {first.pid}" in second.stderr and "did nothing" in second.stderr
        assert "run 20" in second.stderr  # the run id of the holder, to look up with `smartsync log --run`
        assert served.requests_logged() == writes_before  # the second run never reached Entra
        first.send_signal(signal.SIGCONT)
        _out, err = first.communicate(timeout=120)
        assert first.returncode == 0, err

        killed = start_and_freeze_once_locked(config, lock)
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
        assert killed.returncode == -signal.SIGKILL
        after = run_cli(config, "run", "--json")
        assert after.returncode == 0, after.stderr
        assert json.loads(after.stdout)["status"] == "ok"
