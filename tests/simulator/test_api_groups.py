"""Groups, their members and owners, paging and queries in the simulated Graph API."""

from __future__ import annotations

from graph_harness import error_of, make_tenant, ref

DUPLICATE = (
    "One or more added object references already exist for the following modified properties: 'members'."
)


def test_create_group_returns_201_with_the_group_and_location() -> None:
    tenant = make_tenant()
    owner = tenant.user_ids[0]
    response = tenant.call(
        "POST",
        "/v1.0/groups",
        {
            "displayName": "7A/Ma1 Maths",
            "mailNickname": "smartsync-NFA-class-1",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
            "resourceBehaviorOptions": ["WelcomeEmailDisabled", "HideGroupInOutlook"],
            "owners@odata.bind": [ref(owner)],
        },
    )
    assert response.status == 201
    body = response.json()
    assert body["displayName"] == "7A/Ma1 Maths"
    assert body["groupTypes"] == ["Unified"]
    assert body["resourceBehaviorOptions"] == ["WelcomeEmailDisabled", "HideGroupInOutlook"]
    assert response.headers["location"].endswith(f"/v1.0/groups/{body['id']}")
    assert tenant.state.groups[body["id"]].owners == [owner]


def test_missing_required_property_is_refused() -> None:
    tenant = make_tenant()
    response = tenant.call(
        "POST", "/v1.0/groups", {"displayName": "x", "mailEnabled": False, "securityEnabled": True}
    )
    assert error_of(response)[:2] == (400, "Request_BadRequest")
    assert "mailNickname" in error_of(response)[2]
    assert tenant.state.groups == {}


def test_mail_enabled_security_group_is_refused_as_graph_does() -> None:
    tenant = make_tenant()
    response = tenant.call(
        "POST",
        "/v1.0/groups",
        {"displayName": "x", "mailNickname": "x", "mailEnabled": True, "securityEnabled": True},
    )
    status, code, message = error_of(response)
    assert (status, code) == (400, "Request_BadRequest")
    assert "does not currently support writes of mail-enabled groups" in message


def test_unknown_property_is_refused_with_graphs_message() -> None:
    tenant = make_tenant()
    body = {
        "displayName": "x",
        "mailNickname": "x",
        "mailEnabled": False,
        "securityEnabled": True,
        "colour": 1,
    }
    response = tenant.call("POST", "/v1.0/groups", body)
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        "Property 'colour' does not exist on type 'microsoft.graph.group'.",
    )
    group_id = tenant.create_group("smartsync-a")
    patch = tenant.call("PATCH", f"/v1.0/groups/{group_id}", {"displayname": "wrong case"})
    assert error_of(patch)[2] == "Property 'displayname' does not exist on type 'microsoft.graph.group'."
    # Inherited properties and annotations Graph allows pass the check.
    tenant.ok(
        "PATCH", f"/v1.0/groups/{group_id}", {"@odata.type": "#microsoft.graph.group", "description": "d"}
    )
    assert tenant.state.groups[group_id].description == "d"


def test_mail_nickname_characters_length_and_uniqueness() -> None:
    tenant = make_tenant()

    def create(nickname: str) -> tuple[int, str, str] | int:
        response = tenant.call(
            "POST",
            "/v1.0/groups",
            {"displayName": "g", "mailNickname": nickname, "mailEnabled": False, "securityEnabled": True},
        )
        return response.status if response.status == 201 else error_of(response)

    invalid = (
        400,
        "Request_BadRequest",
        "Invalid value specified for property 'mailNickname' of resource 'Group'.",
    )
    assert create("has space") == invalid
    assert create("7A/Ma1") == 201  # "/" is ASCII and not on Graph's forbidden list
    assert create("bad@char") == invalid
    assert create("caf\u00e9") == invalid
    assert create("x" * 65) == invalid
    assert create("x" * 64) == 201
    assert create("smartsync-NFA_class-1") == 201
    assert create("SMARTSYNC-nfa_class-1") == (
        400,
        "Request_BadRequest",
        "Another object with the same value for property mailNickname already exists.",
    )


