"""The hand-out file of new accounts: the only place an initial password is ever written.

`new-accounts-<run id>.csv` next to the journal, created with mode 0600 (never readable by anyone but
the user that runs smartsync), one row per account this run created: name, year group, class or
mentor group, sign-in address, password. It is opened on the first created account only, so a run
that creates nothing leaves no file. Files older than `sync.users.handout_retention_days` are deleted
at the start of each run. Passwords are random (the `secrets` module) and meet Entra's complexity
rule (8 to 256 characters, three of: lower case, upper case, digits, symbols); users must change
them at first sign-in.
"""

from __future__ import annotations

import csv
import io
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

COLUMNS = ("name", "year group", "class or mentor group", "sign-in address", "password")
PATTERN = "new-accounts-*.csv"
PASSWORD_LENGTH = 14
# Letters and digits without the look-alikes (O 0, I l 1) a pupil would misread from a printed slip,
# and symbols that need no quoting in CSV or a shell.
_LOWER = "abcdefghijkmnopqrstuvwxyz"
_UPPER = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_DIGITS = "23456789"
_SYMBOLS = "!#%+-=?@"


def new_password(length: int = PASSWORD_LENGTH) -> str:
    """A random password with every character class, which Entra's complexity rule accepts.

    It starts with a letter: a spreadsheet opening the hand-out file would take a leading `=`, `+`,
    `-` or `@` for a formula and show something else than the password.
    """
    classes = (_LOWER, _UPPER, _DIGITS, _SYMBOLS)
    alphabet = "".join(classes)
    chars = [secrets.choice(c) for c in classes] + [secrets.choice(alphabet) for _ in range(length - 5)]
    for i in range(len(chars) - 1, 0, -1):  # Fisher-Yates with the secrets generator
        j = secrets.randbelow(i + 1)
        chars[i], chars[j] = chars[j], chars[i]
    return secrets.choice(_LOWER + _UPPER) + "".join(chars)


def _cell(text: str) -> str:
    """A value a spreadsheet shows as text (a name starting with `=` is not run as a formula)."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def handout_path(journal_path: Path, run_id: str) -> Path:
    return journal_path.with_name(f"new-accounts-{run_id}.csv")


@dataclass(frozen=True)
class HandoutInfo:
    """Where this run's hand-out file is and how many accounts it lists (for the report)."""

    path: Path
    rows: int


class Handout:
    """Appends one row per created account; the file appears (0600) with the first row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._fd: int | None = None

    def add(self, name: str, year_group: str | None, group: str | None, address: str, password: str) -> None:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.fchmod(self._fd, 0o600)  # whatever the umask
            self._write(COLUMNS)
        self._write((_cell(name), _cell(year_group or ""), _cell(group or ""), address, password))
        self.rows += 1

    def _write(self, row: tuple[str, ...]) -> None:
        assert self._fd is not None
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow(row)
        os.write(self._fd, buffer.getvalue().encode("utf-8"))

    def flush(self) -> None:
        """Onto the disk: the accounts exist, so their passwords must not be lost to a crash."""
        if self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = None

    def info(self) -> HandoutInfo | None:
        return HandoutInfo(self.path, self.rows) if self.rows else None


def prune_handouts(folder: Path, retention_days: int, now: datetime) -> list[Path]:
    """Delete hand-out files older than `retention_days` (by modification time); return them."""
    cutoff = (now - timedelta(days=retention_days)).timestamp()
    removed: list[Path] = []
    try:
        candidates = sorted(folder.glob(PATTERN))
    except OSError:
        return removed
    for path in candidates:
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed.append(path)
        except OSError:
            continue
    return removed
