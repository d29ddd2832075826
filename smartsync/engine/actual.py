"""Actual state: what Entra holds, read through the Graph client.

Reads only what smartsync needs: users (the properties used for matching), the managed groups
(by the `mailNickname` prefix) with their members and owners, and the administrative units that
carry smartsync's marker with their members. A config owns only the objects of its school codes and
prefix (DESIGN §5): another school's groups and units are counted as left alone, and their members
are never read. Nothing unmanaged beyond the user lookup is read.
Member and owner lists of many groups are fetched 20 to a `$batch` round trip.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from smartsync.engine.naming import (
    code_of_key,
    key_from_nickname,
    migrated_au_description,
    nickname_prefix,
    parse_au_marker,
    parse_group_description,
)
from smartsync.engine.schools import owns_key
from smartsync.engine.state import (
    ActualState,
    AdminUnitState,
    EntraUser,
    GroupState,
    GroupType,
    LeftAlone,
    Notice,
    UserRef,
)
from smartsync.graph import GraphClient, GraphError, GraphRequest, GraphThrottled, GraphUnavailable
from smartsync.graph.consistency import read_when_replicated, unwritable_reason
from smartsync.graph.errors import GraphNotFound

USER_SELECT = "id,userPrincipalName,mail,employeeId"
GROUP_SELECT = (
    "id,displayName,description,mailNickname,groupTypes,resourceProvisioningOptions,mailEnabled,"
    "onPremisesSyncEnabled"
)
MEMBER_SELECT = "id,userPrincipalName,displayName"
PAGE = "999"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class EntraSnapshot:
    users: tuple[EntraUser, ...]
    have: ActualState


def _objects(rows: Sequence[Any], what: str) -> list[dict[str, Any]]:
    """`rows` when each is a directory object with an id; a clear error otherwise.

    A null or id-less entry is never Graph's answer (a proxy or a broken cache may give one). Skipping
    it would make a user look absent and plan removals, so the run stops before anything is written.
    """
    bad = sum(1 for row in rows if not isinstance(row, dict) or not isinstance(row.get("id"), str))
    if bad:
        raise GraphError(
            None,
            "UnexpectedResponse",
            f"GET {what} returned {bad} of {len(rows)} entries that are not objects with an id (null or "
            "damaged); nothing was written. If a proxy sits between smartsync and Graph, check it; "
            "otherwise run again later",
        )
    return list(rows)


def read_users(client: GraphClient) -> list[EntraUser]:
    rows = _objects(client.get_all("/users", {"$select": USER_SELECT, "$top": PAGE}), "/users")
    return [
        EntraUser(
            id=row["id"],
            user_principal_name=row.get("userPrincipalName") or row["id"],
            mail=row.get("mail"),
            employee_id=row.get("employeeId"),
        )
        for row in rows
    ]


def read_actual(
    client: GraphClient,
    prefix: str,
    *,
    groups: bool = True,
    admin_units: bool = True,
    progress: Progress | None = None,
    codes: Collection[str] | None = None,
) -> ActualState:
    """The managed objects of `codes` and `prefix` (None: of every code); others are only counted."""
    notices: list[Notice] = []
    group_states: dict[str, GroupState] = {}
    unit_states: dict[str, AdminUnitState] = {}
    others: Counter[tuple[str, str | None, str]] = Counter()
    if groups:
        group_states = _read_groups(client, prefix, notices, progress, codes, others)
    if admin_units:
        unit_states = _read_admin_units(client, progress, prefix, codes, others)
    left_alone = tuple(
        LeftAlone(kind, other_prefix, school, count)
        for (kind, other_prefix, school), count in sorted(others.items(), key=str)
    )
    return ActualState(
        groups=group_states, admin_units=unit_states, notices=tuple(notices), left_alone=left_alone
    )


def _group_type(row: dict[str, Any]) -> GroupType:
    return "microsoft365" if "Unified" in (row.get("groupTypes") or []) else "security"


def _read_groups(
    client: GraphClient,
    prefix: str,
    notices: list[Notice],
    progress: Progress | None,
    codes: Collection[str] | None = None,
    others: Counter[tuple[str, str | None, str]] | None = None,
) -> dict[str, GroupState]:
    rows = client.get_all(
        "/groups",
        {
            "$filter": f"startswith(mailNickname,'{nickname_prefix(prefix)}')",
            "$select": GROUP_SELECT,
            "$top": PAGE,
        },
    )
    rows = _objects(rows, "/groups")
    managed: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, str] = {}
    for row in sorted(rows, key=lambda r: str(r.get("id"))):
        key = key_from_nickname(prefix, row.get("mailNickname") or "")
        if key is None:
            continue
        if not owns_key(codes, key):
            # Another school's group under the same prefix: never read as this config's (DESIGN §5).
            if others is not None:
                others[("group", prefix, code_of_key(key))] += 1
            continue
        if key in seen:
            notices.append(
                Notice(
                    "duplicate_managed_group",
                    f"Two groups carry the key {key} ({seen[key]} and {row['id']}); smartsync manages the "
                    f"first and leaves {row['id']} alone. Delete the duplicate in Entra.",
                )
            )
            continue
        seen[key] = row["id"]
        managed.append((key, row))
    paths = [f"/groups/{row['id']}/{rel}" for _, row in managed for rel in ("members", "owners")]
    lists = _read_member_lists(client, paths, progress, "groups")
    out: dict[str, GroupState] = {}
    for key, row in managed:
        education_class, archived = parse_group_description(row.get("description"))
        out[key] = GroupState(
            id=row["id"],
            key=key,
            display_name=row.get("displayName") or "",
            type=_group_type(row),
            mail_nickname=row.get("mailNickname") or "",
            members=lists[f"/groups/{row['id']}/members"],
            owners=lists[f"/groups/{row['id']}/owners"],
            is_team="Team" in (row.get("resourceProvisioningOptions") or []),
            unwritable=unwritable_reason(row),
            education_class=education_class,
            archived=archived,
        )
    return dict(sorted(out.items()))


def _read_admin_units(
    client: GraphClient,
    progress: Progress | None,
    prefix: str = "smartsync",
    codes: Collection[str] | None = None,
    others: Counter[tuple[str, str | None, str]] | None = None,
) -> dict[str, AdminUnitState]:
    rows = client.get_all(
        "/directory/administrativeUnits",
        {"$select": "id,displayName,description,isMemberManagementRestricted", "$top": PAGE},
    )
    rows = _objects(rows, "/directory/administrativeUnits")
    managed: list[tuple[str, dict[str, Any]]] = []
    legacy: list[tuple[str, dict[str, Any]]] = []
    for row in rows:
        marker = parse_au_marker(row.get("description"))
        if marker is None:
            continue
        unit_prefix, key = marker
        mine = unit_prefix is None or unit_prefix.lower() == prefix.lower()
        if not mine or not owns_key(codes, key):
            if others is not None:
                others[("admin_unit", unit_prefix, code_of_key(key))] += 1
            continue
        # An older marker names no prefix: the first config of its school to run takes it over.
        (managed if unit_prefix is not None else legacy).append((key, row))
    managed += legacy  # a unit already migrated wins over an older duplicate of it
    legacy_ids = {row["id"] for _, row in legacy}
    paths = [f"/directory/administrativeUnits/{row['id']}/members" for _, row in managed]
    lists = _read_member_lists(client, paths, progress, "admin units")
    out: dict[str, AdminUnitState] = {}
    for key, row in managed:
        if key in out:
            continue
        out[key] = AdminUnitState(
            id=row["id"],
            key=key,
            display_name=row.get("displayName") or "",
            members=lists[f"/directory/administrativeUnits/{row['id']}/members"],
            restricted=bool(row.get("isMemberManagementRestricted")),
            description_update=(
                migrated_au_description(row.get("description") or "", prefix)
                if row["id"] in legacy_ids
                else None
            ),
        )
    return dict(sorted(out.items()))


def _refs(rows: Sequence[dict[str, Any]]) -> set[UserRef]:
    """Users by sign-in address; groups (members of units) by display name."""
    return {
        UserRef(r.get("userPrincipalName") or r.get("displayName") or r["id"], r["id"])
        for r in _objects(rows, "members")
    }


def _is_user(row: dict[str, Any]) -> bool:
    return str(row.get("@odata.type") or "#microsoft.graph.user").lower() == "#microsoft.graph.user"


def _read_member_lists(
    client: GraphClient, paths: list[str], progress: Progress | None, what: str
) -> dict[str, frozenset[UserRef]]:
    """Members (or owners) of many objects, 20 lists per `$batch`; long lists are paged."""
    params = f"$select={MEMBER_SELECT}&$top={PAGE}"
    results = client.batch([GraphRequest("GET", f"{path}?{params}") for path in paths])
    out: dict[str, frozenset[UserRef]] = {}
    for done, (path, result) in enumerate(zip(paths, results, strict=True), start=1):
        if result.error is not None and not isinstance(
            result.error, GraphUnavailable | GraphThrottled | GraphNotFound
        ):
            raise result.error
        body = result.body if isinstance(result.body, dict) and result.error is None else {}
        rows = body.get("value") or []
        if isinstance(result.error, GraphNotFound):
            # Listed, but not readable yet: a group created moments ago (by the previous run).
            rows = read_when_replicated(client, path, {"$select": MEMBER_SELECT, "$top": PAGE})
        elif result.error is not None or body.get("@odata.nextLink"):
            # Still failing after the batch's retries, or more than 999 members: read this one list
            # on its own (with a fresh set of retries, and paging).
            rows = client.get_all(path, {"$select": MEMBER_SELECT, "$top": PAGE})
        if path.endswith("/owners"):
            # Only user owners are smartsync's: Graph may make the app's own service principal an
            # owner of the groups it creates; such owners are never counted, removed or bound.
            rows = [r for r in rows if not isinstance(r, dict) or _is_user(r)]
        out[path] = frozenset(_refs(rows))
        if progress is not None:
            progress(f"Reading {what}", done, len(paths))
    return out