def test_creation_accepts_twenty_references_and_refuses_twenty_one() -> None:
    tenant = make_tenant(users=25)
    users = tenant.user_ids

    def body(nickname: str, owners: int, members: int) -> dict[str, object]:
        return {
            "displayName": nickname,
            "mailNickname": nickname,
            "mailEnabled": False,
            "securityEnabled": True,
            "owners@odata.bind": [ref(u) for u in users[:owners]],
            "members@odata.bind": [ref(u) for u in users[owners : owners + members]],
        }

    too_many = tenant.call("POST", "/v1.0/groups", body("g21", 2, 19))
    assert error_of(too_many) == (
        400,
        "Request_BadRequest",
        "A resource cannot contain more than 20 link changes",
    )
    assert tenant.state.groups == {}
    created = tenant.ok("POST", "/v1.0/groups", body("g20", 2, 18))
    group = tenant.state.groups[created["id"]]
    assert (len(group.owners), len(group.members)) == (2, 18)


def test_a_bad_reference_fails_the_whole_creation() -> None:
    tenant = make_tenant()
    response = tenant.call(
        "POST",
        "/v1.0/groups",
        {
            "displayName": "g",
            "mailNickname": "g",
            "mailEnabled": False,
            "securityEnabled": True,
            "members@odata.bind": [ref(tenant.user_ids[0]), ref("00000000-0000-0000-0000-00000000dead")],
        },
    )
    assert error_of(response)[:2] == (400, "Request_BadRequest")
    assert tenant.state.groups == {}


def test_patch_adding_an_existing_member_fails_and_applies_nothing() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g", members=1)
    existing, new = tenant.user_ids[0], tenant.user_ids[1]
    response = tenant.call(
        "PATCH",
        f"/v1.0/groups/{group_id}",
        {"displayName": "renamed", "members@odata.bind": [ref(new), ref(existing)]},
    )
    assert error_of(response) == (400, "Request_BadRequest", DUPLICATE)
    group = tenant.state.groups[group_id]
    assert group.members == [existing]
    assert group.display_name == "g"


def test_patch_adds_up_to_twenty_members_and_refuses_more() -> None:
    tenant = make_tenant(users=42)
    group_id = tenant.create_group("g", owners=1)
    users = tenant.user_ids
    over = tenant.call(
        "PATCH", f"/v1.0/groups/{group_id}", {"members@odata.bind": [ref(u) for u in users[1:22]]}
    )
    assert error_of(over)[0] == 400
    assert tenant.state.groups[group_id].members == []
    response = tenant.call(
        "PATCH", f"/v1.0/groups/{group_id}", {"members@odata.bind": [ref(u) for u in users[1:21]]}
    )
    assert response.status == 204
    assert response.body == b""
    assert tenant.state.groups[group_id].members == users[1:21]


def test_patch_only_membership_needs_only_groupmember_permission() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    roles = frozenset({"GroupMember.ReadWrite.All"})
    added = tenant.call(
        "PATCH", f"/v1.0/groups/{group_id}", {"members@odata.bind": [ref(tenant.user_ids[1])]}, roles=roles
    )
    assert added.status == 204
    renamed = tenant.call("PATCH", f"/v1.0/groups/{group_id}", {"displayName": "n"}, roles=roles)
    assert error_of(renamed)[:2] == (403, "Authorization_RequestDenied")


def test_add_member_ref_duplicate_and_unknown() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    user = tenant.user_ids[2]
    url = f"/v1.0/groups/{group_id}/members/$ref"
    assert tenant.call("POST", url, {"@odata.id": ref(user)}).status == 204
    assert error_of(tenant.call("POST", url, {"@odata.id": ref(user)})) == (
        400,
        "Request_BadRequest",
        DUPLICATE,
    )
    unknown = "00000000-0000-0000-0000-00000000beef"
    status, code, _ = error_of(tenant.call("POST", url, {"@odata.id": ref(unknown)}))
    assert (status, code) == (404, "Request_ResourceNotFound")
    # A /users/{id} URL names the same object.
    other = tenant.user_ids[3]
    users_url = f"https://graph.microsoft.com/v1.0/users/{other}"
    assert tenant.call("POST", url, {"@odata.id": users_url}).status == 204
    assert tenant.state.groups[group_id].members == [user, other]


def test_remove_member_ref_and_non_member_404() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g", members=2)
    first, second = tenant.user_ids[:2]
    assert tenant.call("DELETE", f"/v1.0/groups/{group_id}/members/{first}/$ref").status == 204
    assert tenant.state.groups[group_id].members == [second]
    again = tenant.call("DELETE", f"/v1.0/groups/{group_id}/members/{first}/$ref")
    assert error_of(again)[:2] == (404, "Request_ResourceNotFound")


