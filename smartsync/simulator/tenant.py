"""The simulated tenant's state: users, groups, administrative units, teams and deleted items.

Plain mutable records guarded by one re-entrant lock (`TenantState.lock`); the Graph handlers in
`api.py` hold it for the whole of a request so that every request sees and leaves a consistent tenant.
The seed/state file of the design (§8) is read by `from_seed` and written by `dump` in the same shape:
members and owners as lists of object ids. Ids missing from a seed are generated deterministically
from the tenant id, so the same seed always gives the same tenant.
"""

from __future__ import annotations

import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DELETED_ITEM_RETENTION_SECONDS = 30 * 24 * 3600
# User properties beyond the seed's basic ones that a seed or state file may carry.
USER_EXTRA = (
    "department",
    "jobTitle",
    "companyName",
    "usageLocation",
    "mailNickname",
    "onPremisesExtensionAttributes",
)


def iso_utc(epoch_seconds: float) -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str | None) -> float:
    """Epoch seconds of an ISO timestamp; 0.0 (long ago) when absent."""
    if not text:
        return 0.0
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class AppRegistration:
    client_id: str
    client_secrets: list[str] = field(default_factory=list)
    roles: list[str] = field(default_factory=list)
    password_credentials: list[dict[str, Any]] = field(default_factory=list)
    key_credentials: list[dict[str, Any]] = field(default_factory=list)
    object_id: str = ""
    display_name: str = "smartsync"


@dataclass
class User:
    id: str
    user_principal_name: str
    display_name: str | None = None
    mail: str | None = None
    given_name: str | None = None
    surname: str | None = None
    employee_id: str | None = None
    account_enabled: bool = True
    # Further properties set through POST/PATCH /users (department, jobTitle, usageLocation,
    # onPremisesExtensionAttributes, ...), by their Graph names. Passwords are never kept.
    extra: dict[str, Any] = field(default_factory=dict)
    deleted: float | None = None  # simulated time of soft deletion

    def properties(self) -> dict[str, Any]:
        """The user as a Graph property dict (what $select and $filter see)."""
        extensions = {f"extensionAttribute{n}": None for n in range(1, 16)}
        extensions.update(self.extra.get("onPremisesExtensionAttributes") or {})
        return {
            **{k: v for k, v in self.extra.items() if k != "onPremisesExtensionAttributes"},
            "onPremisesExtensionAttributes": extensions,
            "deletedDateTime": iso_utc(self.deleted) if self.deleted is not None else None,
            "jobTitle": self.extra.get("jobTitle"),
            "@odata.type": "#microsoft.graph.user",
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "displayName": self.display_name,
            "mail": self.mail,
            "givenName": self.given_name,
            "surname": self.surname,
            "employeeId": self.employee_id,
            "accountEnabled": self.account_enabled,
            "businessPhones": [],
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
        }


@dataclass
class EducationClassInfo:
    """What `POST /education/classes` recorded about a class group; its presence marks a class group."""

    external_id: str | None = None
    external_name: str | None = None
    external_source: str | None = None
    class_code: str | None = None


@dataclass(frozen=True)
class TeamSyncItem:
    """A group-API membership change on its way to Teams (see `teams_members.py`)."""

    at: float  # simulated time at which Teams shows it
    relationship: str  # "members" or "owners"
    user_id: str
    added: bool


@dataclass
class Team:
    is_archived: bool = False
    ready_at: float = 0.0  # simulated time at which asynchronous provisioning completes
    template: str = "standard"
    # The membership as Teams shows it (owners are members too), and group-API changes not there yet.
    members: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    pending: list[TeamSyncItem] = field(default_factory=list)


