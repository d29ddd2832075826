"""Tenant quirks: switches that make the simulated tenant refuse a call the way some live tenants do.

Real tenants differ (education or not, restricted units manageable or not, a cloud without the Teams
membership API, a service that rejects owners in a `PATCH`). `simulator serve --quirks a,b` and
`Simulator(quirks=...)` turn each refusal on, so every branch of `smartsync preflight` and of the
sync's fallbacks can be tested:

- `owners-patch-refused`: `PATCH /groups/{id}` carrying `owners@odata.bind` answers 400 BadRequest
  "Invalid bind property name owners in request." (the answer reported in microsoft-graph-docs #9818
  and -contrib #1488). Owners bound at creation and `POST .../owners/$ref` still work.
- `rmau-members-refused`: adding or removing members of a restricted-management administrative unit,
  and changing a group that is a member of one, answers 403 Authorization_RequestDenied: application
  permissions do not reach inside such a unit without a role assigned at its scope.
- `edu-classes-unavailable`: `POST /education/classes` answers as a non-education tenant does: 400
  Request_UnsupportedQuery about the missing Education_ObjectType extension property
  (microsoft-graph-docs #4964).
- `teams-members-api-unavailable`: `POST /teams/{id}/members/add|remove` answers 400 BadRequest
  "Resource not found for the segment ..." as in a cloud that does not offer the action.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from smartsync.simulator.graph_errors import graph_error
from smartsync.simulator.http import SimRequest, SimResponse
from smartsync.simulator.tenant import TenantState

QUIRKS = (
    "owners-patch-refused",
    "rmau-members-refused",
    "edu-classes-unavailable",
    "teams-members-api-unavailable",
)

_GROUP = re.compile(r"^/v1\.0/groups/([^/]+)(/.*)?$", re.IGNORECASE)
_UNIT_MEMBERS = re.compile(r"^/v1\.0/directory/administrativeUnits/([^/]+)/members(/.*)?$", re.IGNORECASE)
_TEAM_MEMBERS = re.compile(r"^/v1\.0/teams/([^/]+)/members/(add|remove)$", re.IGNORECASE)
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})


class QuirkSpecError(ValueError):
    pass


def parse_quirks(spec: str | Iterable[str] | None) -> frozenset[str]:
    """`"a,b"` (or names) as a set of known quirks; an unknown name is an error naming the known ones."""
    if spec is None:
        return frozenset()
    names = [n.strip() for n in (spec.split(",") if isinstance(spec, str) else spec) if n.strip()]
    unknown = [n for n in names if n not in QUIRKS]
    if unknown:
        raise QuirkSpecError(f"unknown quirk {', '.join(unknown)}; known quirks: {', '.join(QUIRKS)}")
    return frozenset(names)


class Quirks:
    """Decides, before the Graph handlers run, whether a quirk refuses a request."""

    def __init__(self, names: Iterable[str], state: TenantState) -> None:
        self.names = parse_quirks(list(names))
        self.state = state

    def refusal(self, req: SimRequest, now: float) -> SimResponse | None:
        if not self.names:
            return None
        with self.state.lock:
            refused = self._refused(req)
        if refused is None:
            return None
        status, code, message = refused
        return graph_error(
            status, code, message, now, client_request_id=req.headers.get("client-request-id", "")
        )

    def _refused(self, req: SimRequest) -> tuple[int, str, str] | None:
        path = req.path.rstrip("/")
        group = _GROUP.match(path)
        patch = req.method == "PATCH" and group is not None and not group.group(2)
        if "owners-patch-refused" in self.names and patch and b"owners@odata.bind" in req.body:
            return 400, "BadRequest", "Invalid bind property name owners in request."
        if "rmau-members-refused" in self.names and req.method in _WRITES:
            unit = _UNIT_MEMBERS.match(path)
            if unit is not None and self._restricted(unit.group(1)):
                return _DENIED
            if group is not None and any(
                group.group(1) in u.members
                for u in self.state.administrative_units.values()
                if u.is_member_management_restricted
            ):
                return _DENIED
        classes = req.method == "POST" and path.lower() == "/v1.0/education/classes"
        if "edu-classes-unavailable" in self.names and classes:
            return (
                400,
                "Request_UnsupportedQuery",
                "Property 'extension_fe2174665583431c953114ff7268b7b3_Education_ObjectType' does not "
                "exist as a declared property or extension property.",
            )
        if "teams-members-api-unavailable" in self.names and req.method == "POST":
            team = _TEAM_MEMBERS.match(path)
            if team is not None:
                return 400, "BadRequest", f"Resource not found for the segment '{team.group(2)}'."
        return None

    def _restricted(self, unit_id: str) -> bool:
        unit = self.state.administrative_units.get(unit_id)
        return unit is not None and unit.is_member_management_restricted


_DENIED = (403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
