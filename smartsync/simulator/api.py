"""The Graph v1.0 request handlers of the simulated tenant.

`GraphApi.handle` answers one Graph request (never `$batch`, which is split up before it gets here)
from a `TenantState`, with the status codes, headers and bodies Microsoft documents: users, groups and
their members and owners, education classes, administrative units, deleted items, teams and their
asynchronous operations, and the app registration's credentials. Permissions come from the caller's
application roles (`PERMISSIONS` is the one table of them).

Choices where Graph's behaviour is not documented exactly:
- `DELETE /groups/{id}/members/{oid}` (and owners, and administrative-unit members) without `/$ref`
  answers 405 and changes nothing: on a non-containment navigation that URL names the member object
  itself, and a sync tool must never reach for it.
- A mailNickname is unique among live groups, and a soft-deleted Microsoft 365 group keeps its alias
  until it is purged (its mail address is still reserved in Entra).
- Archiving a team is applied at once; its operation reports `succeeded` when first polled.
"""

from __future__ import annotations

import base64
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from smartsync.simulator.clock import Clock
from smartsync.simulator.delta import DeltaQueries
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import (
    MAX_PAGE_SIZE,
    GraphError,
    PageTokens,
    bad_request,
    parse_filter,
    parse_orderby,
    parse_select,
    parse_top,
    project,
    sort_items,
    unsupported_query,
)
from smartsync.simulator.schema import EntityTypeSchema, entity_type
from smartsync.simulator.tenant import (
    AdministrativeUnit,
    EducationClassInfo,
    Group,
    Team,
    TeamsOperation,
    TenantState,
    iso_utc,
)

# Application permissions that allow each kind of operation (any one suffices), after the
# "Permissions" tables of the Graph v1.0 reference for each API.
_DIRECTORY_READ = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "users.read": frozenset({"User.Read.All", "User.ReadWrite.All"}) | _DIRECTORY_READ,
    "groups.read": frozenset(
        {"GroupMember.Read.All", "Group.Read.All", "GroupMember.ReadWrite.All", "Group.ReadWrite.All"}
    )
    | _DIRECTORY_READ,
    "groups.create": frozenset({"Group.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"}),
    "groups.update": frozenset({"Group.ReadWrite.All", "Directory.ReadWrite.All"}),
    "groups.delete": frozenset({"Group.ReadWrite.All"}),
    "groups.members.write": frozenset(
        {"GroupMember.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
    ),
    "deleted_items.read": frozenset(
        {
            "Group.Read.All",
            "Group.ReadWrite.All",
            "AdministrativeUnit.Read.All",
            "AdministrativeUnit.ReadWrite.All",
        }
    )
    | _DIRECTORY_READ,
    "deleted_items.write": frozenset(
        {"Group.ReadWrite.All", "AdministrativeUnit.ReadWrite.All", "Directory.ReadWrite.All"}
    ),
    "admin_units.read": frozenset({"AdministrativeUnit.Read.All", "AdministrativeUnit.ReadWrite.All"})
    | _DIRECTORY_READ,
    "admin_units.write": frozenset({"AdministrativeUnit.ReadWrite.All", "Directory.ReadWrite.All"}),
    "education.read": frozenset({"EduRoster.ReadBasic.All", "EduRoster.Read.All", "EduRoster.ReadWrite.All"}),
    "education.write": frozenset({"EduRoster.ReadWrite.All"}),
    "teams.create": frozenset({"Team.Create", "Group.ReadWrite.All", "Directory.ReadWrite.All"}),
    "teams.read": frozenset(
        {"Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All", "Group.Read.All"}
    )
    | frozenset({"Group.ReadWrite.All"})
    | _DIRECTORY_READ,
    "teams.archive": frozenset(
        {"TeamSettings.ReadWrite.All", "Group.ReadWrite.All", "Directory.ReadWrite.All"}
    ),
    "teams.operations.read": frozenset(
        {"Team.Create", "Team.ReadBasic.All", "TeamSettings.Read.All", "TeamSettings.ReadWrite.All"}
    )
    | frozenset({"Group.Read.All", "Group.ReadWrite.All"})
    | _DIRECTORY_READ,
    "applications.read": frozenset(
        {"Application.Read.All", "Application.ReadWrite.All", "Application.ReadWrite.OwnedBy"}
    )
    | _DIRECTORY_READ,
}

