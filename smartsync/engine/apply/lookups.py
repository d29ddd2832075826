"""Creations whose answer was lost: found again by their marker before anything is created twice.

A group carries its key in `mailNickname`, a unit in its description (DESIGN §5). When Graph's
answer to a creation is lost, the object may or may not exist: looking for the marker settles it,
and only an object that is not there is created again.
"""

from __future__ import annotations

from smartsync.engine.apply.accounts import AccountWrites
from smartsync.engine.apply.outcome import Call
from smartsync.engine.naming import au_description
from smartsync.engine.plan import Change
from smartsync.graph import GraphClient, GraphError, GraphOutcomeUnknown, GraphResult


def settle_create(client: GraphClient, call: Call, result: GraphResult, *, final: bool) -> list[Call]:
    """Record a creation's answer; a lost one is looked up, and sent again only if not found."""
    outcome, error = call.outcome, result.error
    if error is None:
        outcome.object_id = str((result.body or {}).get("id") or "") or None
        return []
    resent = outcome.change.op == "user.create" and "create" in outcome.uncertain
    if isinstance(error, GraphOutcomeUnknown) or (resent and error.status == 400):
        # (A resent account creation refused as a duplicate: the lost first attempt made it.)
        outcome.uncertain.add("create")
        found = find_created(client, outcome.change)
        if found is not None:
            outcome.object_id = found
            return []
        if not final and isinstance(error, GraphOutcomeUnknown):
            # Looked up by its marker and not there: creating it again cannot make a duplicate.
            return [call]
    outcome.fail(error)
    return []


def education_refused(error: GraphError, call: Call) -> bool:
    """Not an education tenant: `POST /education/classes` is answered as for an unknown extension."""
    return call.request.url == "/education/classes" and "education_objecttype" in error.message.lower()


def find_created(client: GraphClient, change: Change) -> str | None:
    """After a lost response: did the creation happen? Look for the object by its marker."""
    if change.op == "user.create":
        return AccountWrites.find_created(client, change)
    try:
        if change.op == "group.create" and change.group is not None:
            nick = change.group.mail_nickname
            rows = client.get_all(
                "/groups", {"$filter": f"mailNickname eq '{nick}'", "$select": "id,mailNickname"}
            )
        else:
            marker = (change.unit.description if change.unit else None) or au_description(change.key)
            rows = [
                r
                for r in client.get_all(
                    "/directory/administrativeUnits", {"$select": "id,description", "$top": "999"}
                )
                if r.get("description") == marker
            ]
    except GraphError:
        return None
    return str(rows[0]["id"]) if rows else None
