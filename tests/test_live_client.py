"""smartsync against the live behaviours, over the HTTPS path `smartsync simulator serve` uses.

The real CLI runs in a subprocess against a served tenant with the live behaviours on (its default):
a 5-second replication delay for new groups, classes and units, 30 seconds for Teams, the app made an
owner of what it creates, shuffled `$batch` answers. The served clock runs 100 times faster than
real time, and the config's waits are scaled to match.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_reliability_support import (
    ServedTenant,
    mini_roster,
    read_journal,
    run_cli,
    served_tenant,
    write_cli_config,
)

from smartsync.config import load_config
from smartsync.demo import DEMO_SECRET, demo_seed, user_id_for
from smartsync.engine.apply import Applier
from smartsync.engine.plan import Change
from smartsync.engine.run import replication_wait
from smartsync.engine.state import GroupSpec, UserRef
from smartsync.graph import GraphClient, GraphRequest, make_graph_client
from smartsync.roster.model import Membership, Roster

SCALE = 100.0
TEAMS_FAST = {"creation_retry_seconds": 0, "poll_seconds": 0, "poll_timeout_seconds": 5}


def replication(scale: float) -> dict[str, float]:
    """`sync.replication` with the defaults' waits on a clock `scale` times faster."""
    return {
        "first_wait_seconds": 2.0 / scale,
        "max_wait_seconds": 30.0 / scale,
        "budget_minutes": 5.0 / scale,
        "team_budget_minutes": 15.0 / scale,
    }


@contextmanager
def live_tenant(folder: Path, roster: Roster, scale: float = SCALE) -> Iterator[ServedTenant]:
    seed = demo_seed(roster, missing_every=None)
    with served_tenant(folder / "server", seed, extra=("--time-scale", str(scale))) as served:
        yield served


def configure(folder: Path, served: ServedTenant, roster: Roster, scale: float = SCALE, **sync: Any) -> Path:
    sections = {"teams": {**TEAMS_FAST, **sync.pop("teams", {})}, "replication": replication(scale), **sync}
    return write_cli_config(folder, served, roster, sync=sections)


def run(config: Path, *args: str) -> dict[str, Any]:
    done = run_cli(config, *args, "--json")
    assert done.returncode in (0, 1, 4), done.stderr[-2000:]
    document: dict[str, Any] = json.loads(done.stdout)
    document["exit"] = done.returncode
    return document


