"""Teams in the simulated Graph API: creation from groups, replication delay, async operations, archiving."""

from __future__ import annotations

from typing import Any

from graph_harness import error_of, make_tenant

STANDARD = "https://graph.microsoft.com/v1.0/teamsTemplates('standard')"
EDUCATION_CLASS = "https://graph.microsoft.com/v1.0/teamsTemplates('educationClass')"


def team_body(group_id: str, template: str = STANDARD) -> dict[str, Any]:
    return {
        "template@odata.bind": template,
        "group@odata.bind": f"https://graph.microsoft.com/v1.0/groups('{group_id}')",
    }


def create_class(tenant: Any, nickname: str) -> str:
    created = tenant.ok(
        "POST",
        "/v1.0/education/classes",
        {
            "displayName": "7A/Ma1 Maths",
            "mailNickname": nickname,
            "description": "Maths",
            "externalId": "4711",
            "externalName": "7A/Ma1",
            "externalSource": "sis",
            "classCode": "7A/Ma1",
        },
    )
    class_id: str = created["id"]
    return class_id


def test_put_team_on_a_group_with_an_owner() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    response = tenant.call("PUT", f"/v1.0/groups/{group_id}/team", {})
    assert response.status == 201
    body = response.json()
    assert body["id"] == group_id
    assert body["isArchived"] is False
    assert "Team" in tenant.ok("GET", f"/v1.0/groups/{group_id}")["resourceProvisioningOptions"]
    again = tenant.call("PUT", f"/v1.0/groups/{group_id}/team", {})
    assert error_of(again)[:2] == (409, "Conflict")


def test_team_needs_a_unified_group_with_an_owner() -> None:
    tenant = make_tenant()
    no_owner = tenant.create_group("no-owner", owners=0)
    security = tenant.create_group("security", unified=False)
    assert error_of(tenant.call("PUT", f"/v1.0/groups/{no_owner}/team", {}))[0] == 400
    assert error_of(tenant.call("PUT", f"/v1.0/groups/{security}/team", {}))[0] == 400
    assert error_of(tenant.call("POST", "/v1.0/teams", team_body(no_owner)))[0] == 400
    assert tenant.state.groups[no_owner].team is None


def test_new_group_is_not_found_until_replicated() -> None:
    tenant = make_tenant(replication_delay=900.0)
    group_id = tenant.create_group("g")
    for attempt in (
        tenant.call("PUT", f"/v1.0/groups/{group_id}/team", {}),
        tenant.call("POST", "/v1.0/teams", team_body(group_id)),
    ):
        assert error_of(attempt)[:2] == (404, "NotFound")
    tenant.clock.advance(899.0)
    assert error_of(tenant.call("PUT", f"/v1.0/groups/{group_id}/team", {}))[0] == 404
    tenant.clock.advance(1.0)
    assert tenant.call("PUT", f"/v1.0/groups/{group_id}/team", {}).status == 201


def test_post_teams_is_asynchronous_with_a_pollable_operation() -> None:
    tenant = make_tenant(team_provisioning_time=30.0)
    group_id = tenant.create_group("g")
    response = tenant.call("POST", "/v1.0/teams", team_body(group_id))
    assert response.status == 202
    assert response.body == b""
    location = response.headers["location"]
    assert location.startswith(f"/teams('{group_id}')/operations('")
    assert response.headers["content-location"] == f"/teams('{group_id}')"
    operation = tenant.ok("GET", "/v1.0" + location)
    assert (operation["status"], operation["operationType"]) == ("inProgress", "createTeam")
    assert operation["targetResourceId"] == group_id
    assert error_of(tenant.call("GET", f"/v1.0/teams/{group_id}"))[0] == 404
    assert "Team" not in tenant.ok("GET", f"/v1.0/groups/{group_id}")["resourceProvisioningOptions"]
    tenant.clock.advance(30.0)
    assert tenant.ok("GET", "/v1.0" + location)["status"] == "succeeded"
    assert tenant.ok("GET", f"/v1.0/teams/{group_id}")["isArchived"] is False
    assert "Team" in tenant.ok("GET", f"/v1.0/groups/{group_id}")["resourceProvisioningOptions"]
    assert error_of(tenant.call("POST", "/v1.0/teams", team_body(group_id)))[0] == 409


def test_education_class_template_is_refused_for_a_plain_group() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    response = tenant.call("POST", "/v1.0/teams", team_body(group_id, EDUCATION_CLASS))
    assert error_of(response) == (
        400,
        "BadRequest",
        "Team with template 'educationClass' can not be provisioned using a group which does not "
        "belong to a class",
    )
    assert tenant.state.groups[group_id].team is None


def test_education_class_template_on_a_class_group() -> None:
    tenant = make_tenant(team_provisioning_time=0.0)
    class_id = create_class(tenant, "smartsync-NFA-class-4711")
    group = tenant.ok("GET", f"/v1.0/groups/{class_id}")
    assert (group["groupTypes"], group["mailNickname"]) == (["Unified"], "smartsync-NFA-class-4711")
    teacher = tenant.user_ids[0]
    tenant.ok(
        "POST",
        f"/v1.0/groups/{class_id}/owners/$ref",
        {"@odata.id": f"https://graph.microsoft.com/v1.0/users/{teacher}"},
    )
    assert tenant.call("POST", "/v1.0/teams", team_body(class_id, EDUCATION_CLASS)).status == 202
    assert tenant.ok("GET", f"/v1.0/teams/{class_id}")["id"] == class_id


def test_archive_and_unarchive() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    tenant.ok("PUT", f"/v1.0/groups/{group_id}/team", {})
    archived = tenant.call(
        "POST", f"/v1.0/teams/{group_id}/archive", {"shouldSetSpoSiteReadOnlyForMembers": True}
    )
    assert archived.status == 202
    operation = tenant.ok("GET", "/v1.0" + archived.headers["location"])
    assert (operation["operationType"], operation["status"]) == ("archiveTeam", "succeeded")
    assert tenant.ok("GET", f"/v1.0/teams/{group_id}")["isArchived"] is True
    assert tenant.call("POST", f"/v1.0/teams/{group_id}/unarchive").status == 202
    assert tenant.ok("GET", f"/v1.0/teams/{group_id}")["isArchived"] is False
    missing = tenant.create_group("no-team")
    assert error_of(tenant.call("POST", f"/v1.0/teams/{missing}/archive"))[0] == 404


def test_team_permissions() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    denied = tenant.call("POST", "/v1.0/teams", team_body(group_id), roles=frozenset({"Group.Read.All"}))
    assert error_of(denied) == (
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
    created = tenant.call("POST", "/v1.0/teams", team_body(group_id), roles=frozenset({"Team.Create"}))
    assert created.status == 202
    tenant.clock.advance(10.0)
    not_settings = tenant.call("POST", f"/v1.0/teams/{group_id}/archive", roles=frozenset({"Team.Create"}))
    assert error_of(not_settings)[0] == 403
    allowed = tenant.call(
        "POST", f"/v1.0/teams/{group_id}/archive", roles=frozenset({"TeamSettings.ReadWrite.All"})
    )
    assert allowed.status == 202
