"""The change report: the only module that imports rich.

It renders the report model (`report_model.py`): one line per managed object in the school's
words, carrying the object's key, grouped by school, kind and year group. A refused, partial or
failed run says so on its first line, with the next step, and lists its failures before anything
else. On a terminal it prints coloured tables and shows progress during long phases; when stdout is
not a terminal (cron mail, a log file) the same report comes out as plain text without colour or
progress bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartsync.engine.run import RunResult
from smartsync.report.model import KindRow, RunReport, Totals, build, count
from smartsync.report.words import describe, failure_lines, last_line, sign

# More objects than this and the report shows the counts per kind instead of every object.
MAX_OBJECTS_SHOWN = 60
MAX_WARNINGS_SHOWN = 25
COLOURS = {"+": "green", "−": "red", "~": "yellow"}


def make_console(stream: TextIO | None = None, *, quiet: bool = False) -> Console:
    out = stream or sys.stdout
    terminal = out.isatty()
    return Console(
        file=out,
        force_terminal=terminal,
        no_color=not terminal,
        highlight=False,
        soft_wrap=not terminal,
        quiet=False,
        width=None if terminal else 110,
    )


@contextmanager
def progress_reporter(console: Console) -> Iterator[Callable[[str, int, int], None] | None]:
    """A progress callback on a terminal; None (no output at all) otherwise."""
    if not console.is_terminal:
        yield None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(label: str, done: int, total: int) -> None:
            if label not in tasks:
                tasks[label] = bar.add_task(label, total=total)
            bar.update(tasks[label], completed=done, total=total)

        yield update


# -- the whole report ---------------------------------------------------------------------------------


def _first_line(report: RunReport) -> str | None:
    """Refusal and failure first: the word, the numbers, the next step."""
    if report.status == "refused":
        return f"[bold red]Refused:[/bold red] {escape(report.refused_limit or '')} — nothing was written"
    failed = report.totals.failed
    if report.status == "failed":
        return (
            f"[bold red]Failed:[/bold red] none of the {count(failed, 'change')} was applied. Next: read the "
            "failures below, fix their cause, and run again (a rerun applies what is left)."
        )
    if report.status == "partial":
        return (
            f"[bold red]Partly applied:[/bold red] {count(failed, 'change')} failed, the rest was applied. "
            "Next: read the failures below; the next run retries them"
            + (f" (`smartsync log --run {report.run_id}` lists every change)." if report.run_id else ".")
        )
    return None


def _summary_table(console: Console, totals: Totals) -> None:
    table = Table(box=box.SIMPLE if console.is_terminal else box.ASCII, show_edge=False)
    table.add_column("", no_wrap=True)
    for col in ("created / added", "changed", "deleted / removed"):
        table.add_column(col, justify="right")
    rows: list[tuple[str, int, int | None, int]] = [
        ("Groups", totals.groups_created, totals.groups_changed, totals.groups_deleted),
        ("Group members", totals.members_added, None, totals.members_removed),
        ("Group owners", totals.owners_added, None, totals.owners_removed),
        ("Admin units", totals.units_created, totals.units_changed, totals.units_deleted),
        ("Admin unit members", totals.unit_members_added, None, totals.unit_members_removed),
        ("Teams (made / archived)", totals.teams_created, None, totals.teams_archived),
    ]
    if totals.accounts:  # sync.users; disabled and enabled count as changed
        changed = totals.accounts_updated + totals.accounts_disabled + totals.accounts_enabled
        rows.append(("Accounts", totals.accounts_created, changed, totals.accounts_deleted))
    for label, *cells in rows:
        table.add_row(label, *("" if c is None else f"{c:,}" for c in cells))
    console.print(table)


def _kind_table(console: Console, title: str, rows: list[KindRow]) -> None:
    table = Table(title=title, box=box.SIMPLE if console.is_terminal else box.ASCII, show_edge=False)
    # Short headers, so that the table fits an 80-column terminal.
    for col in ("", "objects", "new", "changed", "removed", "+members", "−members"):
        table.add_column(col, justify="left" if not col else "right", no_wrap=not col)
    for row in rows:
        table.add_row(
            escape(row.label),
            *(f"{n:,}" for n in (row.objects, row.new, row.changed, row.removed)),
            f"{row.added_people:,}",
            f"{row.removed_people:,}",
        )
    console.print(table)


def render(
    console: Console,
    result: RunResult,
    *,
    title: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
    html_hint: str | None = None,
) -> None:
    """The report of a plan or run (see `render_report`)."""
    render_report(console, build(result, title=title), verbose=verbose, quiet=quiet, html_hint=html_hint)


def render_report(
    console: Console,
    report: RunReport,
    *,
    verbose: bool = False,
    quiet: bool = False,
    html_hint: str | None = None,
) -> None:
    """Verdict first; then the summary, failures, the changes per object, warnings and the last line.

    `quiet` leaves out the per-object changes and lists warnings only by count (cron mail that is
    read only when something went wrong); `verbose` lists every object, person and warning.
    `html_hint` names the HTML page written for this run, if any.
    """
    first = _first_line(report)
    if first is not None:
        console.print(first)
        if report.status == "refused" and report.refused_message:
            console.print(f"  {report.refused_message}", markup=False)
    console.print(
        f"[bold]{escape(report.title)}[/bold]" + (f"  run {report.run_id}" if report.run_id else "")
    )
    if report.forced and report.refused_message:
        console.print(f"[yellow]Forced past safety limit:[/yellow] {escape(report.refused_message)}")
    _summary_table(console, report.totals)
    if report.left_alone:
        console.print(f"Left alone: {report.left_alone}.", markup=False)

    failed = report.failed_objects
    if failed:
        console.print(f"[bold red]Failures ({sum(len(o.failures) for o in failed)})[/bold red]")
        for obj in failed:
            for line in failure_lines(obj):
                console.print(f"  x {line}", markup=False)

    if not quiet:
        _changes(console, report, verbose=verbose, html_hint=html_hint)
    if not report.objects:
        console.print("No changes: Entra already matches the roster.")

    _warnings(console, report, verbose=verbose, quiet=quiet)
    if report.objects:
        console.print(last_line(report), markup=False)
    if report.handout:
        console.print(f"New accounts' initial passwords: {report.handout}.", markup=False)
    if html_hint:
        console.print(f"The whole report, to filter by year, kind or person: {html_hint}", markup=False)


def _changes(console: Console, report: RunReport, *, verbose: bool, html_hint: str | None) -> None:
    objects = report.objects
    if not objects:
        return
    if len(objects) > MAX_OBJECTS_SHOWN and not verbose:
        _kind_table(console, "Objects per kind", report.per_kind())
        where = (
            f"the page {html_hint} has them all"
            if html_hint
            else "`--html FILE` writes a page to review them"
        )
        console.print(
            f"{count(len(objects), 'object')} to list, too many for here: `-v` (`--verbose`) lists "
            f"each one, and {where}.",
            markup=False,
        )
        return
    heading = {"refused": "Changes it would have made", "planned": "Changes it would make"}
    console.print(f"[bold]{heading.get(report.status, 'Changes')}[/bold]")
    several_schools = len(report.schools) > 1
    school = kind = year = None
    for obj in objects:
        if several_schools and obj.school != school:
            school, kind, year = obj.school, None, None
            console.print(f"[bold]School {escape(obj.school)}[/bold]")
        if obj.kind_heading != kind:
            kind, year = obj.kind_heading, None
            console.print(f"  [bold]{escape(kind)}[/bold]")
        if obj.year != year:
            year = obj.year
            console.print(f"    {escape(year)}")
        mark = sign(obj)
        status = {"failed": " [failed]", "partial": " [partly failed]", "skipped": " [skipped]"}.get(
            obj.status, ""
        )
        colour = COLOURS[mark]
        console.print(
            f"      [{colour}]{mark}[/{colour}] {escape(describe(obj, verbose=verbose))}"
            + (f"[red]{escape(status)}[/red]" if status else "")
        )


def _warnings(console: Console, report: RunReport, *, verbose: bool, quiet: bool) -> None:
    if not quiet:
        for note in report.notes:
            console.print(f"Note: {note}", markup=False)
    warnings = report.warnings
    if not warnings:
        return
    if quiet:
        plural = "s" if len(warnings) != 1 else ""
        console.print(f"{len(warnings)} warning{plural} (run without -q, or `smartsync plan`, to see them)")
        return
    console.print(f"[bold yellow]Warnings ({len(warnings)})[/bold yellow]")
    shown = warnings if verbose else warnings[:MAX_WARNINGS_SHOWN]
    for warning in shown:
        extra = f" [roster id {warning.roster_id}]" if warning.roster_id else ""
        console.print(f"  ! {warning.message}{extra}", markup=False)
    if len(warnings) > len(shown):
        console.print(f"  … and {len(warnings) - len(shown)} more (use -v or --json to see all)")


__all__ = ["describe", "last_line", "make_console", "progress_reporter", "render", "render_report"]
