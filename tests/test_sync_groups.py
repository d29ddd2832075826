"""Groups end to end against the simulated tenant: create, converge, change, refuse, survive faults."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from harness import Tenant, tenant

from smartsync.demo import demo_seed, user_id_for
from smartsync.engine.desired import UserDirectory, build_desired
from smartsync.engine.state import EntraUser
from smartsync.graph import make_graph_client
from smartsync.roster.model import Group, Membership, Person, Roster
from smartsync.roster.sample import generate

PEOPLE = (
    Person("L1", "learner", "amy.p@nfa.example", "Amy", "Pupil", "Year 7"),
    Person("L2", "learner", "ben.o@nfa.example", "Ben", "O'Brien", "Year 7"),
    Person("L3", "learner", "zoe.s@nfa.example", "Zoë", "Smith-Jones", "Year 7"),
    Person("S1", "staff", "t.teacher@nfa.example", "Tess", "Teacher"),
    Person("S2", "staff", "n.teacher@nfa.example", "Nia", "Newteacher"),
)
GROUPS = (
    Group("4711", "7A/Ma1", "class", subject="Maths", year_group="Year 7"),
    Group("4712", "7A/En1", "class", subject="English", year_group="Year 7"),
)
MEMBERS = (
    Membership("4711", "L1", "learner"),
    Membership("4711", "L2", "learner"),
    Membership("4711", "S1", "teacher"),
    Membership("4712", "L3", "learner"),
    Membership("4712", "S1", "teacher"),
)
TINY = Roster(PEOPLE, GROUPS, MEMBERS)
GROUPS_ONLY = {"sync": {"teams": {"enabled": False}, "admin_units": {"enabled": False}}}


def expected_groups(t: Tenant, roster: Roster) -> dict[str, dict[str, Any]]:
    users = [EntraUser(u["id"], u["userPrincipalName"], u.get("mail")) for u in t.state()["users"]]
    want = build_desired(roster, t.config, UserDirectory.build(users, "userPrincipalName"), today=t_today())
    return {
        g.mail_nickname: {
            "displayName": g.display_name,
            "unified": g.type == "microsoft365",
            "members": sorted(u.id for u in g.members),
            "owners": sorted(u.id for u in g.owners),
        }
        for g in want.groups.values()
    }


def t_today() -> Any:
    from harness import AUTUMN

    return AUTUMN


def actual_groups(t: Tenant) -> dict[str, dict[str, Any]]:
    return {
        nick: {
            "displayName": g["displayName"],
            "unified": "Unified" in g.get("groupTypes", []),
            "members": sorted(g.get("members", [])),
            "owners": sorted(t.user_owners(g)),
        }
        for nick, g in t.managed_groups().items()
    }


def unmanaged(t: Tenant) -> str:
    return json.dumps(
        [g for g in t.state()["groups"] if not str(g.get("mailNickname", "")).startswith("smartsync-")],
        sort_keys=True,
    )


def test_small_school_converges_in_one_run_and_second_run_is_empty(tmp_path: Path) -> None:
    roster = generate("small")
    with tenant(tmp_path, roster, **GROUPS_ONLY) as t:
        before = unmanaged(t)
        first = t.sync(roster)
        assert first.status == "ok" and first.exit_code == 0
        assert first.summary()["groups_created"] == len(expected_groups(t, roster)) > 100
        assert actual_groups(t) == expected_groups(t, roster)
        # Microsoft 365 groups carry the no-welcome-mail options.
        for group in t.managed_groups().values():
            if "Unified" in group["groupTypes"]:
                assert {"WelcomeEmailDisabled", "HideGroupInOutlook"} <= set(group["resourceBehaviorOptions"])
        second = t.sync(roster)
        assert second.plan.changes == ()
        assert unmanaged(t) == before  # byte for byte
        users_before = json.dumps(t.state()["users"], sort_keys=True)
        assert json.dumps(t.state()["users"], sort_keys=True) == users_before


def test_request_counts_for_initial_and_no_change_runs_of_the_small_school(tmp_path: Path) -> None:
    roster = generate("small")
    with tenant(tmp_path, roster, **GROUPS_ONLY) as t:
        t.sync(roster)
        initial = t.sim.stats()
        log = list(t.sim.request_log)
        # Every addition to an existing group goes through batched members@odata.bind PATCHes.
        assert not [r for r in log if r.method == "POST" and r.path.endswith("/members/$ref")]
        patches = [r for r in log if r.method == "PATCH" and r.path.startswith("/v1.0/groups/")]
        assert patches and all(len(r.body.get("members@odata.bind", [])) <= 20 for r in patches)
        t.sync(roster)
        after = t.sim.stats()
    no_change = {k: after[k] - initial[k] for k in ("requests", "batch_round_trips", "writes")}
    # Figures for the bundled sample school (181 roster groups → 174 groups here); a regression shows.
    assert initial["writes"] <= 420, initial
    assert initial["batch_round_trips"] <= 40, initial
    assert no_change["writes"] == 0
    assert no_change["batch_round_trips"] <= 20, no_change
    assert no_change["requests"] <= 400, no_change


def test_moves_additions_renames_and_removals_give_exactly_the_expected_changes(tmp_path: Path) -> None:
    with tenant(tmp_path, TINY, **GROUPS_ONLY) as t:
        t.sync(TINY)
        moved = replace(
            TINY,
            groups=(replace(GROUPS[0], name="7A/Ma2"), GROUPS[1]),
            memberships=(
                Membership("4711", "L1", "learner"),
                Membership("4711", "S1", "teacher"),
                Membership("4711", "S2", "teacher"),
                Membership("4712", "L3", "learner"),
                Membership("4712", "L2", "learner"),  # Ben moves from Maths to English
                Membership("4712", "S1", "teacher"),
            ),
        )
        plan = t.sync(moved, dry_run=True).plan
        ops = sorted((c.op, c.key, tuple(u.address for u in c.users)) for c in plan.changes)
        assert ops == [
            ("group.members.add", "NFA-class-2025-4711", ("n.teacher@nfa.example",)),
            ("group.members.add", "NFA-class-2025-4712", ("ben.o@nfa.example",)),
            ("group.members.remove", "NFA-class-2025-4711", ("ben.o@nfa.example",)),
            ("group.owners.add", "NFA-class-2025-4711", ("n.teacher@nfa.example",)),
            ("group.update", "NFA-class-2025-4711", ()),
            ("group.update", "NFA-year-Year_7", ()),
        ] or ops == [
            ("group.members.add", "NFA-class-2025-4711", ("n.teacher@nfa.example",)),
            ("group.members.add", "NFA-class-2025-4712", ("ben.o@nfa.example",)),
            ("group.members.remove", "NFA-class-2025-4711", ("ben.o@nfa.example",)),
            ("group.owners.add", "NFA-class-2025-4711", ("n.teacher@nfa.example",)),
            ("group.update", "NFA-class-2025-4711", ()),
        ]
        assert t.sync(moved).status == "ok"
        assert actual_groups(t) == expected_groups(t, moved)
        removed = replace(moved, groups=(GROUPS[1],), memberships=moved.memberships[3:])
        plan = t.sync(removed, dry_run=True).plan
        assert [(c.op, c.key) for c in plan.changes if c.op == "group.delete"] == [
            ("group.delete", "NFA-class-2025-4711")
        ]
        t.sync(removed)
        assert actual_groups(t) == expected_groups(t, removed)
        assert t.sync(removed).plan.changes == ()


def test_empty_roster_and_too_many_deletes_are_refused_and_write_nothing(tmp_path: Path) -> None:
    roster = generate("small")
    with tenant(tmp_path, roster, **GROUPS_ONLY) as t:
        t.sync(roster)
        before = json.dumps(t.state(), sort_keys=True)
        writes = t.sim.stats()["writes"]
        empty = t.sync(Roster((), (), ()))
        assert empty.status == "refused" and empty.exit_code == 4
        assert empty.refused is not None and empty.refused.limit == "roster_empty"
        no_classes = replace(roster, groups=tuple(g for g in roster.groups if g.type != "class"))
        refused = t.sync(no_classes)
        assert refused.exit_code == 4 and refused.refused is not None
        assert refused.refused.limit == "max_deletes"
        assert "limit 20" in refused.refused.message and "--force" in refused.refused.message
        assert t.sim.stats()["writes"] == writes
        assert json.dumps(t.state(), sort_keys=True) == before
        forced = t.sync(no_classes, force=True)
        assert forced.status == "ok" and forced.summary()["groups_deleted"] > 20


def test_unmatched_majority_is_refused(tmp_path: Path) -> None:
    roster = generate("small")
    seed = demo_seed(roster, missing_every=None)
    seed["users"] = seed["users"][: len(seed["users"]) // 3]
    with tenant(tmp_path, roster, seed=seed, **GROUPS_ONLY) as t:
        result = t.sync(roster)
        assert result.refused is not None and result.refused.limit == "max_unmatched_fraction"
        assert t.sim.stats()["writes"] == 0


def test_unmanaged_group_with_a_colliding_name_is_never_touched(tmp_path: Path) -> None:
    seed = demo_seed(TINY, missing_every=None)
    seed["groups"] = [
        {
            "id": "hand-made",
            "displayName": "7A/Ma1 Maths",
            "mailNickname": "7AMa1",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "members": [user_id_for("L3")],
            "owners": [user_id_for("S2")],
        }
    ]
    with tenant(tmp_path, TINY, seed=seed, **GROUPS_ONLY) as t:
        before = unmanaged(t)
        t.sync(TINY)
        t.sync(replace(TINY, groups=(), memberships=()))
        assert unmanaged(t) == before


def converge(t: Tenant, roster: Roster, *, runs: int = 2) -> int:
    """Run until a dry run plans nothing; return how many applying runs it took (at most `runs`)."""
    for applied in range(1, runs + 1):
        t.sync(roster)
        if not t.sync(roster, dry_run=True).plan.changes:
            return applied
    raise AssertionError(f"not converged after {runs} runs")


@pytest.mark.parametrize("seed", [3, 11, 29])
def test_faults_at_ten_percent_converge_within_two_runs_without_duplicates(tmp_path: Path, seed: int) -> None:
    roster = generate("small")
    spec = f"rate=0.1,seed={seed},kinds=429+503+504+drop+lost"
    with tenant(tmp_path, roster, faults=spec, **GROUPS_ONLY) as t:
        converge(t, roster, runs=2)
        assert t.sim.stats()["faults"] > 10
        nicknames = [g["mailNickname"].lower() for g in t.state()["groups"]]
        assert len(nicknames) == len(set(nicknames)), "duplicate groups"
        assert actual_groups(t) == expected_groups(t, roster)


class LoseFirstCreateResponse(httpx.BaseTransport):
    """Lets the tenant apply the first $batch that creates groups, then drops the connection."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.lost = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.lost and request.url.path.endswith("/$batch") and b'"url": "/groups"' in request.content:
            self.lost += 1
            raise httpx.RemoteProtocolError("connection dropped", request=request)
        return response