@dataclass
class Group:
    id: str
    display_name: str
    mail_nickname: str
    mail_enabled: bool
    security_enabled: bool
    description: str | None = None
    group_types: list[str] = field(default_factory=list)
    visibility: str | None = None
    resource_behavior_options: list[str] = field(default_factory=list)
    resource_provisioning_options: list[str] = field(default_factory=list)
    created: float = 0.0
    members: list[str] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    team: Team | None = None
    education_class: EducationClassInfo | None = None
    deleted: float | None = None  # simulated time of soft deletion
    on_premises_sync_enabled: bool | None = None  # synced from on-premises AD (the live set's lock_group)

    @property
    def is_unified(self) -> bool:
        return any(t.lower() == "unified" for t in self.group_types)

    def team_ready(self, now: float) -> bool:
        return self.team is not None and self.team.ready_at <= now

    def properties(self, now: float, domain: str) -> dict[str, Any]:
        options = list(self.resource_provisioning_options)
        if self.team_ready(now) and "Team" not in options:
            options.append("Team")
        mail = f"{self.mail_nickname}@{domain}" if self.mail_enabled else None
        return {
            "@odata.type": "#microsoft.graph.group",
            "id": self.id,
            "deletedDateTime": iso_utc(self.deleted) if self.deleted is not None else None,
            "classification": None,
            "createdDateTime": iso_utc(self.created),
            "description": self.description,
            "displayName": self.display_name,
            "expirationDateTime": None,
            "groupTypes": list(self.group_types),
            "isAssignableToRole": None,
            "mail": mail,
            "mailEnabled": self.mail_enabled,
            "mailNickname": self.mail_nickname,
            "membershipRule": None,
            "membershipRuleProcessingState": None,
            "onPremisesDomainName": None,
            "onPremisesLastSyncDateTime": None,
            "onPremisesNetBiosName": None,
            "onPremisesSamAccountName": None,
            "onPremisesSecurityIdentifier": None,
            "onPremisesSyncEnabled": self.on_premises_sync_enabled,
            "preferredDataLocation": None,
            "preferredLanguage": None,
            "proxyAddresses": [f"SMTP:{mail}"] if mail else [],
            "renewedDateTime": iso_utc(self.created),
            "resourceBehaviorOptions": list(self.resource_behavior_options),
            "resourceProvisioningOptions": options,
            "securityEnabled": self.security_enabled,
            "securityIdentifier": None,
            "theme": None,
            "visibility": self.visibility,
            "onPremisesProvisioningErrors": [],
            "serviceProvisioningErrors": [],
        }


@dataclass
class AdministrativeUnit:
    id: str
    display_name: str | None = None
    description: str | None = None
    visibility: str | None = None
    membership_type: str | None = None
    is_member_management_restricted: bool = False
    members: list[str] = field(default_factory=list)
    deleted: float | None = None

    def properties(self) -> dict[str, Any]:
        return {
            "@odata.type": "#microsoft.graph.administrativeUnit",
            "id": self.id,
            "deletedDateTime": iso_utc(self.deleted) if self.deleted is not None else None,
            "displayName": self.display_name,
            "description": self.description,
            "isMemberManagementRestricted": self.is_member_management_restricted,
            "membershipRule": None,
            "membershipType": self.membership_type,
            "membershipRuleProcessingState": None,
            "visibility": self.visibility,
        }


@dataclass
class TeamsOperation:
    id: str
    team_id: str
    operation_type: str  # "createTeam", "archiveTeam", "unarchiveTeam"
    created: float
    completes_at: float

    def properties(self, now: float) -> dict[str, Any]:
        done = now >= self.completes_at
        return {
            "id": self.id,
            "operationType": self.operation_type,
            "createdDateTime": iso_utc(self.created),
            "status": "succeeded" if done else "inProgress",
            "lastActionDateTime": iso_utc(self.completes_at if done else self.created),
            "attemptsCount": 1,
            "targetResourceId": self.team_id,
            "targetResourceLocation": f"/teams('{self.team_id}')",
            "error": None,
        }


