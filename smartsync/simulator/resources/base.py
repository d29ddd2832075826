"""What every resource of the simulated Graph API shares: permissions, limits, body checks, paging.

`ApiBase` holds the tenant state and the helpers each resource's handlers use; the module-level
functions check and convert request values the way Graph does.
"""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from smartsync.simulator.clock import Clock
from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.live import LiveService
from smartsync.simulator.odata import (
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
    Group,
    TenantState,
)

# Application permissions that allow each kind of operation (any one suffices), after the
# "Permissions" tables of the Graph v1.0 reference for each API.
_DIRECTORY_READ = frozenset({"Directory.Read.All", "Directory.ReadWrite.All"})
PERMISSIONS: dict[str, frozenset[str]] = {
    "users.read": frozenset({"User.Read.All", "User.ReadWrite.All"}) | _DIRECTORY_READ,
    "users.write": frozenset({"User.ReadWrite.All", "Directory.ReadWrite.All"}),
    "domains.read": frozenset({"Domain.Read.All", "Domain.ReadWrite.All"}) | _DIRECTORY_READ,
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


class ApiBase:
    """State and helpers shared by the resource handlers (mixed into `GraphApi`)."""

    state: TenantState
    clock: Clock
    base_url: str
    replication_delay: float
    team_provisioning_time: float
    live: LiveService | None
    _tokens: PageTokens

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
        return self.live.object_properties(object_id) if self.live is not None else None

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

    def _render_member(self, object_id: str, selected: list[str] | None) -> dict[str, Any]:
        props = self._object_properties(object_id) or {
            "@odata.type": "#microsoft.graph.directoryObject",
            "id": object_id,
        }
        default = USER_DEFAULT if props.get("@odata.type") == "#microsoft.graph.user" else GROUP_DEFAULT
        return project(props, selected, default)


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
