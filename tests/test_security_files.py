"""Files: journal and lock file are created 0600 whatever the umask; a readable config with a secret warns."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import yaml
from test_reliability_badinput import cli_tenant, config_data
from test_reliability_support import mini_roster

from smartsync.demo import DEMO_SECRET


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_journal_and_lock_file_are_private_even_with_an_open_umask(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0)
    try:
        with cli_tenant(tmp_path, monkeypatch, mini_roster()) as (t, _wraps):
            result = t.run("run")
    finally:
        os.umask(old)
    assert result.exit_code == 0, result.output
    journal = tmp_path / "journal" / "changes.jsonl"
    assert mode(journal) == 0o600
    assert mode(journal.parent) == 0o700
    assert mode(journal.with_name("changes.jsonl.lock")) == 0o600


def test_a_journal_left_readable_is_made_private_again_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal" / "changes.jsonl"
    journal.parent.mkdir()
    journal.write_text("", encoding="utf-8")
    journal.chmod(0o644)
    with cli_tenant(tmp_path, monkeypatch, mini_roster()) as (t, _wraps):
        result = t.run("run")
    assert result.exit_code == 0, result.output
    assert mode(journal) == 0o600
    assert "was readable by group or others" in result.output


def give_to_a_foreign_group(path: Path) -> None:
    """Make `path`'s group one this process is not in (needs root, as in CI; skipped otherwise)."""
    if os.geteuid() != 0:
        pytest.skip("changing a file's group to one we are not in needs root")
    mine = {os.getgid(), *os.getgroups()}
    os.chown(path, -1, next(gid for gid in (65534, 65533, 4242) if gid not in mine))


@pytest.mark.parametrize(
    ("secret", "file_mode", "group", "warns"),
    [
        (DEMO_SECRET, 0o644, "own", True),
        (DEMO_SECRET, 0o640, "foreign", True),
        # The installed layout: root:smartsync 0640, read by the group smartsync runs as.
        (DEMO_SECRET, 0o640, "own", False),
        (DEMO_SECRET, 0o600, "own", False),
        ("${SMARTSYNC_CLIENT_SECRET}", 0o644, "own", False),
    ],
)
def test_a_config_holding_a_secret_that_others_can_read_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, secret: str, file_mode: int, group: str, warns: bool
) -> None:
    with cli_tenant(tmp_path, monkeypatch, mini_roster()) as (t, _wraps):
        data = config_data(tmp_path)
        data["tenant"]["client_secret"] = secret
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        t.config.chmod(file_mode)
        if group == "foreign":
            give_to_a_foreign_group(t.config)
        result = t.run("plan")
    assert result.exit_code == 0, result.output
    warning = "holds a secret and is readable by others"
    assert (warning in result.output) is warns, result.output
    if warns:
        assert f"chmod 640 {t.config}" in result.output and "SMARTSYNC_CLIENT_SECRET" in result.output
    assert DEMO_SECRET not in result.output
