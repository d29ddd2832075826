"""Trying a school's own config safely: `simulator seed`, a seed that `serve` refuses with a message,
certificates kept across restarts, and the README's four commands run exactly as written."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from test_reliability_support import mini_roster

from smartsync.cli import cli
from smartsync.roster.sample import write_export
from smartsync.simulator import Simulator
from smartsync.simulator.server import start_server
from smartsync.trial import TRIAL_SECRET

REPO = Path(__file__).resolve().parent.parent


def school_config(folder: Path, **sections: Any) -> Path:
    """A school's real config: the secret from an environment variable that is NOT set here."""
    write_export(mini_roster(classes=2, learners_per_class=4), folder / "export")
    data: dict[str, Any] = {
        "tenant": {
            "tenant_id": "11111111-1111-1111-1111-111111111111",
            "client_id": "22222222-2222-2222-2222-222222222222",
            "client_secret": "${SMARTSYNC_TRIAL_TEST_UNSET}",
        },
        "source": {"type": "realsmart-export", "path": "export"},
        "school": {"code": "MIN", "name": "Mini School"},
        "journal": {"path": "/var/log/smartsync/changes.jsonl"},
        "notifications": {
            "email": {"host": "smtp.school.example", "from": "a@x.example", "to": ["b@x.example"]}
        },
        "sync": {"teams": {"creation_retry_seconds": 0, "poll_seconds": 0, "poll_timeout_seconds": 5}},
        **sections,
    }
    path = folder / "school.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def test_seed_has_a_user_per_active_person_and_exactly_the_permissions_needed(tmp_path: Path) -> None:
    config = school_config(
        tmp_path,
        users={"match": "mail"},
        sync={"teams": {"enabled": False}, "admin_units": {"enabled": False}},
    )
    out, trial = tmp_path / "trial" / "seed.json", tmp_path / "trial" / "config.yaml"
    result = CliRunner().invoke(
        cli,
        ["simulator", "seed", "--config", str(config), "--unmatched", "2", "--out", str(out),
         "--trial-config", str(trial)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    seed = json.loads(out.read_text())
    assert len(seed["users"]) == 3 + 8 - 2  # 3 staff and 8 learners are active; 2 left out
    assert all(user["mail"] and user["userPrincipalName"] for user in seed["users"])
    assert seed["app"]["roles"] == [
        "Application.Read.All", "Group.ReadWrite.All", "GroupMember.ReadWrite.All", "User.Read.All",
    ]  # fmt: skip
    assert stat.S_IMODE(out.stat().st_mode) == 0o600 and stat.S_IMODE(trial.stat().st_mode) == 0o600
    for fact in (seed["tenant_id"], seed["app"]["client_id"], TRIAL_SECRET, "2 left out by --unmatched"):
        assert fact in result.output
    written = yaml.safe_load(trial.read_text())
    assert written["tenant"]["client_secret"] == TRIAL_SECRET
    assert written["tenant"]["graph_endpoint"] == "https://127.0.0.1:8443"
    assert written["journal"]["path"] == str((tmp_path / "trial" / "changes.jsonl").resolve())
    assert written["source"]["path"] == str((tmp_path / "export").resolve())
    assert "notifications" not in written


def test_seed_refuses_to_overwrite_the_schools_own_config(tmp_path: Path) -> None:
    config = school_config(tmp_path)
    result = CliRunner().invoke(
        cli, ["simulator", "seed", "--config", str(config), "--out", str(tmp_path / "s.json"),
              "--trial-config", str(config)],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "is the school's own config; give a new file" in result.stderr


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        ([{"id": "u-1", "userPrincipalName": "a@x.example"}, {"id": "u-2", "displayName": "No Address"}],
         "users[1] (id 'u-2'): userPrincipalName is missing; every user needs a sign-in address"),
        ([{"id": "u-1", "userPrincipalName": "a@x.example"}, {"id": "u-1", "userPrincipalName": "b@x.ex"}],
         "users[1] (id 'u-1'): id is also used by users[0]; ids must be unique"),
        ("not a list", "users must be a list of objects"),
    ],
)  # fmt: skip
def test_serve_answers_a_bad_seed_with_the_file_and_the_entry(
    tmp_path: Path, users: Any, expected: str
) -> None:
    seed = tmp_path / "seed.json"
    seed.write_text(json.dumps({"tenant_id": "t", "users": users}))
    result = CliRunner().invoke(cli, ["simulator", "serve", "--port", "0", "--state", str(seed)])
    assert result.exit_code == 2
    assert f"{seed}: {expected}" in result.stderr
    assert "Traceback" not in result.output + result.stderr


def test_cert_dir_keeps_the_ca_across_restarts_and_a_failed_start_leaves_it_alone(tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    running = start_server(lambda url: Simulator(base_url=url), port=0, cert_dir=certs)
    try:
        ca = certs.joinpath("ca.pem").read_bytes()
        port = int(running.base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError):
            start_server(lambda url: Simulator(base_url=url), port=port, cert_dir=certs)
        assert certs.joinpath("ca.pem").read_bytes() == ca  # the running instance's CA is untouched
    finally:
        running.shutdown()
    again = start_server(lambda url: Simulator(base_url=url), port=0, cert_dir=certs)
    again.shutdown()
    assert certs.joinpath("ca.pem").read_bytes() == ca  # a restart reuses it: trial configs stay valid


def readme_trial_commands() -> list[str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text.split("## Trying a config safely", 1)[1]
    block = section.split("```sh\n", 1)[1].split("```", 1)[0]
    return block.replace("\\\n", " ").splitlines()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.slow  # a served simulator and three CLI processes: a few seconds
def test_the_readmes_four_commands_run_a_full_sync_of_the_schools_export(tmp_path: Path) -> None:
    commands = readme_trial_commands()
    assert len(commands) == 4 and all(c.startswith("smartsync ") for c in commands)
    # Only the machine-specific parts change: the school's config and a free port for 8443.
    config, port = school_config(tmp_path / "school"), str(free_port())
    work = tmp_path / "work"
    work.mkdir()
    argvs = [
        [
            sys.executable,
            "-m",
            "smartsync",
            *(config_arg.replace("8443", port) for config_arg in c.split()[1:]),
        ]
        for c in (c.replace("/etc/smartsync/config.yaml", str(config)) for c in commands)
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSYNC_")}

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=300)

    seeded = run(argvs[0])
    assert seeded.returncode == 0, seeded.stderr
    server = subprocess.Popen(
        argvs[1], cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        assert server.stdout.readline().startswith("Simulated tenant ")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if "Press Ctrl-C" in server.stdout.readline():
                break
        plan = run(argvs[2])
        assert plan.returncode == 0, plan.stderr
        assert "Plan (dry run: nothing written)" in plan.stdout
        assert len(re.findall(r"has no Entra user", plan.stdout)) == 3  # --unmatched 3
        applied = run(argvs[3])
        assert applied.returncode == 0, applied.stderr
        changed = re.search(r"^Changed \d+ groups and \d+ units: .*; 0 failed\.$", applied.stdout, re.M)
        assert changed, applied.stdout
        again = run(argvs[3])
        assert "No changes: Entra already matches the roster." in again.stdout
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=20)
    assert (work / "trial" / "changes.jsonl").stat().st_size > 0
    assert server.returncode == 0
