"""`smartsync demo`: what a new user sees first."""

from __future__ import annotations

from click.testing import CliRunner

from smartsync.cli import cli


def test_demo_creates_then_finds_nothing_and_leaves_unmanaged_groups_alone() -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    first, second = result.output.split("Second run: nothing to do", 1)
    assert "Objects per kind" in first and " Classes " in first
    assert "Changed 190 groups and 10 units: " in first and "155 teams created; 0 failed." in first
    assert "No changes: Entra already matches the roster." in second
    assert "has no Entra user" in second  # the deliberately missing accounts are reported
    assert "Groups smartsync does not own (Senior Leadership Team, IT Support, " in result.output
    assert "left exactly as they were." in result.output
    assert "The journal of both runs is in " in result.output