MAX_LINK_CHANGES = 20
EXPAND_LIMIT = 20  # Graph returns at most 20 objects for an expanded directory relationship
TEAM_TEMPLATES = frozenset({"standard", "educationClass"})
GROUP_VISIBILITIES = frozenset({"Public", "Private", "HiddenMembership"})
RESOURCE_BEHAVIOR_OPTIONS = frozenset(
    {
        "AllowOnlyMembersToPost",
        "HideGroupInOutlook",
        "HideGroupInOutlookAndTeams",
        "SubscribeMembersToCalendarEventsDisabled",
        "SubscribeNewGroupMembers",
        "WelcomeEmailDisabled",
    }
)
EDUCATION_EXTERNAL_SOURCES = frozenset({"sis", "manual", "lms"})
# Characters Graph refuses in a mailNickname (the docs: ASCII 0-127 except these).
_NICKNAME_FORBIDDEN = set('@()\\[]";:<>, ')
_READ_ONLY = frozenset(
    {
        "id",
        "createdDateTime",
        "deletedDateTime",
        "mail",
        "proxyAddresses",
        "renewedDateTime",
        "securityIdentifier",
    }
)

USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
GROUP_DEFAULT = (
    "id",
    "deletedDateTime",
    "classification",
    "createdDateTime",
    "description",
    "displayName",
    "expirationDateTime",
    "groupTypes",
    "isAssignableToRole",
    "mail",
    "mailEnabled",
    "mailNickname",
    "membershipRule",
    "membershipRuleProcessingState",
    "onPremisesDomainName",
    "onPremisesLastSyncDateTime",
    "onPremisesNetBiosName",
    "onPremisesSamAccountName",
    "onPremisesSecurityIdentifier",
    "onPremisesSyncEnabled",
    "preferredDataLocation",
    "preferredLanguage",
    "proxyAddresses",
    "renewedDateTime",
    "resourceBehaviorOptions",
    "resourceProvisioningOptions",
    "securityEnabled",
    "securityIdentifier",
    "theme",
    "visibility",
    "onPremisesProvisioningErrors",
    "serviceProvisioningErrors",
)
UNIT_DEFAULT = (
    "id",
    "deletedDateTime",
    "displayName",
    "description",
    "isMemberManagementRestricted",
    "membershipRule",
    "membershipType",
    "membershipRuleProcessingState",
    "visibility",
)
APPLICATION_DEFAULT = ("id", "appId", "displayName", "keyCredentials", "passwordCredentials")

USER_FILTERABLE = (
    "id",
    "userPrincipalName",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "employeeId",
    "accountEnabled",
)
GROUP_FILTERABLE = (
    "id",
    "displayName",
    "mailNickname",
    "mail",
    "mailEnabled",
    "securityEnabled",
    "groupTypes",
    "resourceProvisioningOptions",
)
MEMBER_FILTERABLE = (*USER_FILTERABLE, "mailNickname", "securityEnabled", "groupTypes")
_LIST_OPTIONS = ("$select", "$top", "$skiptoken", "$count")
UNIT_FILTERABLE = (
    "id",
    "displayName",
    "description",
    "membershipType",
    "visibility",
    "isMemberManagementRestricted",
)

_REF_ID = re.compile(r"(?:directoryObjects|users|groups)(?:/|\(')([^/'()?#]+)", re.IGNORECASE)
_KEY_SEGMENT = re.compile(r"(\w+)\('([^']*)'\)")
_TEMPLATE = re.compile(r"teamsTemplates\('([^']*)'\)", re.IGNORECASE)
_GROUP_BIND = re.compile(r"groups(?:\('|/)([^/'()?#]+)", re.IGNORECASE)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class _Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., SimResponse]


def _filterable(names: Iterable[str]) -> dict[str, str]:
    return {name.lower(): name for name in names}


def not_found(object_id: str) -> GraphError:
    if not _GUID.match(object_id) and "@" not in object_id:
        return bad_request(f"Invalid object identifier '{object_id}'.")
    return GraphError(
        404,
        "Request_ResourceNotFound",
        f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )


def already_exists(relationship: str) -> GraphError:
    return bad_request(
        "One or more added object references already exist for the following modified properties: "
        f"'{relationship}'."
    )


def invalid_value(name: str, resource: str) -> GraphError:
    return bad_request(f"Invalid value specified for property '{name}' of resource '{resource}'.")


