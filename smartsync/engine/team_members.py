"""Membership changes of groups that have a team, through the Teams membership API.

Changes made through the group APIs take hours to reach Teams (owners up to 2 h, members 24-48 h,
Microsoft's announcement of the Teams membership API). For a group that already had a team when the
run started, smartsync therefore adds members and owners with `POST /teams/{id}/members/add` (up to
200 `aadUserConversationMember` values a request, `roles: ["owner"]` for owners, who become members
too) and removes them with `POST /teams/{id}/members/remove` (up to 20), which answer per value. That
needs the application permission `TeamMember.ReadWrite.All`; without it, and for removals outside the
global cloud (the action exists there only), the group APIs are used, with a notice in the plan.

Two changes stay on the group APIs even for a team, because the Teams API cannot express them: an
owner added who is already a member (a promotion), and an owner removed who stays a member (a
demotion: a Teams removal takes the person out of the team altogether).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from smartsync.config import Config
from smartsync.engine.state import ActualState, Notice, UserRef
from smartsync.graph import GraphClient, GraphError, GraphRequest, GraphResult

PERMISSION = "TeamMember.ReadWrite.All"
ADD_PER_REQUEST = 200
REMOVE_PER_REQUEST = 20
MEMBER_TYPE = "microsoft.graph.aadUserConversationMember"
ADD_OPS = frozenset({"group.members.add", "group.owners.add"})
REMOVE_OPS = frozenset({"group.members.remove", "group.owners.remove"})
OPS = ADD_OPS | REMOVE_OPS


class _Change(Protocol):
    @property
    def op(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def users(self) -> tuple[UserRef, ...]: ...


@dataclass(frozen=True)
class TeamsMembership:
    """Which groups' membership changes go through Teams (by object id), and whether removals do."""

    team_ids: frozenset[str]
    removals: bool = True

    def takes(self, op: str, object_id: str | None) -> bool:
        if object_id is None or object_id not in self.team_ids or op not in OPS:
            return False
        return op in ADD_OPS or self.removals


# One reference a request carries: the outcome it serves, "members" or "owners", and the user.
Part = tuple[Any, str, UserRef]


@dataclass(frozen=True)
class Routed:
    """A group's membership changes split into Teams requests and the references left to the group APIs."""

    requests: tuple[tuple[GraphRequest, tuple[Part, ...]], ...]
    by_group: tuple[tuple[Any, str, UserRef, bool], ...]  # (outcome, relationship, user, adding)


def choose(
    *,
    teams_enabled: bool,
    cloud: str,
    granted: Collection[str],
    have: ActualState,
    changes: Iterable[_Change],
) -> tuple[TeamsMembership | None, tuple[Notice, ...]]:
    """The path for this run's membership changes of groups with a team, and the notice that says so."""
    team_keys = {key for key, group in have.groups.items() if group.is_team and not group.archived}
    affected = [c for c in changes if c.op in OPS and c.key in team_keys]
    if not teams_enabled or not team_keys:
        return None, ()
    groups = len({c.key for c in affected})
    # People, not references: a new teacher is one person added (as owner and member).
    added = len({(c.key, u.id) for c in affected if c.op in ADD_OPS for u in c.users})
    removed = len({(c.key, u.id) for c in affected if c.op in REMOVE_OPS for u in c.users})
    what = f"{groups} group{'s' if groups != 1 else ''} with a team ({added} added, {removed} removed)"
    if PERMISSION not in granted:
        if not affected:
            return None, ()
        return None, (
            Notice(
                "teams_membership_fallback",
                f"Membership changes of {what} go through the group API: the app lacks {PERMISSION}, so "
                "Teams shows them only after hours (owners up to 2 h, members up to 48 h). Grant it "
                "(optional, see `smartsync check-credentials`) and they reach Teams in minutes.",
            ),
        )
    ids = frozenset(have.groups[key].id for key in team_keys)
    routing = TeamsMembership(ids, removals=cloud == "global")
    if not affected:
        return routing, ()
    message = f"Membership changes of {what} go through the Teams membership API and reach Teams in minutes."
    if not routing.removals and removed:
        message += (
            " Removals go through the group API: the Teams removal action is offered in the global cloud "
            f"only (tenant.cloud: {cloud})."
        )
    return routing, (Notice("teams_membership", message),)


def for_plan(
    config: Config, client: GraphClient, have: ActualState, changes: Iterable[_Change]
) -> tuple[TeamsMembership | None, tuple[Notice, ...]]:
    """`choose` for a run of `config`: the permissions are those of the client's token."""
    teams = config.sync.teams.enabled
    return choose(
        teams_enabled=teams,
        cloud=config.tenant.cloud,
        granted=client.granted_roles() if teams else frozenset(),
        have=have,
        changes=changes,
    )


def _same(user_id: str) -> str:
    return user_id


