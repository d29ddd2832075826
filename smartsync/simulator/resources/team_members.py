"""The Teams membership API of the simulated tenant, and the lag of group-API changes behind it.

A team's membership as Teams shows it is kept apart from its group's members and owners
(`Team.members`, `Team.owners`; owners are members too). Two ways change it, as on the live service:

- `POST /teams/{id}/members/add` (at most 200 `aadUserConversationMember` values, `roles: ["owner"]`
  for owners) and `POST /teams/{id}/members/remove` (at most 20) change the group and the team at
  once, and answer per value (`aadUserConversationMemberResult`): 200 (add) or 204 (remove) when every
  value succeeded, 207 with the results otherwise. They need `TeamMember.ReadWrite.All`
  (`TeamMember.ReadWriteNonOwnerRole.All` covers values that are not owners). `remove` exists in the
  global cloud only: set `GraphApi.cloud` to another name and it answers as an unknown segment.
- Changes made through the group APIs reach the team late: owners after `OWNER_LAG_SECONDS`, members
  after `MEMBER_LAG_SECONDS` (Microsoft: up to 2 h for owners, 24-48 h for members).

`GET /teams/{id}/members` lists the team as Teams shows it at the simulated time. Each request costs
what any write (or read) costs in `throttle.py`, whatever its number of values, and one team takes
at most 4 of them a second from one app (the Teams service limits).

Choices where Graph's behaviour is not documented exactly:
- Adding a user who is already in the team with the same role succeeds and changes nothing; adding an
  existing member with `roles: ["owner"]` makes them an owner.
- Removing a user who is not in the team is a per-value `NotFound` ("Could not find resource"), as in
  the reference's example; removing the team's last owner is a per-value `BadRequest`.
- The same user twice in one request, more values than allowed, or a value that is not an
  `aadUserConversationMember` with a `user@odata.bind` answers 400 for the whole request.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request
from smartsync.simulator.schema import entity_type
from smartsync.simulator.tenant import Group, Team, TeamSyncItem

if TYPE_CHECKING:
    from smartsync.simulator.api import GraphApi

MAX_ADD_VALUES = 200
MAX_REMOVE_VALUES = 20
OWNER_LAG_SECONDS = 2 * 3600.0
MEMBER_LAG_SECONDS = 24 * 3600.0
MEMBER_TYPE = "microsoft.graph.aadUserConversationMember"
RESULT_TYPE = "#microsoft.graph.aadUserConversationMemberResult"
WRITE_ALL = "TeamMember.ReadWrite.All"
WRITE_NON_OWNERS = "TeamMember.ReadWriteNonOwnerRole.All"
READ_ROLES = frozenset(
    {
        "TeamMember.Read.All",
        WRITE_ALL,
        WRITE_NON_OWNERS,
        "Group.Read.All",
        "Group.ReadWrite.All",
        "Directory.Read.All",
        "Directory.ReadWrite.All",
    }
)
_USER_BIND = re.compile(r"users(?:\('([^']+)'\)|/([^/?#]+))\s*$", re.IGNORECASE)


def start_team(group: Group, team: Team, users: Collection[str]) -> Team:
    """A new team starts with its group's members and owners (provisioning copies them).

    Only users: an owner that is the app's own service principal is no member of the team.
    """
    team.owners = [o for o in group.owners if o in users]
    team.members = [m for m in dict.fromkeys([*group.members, *group.owners]) if m in users]
    return team


def group_api_change(group: Group, relationship: str, user_ids: list[str], added: bool, now: float) -> None:
    """A member or owner changed through the group APIs: Teams shows it only after the lag."""
    if group.team is None or not user_ids:
        return
    lag = OWNER_LAG_SECONDS if relationship == "owners" else MEMBER_LAG_SECONDS
    group.team.pending.extend(TeamSyncItem(now + lag, relationship, uid, added) for uid in user_ids)


def catch_up(team: Team, now: float) -> None:
    """Apply the group-API changes whose lag has passed, oldest first."""
    due = [item for item in team.pending if item.at <= now]
    if not due:
        return
    team.pending = [item for item in team.pending if item.at > now]
    for item in sorted(due, key=lambda i: i.at):
        if item.relationship == "owners":
            _set(team.owners, item.user_id, item.added)
            if item.added:
                _set(team.members, item.user_id, True)
        elif item.added or item.user_id not in team.owners:  # Teams lists its owners as members
            _set(team.members, item.user_id, item.added)


def _set(links: list[str], user_id: str, present: bool) -> None:
    if present and user_id not in links:
        links.append(user_id)
    elif not present and user_id in links:
        links.remove(user_id)


@dataclass(frozen=True)
class _Value:
    key: str  # what the bind named (object id or userPrincipalName)
    user_id: str | None  # the user it resolves to, None when there is no such user
    owner: bool


class TeamsMembers:
    """The handlers of `/teams/{id}/members`, registered by `GraphApi`."""

    def __init__(self, api: GraphApi) -> None:
        self.api = api

    def list_members(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str
    ) -> SimResponse:
        _require(principal, READ_ROLES)
        group = self.api._ready_team_group(team_id)
        team = group.team
        assert team is not None
        catch_up(team, self.api.clock.now())
        self.api._allow_options(query, ("$top", "$skiptoken"))
        items = [self._member(group, team, uid) for uid in team.members]
        return self.api._page(req, query, items, dict, f"teams('{team_id}')/members")

    def act(
        self, req: SimRequest, principal: Principal, query: Mapping[str, str], team_id: str, action: str
    ) -> SimResponse:
        if action == "remove" and self.api.cloud != "global":
            # Not in the national clouds: their metadata has no such action.
            raise bad_request("Resource not found for the segment 'remove'.", code="BadRequest")
        if not principal.roles & {WRITE_ALL, WRITE_NON_OWNERS}:
            _require(principal, frozenset({WRITE_ALL}))
        values = self._values(req, adding=action == "add")
        group = self.api._ready_team_group(team_id)
        team = group.team
        assert team is not None
        now = self.api.clock.now()
        catch_up(team, now)
        if WRITE_ALL not in principal.roles:
            touches_owner = any(v.owner or (v.user_id in group.owners) for v in values)
            if touches_owner:
                _require(principal, frozenset({WRITE_ALL}))
        results = [
            self._add(group, team, v) if action == "add" else self._remove(group, team, v) for v in values
        ]
        failed = any(r["error"] is not None for r in results)
        if not failed and action == "remove":
            return SimResponse.empty(204)
        payload = {
            "@odata.context": self.api._context(
                "Collection(microsoft.graph.aadUserConversationMemberResult)"
            ),
            "value": results,
        }
        return SimResponse.of_json(207 if failed else 200, payload)

    # -- one value ---------------------------------------------------------------------------------

    def _add(self, group: Group, team: Team, value: _Value) -> dict[str, Any]:
        if value.user_id is None:
            return _result(value.key, "NotFound", f"User '{value.key}' was not found.")
        uid = value.user_id
        _set(group.members, uid, True)
        _set(team.members, uid, True)
        if value.owner:
            _set(group.owners, uid, True)
            _set(team.owners, uid, True)
        # A slower group-API change still on its way must not undo this one when it lands.
        team.pending = [item for item in team.pending if item.user_id != uid]
        return _result(uid)

    def _remove(self, group: Group, team: Team, value: _Value) -> dict[str, Any]:
        uid = value.user_id
        if uid is None or (uid not in group.members and uid not in group.owners):
            return _result(uid or value.key, "NotFound", "Could not find resource")
        if uid in group.owners and len(group.owners) == 1:
            return _result(
                uid, "BadRequest", "The team must have at least one owner: add another owner first."
            )
        for links in (group.members, group.owners, team.members, team.owners):
            _set(links, uid, False)
        team.pending = [item for item in team.pending if item.user_id != uid]
        return _result(uid)

    # -- request body ------------------------------------------------------------------------------

    def _values(self, req: SimRequest, *, adding: bool) -> list[_Value]:
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            raise bad_request("Invalid JSON in the request body.") from None
        if not isinstance(body, dict) or set(body) != {"values"} or not isinstance(body["values"], list):
            raise bad_request("The request body must be an object with one parameter, 'values'.")
        raw = body["values"]
        limit = MAX_ADD_VALUES if adding else MAX_REMOVE_VALUES
        if not raw:
            raise bad_request("'values' must hold at least one conversation member.")
        if len(raw) > limit:
            raise bad_request(
                f"At most {limit} conversation members can be {'added' if adding else 'removed'} "
                "in one request."
            )
        schema = entity_type("aadUserConversationMember")
        values: list[_Value] = []
        for item in raw:
            if not isinstance(item, dict) or str(item.get("@odata.type", "")).lstrip("#") != MEMBER_TYPE:
                raise bad_request(f"Every value must be a '{MEMBER_TYPE}' (give '@odata.type').")
            for key in item:
                name = key.split("@", 1)[0]
                if key == "@odata.type" or key == "user@odata.bind":
                    continue
                if name not in schema.properties:
                    raise bad_request(f"Property '{name}' does not exist on type '{MEMBER_TYPE}'.")
            bind = item.get("user@odata.bind")
            match = _USER_BIND.search(bind) if isinstance(bind, str) else None
            if match is None:
                raise bad_request("Every value needs 'user@odata.bind' naming a user: .../users('{id}').")
            roles = item.get("roles") or []
            if not isinstance(roles, list) or any(r != "owner" for r in roles):
                raise bad_request("'roles' must be a list holding at most 'owner'.")
            key = match.group(1) or match.group(2)
            user = self.api.state.find_user(key)
            values.append(_Value(key, user.id if user is not None else None, "owner" in roles))
        seen = [v.user_id or v.key for v in values]
        if len(seen) != len(set(seen)):
            raise bad_request("The same member can only be present once in one request.")
        return values

    def _member(self, group: Group, team: Team, user_id: str) -> dict[str, Any]:
        user = self.api.state.users.get(user_id)
        return {
            "@odata.type": f"#{MEMBER_TYPE}",
            "id": f"{group.id}##{user_id}",
            "roles": ["owner"] if user_id in team.owners else [],
            "displayName": user.display_name if user else None,
            "visibleHistoryStartDateTime": "0001-01-01T00:00:00Z",
            "userId": user_id,
            "email": (user.mail or user.user_principal_name) if user else None,
            "tenantId": self.api.state.tenant_id,
        }


def _result(user_id: str, code: str | None = None, message: str = "") -> dict[str, Any]:
    error = None if code is None else {"code": code, "message": message}
    return {"@odata.type": RESULT_TYPE, "userId": user_id, "error": error}


def _require(principal: Principal, roles: frozenset[str]) -> None:
    if not principal.roles & roles:
        raise GraphError(
            403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
        )
