"""The run lock: a second run is refused with a useful message; a dead holder never blocks the next run."""

from __future__ import annotations

import signal
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from smartsync.errors import EXIT_INPUT, EXIT_LOCKED, ConfigError, LockHeldError
from smartsync.lock import RunLock, holder_path

HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from smartsync.lock import RunLock
    with RunLock(Path(sys.argv[1]), run_id="20261126T040002Z-3f2a"):
        print("held", flush=True)
        sys.stdin.readline()  # hold until told to go, or killed
    print("released", flush=True)
    """
)


@pytest.fixture
def holder(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    lock_path = tmp_path / "state" / "smartsync.lock"
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "held"
    yield proc, lock_path
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=10)
    for stream in (proc.stdin, proc.stdout):
        if stream is not None:
            stream.close()


def test_second_process_is_refused_with_pid_and_next_step(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, lock_path = holder
    with pytest.raises(LockHeldError) as caught, RunLock(lock_path):
        pass
    message = str(caught.value)
    assert f"pid {proc.pid}" in message
    assert "run 20261126T040002Z-3f2a" in message and "smartsync log --run ID" in message
    assert "started 20" in message and " UTC" in message
    assert str(lock_path) in message
    assert "this run did nothing" in message
    assert "released automatically when the process ends" in message
    assert caught.value.exit_code == EXIT_LOCKED == 5


def test_lock_is_free_after_holder_finishes(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, lock_path = holder
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "released"
    with RunLock(lock_path) as lock:
        assert lock.held


def test_killed_holder_does_not_block_the_next_run(holder: tuple[subprocess.Popen[str], Path]) -> None:
    proc, lock_path = holder
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    with RunLock(lock_path) as lock:
        assert lock.held
        # The record now names this process, not the dead one.
        assert f'"pid": {proc.pid}' not in holder_path(lock_path).read_text()


def test_lock_file_is_private_and_reusable_in_process(tmp_path: Path) -> None:
    lock_path = tmp_path / "new" / "smartsync.lock"
    first = RunLock(lock_path)
    with first:
        assert stat.S_IMODE(lock_path.stat().st_mode) == 0o600
        with pytest.raises(LockHeldError), RunLock(lock_path):
            pass
    assert not first.held
    assert not holder_path(lock_path).exists()  # released: no stale holder record to mislead
    with RunLock(lock_path):
        pass


def test_unwritable_lock_folder_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=r"Cannot create the lock file .*journal\.lock_path") as caught:
        RunLock(blocker / "smartsync.lock").acquire()
    assert caught.value.exit_code == EXIT_INPUT


def test_the_lock_goes_through_filelock_on_every_platform(tmp_path: Path) -> None:
    # The same library call runs on Windows (msvcrt) as here (flock): a lock taken with filelock
    # directly is seen by RunLock, so no hand-written fcntl path is left in smartsync.
    import filelock

    lock_path = tmp_path / "smartsync.lock"
    with filelock.FileLock(lock_path, timeout=0), pytest.raises(LockHeldError) as caught, RunLock(lock_path):
        pass
    assert "run and pid unknown" in str(caught.value)  # no holder record: still a usable message
