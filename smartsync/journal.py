"""The change journal (DESIGN §6): JSON Lines, appended, one line per event, file mode 0600.

Every change smartsync applies is written as it happens, one line per affected user, so that a
person's history ("when did this pupil leave 9X/En2, and which run did it?") can be answered later
with `smartsync log`. Lines go straight to the kernel with `os.write` on an `O_APPEND` descriptor, so
a crash of the process loses nothing already written; `end_run` and `close` also fsync.

The file keeps itself bounded: `start_run` drops lines older than the retention period (at most
about once a day, decided by looking at the first line only) and, should the file still exceed the
rotation size, moves it to `<name>.1` (one generation kept). Readers take `<name>.1` into account.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import stat
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from smartsync.errors import SmartsyncError
from smartsync.paths import POSIX_MODES

_log = logging.getLogger(__name__)

ROTATE_BYTES = 50 * 1024 * 1024
RUN_STATUSES = ("ok", "partial", "failed", "refused")
_FILE_MODE = 0o600
_DIR_MODE = 0o700
# The first line is read only to find its time, from its start when it is longer than this.
_FIRST_LINE_LIMIT = 64 * 1024
_LEADING_TIME = re.compile(rb'^\{"time":"([0-9T:Z+-]{10,30})"')

Warn = Callable[[str], None]


def now_utc() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime) -> datetime:
    """Naive date-times are taken as UTC, the zone every journal line is written in."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def format_time(moment: datetime) -> str:
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_run_id(now: datetime | None = None) -> str:
    """A run id that sorts by start time, e.g. `20261126T040002Z-3f2a`."""
    return f"{_utc(now or now_utc()).strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(2)}"


def rotated_path(path: Path) -> Path:
    return path.with_name(path.name + ".1")


def _parse_line_time(event: dict[str, Any]) -> datetime | None:
    value = event.get("time")
    if not isinstance(value, str):
        return None
    try:
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        return None


def _tighten(fd: int, path: Path, warn: Warn) -> None:
    if not POSIX_MODES:
        return  # Windows: modes mean nothing there; the folder's ACL (icacls) protects the journal
    mode = stat.S_IMODE(os.fstat(fd).st_mode)
    if mode & 0o077:
        os.fchmod(fd, _FILE_MODE)
        warn(
            f"journal {path} was readable by group or others (mode {mode:o}); "
            f"it lists pupils and staff, so its mode is now 600."
        )


def _open_append(path: Path, warn: Warn) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, _FILE_MODE)
    try:
        _tighten(fd, path, warn)
        # A crash mid-write leaves a torn last line; start on a fresh line so the next event stays readable.
        size = os.fstat(fd).st_size
        if size:
            with open(path, "rb") as existing:
                existing.seek(size - 1)
                if existing.read(1) != b"\n":
                    os.write(fd, b"\n")
    except BaseException:
        os.close(fd)
        raise
    return fd


