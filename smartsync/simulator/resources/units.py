"""Administrative units and their members."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import bad_request, parse_select, project
from smartsync.simulator.resources.base import (
    _LIST_OPTIONS,
    UNIT_DEFAULT,
    UNIT_FILTERABLE,
    ApiBase,
    _membership_type,
    _query_items,
    _refuse_read_only,
    _string,
    _unit_visibility,
    already_exists,
    invalid_value,
    not_found,
)
from smartsync.simulator.schema import entity_type
from smartsync.simulator.tenant import AdministrativeUnit


class UnitsApi(ApiBase):
    def _render_unit(self, unit: AdministrativeUnit, selected: list[str] | None) -> dict[str, Any]:
        out = project(unit.properties(), selected, UNIT_DEFAULT)
        out.pop("@odata.type", None)
        return out

    def _list_units(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "admin_units.read")
        self._allow_options(query, (*_LIST_OPTIONS, "$filter", "$orderby"))
        find = entity_type("administrativeUnit").find_property
        selected = parse_select(query.get("$select"), find, "administrativeUnit")
        units = self.state.administrative_units
        items = _query_items(
            query, [u.properties() for u in units.values()], UNIT_FILTERABLE, "AdministrativeUnit"
        )
        context = "directory/administrativeUnits"
        if selected is not None:
            context += f"({','.join(selected)})"
        return self._page(
            req, query, items, lambda item: self._render_unit(units[item["id"]], selected), context
        )

    def _get_unit(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.read")
        self._allow_options(query, ("$select",))
        unit = self._unit(unit_id)
        find = entity_type("administrativeUnit").find_property
        selected = parse_select(query.get("$select"), find, "administrativeUnit")
        out = {"@odata.context": self._context("directory/administrativeUnits/$entity")}
        out.update(self._render_unit(unit, selected))
        return SimResponse.of_json(200, out)

    def _create_unit(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "admin_units.write")
        body = self._body(req, "administrativeUnit")
        _refuse_read_only(body, "administrativeUnit")
        restricted = body.get("isMemberManagementRestricted", False)
        if not isinstance(restricted, bool):
            raise invalid_value("isMemberManagementRestricted", "AdministrativeUnit")
        unit = AdministrativeUnit(
            id=self.state.new_id(),
            display_name=_string(body, "displayName", "AdministrativeUnit", required=True),
            description=_string(body, "description", "AdministrativeUnit"),
            visibility=_unit_visibility(body.get("visibility")),
            membership_type=_membership_type(body.get("membershipType")),
            is_member_management_restricted=restricted,
        )
        self.state.administrative_units[unit.id] = unit
        out = {"@odata.context": self._context("directory/administrativeUnits/$entity")}
        out.update(self._render_unit(unit, None))
        location = f"{self.base_url}/v1.0/directory/administrativeUnits/{unit.id}"
        return SimResponse.of_json(201, out, {"location": location})

    def _update_unit(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.write")
        unit = self._unit(unit_id)
        body = self._body(req, "administrativeUnit")
        _refuse_read_only(body, "administrativeUnit")
        if "isMemberManagementRestricted" in body:
            raise bad_request(
                "Property 'isMemberManagementRestricted' can only be set when the administrative unit "
                "is created."
            )
        changes: dict[str, Any] = {}
        if "displayName" in body:
            changes["display_name"] = _string(body, "displayName", "AdministrativeUnit", required=True)
        if "description" in body:
            changes["description"] = _string(body, "description", "AdministrativeUnit")
        if "visibility" in body:
            changes["visibility"] = _unit_visibility(body["visibility"])
        if "membershipType" in body:
            changes["membership_type"] = _membership_type(body["membershipType"])
        for attribute, value in changes.items():
            setattr(unit, attribute, value)
        return SimResponse.empty(204)

    def _delete_unit(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.write")
        unit = self._unit(unit_id)
        del self.state.administrative_units[unit_id]
        unit.deleted = self._now()
        self.state.deleted_administrative_units[unit_id] = unit
        return SimResponse.empty(204)

    def _list_unit_members(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.read")
        return self._list_links(req, query, self._unit(unit_id).members)

    def _list_unit_member_refs(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.read")
        return self._list_link_refs(req, query, self._unit(unit_id).members)

    def _add_unit_member(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.write")
        unit = self._unit(unit_id)
        object_id = self._ref_body(req)
        if self.state.directory_object_kind(object_id) is None:
            raise not_found(object_id)
        if (unit.membership_type or "").lower() == "dynamic":
            raise bad_request(
                "Members of an administrative unit with dynamic membership cannot be added or removed."
            )
        if object_id in unit.members:
            raise already_exists("members")
        unit.members.append(object_id)
        return SimResponse.empty(204)

    def _remove_unit_member(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], unit_id: str, object_id: str
    ) -> SimResponse:
        self._require(principal, "admin_units.write")
        unit = self._unit(unit_id)
        if object_id not in unit.members:
            raise not_found(object_id)
        unit.members.remove(object_id)
        return SimResponse.empty(204)
