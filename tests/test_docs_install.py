"""The install documents agree: one install path, one set of modes, the same cron line everywhere."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# What the documents said before there was one install path (three locations, three config modes).
STALE = (
    "pipx",
    "pip install .` (or",
    "/etc/smartsync/env;",
    "/etc/smartsync/env`",
    "install -m 600",
    "chmod 600 /etc/smartsync",
    "/opt/smartsync/bin/smartsync --config",
    "mode 600)",
)
DOCUMENTS = ("README.md", "contrib/README.md", "crontab.example", "docs/setup.md", "config.example.yaml")


def text(name: str) -> str:
    return (REPO / name).read_text(encoding="utf-8")


@pytest.mark.parametrize("name", DOCUMENTS)
def test_every_document_uses_the_one_install_path(name: str) -> None:
    body = text(name)
    assert "make install" in body
    for stale in STALE:
        assert stale not in body, f"{name} still says {stale!r}"


def test_the_modes_are_the_same_in_every_table() -> None:
    for name in ("README.md", "contrib/README.md"):
        body = text(name)
        assert re.search(r"`/etc/smartsync` \| root:smartsync 0750", body), name
        assert re.search(r"`/etc/smartsync/config.yaml`[^|]*\| root:smartsync 0640", body), name
        assert re.search(r"`/etc/smartsync/environment` \| root:smartsync 0640", body), name
    assert "root:smartsync 0640" in text("docs/setup.md") and "root:smartsync 0640" in text("crontab.example")
    install = text("contrib/install.sh")
    assert 'install -d -m 0750 "$(at "$ETC")"' in install
    assert 'install -m 0640 "$SOURCE/config.example.yaml"' in install


def test_the_readme_shows_the_shipped_cron_line() -> None:
    shipped = [line for line in text("crontab.example").splitlines() if line.strip()[:1].isdigit()]
    assert len(shipped) == 1
    assert " ".join(shipped[0].split()) in " ".join(text("README.md").split())


def test_logrotate_keeps_the_report_log_private() -> None:
    snippet = text("contrib/logrotate/smartsync")
    assert "/var/log/smartsync/cron.log" in snippet and "create 0600 smartsync smartsync" in snippet


def test_the_windows_task_runs_at_four_eight_and_twelve() -> None:
    namespace = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    task = ElementTree.parse(REPO / "contrib/windows/smartsync-task.xml").getroot()
    starts = [e.text or "" for e in task.findall("t:Triggers/t:CalendarTrigger/t:StartBoundary", namespace)]
    assert [start[11:16] for start in starts] == ["04:00", "08:00", "12:00"]
    arguments = task.findtext("t:Actions/t:Exec/t:Arguments", namespaces=namespace) or ""
    assert "smartsync.exe" in arguments and " run " in arguments
    assert task.findtext("t:Settings/t:MultipleInstancesPolicy", namespaces=namespace) == "IgnoreNew"


def test_the_data_protection_page_is_linked_and_covers_every_file() -> None:
    assert "docs/data-protection.md" in text("README.md")
    page = text("docs/data-protection.md")
    facts = ("changes.jsonl", "cron.log", "--html", "preflight", "delta", "hand-out", "--erase-user")
    for fact in (*facts, "UK GDPR", "Department for Education", "webhook", "MAILTO", "0600"):
        assert fact in page, fact