class TenantState:
    """Everything the simulated tenant holds. Callers take `lock` around reads and changes."""

    def __init__(self, tenant_id: str, app: AppRegistration, *, domain: str = "school.example") -> None:
        self.lock = threading.RLock()
        self.tenant_id = tenant_id
        self.app = app
        self.domain = domain
        self.users: dict[str, User] = {}
        self.groups: dict[str, Group] = {}
        self.administrative_units: dict[str, AdministrativeUnit] = {}
        self.deleted_groups: dict[str, Group] = {}
        self.deleted_users: dict[str, User] = {}
        # Verified domain names (lower case): new users' sign-in addresses must use one of them.
        self.verified_domains: set[str] = {domain.lower()}
        self.deleted_administrative_units: dict[str, AdministrativeUnit] = {}
        self.teams_operations: dict[str, TeamsOperation] = {}
        # Seeded from the tenant id: the same seed file yields the same generated ids on every run.
        self._ids = random.Random(tenant_id)

    def new_id(self) -> str:
        with self.lock:
            return str(uuid.UUID(int=self._ids.getrandbits(128), version=4))

    def user_count(self) -> int:
        with self.lock:
            return len(self.users)

    def find_user(self, key: str) -> User | None:
        """A user by object id or by userPrincipalName (Graph accepts either in /users/{key})."""
        user = self.users.get(key)
        if user is not None:
            return user
        lowered = key.lower()
        for candidate in self.users.values():
            if candidate.user_principal_name.lower() == lowered:
                return candidate
        return None

    def directory_object_kind(self, object_id: str) -> str | None:
        if object_id in self.users:
            return "user"
        if object_id in self.groups:
            return "group"
        return None

    def purge_expired(self, now: float) -> None:
        """Soft-deleted objects are gone for good after 30 days, as in Entra."""
        cutoff = now - DELETED_ITEM_RETENTION_SECONDS
        stores: tuple[dict[str, Any], ...] = (
            self.deleted_groups,
            self.deleted_administrative_units,
            self.deleted_users,
        )
        for store in stores:
            for object_id in [k for k, v in store.items() if v.deleted is not None and v.deleted < cutoff]:
                del store[object_id]

    # ------------------------------------------------------------------------------------ seed / dump

    @classmethod
    def from_seed(cls, data: dict[str, Any]) -> TenantState:
        tenant_id = str(data.get("tenant_id") or "00000000-0000-0000-0000-000000000001")
        app_data = dict(data.get("app") or {})
        secrets = list(app_data.get("client_secrets") or [])
        if app_data.get("client_secret") and app_data["client_secret"] not in secrets:
            secrets.insert(0, str(app_data["client_secret"]))
        client_id = str(app_data.get("client_id") or "00000000-0000-0000-0000-0000000000a1")
        app = AppRegistration(
            client_id=client_id,
            client_secrets=secrets,
            roles=list(app_data.get("roles") or []),
            password_credentials=[dict(c) for c in app_data.get("password_credentials") or []],
            key_credentials=[dict(c) for c in app_data.get("key_credentials") or []],
            object_id=str(app_data.get("object_id") or uuid.uuid5(uuid.NAMESPACE_URL, f"app:{client_id}")),
            display_name=str(app_data.get("display_name") or "smartsync"),
        )
        state = cls(tenant_id, app, domain=str(data.get("domain") or "school.example"))
        for raw in data.get("users") or []:
            state._load_user(raw)
        for raw in data.get("deleted_users") or []:
            user = state._load_user(raw)
            del state.users[user.id]
            user.deleted = parse_iso(raw.get("deletedDateTime")) or 0.0
            state.deleted_users[user.id] = user
        # Without a list, the seed's own user domains count as verified (every older seed stays valid).
        domains = data.get("domains")
        if domains is None:
            domains = [u.user_principal_name.rpartition("@")[2] for u in state.users.values()]
        state.verified_domains |= {str(d).lower() for d in domains if d}
        for raw in data.get("groups") or []:
            group = state._load_group(raw)
            state.groups[group.id] = group
        for raw in data.get("deleted_groups") or []:
            group = state._load_group(raw)
            group.deleted = parse_iso(raw.get("deletedDateTime")) or 0.0
            state.deleted_groups[group.id] = group
        for raw in data.get("administrative_units") or []:
            unit = state._load_unit(raw)
            state.administrative_units[unit.id] = unit
        for raw in data.get("deleted_administrative_units") or []:
            unit = state._load_unit(raw)
            unit.deleted = parse_iso(raw.get("deletedDateTime")) or 0.0
            state.deleted_administrative_units[unit.id] = unit
        for raw in data.get("teams_operations") or []:
            operation = TeamsOperation(
                id=str(raw["id"]),
                team_id=str(raw["team_id"]),
                operation_type=str(raw["operation_type"]),
                created=float(raw["created"]),
                completes_at=float(raw["completes_at"]),
            )
            state.teams_operations[operation.id] = operation
        return state

    def _load_user(self, raw: dict[str, Any]) -> User:
        upn = str(raw["userPrincipalName"])
        user = User(
            id=str(raw.get("id") or self.new_id()),
            user_principal_name=upn,
            display_name=raw.get("displayName"),
            mail=raw.get("mail"),
            given_name=raw.get("givenName"),
            surname=raw.get("surname"),
            employee_id=raw.get("employeeId"),
            account_enabled=bool(raw.get("accountEnabled", True)),
            extra={k: raw[k] for k in USER_EXTRA if raw.get(k) is not None},
        )
        self.users[user.id] = user
        return user

    def _load_group(self, raw: dict[str, Any]) -> Group:
        team_raw = raw.get("team")
        education = raw.get("educationClass")
        return Group(
            id=str(raw.get("id") or self.new_id()),
            display_name=str(raw.get("displayName") or ""),
            mail_nickname=str(raw.get("mailNickname") or ""),
            mail_enabled=bool(raw.get("mailEnabled", False)),
            security_enabled=bool(raw.get("securityEnabled", True)),
            description=raw.get("description"),
            group_types=list(raw.get("groupTypes") or []),
            visibility=raw.get("visibility"),
            resource_behavior_options=list(raw.get("resourceBehaviorOptions") or []),
            resource_provisioning_options=[
                o for o in raw.get("resourceProvisioningOptions") or [] if not (o == "Team" and team_raw)
            ],
            created=parse_iso(raw.get("createdDateTime")),
            members=[str(m) for m in raw.get("members") or []],
            owners=[str(o) for o in raw.get("owners") or []],
            team=Team(
                is_archived=bool(team_raw.get("isArchived", False)),
                ready_at=parse_iso(team_raw.get("readyDateTime")),
                template=str(team_raw.get("template") or "standard"),
                # A seeded team without its own lists shows its group's members and owners.
                members=[
                    str(m)
                    for m in team_raw.get(
                        "members",
                        list(dict.fromkeys([*(raw.get("members") or []), *(raw.get("owners") or [])])),
                    )
                ],
                owners=[str(o) for o in team_raw.get("owners", raw.get("owners") or [])],
                pending=[
                    TeamSyncItem(float(p["at"]), str(p["relationship"]), str(p["user_id"]), bool(p["added"]))
                    for p in team_raw.get("pending") or []
                ],
            )
            if isinstance(team_raw, dict)
            else None,
            education_class=EducationClassInfo(
                external_id=education.get("externalId"),
                external_name=education.get("externalName"),
                external_source=education.get("externalSource"),
                class_code=education.get("classCode"),
            )
            if isinstance(education, dict)
            else None,
        )

    def _load_unit(self, raw: dict[str, Any]) -> AdministrativeUnit:
        return AdministrativeUnit(
            id=str(raw.get("id") or self.new_id()),
            display_name=raw.get("displayName"),
            description=raw.get("description"),
            visibility=raw.get("visibility"),
            membership_type=raw.get("membershipType"),
            is_member_management_restricted=bool(raw.get("isMemberManagementRestricted", False)),
            members=[str(m) for m in raw.get("members") or []],
        )

    def dump(self) -> dict[str, Any]:
        """The state in the seed format; `from_seed(dump())` rebuilds an equal tenant."""
        with self.lock:
            app = self.app
            return {
                "tenant_id": self.tenant_id,
                "domain": self.domain,
                "app": {
                    "client_id": app.client_id,
                    "client_secret": app.client_secrets[0] if app.client_secrets else None,
                    "client_secrets": list(app.client_secrets),
                    "roles": list(app.roles),
                    "password_credentials": [dict(c) for c in app.password_credentials],
                    "key_credentials": [dict(c) for c in app.key_credentials],
                    "object_id": app.object_id,
                    "display_name": app.display_name,
                },
                "domains": sorted(self.verified_domains),
                "users": [_dump_user(u) for u in self.users.values()],
                "deleted_users": [_dump_user(u) for u in self.deleted_users.values()],
                "groups": [_dump_group(g) for g in self.groups.values()],
                "deleted_groups": [_dump_group(g) for g in self.deleted_groups.values()],
                "administrative_units": [_dump_unit(u) for u in self.administrative_units.values()],
                "deleted_administrative_units": [
                    _dump_unit(u) for u in self.deleted_administrative_units.values()
                ],
                "teams_operations": [
                    {
                        "id": o.id,
                        "team_id": o.team_id,
                        "operation_type": o.operation_type,
                        "created": o.created,
                        "completes_at": o.completes_at,
                    }
                    for o in self.teams_operations.values()
                ],
            }


