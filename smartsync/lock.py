"""The run lock: one smartsync run at a time per config (exit code 5 when another holds it).

`RunLock` takes an exclusive, non-blocking `flock` on a small file. The kernel releases a flock when
its process ends however it ends (crash, SIGKILL, reboot), so a stale lock never needs clearing by
hand; the file is left in place and only records who holds it, for the message a second run prints.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from smartsync.errors import ConfigError, LockHeldError

_FILE_MODE = 0o600
_DIR_MODE = 0o700


def _holder_description(fd: int) -> str:
    """'pid 1234, started 2026-11-26 04:00:02 UTC' from the lock file, or a vaguer phrase."""
    try:
        raw = os.pread(fd, 4096, 0)
        holder = json.loads(raw)
        pid = int(holder["pid"])
        started = datetime.fromisoformat(str(holder["started"])).astimezone(UTC)
    except (OSError, ValueError, KeyError, TypeError):
        return "pid unknown"
    return f"pid {pid}, started {started.strftime('%Y-%m-%d %H:%M:%S')} UTC"


class RunLock:
    """Context manager holding an exclusive lock on `path` for the duration of a run."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            return
        try:
            self.path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, _FILE_MODE)
        except OSError as exc:
            raise ConfigError(
                f"Cannot create the lock file {self.path} ({exc.strerror}). Give the user that runs "
                "smartsync write access to that folder, or set journal.lock_path in the config."
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_description(fd)
            os.close(fd)
            raise LockHeldError(
                f"Another smartsync run ({holder}) holds the lock {self.path}; this run did nothing. "
                "If no run is active, the lock is released automatically when the process ends."
            ) from None
        except BaseException:
            os.close(fd)
            raise
        record = json.dumps({"pid": os.getpid(), "started": datetime.now(UTC).isoformat(timespec="seconds")})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


__all__ = ["RunLock"]
