"""The app registration's own credentials, for expiry warnings."""

from __future__ import annotations

from collections.abc import Mapping

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import parse_select, project
from smartsync.simulator.resources.base import (
    APPLICATION_DEFAULT,
    ApiBase,
    _key_credential,
    _password_credential,
    not_found,
)
from smartsync.simulator.schema import entity_type


class ApplicationsApi(ApiBase):
    def _get_application(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], app_key: str
    ) -> SimResponse:
        self._require(principal, "applications.read")
        self._allow_options(query, ("$select",))
        app_id = app_key.strip("'{}")
        app = self.state.app
        if app_id.lower() != app.client_id.lower():
            raise not_found(app_id)
        selected = parse_select(query.get("$select"), entity_type("application").find_property, "application")
        with_key = selected is not None and "keyCredentials" in selected
        props = {
            "id": app.object_id,
            "appId": app.client_id,
            "displayName": app.display_name,
            "passwordCredentials": [_password_credential(c, app.client_id) for c in app.password_credentials],
            "keyCredentials": [_key_credential(c, app.client_id, with_key) for c in app.key_credentials],
        }
        out = {
            "@odata.context": self._context("applications/$entity"),
            **project(props, selected, APPLICATION_DEFAULT),
        }
        return SimResponse.of_json(200, out)
