"""Reads in proportion to change: Graph's delta queries, and the state they keep between runs.

A full read (entra.py) reads every user, every managed group with its members and owners and every
managed administrative unit with its members: the same at 04:00 after a quiet night as in
September. With delta state a run reads only what changed since the last one:

- users through `/users/delta` (the matching properties);
- the managed groups through `/groups/delta?$filter=id eq '...' or ...` (50 ids a query, which is
  Graph's limit) selecting their properties, `members` and `owners`, so nothing unmanaged is read;
- the managed units the same way through `/directory/administrativeUnits/delta`.

The state (`delta-state.json` beside the journal, mode 0600) holds the delta links and what the last
read found (users, groups, units and their members' ids). Groups and units a run creates are read
whole at its end, with first delta rounds of their own that also start tracking them (if that
fails, they stay pending and the next run reads them so).

A full read is done, and tracking starts again from it (`$deltatoken=latest`, which returns no
objects), when there is no usable state (missing, unreadable, another Graph endpoint, prefix or set
of features), on the first run of each day (`graph.full_read: daily`, the default; `every-run`
always reads in full), when the state is older than the last line of the journal (a run that did
not save it, e.g. one that crashed), when Graph no longer knows a delta link (410 or
`syncStateNotFound`, after about seven days), and when a delta query fails otherwise. Groups made
by hand with a managed nickname, and changes made by hand in the moments between a full read and
the start of tracking, are caught by the next full read: within a day with the default.

The state is saved only after a run has applied its plan (`commit`): the links it holds are those of
the read before the plan, so the next run sees this run's own changes too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Literal

from smartsync.engine.actual import GROUP_SELECT, USER_SELECT, read_actual, read_users
from smartsync.engine.naming import key_from_au_description, key_from_nickname, parse_group_description
from smartsync.engine.state import ActualState, AdminUnitState, EntraUser, GroupState, Notice, UserRef
from smartsync.graph import GraphClient, GraphError, GraphRequest
from smartsync.graph.client import encode_query
from smartsync.graph.consistency import unwritable_reason

STATE_NAME = "delta-state.json"
STATE_SCHEMA = "smartsync.delta/1"
IDS_PER_QUERY = 50
GROUP_PROPERTIES = tuple(GROUP_SELECT.split(",")[1:])  # all but id, which delta always returns
UNIT_PROPERTIES = ("displayName", "description", "isMemberManagementRestricted")
USER_PROPERTIES = tuple(USER_SELECT.split(",")[1:])
FullRead = Literal["daily", "every-run"]
Progress = Callable[[str, int, int], None]


class DeltaExpired(Exception):
    """Graph no longer knows a delta link: the run reads in full instead."""


@dataclass
class _Tracked:
    """Objects of one kind as the last read left them, and the links that continue from there."""

    objects: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> properties, members, owners
    links: list[str] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)  # created since: read whole next time


@dataclass
class DeltaState:
    prefix: str
    features: list[str]
    full_read_on: str
    journal_mark: list[int] | None
    endpoint: str = ""  # the Graph endpoint the links point at
    # The school codes the config owns (DESIGN §5): a state made for other codes is not used.
    codes: list[str] = field(default_factory=list)
    users: dict[str, list[str | None]] = field(default_factory=dict)  # id -> UPN, mail, employeeId
    users_link: str = ""
    groups: _Tracked = field(default_factory=_Tracked)
    units: _Tracked = field(default_factory=_Tracked)

    def to_json(self) -> dict[str, Any]:
        def tracked(t: _Tracked) -> dict[str, Any]:
            return {"objects": t.objects, "links": t.links, "pending": t.pending}

        return {
            "schema": STATE_SCHEMA,
            "endpoint": self.endpoint,
            "prefix": self.prefix,
            "codes": self.codes,
            "features": self.features,
            "full_read_on": self.full_read_on,
            "journal_mark": self.journal_mark,
            "users": self.users,
            "users_link": self.users_link,
            "groups": tracked(self.groups),
            "units": tracked(self.units),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DeltaState:
        def tracked(raw: dict[str, Any]) -> _Tracked:
            return _Tracked(dict(raw["objects"]), list(raw["links"]), list(raw.get("pending") or []))

        if data.get("schema") != STATE_SCHEMA:
            raise ValueError("not a smartsync delta state")
        return cls(
            prefix=str(data["prefix"]),
            codes=[str(c) for c in data.get("codes") or []],
            features=list(data["features"]),
            full_read_on=str(data["full_read_on"]),
            journal_mark=data.get("journal_mark"),
            endpoint=str(data["endpoint"]),
            users=dict(data["users"]),
            users_link=str(data["users_link"]),
            groups=tracked(data["groups"]),
            units=tracked(data["units"]),
        )


@dataclass(frozen=True)
class DeltaRead:
    """What one read found, and why it read in full (None when it read only the changes)."""

    users: list[EntraUser]
    have: ActualState
    full_read_reason: str | None


def _journal_mark(journal_path: Path) -> list[int] | None:
    try:
        info = journal_path.stat()
    except OSError:
        return None
    return [info.st_size, info.st_mtime_ns]


class DeltaReader:
    """Reads Entra with delta queries where the saved state allows, and saves the state after a run."""

    def __init__(self, journal_path: Path, full_read: FullRead = "daily") -> None:
        self.journal_path = journal_path
        self.path = journal_path.with_name(STATE_NAME)
        self.full_read = full_read
        self._next: DeltaState | None = None
        self.last_read: DeltaRead | None = None

    # ------------------------------------------------------------------------------------ state

    def load(self) -> DeltaState | None:
        try:
            return DeltaState.from_json(json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: a full read makes a new one

    def full_read_reason(
        self,
        state: DeltaState | None,
        endpoint: str,
        prefix: str,
        features: list[str],
        today: date,
        codes: list[str] | None = None,
    ) -> str | None:
        if state is None:
            return "no delta state"
        if state.endpoint != endpoint or state.prefix != prefix or state.features != features:
            return "the delta state was made for another Graph endpoint, prefix or set of features"
        if codes is not None and state.codes != codes:
            return "the delta state was made for other school codes"
        if self.full_read == "every-run":
            return "graph.full_read is every-run"
        if state.full_read_on != today.isoformat():
            return "first run of the day"
        if state.journal_mark is not None and state.journal_mark != _journal_mark(self.journal_path):
            return "the journal changed after the delta state was saved"
        return None

    def commit(self, created: Iterable[tuple[str, str]] = (), client: GraphClient | None = None) -> None:
        """Save the state of this run's read, with what the run created (pairs of op and object id).

        With `client`, the created groups and units are read whole and tracked at once (a first
        delta round of their own, 50 to a query), so that the next run needs only delta links; if
        that fails they stay pending and the next run reads them.
        """
        state = self._next
        if state is None:
            return
        for op, object_id in created:
            tracked = (
                state.groups
                if op in ("group.create", "group.restore")
                else state.units
                if op == "admin_unit.create"
                else None
            )
            if tracked is not None and object_id not in tracked.pending:
                tracked.pending.append(object_id)
        if client is not None:
            try:
                _track_new(client, state.groups, _GROUPS)
                _track_new(client, state.units, _UNITS)
            except (GraphError, DeltaExpired):
                pass  # still pending: the next run reads them with its delta links
        state.journal_mark = _journal_mark(self.journal_path)
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(state.to_json(), handle, separators=(",", ":"))
        os.chmod(temporary, 0o600)
        os.replace(temporary, self.path)

    # ------------------------------------------------------------------------------------- reads

    def read(
        self,
        client: GraphClient,
        prefix: str,
        *,
        groups: bool,
        admin_units: bool,
        today: date,
        progress: Progress | None = None,
        codes: tuple[str, ...] | None = None,
    ) -> DeltaRead:
        """The users and managed objects; `codes` are the school codes the config owns (DESIGN §5)."""
        features = [name for name, on in (("groups", groups), ("admin-units", admin_units)) if on]
        owned = sorted(codes) if codes is not None else None
        state = self.load()
        reason = self.full_read_reason(state, client.base_url, prefix, features, today, owned)
        if reason is None and state is not None:
            try:
                users, have = self._incremental(client, state, prefix)
                self._next = state
                self.last_read = DeltaRead(users, have, None)
                return self.last_read
            except DeltaExpired:
                reason = "Graph no longer knows the delta links (they expire after about seven days)"
            except GraphError as exc:  # whatever else delta meets, a full read still gives the truth
                reason = f"the delta queries failed ({exc.code})"
        users, have, fresh = self._full(client, prefix, features, today, groups, admin_units, progress, codes)
        self._next = fresh
        self.last_read = DeltaRead(users, have, reason)
        return self.last_read

    def _full(
        self,
        client: GraphClient,
        prefix: str,
        features: list[str],
        today: date,
        groups: bool,
        admin_units: bool,
        progress: Progress | None,
        codes: tuple[str, ...] | None = None,
    ) -> tuple[list[EntraUser], ActualState, DeltaState | None]:
        """The full read, and the delta state that tracks from it (None when Graph would not start
        tracking: the run goes on with its full read, and the next run reads in full too)."""
        state = DeltaState(prefix, features, today.isoformat(), None, client.base_url, sorted(codes or []))
        try:
            # Tracking starts before users are read: a change in between is seen again, never lost.
            state.users_link = _latest(client, "/users/delta", {"$select": ",".join(USER_PROPERTIES)})
        except (GraphError, DeltaExpired):
            tracking = False
        else:
            tracking = True
        users = read_users(client)
        have = read_actual(
            client, prefix, groups=groups, admin_units=admin_units, progress=progress, codes=codes
        )
        if not tracking:
            return users, have, None
        state.users = {u.id: [u.user_principal_name, u.mail, u.employee_id] for u in users}
        for group in have.groups.values():
            state.groups.objects[group.id] = _group_record(group)
        for unit in have.admin_units.values():
            state.units.objects[unit.id] = _unit_record(unit)
        try:
            # Tracking starts now: `$deltatoken=latest` returns no objects, only the links.
            state.groups.links = _latest_by_ids(client, _GROUPS, sorted(state.groups.objects))
            state.units.links = _latest_by_ids(client, _UNITS, sorted(state.units.objects))
        except (GraphError, DeltaExpired):
            return users, have, None
        return users, have, state

    def _incremental(
        self, client: GraphClient, state: DeltaState, prefix: str
    ) -> tuple[list[EntraUser], ActualState]:
        # Users, groups and units in the same `$batch` calls: a quiet run is one or two round trips.
        group_urls = state.groups.links + _GROUPS.first_rounds(state.groups.pending)
        unit_urls = state.units.links + _UNITS.first_rounds(state.units.pending)
        rounds = _follow(client, [state.users_link, *group_urls, *unit_urls])
        (items, state.users_link), rest = rounds[0], rounds[1:]
        _replace(state.groups, rest[: len(group_urls)], _GROUPS)
        _replace(state.units, rest[len(group_urls) :], _UNITS)
        for item in items:
            if "@removed" in item:
                state.users.pop(item["id"], None)
            else:
                old = state.users.get(item["id"], [item["id"], None, None])
                state.users[item["id"]] = [
                    item.get("userPrincipalName", old[0]) or item["id"],
                    item.get("mail", old[1]),
                    item.get("employeeId", old[2]),
                ]
        users = [
            EntraUser(id=i, user_principal_name=str(v[0]), mail=v[1], employee_id=v[2])
            for i, v in state.users.items()
        ]
        return users, _actual(state, prefix)


@dataclass(frozen=True)
class _Kind:
    """How one kind of tracked object is asked for."""

    path: str
    select: tuple[str, ...]
    relationships: tuple[str, ...]
    unit: bool  # an administrative unit (its description holds its key)

    @property
    def params(self) -> dict[str, str]:
        return {"$select": ",".join((*self.select, *self.relationships))}

    def first_rounds(self, ids: list[str]) -> list[str]:
        """First delta rounds that read these objects whole (and start tracking them)."""
        return [
            f"{self.path}?" + encode_query({**self.params, "$filter": _id_filter(c)}) for c in _chunks(ids)
        ]


_GROUPS = _Kind("/groups/delta", GROUP_PROPERTIES, ("members", "owners"), unit=False)
_UNITS = _Kind("/directory/administrativeUnits/delta", UNIT_PROPERTIES, ("members",), unit=True)


def _id_filter(ids: list[str]) -> str:
    return " or ".join(f"id eq '{object_id}'" for object_id in ids)


def _chunks(ids: list[str]) -> list[list[str]]:
    return [ids[i : i + IDS_PER_QUERY] for i in range(0, len(ids), IDS_PER_QUERY)]


def _relative(client: GraphClient, url: str) -> str:
    """A link below the client's /v1.0 as a `$batch` item's URL; a link anywhere else is not followed."""
    api = f"{client.base_url}/v1.0"
    if url.startswith(api + "/"):
        return url[len(api) :]
    if url.startswith("/"):
        return url
    raise DeltaExpired(
        f"a delta link points outside {client.base_url}; smartsync does not send its token there"
    )


def _check(error: GraphError) -> None:
    if error.status == 410 or error.code.lower() == "syncstatenotfound":
        raise DeltaExpired(error.message) from error
    raise error


def _latest(client: GraphClient, path: str, params: dict[str, str]) -> str:
    rounds = _follow(client, [f"{path}?" + encode_query({**params, "$deltatoken": "latest"})])
    return rounds[0][1]


def _latest_by_ids(client: GraphClient, kind: _Kind, ids: list[str]) -> list[str]:
    """Delta links that track these ids from now on (`$deltatoken=latest`: no objects), 50 a link."""
    urls = [
        f"{kind.path}?" + encode_query({**kind.params, "$filter": _id_filter(chunk), "$deltatoken": "latest"})
        for chunk in _chunks(ids)
    ]
    return [link for _, link in _follow(client, urls)]


def _follow(client: GraphClient, urls: list[str]) -> list[tuple[list[dict[str, Any]], str]]:
    """Whole delta rounds from their first URLs: their items and the new delta link of each.

    Every round's next page goes in the same `$batch` calls as the others' (20 to a round trip).
    """
    items: list[list[dict[str, Any]]] = [[] for _ in urls]
    links: list[str] = [""] * len(urls)
    waiting = list(enumerate(urls))
    while waiting:
        requests = [GraphRequest("GET", _relative(client, url)) for _, url in waiting]
        following: list[tuple[int, str]] = []
        for (index, _), request, result in zip(waiting, requests, client.batch(requests), strict=True):
            if result.error is not None:
                _check(result.error)
            body = result.body if isinstance(result.body, dict) else {}
            items[index].extend(body.get("value") or [])
            if isinstance(body.get("@odata.deltaLink"), str):
                links[index] = body["@odata.deltaLink"]
            elif isinstance(body.get("@odata.nextLink"), str):
                following.append((index, body["@odata.nextLink"]))
            else:
                raise GraphError(
                    result.status,
                    "UnexpectedResponse",
                    f"a delta page of GET {request.url.split('?')[0]} held neither a next nor a delta link",
                )
        waiting = following
    return list(zip(items, links, strict=True))


def _replace(tracked: _Tracked, rounds: list[tuple[list[dict[str, Any]], str]], kind: _Kind) -> None:
    """Apply the rounds of `tracked`'s links (then of its pending objects) and keep their new links."""
    _apply(tracked, rounds, kind)
    tracked.links = [link for _, link in rounds]
    tracked.pending = []