def test_delete_member_without_ref_is_refused_and_deletes_nothing() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g", members=2)
    member = tenant.user_ids[1]
    response = tenant.call("DELETE", f"/v1.0/groups/{group_id}/members/{member}")
    assert error_of(response)[0] == 405
    assert member in tenant.state.users
    assert member in tenant.state.groups[group_id].members


def test_last_owner_cannot_be_removed() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g", owners=2)
    first, second = tenant.user_ids[:2]
    assert tenant.call("DELETE", f"/v1.0/groups/{group_id}/owners/{first}/$ref").status == 204
    response = tenant.call("DELETE", f"/v1.0/groups/{group_id}/owners/{second}/$ref")
    assert error_of(response) == (
        400,
        "Request_BadRequest",
        "The group must have at least one owner, hence this owner cannot be removed.",
    )
    assert tenant.state.groups[group_id].owners == [second]


def test_delete_soft_deletes_and_restore_brings_the_group_back() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g", members=1)
    assert tenant.call("DELETE", f"/v1.0/groups/{group_id}").status == 204
    assert error_of(tenant.call("GET", f"/v1.0/groups/{group_id}"))[0] == 404
    deleted = tenant.ok("GET", "/v1.0/directory/deletedItems/microsoft.graph.group")
    assert [g["id"] for g in deleted["value"]] == [group_id]
    assert deleted["value"][0]["deletedDateTime"] is not None
    # A deleted Microsoft 365 group still holds its alias.
    reuse = tenant.call(
        "POST",
        "/v1.0/groups",
        {
            "displayName": "g",
            "mailNickname": "g",
            "mailEnabled": True,
            "securityEnabled": False,
            "groupTypes": ["Unified"],
        },
    )
    assert error_of(reuse)[0] == 400
    restored = tenant.ok("POST", f"/v1.0/directory/deletedItems/{group_id}/restore")
    assert restored["@odata.type"] == "#microsoft.graph.group"
    assert tenant.ok("GET", f"/v1.0/groups/{group_id}")["mailNickname"] == "g"


def test_deleted_groups_are_purged_after_thirty_days() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("g")
    tenant.ok("DELETE", f"/v1.0/groups/{group_id}")
    tenant.clock.advance(31 * 24 * 3600)
    assert tenant.ok("GET", "/v1.0/directory/deletedItems/microsoft.graph.group")["value"] == []


def test_select_returns_exactly_the_selected_properties() -> None:
    tenant = make_tenant()
    group_id = tenant.create_group("smartsync-a")
    listed = tenant.ok("GET", "/v1.0/groups?$select=id,mailNickname")
    assert listed["value"] == [{"id": group_id, "mailNickname": "smartsync-a"}]
    assert listed["@odata.context"].endswith("#groups(id,mailNickname)")
    # As in Graph's documented examples, id is returned only when selected.
    one = tenant.ok("GET", f"/v1.0/groups/{group_id}?$select=displayName")
    assert {k for k in one if not k.startswith("@")} == {"displayName"}
    members = tenant.ok("GET", f"/v1.0/groups/{group_id}/owners?$select=id,userPrincipalName")
    assert members["value"] == [
        {
            "@odata.type": "#microsoft.graph.user",
            "id": tenant.user_ids[0],
            "userPrincipalName": "user0@school.example",
        }
    ]
    bad = tenant.call("GET", "/v1.0/groups?$select=id,nonsense")
    assert error_of(bad)[0] == 400


def test_filters_eq_in_startswith_and_or_any() -> None:
    tenant = make_tenant()
    a = tenant.create_group("smartsync-a")
    b = tenant.create_group("smartsync-b", unified=False, owners=0)
    c = tenant.create_group("other-c")

    def ids(expression: str) -> set[str]:
        return {g["id"] for g in tenant.ok("GET", f"/v1.0/groups?$filter={expression}&$select=id")["value"]}

    assert ids("startswith(mailNickname,'smartsync-')") == {a, b}
    assert ids("startswith(mailNickname, 'SMARTSYNC-')") == {a, b}
    assert ids("mailNickname eq 'other-c'") == {c}
    assert ids("mailNickname in ('smartsync-a','other-c')") == {a, c}
    assert ids("startswith(mailNickname,'smartsync-') and securityEnabled eq true") == {b}
    assert ids("mailNickname eq 'smartsync-a' or mailNickname eq 'other-c'") == {a, c}
    assert ids("groupTypes/any(t:t eq 'Unified')") == {a, c}
    unsupported = tenant.call("GET", "/v1.0/groups?$filter=description eq 'x'")
    assert error_of(unsupported)[:2] == (400, "Request_UnsupportedQuery")
    syntax = tenant.call("GET", "/v1.0/groups?$filter=startswith(mailNickname")
    assert error_of(syntax)[0] == 400


