"""Writing users in the simulated tenant: `POST /users`, `PATCH` and `DELETE /users/{id}`, restoring a
deleted user, and the tenant's verified domains (`GET /domains`).

Registered into `GraphApi` by `user_routes`, ahead of its own routes. What Graph documents and this
module checks:
- `POST /users` requires `accountEnabled`, `displayName`, `mailNickname`, `passwordProfile` (with a
  `password`) and `userPrincipalName`; every body property must exist on `microsoft.graph.user`.
- The sign-in address's domain must be one of the tenant's verified domains, and no other user (live or
  soft-deleted, whose address stays reserved until it is purged) may have it: both 400.
- The password must meet Entra's complexity rule (8 to 256 characters, three of lower case, upper case,
  digits and symbols), else 400; it is checked and then forgotten, never stored or echoed.
- `onPremisesExtensionAttributes` are writable for cloud-only users: PATCH merges the named attributes.
- Deleting a user is soft (restorable for 30 days); the user leaves every group and unit at once.
- Permissions: User.ReadWrite.All (or Directory.ReadWrite.All) for every write; Domain.Read.All (or a
  broader directory or domain permission) to list domains.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request, parse_select, project
from smartsync.simulator.tenant import TenantState, User

PASSWORD_MIN, PASSWORD_MAX = 8, 256
# Length limits the user resource documents for the text properties smartsync sets.
MAX_LENGTH = {
    "displayName": 256,
    "givenName": 64,
    "surname": 64,
    "employeeId": 16,
    "department": 64,
    "jobTitle": 128,
    "companyName": 64,
    "mailNickname": 64,
    "userPrincipalName": 113,
}
EXTENSION_ATTRIBUTES = frozenset(f"extensionAttribute{n}" for n in range(1, 16))
EXTENSION_MAX = 1024
REQUIRED_ON_CREATE = ("accountEnabled", "displayName", "mailNickname", "passwordProfile", "userPrincipalName")
# Text properties kept in `User.extra` (the rest of the user's text properties are fields of User).
TEXT_EXTRA = ("department", "jobTitle", "companyName", "mailNickname")
DOMAIN_PROPERTIES = (
    "id",
    "authenticationType",
    "isDefault",
    "isInitial",
    "isRoot",
    "isVerified",
    "supportedServices",
)
_READ_ONLY = frozenset(
    {"id", "createdDateTime", "deletedDateTime", "mail", "proxyAddresses", "securityIdentifier"}
)
_UPN = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
COMPLEXITY = (
    "The specified password does not comply with password complexity requirements. "
    "Please provide a different password."
)

Handler = Callable[..., SimResponse]


class _Api(Protocol):
    """What the user handlers need of `GraphApi` (kept structural so that neither imports the other)."""

    state: TenantState

    def _now(self) -> float: ...
    @staticmethod
    def _require(principal: Principal, operation: str) -> None: ...
    @staticmethod
    def _body(req: SimRequest, type_name: str, binds: Any = ()) -> dict[str, Any]: ...
    def _context(self, fragment: str) -> str: ...
    def _restore_deleted(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], object_id: str
    ) -> SimResponse: ...


def invalid(name: str) -> GraphError:
    return bad_request(f"Invalid value specified for property '{name}' of resource 'User'.")


def complex_enough(password: str) -> bool:
    classes = (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    kinds = sum(1 for test in classes if any(test(c) for c in password))
    return PASSWORD_MIN <= len(password) <= PASSWORD_MAX and kinds >= 3


class UserWrites:
    def __init__(self, api: _Api) -> None:
        self.api = api
        self.state = api.state

    def routes(self) -> list[tuple[str, str, Handler]]:
        seg = r"([^/]+)"
        return [
            ("POST", r"/users", self.create),
            ("PATCH", rf"/users/{seg}", self.update),
            ("DELETE", rf"/users/{seg}", self.delete),
            ("GET", r"/directory/deletedItems/microsoft\.graph\.user", self.list_deleted),
            ("POST", rf"/directory/deletedItems/{seg}/restore", self.restore),
            ("GET", r"/domains", self.domains),
        ]

    # -- checks ----------------------------------------------------------------------------------------

    def _upn(self, value: Any, exclude: str | None = None) -> str:
        if not isinstance(value, str) or not _UPN.match(value):
            raise invalid("userPrincipalName")
        domain = value.rpartition("@")[2].lower()
        if domain not in self.state.verified_domains:
            raise bad_request(
                "The domain portion of the userPrincipalName property is invalid. You must use one of the "
                "verified domain names in your organization."
            )
        lowered = value.lower()
        for user in (*self.state.users.values(), *self.state.deleted_users.values()):
            if user.user_principal_name.lower() == lowered and user.id != exclude:
                raise bad_request(
                    "Another object with the same value for property userPrincipalName already exists."
                )
        return value

    @staticmethod
    def _password(value: Any, *, required: bool) -> None:
        if value is None and not required:
            return
        if not isinstance(value, dict) or not isinstance(value.get("password"), str):
            raise invalid("passwordProfile")
        force = value.get("forceChangePasswordNextSignIn")
        if force is not None and not isinstance(force, bool):
            raise invalid("passwordProfile")
        if not complex_enough(value["password"]):
            raise bad_request(COMPLEXITY)

    @staticmethod
    def _extensions(value: Any, current: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid("onPremisesExtensionAttributes")
        merged = dict(current)
        for key, text in value.items():
            if key not in EXTENSION_ATTRIBUTES:
                raise bad_request(
                    f"Property '{key}' does not exist on type "
                    "'microsoft.graph.onPremisesExtensionAttributes'."
                )
            if text is not None and (not isinstance(text, str) or len(text) > EXTENSION_MAX):
                raise invalid("onPremisesExtensionAttributes")
            merged[key] = text
        return merged

    def _apply(self, user: User, body: Mapping[str, Any]) -> None:
        """Set the properties of an already validated body on `user`."""
        for key, value in body.items():
            if key in ("passwordProfile", "@odata.type"):
                continue  # checked, never kept
            if key == "userPrincipalName":
                user.user_principal_name = value
            elif key == "accountEnabled":
                if not isinstance(value, bool):
                    raise invalid(key)
                user.account_enabled = value
            elif key == "onPremisesExtensionAttributes":
                user.extra[key] = self._extensions(value, user.extra.get(key) or {})
            elif key == "usageLocation":
                if value is not None and (not isinstance(value, str) or not re.fullmatch(r"[A-Z]{2}", value)):
                    raise invalid(key)
                user.extra[key] = value
            elif value is not None and (not isinstance(value, str) or len(value) > MAX_LENGTH.get(key, 1024)):
                raise invalid(key)
            elif key in ("displayName", "givenName", "surname", "employeeId"):
                setattr(user, {"displayName": "display_name", "givenName": "given_name",
                               "surname": "surname", "employeeId": "employee_id"}[key], value)  # fmt: skip
            else:
                user.extra[key] = value

    def _check(self, body: Mapping[str, Any]) -> None:
        for key in body:
            if key in _READ_ONLY:
                raise bad_request(f"Property '{key}' is read-only and cannot be set.")

    def _user(self, key: str) -> User:
        user = self.state.find_user(key)
        if user is None:
            raise GraphError(
                404,
                "Request_ResourceNotFound",
                f"Resource '{key}' does not exist or one of its queried reference-property objects "
                "are not present.",
            )
        return user

    def _entity(self, user: User, status: int = 200) -> SimResponse:
        props = user.properties()
        props.pop("@odata.type", None)
        return SimResponse.of_json(status, {"@odata.context": self.api._context("users/$entity"), **props})

    # -- handlers --------------------------------------------------------------------------------------

    def create(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self.api._require(principal, "users.write")
        body = self.api._body(req, "user")
        self._check(body)
        for name in REQUIRED_ON_CREATE:
            if body.get(name) is None:
                raise bad_request(f"Property '{name}' is required when creating the resource 'User'.")
        if not isinstance(body.get("displayName"), str) or not body["displayName"].strip():
            raise invalid("displayName")
        if not isinstance(body.get("mailNickname"), str) or not re.fullmatch(
            r"[A-Za-z0-9._-]{1,64}", body["mailNickname"]
        ):
            raise invalid("mailNickname")
        upn = self._upn(body["userPrincipalName"])
        self._password(body.get("passwordProfile"), required=True)
        user = User(id=self.state.new_id(), user_principal_name=upn)
        self._apply(user, body)
        self.state.users[user.id] = user
        return self._entity(user, 201)

    def update(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], key: str
    ) -> SimResponse:
        self.api._require(principal, "users.write")
        user = self._user(key)
        body = self.api._body(req, "user")
        self._check(body)
        if "userPrincipalName" in body:
            self._upn(body["userPrincipalName"], exclude=user.id)
        self._password(body.get("passwordProfile"), required=False)
        staged = User(**{**user.__dict__, "extra": dict(user.extra)})
        self._apply(staged, body)  # all or nothing: a bad property leaves the user as it was
        user.__dict__.update(staged.__dict__)
        return SimResponse.empty(204)

    def delete(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], key: str
    ) -> SimResponse:
        self.api._require(principal, "users.write")
        user = self._user(key)
        del self.state.users[user.id]
        user.deleted = self.api._now()
        self.state.deleted_users[user.id] = user
        for group in self.state.groups.values():
            for links in (group.members, group.owners):
                if user.id in links:
                    links.remove(user.id)
        for unit in self.state.administrative_units.values():
            if user.id in unit.members:
                unit.members.remove(user.id)
        return SimResponse.empty(204)

    def list_deleted(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self.api._require(principal, "users.read")
        items = []
        for user in self.state.deleted_users.values():
            props = user.properties()
            props.pop("@odata.type", None)
            items.append(props)
        return SimResponse.of_json(200, {"@odata.context": self.api._context("users"), "value": items})

    def restore(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], object_id: str
    ) -> SimResponse:
        user = self.state.deleted_users.get(object_id)
        if user is None:
            return self.api._restore_deleted(req, principal, query, object_id)
        self.api._require(principal, "users.write")
        lowered = user.user_principal_name.lower()
        if any(u.user_principal_name.lower() == lowered for u in self.state.users.values()):
            raise bad_request(
                "Another object with the same value for property userPrincipalName already exists."
            )
        del self.state.deleted_users[object_id]
        user.deleted = None
        self.state.users[object_id] = user
        props = user.properties()
        return SimResponse.of_json(
            200, {"@odata.context": self.api._context("directoryObjects/$entity"), **props}
        )

    def domains(self, req: SimRequest, principal: Principal, query: Mapping[str, str]) -> SimResponse:
        self.api._require(principal, "domains.read")
        known = {p.lower(): p for p in DOMAIN_PROPERTIES}
        selected = parse_select(query.get("$select"), lambda n: known.get(n.lower()), "domain")
        first = min(self.state.verified_domains, default="")
        items = [
            {
                "id": name,
                "authenticationType": "Managed",
                "isDefault": name == first,
                "isInitial": name.endswith(".onmicrosoft.com"),
                "isRoot": True,
                "isVerified": True,
                "supportedServices": ["Email", "OfficeCommunicationsOnline"],
            }
            for name in sorted(self.state.verified_domains)
        ]
        values = [project(item, selected, DOMAIN_PROPERTIES) for item in items]
        return SimResponse.of_json(200, {"@odata.context": self.api._context("domains"), "value": values})


def user_routes(api: _Api) -> list[tuple[str, str, Handler]]:
    """The user-writing routes, for `GraphApi` to register ahead of its own."""
    return UserWrites(api).routes()
