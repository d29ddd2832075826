"""Graph's floor for a plan (DESIGN §9): the fewest writes and resource units, and the least time.

Writes: a group creation carries up to 20 owners and members (an education class is created empty,
DESIGN §7), every further 20 owner or member additions to one group are one `PATCH`, and every
removal, administrative-unit membership change, update, deletion, team creation and archive is one
write. For a group that had a team before the run, membership changes go through the Teams
membership API: one request per 200 people added (owners and members together, an owner being a
member too) and one per 20 people removed (DESIGN §9). Reads: a full read of what smartsync
manages, each list with `$select` at its cheapest, 999 to a page; for a run that reads with delta
state, one delta request for the users and one for each 50 managed groups and each 50 managed units
(1 RU each). Time: the larger of writes at 3,000 per 150 s (20 a second), resource units at the
tenant's rate, and, with a service time, the fewest round trips (20 requests to a `$batch`) at the
client's concurrency, each taking the median time.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from smartsync.engine.plan import REFS_PER_REQUEST, Change
from smartsync.simulator.resources.team_members import MAX_ADD_VALUES, MAX_REMOVE_VALUES
from smartsync.simulator.throttle import RU_WINDOW_SECONDS, WRITE_LIMIT, WRITE_WINDOW_SECONDS, ru_limit_for

PAGE_SIZE = 999
WRITES_PER_SECOND = WRITE_LIMIT / WRITE_WINDOW_SECONDS
# Resource units per page with $select (DESIGN §7): users 2-1, members 3-1, everything else 1.
RU_USERS_PAGE = 1
RU_GROUPS_PAGE = 1
RU_MEMBERS_PAGE = 2
RU_OWNERS_PAGE = 1
RU_UNITS_PAGE = 1
RU_UNIT_MEMBERS_PAGE = 1
IDS_PER_DELTA_QUERY = 50
BATCH = 20
ADDS = frozenset({"group.members.add", "group.owners.add"})
TEAM_REMOVALS = frozenset({"group.members.remove", "group.owners.remove"})
ONE_PER_USER = frozenset(
    {"group.members.remove", "group.owners.remove", "admin_unit.members.add", "admin_unit.members.remove"}
)


@dataclass(frozen=True)
class Floor:
    writes: int
    ru: int  # reads plus one per write
    seconds: float
    read_ru: int
    ru_per_second: float
    read_requests: int = 0
    latency_seconds: float = 0.0  # the round trips' share of the time floor

    def to_dict(self) -> dict[str, Any]:
        return {"floor_writes": self.writes, "floor_ru": self.ru, "floor_seconds": round(self.seconds, 1)}


def floor_writes(changes: Iterable[Change], team_ids: frozenset[str] = frozenset()) -> int:
    """The fewest Graph writes that carry out these changes; `team_ids` are the groups that have a team."""
    writes = 0
    refs_to_add: dict[str, int] = defaultdict(int)
    created_with_room: dict[str, int] = {}
    team_people: dict[tuple[str, bool], set[str]] = defaultdict(set)  # (group, adding) -> user ids
    for change in changes:
        if change.object_id in team_ids and change.op in ADDS | TEAM_REMOVALS:
            team_people[(change.key, change.op in ADDS)].update(u.id for u in change.users)
        elif change.op == "group.create":
            writes += 1
            education = change.group is not None and change.group.education_class
            created_with_room[change.key] = 0 if education else REFS_PER_REQUEST
            refs_to_add[change.key] += len(change.users) + len(change.owners)
        elif change.op in ADDS:
            refs_to_add[change.key] += len(change.users)
        elif change.op in ONE_PER_USER:
            writes += len(change.users)
        else:  # updates, creations of units, deletions, team creations and archives
            writes += 1
    for key, refs in refs_to_add.items():
        writes += math.ceil(max(0, refs - created_with_room.get(key, 0)) / REFS_PER_REQUEST)
    for (_, adding), people in team_people.items():
        writes += math.ceil(len(people) / (MAX_ADD_VALUES if adding else MAX_REMOVE_VALUES))
    return writes


def team_ids_of(state: Mapping[str, Any]) -> frozenset[str]:
    """The groups of a state dump that have a team."""
    return frozenset(str(g["id"]) for g in state.get("groups") or [] if g.get("team"))


def _pages(count: int) -> int:
    return max(1, math.ceil(count / PAGE_SIZE))


def _managed(state: Mapping[str, Any], prefix: str) -> tuple[list[Any], list[Any]]:
    groups = [g for g in state.get("groups") or [] if str(g.get("mailNickname", "")).startswith(f"{prefix}-")]
    units = state.get("administrative_units") or []
    return groups, [u for u in units if f"[{prefix}:" in str(u.get("description") or "")]


def floor_delta_reads(state: Mapping[str, Any], prefix: str = "smartsync") -> int:
    """Requests (1 RU each) of reading with delta state when nothing changed: users, groups, units."""
    groups, units = _managed(state, prefix)
    return 1 + math.ceil(len(groups) / IDS_PER_DELTA_QUERY) + math.ceil(len(units) / IDS_PER_DELTA_QUERY)


def floor_read_requests(state: Mapping[str, Any], prefix: str = "smartsync") -> int:
    """Requests (pages) of a full read."""
    groups, managed_units = _managed(state, prefix)
    count = _pages(len(state.get("users") or [])) + _pages(len(groups))
    count += sum(_pages(len(g.get("members") or [])) + _pages(len(g.get("owners") or [])) for g in groups)
    count += _pages(len(state.get("administrative_units") or []))
    return count + sum(_pages(len(u.get("members") or [])) for u in managed_units)


def floor_read_ru(state: Mapping[str, Any], prefix: str = "smartsync") -> int:
    """RU of reading users, the managed groups with members and owners, and the managed units."""
    users = len(state.get("users") or [])
    groups, managed_units = _managed(state, prefix)
    units = state.get("administrative_units") or []
    ru = _pages(users) * RU_USERS_PAGE + _pages(len(groups)) * RU_GROUPS_PAGE
    for group in groups:
        ru += _pages(len(group.get("members") or [])) * RU_MEMBERS_PAGE
        ru += _pages(len(group.get("owners") or [])) * RU_OWNERS_PAGE
    ru += _pages(len(units)) * RU_UNITS_PAGE
    ru += sum(_pages(len(u.get("members") or [])) * RU_UNIT_MEMBERS_PAGE for u in managed_units)
    return ru


def floor_for(
    changes: Iterable[Change],
    state_before: Mapping[str, Any],
    *,
    delta: bool = False,
    latency_ms: float = 0.0,
    concurrency: int = 4,
) -> Floor:
    """The floor of one run: its plan's writes, the reads (full, or with delta state), and the time.

    With a service time the round trips bound the time too: the fewest `$batch` calls that carry the
    run's requests, `concurrency` at once, each taking the median.
    """
    writes = floor_writes(changes, team_ids_of(state_before))
    read_ru = floor_delta_reads(state_before) if delta else floor_read_ru(state_before)
    read_requests = floor_delta_reads(state_before) if delta else floor_read_requests(state_before)
    ru_per_second = ru_limit_for(len(state_before.get("users") or [])) / RU_WINDOW_SECONDS
    ru = read_ru + writes
    round_trips = math.ceil((read_requests + writes) / BATCH)
    latency_seconds = math.ceil(round_trips / concurrency) * latency_ms / 1000.0
    seconds = max(writes / WRITES_PER_SECOND, ru / ru_per_second, latency_seconds)
    return Floor(
        writes=writes,
        ru=ru,
        seconds=seconds,
        read_ru=read_ru,
        ru_per_second=ru_per_second,
        read_requests=read_requests,
        latency_seconds=latency_seconds,
    )
