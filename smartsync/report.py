"""The change report: the only module that imports rich.

On a terminal it prints coloured tables and shows progress during long phases; when stdout is not
a terminal (cron mail, a log file) the same report comes out as plain text without colour or
progress bars.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from smartsync.plan import Change
from smartsync.sync import RunResult

MAX_USERS_SHOWN = 6

_SUMMARY_ROWS = (
    ("Groups", ("groups_created", "groups_updated", "groups_deleted")),
    ("Group members", ("members_added", None, "members_removed")),
    ("Group owners", ("owners_added", None, "owners_removed")),
    ("Admin units", ("admin_units_created", "admin_units_updated", "admin_units_deleted")),
    ("Admin unit members", ("admin_unit_members_added", None, "admin_unit_members_removed")),
    ("Teams", ("teams_created", None, "teams_archived")),
)


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


def _mark(op: str) -> tuple[str, str]:
    if op.endswith(".add") or op.endswith(".create"):
        return "+", "green"
    if op.endswith(".remove") or op.endswith(".delete") or op.endswith(".archive"):
        return "-", "red"
    return "~", "yellow"


def _users(change: Change) -> str:
    names = [f"{u.address} (owner)" for u in change.owners] + [u.address for u in change.users]
    if len(names) > MAX_USERS_SHOWN:
        return ", ".join(names[:MAX_USERS_SHOWN]) + f", … and {len(names) - MAX_USERS_SHOWN} more"
    return ", ".join(names)


def _describe(change: Change) -> str:
    verb = {
        "group.create": "create group",
        "group.update": "update group",
        "group.delete": "delete group",
        "group.restore": "restore deleted group",
        "group.purge": "purge deleted group",
        "group.members.add": "add members",
        "group.members.remove": "remove members",
        "group.owners.add": "add owners",
        "group.owners.remove": "remove owners",
        "admin_unit.create": "create admin unit",
        "admin_unit.update": "update admin unit",
        "admin_unit.delete": "delete admin unit",
        "admin_unit.members.add": "add members",
        "admin_unit.members.remove": "remove members",
        "team.create": "create team",
        "team.archive": "archive team",
    }.get(change.op, change.op)
    if change.set_fields:
        verb += " " + ", ".join(f"{k} → {v!r}" for k, v in change.set_fields)
    elif change.op == "group.create" and change.group is not None:
        kind = "education class" if change.group.education_class else change.group.type
        verb = f"create {kind} group"
    elif change.op == "team.create" and change.template:
        verb += f" (template {change.template})"
    people = _users(change)
    count = len(change.users) + len(change.owners)
    return f"{verb} ({count}): {people}" if people else verb


def _describe_many(changes: list[Change]) -> str:
    if len(changes) == 1:
        return _describe(changes[0])
    merged = Change(
        changes[0].op,
        changes[0].key,
        users=tuple(u for c in changes for u in c.users),
        owners=tuple(u for c in changes for u in c.owners),
    )
    return _describe(merged)


def render(
    console: Console,
    result: RunResult,
    *,
    title: str | None = None,
    verbose: bool = False,
    quiet: bool = False,
) -> None:
    """The report: summary table, changes per object, warnings, failures, and the verdict.

    `quiet` leaves out the per-object changes and lists warnings only by count (cron mail that is
    read only when something went wrong); `verbose` lists every warning.
    """
    heading = title or ("Plan (dry run: nothing written)" if result.dry_run else "Sync run")
    console.print(f"[bold]{heading}[/bold]" + (f"  run {result.run_id}" if result.run_id else ""))

    summary = result.summary()
    table = Table(box=box.SIMPLE if console.is_terminal else box.ASCII, show_edge=False)
    table.add_column("")
    for col in ("created / added", "updated", "deleted / removed"):
        table.add_column(col, justify="right")
    for label, keys in _SUMMARY_ROWS:
        cells = [str(summary.get(k, 0)) if k else "" for k in keys]
        table.add_row(label, *cells)
    console.print(table)

    outcomes = result.outcomes
    by_object: dict[str, list[int]] = {}
    for index, change in enumerate(result.plan.changes):
        if not quiet:
            by_object.setdefault(change.name or change.key, []).append(index)
    if by_object:
        console.print("[bold]Changes[/bold]")
    for name, indexes in by_object.items():
        key = result.plan.changes[indexes[0]].key
        console.print(f"  [bold]{name}[/bold] [dim]({key})[/dim]", markup=True, highlight=False)
        # One line per kind of change: a group's 20-at-a-time additions read as one list.
        merged: dict[str, list[int]] = {}
        for index in indexes:
            merged.setdefault(result.plan.changes[index].op, []).append(index)
        for op, group in merged.items():
            changes = [result.plan.changes[i] for i in group]
            sign, colour = _mark(op)
            status = ""
            if outcomes is not None:
                bad = [outcomes[i].result for i in group if outcomes[i].result != "ok"]
                if bad:
                    status = f" [red][{len(bad)} {bad[0]}][/red]"
            console.print(f"    [{colour}]{sign}[/{colour}] {_describe_many(changes)}{status}", markup=True)
    if not result.plan.changes:
        console.print("No changes: Entra already matches the roster.")

    notices = result.plan.notices
    if quiet and (notices or result.warnings):
        count = len(notices) + len(result.warnings)
        plural = "s" if count != 1 else ""
        console.print(f"{count} warning{plural} (run without -q, or `smartsync plan`, to see them)")
    elif notices or result.warnings:
        console.print(f"[bold yellow]Warnings ({len(notices) + len(result.warnings)})[/bold yellow]")
        shown = notices if verbose else notices[:25]
        for notice in shown:
            extra = f" [roster id {notice.roster_id}]" if notice.roster_id else ""
            console.print(f"  ! {notice.message}{extra}", markup=False)
        if len(notices) > len(shown):
            console.print(f"  … and {len(notices) - len(shown)} more (use -v or --json to see all)")
        for warning in result.warnings:
            console.print(f"  ! {warning}", markup=False)

    if result.failed:
        console.print(f"[bold red]Failures ({len(result.failed)})[/bold red]")
        for outcome in result.failed:
            label = outcome.change.name or outcome.change.key
            console.print(f"  x {outcome.change.op} {label}: {outcome.error}", markup=False)

    if result.refused is not None:
        style = "yellow" if result.forced else "bold red"
        prefix = "Forced past safety limit" if result.forced else "Refused"
        console.print(f"[{style}]{prefix}:[/{style}] {result.refused.message}", markup=True)
    elif result.dry_run and result.plan.changes:
        console.print("Dry run: nothing was written. Apply with `smartsync run`.")
    elif outcomes is not None:
        done = sum(1 for o in outcomes if o.result == "ok")
        console.print(f"Applied {done} of {len(outcomes)} changes; status {result.status}.")
