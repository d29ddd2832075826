"""Delta queries: `/users/delta`, `/groups/delta` and `/directory/administrativeUnits/delta`.

Read from Graph's delta-query overview and the three `delta` function pages:

- The first request (no token) returns every object the query covers with the selected properties
  and, when `members` or `owners` is selected, the whole relationship as `members@delta` /
  `owners@delta` (each entry only `@odata.type` and `id`); `$deltatoken=latest` returns no objects,
  only a `@odata.deltaLink` ("sync from now"). Pages are linked by `@odata.nextLink` (`$skiptoken`);
  the last page carries the `@odata.deltaLink` (`$deltatoken`). Query options are given once: the
  tokens carry them.
- A request with a delta token returns what changed since that token was issued: a new or changed
  object with its selected properties, relationship changes as `members@delta` entries (removals
  with `"@removed": {"reason": "deleted"}`), and a deleted object as its id with
  `"@removed": {"reason": "changed"}` (it can still be restored).
- `$filter` supports only `id eq '...'`, joined by `or`, at most 50 ids; `$top`, `$expand` and
  `$orderby` are refused. A token older than seven days (or one this tenant no longer keeps) is
  answered 410 with code `syncStateNotFound`: the client must start again with a full read.

The simulator keeps, for every delta token it issued, a snapshot of what the query covered (a hash
of the selected properties and the relationship ids per object) and compares the tenant with it. It
keeps the most recent `MAX_TOKENS` delta tokens; a paging token is dropped once its last page is out.
"""

from __future__ import annotations

import json
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from smartsync.simulator.http import Principal, SimRequest, SimResponse
from smartsync.simulator.odata import GraphError, bad_request, unsupported_query
from smartsync.simulator.tenant import TenantState

TOKEN_LIFETIME_SECONDS = 7 * 24 * 3600
MAX_TOKENS = 100_000  # a trust tracks hundreds of id-filtered queries, each with its own link
MAX_FILTER_IDS = 50
PAGE_REFERENCES = 999  # objects plus relationship entries per page
_T = TypeVar("_T")
_FILTER_TERM = re.compile(r"\s*id\s+eq\s+'([^']+)'\s*", re.IGNORECASE)


@dataclass(frozen=True)
class _Kind:
    name: str  # users, groups, administrativeUnits
    type_name: str
    path: str
    relationships: tuple[str, ...]
    permission: str


KINDS = {
    "users": _Kind("users", "user", "users", (), "users.read"),
    "groups": _Kind("groups", "group", "groups", ("members", "owners"), "groups.read"),
    "administrativeUnits": _Kind(
        "administrativeUnits",
        "administrativeUnit",
        "directory/administrativeUnits",
        ("members",),
        "admin_units.read",
    ),
}


@dataclass(frozen=True)
class _Query:
    kind: str
    ids: frozenset[str] | None
    select: tuple[str, ...] | None  # structural properties; None: all of them
    relationships: tuple[str, ...]


@dataclass
class _Token:
    query: _Query
    issued: float
    snapshot: dict[str, tuple[int, dict[str, frozenset[str]]]] = field(default_factory=dict)
    pages: list[list[dict[str, Any]]] = field(default_factory=list)  # a round's pages, served in turn
    next_token: str = ""


