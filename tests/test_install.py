"""`make install` into a staging root, and the installed cron line run exactly as cron runs it.

The install runs with DESTDIR (no user is created, nothing is chowned, no service manager is told)
and SITE_PACKAGES_FROM (the venv reuses this interpreter's packages instead of the package index),
so it needs no network and no root. The cron test then reads the installed /etc/cron.d/smartsync,
takes its own SHELL and PATH, and runs its command with `env -i` as cron would; the only change made
to the line is that its absolute paths point into the staging root.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from test_reliability_support import mini_roster, served_tenant, write_cli_config

from smartsync.demo import DEMO_SECRET, demo_seed

REPO = Path(__file__).resolve().parent.parent
STAGED_PATHS = ("/usr/local/bin/", "/etc/smartsync/", "/var/log/smartsync/")


def make(target: str, root: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    python = sys.executable
    command = ["make", "-s", "-C", str(REPO), target, f"DESTDIR={root}", f"PYTHON={python}"]
    return subprocess.run(
        [*command, f"SITE_PACKAGES_FROM={python}", *settings], capture_output=True, text=True, timeout=300
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    staging = tmp_path / "root"
    result = make("install", staging, "SCHEDULER=cron", "MAILTO=it-team@school.example")
    assert result.returncode == 0, result.stderr
    assert "Next steps:" in result.stdout
    return staging


def test_install_lays_out_one_set_of_paths_and_modes(root: Path) -> None:
    assert mode(root / "etc/smartsync") == 0o750
    assert mode(root / "etc/smartsync/config.yaml") == 0o640
    assert mode(root / "etc/smartsync/environment") == 0o640
    assert (root / "etc/smartsync/config.yaml").read_text() == (REPO / "config.example.yaml").read_text()
    assert mode(root / "var/log/smartsync") == 0o750
    assert mode(root / "var/lib/smartsync") == 0o750
    assert mode(root / "var/log/smartsync/cron.log") == 0o600
    assert (root / "etc/logrotate.d/smartsync").read_text() == (
        REPO / "contrib/logrotate/smartsync"
    ).read_text()
    command = root / "usr/local/bin/smartsync"
    assert command.is_symlink() and not os.readlink(command).startswith("/")  # relative: works once copied
    version = subprocess.run([str(command), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "smartsync, version" in version.stdout
    cron = (root / "etc/cron.d/smartsync").read_text()
    assert "MAILTO=it-team@school.example" in cron
    assert not (root / "etc/systemd/system/smartsync.timer").exists()


def test_a_second_install_keeps_the_edited_config_and_uninstall_keeps_the_data(root: Path) -> None:
    config = root / "etc/smartsync/config.yaml"
    config.write_text("# edited by the school\n")
    again = make("install", root, "SCHEDULER=cron")
    assert again.returncode == 0, again.stderr
    assert "kept the existing /etc/smartsync/config.yaml" in again.stdout
    assert config.read_text() == "# edited by the school\n"

    gone = make("uninstall", root)
    assert gone.returncode == 0, gone.stderr
    assert not (root / "opt/smartsync").exists()
    assert not (root / "usr/local/bin/smartsync").is_symlink()
    assert not (root / "etc/cron.d/smartsync").exists()
    assert config.read_text() == "# edited by the school\n"  # config, secret and journal stay
    assert (root / "var/log/smartsync").is_dir()
    assert "sudo rm -r /etc/smartsync /var/log/smartsync /var/lib/smartsync" in gone.stdout


def test_with_systemd_the_timer_is_installed_instead_of_cron(tmp_path: Path) -> None:
    staging = tmp_path / "root"
    result = make("install", staging, "SCHEDULER=systemd")
    assert result.returncode == 0, result.stderr
    timer = (staging / "etc/systemd/system/smartsync.timer").read_text()
    for slot in ("04:00:00", "08:00:00", "12:00:00"):
        assert f"OnCalendar=*-*-* {slot}" in timer
    service = (staging / "etc/systemd/system/smartsync.service").read_text()
    assert "User=smartsync" in service and "ExecStart=/usr/local/bin/smartsync run" in service
    assert "EnvironmentFile=-/etc/smartsync/environment" in service
    assert not (staging / "etc/cron.d/smartsync").exists()


@dataclass(frozen=True)
class CronJob:
    shell: str
    path: str
    mailto: str
    schedule: str
    user: str
    command: str


def read_cron_file(path: Path) -> CronJob:
    settings: dict[str, str] = {}
    jobs: list[list[str]] = []
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        name, sep, value = text.partition("=")
        if sep and " " not in name:
            settings[name] = value
        else:
            jobs.append(text.split(None, 6))
    assert len(jobs) == 1, jobs
    fields = jobs[0]
    return CronJob(
        settings["SHELL"], settings["PATH"], settings["MAILTO"], " ".join(fields[:5]), fields[5], fields[6]
    )


def run_as_cron(job: CronJob, root: Path) -> subprocess.CompletedProcess[str]:
    """What cron does: `$SHELL -c command` with only HOME, LOGNAME and the file's SHELL and PATH."""
    command = job.command
    for prefix in STAGED_PATHS:
        command = command.replace(prefix, f"{root}{prefix}")
    environment = [f"SHELL={job.shell}", f"PATH={job.path}", "HOME=/var/lib/smartsync", f"LOGNAME={job.user}"]
    return subprocess.run(
        ["env", "-i", *environment, job.shell, "-c", command], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Path]:
    roster = mini_roster(classes=2, learners_per_class=4)
    with served_tenant(tmp_path / "server", demo_seed(roster)) as tenant:
        config = write_cli_config(tmp_path / "school", tenant, roster)
        yield config


def test_the_cron_line_run_as_cron_runs_it_reports_to_the_log_and_mails_only_failures(
    root: Path, served: Path
) -> None:
    job = read_cron_file(root / "etc/cron.d/smartsync")
    assert job.schedule == "0 4,8,12 * * *" and job.user == "smartsync"
    assert "/usr/local/bin/smartsync --config /etc/smartsync/config.yaml run" in job.command
    assert "umask 077" in job.command and ">> /var/log/smartsync/cron.log" in job.command
    assert "2>&1" not in job.command  # stderr must reach cron, and so MAILTO

    data = yaml.safe_load(served.read_text())
    data["journal"]["path"] = str(root / "var/log/smartsync/changes.jsonl")
    config = root / "etc/smartsync/config.yaml"
    config.write_text(yaml.safe_dump(data))
    (root / "etc/smartsync/environment").write_text(f"SMARTSYNC_CLIENT_SECRET={DEMO_SECRET}\n")
    cron_log = root / "var/log/smartsync/cron.log"
    cron_log.unlink()  # the first run creates it, and must create it private

    ok = run_as_cron(job, root)
    assert ok.returncode == 0, ok.stderr
    assert ok.stderr == "" and ok.stdout == ""  # nothing for cron to mail
    report = cron_log.read_text()
    assert re.search(r"^Changed \d+ groups .*; 0 failed\.$", report, re.M), report
    assert mode(cron_log) == 0o600
    assert mode(root / "var/log/smartsync/changes.jsonl") == 0o600

    config.write_text(config.read_text() + "sync_typo: true\n")
    broken = run_as_cron(job, root)
    assert broken.returncode == 2
    mail = broken.stderr.splitlines()
    assert any("sync_typo: unknown key" in line for line in mail)
    assert mail[-2] == "smartsync run failed: exit 2, usage, config or input-data error; nothing was written."
    assert mail[-1].startswith("Next step: fix what the error above names and run it again")
    assert cron_log.read_text() == report  # the failed run added no report, so the mail is the record
