"""Where smartsync keeps its files when the config does not say, per platform.

On Linux the config is `/etc/smartsync/config.yaml` and the journal `/var/log/smartsync/changes.jsonl`
(the folders `make install` creates). On Windows both live under `%ProgramData%\\smartsync`
(`config.yaml`, and `log\\changes.jsonl`), the machine-wide data folder a scheduled task running as a
service account can use.

`POSIX_MODES` says whether file modes such as 0600 mean anything here. On Windows they do not
(access is governed by ACLs, which the documentation sets with `icacls`), so smartsync skips its
mode checks and repairs there instead of failing or warning on every run.
"""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

POSIX_MODES = os.name == "posix"


def program_data_folder() -> PureWindowsPath:
    """`%ProgramData%\\smartsync` (normally `C:\\ProgramData\\smartsync`)."""
    # Windows environment names ignore case; Python's os.environ there is upper-case.
    return PureWindowsPath(os.environ.get("PROGRAMDATA") or r"C:\ProgramData") / "smartsync"


def default_config_file(system: str = os.name) -> Path:
    if system == "nt":
        return Path(str(program_data_folder() / "config.yaml"))
    return Path("/etc/smartsync/config.yaml")


def default_journal_file(system: str = os.name) -> Path:
    if system == "nt":
        return Path(str(program_data_folder() / "log" / "changes.jsonl"))
    return Path("/var/log/smartsync/changes.jsonl")


__all__ = ["POSIX_MODES", "default_config_file", "default_journal_file", "program_data_folder"]