class DeltaQueries:
    """Answers the three delta functions from a `TenantState`, keeping the tokens it issued."""

    def __init__(
        self,
        state: TenantState,
        now: Callable[[], float],
        base_url: str,
        require: Callable[[Principal, str], None],
        find_property: Callable[[str, str], str | None],
    ) -> None:
        self.state = state
        self._now = now
        self._base_url = base_url.rstrip("/")
        self._require = require
        self._find = find_property
        self._tokens: OrderedDict[str, _Token] = OrderedDict()

    def routes(self) -> list[tuple[str, str, Callable[..., SimResponse]]]:
        return [
            ("GET", r"/users/delta", lambda req, p, q: self.handle("users", req, p, q)),
            ("GET", r"/groups/delta", lambda req, p, q: self.handle("groups", req, p, q)),
            (
                "GET",
                r"/directory/administrativeUnits/delta",
                lambda req, p, q: self.handle("administrativeUnits", req, p, q),
            ),
        ]

    # ------------------------------------------------------------------------------------ requests

    def handle(
        self, kind: str, req: SimRequest, principal: Principal, query: Mapping[str, str]
    ) -> SimResponse:
        spec = KINDS[kind]
        self._require(principal, spec.permission)
        for option in query:
            if option.startswith("$") and option not in {"$select", "$filter", "$deltatoken", "$skiptoken"}:
                raise unsupported_query(f"Query option '{option}' is not supported with delta queries.")
        if "$skiptoken" in query:
            return self._next_page(query["$skiptoken"])
        token_text = query.get("$deltatoken")
        if token_text is not None and token_text.lower() != "latest":
            if "$select" in query or "$filter" in query:
                raise bad_request("A delta link already holds its query options; follow it unchanged.")
            token = self._token(token_text, kind)
            return self._start_round(token.query, token.snapshot)
        parsed = self._parse(spec, query)
        if token_text is not None:  # "latest": sync from now, no objects
            issued = self._issue(parsed, self._snapshot(parsed))
            return self._respond(spec, [], None, issued)
        return self._start_round(parsed, {})

    def _parse(self, spec: _Kind, query: Mapping[str, str]) -> _Query:
        ids: frozenset[str] | None = None
        if "$filter" in query:
            terms = re.split(r"\s+or\s+", query["$filter"].strip(), flags=re.IGNORECASE)
            found = [_FILTER_TERM.fullmatch(term) for term in terms]
            if not all(found):
                raise unsupported_query("Delta queries support only $filter=id eq '{id}', joined by 'or'.")
            ids = frozenset(m.group(1) for m in found if m is not None)
            if len(ids) > MAX_FILTER_IDS:
                raise bad_request(f"At most {MAX_FILTER_IDS} ids can be filtered in one delta query.")
        select: list[str] | None = None
        relationships: list[str] = []
        if "$select" in query:
            select = []
            for raw in query["$select"].split(","):
                name = raw.strip()
                if not name:
                    continue
                relation = next((r for r in spec.relationships if r.lower() == name.lower()), None)
                if relation is not None:
                    relationships.append(relation)
                    continue
                declared = self._find(spec.type_name, name)
                if declared is None:
                    raise bad_request(
                        f"Could not find a property named '{name}' on type "
                        f"'microsoft.graph.{spec.type_name}'."
                    )
                select.append(declared)
        return _Query(spec.name, ids, tuple(select) if select is not None else None, tuple(relationships))

    def _token(self, text: str, kind: str) -> _Token:
        token = self._tokens.get(text)
        if token is None or token.query.kind != kind or self._now() - token.issued > TOKEN_LIFETIME_SECONDS:
            raise GraphError(
                410,
                "syncStateNotFound",
                "The sync state of this delta link is not found or has expired. Start again with a "
                "full synchronization (a delta request without a token).",
            )
        return token

    # ------------------------------------------------------------------------------------- objects

    def _objects(self, query: _Query) -> dict[str, tuple[dict[str, Any], dict[str, list[str]]]]:
        """id -> (properties, relationship ids) for every live object the query covers."""
        now = self._now()
        out: dict[str, tuple[dict[str, Any], dict[str, list[str]]]] = {}
        if query.kind == "users":
            users = self.state.users
            for user in _covered(users, query.ids):
                out[user.id] = (user.properties(), {})
        elif query.kind == "groups":
            for group in _covered(self.state.groups, query.ids):
                if group.deleted is None:
                    links = {"members": group.members, "owners": group.owners}
                    out[group.id] = (group.properties(now, self.state.domain), links)
        else:
            for unit in _covered(self.state.administrative_units, query.ids):
                if unit.deleted is None:
                    out[unit.id] = (unit.properties(), {"members": unit.members})
        return out

    @staticmethod
    def _selected(query: _Query, properties: dict[str, Any]) -> dict[str, Any]:
        if query.select is None:
            return {k: v for k, v in properties.items() if not k.startswith("@")}
        picked = {"id": properties["id"]}
        picked.update({name: properties.get(name) for name in query.select})
        return picked

    def _snapshot(self, query: _Query) -> dict[str, tuple[int, dict[str, frozenset[str]]]]:
        snapshot: dict[str, tuple[int, dict[str, frozenset[str]]]] = {}
        for oid, (properties, links) in self._objects(query).items():
            digest = hash(json.dumps(self._selected(query, properties), sort_keys=True, default=str))
            snapshot[oid] = (digest, {rel: frozenset(links.get(rel, ())) for rel in query.relationships})
        return snapshot

    def _entry(self, object_id: str, removed: bool = False) -> dict[str, Any]:
        kind = self.state.directory_object_kind(object_id) or "user"
        entry: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{kind}", "id": object_id}
        if removed:
            entry["@removed"] = {"reason": "deleted"}
        return entry

    def _changes(
        self, query: _Query, before: dict[str, tuple[int, dict[str, frozenset[str]]]]
    ) -> tuple[list[dict[str, Any]], dict[str, tuple[int, dict[str, frozenset[str]]]]]:
        """What changed since `before` (everything, when `before` is empty), and the new snapshot."""
        now_snapshot = self._snapshot(query)
        current = self._objects(query)
        items: list[dict[str, Any]] = []
        for oid in sorted(set(before) - set(now_snapshot)):
            items.append({"id": oid, "@removed": {"reason": "changed"}})
        for oid in sorted(now_snapshot):
            digest, links = now_snapshot[oid]
            old = before.get(oid)
            if old is not None and old == (digest, links):
                continue
            item = self._selected(query, current[oid][0])
            for rel in query.relationships:
                had = old[1].get(rel, frozenset()) if old is not None else frozenset()
                added = [self._entry(i) for i in sorted(links[rel] - had)]
                removed = [self._entry(i, removed=True) for i in sorted(had - links[rel])]
                if added or removed or old is None:
                    item[f"{rel}@delta"] = added + removed
            items.append(item)
        return items, now_snapshot

    # --------------------------------------------------------------------------------------- pages

    def _start_round(
        self, query: _Query, before: dict[str, tuple[int, dict[str, frozenset[str]]]]
    ) -> SimResponse:
        items, snapshot = self._changes(query, before)
        pages = _paginate(items)
        issued = self._issue(query, snapshot)
        if len(pages) <= 1:
            return self._respond(KINDS[query.kind], pages[0] if pages else [], None, issued)
        round_token = self._issue(query, {})
        token = self._tokens[round_token]
        token.pages = pages[1:]
        token.next_token = issued
        return self._respond(KINDS[query.kind], pages[0], round_token, None)

    def _next_page(self, text: str) -> SimResponse:
        token = self._tokens.get(text)
        if token is None or not token.pages:
            raise GraphError(
                410, "syncStateNotFound", "The paging state of this delta round is not found; start again."
            )
        page = token.pages.pop(0)
        spec = KINDS[token.query.kind]
        if token.pages:
            return self._respond(spec, page, text, None)
        del self._tokens[text]
        return self._respond(spec, page, None, token.next_token)

    def _issue(self, query: _Query, snapshot: dict[str, tuple[int, dict[str, frozenset[str]]]]) -> str:
        text = secrets.token_urlsafe(18)
        self._tokens[text] = _Token(query, self._now(), snapshot)
        while len(self._tokens) > MAX_TOKENS:
            self._tokens.popitem(last=False)
        return text

    def _respond(
        self, spec: _Kind, items: list[dict[str, Any]], skip_token: str | None, delta_token: str | None
    ) -> SimResponse:
        link = f"{self._base_url}/v1.0/{spec.path}/delta"
        payload: dict[str, Any] = {"@odata.context": f"{self._base_url}/v1.0/$metadata#{spec.path}"}
        if skip_token is not None:
            payload["@odata.nextLink"] = f"{link}?$skiptoken={quote(skip_token)}"
        if delta_token is not None:
            payload["@odata.deltaLink"] = f"{link}?$deltatoken={quote(delta_token)}"
        payload["value"] = items
        return SimResponse.of_json(200, payload)


def _covered(objects: Mapping[str, _T], ids: frozenset[str] | None) -> list[_T]:
    if ids is None:
        return list(objects.values())
    return [objects[oid] for oid in sorted(ids) if oid in objects]


def _paginate(items: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Pages of about PAGE_REFERENCES objects and relationship entries; an object is never split."""
    pages: list[list[dict[str, Any]]] = [[]]
    size = 0
    for item in items:
        weight = 1 + sum(len(v) for k, v in item.items() if k.endswith("@delta"))
        if pages[-1] and size + weight > PAGE_REFERENCES:
            pages.append([])
            size = 0
        pages[-1].append(item)
        size += weight
    return pages if pages[0] else []