def results(document: dict[str, Any]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for change in document["changes"]:
        counts[change.get("result", "planned")] = counts.get(change.get("result", "planned"), 0) + 1
    return counts


def logged(served: ServedTenant) -> list[dict[str, Any]]:
    return [json.loads(line) for line in served.request_log.read_text(encoding="utf-8").splitlines()]


def control(served: ServedTenant, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> Any:
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.ca_cert)), timeout=30) as http:
        response = http.request(method, f"{served.base_url}{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None


def graph(served: ServedTenant, method: str, path: str) -> int:
    """A Graph request as an admin would make it by hand (deleting a group, say)."""
    with httpx.Client(verify=ssl.create_default_context(cafile=str(served.ca_cert)), timeout=30) as http:
        token = http.post(
            f"{served.base_url}/{demo_seed(mini_roster())['tenant_id']}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": demo_seed(mini_roster())["app"]["client_id"],
                "client_secret": DEMO_SECRET,
                "scope": "https://graph.microsoft.com/.default",
            },
        ).json()["access_token"]
        response = http.request(
            method, f"{served.base_url}/v1.0{path}", headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code


def managed(served: ServedTenant) -> dict[str, dict[str, Any]]:
    return {
        g["mailNickname"]: g for g in served.state()["groups"] if g["mailNickname"].startswith("smartsync-")
    }


def test_first_run_meets_the_delay_and_ends_with_nothing_failed_second_run_is_empty(tmp_path: Path) -> None:
    roster = mini_roster()
    # A slower clock than the other tests: the 5-second delay is 250 ms, so even on a loaded machine
    # the first run meets it.
    with live_tenant(tmp_path, roster, scale=20) as served:
        config = configure(tmp_path, served, roster, scale=20)
        first = run(config, "run")
        assert first["exit"] == 0 and results(first) == {"ok": len(first["changes"])}, results(first)
        statuses = [(r["method"], r["status"]) for r in logged(served)]
        # The delay was met: requests naming new objects were refused, and sent again.
        assert ("PATCH", 400) in statuses or ("POST", 400) in statuses or ("POST", 404) in statuses
        state = served.state()
        users = {u["id"] for u in state["users"]}
        groups = list(managed(served).values())
        # Graph made the app an owner of each group it created; smartsync leaves that owner alone.
        assert all(any(o not in users for o in g["owners"]) for g in groups)
        assert sum(1 for g in groups if g.get("team")) == 6
        second = run(config, "plan")
        assert second["changes"] == [], second["changes"]
        journal = read_journal(tmp_path / "journal" / "changes.jsonl")
        assert not [e for e in journal if e.get("op") == "group.owners.remove"]


def test_a_deleted_managed_group_is_restored_with_its_members_not_created_again(tmp_path: Path) -> None:
    roster = mini_roster(classes=2)
    with live_tenant(tmp_path, roster) as served:
        config = configure(tmp_path, served, roster, teams={"enabled": False})
        assert run(config, "run")["exit"] == 0
        mentor = managed(served)["smartsync-MIN-mentor-M1"]
        _scaled_sleep(6.0 / SCALE)  # by hand, but not within seconds of the group's creation
        assert graph(served, "DELETE", f"/groups/{mentor['id']}") == 204
        again = run(config, "run")
        ops = {c["op"]: c["result"] for c in again["changes"]}
        assert ops.get("group.restore") == "ok" and "group.create" not in ops, again["changes"]
        back = managed(served)["smartsync-MIN-mentor-M1"]
        assert back["id"] == mentor["id"] and sorted(back["members"]) == sorted(mentor["members"])
        assert run(config, "plan")["changes"] == []


def test_readme_advice_delete_the_plain_group_and_it_is_recreated_as_a_class(tmp_path: Path) -> None:
    roster = mini_roster(classes=1)
    with live_tenant(tmp_path, roster) as served:
        config = configure(tmp_path, served, roster, teams={"enabled": False})  # classes as plain groups
        assert run(config, "run")["exit"] == 0
        key = next(n for n in managed(served) if "-class-" in n)
        plain = managed(served)[key]
        assert not plain.get("educationClass")
        config = configure(tmp_path, served, roster)  # now class teams, with the educationClass template
        planned = run(config, "plan")
        assert "class_group_not_education_class" in [w["code"] for w in planned["warnings"]]
        _scaled_sleep(6.0 / SCALE)  # by hand, but not within seconds of the group's creation
        assert graph(served, "DELETE", f"/groups/{plain['id']}") == 204
        redone = run(config, "run")
        assert redone["exit"] == 0, redone["changes"]
        ops = [c["op"] for c in redone["changes"]]
        # The deleted plain group holds the nickname; restoring it would bring back a plain group.
        assert ops.index("group.purge") < ops.index("group.create") and "group.restore" not in ops
        fresh = managed(served)[key]
        assert fresh["id"] != plain["id"] and fresh.get("educationClass") and fresh.get("team")
        assert plain["id"] not in {g["id"] for g in served.state()["deleted_groups"]}
        assert run(config, "plan")["changes"] == []


def test_groups_smartsync_must_not_write_are_warnings_not_failures(tmp_path: Path) -> None:
    roster = mini_roster(classes=2)
    with live_tenant(tmp_path, roster) as served:
        config = configure(tmp_path, served, roster, teams={"enabled": False})
        assert run(config, "run")["exit"] == 0
        mentor = managed(served)["smartsync-MIN-mentor-M1"]
        control(served, "/_simulator/live/lock-group", {"group": mentor["id"], "kind": "on_premises"})
        guest = user_id_for("L1-0")
        control(served, "/_simulator/live/refuse-guest", {"user": guest})
        # The roster drops a pupil from the mentor group and moves a (guest) pupil into the first class.
        members = [m for m in roster.memberships if not (m.group_id == "M1" and m.user_id == "L0-1")]
        members.append(Membership("C0", "L1-0", "learner"))
        changed = replace(roster, memberships=tuple(members))
        config = configure(tmp_path, served, changed, teams={"enabled": False})
        writes_before = len([r for r in logged(served) if mentor["id"] in r["path"] and r["method"] != "GET"])
        after = run(config, "run")
        assert after["exit"] == 0 and after["status"] == "ok", after["changes"]
        messages = " ".join(w["message"] for w in after["warnings"])
        assert "Mentor group 7M" in messages and "on-premises" in messages
        assert "learner1.0@mini.example" in messages and "guests" in messages
        assert results(after).get("failed", 0) == 0
        # The synced group is read as such and left out of the plan: no write is even tried.
        assert not [c for c in after["changes"] if c["key"] == "MIN-mentor-M1"]
        writes = [r for r in logged(served) if mentor["id"] in r["path"] and r["method"] != "GET"]
        assert len(writes) == writes_before


def test_restricted_units_with_include_groups_refuse_unless_the_app_has_a_unit_role(tmp_path: Path) -> None:
    roster = mini_roster(classes=2)
    with live_tenant(tmp_path, roster) as served:
        units = {"restricted_management": True, "include_groups": True}
        config = configure(tmp_path, served, roster, admin_units=units, teams={"enabled": False})
        refused = run_cli(config, "plan")
        assert refused.returncode == 2
        assert "lock smartsync out of its own groups" in refused.stderr
        assert "app_has_unit_role" in refused.stderr and "turn off include_groups" in refused.stderr
        control(served, "/_simulator/live/unit-role", {"granted": True})
        config = configure(
            tmp_path,
            served,
            roster,
            admin_units={**units, "app_has_unit_role": True},
            teams={"enabled": False},
        )
        assert run(config, "run")["exit"] == 0
        second = run(config, "run")  # the groups exist now: they go into their year's unit
        assert second["exit"] == 0, second["changes"]
        state = served.state()
        unified = {g["id"] for g in state["groups"] if "Unified" in g.get("groupTypes", [])}
        placed = {m for u in state["administrative_units"] for m in u["members"]} & {
            g["id"] for g in state["groups"]
        }
        assert placed and not placed & unified
        assert run(config, "plan")["changes"] == []


def test_archiving_polls_and_reads_isarchived_without_the_refused_parameter(tmp_path: Path) -> None:
    roster = mini_roster(classes=2)
    with live_tenant(tmp_path, roster) as served:
        config = configure(tmp_path, served, roster)
        assert run(config, "run")["exit"] == 0
        ended = replace(
            roster,
            groups=tuple(g for g in roster.groups if g.id != "C1"),
            memberships=tuple(m for m in roster.memberships if m.group_id != "C1"),
        )
        config = configure(tmp_path, served, ended)
        archived = run(config, "run")
        assert [c["result"] for c in archived["changes"] if c["op"] == "team.archive"] == ["ok"]
        log = logged(served)
        posts = [r for r in log if r["path"].endswith("/archive")]
        assert posts and all("shouldSetSpoSiteReadOnlyForMembers" not in json.dumps(r["body"]) for r in posts)
        team_id = posts[-1]["path"].split("/")[3]
        assert any(r["method"] == "GET" and r["path"] == f"/v1.0/teams/{team_id}" for r in log)
        assert run(config, "plan")["changes"] == []


# -- the client on its own, over the same HTTPS path ------------------------------------------------


@pytest.fixture
def https_client(tmp_path: Path) -> Iterator[tuple[GraphClient, ServedTenant, Path]]:
    roster = mini_roster(classes=1)
    with live_tenant(tmp_path, roster) as served:
        config_path = configure(tmp_path, served, roster)
        os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
        try:
            config = load_config(config_path)[0]
        finally:
            del os.environ["SMARTSYNC_CLIENT_SECRET"]
        client, _tokens = make_graph_client(config)
        with client:
            yield client, served, config_path


def test_a_user_that_no_longer_exists_is_left_out_and_the_rest_goes_ahead(
    https_client: tuple[GraphClient, ServedTenant, Path],
) -> None:
    client, served, config_path = https_client
    os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
    try:
        config = load_config(config_path)[0]
    finally:
        del os.environ["SMARTSYNC_CLIENT_SECRET"]
    real = [UserRef(u["userPrincipalName"], u["id"]) for u in served.state()["users"][:3]]
    ghost = UserRef("gone@mini.example", "00000000-0000-4000-8000-00000000dead")
    spec = GroupSpec("MIN-group-X", "group", "Drama club", "security", "smartsync-MIN-group-X")
    plan = [
        Change(
            "group.create",
            spec.key,
            name=spec.display_name,
            users=(real[1], ghost),
            owners=(real[0],),
            group=spec,
        ),
        Change("group.members.add", spec.key, name=spec.display_name, users=(real[2], ghost)),
    ]
    applier = Applier(
        client, config.tenant.graph_url, replication=replication_wait(config), sleep=_scaled_sleep
    )
    outcomes = applier.apply(plan)
    assert [o.result for o in outcomes] == ["ok", "ok"], [o.error for o in outcomes]
    assert all(o.users[ghost.id][0] == "skipped" for o in outcomes)
    assert any("gone@mini.example" in w for w in applier.warnings)
    group = managed(served)["smartsync-MIN-group-X"]
    assert sorted(group["members"]) == sorted(u.id for u in real[1:])


def test_removing_a_non_member_is_done_whether_graph_answers_404_or_400(
    https_client: tuple[GraphClient, ServedTenant, Path],
) -> None:
    client, served, _ = https_client
    group = next(g for g in served.state()["groups"] if g["owners"])
    outsider = served.state()["users"][-1]["id"]
    path = f"/groups/{group['id']}/members/{outsider}/$ref"
    answers = client.batch([GraphRequest("DELETE", path)]) + client.batch([GraphRequest("DELETE", path)])
    assert all(a.ok and a.already for a in answers)
    assert {r["status"] for r in logged(served) if r["path"] == f"/v1.0{path}"} == {400, 404}


def _scaled_sleep(seconds: float) -> None:
    import time

    time.sleep(seconds)  # the config's waits are already on the served clock's scale


def _m365(nickname: str) -> dict[str, Any]:
    return {
        "displayName": nickname,
        "mailNickname": nickname,
        "mailEnabled": True,
        "securityEnabled": False,
        "groupTypes": ["Unified"],
    }


def test_a_taken_nickname_is_looked_up_a_deleted_holder_is_a_warning_our_own_group_is_done(
    https_client: tuple[GraphClient, ServedTenant, Path],
) -> None:
    client, _served, config_path = https_client
    os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
    try:
        config = load_config(config_path)[0]
    finally:
        del os.environ["SMARTSYNC_CLIENT_SECRET"]
    held = client.request("POST", "/groups", json=_m365("smartsync-MIN-group-held")).body["id"]
    _scaled_sleep(6.0 / SCALE)  # past the replication delay of the new group
    client.request("DELETE", f"/groups/{held}")  # deleted after planning: it still holds the nickname
    ours = client.request("POST", "/groups", json=_m365("smartsync-MIN-group-ours")).body["id"]
    plan = [
        Change(
            "group.create",
            f"MIN-group-{name}",
            name=name.title(),
            group=GroupSpec(
                f"MIN-group-{name}", "group", name.title(), "microsoft365", f"smartsync-MIN-group-{name}"
            ),
        )
        for name in ("held", "ours")
    ]
    applier = Applier(
        client, config.tenant.graph_url, replication=replication_wait(config), sleep=_scaled_sleep
    )
    held_outcome, ours_outcome = applier.apply(plan)
    assert held_outcome.result == "skipped" and held in (held_outcome.error or "")
    assert any("smartsync-MIN-group-held" in w and held in w for w in applier.warnings)
    # A creation that went through although its answer said otherwise (throttled, lost): it is done.
    assert ours_outcome.result == "ok" and ours_outcome.object_id == ours
