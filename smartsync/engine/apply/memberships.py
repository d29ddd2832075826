"""Owner and member changes: additions sharing PATCHes, their fallback, and settling lost answers.

The plan keeps owners and members apart; Graph takes both in one PATCH of at most 20 references, so
a new class with two teachers and 28 pupils (30 members, 2 owners) needs two PATCHes, not three.
One bad or already-present reference fails a whole PATCH: its references are then sent one at a
time, where "already there" counts as done. A membership change whose answer was lost (or whose
retries ran out after Graph applied it) is checked against the object's list before it is called
failed, so the journal records what was done.
"""

from __future__ import annotations

from typing import Any

from smartsync.engine.apply.outcome import Call, Outcome, refused_request
from smartsync.engine.apply.requests import ADDITIONS, Requests, unique
from smartsync.engine.plan import REFS_PER_REQUEST
from smartsync.engine.state import UserRef
from smartsync.engine.team_members import read_results, route
from smartsync.graph import GraphClient, GraphError, GraphRequest, GraphResult

# The list each membership change is made on, for the lookups after a lost answer.
MEMBERSHIP_LISTS = {
    "group.members.add": "members",
    "group.members.remove": "members",
    "group.owners.add": "owners",
    "group.owners.remove": "owners",
    "admin_unit.members.add": "members",
    "admin_unit.members.remove": "members",
}


def bulk_additions(
    requests: Requests, oid: str, outcomes: list[Outcome], *, owners_in_patch: bool = True
) -> list[Call]:
    """Owner and member additions to one group, 20 references to a PATCH, owners first.

    Where the tenant refuses owners in a PATCH, owners go one `$ref` POST each instead.
    """
    refs = [
        (outcome, ADDITIONS[outcome.change.op], user)
        for op in ("group.owners.add", "group.members.add")
        for outcome in outcomes
        if outcome.change.op == op
        for user in requests.known(outcome.change.users, outcome)
    ]
    calls: list[Call] = []
    if not owners_in_patch:
        calls = [
            Call(part, requests.add_one(oid, "owners", user), user)
            for part, rel, user in refs
            if rel == "owners"
        ]
        refs = [ref for ref in refs if ref[1] == "members"]
    for start in range(0, len(refs), REFS_PER_REQUEST):
        parts = tuple(refs[start : start + REFS_PER_REQUEST])
        body: dict[str, Any] = {}
        for rel in ("owners", "members"):
            bound = unique([requests.ref(user) for _, part_rel, user in parts if part_rel == rel])
            if bound:
                body[f"{rel}@odata.bind"] = bound
        request = GraphRequest("PATCH", f"/groups/{oid}", body)
        calls.append(Call(parts[0][0], request, purpose="bulk", parts=parts))
    return calls


def settle_bulk(requests: Requests, call: Call, error: GraphError | None, *, final: bool) -> list[Call]:
    """Record a shared PATCH's answer; a refused one comes back as one request per reference."""
    if error is None:
        for part, _, user in call.parts:
            part.users[user.id] = ("ok", None)
        return []
    if not final and (refused_request(error) or "guests" in error.message.lower()):
        return [
            Call(part, requests.add_one(str(part.object_id), rel, user), user)
            for part, rel, user in call.parts
        ]
    for part, _, user in call.parts:
        part.fail_user(user, error)
    return []


def teams_calls(requests: Requests, oid: str, outcomes: list[Outcome], *, removals: bool) -> list[Call]:
    """A team's membership changes: Teams requests, and the references Teams cannot express."""
    # Accounts this run failed to create are marked skipped and not sent.
    sent = {(id(o), u.id) for o in outcomes for u in requests.known(o.change.users, o)}
    routed = route(
        requests.graph_v1,
        oid,
        outcomes,
        removals=removals,
        resolve=requests.user_id,
        keep=lambda outcome, user: (id(outcome), user.id) in sent,
    )
    calls = [Call(parts[0][0], request, purpose="teams", parts=parts) for request, parts in routed.requests]
    calls.extend(ref_call(requests, part, rel, user, adding) for part, rel, user, adding in routed.by_group)
    return calls


def ref_call(requests: Requests, outcome: Outcome, rel: str, user: UserRef, adding: bool) -> Call:
    """One owner or member added or removed through the group API."""
    if adding:
        return Call(outcome, requests.add_one(str(outcome.object_id), rel, user), user)
    return Call(outcome, GraphRequest("DELETE", f"/groups/{outcome.object_id}/{rel}/{user.id}/$ref"), user)


def settle_teams(requests: Requests, call: Call, result: GraphResult, *, final: bool) -> list[Call]:
    """Read Teams' answer per person; what Teams could not do goes through the group API."""
    follow: list[Call] = []
    for (part, rel, user), (verdict, problem) in zip(
        call.parts, read_results(call.request, result, call.parts, requests.user_id), strict=True
    ):
        if verdict == "ok":
            part.users[user.id] = ("ok", None)
        elif verdict == "fallback" and not final:
            follow.append(ref_call(requests, part, rel, user, part.change.op.endswith(".add")))
        elif problem is not None:
            part.fail_user(user, problem)
    return follow


def owners_refused(error: GraphError, call: Call) -> bool:
    """Graph refused owners@odata.bind in a PATCH ("Invalid bind property name owners in request")."""
    carried = any(rel == "owners" for _, rel, _ in call.parts)
    return carried and error.status == 400 and "bind property name owners" in error.message.lower()


def verify_uncertain(client: GraphClient, requests: Requests, outcomes: list[Outcome]) -> None:
    """Look up membership changes that failed in a way that may hide a success."""
    doubtful = [o for o in outcomes if o.uncertain and o.object_id and o.change.op in MEMBERSHIP_LISTS]
    if not doubtful:
        return
    paths = sorted({_list_path(o) for o in doubtful})
    params = "$select=id&$top=999"
    present: dict[str, set[str]] = {}
    results = client.batch([GraphRequest("GET", f"{path}?{params}") for path in paths])
    for path, result in zip(paths, results, strict=True):
        body = result.body if isinstance(result.body, dict) else {}
        try:
            if result.error is not None or body.get("@odata.nextLink"):
                rows = client.get_all(path, {"$select": "id", "$top": "999"})
            else:
                rows = body.get("value") or []
        except GraphError:
            continue  # still unknown: the failure stands and the next run compares again
        present[path] = {str(r.get("id")) for r in rows if isinstance(r, dict)}
    for outcome in doubtful:
        there = present.get(_list_path(outcome))
        if there is None:
            continue
        adding = outcome.change.op.endswith(".add")
        for user_id in outcome.uncertain:
            if (requests.user_id(user_id) in there) == adding:
                outcome.users[user_id] = ("ok", None)


def _list_path(outcome: Outcome) -> str:
    if outcome.change.op.startswith("admin_unit."):
        return f"/directory/administrativeUnits/{outcome.object_id}/members"
    return f"/groups/{outcome.object_id}/{MEMBERSHIP_LISTS[outcome.change.op]}"