def route(
    graph_v1: str,
    team_id: str,
    outcomes: Sequence[Any],
    *,
    removals: bool,
    resolve: Callable[[str], str] = _same,
    keep: Callable[[Any, UserRef], bool] | None = None,
) -> Routed:
    """The Teams requests (and leftover group-API references) for one group's membership outcomes.

    `resolve` turns a user id of the plan into Graph's (an account created earlier in this run);
    references `keep` refuses are not sent at all.
    """
    people: dict[str, dict[str, list[tuple[Any, UserRef]]]] = {}
    for outcome in outcomes:
        for user in outcome.change.users:
            if keep is not None and not keep(outcome, user):
                continue
            people.setdefault(outcome.change.op, {}).setdefault(user.id, []).append((outcome, user))
    owners_added = people.get("group.owners.add", {})
    members_added = people.get("group.members.add", {})
    owners_removed = people.get("group.owners.remove", {})
    members_removed = people.get("group.members.remove", {})
    by_group: list[tuple[Any, str, UserRef, bool]] = []
    adds: list[tuple[bool, tuple[Part, ...]]] = []
    for uid, entries in members_added.items():
        parts = tuple((o, "members", u) for o, u in entries)
        owner_parts = tuple((o, "owners", u) for o, u in owners_added.get(uid, []))
        adds.append((bool(owner_parts), owner_parts + parts))
    for uid, entries in owners_added.items():
        if uid not in members_added:  # a member becoming an owner: Teams' add would not say so
            by_group.extend((o, "owners", u, True) for o, u in entries)
    removes: list[tuple[Part, ...]] = []
    if removals:
        for uid, entries in members_removed.items():
            parts = tuple((o, "members", u) for o, u in entries)
            removes.append(tuple((o, "owners", u) for o, u in owners_removed.get(uid, [])) + parts)
        for uid, entries in owners_removed.items():
            if uid not in members_removed:  # an owner staying as a member: Teams' remove would take them out
                by_group.extend((o, "owners", u, False) for o, u in entries)
    else:
        by_group.extend((o, "owners", u, False) for entries in owners_removed.values() for o, u in entries)
        by_group.extend((o, "members", u, False) for entries in members_removed.values() for o, u in entries)
    requests: list[tuple[GraphRequest, tuple[Part, ...]]] = []
    path = f"/teams/{team_id}/members"
    for start in range(0, len(adds), ADD_PER_REQUEST):
        chunk = adds[start : start + ADD_PER_REQUEST]
        body = {"values": [_value(graph_v1, resolve(parts[0][2].id), owner) for owner, parts in chunk]}
        request = GraphRequest("POST", f"{path}/add", body, idempotent=True)
        requests.append((request, tuple(p for _, parts in chunk for p in parts)))
    for start in range(0, len(removes), REMOVE_PER_REQUEST):
        chunk_parts = removes[start : start + REMOVE_PER_REQUEST]
        body = {"values": [_value(graph_v1, resolve(parts[0][2].id), None) for parts in chunk_parts]}
        request = GraphRequest("POST", f"{path}/remove", body, idempotent=True)
        requests.append((request, tuple(p for parts in chunk_parts for p in parts)))
    return Routed(tuple(requests), tuple(by_group))


def _value(graph_v1: str, user_id: str, owner: bool | None) -> dict[str, Any]:
    value: dict[str, Any] = {
        "@odata.type": MEMBER_TYPE,
        "user@odata.bind": f"{graph_v1}/users('{user_id}')",
    }
    if owner is not None:  # removals name the user only, as in the reference's examples
        value["roles"] = ["owner"] if owner else []
    return value


# What became of one reference: "ok", "failed" (with the error), or "fallback" (send it by the group API).
Verdict = tuple[str, GraphError | None]


def read_results(
    request: GraphRequest, result: GraphResult, parts: Sequence[Part], resolve: Callable[[str], str] = _same
) -> list[Verdict]:
    """One verdict per part, from the request's answer and its per-value `actionResultPart`s."""
    error = result.error
    if error is not None:
        if error.status in (400, 403, 404):
            # The team is gone, the body or the permission was refused: the group APIs still do it.
            return [("fallback", error)] * len(parts)
        return [("failed", error)] * len(parts)
    removing = request.url.endswith("/remove")
    body = result.body if isinstance(result.body, dict) else {}
    rows = body.get("value") if isinstance(body.get("value"), list) else None
    if rows is None:
        if result.status == 207:
            unknown = GraphError(None, "NoResults", "Teams answered 207 without per-member results")
            return [("failed", unknown)] * len(parts)
        return [("ok", None)] * len(parts)
    errors: dict[str, dict[str, Any] | None] = {}
    for row in rows:
        if isinstance(row, dict) and row.get("userId"):
            problem = row.get("error")
            errors[str(row["userId"])] = problem if isinstance(problem, dict) else None
    verdicts: list[Verdict] = []
    for _, _, user in parts:
        user_id = resolve(user.id)
        if user_id not in errors:
            if result.status == 207:
                unknown = GraphError(None, "NoResult", f"Teams gave no result for {user.address}")
                verdicts.append(("failed", unknown))
            else:
                verdicts.append(("ok", None))
            continue
        problem = errors[user_id]
        code = str((problem or {}).get("code") or "")
        if problem is None or (removing and code.lower() == "notfound"):
            verdicts.append(("ok", None))  # removing someone who is not there leaves things as wanted
            continue
        status = 404 if code.lower() == "notfound" else 400
        message = str(problem.get("message") or "") or "refused by Teams"
        verdicts.append(
            ("failed", GraphError(status, code or "Failed", message, method="POST", path=request.url))
        )
    return verdicts