def test_lost_create_response_is_not_created_twice(tmp_path: Path) -> None:
    with tenant(tmp_path, TINY, **GROUPS_ONLY) as t:
        lossy = LoseFirstCreateResponse(t.sim.transport())
        client, _tokens = make_graph_client(t.config, transport=lossy)
        with client:
            t.client = client
            result = t.sync(TINY)
        assert lossy.lost == 1
        nicknames = [g["mailNickname"] for g in t.state()["groups"]]
        assert len(nicknames) == len(set(nicknames))
        assert len(t.managed_groups()) == len(expected_groups(t, TINY))
        creates = [o for o in result.outcomes or [] if o.change.op == "group.create"]
        assert creates and all(o.result == "ok" and o.object_id for o in creates)
        assert actual_groups(t) == expected_groups(t, TINY)


def test_missing_write_permission_stops_at_the_first_refusal_and_exits_3(tmp_path: Path) -> None:
    roster = generate("small")
    seed = demo_seed(roster, missing_every=None)
    seed["app"]["roles"] = ["User.Read.All", "Group.Read.All", "AdministrativeUnit.Read.All"]
    with tenant(tmp_path, roster, seed=seed, **GROUPS_ONLY) as t:
        result = t.sync(roster)
        assert result.exit_code == 3 and result.status == "failed"
        assert result.denied
        attempted = [o for o in result.outcomes or [] if not (o.error or "").startswith("not attempted")]
        assert all(o.result == "failed" for o in attempted)
        # It stopped after the refused phase instead of trying every addition too.
        assert {o.change.op for o in attempted} == {"group.create"}
        assert len(attempted) < len(result.plan.changes)
        assert "Insufficient privileges" in (attempted[0].error or "")
        assert t.managed_groups() == {}  # nothing was written
