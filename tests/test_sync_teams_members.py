"""Membership changes of groups with a team: the Teams membership API, or the group API as a fallback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness import Tenant, tenant
from test_reliability_support import read_journal

from smartsync.demo import demo_seed, user_id_for
from smartsync.roster.model import Group, Membership, Person, Roster
from smartsync.simulator.resources.team_members import MEMBER_LAG_SECONDS, catch_up

PEOPLE = tuple(
    [Person(f"L{n}", "learner", f"learner{n}@nfa.example", "Pupil", f"N{n}", "Year 7") for n in range(1, 8)]
    + [Person(f"S{n}", "staff", f"staff{n}@nfa.example", "Staff", f"T{n}") for n in range(1, 4)]
)
CLASS = Group("4711", "7A/Ma1", "class", subject="Maths", year_group="Year 7")
NICK = "smartsync-NFA-class-2025-4711"


def roster(learners: list[str], teachers: list[str]) -> Roster:
    members = [Membership("4711", p, "learner") for p in learners]
    members += [Membership("4711", p, "teacher") for p in teachers]
    return Roster(PEOPLE, (CLASS,), tuple(members))


FIRST = roster(["L1", "L2", "L3"], ["S1"])
# L1 leaves, L4 and L5 join, S2 joins as a second teacher; S1 stays.
SECOND = roster(["L2", "L3", "L4", "L5"], ["S1", "S2"])


def ids(*people: str) -> set[str]:
    return {user_id_for(p) for p in people}


def the_class(t: Tenant) -> dict[str, Any]:
    return t.managed_groups()[NICK]


def team_view(t: Tenant, group_id: str) -> tuple[set[str], set[str]]:
    """The team's membership as the simulated Teams service shows it now."""
    team = t.sim.state.groups[group_id].team
    assert team is not None
    catch_up(team, t.sim.clock.now())
    return set(team.members), set(team.owners)


def writes_to(t: Tenant, group_id: str, since: int) -> list[tuple[str, str]]:
    return [
        (r.method, r.path)
        for r in t.sim.request_log[since:]
        if group_id in r.path and r.method != "GET" and r.status < 400
    ]


def without_teams_member_permission(people: Roster) -> dict[str, Any]:
    seed = demo_seed(people, missing_every=None)
    seed["app"]["roles"] = [r for r in seed["app"]["roles"] if r != "TeamMember.ReadWrite.All"]
    return seed


def test_changes_to_a_team_go_through_the_teams_api_and_reach_teams_at_once(tmp_path: Path) -> None:
    with tenant(tmp_path, FIRST, missing_every=None) as t:
        assert t.sync(FIRST).status == "ok"
        gid = the_class(t)["id"]
        assert team_view(t, gid) == (ids("L1", "L2", "L3", "S1"), ids("S1"))
        mark = len(t.sim.request_log)
        second = t.sync(SECOND)
        assert second.status == "ok", [(o.change.op, o.error) for o in second.failed]
        assert "teams_membership" in [n.code for n in second.plan.notices]
        assert "Teams membership API" in second.document()["warnings"][-1]["message"]
        group = the_class(t)
        assert set(group["members"]) == ids("L2", "L3", "L4", "L5", "S1", "S2")
        assert set(t.user_owners(group)) == ids("S1", "S2")
        # Teams shows the change at once: no waiting for the group API's hours.
        assert team_view(t, gid) == (ids("L2", "L3", "L4", "L5", "S1", "S2"), ids("S1", "S2"))
        listed = t.client.get_all(f"/teams/{gid}/members")
        assert {r["userId"] for r in listed if "owner" in r["roles"]} == ids("S1", "S2")
        assert writes_to(t, gid, mark) == [
            ("POST", f"/v1.0/teams/{gid}/members/add"),
            ("POST", f"/v1.0/teams/{gid}/members/remove"),
        ]
        added = next(r for r in t.sim.request_log[mark:] if r.path.endswith("/members/add"))
        roles = {v["user@odata.bind"].split("'")[1]: v["roles"] for v in added.body["values"]}
        assert roles == {user_id_for("L4"): [], user_id_for("L5"): [], user_id_for("S2"): ["owner"]}
        assert t.sync(SECOND).plan.changes == ()


