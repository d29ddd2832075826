"""The live service's habits that Graph's reference pages leave out (the "live" behaviour set).

Microsoft's pages describe a consistent directory; the real service is eventually consistent and has
rules of its own that production sync tools (Canvas, Moodle's plugin, Group Membership Management,
Terraform's AzureAD provider) had to learn. `LiveService` adds them to the simulated tenant, between
`GraphApi`'s routing and its handlers, so that every test and the demo meet them:

- Replication delay: for `lag_seconds` after a group, class or unit is created, requests naming it
  answer 404 `Request_ResourceNotFound`, or (member additions, and references to it) 400 "The source
  resource object or one of the objects being referenced do not exist."; team creation from a group
  younger than `team_lag_seconds` answers 404, and for the educationClass template also, in turn,
  400 "...does not belong to a class" and "...must have one or more owners...".
- The app as owner: the calling app's service principal becomes an owner of the groups it creates.
- Bind lists: the same object twice in one `@odata.bind` list answers 400 "...can only be present
  once..."; removing a non-member answers 404 or, every other time, 400 "One or more removed object
  references do not exist...".
- Groups an app may not write: `lock_group` marks a group mail-enabled, on-premises synced or dynamic
  (its writes answer as Graph answers them); `refuse_guest` makes a user a guest that policy keeps
  out of Microsoft 365 groups; at most `max_owners` owners per group (403 past it).
- Restricted-management units: Microsoft 365 groups cannot be members; a group inside one may no
  longer be changed by the app unless `unit_role` (an Entra role scoped to the units) is set.
- Teams: archiving refuses `shouldSetSpoSiteReadOnlyForMembers` (app-only) and its operation runs
  for `archive_seconds`; a second team for a group answers 409 "...already provisioned".
- `$batch`: responses come back shuffled (seeded).
"""

from __future__ import annotations

import json
import random
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request
from smartsync.simulator.tenant import Group, TenantState

SOURCE_MISSING = "The source resource object or one of the objects being referenced do not exist."
REMOVED_MISSING = (
    "One or more removed object references do not exist for the following modified properties: '{rel}'."
)
LOCKED_MESSAGES = {
    "mail_enabled": (
        400,
        "Request_BadRequest",
        "Cannot Update a mail-enabled security groups and or distribution list.",
    ),
    "on_premises": (
        400,
        "Request_BadRequest",
        "Unable to update the specified properties for on-premises mastered Directory Sync objects or "
        "objects currently undergoing migration.",
    ),
    "dynamic": (
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation. Members of a group with dynamic membership "
        "cannot be added or removed.",
    ),
}
LOCK_KINDS = frozenset(LOCKED_MESSAGES)
_GROUP_PATH = re.compile(r"^/(?:groups|education/classes)/([^/]+)(/.*)?$")
_UNIT_PATH = re.compile(r"^/directory/administrativeUnits/([^/]+)(/.*)?$")
_TEAM_PATH = re.compile(r"^/teams/([^/]+)(/.*)?$")
_REF = re.compile(r"(?:directoryObjects|users|groups)(?:/|\(')([^/'()?#]+)", re.IGNORECASE)


@dataclass(frozen=True)
class LiveSettings:
    """Which live behaviours are on, and how strong; the defaults are the field notes' figures, short."""

    lag_seconds: float = 5.0  # groups, classes, units (the notes: seconds)
    team_lag_seconds: float = 30.0  # team creation from a new group (the notes: up to 15 minutes)
    app_owner: bool = True
    shuffle_batches: bool = True
    max_owners: int = 100
    archive_seconds: float = 10.0
    seed: int = 0