def _track_new(client: GraphClient, tracked: _Tracked, kind: _Kind) -> None:
    """Read the pending (just created) objects whole, and track them from now on."""
    if tracked.pending:
        rounds = _follow(client, kind.first_rounds(tracked.pending))
        _apply(tracked, rounds, kind)
        tracked.links += [link for _, link in rounds]
        tracked.pending = []


def _apply(tracked: _Tracked, rounds: list[tuple[list[dict[str, Any]], str]], kind: _Kind) -> None:
    """Merge delta rounds into `tracked`: removals, properties, and relationship entries (an object
    may come in several pieces, each with part of its relationships)."""
    for items, _ in rounds:
        for item in items:
            if "@removed" in item:
                tracked.objects.pop(item["id"], None)
                continue
            record = tracked.objects.setdefault(item["id"], {rel: [] for rel in kind.relationships})
            for name, value in item.items():
                if name.endswith("@delta"):
                    rel = name[: -len("@delta")]
                    current = set(record.get(rel) or [])
                    for entry in value:
                        if "@removed" in entry:
                            current.discard(entry["id"])
                        else:
                            current.add(entry["id"])
                    record[rel] = sorted(current)
                elif name == "description":
                    _with_description(record, value, unit=kind.unit)
                elif not name.startswith("@") and name != "id":
                    record[name] = value


