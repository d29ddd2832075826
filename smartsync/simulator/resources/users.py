"""Users: listing and reading the tenant's people."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import parse_select, project
from smartsync.simulator.resources.base import (
    _LIST_OPTIONS,
    USER_DEFAULT,
    USER_FILTERABLE,
    ApiBase,
    _query_items,
    not_found,
)
from smartsync.simulator.schema import entity_type


class UsersApi(ApiBase):
    def _list_users(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "users.read")
        self._allow_options(query, (*_LIST_OPTIONS, "$filter", "$orderby"))
        selected = parse_select(query.get("$select"), entity_type("user").find_property, "user")
        items = _query_items(
            query, [u.properties() for u in self.state.users.values()], USER_FILTERABLE, "User"
        )
        context = "users" if selected is None else f"users({','.join(selected)})"

        def render(item: dict[str, Any]) -> dict[str, Any]:
            out = project(item, selected, USER_DEFAULT)
            out.pop("@odata.type", None)
            return out

        return self._page(req, query, items, render, context)

    def _get_user(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], key: str
    ) -> SimResponse:
        self._require(principal, "users.read")
        self._allow_options(query, ("$select",))
        user = self.state.find_user(key)
        if user is None:
            raise not_found(key)
        selected = parse_select(query.get("$select"), entity_type("user").find_property, "user")
        out = {
            "@odata.context": self._context("users/$entity"),
            **project(user.properties(), selected, USER_DEFAULT),
        }
        out.pop("@odata.type", None)
        return SimResponse.of_json(200, out)
