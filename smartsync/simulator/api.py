"""The Graph v1.0 request handlers of the simulated tenant.

`GraphApi.handle` answers one Graph request (never `$batch`, which is split up before it gets here)
from a `TenantState`, with the status codes, headers and bodies Microsoft documents. This module
routes it; `resources/` holds one module a resource over the shared `resources.base`: users (and
`user_writes`), groups with their members and owners, education classes, administrative units,
deleted items, teams with their asynchronous operations and their membership (`team_members`), and
the app registration's credentials. Permissions come from the caller's application roles
(`PERMISSIONS` in `resources.base` is the one table of them).

Choices where Graph's behaviour is not documented exactly:
- `DELETE /groups/{id}/members/{oid}` (and owners, and administrative-unit members) without `/$ref`
  answers 405 and changes nothing: on a non-containment navigation that URL names the member object
  itself, and a sync tool must never reach for it.
- A mailNickname is unique among live groups, and a soft-deleted Microsoft 365 group keeps its alias
  until it is purged (its mail address is still reserved in Entra).
- Archiving a team is applied at once; its operation reports `succeeded` when first polled.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from smartsync.simulator.clock import Clock
from smartsync.simulator.delta import DeltaQueries
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.live import LiveService
from smartsync.simulator.odata import GraphError, PageTokens
from smartsync.simulator.resources.applications import ApplicationsApi
from smartsync.simulator.resources.base import _KEY_SEGMENT, PERMISSIONS, _Route
from smartsync.simulator.resources.deleted import DeletedItemsApi
from smartsync.simulator.resources.education import EducationApi
from smartsync.simulator.resources.groups import GroupsApi
from smartsync.simulator.resources.team_members import TeamsMembers
from smartsync.simulator.resources.teams import TeamsApi
from smartsync.simulator.resources.units import UnitsApi
from smartsync.simulator.resources.user_writes import user_routes
from smartsync.simulator.resources.users import UsersApi
from smartsync.simulator.schema import entity_type
from smartsync.simulator.tenant import TenantState

__all__ = ["PERMISSIONS", "GraphApi"]


class GraphApi(UsersApi, GroupsApi, EducationApi, UnitsApi, DeletedItemsApi, TeamsApi, ApplicationsApi):
    """Answers Graph v1.0 requests from a TenantState; see the module docstring for the choices made."""

    def __init__(
        self,
        state: TenantState,
        clock: Clock,
        *,
        base_url: str,
        replication_delay: float = 0.0,
        team_provisioning_time: float = 5.0,
        live: LiveService | None = None,
    ) -> None:
        self.state = state
        self.live = live  # the live service's habits (live.py), or None for the reference pages only
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.replication_delay = replication_delay
        self.team_provisioning_time = team_provisioning_time
        self._tokens = PageTokens(secrets.token_bytes(32))
        self.cloud = "global"  # the Teams membership `remove` action exists in the global cloud only
        self._teams_members = TeamsMembers(self)
        self.delta = DeltaQueries(
            state, clock.now, self.base_url, self._require, lambda t, name: entity_type(t).find_property(name)
        )
        self._routes = self._build_routes()

    # ------------------------------------------------------------------------------------------ entry

    def handle(self, req: SimRequest, principal: Principal) -> SimResponse:
        request_id = str(uuid.uuid4())
        client_request_id = req.headers.get("client-request-id") or request_id
        try:
            with self.state.lock:
                self.state.purge_expired(self.clock.now())
                response = self._dispatch(req, principal)
        except GraphError as error:
            body = {
                "error": {
                    "code": error.code,
                    "message": error.message,
                    "innerError": {
                        "date": datetime.fromtimestamp(self.clock.now(), UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                        "request-id": request_id,
                        "client-request-id": client_request_id,
                    },
                }
            }
            response = SimResponse.of_json(error.status, body, error.headers)
        response.headers["request-id"] = request_id
        response.headers["client-request-id"] = client_request_id
        return response

    def _dispatch(self, req: SimRequest, principal: Principal) -> SimResponse:
        path = req.path
        if not path.startswith("/v1.0/"):
            raise GraphError(400, "BadRequest", f"Invalid version or resource path '{path}'.")
        # /teams('id')/operations('op') and /teams/id/operations/op are the same resource.
        resource = _KEY_SEGMENT.sub(r"\1/\2", path[len("/v1.0") :]).rstrip("/")
        query = {key.lower(): value for key, value in req.query.items()}
        matched_path = False
        for route in self._routes:
            match = route.pattern.fullmatch(resource)
            if match is None:
                continue
            matched_path = True
            if route.method == req.method:
                if self.live is None:
                    return route.handler(req, principal, query, *match.groups())
                self.live.before(req, resource, self._now())
                response = route.handler(req, principal, query, *match.groups())
                self.live.after(req, resource, response, principal, self._now())
                return response
        if matched_path:
            raise GraphError(
                405, "Request_BadRequest", "Specified HTTP method is not allowed for the request target."
            )
        first = resource.strip("/").split("/")[0] or resource
        raise GraphError(400, "BadRequest", f"Resource not found for the segment '{first}'.")

    def _build_routes(self) -> list[_Route]:
        seg = r"([^/]+)"
        table: list[tuple[str, str, Callable[..., SimResponse]]] = [
            *self.delta.routes(),  # before /users/{id}: delta.py
            ("GET", r"/users", self._list_users),
            ("GET", rf"/users/{seg}", self._get_user),
            ("GET", r"/groups", self._list_groups),
            ("POST", r"/groups", self._create_group),
            ("GET", rf"/groups/(?!delta$){seg}", self._get_group),
            ("PATCH", rf"/groups/{seg}", self._update_group),
            ("DELETE", rf"/groups/{seg}", self._delete_group),
            ("GET", rf"/groups/{seg}/(members|owners)", self._list_group_links),
            ("GET", rf"/groups/{seg}/(members|owners)/\$ref", self._list_group_link_refs),
            ("POST", rf"/groups/{seg}/(members|owners)/\$ref", self._add_group_link),
            ("DELETE", rf"/groups/{seg}/(members|owners)/{seg}/\$ref", self._remove_group_link),
            ("DELETE", rf"/groups/{seg}/(members|owners)/(?!\$ref$){seg}", self._refuse_link_delete),
            ("GET", rf"/groups/{seg}/team", self._get_group_team),
            ("PUT", rf"/groups/{seg}/team", self._put_group_team),
            ("POST", r"/education/classes", self._create_class),
            ("GET", rf"/education/classes/{seg}", self._get_class),
            ("GET", r"/directory/administrativeUnits", self._list_units),
            ("POST", r"/directory/administrativeUnits", self._create_unit),
            ("GET", rf"/directory/administrativeUnits/{seg}", self._get_unit),
            ("PATCH", rf"/directory/administrativeUnits/{seg}", self._update_unit),
            ("DELETE", rf"/directory/administrativeUnits/{seg}", self._delete_unit),
            ("GET", rf"/directory/administrativeUnits/{seg}/members", self._list_unit_members),
            ("GET", rf"/directory/administrativeUnits/{seg}/members/\$ref", self._list_unit_member_refs),
            ("POST", rf"/directory/administrativeUnits/{seg}/members/\$ref", self._add_unit_member),
            (
                "DELETE",
                rf"/directory/administrativeUnits/{seg}/members/{seg}/\$ref",
                self._remove_unit_member,
            ),
            (
                "DELETE",
                rf"/directory/administrativeUnits/{seg}/members/(?!\$ref$){seg}",
                self._refuse_link_delete,
            ),
            (
                "GET",
                r"/directory/deletedItems/microsoft\.graph\.(group|administrativeUnit)",
                self._list_deleted,
            ),
            ("GET", rf"/directory/deletedItems/{seg}", self._get_deleted),
            ("DELETE", rf"/directory/deletedItems/{seg}", self._purge_deleted),
            ("POST", rf"/directory/deletedItems/{seg}/restore", self._restore_deleted),
            ("POST", r"/teams", self._create_team),
            ("GET", rf"/teams/{seg}", self._get_team),
            ("POST", rf"/teams/{seg}/(archive|unarchive)", self._archive_team),
            ("GET", rf"/teams/{seg}/operations/{seg}", self._get_operation),
            ("GET", rf"/teams/{seg}/members", self._teams_members.list_members),
            ("POST", rf"/teams/{seg}/members/(add|remove)", self._teams_members.act),
            ("GET", r"/applications\(appId=([^)]*)\)", self._get_application),
        ]
        table = [*user_routes(self), *table]  # user_writes: POST/PATCH/DELETE users, restore, domains
        return [_Route(method, re.compile(pattern), handler) for method, pattern, handler in table]