class GraphApi:
    """Answers Graph v1.0 requests from a TenantState; see the module docstring for the choices made."""

    def __init__(
        self,
        state: TenantState,
        clock: Clock,
        *,
        base_url: str,
        replication_delay: float = 0.0,
        team_provisioning_time: float = 5.0,
    ) -> None:
        self.state = state
        self.clock = clock
        self.base_url = base_url.rstrip("/")
        self.replication_delay = replication_delay
        self.team_provisioning_time = team_provisioning_time
        self._tokens = PageTokens(secrets.token_bytes(32))
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
                return route.handler(req, principal, query, *match.groups())
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
            ("GET", r"/applications\(appId=([^)]*)\)", self._get_application),
        ]
        return [_Route(method, re.compile(pattern), handler) for method, pattern, handler in table]

    # ------------------------------------------------------------------------------------- helpers

    def _now(self) -> float:
        return self.clock.now()

    @staticmethod
    def _require(principal: Principal, operation: str) -> None:
        if not principal.roles & PERMISSIONS[operation]:
            raise GraphError(
                403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
            )

    @staticmethod
    def _allow_options(query: Mapping[str, str], allowed: Iterable[str]) -> None:
        permitted = set(allowed)
        for key in query:
            if key.startswith("$") and key not in permitted:
                raise unsupported_query(f"Query option '{key}' is not supported for this request.")

    @staticmethod
    def _body(req: SimRequest, type_name: str, binds: Iterable[str] = ()) -> dict[str, Any]:
        """The JSON object body, every property name checked against the CSDL type `type_name`."""
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON in the request body.") from None
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object.")
        schema = entity_type(type_name)
        supported_binds = set(binds)
        for key in body:
            _check_body_key(key, schema, supported_binds)
        return body

    def _context(self, fragment: str) -> str:
        return f"{self.base_url}/v1.0/$metadata#{fragment}"

    def _page(
        self,
        req: SimRequest,
        query: Mapping[str, str],
        items: list[dict[str, Any]],
        render: Callable[[dict[str, Any]], dict[str, Any]],
        context: str,
    ) -> SimResponse:
        top = parse_top(query.get("$top"))
        offset = 0
        if "$skiptoken" in query:
            offset = self._tokens.decode(query["$skiptoken"], req.path, _without_token(req.query))
        payload: dict[str, Any] = {"@odata.context": self._context(context)}
        if query.get("$count", "").lower() == "true":
            if req.headers.get("consistencylevel", "").lower() != "eventual":
                raise bad_request(
                    "$count is not currently supported without the header 'ConsistencyLevel: eventual'."
                )
            payload["@odata.count"] = len(items)
        end = offset + top
        if end < len(items):
            params = dict(_without_token(req.query))
            params["$skiptoken"] = self._tokens.encode(end, req.path, _without_token(req.query))
            encoded = urlencode(params, quote_via=quote, safe="$,'()")
            payload["@odata.nextLink"] = f"{self.base_url}{req.path}?{encoded}"
        payload["value"] = [render(item) for item in items[offset:end]]
        return SimResponse.of_json(200, payload)

    def _group(self, group_id: str) -> Group:
        group = self.state.groups.get(group_id)
        if group is None:
            raise not_found(group_id)
        return group

    def _unit(self, unit_id: str) -> AdministrativeUnit:
        unit = self.state.administrative_units.get(unit_id)
        if unit is None:
            raise not_found(unit_id)
        return unit

    def _object_properties(self, object_id: str) -> dict[str, Any] | None:
        user = self.state.users.get(object_id)
        if user is not None:
            return user.properties()
        group = self.state.groups.get(object_id)
        if group is not None:
            return group.properties(self._now(), self.state.domain)
        return None

    def _check_nickname(self, nickname: Any, *, unified: bool, exclude: str | None = None) -> str:
        if (
            not isinstance(nickname, str)
            or not 1 <= len(nickname) <= 64
            or any(ord(c) < 33 or ord(c) > 126 or c in _NICKNAME_FORBIDDEN for c in nickname)
        ):
            raise invalid_value("mailNickname", "Group")
        lowered = nickname.lower()
        taken = any(
            g.mail_nickname.lower() == lowered and g.id != exclude for g in self.state.groups.values()
        )
        taken = taken or (
            unified
            and any(
                g.is_unified and g.mail_nickname.lower() == lowered and g.id != exclude
                for g in self.state.deleted_groups.values()
            )
        )
        if taken:
            raise bad_request("Another object with the same value for property mailNickname already exists.")
        return nickname

    def _parse_refs(self, value: Any, relationship: str) -> list[str]:
        """Object ids named by an `@odata.bind` list; every one must exist or the whole request fails."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise bad_request(f"The value of '{relationship}@odata.bind' must be an array of object URLs.")
        ids: list[str] = []
        for url in value:
            object_id = _ref_id(url)
            kind = self.state.directory_object_kind(object_id)
            if kind is None or (relationship == "owners" and kind != "user"):
                raise bad_request(
                    f"Resource '{object_id}' does not exist or one of its queried reference-property objects "
                    "are not present."
                )
            if object_id not in ids:
                ids.append(object_id)
        return ids

    def _ref_body(self, req: SimRequest) -> str:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON in the request body.") from None
        if not isinstance(body, dict) or set(body) != {"@odata.id"} or not isinstance(body["@odata.id"], str):
            raise bad_request('The request body must be {"@odata.id": "<object URL>"}.')
        return _ref_id(body["@odata.id"])

    def _render_group(
        self, group: Group, selected: list[str] | None, expand: list[tuple[str, list[str] | None]]
    ) -> dict[str, Any]:
        out = project(group.properties(self._now(), self.state.domain), selected, GROUP_DEFAULT)
        out.pop("@odata.type", None)
        for relationship, link_select in expand:
            ids = group.members if relationship == "members" else group.owners
            out[relationship] = [self._render_member(i, link_select) for i in ids[:EXPAND_LIMIT]]
        return out

    def _render_member(self, object_id: str, selected: list[str] | None) -> dict[str, Any]:
        props = self._object_properties(object_id) or {
            "@odata.type": "#microsoft.graph.directoryObject",
            "id": object_id,
        }
        default = USER_DEFAULT if props.get("@odata.type") == "#microsoft.graph.user" else GROUP_DEFAULT
        return project(props, selected, default)

    # ---------------------------------------------------------------------------------------- users

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

    # --------------------------------------------------------------------------------------- groups

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

    def _list_links(self, req: SimRequest, query: Mapping[str, str], ids: list[str]) -> SimResponse:
        self._allow_options(query, (*_LIST_OPTIONS, "$filter", "$orderby"))
        selected = parse_select(query.get("$select"), _member_property, "directoryObject")
        items = [self._object_properties(i) or {"id": i} for i in ids]
        items = _query_items(query, items, MEMBER_FILTERABLE, "DirectoryObject")
        return self._page(
            req, query, items, lambda item: self._render_member(item["id"], selected), "directoryObjects"
        )

    def _list_link_refs(self, req: SimRequest, query: Mapping[str, str], ids: list[str]) -> SimResponse:
        self._allow_options(query, ("$top", "$skiptoken", "$count"))
        items = [{"@odata.id": f"{self.base_url}/v1.0/directoryObjects/{i}"} for i in ids]
        return self._page(req, query, items, dict, "Collection($ref)")

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

    # ------------------------------------------------------------------------------------ education

    def _create_class(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "education.write")
        body = self._body(req, "educationClass")
        _refuse_read_only(body, "educationClass")
        display_name = _string(body, "displayName", "EducationClass", required=True)
        if "mailNickname" not in body:
            raise invalid_value("mailNickname", "EducationClass")
        nickname = self._check_nickname(body["mailNickname"], unified=True)
        source = body.get("externalSource")
        if source is not None and source not in EDUCATION_EXTERNAL_SOURCES:
            raise invalid_value("externalSource", "EducationClass")
        group = Group(
            id=self.state.new_id(),
            display_name=display_name,
            mail_nickname=nickname,
            mail_enabled=True,
            security_enabled=False,
            description=_string(body, "description", "EducationClass"),
            group_types=["Unified"],
            visibility="HiddenMembership",
            created=self._now(),
            education_class=EducationClassInfo(
                external_id=_string(body, "externalId", "EducationClass"),
                external_name=_string(body, "externalName", "EducationClass"),
                external_source=source,
                class_code=_string(body, "classCode", "EducationClass"),
            ),
        )
        self.state.groups[group.id] = group
        out = {"@odata.context": self._context("education/classes/$entity"), **self._class_properties(group)}
        return SimResponse.of_json(
            201, out, {"location": f"{self.base_url}/v1.0/education/classes/{group.id}"}
        )

    def _class_properties(self, group: Group) -> dict[str, Any]:
        info = group.education_class or EducationClassInfo()
        return {
            "id": group.id,
            "displayName": group.display_name,
            "mailNickname": group.mail_nickname,
            "description": group.description,
            "createdBy": {"application": {"id": self.state.app.client_id, "displayName": None}, "user": None},
            "classCode": info.class_code,
            "externalName": info.external_name,
            "externalId": info.external_id,
            "externalSource": info.external_source,
            "externalSourceDetail": None,
            "grade": None,
            "term": None,
            "course": None,
        }

    def _get_class(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], class_id: str
    ) -> SimResponse:
        self._require(principal, "education.read")
        group = self.state.groups.get(class_id)
        if group is None or group.education_class is None:
            raise not_found(class_id)
        out = {"@odata.context": self._context("education/classes/$entity"), **self._class_properties(group)}
        return SimResponse.of_json(200, out)

    # --------------------------------------------------------------------------- administrative units

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

    # ---------------------------------------------------------------------------------- deleted items

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

    # ---------------------------------------------------------------------------------------- teams

    def _team_group(self, group_id: str) -> Group:
        """The group a new team is made from, refused as the Teams service refuses it."""
        group = self.state.groups.get(group_id)
        now = self._now()
        if group is None or now - group.created < self.replication_delay:
            # A group created moments ago has not yet replicated to the Teams service.
            raise GraphError(
                404,
                "NotFound",
                "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest. "
                f"Group '{group_id}' was not found. A group created in the last 15 minutes may not have "
                "replicated yet: retry later.",
            )
        if not group.is_unified:
            raise GraphError(
                400,
                "BadRequest",
                f"Group '{group_id}' is not a Microsoft 365 group: only those can become teams.",
            )
        if group.team is not None:
            raise GraphError(409, "Conflict", f"A team already exists for group '{group_id}'.")
        if not group.owners:
            raise GraphError(
                400, "BadRequest", f"Group '{group_id}' has no owner: add an owner before creating its team."
            )
        return group

    def _team_properties(self, group: Group) -> dict[str, Any]:
        team = group.team or Team()
        return {
            "id": group.id,
            "createdDateTime": iso_utc(group.created),
            "displayName": group.display_name,
            "description": group.description,
            "internalId": f"19:{group.id.replace('-', '')}@thread.tacv2",
            "classification": None,
            "specialization": "educationStandard" if team.template == "educationClass" else "none",
            "visibility": "private" if (group.visibility or "").lower() != "public" else "public",
            "webUrl": f"https://teams.microsoft.com/l/team/19%3a{group.id.replace('-', '')}%40thread.tacv2",
            "isArchived": team.is_archived,
            "summary": {
                "ownersCount": len(group.owners),
                "membersCount": len(group.members),
                "guestsCount": 0,
            },
            "tenantId": self.state.tenant_id,
            "memberSettings": {
                "allowCreateUpdateChannels": True,
                "allowDeleteChannels": True,
                "allowAddRemoveApps": True,
                "allowCreateUpdateRemoveTabs": True,
                "allowCreateUpdateRemoveConnectors": True,
            },
            "guestSettings": {"allowCreateUpdateChannels": False, "allowDeleteChannels": False},
            "messagingSettings": {
                "allowUserEditMessages": True,
                "allowUserDeleteMessages": True,
                "allowOwnerDeleteMessages": True,
                "allowTeamMentions": True,
                "allowChannelMentions": True,
            },
            "funSettings": {
                "allowGiphy": True,
                "giphyContentRating": "moderate",
                "allowStickersAndMemes": True,
                "allowCustomMemes": True,
            },
        }

    def _put_group_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        self._require(principal, "teams.create")
        self._body(req, "team")
        group = self._team_group(group_id)
        group.team = Team(ready_at=self._now())
        out = {"@odata.context": self._context("teams/$entity"), **self._team_properties(group)}
        return SimResponse.of_json(201, out, {"location": f"{self.base_url}/v1.0/teams/{group.id}"})

    def _ready_team_group(self, team_id: str) -> Group:
        group = self.state.groups.get(team_id)
        if group is None or not group.team_ready(self._now()):
            raise GraphError(404, "NotFound", f"No team found with Group Id {team_id}.")
        return group

    def _get_group_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], group_id: str
    ) -> SimResponse:
        return self._get_team(req, principal, query, group_id)

    def _get_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str
    ) -> SimResponse:
        self._require(principal, "teams.read")
        group = self._ready_team_group(team_id)
        out = {"@odata.context": self._context("teams/$entity"), **self._team_properties(group)}
        return SimResponse.of_json(200, out)

    def _create_team(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self._require(principal, "teams.create")
        body = self._body(req, "team", binds=("template", "group"))
        template_url = body.get("template@odata.bind")
        template_match = _TEMPLATE.search(template_url) if isinstance(template_url, str) else None
        if template_match is None:
            raise GraphError(400, "BadRequest", "The 'template@odata.bind' property is required.")
        template = template_match.group(1)
        if template not in TEAM_TEMPLATES:
            raise GraphError(400, "BadRequest", f"Template '{template}' is not supported.")
        group_url = body.get("group@odata.bind")
        group_match = _GROUP_BIND.search(group_url) if isinstance(group_url, str) else None
        if group_match is None:
            raise GraphError(
                400, "BadRequest", "Creating a team requires 'group@odata.bind' naming an existing group."
            )
        group_id = group_match.group(1)
        group = self._team_group(group_id)
        if template == "educationClass" and group.education_class is None:
            raise GraphError(
                400,
                "BadRequest",
                "Team with template 'educationClass' can not be provisioned using a group which does not "
                "belong to a class",
            )
        now = self._now()
        group.team = Team(ready_at=now + self.team_provisioning_time, template=template)
        operation = self._operation(group.id, "createTeam", now + self.team_provisioning_time)
        return SimResponse.empty(
            202,
            {
                "location": f"/teams('{group.id}')/operations('{operation.id}')",
                "content-location": f"/teams('{group.id}')",
                "content-length": "0",
            },
        )

    def _operation(self, team_id: str, operation_type: str, completes_at: float) -> TeamsOperation:
        operation = TeamsOperation(
            id=self.state.new_id(),
            team_id=team_id,
            operation_type=operation_type,
            created=self._now(),
            completes_at=completes_at,
        )
        self.state.teams_operations[operation.id] = operation
        return operation

    def _archive_team(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str, action: str
    ) -> SimResponse:
        self._require(principal, "teams.archive")
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON in the request body.") from None
        if body is not None and (
            not isinstance(body, dict) or set(body) - {"shouldSetSpoSiteReadOnlyForMembers"}
        ):
            raise GraphError(
                400, "BadRequest", "The only parameter accepted is 'shouldSetSpoSiteReadOnlyForMembers'."
            )
        group = self._ready_team_group(team_id)
        assert group.team is not None
        group.team.is_archived = action == "archive"
        operation = self._operation(team_id, f"{action}Team", self._now())
        return SimResponse.empty(
            202,
            {
                "location": f"/teams('{team_id}')/operations('{operation.id}')",
                "content-type": "text/plain",
                "content-length": "0",
            },
        )

    def _get_operation(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str, operation_id: str
    ) -> SimResponse:
        self._require(principal, "teams.operations.read")
        operation = self.state.teams_operations.get(operation_id)
        if operation is None or operation.team_id != team_id:
            raise GraphError(
                404, "NotFound", f"Operation '{operation_id}' was not found for team '{team_id}'."
            )
        out = {
            "@odata.context": self._context(f"teams('{team_id}')/operations/$entity"),
            **operation.properties(self._now()),
        }
        return SimResponse.of_json(200, out)

    # --------------------------------------------------------------------------------- applications

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


# ----------------------------------------------------------------------------------- module helpers


def _without_token(query: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in query.items() if k.lower() != "$skiptoken"}


def _query_items(
    query: Mapping[str, str], items: list[dict[str, Any]], filterable: Iterable[str], resource: str
) -> list[dict[str, Any]]:
    """Apply `$filter` and `$orderby` to a collection's property dicts."""
    names = _filterable(filterable)
    if "$filter" in query:
        predicate = parse_filter(query["$filter"], names, resource)
        items = [i for i in items if predicate(i)]
    return sort_items(items, parse_orderby(query.get("$orderby"), names, resource))


