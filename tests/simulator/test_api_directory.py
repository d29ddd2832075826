"""Users, administrative units, education classes, the app registration and permissions in the simulated
Graph API."""

from __future__ import annotations

import base64

import pytest
from graph_harness import CLIENT_ID, Tenant, error_of, make_tenant, ref


def test_users_filter_by_sign_in_addresses_and_select() -> None:
    tenant = make_tenant()
    found = tenant.ok(
        "GET",
        "/v1.0/users?$filter=userPrincipalName in ('USER1@school.example','user3@school.example')"
        "&$select=id,userPrincipalName,employeeId,accountEnabled",
    )
    assert [u["userPrincipalName"] for u in found["value"]] == [
        "user1@school.example",
        "user3@school.example",
    ]
    assert set(found["value"][0]) == {"id", "userPrincipalName", "employeeId", "accountEnabled"}
    by_employee = tenant.ok("GET", "/v1.0/users?$filter=employeeId eq 'E0002'&$select=mail")
    assert by_employee["value"] == [{"mail": "user2@school.example"}]
    # employeeId and accountEnabled are not in Graph's default user properties.
    default = tenant.ok("GET", "/v1.0/users?$top=1")["value"][0]
    assert "employeeId" not in default
    assert default["userPrincipalName"] == "user0@school.example"


def test_get_user_by_id_or_principal_name() -> None:
    tenant = make_tenant()
    user_id = tenant.user_ids[1]
    assert tenant.ok("GET", f"/v1.0/users/{user_id}")["userPrincipalName"] == "user1@school.example"
    assert tenant.ok("GET", "/v1.0/users/user1@school.example?$select=id") == {
        "@odata.context": "https://graph.simulator.invalid/v1.0/$metadata#users/$entity",
        "id": user_id,
    }
    missing = tenant.call("GET", "/v1.0/users/00000000-0000-0000-0000-000000000000")
    assert error_of(missing)[:2] == (404, "Request_ResourceNotFound")


def create_unit(
    tenant: Tenant, description: str = "Learners [smartsync:NFA-au-learners]", **extra: object
) -> str:
    response = tenant.call(
        "POST",
        "/v1.0/directory/administrativeUnits",
        {"displayName": "Learners", "description": description, **extra},
    )
    assert response.status == 201, response.body
    unit_id: str = response.json()["id"]
    return unit_id


def test_administrative_unit_lifecycle() -> None:
    tenant = make_tenant()
    unit_id = create_unit(tenant, isMemberManagementRestricted=True)
    unit = tenant.ok("GET", f"/v1.0/directory/administrativeUnits/{unit_id}")
    assert unit["isMemberManagementRestricted"] is True
    assert unit["description"] == "Learners [smartsync:NFA-au-learners]"
    restricted = tenant.call(
        "PATCH", f"/v1.0/directory/administrativeUnits/{unit_id}", {"isMemberManagementRestricted": False}
    )
    assert error_of(restricted)[0] == 400
    assert tenant.state.administrative_units[unit_id].is_member_management_restricted is True
    tenant.ok("PATCH", f"/v1.0/directory/administrativeUnits/{unit_id}", {"displayName": "All learners"})
    assert tenant.state.administrative_units[unit_id].display_name == "All learners"
    unknown = tenant.call("PATCH", f"/v1.0/directory/administrativeUnits/{unit_id}", {"colour": "red"})
    assert (
        error_of(unknown)[2]
        == "Property 'colour' does not exist on type 'microsoft.graph.administrativeUnit'."
    )
    assert tenant.call("DELETE", f"/v1.0/directory/administrativeUnits/{unit_id}").status == 204
    assert error_of(tenant.call("GET", f"/v1.0/directory/administrativeUnits/{unit_id}"))[0] == 404


def test_administrative_unit_members() -> None:
    tenant = make_tenant()
    unit_id = create_unit(tenant)
    url = f"/v1.0/directory/administrativeUnits/{unit_id}/members"
    first, second = tenant.user_ids[:2]
    assert tenant.call("POST", f"{url}/$ref", {"@odata.id": ref(first)}).status == 204
    assert tenant.call("POST", f"{url}/$ref", {"@odata.id": ref(second)}).status == 204
    duplicate = tenant.call("POST", f"{url}/$ref", {"@odata.id": ref(first)})
    assert error_of(duplicate) == (
        400,
        "Request_BadRequest",
        "One or more added object references already exist for the following modified properties: 'members'.",
    )
    listed = tenant.ok("GET", f"{url}?$select=id,userPrincipalName")
    assert [m["id"] for m in listed["value"]] == [first, second]
    assert listed["value"][0]["@odata.type"] == "#microsoft.graph.user"
    assert tenant.call("DELETE", f"{url}/{first}/$ref").status == 204
    assert error_of(tenant.call("DELETE", f"{url}/{first}/$ref"))[:2] == (404, "Request_ResourceNotFound")
    assert error_of(tenant.call("DELETE", f"{url}/{second}"))[0] == 405
    assert tenant.state.administrative_units[unit_id].members == [second]