def _dump_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "userPrincipalName": user.user_principal_name,
        "mail": user.mail,
        "displayName": user.display_name,
        "givenName": user.given_name,
        "surname": user.surname,
        "employeeId": user.employee_id,
        "accountEnabled": user.account_enabled,
        **{k: v for k, v in user.extra.items() if k in USER_EXTRA},
        **({"deletedDateTime": iso_utc(user.deleted)} if user.deleted is not None else {}),
    }


def _dump_group(group: Group) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": group.id,
        "displayName": group.display_name,
        "description": group.description,
        "mailNickname": group.mail_nickname,
        "mailEnabled": group.mail_enabled,
        "securityEnabled": group.security_enabled,
        "groupTypes": list(group.group_types),
        "visibility": group.visibility,
        "resourceBehaviorOptions": list(group.resource_behavior_options),
        "resourceProvisioningOptions": list(group.resource_provisioning_options)
        + (["Team"] if group.team is not None and "Team" not in group.resource_provisioning_options else []),
        "createdDateTime": iso_utc(group.created),
        "members": list(group.members),
        "owners": list(group.owners),
        "team": None
        if group.team is None
        else {
            "isArchived": group.team.is_archived,
            "readyDateTime": iso_utc(group.team.ready_at),
            "template": group.team.template,
            "members": list(group.team.members),
            "owners": list(group.team.owners),
            "pending": [
                {"at": p.at, "relationship": p.relationship, "user_id": p.user_id, "added": p.added}
                for p in group.team.pending
            ],
        },
        "educationClass": None
        if group.education_class is None
        else {
            "externalId": group.education_class.external_id,
            "externalName": group.education_class.external_name,
            "externalSource": group.education_class.external_source,
            "classCode": group.education_class.class_code,
        },
    }
    if group.deleted is not None:
        out["deletedDateTime"] = iso_utc(group.deleted)
    return out


def _dump_unit(unit: AdministrativeUnit) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": unit.id,
        "displayName": unit.display_name,
        "description": unit.description,
        "visibility": unit.visibility,
        "membershipType": unit.membership_type,
        "isMemberManagementRestricted": unit.is_member_management_restricted,
        "members": list(unit.members),
    }
    if unit.deleted is not None:
        out["deletedDateTime"] = iso_utc(unit.deleted)
    return out
