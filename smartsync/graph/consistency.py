"""What Graph's answers mean when the directory is still catching up, or will never take a write.

Entra is eventually consistent: for a while after smartsync creates a group, class or unit, requests
naming it may answer 404 `Request_ResourceNotFound`, or 400 "The source resource object or one of
the objects being referenced do not exist." (member additions), and team creation may answer 404 or,
for the educationClass template, 400 "...does not belong to a class" / "...must have one or more
owners...". Such an answer about an object created in this run is worth waiting for
(`ReplicationWait`: backoff within a budget). The same words naming a *user* mean that user is gone:
waiting does not help, so that user is left out and the rest of the request goes again.

Some groups take no write from an app whatever it waits for (mail-enabled, on-premises synced,
dynamic), some people cannot join (guests refused by policy), and a group has at most 100 owners:
`refusal` names those, so the change becomes a warning instead of a failure or a retry.
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from smartsync.graph.errors import GraphError, GraphNotFound

if TYPE_CHECKING:
    from smartsync.graph.client import GraphClient

# Reads of an object that was listed but answers 404 (created moments ago) are tried this often.
READ_ATTEMPTS = 8

_NAMED_ID = re.compile(r"Resource '([^']+)' does not exist", re.IGNORECASE)
_SOURCE_MISSING = "objects being referenced do not exist"
_TEAM_NOT_YET = ("does not belong to a class", "must have one or more owners")
_REFUSALS = (
    ("mail-enabled security groups and or distribution list", "is mail-enabled (Exchange manages it)"),
    ("on-premises mastered", "is synced from on-premises Active Directory (change it there)"),
    ("dynamic membership", "has dynamic membership (its rule decides its members)"),
    ("guests users are not allowed to join", "refuses guests by policy"),
    ("maximum quota count for forward-link 'owners'", "already has the most owners Graph allows (100)"),
)


def named_id(error: GraphError) -> str | None:
    """The object id a not-found answer names, if it names one."""
    match = _NAMED_ID.search(error.message)
    return match.group(1) if match else None


def not_there(error: GraphError) -> bool:
    """An answer saying that the object or one it references does not exist (yet)."""
    if error.status == 404:
        return True
    return error.status == 400 and (_SOURCE_MISSING in error.message.lower() or named_id(error) is not None)


def replicating(error: GraphError, target: str | None, created: Container[str]) -> bool:
    """Whether `error` is the directory still catching up with `target`, created in this run."""
    if target is None or target not in created or not not_there(error):
        return False
    named = named_id(error)
    return named is None or named == target or named in created


def team_not_ready(error: GraphError) -> bool:
    """Team creation refused in a way that passes once the new group has replicated to Teams."""
    if error.status == 404:
        return True
    text = error.message.lower()
    return error.status == 400 and any(words in text for words in _TEAM_NOT_YET)


def refusal(error: GraphError) -> str | None:
    """Why Graph will never take this write from smartsync (a phrase after the group's name), if so."""
    if error.status not in (400, 403):
        return None
    text = error.message.lower()
    for words, reason in _REFUSALS:
        if words in text:
            return reason
    return None


def read_when_replicated(client: GraphClient, path: str, params: Mapping[str, str]) -> list[dict[str, Any]]:
    """A collection that answers 404 although its object was just listed: read it again, backing off."""
    for attempt in range(1, READ_ATTEMPTS + 1):
        client.pause(attempt)
        try:
            return client.get_all(path, params)
        except GraphNotFound:
            if attempt == READ_ATTEMPTS:
                raise
    return []


def unwritable_reason(group: Mapping[str, Any]) -> str | None:
    """Why a group, as Graph lists it, takes no write from an app (the phrases of `refusal`), if so."""
    types = group.get("groupTypes") or []
    if group.get("onPremisesSyncEnabled") is True:
        return "is synced from on-premises Active Directory (change it there)"
    if "DynamicMembership" in types:
        return "has dynamic membership (its rule decides its members)"
    if group.get("mailEnabled") is True and "Unified" not in types:
        return "is mail-enabled (Exchange manages it)"
    return None


@dataclass
class ReplicationWait:
    """Waits for new objects to replicate: growing pauses, and a budget for the whole run.

    `waited` counts the pauses asked for, in the run's own seconds, so a simulated tenant on a fast
    clock (and its scaled config) spends the same budget as the real service would.
    """

    budget_seconds: float
    first_seconds: float = 2.0
    max_seconds: float = 30.0
    waited: float = 0.0
    _attempt: int = 0

    @property
    def exhausted(self) -> bool:
        return self.waited >= self.budget_seconds

    def restart(self) -> None:
        """New objects to wait for: begin again with a short pause (the budget stays spent)."""
        self._attempt = 0

    def next_pause(self) -> float | None:
        """Seconds to pause before trying again, or None when the budget is spent."""
        if self.exhausted:
            return None
        pause = min(self.max_seconds, self.first_seconds * (2.0**self._attempt))
        pause = min(pause, self.budget_seconds - self.waited)
        self._attempt += 1
        self.waited += pause
        return pause


__all__ = [
    "ReplicationWait",
    "named_id",
    "not_there",
    "refusal",
    "replicating",
    "team_not_ready",
    "unwritable_reason",
]
