"""The command line (DESIGN §2): the only module that imports click.

Each command parses its options, calls into the pipeline and prints what it returns. One handler,
`_handle_errors`, maps smartsync's typed errors to a message on stderr and the exit code of
DESIGN §2, so a user never sees a traceback for something they can fix.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from smartsync import __version__
from smartsync.config import Config, load_config, resolve_config_path
from smartsync.errors import (
    EXIT_INPUT,
    EXIT_PARTIAL,
    InputDataError,
    LockHeldError,
    Problem,
    SmartsyncError,
)
from smartsync.graph import GraphError

EXIT_CODES_HELP = """\b
Exit codes:
  0  success (changes applied, or none needed)
  1  the run finished but some changes failed
  2  usage, config or input-data error: nothing was written
  3  authentication or permission error: nothing was written
  4  refused by a safety limit: nothing was written (review, then --force)
  5  another run holds the lock
"""

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Context:
    config_path: str | None
    verbose: bool
    quiet: bool

    def load(self, as_json: bool = False, *, signs_in: bool = True) -> tuple[Config, Path]:
        path = resolve_config_path(self.config_path)
        config, warnings = load_config(path, signs_in=signs_in)
        for warning in warnings:
            self.warn(warning, as_json)
        return config, path

    def warn(self, message: str, as_json: bool = False) -> None:
        # Warnings belong to the report on stdout, so stderr (cron's MAILTO) holds only errors and
        # the failure summary; with --json, stdout is the document, so they go to stderr instead.
        click.echo(f"warning: {message}", err=as_json)


def _handle_errors(func: F) -> F:
    """Map smartsync errors to a message and an exit code; keep tracebacks for real bugs only."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except InputDataError as exc:
            click.echo(f"error: {exc}", err=True)
            for problem in exc.problems:
                click.echo(f"  {problem}", err=True)
            sys.exit(exc.exit_code)
        except SmartsyncError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except GraphError as exc:
            # Retries are exhausted (Graph or the network is down): whatever was applied is in the
            # journal, and the next run picks up the rest.
            click.echo(
                f"error: Microsoft Graph did not answer as expected: {exc}. The run stopped; changes already "
                "applied are in the journal and the next run continues from there.",
                err=True,
            )
            sys.exit(EXIT_PARTIAL)
        except KeyboardInterrupt:
            click.echo("interrupted: the next run picks up where this one stopped.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


_GLOBAL_FLAGS = frozenset({"-v", "--verbose", "-q", "--quiet"})


def _command_start(args: list[str]) -> int:
    """The index of the command: the first token that is neither a global option nor its value."""
    index = 0
    while index < len(args) and args[index].startswith("-") and args[index] != "--":
        index += 2 if args[index] == "--config" else 1
    return index


def _hoist_global_options(args: list[str]) -> list[str]:
    """Move --config/-v/-q given after the command (`smartsync plan --config x`) to before it."""
    index = _command_start(args)
    if index >= len(args):
        return list(args)
    moved: list[str] = []
    kept: list[str] = []
    after = args[index + 1 :]
    position = 0
    while position < len(after):
        token = after[position]
        if token == "--":
            kept.extend(after[position:])
            break
        if token == "--config" and position + 1 < len(after):
            moved.extend(after[position : position + 2])
            position += 2
            continue
        (moved if token.startswith("--config=") or token in _GLOBAL_FLAGS else kept).append(token)
        position += 1
    return [*args[:index], *moved, args[index], *kept]


def _command_name(args: list[str]) -> str:
    hoisted = _hoist_global_options(args)
    words = hoisted[_command_start(hoisted) :][:2]
    if words[:1] == ["simulator"] and len(words) == 2 and not words[1].startswith("-"):
        return " ".join(words)
    return " ".join(word for word in words[:1] if not word.startswith("-"))


class _SmartsyncGroup(click.Group):
    """Global options work after the command too, and every non-zero exit ends with a summary."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, _hoist_global_options(args))

    def main(self, args: Any = None, *more: Any, **kwargs: Any) -> Any:
        from smartsync.failure import summary

        try:
            return super().main(args, *more, **kwargs)
        except SystemExit as exc:
            if isinstance(exc.code, int) and exc.code != 0:
                argv = list(sys.argv[1:] if args is None else args)
                for line in summary(_command_name(argv), exc.code):
                    click.echo(line, err=True)
            raise


@click.group(cls=_SmartsyncGroup, epilog=EXIT_CODES_HELP)
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    help="Config file (default: $SMARTSYNC_CONFIG, ./smartsync.yaml, /etc/smartsync/config.yaml).",
)
@click.option("-v", "--verbose", is_flag=True, help="Say more about what is happening.")
@click.option("-q", "--quiet", is_flag=True, help="Print only warnings, errors and the summary.")
@click.version_option(__version__, prog_name="smartsync")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, verbose: bool, quiet: bool) -> None:
    """Sync a school's Realsmart roster into Microsoft Entra ID groups, admin units and Teams.

    \b
    Example:
      smartsync --config /etc/smartsync/config.yaml plan
      smartsync --config /etc/smartsync/config.yaml run
    """
    ctx.obj = Context(config_path=config_path, verbose=verbose, quiet=quiet)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the counts and problems as JSON.")
@click.option(
    "--source",
    "source_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Check this export (folder, .zip or .json) instead of the config's source; "
    "no config file is needed.",
)
@click.option(
    "--source-type",
    type=click.Choice(["realsmart-export", "oneroster-csv", "sds-csv"]),
    default="realsmart-export",
    show_default=True,
    help="The format of the --source export.",
)
@click.pass_obj
@_handle_errors
def validate(obj: Context, as_json: bool, source_path: Path | None, source_type: str) -> None:
    """Check the config and the roster source; never contacts Entra.

    Prints counts (learners, staff, groups per kind, memberships) and every problem found, with file,
    line and column. Exit 0 when valid, 2 when not.

    \b
    Example:
      smartsync --config smartsync.yaml validate
      smartsync --config smartsync.yaml validate --json
      smartsync validate --source /var/lib/smartsync/export.zip
      smartsync validate --source ./sds-files --source-type sds-csv
    """
    import json

    from smartsync.config import SourceConfig
    from smartsync.roster.model import Roster
    from smartsync.roster.sources import InvalidExportError, read_roster
    from smartsync.roster.validate import validate_roster

    config: Config | None = None
    if source_path is not None:
        source = SourceConfig.model_validate({"type": source_type, "path": source_path})
        base_dir = None
    else:
        config, config_file = obj.load(as_json, signs_in=False)
        source, base_dir = config.source, config_file.parent
    failure: InputDataError | None = None
    try:
        roster = read_roster(source, base_dir=base_dir)
    except InvalidExportError as exc:
        roster, failure = exc.roster, exc
    except InputDataError as exc:
        roster, failure = Roster(), exc
    problems = failure.problems if failure else []
    if source_path is not None:  # there is no config to check: point at the option instead
        problems = [_about_option(problem) for problem in problems]
    summary = validate_roster(roster, config)
    if as_json:
        click.echo(json.dumps(summary.to_json(problems), indent=2, ensure_ascii=False))
    else:
        for line in summary.render_text(problems):
            click.echo(line)
    if config is not None:
        from smartsync.engine.schools import select_schools

        # What `run` would leave out of this export, or refuse, because of school.code / school.codes.
        schools = select_schools(roster, config.school)
        for notice in schools.notices:
            click.echo(f"note: {notice.message}", err=True)
        for code in schools.vanished:
            click.echo(f"warning: school {code} vanished from the export: `run` would refuse it.", err=True)
    if failure is not None:
        click.echo(f"error: {failure}", err=True)
        sys.exit(EXIT_INPUT)


def _about_option(problem: Problem) -> Problem:
    import dataclasses

    message = problem.message.replace("check source.path in the config", "check the path given to --source")
    return dataclasses.replace(problem, message=message)


# -- log: the change journal -------------------------------------------------------------------------


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> Any:
    from smartsync.journal import parse_when

    if value is None:
        return None
    try:
        return parse_when(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command("log")
@click.option(
    "--since", metavar="WHEN", callback=_when, help="From this date or time (UTC), or an age: 10m, 12h, 7d."
)
@click.option(
    "--until", metavar="WHEN", callback=_when, help="Up to this time, or to the end of this date (UTC)."
)
@click.option("--run", "run_id", metavar="ID", help="One run, by its id or the start of it (20261126).")
@click.option("--user", metavar="EMAIL", help="Changes for this sign-in address (any case).")
@click.option("--group", metavar="NAME", help="Changes of groups whose name contains NAME, or with key NAME.")
@click.option(
    "--journal",
    "journal_path",
    metavar="PATH",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Read this journal file instead of the one named by the config (no config needed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the matching events as a JSON array.")
@click.option(
    "--html",
    "html",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the matching lines as an HTML page (mode 600) with the same columns.",
)
@click.option(
    "--erase-user",
    metavar="EMAIL",
    help="Remove this person's change lines from the journal and mask the address in the rest "
    "(an erasure request; see docs/data-protection.md). Cannot be undone.",
)
@click.pass_obj
@_handle_errors
def log_command(
    obj: Context,
    since: Any,
    until: Any,
    run_id: str | None,
    user: str | None,
    group: str | None,
    journal_path: Path | None,
    as_json: bool,
    html: Path | None,
    erase_user: str | None,
) -> None:
    """Show the change journal: what changed, for whom, in which run.

    Reads journal.path from the config (and its rotated .1 file). Each run shows as a run.start line,
    its changes, and a run.end line with the status and counts. With --user or --group, only the
    runs that touched that person or group are shown. Times are UTC.

    A journal that does not exist yet (no run has written to it) prints a note and exits 0 with
    nothing to show; a journal whose folder does not exist is a wrong path and exits 2.

    \b
    Example: when did this pupil leave 9X/En2, and which run did it?
      smartsync log --user a.pupil@school.example --group 9X/En2
      smartsync log --since 2026-11-26 --until 2026-11-27
      smartsync log --run 20261126T040002Z-3f2a --json
      smartsync log --since 7d --html week.html
      smartsync log --erase-user a.pupil@school.example
    """
    import json

    from smartsync.errors import ConfigError
    from smartsync.journal import format_log_table, read_events, rotated_path

    if journal_path is None:
        journal = obj.load(as_json, signs_in=False)[0].journal
        path, lock_file = journal.path, journal.lock_file
    else:
        path, lock_file = journal_path, None
    if erase_user is not None:
        _erase(path, erase_user, lock_file, (since, until, run_id, user, group))
        return
    if not path.parent.is_dir():
        raise ConfigError(
            f"The journal folder {path.parent} does not exist, so there is no journal {path}. "
            "Check journal.path in the config, or pass the file with --journal PATH."
        )
    if not path.exists() and not rotated_path(path).exists():
        click.echo(f"No journal at {path} yet: no run has written to it.", err=True)
        if as_json:
            click.echo("[]")
        return

    def warn(message: str) -> None:
        obj.warn(message, as_json)

    events = read_events(path, since=since, until=until, run=run_id, user=user, group=group, on_warning=warn)
    if html is not None:
        from smartsync.report.html import render_log_page, write_page

        chosen = [
            f"{name} {value}" for name, value in (("--user", user), ("--group", group), ("--run", run_id))
        ]
        selection = ", ".join(c for c in chosen if not c.endswith(" None"))
        try:
            write_page(html, render_log_page(events, selection=selection))
        except OSError as exc:
            raise ConfigError(f"Cannot write the HTML page {html}: {exc.strerror or exc}.") from None
    if as_json:
        click.echo(json.dumps(events, indent=2, ensure_ascii=False))
        return
    if not events:
        click.echo(
            "No journal entries match."
            if any((since, until, run_id, user, group))
            else "The journal is empty."
        )
        return
    for line in format_log_table(events):
        click.echo(line)
    changes = sum(1 for event in events if event.get("event") == "change")
    runs = len({event.get("run") for event in events})
    if not obj.quiet:
        click.echo(
            f"\n{changes} change{'s' if changes != 1 else ''} in {runs} run{'s' if runs != 1 else ''}."
        )


def _erase(path: Path, address: str, lock_file: Path | None, filters: tuple[Any, ...]) -> None:
    from smartsync.erasure import erase_user
    from smartsync.errors import ConfigError
    from smartsync.lock import RunLock

    if not address.strip() or any(f is not None for f in filters):
        raise ConfigError(
            "--erase-user takes one sign-in address and no other filter; "
            "check what it will remove first with `smartsync log --user ADDRESS`."
        )
    if not path.exists() and not path.with_name(path.name + ".1").exists():
        raise ConfigError(f"There is no journal at {path}; give the file with --journal PATH.")
    # Hold the run lock: a run appending while the file is rewritten would lose its lines.
    with RunLock(lock_file or path.with_name(path.name + ".lock")):
        done = erase_user(path, address)
    click.echo(
        f"Erased {address.strip()} from {', '.join(map(str, done.files))}: {done.removed} change "
        f"line{'s' if done.removed != 1 else ''} removed, the address masked in {done.masked} other "
        f"line{'s' if done.masked != 1 else ''}. Copies elsewhere (backups, cron.log) are listed in "
        "docs/data-protection.md."
    )


# -- sync: run, plan, demo (owned by the sync engine) ---------------------------------------------

ONLY_CHOICES = ("groups", "admin-units", "teams", "accounts")


def _parse_only(value: str | None) -> tuple[str, ...] | None:
    if not value:
        return None
    items = tuple(v.strip() for v in value.split(",") if v.strip())
    bad = [v for v in items if v not in ONLY_CHOICES]
    if bad:
        raise click.BadParameter(
            f"{', '.join(bad)} not one of {', '.join(ONLY_CHOICES)}", param_hint="--only"
        )
    return items


def _html_pages(config: Config, result: Any, html: Path | None) -> str | None:
    """Write the HTML page(s) of this plan or run; the path to name in the report, or None."""
    from smartsync.report.html import render_result_page, write_page, write_run_page

    school = config.school.name or config.school.code
    shown: str | None = None
    try:
        if config.journal.html_reports and not result.dry_run:
            shown = str(
                write_run_page(config.journal.path, result, config.journal.retention_days, school=school)
            )
        if html is not None:
            shown = str(write_page(html, render_result_page(result, school=school)))
    except OSError as exc:
        click.echo(
            f"warning: the HTML page was not written: {exc.strerror or exc} ({exc.filename}).", err=True
        )
    return shown


HTML_OPTION = click.option(
    "--html",
    "html",
    metavar="FILE",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the report as one self-contained HTML page (mode 600) to review in a browser.",
)
VERBOSE_OPTION = click.option("-v", "--verbose", is_flag=True, help="List every object and person.")


def _sync(
    obj: Context,
    *,
    dry_run: bool,
    force: bool,
    as_json: bool,
    only: str | None,
    html: Path | None = None,
    verbose: bool = False,
) -> None:
    import json

    from smartsync.credentials import expiry_warnings, read_credentials
    from smartsync.engine.delta import DeltaReader
    from smartsync.engine.run import RunResult, run_sync
    from smartsync.graph import make_graph_client
    from smartsync.journal import Journal, new_run_id
    from smartsync.lock import RunLock
    from smartsync.notify import RunOutcome, notify
    from smartsync.preflight.results import load_results, record_refusal, results_path
    from smartsync.report.text import make_console, progress_reporter, render
    from smartsync.roster.sources import read_roster

    features = _parse_only(only)
    config, path = obj.load(as_json)
    roster = read_roster(config.source, base_dir=path.parent)
    console = make_console()
    run_id = new_run_id()
    expiring: list[str] = []
    page: list[str] = []
    learned_path = results_path(config)
    learned = load_results(
        learned_path, on_warning=lambda message: click.echo(f"warning: {message}", err=True)
    )

    def tell(status: str, message: str, summary: dict[str, int]) -> None:
        if dry_run:
            return
        school = config.school.name or config.school.code
        outcome = RunOutcome(status, school, summary, message, run_id, tuple(expiring), "".join(page[:1]))
        for warning in notify(config.notifications, outcome):
            obj.warn(warning, as_json)

    def execute(journal: Journal | None) -> RunResult:
        client, tokens = make_graph_client(config)
        with client, progress_reporter(console) if not as_json else _no_progress() as progress:
            credentials = read_credentials(client, config) or []
            problems, soon = expiry_warnings(credentials, datetime.now(UTC))
            expiring.extend(problems + soon)
            roles = tokens.claims().get("roles")  # compared with what the plan needs, before writing
            return run_sync(
                config,
                roster,
                client,
                granted_roles=[str(r) for r in roles] if isinstance(roles, list) else None,
                warnings=problems + soon,
                dry_run=dry_run,
                force=force,
                only=features,
                journal=journal,
                run_id=run_id,
                config_path=str(path),
                progress=progress,
                learned=learned,
                on_refusal=lambda check, detail: record_refusal(learned_path, check, detail, run_id),
                delta=None if journal is None else DeltaReader(config.journal.path, config.graph.full_read),
            )

    try:
        if dry_run:
            result = execute(None)
        else:
            with (
                RunLock(config.journal.lock_file, run_id),
                Journal(
                    config.journal.path,
                    config.journal.retention_days,
                    on_warning=lambda message: obj.warn(message, as_json),
                ) as journal,
            ):
                result = execute(journal)
    except (SmartsyncError, GraphError) as exc:
        if not isinstance(exc, LockHeldError):
            tell("failed", str(exc), {})
        raise
    shown = _html_pages(config, result, html)
    page.extend([shown] if shown else [])
    if as_json:
        click.echo(json.dumps(result.document(), indent=2, ensure_ascii=False))
    else:
        render(console, result, verbose=obj.verbose or verbose, quiet=obj.quiet, html_hint=shown)
    message = result.refused.message if result.refused is not None and not result.forced else ""
    if result.failed:
        message = f"{len(result.failed)} changes failed; the first: {result.failed[0].error}"
    tell(result.status, message or "sync finished", result.summary())
    if result.exit_code != 0 and message:
        click.echo(f"error: {message}", err=True)  # what failed, for the failure summary on stderr
    sys.exit(result.exit_code)


class _no_progress:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@cli.command()
@click.option("--dry-run", is_flag=True, help="Compute and show the plan; write nothing.")
@click.option("--force", is_flag=True, help="Apply even what the safety limits refuse (after review).")
@click.option(
    "--json", "as_json", is_flag=True, help="Print the result document (JSON) instead of the report."
)
@click.option("--only", metavar="LIST", help="Comma-separated subset: groups, admin-units, teams, accounts.")
@HTML_OPTION
@VERBOSE_OPTION
@click.pass_obj
@_handle_errors
def run(
    obj: Context,
    dry_run: bool,
    force: bool,
    as_json: bool,
    only: str | None,
    html: Path | None,
    verbose: bool,
) -> None:
    """Sync the roster into Entra: read, plan, check safety limits, apply, report, journal.

    Safe to repeat and safe to interrupt: a rerun picks up whatever is left. Every change is
    appended to the journal (journal.path). Exit 1 when some changes failed, 4 when a safety limit
    refused the plan (nothing written), 5 when another run holds the lock.

    \b
    Example (cron, three times a day):
      smartsync --config /etc/smartsync/config.yaml run
      smartsync --config /etc/smartsync/config.yaml run --only groups --json
      smartsync --config /etc/smartsync/config.yaml run --html /var/lib/smartsync/last-run.html
    """
    _sync(obj, dry_run=dry_run, force=force, as_json=as_json, only=only, html=html, verbose=verbose)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan document (JSON).")
@click.option("--only", metavar="LIST", help="Comma-separated subset: groups, admin-units, teams, accounts.")
@HTML_OPTION
@VERBOSE_OPTION
@click.pass_obj
@_handle_errors
def plan(obj: Context, as_json: bool, only: str | None, html: Path | None, verbose: bool) -> None:
    """Show what `run` would change, without writing anything (same as `run --dry-run`).

    Exit 4 when a safety limit would refuse the plan.

    \b
    Example:
      smartsync --config /etc/smartsync/config.yaml plan
      smartsync --config /etc/smartsync/config.yaml plan --json > plan.json
      smartsync --config /etc/smartsync/config.yaml plan --html plan.html   # to review in a browser
    """
    _sync(obj, dry_run=True, force=False, as_json=as_json, only=only, html=html, verbose=verbose)


@cli.command()
@click.pass_obj
@_handle_errors
def demo(obj: Context) -> None:
    """Run the whole sync against a built-in simulated tenant and a sample school.

    No config, no credentials, no network. The first run creates groups, admin units and
    memberships; the second shows there is nothing left to do. Unmanaged groups in the tenant,
    including one whose name matches a roster class, stay untouched. The journal of both runs is
    appended to ./.smartsync-demo/changes.jsonl (the same folder every time).

    \b
    Example:
      smartsync demo
    """
    from smartsync.demo import DemoRun, run_demo
    from smartsync.report.text import make_console, render

    console = make_console()

    def show(run: DemoRun) -> None:
        console.rule(run.label)
        render(console, run.result, title=run.label, verbose=obj.verbose)

    console.print(
        "A simulated Entra tenant (its clock running 100 times faster) with users for the bundled sample "
        "school and three groups smartsync does not own.",
        markup=False,
    )
    outcome = run_demo(show, journal_dir=Path(".smartsync-demo"))
    names = ", ".join(str(g["displayName"]) for g in outcome.unmanaged_before)
    verdict = "left exactly as they were" if outcome.unmanaged_untouched else "CHANGED (this is a bug)"
    click.echo(f"\nGroups smartsync does not own ({names}): {verdict}.")
    journal_path = outcome.journal
    runs = outcome.runs
    click.echo(
        f"\nThe journal of both runs is in {journal_path} (try `smartsync log --journal {journal_path}`)."
    )
    sys.exit(max(r.result.exit_code for r in runs))


@cli.group()
def simulator() -> None:
    """The built-in simulated Entra tenant, for trying a config safely and for integration tests.

    It speaks the part of Microsoft Graph smartsync uses, with Graph's rules, quotas and errors,
    and never touches a real tenant.

    \b
    Example:
      smartsync simulator seed --config /etc/smartsync/config.yaml --out trial/seed.json
      smartsync simulator serve --port 0 --state seed.json --ready-file ready.json
    """


@simulator.command("serve")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8443, show_default=True, help="0 picks a free port."
)
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on (keep it loopback)."
)
@click.option(
    "--state",
    "state_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Seed/state JSON file (DESIGN §8); without it a small tenant with a default app is used.",
)
@click.option(
    "--request-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append every request to this file as JSON lines (secrets redacted).",
)
@click.option(
    "--ready-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help='Write {"base_url": ..., "ca_cert": ...} here once connections are accepted.',
)
@click.option(
    "--faults", "faults_spec", metavar="SPEC", help="e.g. rate=0.1,seed=7,kinds=429+503+504+drop+lost"
)
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (1000 makes quotas pass 1000 times faster).",
)
@click.option("--no-throttling", is_flag=True, help="Switch off the Graph quota model.")
@click.option(
    "--quirks",
    "quirks_spec",
    metavar="LIST",
    help="Refuse calls as some tenants do: owners-patch-refused, rmau-members-refused, "
    "edu-classes-unavailable, teams-members-api-unavailable (comma-separated).",
)
@click.option(
    "--live/--no-live",
    default=True,
    show_default=True,
    help="The live service's habits: replication delay, the app as owner, shuffled $batch answers ...",
)
@click.option(
    "--latency-ms",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="Median service time of a request in simulated ms (lognormal; a $batch costs its slowest item).",
)
@click.option(
    "--latency-spread",
    type=click.FloatRange(min=0),
    default=0.5,
    show_default=True,
    help="Spread of the service time: the sigma of its logarithm.",
)
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder for the CA and server certificate, kept and reused across restarts while valid "
    "(default: a temporary folder, new each start).",
)
@_handle_errors
def simulator_serve(
    port: int,
    host: str,
    state_path: Path | None,
    request_log: Path | None,
    ready_file: Path | None,
    faults_spec: str | None,
    time_scale: float,
    no_throttling: bool,
    live: bool,
    latency_ms: float,
    latency_spread: float,
    cert_dir: Path | None,
    quirks_spec: str | None = None,
) -> None:
    """Serve the simulated tenant over HTTPS until interrupted (Ctrl-C or SIGTERM), then exit 0.

    Login endpoints and Graph (/v1.0/...) share one origin. Point a config's authority_host and
    graph_endpoint at the printed base URL and its ca_bundle at the printed CA certificate.
    GET /_simulator/state returns the tenant in the seed format.

    \b
    Example:
      smartsync simulator serve --port 0 --state seed.json --ready-file ready.json
      smartsync simulator serve --port 8443 --request-log requests.jsonl --faults rate=0.05,seed=7
      smartsync simulator serve --port 0 --latency-ms 150 --time-scale 10
    """
    from smartsync.errors import ConfigError
    from smartsync.simulator import FaultSpec, Simulator
    from smartsync.simulator.faults import FaultSpecError
    from smartsync.simulator.latency import Latency
    from smartsync.simulator.quirks import QuirkSpecError, parse_quirks
    from smartsync.simulator.server import (
        SeedError,
        load_seed,
        start_server,
        wait_for_stop_signal,
        write_ready_file,
    )

    try:
        seed = load_seed(state_path) if state_path is not None else None
        faults = FaultSpec.parse(faults_spec) if faults_spec else None
        quirks = parse_quirks(quirks_spec)
    except (SeedError, FaultSpecError, QuirkSpecError) as exc:
        raise ConfigError(str(exc)) from None

    def build(base_url: str) -> Simulator:
        sim = Simulator(
            seed,
            time_scale=time_scale,
            faults=faults,
            throttling=not no_throttling,
            base_url=base_url,
            quirks=quirks,
            live=live,
            latency=Latency(latency_ms, latency_spread),
        )
        if request_log is not None:
            sim.log_to(request_log)
        return sim

    try:
        running = start_server(build, host=host, port=port, cert_dir=cert_dir)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another with --port, or --port 0"
        ) from None
    try:
        click.echo(f"Simulated tenant {running.simulator.state.tenant_id} at {running.base_url}")
        click.echo(f"CA certificate: {running.ca_cert}")
        click.echo("Press Ctrl-C to stop.")
        if ready_file is not None:
            write_ready_file(ready_file, running)
        wait_for_stop_signal()
    finally:
        running.shutdown()
        if ready_file is not None:
            ready_file.unlink(missing_ok=True)
    click.echo("Simulator stopped.")


@simulator.command("seed")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the seed here (JSON, mode 0600: it lists the roster's people).",
)
@click.option(
    "--trial-config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a config that runs the school's own config against the simulator.",
)
@click.option(
    "--source",
    "source_path",
    type=click.Path(path_type=Path),
    metavar="PATH",
    help="Read the roster from this export instead of the config's source.",
)
@click.option(
    "--unmatched",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Leave this many roster people without an Entra user, to see the warnings.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8443,
    show_default=True,
    help="The port `serve` will use.",
)
@click.option(
    "--cert-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="The --cert-dir `serve` will use (default: certs/ next to --out).",
)
@click.pass_obj
@_handle_errors
def simulator_seed(
    obj: Context,
    out: Path,
    trial_config: Path | None,
    source_path: Path | None,
    unmatched: int,
    port: int,
    cert_dir: Path | None,
) -> None:
    """Write a seed of the school's own roster for `simulator serve`, and optionally a trial config.

    The seed holds an Entra user for every active roster person (found by the config's users.match
    property; --unmatched N leaves N of them out) and an app with exactly the permissions the config
    needs. The config's secret is not needed. Prints the tenant, client id and secret to use.

    \b
    Example (then see "Trying a config safely" in the README):
      smartsync simulator seed --config /etc/smartsync/config.yaml --out trial/seed.json \\
          --trial-config trial/config.yaml
    """
    import json

    from smartsync.errors import ConfigError
    from smartsync.trial import build_trial, config_text, write_private

    config_path = resolve_config_path(obj.config_path)
    if trial_config is not None and trial_config.resolve() == config_path.resolve():
        raise ConfigError(
            f"--trial-config {trial_config} is the school's own config; "
            "give a new file, e.g. trial/config.yaml."
        )
    cert_dir = cert_dir if cert_dir is not None else out.parent / "certs"
    trial = build_trial(
        config_path, out.parent, source=source_path, unmatched=unmatched, port=port, cert_dir=cert_dir
    )
    write_private(out, json.dumps(trial.seed, indent=2, ensure_ascii=False) + "\n")
    users = len(trial.seed["users"])
    click.echo(
        f"Wrote {out}: {users} Entra users for {trial.active_people} active roster people"
        + (f" ({trial.left_out} left out by --unmatched)" if trial.left_out else "")
        + f", and an app granted {', '.join(trial.roles)}."
    )
    click.echo("The simulated tenant's sign-in (for a trial config's tenant section; it opens nothing else):")
    click.echo(f"  tenant_id: {trial.config['tenant']['tenant_id']}")
    click.echo(f"  client_id: {trial.config['tenant']['client_id']}")
    click.echo(f"  client_secret: {trial.config['tenant']['client_secret']}")
    click.echo(f"  authority_host and graph_endpoint: {trial.base_url}")
    click.echo(f"  ca_bundle: {trial.ca_cert}")
    if trial_config is not None:
        write_private(trial_config, config_text(trial))
        click.echo(
            f"Wrote {trial_config}: your config with that tenant, the journal in {out.parent}, "
            "no notifications."
        )
    click.echo(f"Next: smartsync simulator serve --port {port} --state {out} --cert-dir {cert_dir}")


@cli.command("check-credentials")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (for monitoring).")
@click.pass_obj
@_handle_errors
def check_credentials(obj: Context, as_json: bool) -> None:
    """Sign in, compare granted and required permissions, and check secret/certificate expiry.

    Names each missing application permission with the feature that needs it, lists granted
    permissions that no enabled feature uses (least privilege), and warns 30 days before the app's
    secret or certificate expires. Exit 0 when smartsync can run, 3 when it cannot (2 for a config
    error). With --json one object is printed whatever happened, including a failed sign-in
    ("signed_in": false and "error": {"code", "message"}). docs/setup.md explains each message.

    \b
    Example:
      smartsync --config /etc/smartsync/config.yaml check-credentials
      smartsync --config /etc/smartsync/config.yaml check-credentials --json
    """
    import json

    from smartsync.credentials import check, sign_in_failure
    from smartsync.errors import EXIT_AUTH, AuthError
    from smartsync.graph import make_graph_client
    from smartsync.preflight.results import results_path

    config, _path = obj.load(as_json)
    try:
        client, tokens = make_graph_client(config)
        with client:
            tokens.token()
            roles = tokens.claims().get("roles") or []
            report = check(config, roles, client)
    except (SmartsyncError, GraphError) as exc:
        # Monitoring reads --json whatever happened; Graph failing after sign-in is still "not ok" (3).
        failure: SmartsyncError = (
            exc
            if isinstance(exc, SmartsyncError)
            else AuthError(
                f"Signed in, but Microsoft Graph at {config.tenant.graph_url} failed: {exc}. Check "
                "tenant.graph_endpoint and tenant.cloud (they must match the sign-in cloud), then try again."
            )
        )
        if not as_json:
            raise failure from None
        code = getattr(exc, "code", None)
        document = sign_in_failure(
            code if isinstance(code, str) else None, str(failure), signed_in=isinstance(exc, GraphError)
        )
        click.echo(json.dumps(document, indent=2))
        sys.exit(failure.exit_code)
    preflight_ran = results_path(config).exists()
    if as_json:
        click.echo(json.dumps({**report.to_dict(), "preflight_ran": preflight_ran}, indent=2))
    else:
        click.echo(f"Signed in to tenant {config.tenant.tenant_id} as app {config.tenant.client_id}.")
        click.echo(f"Granted application permissions: {', '.join(report.granted) or '(none)'}")
        for problem in report.problems:
            click.echo(f"error: {problem}")
        for warning in report.warnings:
            click.echo(f"warning: {warning}")
        for cred in report.credentials:
            when = cred.expires.date().isoformat() if cred.expires else "no end date"
            use = {True: " (in use)", False: "", None: ""}[cred.in_use]
            click.echo(f"  {cred.kind} '{cred.name}' expires {when}{use}")
        verdict = (
            "OK: smartsync can run." if report.ok else "NOT OK: fix the errors above, then run this again."
        )
        if not preflight_ran:
            click.echo(
                "note: preflight has never run for this config: run `smartsync preflight` before the first "
                "sync to prove, with throwaway objects, that Graph accepts each call it will make."
            )
        click.echo(verdict)
    sys.exit(0 if report.ok else EXIT_AUTH)


@cli.command()
@click.option(
    "--teams", is_flag=True, help="Also create a team, archive it and use the Teams membership API (minutes)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the checks and the cleanup as JSON.")
@click.option(
    "--keep",
    is_flag=True,
    help="Leave the throwaway objects for inspection (the next preflight deletes them).",
)
@click.pass_obj
@_handle_errors
def preflight(obj: Context, teams: bool, as_json: bool, keep: bool) -> None:
    """Prove, with throwaway objects, that Graph accepts each call the config's features make.

    Signs in, then creates, changes and deletes test objects marked smartsync-preflight-<run id>
    (groups, an administrative unit, an education class; with --teams a team), one check per call:
    ✓, or ✗ with Graph's answer and what it means for the sync. The throwaway objects use one person:
    preflight.user, or the first roster staff member found in Entra. They are deleted at the end, also
    after a failure or Ctrl-C, and purged from deleted items where permitted; a preflight that was killed
    is cleaned up by the next one. The results are kept in preflight.json next to the journal, and
    `plan` and `run` follow them. Exit 0 when everything the config needs works, 3 when something it
    needs is refused, 2 for a config error.

    \b
    Example (before the first run):
      smartsync --config /etc/smartsync/config.yaml preflight
      smartsync --config /etc/smartsync/config.yaml preflight --teams --json
    """
    import json

    from smartsync.engine.actual import read_users
    from smartsync.graph import make_graph_client
    from smartsync.journal import new_run_id
    from smartsync.lock import RunLock
    from smartsync.preflight.checks import pick_user, run_preflight
    from smartsync.preflight.results import results_path, save_results
    from smartsync.roster.model import Roster
    from smartsync.roster.sources import read_roster

    config, path = obj.load()
    run_id = new_run_id()

    def say(message: str) -> None:
        if not obj.quiet:
            click.echo(message, err=True)

    with RunLock(config.journal.lock_file):
        client, tokens = make_graph_client(config)
        with client:
            tokens.token()  # a wrong secret or tenant stops here, before anything is created
            roster = (
                read_roster(config.source, base_dir=path.parent) if not config.preflight.user else Roster()
            )
            user, source = pick_user(config, roster, read_users(client))
            say(f"Preflight {run_id}: throwaway objects marked smartsync-preflight-{run_id}")
            say(f"Test person: {user.user_principal_name} ({source})")
            try:
                report = run_preflight(
                    config, client, user, source, run_id=run_id, teams=teams, keep=keep, say=say
                )
            except KeyboardInterrupt:
                click.echo("interrupted: the throwaway objects were deleted; no results were kept.", err=True)
                sys.exit(130)
    kept = results_path(config)
    save_results(kept, report.results())
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    else:
        for line in report.render_text():
            click.echo(line)
        click.echo(f"Results kept in {kept}: `plan` and `run` follow them.")
        click.echo(
            "OK: everything this config needs works."
            if report.ok
            else "NOT OK: fix what the ✗ lines say, then run `smartsync preflight` again."
        )
    sys.exit(report.exit_code)


def main() -> None:
    cli(prog_name="smartsync")


__all__ = ["EXIT_INPUT", "cli", "main"]
