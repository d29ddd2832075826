"""Accounts (`sync.users`) end to end: the real CLI in a subprocess against `smartsync simulator serve`.

The sample school with 40 people missing from Entra: one run creates exactly their accounts (marked)
and places them in their groups, units and teams, with a 40-row 0600 hand-out file; a second run
changes nothing; five leavers are disabled and then deleted, a returning suspended pupil is enabled,
an unmarked account is never touched. A wrong domain (exit 2), an intake of 1,000 and 50 disables
(exit 4) write nothing.
"""

from __future__ import annotations

import csv
import json
import stat
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_accounts import MARKER, learners, seed_without, with_status
from test_reliability_support import (
    ServedTenant,
    actual_picture,
    expected_picture,
    run_cli,
    served_tenant,
    write_cli_config,
)

from smartsync.config import Config, parse_config
from smartsync.demo import DEMO_SECRET
from smartsync.engine.accounts import parse_marker
from smartsync.roster.model import Person, Roster
from smartsync.roster.sample import generate, write_export

USERS = {"create": True}


def load(path: Path, monkeypatch: pytest.MonkeyPatch) -> Config:
    monkeypatch.setenv("SMARTSYNC_CLIENT_SECRET", DEMO_SECRET)
    return parse_config(yaml.safe_load(path.read_text(encoding="utf-8")))


def export(folder: Path, roster: Roster) -> None:
    for name in ("users.csv", "groups.csv", "memberships.csv"):
        (folder / "export" / name).unlink(missing_ok=True)
    write_export(roster, folder / "export")


def run_json(config: Path) -> tuple[int, dict[str, Any]]:
    done = run_cli(config, "run", "--json")
    assert done.returncode in (0, 1, 4), done.stderr[-2000:]
    return done.returncode, json.loads(done.stdout)


def graph_writes(served: ServedTenant) -> int:
    """Graph write requests the served tenant has answered (sign-ins are not writes)."""
    lines = served.request_log.read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return sum(
        1
        for r in records
        if r["method"] != "GET" and r["path"].startswith("/v1.0/") and not r["path"].endswith("$batch")
    )


def upns(served: ServedTenant) -> dict[str, dict[str, Any]]:
    return {u["userPrincipalName"].lower(): u for u in served.state()["users"]}


def test_joiners_and_leavers_through_the_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roster = generate("small")
    joiners = learners(roster, 40)
    plain = next(p for p in roster.learners if p not in joiners)  # an account smartsync did not create
    with served_tenant(tmp_path / "server", seed_without(roster, {p.id for p in joiners})) as served:
        config_path = write_cli_config(tmp_path, served, roster, sync={"users": USERS})
        config = load(config_path, monkeypatch)
        before = {u["id"] for u in served.state()["users"]}

        code, first = run_json(config_path)
        assert code == 0, first["warnings"][:3]
        assert first["summary"]["accounts_created"] == 40
        creates = [c for c in first["changes"] if c["op"] == "user.create"]
        assert sorted(c["users"][0] for c in creates) == sorted(p.email for p in joiners)
        assert first["changes"][: len(creates)] == creates and all(c["result"] == "ok" for c in creates)
        state = served.state()
        new = [u for u in state["users"] if u["id"] not in before]
        assert len(new) == 40
        assert all(parse_marker(u["onPremisesExtensionAttributes"][MARKER]) for u in new)
        assert expected_picture(state, roster, config, date.today()).difference(actual_picture(state)) == []
        handout = Path(first["handout"]["path"])
        assert first["handout"]["rows"] == 40 and handout.parent == tmp_path / "journal"
        assert stat.S_IMODE(handout.stat().st_mode) == 0o600
        with handout.open(encoding="utf-8", newline="") as rows:
            assert len(list(csv.reader(rows))) == 41  # the header and 40 accounts

        code, second = run_json(config_path)
        assert (code, second["changes"]) == (0, [])

        # Five joiners leave, one is suspended, and so does a person whose account is not smartsync's.
        suspended = joiners[5]
        left = {p.id for p in joiners[:5]} | {plain.id}
        untouched = upns(served)[plain.email.lower()]
        export(tmp_path, with_status(with_status(roster, left, "left"), {suspended.id}, "suspended"))
        code, third = run_json(config_path)
        assert code == 0
        disabled = sorted(c["users"][0] for c in third["changes"] if c["op"] == "user.disable")
        assert disabled == sorted(p.email for p in [*joiners[:5], suspended])
        accounts = upns(served)
        assert all(accounts[p.email.lower()]["accountEnabled"] is False for p in joiners[:6])

        # The suspended pupil returns; with delete_after_days 0 the leavers' accounts go on this run.
        config_path.write_text(
            config_path.read_text(encoding="utf-8").replace(
                "create: true", "create: true\n    delete_after_days: 0"
            ),
            encoding="utf-8",
        )
        export(tmp_path, with_status(roster, left, "left"))
        code, fourth = run_json(config_path)
        assert code == 0
        ops = sorted((c["op"], c["users"][0]) for c in fourth["changes"] if c["op"].startswith("user."))
        assert ops == sorted(
            [("user.enable", suspended.email)] + [("user.delete", p.email) for p in joiners[:5]]
        )
        accounts = upns(served)
        assert accounts[suspended.email.lower()]["accountEnabled"] is True
        assert not {p.email.lower() for p in joiners[:5]} & set(accounts)
        assert accounts[plain.email.lower()] == untouched

        log = run_cli(config_path, "log", "--user", joiners[0].email)
        assert log.returncode == 0
        for op in ("user.create", "user.disable", "user.delete"):
            assert op in log.stdout


@pytest.mark.parametrize("case", ["wrong domain", "intake of 1000", "50 disables"])
def test_account_mistakes_are_refused_with_nothing_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    roster = generate("small")
    marked = learners(roster, 50, step=3)
    seed = seed_without(roster, set(), **{p.id: f"smartsync:MIN-user-{p.id}" for p in marked})
    with served_tenant(tmp_path / "server", seed) as served:
        config_path = write_cli_config(tmp_path, served, roster, sync={"users": USERS})
        assert run_cli(config_path, "run").returncode == 0
        if case == "wrong domain":
            pupil = learners(roster, 1)[0]
            typo = replace(pupil, id="NEW1", email="new.pupil@northfeild.example")
            changed = replace(roster, people=(*roster.people, typo))
        elif case == "intake of 1000":
            extra = tuple(
                Person(f"X{n}", "learner", f"new{n}@northfield.example", "New", f"Pupil{n}", "Year 7")
                for n in range(1000)
            )
            changed = replace(roster, people=roster.people + extra)
        else:
            changed = with_status(roster, {p.id for p in marked}, "left")
        export(tmp_path, changed)
        state, writes = served.state(), graph_writes(served)
        done = run_cli(config_path, "run")
        if case == "wrong domain":
            assert done.returncode == 2, done.stderr
            assert "northfeild.example" in done.stderr and "Nothing was written" in done.stderr
        else:
            assert done.returncode == 4, done.stdout + done.stderr
            limit = "max_account_creations" if case == "intake of 1000" else "max_account_disables"
            assert limit in done.stdout
        assert served.state() == state
        assert graph_writes(served) == writes