def _group_record(group: GroupState) -> dict[str, Any]:
    return {
        "displayName": group.display_name,
        "mailNickname": group.mail_nickname,
        "groupTypes": ["Unified"] if group.type == "microsoft365" else [],
        "resourceProvisioningOptions": ["Team"] if group.is_team else [],
        "education_class": group.education_class,
        "archived": group.archived,
        "unwritable": group.unwritable,
        "members": sorted(r.id for r in group.members),
        "owners": sorted(r.id for r in group.owners),
    }


def _unit_record(unit: AdminUnitState) -> dict[str, Any]:
    return {
        "displayName": unit.display_name,
        "key": unit.key,
        "isMemberManagementRestricted": unit.restricted,
        "members": sorted(r.id for r in unit.members),
    }


def _with_description(record: dict[str, Any], description: str | None, unit: bool) -> None:
    """Keep what the description says (the unit's key; a group's education-class and archive marks)."""
    if unit:
        record["key"] = key_from_au_description(description)
    else:
        record["education_class"], record["archived"] = parse_group_description(description)


def _actual(state: DeltaState, prefix: str) -> ActualState:
    """The managed groups and units as `entra.read_actual` would have read them."""
    upn = {object_id: str(values[0]) for object_id, values in state.users.items()}
    names = {object_id: str(g.get("displayName") or "") for object_id, g in state.groups.objects.items()}

    def refs(ids: Iterable[str]) -> frozenset[UserRef]:
        return frozenset(UserRef(upn.get(i) or names.get(i) or i, i) for i in ids)

    notices: list[Notice] = []
    groups: dict[str, GroupState] = {}
    seen: dict[str, str] = {}
    for object_id in sorted(state.groups.objects):
        record = state.groups.objects[object_id]
        key = key_from_nickname(prefix, str(record.get("mailNickname") or ""))
        if key is None:
            continue
        if key in seen:
            notices.append(
                Notice(
                    "duplicate_managed_group",
                    f"Two groups carry the key {key} ({seen[key]} and {object_id}); smartsync manages the "
                    f"first and leaves {object_id} alone. Delete the duplicate in Entra.",
                )
            )
            continue
        seen[key] = object_id
        groups[key] = GroupState(
            id=object_id,
            key=key,
            display_name=str(record.get("displayName") or ""),
            type="microsoft365" if "Unified" in (record.get("groupTypes") or []) else "security",
            mail_nickname=str(record.get("mailNickname") or ""),
            members=refs(record.get("members") or []),
            # Only user owners are smartsync's: the app's own service principal is left alone.
            owners=refs(o for o in record.get("owners") or [] if o in state.users),
            unwritable=record.get("unwritable") or unwritable_reason(record),
            is_team="Team" in (record.get("resourceProvisioningOptions") or []),
            education_class=bool(record.get("education_class")),
            archived=bool(record.get("archived")),
        )
    units: dict[str, AdminUnitState] = {}
    for object_id in sorted(state.units.objects):
        record = state.units.objects[object_id]
        unit_key = record.get("key")
        if not unit_key or unit_key in units:
            continue
        units[str(unit_key)] = AdminUnitState(
            id=object_id,
            key=str(unit_key),
            display_name=str(record.get("displayName") or ""),
            members=refs(record.get("members") or []),
            restricted=bool(record.get("isMemberManagementRestricted")),
        )
    return ActualState(
        groups=dict(sorted(groups.items())), admin_units=dict(sorted(units.items())), notices=tuple(notices)
    )
