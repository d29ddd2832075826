"""Deleted items: soft-deleted groups and units, listed, restored and purged."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import bad_request, parse_select, project
from smartsync.simulator.resources.base import (
    GROUP_DEFAULT,
    UNIT_DEFAULT,
    ApiBase,
    not_found,
)
from smartsync.simulator.schema import entity_type


class DeletedItemsApi(ApiBase):
    def _deleted_properties(self, object_id: str) -> dict[str, Any] | None:
        group = self.state.deleted_groups.get(object_id)
        if group is not None:
            return group.properties(self._now(), self.state.domain)
        unit = self.state.deleted_administrative_units.get(object_id)
        return unit.properties() if unit is not None else None

    def _list_deleted(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], kind: str
    ) -> SimResponse:
        self._require(principal, "deleted_items.read")
        self._allow_options(query, ("$select", "$top", "$skiptoken", "$count"))
        default: tuple[str, ...]
        if kind == "group":
            items = [g.properties(self._now(), self.state.domain) for g in self.state.deleted_groups.values()]
            default, schema = GROUP_DEFAULT, entity_type("group")
        else:
            items = [u.properties() for u in self.state.deleted_administrative_units.values()]
            default, schema = UNIT_DEFAULT, entity_type("administrativeUnit")
        selected = parse_select(query.get("$select"), schema.find_property, kind)

        def render(item: dict[str, Any]) -> dict[str, Any]:
            out = project(item, selected, default)
            out.pop("@odata.type", None)
            return out

        return self._page(req, query, items, render, f"{kind}s")

    def _get_deleted(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], object_id: str
    ) -> SimResponse:
        self._require(principal, "deleted_items.read")
        props = self._deleted_properties(object_id)
        if props is None:
            raise not_found(object_id)
        return SimResponse.of_json(
            200, {"@odata.context": self._context("directoryObjects/$entity"), **props}
        )

    def _purge_deleted(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], object_id: str
    ) -> SimResponse:
        self._require(principal, "deleted_items.write")
        if self.state.deleted_groups.pop(object_id, None) is None and (
            self.state.deleted_administrative_units.pop(object_id, None) is None
        ):
            raise not_found(object_id)
        return SimResponse.empty(204)

    def _restore_deleted(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], object_id: str
    ) -> SimResponse:
        self._require(principal, "deleted_items.write")
        group = self.state.deleted_groups.get(object_id)
        if group is not None:
            lowered = group.mail_nickname.lower()
            if any(g.mail_nickname.lower() == lowered for g in self.state.groups.values()):
                raise bad_request(
                    "Another object with the same value for property mailNickname already exists."
                )
            del self.state.deleted_groups[object_id]
            group.deleted = None
            self.state.groups[object_id] = group
            props = group.properties(self._now(), self.state.domain)
        else:
            unit = self.state.deleted_administrative_units.pop(object_id, None)
            if unit is None:
                raise not_found(object_id)
            unit.deleted = None
            self.state.administrative_units[object_id] = unit
            props = unit.properties()
        return SimResponse.of_json(
            200, {"@odata.context": self._context("directoryObjects/$entity"), **props}
        )