@dataclass
class LiveService:
    """The live behaviours for one tenant; `GraphApi` calls `before` and `after` around each handler."""

    settings: LiveSettings
    state: TenantState
    born: dict[str, float] = field(default_factory=dict)
    locked: dict[str, str] = field(default_factory=dict)  # group id -> one of LOCK_KINDS
    guests: set[str] = field(default_factory=set)
    unit_role: bool = False
    _turn: dict[str, int] = field(default_factory=dict)
    _rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.settings.seed)

    @property
    def service_principal_id(self) -> str:
        """The calling app's service principal (not its application object): what Graph makes owner."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"service-principal:{self.state.app.client_id}"))

    def object_properties(self, object_id: str) -> dict[str, Any] | None:
        if object_id != self.service_principal_id:
            return None
        return {
            "@odata.type": "#microsoft.graph.servicePrincipal",
            "id": object_id,
            "appId": self.state.app.client_id,
            "displayName": self.state.app.display_name,
        }

    # -- controls (tests and `/_simulator/live/...`) -------------------------------------------------

    def lock_group(self, group_id: str, kind: str) -> None:
        """Make a group one an app may not write, and let its properties say so, as Entra's do."""
        if kind not in LOCK_KINDS:
            raise ValueError(f"kind must be one of {sorted(LOCK_KINDS)}")
        self.locked[group_id] = kind
        group = self.state.groups.get(group_id)
        if group is None:
            return
        if kind == "mail_enabled":
            group.mail_enabled = True
        elif kind == "on_premises":
            group.on_premises_sync_enabled = True
        elif "DynamicMembership" not in group.group_types:
            group.group_types.append("DynamicMembership")

    def refuse_guest(self, user_id: str) -> None:
        self.guests.add(user_id)

    # -- the hooks ---------------------------------------------------------------------------------

    def before(self, req: SimRequest, resource: str, now: float) -> None:
        """Raise the GraphError the live service would answer instead of handling the request."""
        method = req.method
        body = _json(req) if method in ("POST", "PATCH", "PUT") else None
        if method in ("POST", "PATCH"):
            self._refuse_duplicate_binds(body)
        if method == "POST" and resource == "/teams":
            self._team_from_young_group(body, now)
            return
        match = _GROUP_PATH.match(resource)
        if match is not None:
            self._group_request(req, match.group(1), match.group(2) or "", body, now)
            return
        match = _UNIT_PATH.match(resource)
        if match is not None:
            self._unit_request(req, match.group(1), match.group(2) or "", body, now)
            return
        match = _TEAM_PATH.match(resource)
        if match is not None:
            self._young(match.group(1), now, self.settings.lag_seconds)
            spo = isinstance(body, dict) and "shouldSetSpoSiteReadOnlyForMembers" in body
            if (match.group(2) or "") == "/archive" and spo:
                raise bad_request(
                    "shouldSetSpoSiteReadOnlyForMembers is not supported with application permissions."
                )

    def after(
        self, req: SimRequest, resource: str, response: SimResponse, principal: Principal, now: float
    ) -> None:
        """Record new objects and let Graph add the app as an owner of the groups it creates."""
        if req.method == "POST" and response.status == 202 and resource.endswith("/archive"):
            self._slow_archive(response, now)
        if req.method != "POST" or response.status != 201:
            return
        if resource not in ("/groups", "/education/classes", "/directory/administrativeUnits"):
            return
        created = response.json() or {}
        object_id = str(created.get("id") or "")
        if not object_id:
            return
        self.born[object_id] = now
        group = self.state.groups.get(object_id)
        ours = principal.app_id == self.state.app.client_id
        if (
            group is not None
            and self.settings.app_owner
            and ours
            and self.service_principal_id not in group.owners
        ):
            group.owners.append(self.service_principal_id)

    def shuffle(self, response: SimResponse) -> SimResponse:
        """A `$batch` answer with its responses in another order (Graph promises none)."""
        if not self.settings.shuffle_batches or response.status != 200:
            return response
        payload = response.json()
        if isinstance(payload, dict) and isinstance(payload.get("responses"), list):
            self._rng.shuffle(payload["responses"])
            return SimResponse.of_json(
                200, payload, {k: v for k, v in response.headers.items() if k != "content-type"}
            )
        return response

    def _slow_archive(self, response: SimResponse, now: float) -> None:
        location = response.headers.get("location", "")
        match = re.search(r"operations\('([^']+)'\)", location)
        operation = self.state.teams_operations.get(match.group(1)) if match else None
        if operation is not None:
            operation.completes_at = now + self.settings.archive_seconds

    # -- rules -------------------------------------------------------------------------------------

    def _next(self, what: str) -> int:
        self._turn[what] = self._turn.get(what, 0) + 1
        return self._turn[what]

    def _is_young(self, object_id: str, now: float, window: float) -> bool:
        born = self.born.get(object_id)
        return born is not None and now - born < window

    def _young(self, object_id: str, now: float, window: float, *, adding: bool = False) -> None:
        if not self._is_young(object_id, now, window):
            return
        if adding:
            raise bad_request(SOURCE_MISSING)
        raise GraphError(
            404,
            "Request_ResourceNotFound",
            f"Resource '{object_id}' does not exist or one of its queried reference-property objects are not "
            "present.",
        )

    def _refuse_duplicate_binds(self, body: Any) -> None:
        if not isinstance(body, dict):
            return
        for key, value in body.items():
            if key.endswith("@odata.bind") and isinstance(value, list):
                ids = [_ref_id(v) for v in value if isinstance(v, str)]
                seen: set[str] = set()
                for object_id in ids:
                    if object_id in seen:
                        raise bad_request(
                            f"The object '{object_id}' can only be present once as an add/remove change."
                        )
                    seen.add(object_id)

    def _references(self, body: Any) -> list[str]:
        if not isinstance(body, dict):
            return []
        refs: list[str] = []
        for key, value in body.items():
            if key == "@odata.id" and isinstance(value, str):
                refs.append(_ref_id(value))
            elif key in ("members@odata.bind", "owners@odata.bind") and isinstance(value, list):
                refs.extend(_ref_id(v) for v in value if isinstance(v, str))
        return refs

    def _group_request(self, req: SimRequest, group_id: str, rest: str, body: Any, now: float) -> None:
        adding = (req.method == "POST" and rest.endswith("/$ref")) or (
            req.method == "PATCH" and rest == "" and any(str(k).endswith("@odata.bind") for k in body or {})
        )
        if rest == "/team" and req.method == "PUT":
            self._young(group_id, now, self.settings.team_lag_seconds)
        self._young(group_id, now, self.settings.lag_seconds, adding=adding)
        for ref in self._references(body):
            if self._is_young(ref, now, self.settings.lag_seconds):
                raise bad_request(SOURCE_MISSING)
        group = self.state.groups.get(group_id)
        if group is None:
            return
        writing = req.method in ("POST", "PATCH", "DELETE", "PUT") and not rest.startswith("/team")
        if writing and group_id in self.locked:
            status, code, message = LOCKED_MESSAGES[self.locked[group_id]]
            raise GraphError(status, code, message)
        if writing and not self.unit_role and self._in_restricted_unit(group_id):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Insufficient privileges to complete the operation. The object is in a restricted management "
                "administrative unit; only administrators assigned a role scoped to that unit can change it.",
            )
        if req.method == "DELETE" and rest.endswith("/$ref"):
            self._removal(group, rest)
        as_member = "members" in rest or any(str(k).startswith("members@") for k in body or {})
        if group.is_unified and as_member and any(r in self.guests for r in self._references(body)):
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "Guests users are not allowed to join this Unified Group due to policy setting.",
            )
        owners = _added_owners(rest, body)
        if owners and len(set(group.owners) | set(owners)) > self.settings.max_owners:
            raise GraphError(
                403,
                "Directory_QuotaExceeded",
                "The directory object quota limit for the Principal has been exceeded: adding these owners "
                "would exceed the maximum quota count for forward-link 'owners'.",
            )

    def _removal(self, group: Group, rest: str) -> None:
        parts = rest.strip("/").split("/")  # members|owners, {id}, $ref
        if len(parts) != 3:
            return
        relationship, object_id = parts[0], parts[1]
        links = group.members if relationship == "members" else group.owners
        if object_id not in links and self._next("removal") % 2 == 0:
            raise bad_request(REMOVED_MISSING.format(rel=relationship))

    def _unit_request(self, req: SimRequest, unit_id: str, rest: str, body: Any, now: float) -> None:
        adding = req.method == "POST" and rest.endswith("/$ref")
        self._young(unit_id, now, self.settings.lag_seconds, adding=adding)
        refs = self._references(body)
        for ref in refs:
            if self._is_young(ref, now, self.settings.lag_seconds):
                raise bad_request(SOURCE_MISSING)
        unit = self.state.administrative_units.get(unit_id)
        if unit is None or not adding or not unit.is_member_management_restricted:
            return
        for ref in refs:
            group = self.state.groups.get(ref)
            if group is not None and group.is_unified:
                raise bad_request(
                    "Microsoft 365 groups cannot be added to a restricted management administrative unit: "
                    "only users, devices and security groups can be members."
                )

    def _in_restricted_unit(self, object_id: str) -> bool:
        return any(
            u.is_member_management_restricted and object_id in u.members
            for u in self.state.administrative_units.values()
        )

    def _team_from_young_group(self, body: Any, now: float) -> None:
        if not isinstance(body, dict):
            return
        group_url = body.get("group@odata.bind")
        if not isinstance(group_url, str):
            return
        match = re.search(r"groups(?:\('|/)([^/'()?#]+)", group_url, re.IGNORECASE)
        if match is None:
            return
        group_id = match.group(1)
        if self._is_young(group_id, now, self.settings.team_lag_seconds):
            group = self.state.groups.get(group_id)
            template = str(body.get("template@odata.bind") or "")
            turn = self._next("team")
            if group is not None and group.education_class is not None and "educationClass" in template:
                if turn % 3 == 1:
                    raise GraphError(
                        400,
                        "BadRequest",
                        "Team with template 'educationClass' can not be provisioned using a group which does "
                        "not belong to a class",
                    )
                if turn % 3 == 2:
                    raise GraphError(
                        400, "BadRequest", "Group must have one or more owners in order to create a Team."
                    )
            raise GraphError(
                404,
                "NotFound",
                "Failed to execute Templates backend request CreateTeamFromGroupWithTemplateRequest. "
                f"Group '{group_id}' was not found.",
            )
        group = self.state.groups.get(group_id)
        if group is not None and group.team is not None:
            raise GraphError(409, "Conflict", f"The group '{group_id}' is already provisioned.")


def _json(req: SimRequest) -> Any:
    try:
        return req.json()
    except (ValueError, UnicodeDecodeError):
        return None  # the handler answers the malformed body


def _ref_id(url: str) -> str:
    matches = _REF.findall(url)
    return str(matches[-1]) if matches else url


def _added_owners(rest: str, body: Any) -> list[str]:
    if not isinstance(body, dict):
        return []
    if rest == "/owners/$ref" and isinstance(body.get("@odata.id"), str):
        return [_ref_id(body["@odata.id"])]
    value = body.get("owners@odata.bind")
    return [_ref_id(v) for v in value if isinstance(v, str)] if isinstance(value, list) else []


def parse_live_body(data: bytes) -> dict[str, Any]:
    """The JSON object of a `/_simulator/live/...` control request."""
    payload = json.loads(data.decode("utf-8") or "{}")
    if not isinstance(payload, dict):
        raise ValueError("expected a JSON object")
    return payload


__all__ = ["LOCK_KINDS", "LiveService", "LiveSettings", "parse_live_body"]
