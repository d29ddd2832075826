"""Messages a new sysadmin met and found wanting: each names the fact and the next step."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from smartsync.cli import cli
from smartsync.config import load_config
from smartsync.errors import ConfigError
from smartsync.journal import Journal, parse_when, read_events
from smartsync.paths import default_config_file, default_journal_file
from smartsync.roster.sample import bundled_sample_path

REPO = Path(__file__).resolve().parent.parent
PUPIL = "a.pupil@school.example"
CONFIG = """\
tenant:
  tenant_id: 11111111-1111-1111-1111-111111111111
  client_id: 22222222-2222-2222-2222-222222222222
  client_secret: ${SMARTSYNC_CLIENT_SECRET}
source:
  type: realsmart-export
  path: %s
school:
  code: NFA
journal:
  path: %s
"""


def invoke(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", "a-secret-value")
    path = tmp_path / "smartsync.yaml"
    path.write_text(CONFIG % (bundled_sample_path(), tmp_path / "log" / "changes.jsonl"))
    path.chmod(0o600)
    return path


# -- global options after the command ------------------------------------------------------------


def test_config_after_the_command_is_used(config: Path) -> None:
    result = invoke("validate", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert "learners" in result.stdout
    equals = invoke("validate", f"--config={config}")
    assert equals.exit_code == 0, equals.output


def test_quiet_after_the_command_is_used(tmp_path: Path) -> None:
    journal = tmp_path / "changes.jsonl"
    with Journal(journal) as j:
        j.start_run("20261126T040002Z-aaaa", "cfg", dry_run=False)
        j.end_run("ok", {})
    loud = invoke("log", "--journal", str(journal))
    quiet = invoke("log", "--journal", str(journal), "-q")
    assert loud.exit_code == quiet.exit_code == 0, quiet.output
    assert "in 1 run." in loud.stdout and "in 1 run." not in quiet.stdout


def test_a_missing_config_after_the_command_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = invoke("plan", "--config", str(missing))
    assert result.exit_code == 2
    assert f"Config file {missing} does not exist. Copy config.example.yaml to start." in result.stderr
    assert "No such option" not in result.output + result.stderr


# -- log --since 10m ---------------------------------------------------------------------------------


def test_since_accepts_minutes() -> None:
    now = datetime(2026, 11, 26, 4, 30, tzinfo=UTC)
    assert parse_when("10m", now) == now - timedelta(minutes=10)
    with pytest.raises(ValueError, match=r"an age like 10m, 12h, 7d, 2w \(m is minutes\)"):
        parse_when("10 minutes", now)


def test_log_since_10m_shows_only_the_last_minutes(tmp_path: Path) -> None:
    journal = tmp_path / "changes.jsonl"
    old = datetime.now(UTC) - timedelta(hours=1)
    with Journal(journal, clock=lambda: old) as j:
        j.start_run("20261126T040002Z-aaaa", "cfg", dry_run=False)
        j.end_run("ok", {})
    with Journal(journal) as j:
        j.start_run("20261126T050002Z-bbbb", "cfg", dry_run=False)
        j.end_run("ok", {})
    result = invoke("log", "--journal", str(journal), "--since", "10m", "--json")
    assert result.exit_code == 0, result.output
    assert {event["run"] for event in json.loads(result.stdout)} == {"20261126T050002Z-bbbb"}


# -- secret variables --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", "environment variable SMARTSYNC_CLIENT_SECRET is set but empty; put the secret's value in it"),
        ("   ", "environment variable SMARTSYNC_CLIENT_SECRET is set but empty"),
        (
            " abc~def\n",
            "environment variable SMARTSYNC_CLIENT_SECRET has spaces or a line break around its value",
        ),
    ],
)
def test_an_empty_or_padded_secret_variable_is_named(
    config: Path, monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", value)
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    message = str(caught.value)
    assert f"tenant.client_secret: {expected}" in message
    assert "/etc/smartsync/environment" in message  # where to fix it
    if value.strip():
        assert value.strip() not in message  # the secret itself is never shown


# -- validate --source without a config -------------------------------------------------------------


def test_validate_source_without_a_config_points_at_the_option(tmp_path: Path) -> None:
    missing = tmp_path / "export.zip"
    result = invoke("validate", "--source", str(missing))
    assert result.exit_code == 2
    assert f"{missing}: does not exist; check the path given to --source" in result.stdout
    assert "source.path in the config" not in result.output + result.stderr


# -- the failure summary on stderr --------------------------------------------------------------------


def test_every_non_zero_exit_ends_stderr_with_the_meaning_and_the_next_step(tmp_path: Path) -> None:
    result = invoke("validate", "--source", str(tmp_path / "missing"))
    lines = result.stderr.splitlines()
    assert (
        lines[-2]
        == "smartsync validate failed: exit 2, usage, config or input-data error; nothing was written."
    )
    assert lines[-1].startswith("Next step: fix what the error above names")
    usage = invoke("log", "--since", "yesterday-ish", "--journal", str(tmp_path / "j"))
    assert usage.exit_code == 2
    assert usage.stderr.splitlines()[-2].startswith("smartsync log failed: exit 2")


def test_a_successful_command_writes_nothing_to_stderr(config: Path) -> None:
    result = invoke("--config", str(config), "validate")
    assert result.exit_code == 0 and result.stderr == ""


def test_the_summary_says_what_each_exit_code_means() -> None:
    from smartsync.failure import summary

    assert summary("run", 4) == [
        "smartsync run failed: exit 4, refused by a safety limit; nothing was written.",
        "Next step: review the changes with `smartsync plan`, then run `smartsync run --force` if they are "
        "intended.",
    ]
    assert "check-credentials" in summary("run", 3)[1]
    assert "smartsync log --run ID" in summary("run", 5)[1]
    assert "the next run retries" in summary("run", 1)[1]


# -- make demo --------------------------------------------------------------------------------------


def test_make_demo_says_it_installs_from_the_package_index_on_first_use(tmp_path: Path) -> None:
    dry = subprocess.run(
        ["make", "-n", "-C", str(REPO), "demo", f"VENV={tmp_path / 'venv'}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert dry.returncode == 0, dry.stderr
    assert "installing smartsync and its dependencies from the package index (PyPI)" in dry.stdout
    assert "later runs reuse it" in dry.stdout and "./.smartsync-demo/" in dry.stdout


# -- erasing one pupil from the journal --------------------------------------------------------------


def pupil_journal(path: Path) -> None:
    with Journal(path) as j:
        j.start_run("20261126T040002Z-aaaa", "cfg", dry_run=False)
        for user in (PUPIL, "b.pupil@school.example", PUPIL.upper()):
            j.change(
                op="group.members.add",
                key="NFA-class-1",
                group="9X/En2",
                object_id="g1",
                user=user,
                result="ok",
            )
        j.end_run("ok", {"members_added": 3}, [f"Roster person L1 ({PUPIL}) has no Entra user"])


def test_erase_user_removes_the_pupils_lines_and_masks_the_address_elsewhere(tmp_path: Path) -> None:
    journal = tmp_path / "changes.jsonl"
    pupil_journal(journal)
    assert len(read_events(journal, user=PUPIL)) == 4  # found first with --user: 2 changes + start/end

    result = invoke("log", "--journal", str(journal), "--erase-user", PUPIL)

    assert result.exit_code == 0, result.output
    assert "2 change lines removed, the address masked in 1 other line" in result.stdout
    assert "docs/data-protection.md" in result.stdout
    text = journal.read_text()
    assert PUPIL not in text.casefold() and "[erased]" in text
    assert "b.pupil@school.example" in text  # everyone else's history stays
    assert [e["event"] for e in read_events(journal)] == ["run.start", "change", "run.end"]
    assert stat.S_IMODE(journal.stat().st_mode) == 0o600
    assert (
        invoke("log", "--journal", str(journal), "--user", PUPIL).stdout.strip()
        == "No journal entries match."
    )


def test_erase_user_takes_no_other_filter_and_waits_for_no_run(tmp_path: Path) -> None:
    journal = tmp_path / "changes.jsonl"
    pupil_journal(journal)
    mixed = invoke("log", "--journal", str(journal), "--erase-user", PUPIL, "--since", "7d")
    assert mixed.exit_code == 2
    assert "check what it will remove first with `smartsync log --user ADDRESS`" in mixed.stderr
    from smartsync.lock import RunLock

    with RunLock(journal.with_name("changes.jsonl.lock"), run_id="20261126T040002Z-cccc"):
        held = invoke("log", "--journal", str(journal), "--erase-user", PUPIL)
    assert held.exit_code == 5 and "run 20261126T040002Z-cccc" in held.stderr
    assert PUPIL in journal.read_text()  # nothing erased while a run held the journal


# -- Windows defaults ----------------------------------------------------------------------------------


def test_windows_defaults_live_under_programdata(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROGRAMDATA", r"D:\ProgramData")
    assert str(default_config_file("nt")) == r"D:\ProgramData\smartsync\config.yaml"
    assert str(default_journal_file("nt")) == r"D:\ProgramData\smartsync\log\changes.jsonl"
    assert str(default_journal_file("posix")) == "/var/log/smartsync/changes.jsonl"


def test_without_posix_modes_the_journal_is_not_chmodded_and_nothing_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smartsync.journal

    monkeypatch.setattr(smartsync.journal, "POSIX_MODES", False)
    journal = tmp_path / "changes.jsonl"
    journal.write_text("")
    os.chmod(journal, 0o644)
    warnings: list[str] = []
    with Journal(journal, on_warning=warnings.append) as j:
        j.start_run("20261126T040002Z-aaaa", "cfg", dry_run=False)
        j.end_run("ok", {})
    assert warnings == [] and stat.S_IMODE(journal.stat().st_mode) == 0o644


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (["run", "-q", "--config", "x.yaml", "--force"], ["-q", "--config", "x.yaml", "run", "--force"]),
        (["-v", "plan", "--config=x.yaml", "--json"], ["-v", "--config=x.yaml", "plan", "--json"]),
        (["simulator", "serve", "-q", "--port", "0"], ["-q", "simulator", "serve", "--port", "0"]),
        (["log", "--user", "a@x.example", "--", "-q"], ["log", "--user", "a@x.example", "--", "-q"]),
        (["--config", "x.yaml", "run"], ["--config", "x.yaml", "run"]),
    ],
)
def test_global_options_are_moved_before_the_command(given: list[str], parsed: list[str]) -> None:
    from smartsync.cli import _hoist_global_options

    assert _hoist_global_options(given) == parsed


def test_without_posix_modes_a_readable_config_does_not_warn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import smartsync.config

    monkeypatch.setattr(smartsync.config, "POSIX_MODES", False)
    path = tmp_path / "smartsync.yaml"
    path.write_text(
        (CONFIG % ("export", tmp_path / "changes.jsonl")).replace("${SMARTSYNC_CLIENT_SECRET}", "lit")
    )
    path.chmod(0o644)
    assert load_config(path)[1] == []  # Windows: the folder's ACL (icacls) protects it, not a mode
