"""The HTML page of a plan, a run or journal lines: one self-contained file to review before a big run.

Rendered with Jinja2 from the templates in `smartsync/report/templates/`, autoescaped, so a class or a
person named `<script>` is shown as text. The page has no external assets and reads completely
without JavaScript; a few lines of script (whose hash is the only one the page's Content Security
Policy allows) filter the tables by school, year group, kind and person. Files are written mode
0600: they list pupils and staff.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined

from smartsync import __version__
from smartsync.engine.run import RunResult
from smartsync.journal import role_of
from smartsync.report.model import ObjectReport, PersonRef, RunReport, build, count, kind_heading
from smartsync.report.words import describe, last_line, sign

_FILE_MODE = 0o600
PAGE_SUFFIX = ".html"
# People named in an object's row; the person filter still searches all of them. A trust's first
# run would otherwise repeat 400,000 memberships in the page.
MAX_PEOPLE_LISTED = 40


def _people_list(people: list[PersonRef]) -> str:
    """`Amy Pupil (amy.p), Ben O'Brien (ben.o)`: the name and the address without its domain."""
    return ", ".join(f"{p.name} ({p.short})" if p.name else p.short for p in people)


def _person_index(obj: ObjectReport) -> str:
    """Every address and name of the object's people, for the person filter (one attribute)."""
    return " ".join(f"{p.address} {p.name}" if p.name else p.address for p in obj.people)


@cache
def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("smartsync.report", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.globals.update(
        count=count,
        describe=describe,
        sign=sign,
        person_index=_person_index,
        people_list=_people_list,
        max_people=MAX_PEOPLE_LISTED,
        version=__version__,
    )
    return env


@cache
def _script() -> tuple[str, str]:
    """The filter script and its CSP source expression (`'sha256-…'`)."""
    text = resources.files("smartsync.report").joinpath("templates/filter.js").read_text(encoding="utf-8")
    digest = base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode()
    return text, f"sha256-{digest}"


def _render(template: str, **values: Any) -> str:
    script, digest = _script()
    return _environment().get_template(template).render(script=script, script_hash=digest, **values)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")


def render_report_page(
    report: RunReport, *, school: str = "", members_of: Mapping[str, Any] | None = None, generated: str = ""
) -> str:
    filters = [
        ("school", "School", report.schools),
        ("year", "Year group", report.years),
        ("kind", "Kind", [kind_heading(k) for k in report.kinds]),
    ]
    if len(report.schools) < 2:
        filters = filters[1:]
    return _render(
        "report.html.j2",
        report=report,
        school=school or ", ".join(report.schools) or "smartsync",
        last_line=last_line(report),
        filters=filters,
        members_of=members_of or {},
        generated=generated,
    )


def render_result_page(result: RunResult, *, school: str = "", generated: str | None = None) -> str:
    """The page of a plan or a run; `generated` defaults to now (tests pass "" for a stable page)."""
    facts: Mapping[str, Mapping[str, str]] = result.plan.extra.get("objects", {})
    members = {key: fact["members"] for key, fact in facts.items() if "members" in fact}
    return render_report_page(
        build(result), school=school, members_of=members, generated=_now() if generated is None else generated
    )


def _log_rows(events: Iterable[Mapping[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    runs: dict[str, dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    for event in events:
        run = str(event.get("run", ""))
        kind = event.get("event")
        entry = runs.setdefault(run, {"id": run, "start": "", "status": "", "counts": "", "warnings": 0})
        if kind == "run.start":
            entry["start"] = event.get("time", "")
        elif kind == "run.end":
            entry["status"] = event.get("status", "")
            summary = event.get("summary")
            if isinstance(summary, dict):
                entry["counts"] = ", ".join(f"{k}={v}" for k, v in summary.items() if v) or "no changes"
            entry["warnings"] = len(event.get("warnings") or [])
        elif kind == "change":
            rows.append(
                {
                    "time": event.get("time", ""),
                    "run": run,
                    "op": event.get("op", ""),
                    "key": event.get("key") or "",
                    "group": event.get("group") or "",
                    "role": role_of(event),
                    "user": event.get("user") or "",
                    "result": event.get("result", ""),
                    "error": event.get("error") or "",
                }
            )
    return list(runs.values()), rows


def render_log_page(
    events: list[dict[str, Any]], *, selection: str = "", generated: str | None = None
) -> str:
    """`smartsync log --html`: the selected journal lines, with the same columns as the table."""
    runs, rows = _log_rows(events)
    filters = [
        ("run", "Run", sorted({r["run"] for r in rows})),
        ("op", "Change", sorted({r["op"] for r in rows})),
        ("result", "Result", sorted({r["result"] for r in rows})),
    ]
    return _render(
        "log.html.j2",
        events=events,
        runs=runs,
        rows=rows,
        changes=len(rows),
        filters=filters,
        selection=selection,
        generated=_now() if generated is None else generated,
    )


def write_page(path: Path, html: str) -> Path:
    """Write `html` to `path`, mode 0600 from the first byte, replacing the file whole."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(html)
        os.chmod(tmp, _FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def run_page_path(journal_path: Path, run_id: str) -> Path:
    """Where `journal.html_reports` puts a run's page: `reports/<run id>.html` next to the journal."""
    return Path(journal_path).parent / "reports" / f"{run_id}{PAGE_SUFFIX}"


def write_run_page(journal_path: Path, result: RunResult, retention_days: int, *, school: str = "") -> Path:
    """Write this run's page next to the journal and drop pages older than the journal keeps lines."""
    path = run_page_path(journal_path, result.run_id)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    prune_pages(path.parent, retention_days)
    return write_page(path, render_result_page(result, school=school))


def prune_pages(folder: Path, retention_days: int, now: datetime | None = None) -> int:
    """Delete run pages older than `retention_days` (by modification time); return how many."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=retention_days)
    dropped = 0
    for page in Path(folder).glob(f"*{PAGE_SUFFIX}"):
        try:
            if datetime.fromtimestamp(page.stat().st_mtime, UTC) < cutoff:
                page.unlink()
                dropped += 1
        except FileNotFoundError:
            continue
    return dropped


__all__ = [
    "prune_pages",
    "render_log_page",
    "render_report_page",
    "render_result_page",
    "run_page_path",
    "write_page",
    "write_run_page",
]