def test_administrative_units_filter_select_and_paging() -> None:
    tenant = make_tenant()
    ids = [create_unit(tenant, f"Year {i} [smartsync:NFA-au-year-{i}]") for i in range(5)]
    page = tenant.ok("GET", "/v1.0/directory/administrativeUnits?$select=id,description&$top=2")
    seen = [u["id"] for u in page["value"]]
    while "@odata.nextLink" in page:
        page = tenant.ok("GET", page["@odata.nextLink"])
        seen += [u["id"] for u in page["value"]]
    assert seen == ids
    assert set(page["value"][0]) == {"id", "description"}
    filtered = tenant.ok(
        "GET", "/v1.0/directory/administrativeUnits?$filter=startswith(description,'Year 3')"
    )
    assert [u["id"] for u in filtered["value"]] == [ids[3]]


def test_education_class_creates_a_unified_group_with_the_same_id() -> None:
    tenant = make_tenant()
    response = tenant.call(
        "POST",
        "/v1.0/education/classes",
        {
            "displayName": "7A/Ma1 Maths",
            "mailNickname": "smartsync-NFA-class-4711",
            "externalId": "4711",
            "externalName": "7A/Ma1",
            "externalSource": "sis",
        },
    )
    assert response.status == 201
    body = response.json()
    group = tenant.state.groups[body["id"]]
    assert group.is_unified and group.mail_enabled and not group.security_enabled
    assert (body["externalId"], body["externalSource"]) == ("4711", "sis")
    assert (
        tenant.ok("GET", f"/v1.0/education/classes/{body['id']}")["mailNickname"]
        == "smartsync-NFA-class-4711"
    )
    unknown = tenant.call(
        "POST", "/v1.0/education/classes", {"displayName": "x", "mailNickname": "y", "owners": []}
    )
    assert error_of(unknown)[0] == 400
    duplicate = tenant.call(
        "POST", "/v1.0/education/classes", {"displayName": "x", "mailNickname": "smartsync-nfa-class-4711"}
    )
    assert error_of(duplicate)[0] == 400


def test_application_credentials() -> None:
    pem = "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n"
    seed = {
        "tenant_id": "t",
        "app": {
            "client_id": CLIENT_ID,
            "client_secret": "s",
            "roles": ["Application.Read.All"],
            "password_credentials": [
                {"displayName": "cron", "endDateTime": "2026-01-31T00:00:00Z", "hint": "abc"}
            ],
            "key_credentials": [
                {
                    "displayName": "cert",
                    "endDateTime": "2027-01-01T00:00:00Z",
                    "customKeyIdentifier": "AB12",
                    "key": pem,
                }
            ],
        },
    }
    tenant = make_tenant(seed_data=seed)
    url = f"/v1.0/applications(appId='{CLIENT_ID}')?$select=passwordCredentials,keyCredentials"
    body = tenant.ok("GET", url)
    assert body["passwordCredentials"][0]["endDateTime"] == "2026-01-31T00:00:00Z"
    assert body["passwordCredentials"][0]["secretText"] is None
    key = body["keyCredentials"][0]
    assert (key["customKeyIdentifier"], key["type"]) == ("AB12", "AsymmetricX509Cert")
    assert base64.b64decode(key["key"]) == bytes([0, 1, 2, 3, 4, 5])
    assert set(body) == {"@odata.context", "passwordCredentials", "keyCredentials"}
    assert error_of(tenant.call("GET", url, roles=frozenset({"User.Read.All"})))[0] == 403
    other = tenant.call("GET", "/v1.0/applications(appId='00000000-0000-0000-0000-000000000009')")
    assert error_of(other)[0] == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "granted", "allowed"),
    [
        ("GET", "/v1.0/users", None, "Group.Read.All", False),
        ("GET", "/v1.0/users", None, "User.Read.All", True),
        ("GET", "/v1.0/groups", None, "User.Read.All", False),
        ("GET", "/v1.0/groups", None, "GroupMember.Read.All", True),
        ("POST", "/v1.0/groups", "group", "GroupMember.ReadWrite.All", False),
        ("POST", "/v1.0/groups", "group", "Group.ReadWrite.All", True),
        ("DELETE", "/v1.0/groups/{group}", None, "GroupMember.ReadWrite.All", False),
        ("POST", "/v1.0/groups/{group}/members/$ref", "member", "Group.Read.All", False),
        ("POST", "/v1.0/groups/{group}/members/$ref", "member", "GroupMember.ReadWrite.All", True),
        ("GET", "/v1.0/directory/administrativeUnits", None, "Group.ReadWrite.All", False),
        ("GET", "/v1.0/directory/administrativeUnits", None, "AdministrativeUnit.Read.All", True),
        ("POST", "/v1.0/directory/administrativeUnits", "unit", "AdministrativeUnit.Read.All", False),
        ("POST", "/v1.0/directory/administrativeUnits", "unit", "AdministrativeUnit.ReadWrite.All", True),
        ("POST", "/v1.0/education/classes", "class", "Group.ReadWrite.All", False),
        ("POST", "/v1.0/education/classes", "class", "EduRoster.ReadWrite.All", True),
    ],
)
def test_permissions(method: str, path: str, body: str | None, granted: str, allowed: bool) -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("existing")
    bodies = {
        None: None,
        "group": {"displayName": "g", "mailNickname": "g", "mailEnabled": False, "securityEnabled": True},
        "member": {"@odata.id": ref(tenant.user_ids[3])},
        "unit": {"displayName": "u"},
        "class": {"displayName": "c", "mailNickname": "c"},
    }
    response = tenant.call(method, path.format(group=group_id), bodies[body], roles=frozenset({granted}))
    if allowed:
        assert 200 <= response.status < 300, response.body
    else:
        assert error_of(response) == (
            403,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        )