class Journal:
    """Appends run and change events for one run at a time; thread-safe, usable as a context manager.

    Warnings (a journal file with too-wide permissions) are passed to `on_warning` and kept in
    `warnings` so that the run report can show them.
    """

    def __init__(
        self,
        path: Path,
        retention_days: int = 400,
        *,
        clock: Callable[[], datetime] = now_utc,
        rotate_bytes: int = ROTATE_BYTES,
        on_warning: Warn | None = None,
    ) -> None:
        self.path = Path(path)
        self.retention_days = retention_days
        self.rotate_bytes = rotate_bytes
        self.warnings: list[str] = []
        self._clock = clock
        self._on_warning = on_warning or _log.warning
        self._fd: int | None = None
        self._run_id: str | None = None
        self._mutex = threading.Lock()

    @property
    def run_id(self) -> str | None:
        return self._run_id

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        self._on_warning(message)

    def _open(self) -> int:
        if self._fd is None:
            self.path.parent.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            now = _utc(self._clock())
            if _needs_prune(self.path, self.retention_days, now):
                prune(self.path, self.retention_days, now)
            self._rotate_if_large()
            self._fd = _open_append(self.path, self._warn)
        return self._fd

    def _rotate_if_large(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size > self.rotate_bytes:
            older = rotated_path(self.path)
            os.replace(self.path, older)
            os.chmod(older, _FILE_MODE)

    def _write(self, event: dict[str, Any]) -> None:
        line = (json.dumps(event, ensure_ascii=False, default=str, separators=(",", ":")) + "\n").encode()
        with self._mutex:
            fd = self._open()
            written = 0
            while written < len(line):
                written += os.write(fd, line[written:])

    def _stamp(self, event_name: str) -> dict[str, Any]:
        if self._run_id is None:
            raise RuntimeError("Journal.start_run must be called before writing events")
        return {"time": format_time(self._clock()), "run": self._run_id, "event": event_name}

    def start_run(self, run_id: str, config_path: str, dry_run: bool) -> None:
        self._run_id = run_id
        self._write({**self._stamp("run.start"), "config": config_path, "dry_run": dry_run})

    def change(
        self,
        *,
        op: str,
        key: str,
        group: str | None,
        object_id: str | None,
        user: str | None,
        result: str,
        error: str | None = None,
        **extra: Any,
    ) -> None:
        """One line per affected user (call once per user of a membership change)."""
        event: dict[str, Any] = {
            **self._stamp("change"),
            "op": op,
            "key": key,
            "group": group,
            "object_id": object_id,
            "user": user,
            "result": result,
        }
        if error is not None:
            event["error"] = error
        for name, value in extra.items():
            event.setdefault(name, value)
        self._write(event)

    def event(self, name: str, *, run: str | None = None, **fields: Any) -> None:
        """Another event line: intents and their settling (`intents.py`). `run` files it under an
        earlier run, e.g. a change found made after that run was interrupted."""
        event = self._stamp(name)
        if run is not None:
            event["run"] = run
        for key, value in fields.items():
            event.setdefault(key, value)
        self._write(event)

    def end_run(
        self,
        status: str,
        summary: dict[str, int],
        warnings: list[str] | None = None,
        *,
        written: int | None = None,
    ) -> None:
        """The run.end line; `written` is how many changes reached Entra (0 for a refused run)."""
        if status not in RUN_STATUSES:
            raise ValueError(f"run status must be one of {', '.join(RUN_STATUSES)}, not {status!r}")
        event: dict[str, Any] = {**self._stamp("run.end"), "status": status, "summary": dict(summary)}
        if written is not None:
            event["written"] = written
        if warnings:
            event["warnings"] = list(warnings)
        self._write(event)
        self._sync()
        self._run_id = None

    def _sync(self) -> None:
        with self._mutex:
            if self._fd is not None:
                os.fsync(self._fd)

    def close(self) -> None:
        with self._mutex:
            if self._fd is not None:
                try:
                    os.fsync(self._fd)
                finally:
                    os.close(self._fd)
                    self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            # A run cut short still gets its end line, so `smartsync log` never shows a run without outcome.
            if self._run_id is not None and exc_type is not None:
                self.end_run("failed", {}, [f"run stopped by {exc_type.__name__}"])
        finally:
            self.close()


def _first_line_time(path: Path) -> tuple[bool, datetime | None]:
    """(file has content, time of its first line or None when that line is unreadable)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(_FIRST_LINE_LIMIT)
    except FileNotFoundError:
        return False, None
    if not first:
        return False, None
    try:
        event = json.loads(first)
    except ValueError:
        # An intent line can outgrow the limit; every line starts with its time, so read that.
        stamp = _LEADING_TIME.match(first)
        return True, _parse_line_time({"time": stamp.group(1).decode()}) if stamp else None
    return True, _parse_line_time(event) if isinstance(event, dict) else None


def _needs_prune(path: Path, retention_days: int, now: datetime) -> bool:
    # The extra day makes pruning happen at most about once a day instead of on every run.
    has_content, first = _first_line_time(path)
    if not has_content:
        return False
    return first is None or first < now - timedelta(days=retention_days + 1)


def prune(path: Path, retention_days: int, now: datetime) -> int:
    """Drop lines older than `retention_days`; return how many were dropped.

    Unreadable lines before the first kept line go with the old ones. The file is rewritten to a
    temporary file in the same folder and moved into place, so a crash leaves either the old or
    the new journal, never half of one.
    """
    cutoff = _utc(now) - timedelta(days=retention_days)
    if not path.exists():
        return 0
    kept: list[bytes] = []
    dropped = 0
    with open(path, "rb") as handle:
        for raw in handle:
            if kept:
                kept.append(raw)
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                dropped += 1
                continue
            moment = _parse_line_time(event) if isinstance(event, dict) else None
            if moment is None or moment < cutoff:
                dropped += 1
            else:
                kept.append(raw)
    if not dropped:
        return 0
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as out:
            out.writelines(kept)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dropped


_RELATIVE = re.compile(r"^\s*(\d+)\s*([mdhw])\s*$", re.IGNORECASE)


def parse_when(text: str, now: datetime | None = None) -> date | datetime:
    """A date (`2026-11-26`), a date-time (`2026-11-26T04:00`, `2026-11-26 04:00:02Z`), or an age
    (`10m` minutes, `12h`, `7d`, `2w`, counted back from now). Raises ValueError with the accepted forms."""
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = int(relative.group(1)), relative.group(2).lower()
        days = {"m": 1 / 1440, "h": 1 / 24, "d": 1.0, "w": 7.0}[unit]
        delta = timedelta(days=amount * days)
        return _utc(now or now_utc()) - delta
    value = text.strip()
    try:
        if len(value) == 10:
            return date.fromisoformat(value)
        return _utc(datetime.fromisoformat(value))
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date or time; "
            "use 2026-11-26, 2026-11-26T04:00, 2026-11-26T04:00:02Z or an age like 10m, 12h, 7d, 2w "
            "(m is minutes)"
        ) from None


def _lower_bound(value: date | datetime) -> datetime:
    if isinstance(value, datetime):
        return _utc(value)
    return datetime.combine(value, time.min, tzinfo=UTC)


def _upper_bound(value: date | datetime) -> datetime:
    """A bare date means "to the end of that day", the way a person reads `--until 2026-11-26`."""
    if isinstance(value, datetime):
        return _utc(value)
    return datetime.combine(value, time.min, tzinfo=UTC) + timedelta(days=1)


def _iter_file(path: Path, warn: Warn) -> Iterator[dict[str, Any]]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the `with` below; the open errors need their own message
    except FileNotFoundError:
        return
    except PermissionError:
        raise SmartsyncError(
            f"Cannot read the journal {path}: permission denied (it is mode 600 on purpose). "
            "Run `smartsync log` as the user that runs the sync, e.g. `sudo -u smartsync smartsync log`."
        ) from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                event = json.loads(raw)
            except ValueError:
                warn(f"{path}:{number}: skipped an unreadable line (probably a run cut off while writing)")
                continue
            if not isinstance(event, dict) or _parse_line_time(event) is None:
                warn(f"{path}:{number}: skipped a line without a valid time")
                continue
            yield event


def _matches_group(event: dict[str, Any], wanted: str) -> bool:
    needle = wanted.casefold()
    name = event.get("group")
    key = event.get("key")
    return (isinstance(name, str) and needle in name.casefold()) or (
        isinstance(key, str) and key.casefold() == needle
    )


def read_events(
    path: Path,
    *,
    since: date | datetime | None = None,
    until: date | datetime | None = None,
    run: str | None = None,
    user: str | None = None,
    group: str | None = None,
    on_warning: Warn | None = None,
    intents: bool = False,
) -> list[dict[str, Any]]:
    """Events of the journal (and its rotated `.1`), oldest first, filtered.

    `since` is inclusive, `until` exclusive for date-times and the whole day for a bare date.
    `run` matches a run id or its prefix. `user` matches the sign-in address case-insensitively;
    `group` a part of the display name or the whole key. With `user` or `group`, the run.start and
    run.end lines are kept only for runs that have a matching change, to show what those runs were.
    Damaged lines are skipped with a warning, never an exception. The `intent` bookkeeping lines
    (`intents.py`) are left out unless `intents` is set; the changes they settle are ordinary lines.
    """
    warn = on_warning or _log.warning
    lower = _lower_bound(since) if since is not None else None
    upper = _upper_bound(until) if until is not None else None
    wanted_user = user.casefold() if user else None

    selected: list[dict[str, Any]] = []
    for source in (rotated_path(Path(path)), Path(path)):
        for event in _iter_file(source, warn):
            moment = _parse_line_time(event)
            assert moment is not None  # _iter_file drops lines without a time
            if lower is not None and moment < lower:
                continue
            if upper is not None and moment >= upper:
                continue
            if run and not str(event.get("run", "")).startswith(run):
                continue
            if not intents and str(event.get("event", "")).startswith("intent"):
                continue
            selected.append(event)

    if not (wanted_user or group):
        return selected

    def change_matches(event: dict[str, Any]) -> bool:
        if event.get("event") != "change":
            return False
        if wanted_user and str(event.get("user") or "").casefold() != wanted_user:
            return False
        return not (group and not _matches_group(event, group))

    runs_with_match = {event.get("run") for event in selected if change_matches(event)}
    return [
        event
        for event in selected
        if change_matches(event) or (event.get("event") != "change" and event.get("run") in runs_with_match)
    ]


LOG_COLUMNS = ("TIME", "RUN", "OP", "KEY", "GROUP", "ROLE", "USER", "RESULT")


def role_of(event: Mapping[str, Any]) -> str:
    """`owner` or `member` for a change line about a person (older lines carry no `role` field)."""
    role = event.get("role")
    if isinstance(role, str):
        return role
    if not event.get("user"):
        return ""
    return "owner" if ".owners." in str(event.get("op", "")) else "member"


def _counts(summary: Any) -> str:
    if not isinstance(summary, dict):
        return ""
    return ", ".join(f"{name}={count}" for name, count in summary.items() if count)


def _row(event: dict[str, Any]) -> tuple[str, ...]:
    kind = event.get("event")
    stamp, run = str(event.get("time", "")), str(event.get("run", ""))
    if kind == "run.start":
        detail = f"config {event.get('config', '?')}"
        return (
            stamp,
            run,
            "run.start",
            "",
            "",
            "",
            "",
            ("dry run, " if event.get("dry_run") else "") + detail,
        )
    if kind == "run.end":
        counts = _counts(event.get("summary")) or "no changes"
        warnings = event.get("warnings") or []
        if warnings:
            counts += f"; {len(warnings)} warning{'s' if len(warnings) != 1 else ''}"
        return (stamp, run, "run.end", "", "", "", "", f"{event.get('status', '?')}: {counts}")
    result = str(event.get("result", ""))
    if event.get("reconciled") == "applied":
        result += (
            f": found made by run {event.get('reconciled_by', '?')} (this run stopped or lost the answer)"
        )
    elif event.get("error"):
        result += f": {event['error']}"
    key, group = str(event.get("key") or ""), str(event.get("group") or "")
    user = str(event.get("user") or "")
    return (stamp, run, str(event.get("op", kind)), key, group, role_of(event), user, result)


def format_log_table(events: list[dict[str, Any]]) -> list[str]:
    """Plain-text columns for `smartsync log`: one row per event, run.start/run.end rows framing each run."""
    rows = [LOG_COLUMNS, *(_row(event) for event in events)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(LOG_COLUMNS) - 1)]
    return [
        "  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
        for row in rows
    ]


__all__ = [
    "ROTATE_BYTES",
    "Journal",
    "format_log_table",
    "format_time",
    "new_run_id",
    "now_utc",
    "parse_when",
    "prune",
    "read_events",
    "role_of",
    "rotated_path",
]
