"""The Teams membership API of the simulated tenant: bulk add and remove, per-value results, permissions,
the lag of group-API changes behind Teams, and the cost of a request."""

from __future__ import annotations

from typing import Any

from graph_harness import ALL_ROLES, error_of, make_tenant, ref

from smartsync.simulator import Simulator
from smartsync.simulator.resources.team_members import MEMBER_LAG_SECONDS, OWNER_LAG_SECONDS
from smartsync.simulator.throttle import Throttle, request_cost


def value(user: str, *, owner: bool = False, roles: bool = True) -> dict[str, Any]:
    item: dict[str, Any] = {
        "@odata.type": "microsoft.graph.aadUserConversationMember",
        "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{user}')",
    }
    if roles:
        item["roles"] = ["owner"] if owner else []
    return item


def team_of(tenant: Any, *, owners: int = 1, members: int = 0) -> str:
    group_id = tenant.create_group("t", owners=owners, members=members)
    tenant.ok("PUT", f"/v1.0/groups/{group_id}/team", {})
    return group_id


def team_view(tenant: Any, team_id: str) -> tuple[set[str], set[str]]:
    rows = tenant.ok("GET", f"/v1.0/teams/{team_id}/members")["value"]
    return {r["userId"] for r in rows}, {r["userId"] for r in rows if "owner" in r["roles"]}


def group_lists(tenant: Any, group_id: str) -> tuple[set[str], set[str]]:
    group = tenant.state.groups[group_id]
    return set(group.members), set(group.owners)


def test_bulk_add_reaches_the_group_and_the_team_at_once() -> None:
    tenant = make_tenant(users=5)
    u = tenant.user_ids
    team_id = team_of(tenant)
    response = tenant.call(
        "POST", f"/v1.0/teams/{team_id}/members/add", {"values": [value(u[1]), value(u[2], owner=True)]}
    )
    assert response.status == 200
    body = response.json()
    assert body["@odata.context"].endswith(
        "$metadata#Collection(microsoft.graph.aadUserConversationMemberResult)"
    )
    assert body["value"] == [
        {"@odata.type": "#microsoft.graph.aadUserConversationMemberResult", "userId": u[1], "error": None},
        {"@odata.type": "#microsoft.graph.aadUserConversationMemberResult", "userId": u[2], "error": None},
    ]
    # An owner is a member too, in the group and in the team.
    assert group_lists(tenant, team_id) == ({u[1], u[2]}, {u[0], u[2]})
    assert team_view(tenant, team_id) == ({u[0], u[1], u[2]}, {u[0], u[2]})


def test_add_by_user_principal_name_and_again_is_harmless() -> None:
    tenant = make_tenant(users=3)
    u = tenant.user_ids
    team_id = team_of(tenant)
    tenant.ok("POST", f"/v1.0/teams/{team_id}/members/add", {"values": [value("user1@school.example")]})
    again = tenant.call("POST", f"/v1.0/teams/{team_id}/members/add", {"values": [value(u[1])]})
    assert again.status == 200
    assert group_lists(tenant, team_id)[0] == {u[1]}


def test_a_missing_user_fails_only_its_own_value() -> None:
    tenant = make_tenant(users=3)
    u = tenant.user_ids
    team_id = team_of(tenant)
    ghost = "6f1b2c3d-0000-4000-8000-00000000dead"
    response = tenant.call(
        "POST", f"/v1.0/teams/{team_id}/members/add", {"values": [value(ghost), value(u[1])]}
    )
    assert response.status == 207
    results = {r["userId"]: r["error"] for r in response.json()["value"]}
    assert results[u[1]] is None
    assert results[ghost]["code"] == "NotFound"
    assert u[1] in tenant.state.groups[team_id].members


def test_bulk_remove_takes_members_and_owners_out_and_answers_204() -> None:
    tenant = make_tenant(users=5)
    u = tenant.user_ids
    team_id = team_of(tenant, owners=2, members=4)
    response = tenant.call(
        "POST",
        f"/v1.0/teams/{team_id}/members/remove",
        {"values": [value(u[1], roles=False), value(u[3], roles=False)]},
    )
    assert response.status == 204
    assert group_lists(tenant, team_id) == ({u[0], u[2]}, {u[0]})
    assert team_view(tenant, team_id) == ({u[0], u[2]}, {u[0]})


def test_remove_of_a_non_member_and_of_the_last_owner_fail_per_value() -> None:
    tenant = make_tenant(users=5)
    u = tenant.user_ids
    team_id = team_of(tenant, owners=1, members=2)
    response = tenant.call(
        "POST",
        f"/v1.0/teams/{team_id}/members/remove",
        {"values": [value(u[4], roles=False), value(u[0], roles=False), value(u[1], roles=False)]},
    )
    assert response.status == 207
    results = {r["userId"]: r["error"] for r in response.json()["value"]}
    assert results[u[4]] == {"code": "NotFound", "message": "Could not find resource"}
    assert results[u[0]]["code"] == "BadRequest"
    assert results[u[1]] is None
    assert group_lists(tenant, team_id) == ({u[0]}, {u[0]})


