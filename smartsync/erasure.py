"""`smartsync log --erase-user ADDRESS`: remove one person's traces from the change journal.

A school answering an erasure request (UK GDPR Art. 17) finds a pupil's journal lines with
`smartsync log --user ADDRESS` and removes them with `--erase-user`. Every `change` line for that
sign-in address goes; in every other line (a run's warnings, an error text) the address is replaced by
`[erased]`, so the run's counts and outcome stay readable. Both the journal and its rotated `.1` file
are rewritten, each to a private temporary file in the same folder that is then moved into place, so
a crash leaves the old or the new file, never half of one. The caller holds the run lock, so no run
appends while a file is rewritten.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smartsync.journal import rotated_path

ERASED = "[erased]"
_FILE_MODE = 0o600


@dataclass(frozen=True)
class Erasure:
    files: tuple[Path, ...]
    removed: int
    masked: int


def _mask(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(ERASED, value)
    if isinstance(value, list):
        return [_mask(item, pattern) for item in value]
    if isinstance(value, dict):
        return {key: _mask(item, pattern) for key, item in value.items()}
    return value


def _rewrite(path: Path, address: str, pattern: re.Pattern[str]) -> tuple[int, int] | None:
    try:
        raw_lines = path.read_bytes().splitlines(keepends=True)
    except FileNotFoundError:
        return None
    kept: list[bytes] = []
    removed = masked = 0
    for raw in raw_lines:
        text = raw.decode("utf-8", errors="replace")
        if address not in text.casefold():
            kept.append(raw)
            continue
        try:
            event = json.loads(text)
        except ValueError:
            removed += 1  # a damaged line naming the person: nothing else in it is worth keeping
            continue
        if isinstance(event, dict) and str(event.get("user") or "").casefold() == address:
            removed += 1
            continue
        masked += 1
        line = json.dumps(_mask(event, pattern), ensure_ascii=False, separators=(",", ":")) + "\n"
        kept.append(line.encode())
    if removed or masked:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.erase")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        try:
            with os.fdopen(descriptor, "wb") as out:
                out.writelines(kept)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    return removed, masked


def erase_user(journal: Path, address: str) -> Erasure:
    """Remove `address`'s change lines from `journal` and its `.1`, and mask it everywhere else."""
    wanted = address.strip().casefold()
    pattern = re.compile(re.escape(address.strip()), re.IGNORECASE)
    files: list[Path] = []
    removed = masked = 0
    for path in (rotated_path(journal), journal):
        counts = _rewrite(path, wanted, pattern)
        if counts is not None:
            files.append(path)
            removed += counts[0]
            masked += counts[1]
    return Erasure(tuple(files), removed, masked)


__all__ = ["ERASED", "Erasure", "erase_user"]