def _member_property(name: str) -> str | None:
    return entity_type("user").find_property(name) or entity_type("group").find_property(name)


def _check_body_key(key: str, schema: EntityTypeSchema, supported_binds: set[str]) -> None:
    type_name = f"microsoft.graph.{schema.name}"
    if key == "@odata.type":
        return
    if "@" in key:
        name, annotation = key.split("@", 1)
        if annotation == "odata.bind" and name in schema.navigation_properties:
            if name not in supported_binds:
                raise bad_request(f"Binding '{key}' is not supported on type '{type_name}' in this request.")
            return
        if name in schema.properties:
            return
        raise bad_request(f"Property '{name}' does not exist on type '{type_name}'.")
    if key in schema.navigation_properties:
        raise bad_request(f"Navigation property '{key}' cannot be set inline; use '{key}@odata.bind'.")
    if key not in schema.properties:
        raise bad_request(f"Property '{key}' does not exist on type '{type_name}'.")


def _refuse_read_only(body: Mapping[str, Any], type_name: str) -> None:
    for key in body:
        if key in _READ_ONLY:
            raise bad_request(f"Property '{key}' is read-only and cannot be set.")


def _ref_id(url: str) -> str:
    matches = _REF_ID.findall(url)
    if not matches:
        raise bad_request(f"Invalid object identifier '{url}'.")
    object_id: str = matches[-1]
    return object_id