def test_limits_and_shapes_are_checked_for_the_whole_request() -> None:
    tenant = make_tenant(users=30)
    u = tenant.user_ids
    team_id = team_of(tenant)
    path = f"/v1.0/teams/{team_id}/members"
    too_many = {"values": [value(x, roles=False) for x in u[1:22]]}
    assert error_of(tenant.call("POST", f"{path}/remove", too_many))[0] == 400
    assert error_of(tenant.call("POST", f"{path}/add", {"values": [value(u[1]), value(u[1])]}))[0] == 400
    assert error_of(tenant.call("POST", f"{path}/add", {"values": []}))[0] == 400
    unknown = {"values": [{**value(u[1]), "nickname": "x"}]}
    assert "does not exist" in error_of(tenant.call("POST", f"{path}/add", unknown))[2]
    untyped = {
        "values": [{"roles": [], "user@odata.bind": f"https://graph.microsoft.com/v1.0/users('{u[1]}')"}]
    }
    assert error_of(tenant.call("POST", f"{path}/add", untyped))[0] == 400
    assert tenant.state.groups[team_id].members == []
    many = {"values": [value(x) for x in u[1:30]]}
    assert tenant.call("POST", f"{path}/add", many).status == 200


def test_a_group_without_a_team_answers_404() -> None:
    tenant = make_tenant(users=3)
    group_id = tenant.create_group("plain")
    response = tenant.call(
        "POST", f"/v1.0/teams/{group_id}/members/add", {"values": [value(tenant.user_ids[1])]}
    )
    assert error_of(response)[:2] == (404, "NotFound")


def test_permissions_come_from_the_token() -> None:
    tenant = make_tenant(users=3)
    u = tenant.user_ids
    team_id = team_of(tenant)
    path = f"/v1.0/teams/{team_id}/members/add"
    without = ALL_ROLES - {"TeamMember.ReadWrite.All"}
    denied = tenant.call("POST", path, {"values": [value(u[1])]}, roles=without)
    assert error_of(denied)[:2] == (403, "Authorization_RequestDenied")
    non_owner = without | {"TeamMember.ReadWriteNonOwnerRole.All"}
    assert tenant.call("POST", path, {"values": [value(u[1])]}, roles=non_owner).status == 200
    owner = tenant.call("POST", path, {"values": [value(u[2], owner=True)]}, roles=non_owner)
    assert error_of(owner)[0] == 403
    assert tenant.state.groups[team_id].owners == [u[0]]


def test_remove_is_not_offered_outside_the_global_cloud() -> None:
    tenant = make_tenant(users=3)
    u = tenant.user_ids
    team_id = team_of(tenant, members=2)
    tenant.api.cloud = "usgov"
    response = tenant.call(
        "POST", f"/v1.0/teams/{team_id}/members/remove", {"values": [value(u[1], roles=False)]}
    )
    assert error_of(response)[0] == 400
    assert u[1] in tenant.state.groups[team_id].members
    assert tenant.call("POST", f"/v1.0/teams/{team_id}/members/add", {"values": [value(u[2])]}).status == 200


def test_group_api_changes_reach_the_team_hours_later() -> None:
    tenant = make_tenant(users=5)
    u = tenant.user_ids
    team_id = team_of(tenant, members=1)
    tenant.ok("POST", f"/v1.0/groups/{team_id}/members/$ref", {"@odata.id": ref(u[2])})
    tenant.ok("POST", f"/v1.0/groups/{team_id}/owners/$ref", {"@odata.id": ref(u[3])})
    tenant.ok("DELETE", f"/v1.0/groups/{team_id}/members/{u[0]}/$ref")
    assert team_view(tenant, team_id) == ({u[0]}, {u[0]})
    tenant.clock.advance(OWNER_LAG_SECONDS + 1)
    assert team_view(tenant, team_id) == ({u[0], u[3]}, {u[0], u[3]})
    tenant.clock.advance(MEMBER_LAG_SECONDS)
    # u0 left the members but is still an owner, and Teams lists its owners as members.
    assert team_view(tenant, team_id) == ({u[0], u[2], u[3]}, {u[0], u[3]})


def test_teams_api_change_is_not_undone_by_a_slower_group_change() -> None:
    tenant = make_tenant(users=4)
    u = tenant.user_ids
    team_id = team_of(tenant)
    tenant.ok("POST", f"/v1.0/groups/{team_id}/members/$ref", {"@odata.id": ref(u[1])})
    tenant.call("POST", f"/v1.0/teams/{team_id}/members/remove", {"values": [value(u[1], roles=False)]})
    tenant.clock.advance(MEMBER_LAG_SECONDS + 1)
    assert u[1] not in team_view(tenant, team_id)[0]


def test_a_request_costs_one_write_whatever_its_size_and_one_team_takes_four_a_second() -> None:
    add = request_cost("POST", "/v1.0/teams/abc/members/add", {})
    assert (add.ru, add.writes) == (1, 1)
    remove = request_cost("POST", "/v1.0/teams/abc/members/remove", {})
    assert (remove.ru, remove.writes) == (1, 1)
    throttle = Throttle()
    assert [throttle.admit("app", add, 100.0, 1000) for _ in range(4)] == [0.0] * 4
    assert throttle.admit("app", remove, 100.0, 1000) > 0.0  # the same team, the same second
    other = request_cost("POST", "/v1.0/teams/xyz/members/add", {})
    assert throttle.admit("app", other, 100.0, 1000) == 0.0
    assert throttle.admit("app", add, 101.0, 1000) == 0.0


def test_state_dump_keeps_the_team_view() -> None:
    tenant = make_tenant(users=3)
    u = tenant.user_ids
    team_id = team_of(tenant)
    tenant.ok("POST", f"/v1.0/groups/{team_id}/members/$ref", {"@odata.id": ref(u[1])})
    dumped = tenant.state.dump()
    again = Simulator(dumped).state.dump()
    team = next(g for g in again["groups"] if g["id"] == team_id)["team"]
    assert team["members"] == [u[0]]
    assert team["pending"][0]["user_id"] == u[1]
