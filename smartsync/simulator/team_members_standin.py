"""A minimal stand-in for `POST /teams/{id}/members/add` and `.../members/remove`.

STAND-IN: the simulator's own handlers for the Teams membership API are being written separately.
This answers only while the Graph handlers do not know the action (they answer 400 "Resource not
found for the segment"), so `smartsync preflight` can exercise the call; once the real handlers are
in, it never runs and can be deleted with its one call in `runtime.py`.

What it models: `values` of `aadUserConversationMember` with `user@odata.bind` (at most 200 to add,
20 to remove), `roles: ["owner"]` for owners; a per-value `aadUserConversationMemberResult`; the team's
last owner is never removed (answered per value).
"""

from __future__ import annotations

import json
import re
from typing import Any

from smartsync.simulator.graph_errors import graph_error
from smartsync.simulator.http import SimRequest, SimResponse
from smartsync.simulator.tenant import TenantState

_TEAM_MEMBERS = re.compile(r"^/v1\.0/teams/([^/]+)/members/(add|remove)$", re.IGNORECASE)
_USER_BIND = re.compile(r"users(?:\('|/)([^/'()?#]+)", re.IGNORECASE)
_LIMITS = {"add": 200, "remove": 20}
_UNKNOWN_SEGMENT = "Resource not found for the segment"


def _unknown_action(response: SimResponse) -> bool:
    if response.status != 400:
        return False
    try:
        body = json.loads(response.body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        return False
    message = str((body.get("error") or {}).get("message") or "") if isinstance(body, dict) else ""
    return message.startswith(_UNKNOWN_SEGMENT)


def stand_in(state: TenantState, req: SimRequest, response: SimResponse, now: float) -> SimResponse:
    """`response`, or this stand-in's answer when it is the Graph handlers not knowing the action."""
    match = _TEAM_MEMBERS.match(req.path.rstrip("/"))
    if match is None or req.method != "POST" or not _unknown_action(response):
        return response
    team_id, action = match.group(1), match.group(2).lower()
    crid = req.headers.get("client-request-id", "")
    with state.lock:
        group = state.groups.get(team_id)
        if group is None or group.team is None:
            return graph_error(
                404, "NotFound", f"No team found with Group Id {team_id}", now, client_request_id=crid
            )
        try:
            body = req.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        values = body.get("values") if isinstance(body, dict) else None
        if not isinstance(values, list) or not values or len(values) > _LIMITS[action]:
            message = f"'values' must list 1 to {_LIMITS[action]} aadUserConversationMember objects."
            return graph_error(400, "BadRequest", message, now, client_request_id=crid)
        results = [_apply(state, group.members, group.owners, value, action) for value in values]
    if action == "remove" and all(r["error"] is None for r in results):
        return SimResponse.empty(204)
    payload = {
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(microsoft.graph.actionResultPart)"
    }
    payload["value"] = results  # type: ignore[assignment]
    return SimResponse.of_json(200 if action == "add" else 207, payload)


def _apply(
    state: TenantState, members: list[str], owners: list[str], value: Any, action: str
) -> dict[str, Any]:
    bind = value.get("user@odata.bind") if isinstance(value, dict) else None
    found = _USER_BIND.search(bind) if isinstance(bind, str) else None
    user_id = found.group(1) if found else ""
    result: dict[str, Any] = {
        "@odata.type": "#microsoft.graph.aadUserConversationMemberResult",
        "userId": user_id,
    }
    if user_id not in state.users:
        result["error"] = {"code": "NotFound", "message": f"User '{user_id}' was not found."}
        return result
    if action == "add":
        if user_id not in members:
            members.append(user_id)
        if "owner" in (value.get("roles") or []) and user_id not in owners:
            owners.append(user_id)
    elif user_id in owners and len(owners) == 1:
        result["error"] = {"code": "BadRequest", "message": "The team's last owner cannot be removed."}
        return result
    else:
        for links in (members, owners):
            if user_id in links:
                links.remove(user_id)
    result["error"] = None
    return result
