"""Safety limits through the real CLI: each refuses with exit 4 and writes nothing; `--force` applies."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from test_reliability_badinput import cli_tenant, config_data
from test_reliability_support import mini_roster, read_journal

from smartsync.roster.model import Roster
from smartsync.roster.sample import write_export


def everyone_left(roster: Roster) -> Roster:
    return replace(roster, people=tuple(replace(p, status="left") for p in roster.people))


def wrong_domain(roster: Roster) -> Roster:
    return replace(
        roster,
        people=tuple(replace(p, email=p.email.replace("mini.example", "old.example")) for p in roster.people),
    )


def classes_gone(roster: Roster) -> Roster:
    kept = tuple(g for g in roster.groups if g.type != "class")
    ids = {g.id for g in kept}
    return replace(roster, groups=kept, memberships=tuple(m for m in roster.memberships if m.group_id in ids))


def learners_leave_classes(roster: Roster) -> Roster:
    return replace(roster, memberships=tuple(m for m in roster.memberships if m.role != "learner"))


CASES: dict[str, tuple[Callable[[Roster], Roster], dict[str, object]]] = {
    "roster_empty": (everyone_left, {}),
    "max_unmatched_fraction": (wrong_domain, {}),
    "max_deletes": (classes_gone, {"max_deletes": 3}),
    # 56 of about 300 managed memberships (the year, all-learners groups and units keep theirs).
    "max_membership_removal_fraction": (learners_leave_classes, {"max_membership_removal_fraction": 0.1}),
}


@pytest.mark.parametrize("limit", sorted(CASES))
def test_each_limit_refuses_with_exit_4_writes_nothing_and_force_applies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str
) -> None:
    change, safety = CASES[limit]
    roster = mini_roster()
    with cli_tenant(tmp_path, monkeypatch, roster, synced=roster) as (t, _wraps):
        data = config_data(tmp_path)
        data["safety"] = safety
        t.config.write_text(yaml.safe_dump(data), encoding="utf-8")
        shutil.rmtree(tmp_path / "export")
        write_export(change(roster), tmp_path / "export")
        before, writes = t.sim.dump_state(), t.writes()

        refused = t.run("run", "--json")
        assert refused.exit_code == 4, refused.output
        assert f'"limit": "{limit}"' in refused.output and "--force" in refused.output
        assert t.writes() == writes and t.sim.dump_state() == before
        assert read_journal(tmp_path / "journal" / "changes.jsonl")[-1]["status"] == "refused"
        assert t.run("plan").exit_code == 4

        forced = t.run("run", "--force", "--json")
        assert forced.exit_code == 0, forced.output
        assert t.writes() > writes
        if limit in ("max_deletes", "max_membership_removal_fraction"):
            assert t.run("plan", "--json").exit_code == 0  # applied: the next plan is within the limits
