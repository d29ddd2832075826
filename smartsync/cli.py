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
from pathlib import Path
from typing import Any, TypeVar

import click

from smartsync import __version__
from smartsync.config import Config, load_config, resolve_config_path
from smartsync.errors import EXIT_INPUT, InputDataError, SmartsyncError

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

    def load(self) -> tuple[Config, Path]:
        path = resolve_config_path(self.config_path)
        config, warnings = load_config(path)
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        return config, path


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
        except KeyboardInterrupt:
            click.echo("interrupted: the next run picks up where this one stopped.", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


@click.group(epilog=EXIT_CODES_HELP)
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
@click.pass_obj
@_handle_errors
def validate(obj: Context, as_json: bool) -> None:
    """Check the config and the roster source; never contacts Entra.

    Prints counts (learners, staff, groups per kind, memberships) and every problem found, with file,
    line and column. Exit 0 when valid, 2 when not.

    \b
    Example:
      smartsync --config smartsync.yaml validate
      smartsync --config smartsync.yaml validate --json
    """
    raise SmartsyncError("validate is not available yet")


def main() -> None:
    cli(prog_name="smartsync")


__all__ = ["EXIT_INPUT", "cli", "main"]
