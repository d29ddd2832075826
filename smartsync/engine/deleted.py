"""Soft-deleted managed groups: restore what the roster still wants, purge what is in the way.

Entra keeps a deleted group for 30 days under `/directory/deletedItems`, members and owners included,
and a deleted Microsoft 365 group may keep its mail nickname. So when the roster wants a managed group
that is not there but sits among the deleted items (deleted by hand, or by smartsync when it left the
roster), the plan restores it (`group.restore`) rather than creating a second one; the creation's
people become additions to it, which Graph answers "already there" for those it kept.

A deleted group is not restored when it is not what the config now asks for: a plain group where a
class is wanted (the README's advice, "delete the plain group so smartsync recreates it as a class"),
or a security group where a Microsoft 365 group is wanted (or the other way round). Restoring it
would only bring back the mismatch, and it would keep holding the nickname the new group needs: the
plan purges it for good (`group.purge`, the deleted copy only) and creates the group afresh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from smartsync.engine.naming import key_from_nickname, parse_group_description
from smartsync.engine.plan import Change, Plan, chunks
from smartsync.engine.state import GroupType, Notice
from smartsync.graph import GraphClient
from smartsync.graph.errors import GraphAuthError

DELETED_GROUPS = "/directory/deletedItems/microsoft.graph.group"
DELETED_SELECT = (
    "id,displayName,description,mailNickname,groupTypes,deletedDateTime,resourceProvisioningOptions"
)


@dataclass(frozen=True)
class DeletedGroup:
    id: str
    key: str
    display_name: str
    type: GroupType
    education_class: bool
    is_team: bool
    deleted: str


def read_deleted_groups(client: GraphClient, prefix: str) -> dict[str, DeletedGroup]:
    """The soft-deleted managed groups of `prefix`, the most recently deleted one per key."""
    try:
        rows = client.get_all(DELETED_GROUPS, {"$select": DELETED_SELECT, "$top": "999"})
    except GraphAuthError:
        return {}  # without the right to read deleted items, groups are created as before
    out: dict[str, DeletedGroup] = {}
    for row in sorted(rows, key=lambda r: str(r.get("deletedDateTime") or "")):
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            continue
        key = key_from_nickname(prefix, str(row.get("mailNickname") or ""))
        if key is None:
            continue
        education_class, _archived = parse_group_description(row.get("description"))
        out[key] = DeletedGroup(
            id=row["id"],
            key=key,
            display_name=str(row.get("displayName") or ""),
            type="microsoft365" if "Unified" in (row.get("groupTypes") or []) else "security",
            education_class=education_class,
            is_team="Team" in (row.get("resourceProvisioningOptions") or []),
            deleted=str(row.get("deletedDateTime") or ""),
        )
    return out


def prefer_restore(plan: Plan, deleted: dict[str, DeletedGroup]) -> Plan:
    """The plan with each creation of a group found among the deleted items made a restore or a purge."""
    creating = {c.key for c in plan.changes if c.op == "group.create"}
    if not creating & set(deleted):
        return plan
    changes: list[Change] = []
    notices = list(plan.notices)
    restored: dict[str, DeletedGroup] = {}
    for change in plan.changes:
        found = deleted.get(change.key)
        if found is None:
            changes.append(change)
            continue
        if change.op == "group.create" and change.group is not None:
            spec = change.group
            why_not = _why_not_restore(spec.type, spec.education_class, found)
            if why_not is None:
                restored[change.key] = found
                changes.append(
                    Change("group.restore", change.key, name=spec.display_name, object_id=found.id)
                )
                for op, people in (("group.owners.add", change.owners), ("group.members.add", change.users)):
                    changes.extend(
                        Change(op, change.key, name=spec.display_name, object_id=found.id, users=chunk)
                        for chunk in chunks(sorted(people))
                    )
                notices.append(
                    Notice(
                        "deleted_group_restored",
                        f"Group '{found.display_name}' ({change.key}) was deleted on "
                        f"{found.deleted[:10]} and the roster still lists it: smartsync restores it (with "
                        "its members) instead of creating a second one.",
                    )
                )
                continue
            changes.append(Change("group.purge", change.key, name=found.display_name, object_id=found.id))
            notices.append(
                Notice(
                    "deleted_group_purged",
                    f"Group '{found.display_name}' ({change.key}) was deleted on {found.deleted[:10]} and "
                    f"{why_not}: smartsync removes the deleted copy for good and creates the group afresh.",
                )
            )
            changes.append(change)
            continue
        if change.key in restored and change.object_id is None:
            if change.op == "team.create" and restored[change.key].is_team:
                continue  # restoring the group brings its team back
            change = replace(change, object_id=restored[change.key].id)
        changes.append(change)
    return replace(plan, changes=tuple(changes), notices=tuple(notices))


def _why_not_restore(want_type: GroupType, want_class: bool, found: DeletedGroup) -> str | None:
    if want_type != found.type:
        return f"was a {found.type} group where the config now asks for {want_type}"
    if want_class and not found.education_class:
        return "was a plain group where a class is wanted (only a class gets the educationClass team)"
    return None


__all__ = ["DELETED_GROUPS", "DeletedGroup", "prefer_restore", "read_deleted_groups"]
