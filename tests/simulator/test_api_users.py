"""Writing users in the simulated Graph API: creation rules, updates, soft deletion and restore, domains."""

from __future__ import annotations

from typing import Any

import pytest
from graph_harness import ALL_ROLES, Tenant, error_of, make_tenant

WRITER = ALL_ROLES | {"User.ReadWrite.All", "Domain.Read.All"}
PASSWORD = "Xk7#mP2q!vR9"


def new_user(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accountEnabled": True,
        "displayName": "Ada Pupil",
        "mailNickname": "ada.pupil",
        "userPrincipalName": "ada.pupil@school.example",
        "passwordProfile": {"forceChangePasswordNextSignIn": True, "password": PASSWORD},
        "givenName": "Ada",
        "surname": "Pupil",
        "department": "Year 7",
        "usageLocation": "GB",
        "onPremisesExtensionAttributes": {"extensionAttribute15": "smartsync:NFA-user-1"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def writer() -> Tenant:
    tenant = make_tenant()
    tenant.roles = frozenset(WRITER)
    return tenant


def test_create_user_returns_201_and_keeps_the_properties_but_not_the_password() -> None:
    tenant = writer()
    created = tenant.ok("POST", "/v1.0/users", new_user())
    assert created["userPrincipalName"] == "ada.pupil@school.example" and created["id"]
    got = tenant.ok(
        "GET",
        f"/v1.0/users/{created['id']}?$select=department,usageLocation,accountEnabled,onPremisesExtensionAttributes",
    )
    assert got["department"] == "Year 7" and got["usageLocation"] == "GB" and got["accountEnabled"] is True
    assert got["onPremisesExtensionAttributes"]["extensionAttribute15"] == "smartsync:NFA-user-1"
    assert got["onPremisesExtensionAttributes"]["extensionAttribute1"] is None
    assert PASSWORD not in repr(tenant.state.dump())


@pytest.mark.parametrize("missing", ["accountEnabled", "displayName", "mailNickname", "passwordProfile"])
def test_create_user_requires_the_documented_properties(missing: str) -> None:
    status, code, message = error_of(writer().call("POST", "/v1.0/users", new_user(**{missing: None})))
    assert (status, code) == (400, "Request_BadRequest") and missing in message


def test_create_user_refuses_unknown_properties_unverified_domains_duplicates_and_weak_passwords() -> None:
    tenant = writer()
    unknown = error_of(tenant.call("POST", "/v1.0/users", new_user(yearGroup="7")))
    assert unknown[0] == 400 and "yearGroup" in unknown[2]
    domain = error_of(tenant.call("POST", "/v1.0/users", new_user(userPrincipalName="ada@elsewhere.example")))
    assert domain[0] == 400 and "verified domain" in domain[2]
    weak = tenant.call("POST", "/v1.0/users", new_user(passwordProfile={"password": "password1"}))
    assert error_of(weak)[0] == 400 and "complexity" in error_of(weak)[2]
    assert "password1" not in weak.body.decode()
    tenant.ok("POST", "/v1.0/users", new_user())
    duplicate = error_of(
        tenant.call("POST", "/v1.0/users", new_user(userPrincipalName="ADA.PUPIL@school.example"))
    )
    assert duplicate[0] == 400 and "userPrincipalName already exists" in duplicate[2]


def test_user_writes_need_user_readwrite_all() -> None:
    tenant = make_tenant()  # User.Read.All only
    assert error_of(tenant.call("POST", "/v1.0/users", new_user()))[:2] == (
        403,
        "Authorization_RequestDenied",
    )
    user_id = tenant.user_ids[0]
    assert tenant.call("PATCH", f"/v1.0/users/{user_id}", {"accountEnabled": False}).status == 403
    assert tenant.call("DELETE", f"/v1.0/users/{user_id}").status == 403
    assert tenant.call("GET", "/v1.0/domains").status == 403


def test_patch_merges_extension_attributes_and_is_all_or_nothing() -> None:
    tenant = writer()
    user_id = tenant.user_ids[0]
    tenant.ok(
        "PATCH", f"/v1.0/users/{user_id}", {"onPremisesExtensionAttributes": {"extensionAttribute3": "x"}}
    )
    patch = {"accountEnabled": False, "onPremisesExtensionAttributes": {"extensionAttribute15": "m"}}
    assert tenant.call("PATCH", f"/v1.0/users/{user_id}", patch).status == 204
    got = tenant.ok("GET", f"/v1.0/users/{user_id}?$select=accountEnabled,onPremisesExtensionAttributes")
    extensions = got["onPremisesExtensionAttributes"]
    assert got["accountEnabled"] is False and (
        extensions["extensionAttribute3"],
        extensions["extensionAttribute15"],
    ) == (
        "x",
        "m",
    )
    bad = {"displayName": "Changed", "usageLocation": "Britain"}
    assert tenant.call("PATCH", f"/v1.0/users/{user_id}", bad).status == 400
    assert tenant.ok("GET", f"/v1.0/users/{user_id}")["displayName"] == "User 0"
    taken = {"userPrincipalName": "user1@school.example"}
    assert tenant.call("PATCH", f"/v1.0/users/{user_id}", taken).status == 400


def test_delete_is_soft_leaves_groups_and_can_be_restored() -> None:
    tenant = writer()
    user_id = tenant.user_ids[0]
    group_id = tenant.create_group("class-1", owners=1, members=2)
    assert tenant.call("DELETE", f"/v1.0/users/{user_id}").status == 204
    assert tenant.call("GET", f"/v1.0/users/{user_id}").status == 404
    assert user_id not in tenant.state.groups[group_id].members + tenant.state.groups[group_id].owners
    deleted = tenant.ok("GET", "/v1.0/directory/deletedItems/microsoft.graph.user")["value"]
    assert [u["id"] for u in deleted] == [user_id] and deleted[0]["deletedDateTime"]
    # The address stays reserved while the user is restorable.
    again = new_user(userPrincipalName="user0@school.example")
    assert tenant.call("POST", "/v1.0/users", again).status == 400
    restored = tenant.ok("POST", f"/v1.0/directory/deletedItems/{user_id}/restore")
    assert restored["id"] == user_id and tenant.ok("GET", f"/v1.0/users/{user_id}")["id"] == user_id
    assert tenant.call("POST", f"/v1.0/directory/deletedItems/{user_id}/restore").status == 404


def test_domains_lists_the_verified_domains() -> None:
    tenant = writer()
    domains = tenant.ok("GET", "/v1.0/domains?$select=id,isVerified")["value"]
    assert domains == [{"id": "school.example", "isVerified": True}]


def test_text_properties_longer_than_documented_are_refused() -> None:
    tenant = writer()
    assert error_of(tenant.call("POST", "/v1.0/users", new_user(department="x" * 65)))[0] == 400
    assert error_of(tenant.call("POST", "/v1.0/users", new_user(employeeId="1" * 17)))[0] == 400
    assert tenant.call("POST", "/v1.0/users", new_user(department="x" * 64)).status == 201