def test_paging_follows_next_links_across_pages() -> None:
    tenant = make_tenant()
    created = [tenant.create_group(f"smartsync-{i:02d}", owners=0, unified=False) for i in range(7)]
    seen: list[str] = []
    page = tenant.ok("GET", "/v1.0/groups?$top=3&$select=id&$filter=startswith(mailNickname,'smartsync-')")
    pages = 1
    while True:
        seen.extend(g["id"] for g in page["value"])
        assert len(page["value"]) <= 3
        if "@odata.nextLink" not in page:
            break
        assert page["@odata.nextLink"].startswith("https://graph.simulator.invalid/v1.0/groups?")
        page = tenant.ok("GET", page["@odata.nextLink"])
        pages += 1
    assert pages == 3
    assert seen == created


def test_top_limits_and_tampered_tokens() -> None:
    tenant = make_tenant()
    for i in range(3):
        tenant.create_group(f"g{i}", owners=0, unified=False)
    assert error_of(tenant.call("GET", "/v1.0/groups?$top=1000"))[0] == 400
    assert error_of(tenant.call("GET", "/v1.0/groups?$top=0"))[0] == 400
    assert len(tenant.ok("GET", "/v1.0/groups?$top=999")["value"]) == 3
    next_link = tenant.ok("GET", "/v1.0/groups?$top=1")["@odata.nextLink"]
    token = next_link.split("$skiptoken=")[1]
    tampered = next_link.replace(token, token[:-2] + ("AA" if token[-2:] != "AA" else "BB"))
    assert error_of(tenant.call("GET", tampered))[:2] == (400, "Request_BadRequest")
    # A token is bound to its query: reusing it with another $top is refused too.
    assert error_of(tenant.call("GET", f"/v1.0/groups?$top=2&$skiptoken={token}"))[0] == 400


def test_default_page_size_is_100_and_count_needs_consistency_level() -> None:
    tenant = make_tenant(users=150)
    first = tenant.ok("GET", "/v1.0/users?$select=id")
    assert len(first["value"]) == 100
    assert "@odata.nextLink" in first
    second = tenant.ok("GET", first["@odata.nextLink"])
    assert len(second["value"]) == 50
    assert "@odata.nextLink" not in second
    assert error_of(tenant.call("GET", "/v1.0/users?$count=true"))[0] == 400
    counted = tenant.ok("GET", "/v1.0/users?$count=true&$top=1", headers={"ConsistencyLevel": "eventual"})
    assert counted["@odata.count"] == 150


def test_member_paging_and_expand_limit() -> None:
    tenant = make_tenant(users=45)
    group_id = tenant.create_group("g", owners=1)
    users = tenant.user_ids
    for start in (1, 21):
        tenant.ok(
            "PATCH",
            f"/v1.0/groups/{group_id}",
            {"members@odata.bind": [ref(u) for u in users[start : start + 20]]},
        )
    page = tenant.ok("GET", f"/v1.0/groups/{group_id}/members?$top=25&$select=id")
    ids = [m["id"] for m in page["value"]]
    ids += [m["id"] for m in tenant.ok("GET", page["@odata.nextLink"])["value"]]
    assert ids == users[1:41]
    expanded = tenant.ok("GET", f"/v1.0/groups/{group_id}?$expand=members($select=id)")
    assert len(expanded["members"]) == 20  # Graph expands at most 20 directory objects


def test_client_request_id_is_echoed_and_request_ids_are_fresh() -> None:
    tenant = make_tenant()
    one = tenant.call("GET", "/v1.0/groups", headers={"client-request-id": "abc-123"})
    two = tenant.call("GET", "/v1.0/groups")
    assert one.headers["client-request-id"] == "abc-123"
    assert one.headers["request-id"] != two.headers["request-id"]
    assert two.headers["client-request-id"]


def test_unknown_segments_and_methods() -> None:
    tenant = make_tenant()
    assert error_of(tenant.call("GET", "/v1.0/widgets"))[0] == 400
    assert error_of(tenant.call("PUT", "/v1.0/groups"))[0] == 405
