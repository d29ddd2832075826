"""The run lock: one smartsync run at a time per config (exit code 5 when another holds it).

`RunLock` takes an exclusive, non-blocking lock through `filelock`, which uses `flock` on Linux and
`msvcrt.locking` on Windows: the operating system releases either when its process ends however it
ends (crash, kill, reboot), so a stale lock never needs clearing by hand.

Who holds the lock (run id, pid, start time) is recorded in a small file next to it,
`<lock>.holder`, not in the lock file itself: Windows does not let a second process read a locked
region, and a lock file's content belongs to the library. A second run reads that record for its
message; the holder removes it when it releases the lock, and a crashed holder's record is simply
overwritten by the next run.
"""

from __future__ import annotations

import contextlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import filelock

from smartsync.errors import ConfigError, LockHeldError

_FILE_MODE = 0o600
_DIR_MODE = 0o700


def holder_path(lock_path: Path) -> Path:
    """Where the holder of `lock_path` records its run id, pid and start time."""
    return lock_path.with_name(lock_path.name + ".holder")


def _holder_description(lock_path: Path) -> str:
    """'run 20261126T040002Z-3f2a, pid 1234, started 2026-11-26 04:00:02 UTC', or a vaguer phrase."""
    try:
        holder = json.loads(holder_path(lock_path).read_text(encoding="utf-8"))
        pid = int(holder["pid"])
        started = datetime.fromisoformat(str(holder["started"])).astimezone(UTC)
        run_id = holder.get("run")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "run and pid unknown"
    run = f"run {run_id}, " if isinstance(run_id, str) and run_id else ""
    return f"{run}pid {pid}, started {started.strftime('%Y-%m-%d %H:%M:%S')} UTC"


class RunLock:
    """Context manager holding an exclusive lock on `path` for the duration of a run."""

    def __init__(self, path: Path, run_id: str | None = None) -> None:
        self.path = Path(path)
        self.run_id = run_id
        self._lock: filelock.BaseFileLock | None = None

    @property
    def held(self) -> bool:
        return self._lock is not None

    def acquire(self) -> None:
        if self._lock is not None:
            return
        # thread_local=False: the lock belongs to the run, whichever thread releases it.
        lock = filelock.FileLock(self.path, timeout=0, mode=_FILE_MODE, thread_local=False)
        try:
            self.path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            lock.acquire()
        except filelock.Timeout:
            holder = _holder_description(self.path)
            raise LockHeldError(
                f"Another smartsync run ({holder}) holds the lock {self.path}; this run did nothing. "
                "If no run is active, the lock is released automatically when the process ends; "
                "`smartsync log --run ID` shows what that run has done so far."
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the lock file {self.path} ({exc.strerror or exc}). Give the user that runs "
                "smartsync write access to that folder, or set journal.lock_path in the config."
            ) from None
        self._lock = lock
        record = {
            "run": self.run_id,
            "pid": os.getpid(),
            "started": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        # The record only improves a second run's message; the lock itself is held either way.
        with contextlib.suppress(OSError):
            _write_private(holder_path(self.path), json.dumps(record) + "\n")

    def release(self) -> None:
        if self._lock is None:
            return
        lock, self._lock = self._lock, None
        try:
            with contextlib.suppress(OSError):
                holder_path(self.path).unlink(missing_ok=True)
        finally:
            lock.release()

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _write_private(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(partial, path)


__all__ = ["RunLock", "holder_path"]
