"""Groups and their members and owners: create, read, update, delete, `$ref` and `@odata.bind`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request, parse_select, unsupported_query
from smartsync.simulator.resources.base import (
    _LIST_OPTIONS,
    GROUP_FILTERABLE,
    MAX_LINK_CHANGES,
    ApiBase,
    _behaviour_options,
    _boolean,
    _group_types,
    _member_property,
    _query_items,
    _refuse_read_only,
    _string,
    _visibility,
    already_exists,
    invalid_value,
    not_found,
)
from smartsync.simulator.resources.team_members import group_api_change
from smartsync.simulator.schema import entity_type
from smartsync.simulator.tenant import Group


class GroupsApi(ApiBase):
    def _expand(self, query: Mapping[str, str]) -> list[tuple[str, list[str] | None]]:
        text = query.get("$expand")
        if text is None:
            return []
        expanded: list[tuple[str, list[str] | None]] = []
        for part in re.findall(r"[^,(]+(?:\([^)]*\))?", text):
            match = re.fullmatch(r"\s*(members|owners)\s*(?:\(\s*\$select=([^)]*)\))?\s*", part)
            if match is None:
                raise unsupported_query(f"Expanding '{part.strip()}' is not supported.")
            select = (
                None
                if match.group(2) is None
                else parse_select(match.group(2), _member_property, "directoryObject")
            )
            expanded.append((match.group(1), select))
        return expanded

    def _list_groups(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "groups.read")
        self._allow_options(query, (*_LIST_OPTIONS, "$filter", "$orderby", "$expand"))
        selected = parse_select(query.get("$select"), entity_type("group").find_property, "group")
        expand = self._expand(query)
        now = self._now()
        groups = self.state.groups
        items = _query_items(
            query, [g.properties(now, self.state.domain) for g in groups.values()], GROUP_FILTERABLE, "Group"
        )
        context = "groups" if selected is None else f"groups({','.join(selected)})"
        return self._page(
            req, query, items, lambda item: self._render_group(groups[item["id"]], selected, expand), context
        )

    def _get_group(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        self._require(principal, "groups.read")
        self._allow_options(query, ("$select", "$expand"))
        group = self._group(group_id)
        selected = parse_select(query.get("$select"), entity_type("group").find_property, "group")
        out = {"@odata.context": self._context("groups/$entity")}
        out.update(self._render_group(group, selected, self._expand(query)))
        return SimResponse.of_json(200, out)

    def _create_group(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "groups.create")
        body = self._body(req, "group", binds=("members", "owners"))
        _refuse_read_only(body, "group")
        for required in ("displayName", "mailEnabled", "mailNickname", "securityEnabled"):
            if required not in body:
                raise invalid_value(required, "Group")
        group_types = _group_types(body.get("groupTypes", []))
        unified = "Unified" in group_types
        display_name = _string(body, "displayName", "Group", required=True)
        mail_enabled = _boolean(body, "mailEnabled", "Group")
        security_enabled = _boolean(body, "securityEnabled", "Group")
        if mail_enabled and not unified:
            raise bad_request(
                "The service does not currently support writes of mail-enabled groups. Please ensure that "
                "the mail-enablement property is unset and the security-enablement property is set."
            )
        nickname = self._check_nickname(body["mailNickname"], unified=unified)
        visibility = _visibility(body.get("visibility"))
        behaviour = _behaviour_options(body.get("resourceBehaviorOptions", []), unified)
        provisioning = body.get("resourceProvisioningOptions", [])
        if not isinstance(provisioning, list) or not all(isinstance(o, str) for o in provisioning):
            raise invalid_value("resourceProvisioningOptions", "Group")
        members = self._parse_refs(body.get("members@odata.bind", []), "members")
        owners = self._parse_refs(body.get("owners@odata.bind", []), "owners")
        if len(members) + len(owners) > MAX_LINK_CHANGES:
            raise bad_request("A resource cannot contain more than 20 link changes")
        group = Group(
            id=self.state.new_id(),
            display_name=display_name,
            mail_nickname=nickname,
            mail_enabled=mail_enabled,
            security_enabled=security_enabled,
            description=_string(body, "description", "Group"),
            group_types=group_types,
            visibility=visibility or ("Public" if unified else None),
            resource_behavior_options=behaviour,
            resource_provisioning_options=[o for o in provisioning if o != "Team"],
            created=self._now(),
            members=members,
            owners=owners,
        )
        self.state.groups[group.id] = group
        out = {"@odata.context": self._context("groups/$entity")}
        out.update(self._render_group(group, None, []))
        return SimResponse.of_json(201, out, {"location": f"{self.base_url}/v1.0/groups/{group.id}"})

    def _update_group(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        group = self._group(group_id)
        body = self._body(req, "group", binds=("members", "owners"))
        binds = {k for k in body if k.endswith("@odata.bind")}
        self._require(principal, "groups.update" if set(body) - binds else "groups.members.write")
        _refuse_read_only(body, "group")
        if "resourceBehaviorOptions" in body:
            raise bad_request("Property 'resourceBehaviorOptions' can only be set when the group is created.")
        if body.get("visibility") == "HiddenMembership":
            raise bad_request("Visibility 'HiddenMembership' can only be set when the group is created.")
        # Validate everything first: a failing request must change nothing.
        changes: dict[str, Any] = {}
        if "displayName" in body:
            changes["display_name"] = _string(body, "displayName", "Group", required=True)
        if "description" in body:
            changes["description"] = _string(body, "description", "Group")
        if "mailEnabled" in body:
            changes["mail_enabled"] = _boolean(body, "mailEnabled", "Group")
        if "securityEnabled" in body:
            changes["security_enabled"] = _boolean(body, "securityEnabled", "Group")
        if "groupTypes" in body:
            changes["group_types"] = _group_types(body["groupTypes"])
        if "visibility" in body:
            changes["visibility"] = _visibility(body["visibility"])
        if "mailNickname" in body:
            changes["mail_nickname"] = self._check_nickname(
                body["mailNickname"], unified=group.is_unified, exclude=group.id
            )
        members = self._parse_refs(body.get("members@odata.bind", []), "members")
        owners = self._parse_refs(body.get("owners@odata.bind", []), "owners")
        if len(members) + len(owners) > MAX_LINK_CHANGES:
            raise bad_request("A resource cannot contain more than 20 link changes")
        if any(m in group.members for m in members) or group.id in members:
            raise already_exists("members")
        if any(o in group.owners for o in owners):
            raise already_exists("owners")
        for attribute, value in changes.items():
            setattr(group, attribute, value)
        group.members.extend(members)
        group.owners.extend(owners)
        group_api_change(group, "members", members, True, self._now())
        group_api_change(group, "owners", owners, True, self._now())
        return SimResponse.empty(204)

    def _delete_group(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        self._require(principal, "groups.delete")
        group = self._group(group_id)
        del self.state.groups[group_id]
        group.deleted = self._now()
        self.state.deleted_groups[group_id] = group
        for other in self.state.groups.values():
            if group_id in other.members:
                other.members.remove(group_id)
        for unit in self.state.administrative_units.values():
            if group_id in unit.members:
                unit.members.remove(group_id)
        return SimResponse.empty(204)

    def _list_group_links(
        self,
        req: SimRequest,
        principal: Principal,
        query: Mapping[str, str],
        group_id: str,
        relationship: str,
    ) -> SimResponse:
        self._require(principal, "groups.read")
        group = self._group(group_id)
        return self._list_links(req, query, group.members if relationship == "members" else group.owners)

    def _list_group_link_refs(
        self,
        req: SimRequest,
        principal: Principal,
        query: Mapping[str, str],
        group_id: str,
        relationship: str,
    ) -> SimResponse:
        self._require(principal, "groups.read")
        group = self._group(group_id)
        return self._list_link_refs(req, query, group.members if relationship == "members" else group.owners)

    def _add_group_link(
        self,
        req: SimRequest,
        principal: Principal,
        query: Mapping[str, str],
        group_id: str,
        relationship: str,
    ) -> SimResponse:
        self._require(principal, "groups.members.write")
        group = self._group(group_id)
        object_id = self._ref_body(req)
        kind = self.state.directory_object_kind(object_id)
        if kind is None or (relationship == "owners" and kind != "user") or object_id == group.id:
            raise not_found(object_id)
        links = group.members if relationship == "members" else group.owners
        if object_id in links:
            raise already_exists(relationship)
        links.append(object_id)
        group_api_change(group, relationship, [object_id], True, self._now())
        return SimResponse.empty(204)

    def _remove_group_link(
        self,
        req: SimRequest,
        principal: Principal,
        query: Mapping[str, str],
        group_id: str,
        relationship: str,
        object_id: str,
    ) -> SimResponse:
        self._require(principal, "groups.members.write")
        group = self._group(group_id)
        links = group.members if relationship == "members" else group.owners
        if object_id not in links:
            raise not_found(object_id)
        if relationship == "owners" and len(links) == 1:
            raise bad_request("The group must have at least one owner, hence this owner cannot be removed.")
        links.remove(object_id)
        group_api_change(group, relationship, [object_id], False, self._now())
        return SimResponse.empty(204)

    def _refuse_link_delete(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], *_: str
    ) -> SimResponse:
        raise GraphError(
            405,
            "Request_BadRequest",
            "Specified HTTP method is not allowed for the request target. "
            "To remove a member or owner, send DELETE to .../{id}/$ref.",
        )
