"""The simulated tenant's state: seed loading, generated ids and the state dump."""

from __future__ import annotations

import json

from graph_harness import make_tenant, ref, seed

from smartsync.simulator.tenant import TenantState


def test_missing_ids_are_generated_the_same_way_every_time() -> None:
    first = TenantState.from_seed(seed(3))
    second = TenantState.from_seed(seed(3))
    assert list(first.users) == list(second.users)
    assert len(set(first.users)) == 3
    assert first.user_count() == 3
    assert first.find_user("USER2@school.example") is first.users[list(first.users)[2]]


def test_seed_ids_and_relationships_are_kept() -> None:
    data = {
        "tenant_id": "tid",
        "app": {"client_id": "cid", "client_secret": "sec", "roles": ["User.Read.All"]},
        "users": [{"id": "u-1", "userPrincipalName": "a@school.example", "accountEnabled": False}],
        "groups": [
            {
                "id": "g-1",
                "displayName": "Staff",
                "mailNickname": "staff",
                "mailEnabled": False,
                "securityEnabled": True,
                "members": ["u-1"],
                "owners": ["u-1"],
            }
        ],
        "administrative_units": [{"id": "au-1", "displayName": "Staff", "members": ["u-1"]}],
    }
    state = TenantState.from_seed(data)
    assert state.users["u-1"].account_enabled is False
    assert state.groups["g-1"].members == ["u-1"]
    assert state.administrative_units["au-1"].members == ["u-1"]
    assert state.app.client_secrets == ["sec"]
    assert state.app.roles == ["User.Read.All"]


def test_dump_round_trips_through_json_after_changes() -> None:
    tenant = make_tenant(team_provisioning_time=0.0)
    group_id = tenant.create_group("smartsync-a", members=2)
    tenant.ok("PUT", f"/v1.0/groups/{group_id}/team", {})
    unit = tenant.ok("POST", "/v1.0/directory/administrativeUnits", {"displayName": "Learners"})["id"]
    tenant.ok(
        "POST",
        f"/v1.0/directory/administrativeUnits/{unit}/members/$ref",
        {"@odata.id": ref(tenant.user_ids[0])},
    )
    gone = tenant.create_group("gone")
    tenant.ok("DELETE", f"/v1.0/groups/{gone}")

    dumped = json.loads(json.dumps(tenant.state.dump()))
    group = next(g for g in dumped["groups"] if g["id"] == group_id)
    assert group["members"] == tenant.user_ids[:2]
    assert group["owners"] == tenant.user_ids[:1]
    assert group["team"]["isArchived"] is False
    assert dumped["administrative_units"][0]["members"] == [tenant.user_ids[0]]
    assert [g["id"] for g in dumped["deleted_groups"]] == [gone]

    reloaded = TenantState.from_seed(dumped)
    assert reloaded.dump() == dumped
