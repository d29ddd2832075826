"""Every command explains itself: `--help` works, describes the command and shows an example."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from smartsync.cli import cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found: list[tuple[str, ...]] = []
    for name, command in sorted(group.commands.items()):
        path = (*prefix, name)
        found.append(path)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, path))
    return found


COMMANDS = all_commands(cli)


def test_the_documented_commands_all_exist() -> None:
    names = {" ".join(path) for path in COMMANDS}
    assert {
        "run",
        "plan",
        "validate",
        "check-credentials",
        "log",
        "demo",
        "simulator",
        "simulator serve",
    } <= names


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: " ".join(p))
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) > 4
    assert "Example" in result.output, f"`smartsync {' '.join(path)} --help` shows no example"


def test_top_level_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for code in range(6):
        assert f"  {code}  " in result.output