def _string(body: Mapping[str, Any], name: str, resource: str, *, required: bool = False) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value.strip()):
        raise invalid_value(name, resource)
    return value


def _boolean(body: Mapping[str, Any], name: str, resource: str) -> bool:
    value = body.get(name)
    if not isinstance(value, bool):
        raise invalid_value(name, resource)
    return value


def _group_types(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid_value("groupTypes", "Group")
    for group_type in value:
        if group_type not in {"Unified", "DynamicMembership"}:
            raise invalid_value("groupTypes", "Group")
    if "DynamicMembership" in value:
        raise bad_request(
            "Dynamic membership groups need a membershipRule, which the simulated tenant does not evaluate."
        )
    return list(value)


def _visibility(value: Any) -> str | None:
    if value is None:
        return None
    if value not in GROUP_VISIBILITIES:
        raise invalid_value("visibility", "Group")
    return str(value)


def _unit_visibility(value: Any) -> str | None:
    if value is None:
        return None
    if value not in {"Public", "HiddenMembership"}:
        raise invalid_value("visibility", "AdministrativeUnit")
    return str(value)


def _membership_type(value: Any) -> str | None:
    if value is None:
        return None
    if value not in {"Assigned", "Dynamic"}:
        raise invalid_value("membershipType", "AdministrativeUnit")
    return str(value)


def _behaviour_options(value: Any, unified: bool) -> list[str]:
    if not isinstance(value, list) or not all(
        isinstance(o, str) and o in RESOURCE_BEHAVIOR_OPTIONS for o in value
    ):
        raise invalid_value("resourceBehaviorOptions", "Group")
    if value and not unified:
        raise bad_request("resourceBehaviorOptions can only be set on Microsoft 365 (Unified) groups.")
    return list(value)


def _credential_key_id(credential: Mapping[str, Any], client_id: str, kind: str) -> str:
    key_id = credential.get("keyId")
    if key_id:
        return str(key_id)
    seed = f"{client_id}:{kind}:{credential.get('displayName')}:{credential.get('endDateTime')}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, seed))


def _password_credential(credential: Mapping[str, Any], client_id: str) -> dict[str, Any]:
    return {
        "customKeyIdentifier": None,
        "displayName": credential.get("displayName"),
        "endDateTime": credential.get("endDateTime"),
        "hint": credential.get("hint"),
        "keyId": _credential_key_id(credential, client_id, "password"),
        "secretText": None,  # Graph never returns a secret after it was created
        "startDateTime": credential.get("startDateTime"),
    }


def _key_credential(credential: Mapping[str, Any], client_id: str, with_key: bool) -> dict[str, Any]:
    key: str | None = None
    pem = credential.get("key")
    if with_key and isinstance(pem, str):
        # Graph returns the certificate as base64 of its DER bytes: the PEM body without its armour.
        body = "".join(line for line in pem.splitlines() if line and not line.startswith("-----"))
        key = base64.b64encode(base64.b64decode(body)).decode("ascii")
    return {
        "customKeyIdentifier": credential.get("customKeyIdentifier"),
        "displayName": credential.get("displayName"),
        "endDateTime": credential.get("endDateTime"),
        "key": key,
        "keyId": _credential_key_id(credential, client_id, "key"),
        "startDateTime": credential.get("startDateTime"),
        "type": "AsymmetricX509Cert",
        "usage": "Verify",
    }


__all__ = ["MAX_PAGE_SIZE", "PERMISSIONS", "GraphApi"]