def test_without_the_permission_the_group_api_is_used_with_a_notice(tmp_path: Path) -> None:
    seed = without_teams_member_permission(FIRST)
    with tenant(tmp_path, FIRST, seed=seed) as t:
        assert t.sync(FIRST).status == "ok"
        gid = the_class(t)["id"]
        mark = len(t.sim.request_log)
        second = t.sync(SECOND)
        assert second.status == "ok", [(o.change.op, o.error) for o in second.failed]
        notice = next(n for n in second.plan.notices if n.code == "teams_membership_fallback")
        assert "TeamMember.ReadWrite.All" in notice.message and "group API" in notice.message
        group = the_class(t)
        assert set(group["members"]) == ids("L2", "L3", "L4", "L5", "S1", "S2")
        assert set(t.user_owners(group)) == ids("S1", "S2")
        assert not [
            r for r in t.sim.request_log[mark:] if "/members/add" in r.path or "/members/remove" in r.path
        ]
        # Teams still shows the old class: group-API changes reach it hours later.
        assert team_view(t, gid)[0] == ids("L1", "L2", "L3", "S1")
        t.sim.clock.advance(MEMBER_LAG_SECONDS + 1)
        assert team_view(t, gid) == (ids("L2", "L3", "L4", "L5", "S1", "S2"), ids("S1", "S2"))


def test_outside_the_global_cloud_removals_use_the_group_api(tmp_path: Path) -> None:
    with tenant(tmp_path, FIRST, missing_every=None, tenant={"cloud": "usgov"}) as t:
        t.sim.api.cloud = "usgov"
        assert t.sync(FIRST).status == "ok"
        gid = the_class(t)["id"]
        mark = len(t.sim.request_log)
        second = t.sync(SECOND)
        assert second.status == "ok", [(o.change.op, o.error) for o in second.failed]
        assert "global cloud only" in next(
            n.message for n in second.plan.notices if n.code == "teams_membership"
        )
        assert writes_to(t, gid, mark) == [
            ("POST", f"/v1.0/teams/{gid}/members/add"),
            ("DELETE", f"/v1.0/groups/{gid}/members/{user_id_for('L1')}/$ref"),
        ]
        assert set(the_class(t)["members"]) == ids("L2", "L3", "L4", "L5", "S1", "S2")


def test_a_member_who_becomes_a_teacher_is_promoted_through_the_group_api(tmp_path: Path) -> None:
    before = roster(["L1", "L2"], ["S1"])
    with tenant(tmp_path, before, missing_every=None) as t:
        first = Roster(PEOPLE, (CLASS,), (*before.memberships, Membership("4711", "S2", "member")))
        assert t.sync(first).status == "ok"
        gid = the_class(t)["id"]
        mark = len(t.sim.request_log)
        promoted = Roster(PEOPLE, (CLASS,), (*before.memberships, Membership("4711", "S2", "teacher")))
        assert t.sync(promoted).status == "ok"
        assert writes_to(t, gid, mark) == [("POST", f"/v1.0/groups/{gid}/owners/$ref")]
        assert set(t.user_owners(the_class(t))) == ids("S1", "S2")
        assert t.sync(promoted).plan.changes == ()


def test_teams_answers_per_person_and_one_failure_fails_only_that_person(tmp_path: Path) -> None:
    with tenant(tmp_path, FIRST, missing_every=None) as t:
        assert t.sync(FIRST).status == "ok"
        # L5's account is deleted after smartsync read the users and before it applies.
        gone = user_id_for("L5")
        real_handle = t.sim.api.handle

        def handle(req: Any, principal: Any) -> Any:
            if req.path.endswith("/members/add"):
                t.sim.state.users.pop(gone, None)
            return real_handle(req, principal)

        t.sim.api.handle = handle  # type: ignore[method-assign]
        second = t.sync(SECOND)
        assert second.status == "partial"
        (failed,) = second.failed
        assert failed.change.op == "group.members.add"
        assert {u: r for u, (r, _) in failed.users.items()} == {
            user_id_for("L4"): "ok",
            user_id_for("S2"): "ok",
            gone: "failed",
        }
        assert "NotFound" in (failed.users[gone][1] or "")
        group = the_class(t)
        assert set(group["members"]) == ids("L2", "L3", "L4", "S1", "S2")
        lines = [e for e in read_journal(t.config.journal.path) if e.get("user") == "learner5@nfa.example"]
        assert lines[-1]["result"] == "failed"


def test_a_team_that_teams_cannot_find_falls_back_to_the_group_api(tmp_path: Path) -> None:
    with tenant(tmp_path, FIRST, missing_every=None) as t:
        assert t.sync(FIRST).status == "ok"
        group = t.sim.state.groups[the_class(t)["id"]]
        # Entra still says the group is a team, Teams does not know it (deleted in Teams, say).
        group.team = None
        group.resource_provisioning_options.append("Team")
        mark = len(t.sim.request_log)
        second = t.sync(SECOND)
        assert second.status == "ok", [(o.change.op, o.error) for o in second.failed]
        refused = [
            r for r in t.sim.request_log[mark:] if r.path.endswith(("/members/add", "/members/remove"))
        ]
        assert refused and all(r.status == 404 for r in refused)
        assert set(the_class(t)["members"]) == ids("L2", "L3", "L4", "L5", "S1", "S2")
        assert set(t.user_owners(the_class(t))) == ids("S1", "S2")
