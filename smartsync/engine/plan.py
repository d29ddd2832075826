"""The plan: `diff(want, have)` as an ordered tuple of `Change` values (DESIGN §6).

Pure and deterministic. Each change maps to at most one Graph write where Graph allows it: a group
creation carries up to 20 owners and members, every further 20 additions to one group are one
`PATCH`. Owners are added before any owner is removed, and the last owner is never removed, because
Graph refuses both orders otherwise. Only managed objects (present in `have`) are ever changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from smartsync.engine.naming import academic_year_of_key, archived_description
from smartsync.engine.state import (
    AccountSpec,
    ActualState,
    AdminUnitSpec,
    AdminUnitState,
    DesiredState,
    GroupSpec,
    GroupState,
    LeftAlone,
    Notice,
    UserRef,
)

if TYPE_CHECKING:
    from smartsync.engine.cohorts import CohortLoss

REFS_PER_REQUEST = 20  # Graph: at most 20 members@odata.bind + owners@odata.bind per request

SUMMARY_KEYS = (
    "groups_created",
    "groups_updated",
    "groups_deleted",
    "members_added",
    "members_removed",
    "owners_added",
    "owners_removed",
    "admin_units_created",
    "admin_units_updated",
    "admin_units_deleted",
    "admin_unit_members_added",
    "admin_unit_members_removed",
    "teams_created",
    "teams_archived",
    "accounts_created",
    "accounts_updated",
    "accounts_disabled",
    "accounts_enabled",
    "accounts_deleted",
)


@dataclass(frozen=True)
class Change:
    """One step of a plan. `users` are the people it adds or removes (for creates: initial members)."""

    op: str
    key: str
    name: str | None = None
    object_id: str | None = None
    users: tuple[UserRef, ...] = ()
    owners: tuple[UserRef, ...] = ()
    group: GroupSpec | None = None
    unit: AdminUnitSpec | None = None
    set_fields: tuple[tuple[str, str], ...] = ()
    template: str | None = None
    account: AccountSpec | None = None

    @property
    def is_delete(self) -> bool:
        return self.op in ("group.delete", "admin_unit.delete", "team.archive")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "key": self.key}
        if self.name is not None:
            out["name"] = self.name
        if self.group is not None and self.op == "group.create":
            out["type"] = self.group.type
            out["mail_nickname"] = self.group.mail_nickname
            if self.group.behaviour_options:
                out["behaviour_options"] = list(self.group.behaviour_options)
        if self.op == "group.create":
            out["owners"] = [u.address for u in self.owners]
            out["members"] = [u.address for u in self.users]
        elif self.users:
            out["users"] = [u.address for u in self.users]
        if self.set_fields:
            out["set"] = dict(self.set_fields)
        if self.account is not None:
            out["set"] = dict(self.account.properties)
            if self.account.marker is not None:
                out["marker"] = {self.account.marker_attribute: self.account.marker}
        if self.template is not None:
            out["template"] = self.template
        if self.object_id is not None:
            out["object_id"] = self.object_id
        return out


@dataclass(frozen=True)
class Plan:
    changes: tuple[Change, ...] = ()
    notices: tuple[Notice, ...] = ()
    managed_memberships: int = 0
    roster_people: int = 0
    matched_people: int = 0
    extra: dict[str, Any] = field(default_factory=dict)
    # Objects of other school codes or prefixes seen in Entra and left alone (DESIGN §5).
    left_alone: tuple[LeftAlone, ...] = ()
    # For the safety limits: cohorts this plan would shrink, and owned codes missing from the export.
    cohort_losses: tuple[CohortLoss, ...] = ()
    vanished_schools: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.changes

    def summary(self) -> dict[str, int]:
        return summarise(self.changes)

    def count(self, *ops: str) -> int:
        return sum(1 for c in self.changes if c.op in ops)


def summarise(changes: Iterable[Change]) -> dict[str, int]:
    out = dict.fromkeys(SUMMARY_KEYS, 0)
    for c in changes:
        match c.op:
            case "group.create":
                out["groups_created"] += 1
                out["members_added"] += len(c.users)
                out["owners_added"] += len(c.owners)
            case "group.update":
                out["groups_updated"] += 1
            case "group.delete":
                out["groups_deleted"] += 1
            case "group.members.add":
                out["members_added"] += len(c.users)
            case "group.members.remove":
                out["members_removed"] += len(c.users)
            case "group.owners.add":
                out["owners_added"] += len(c.users)
            case "group.owners.remove":
                out["owners_removed"] += len(c.users)
            case "admin_unit.create":
                out["admin_units_created"] += 1
            case "admin_unit.update":
                out["admin_units_updated"] += 1
            case "admin_unit.delete":
                out["admin_units_deleted"] += 1
            case "admin_unit.members.add":
                out["admin_unit_members_added"] += len(c.users)
            case "admin_unit.members.remove":
                out["admin_unit_members_removed"] += len(c.users)
            case "team.create":
                out["teams_created"] += 1
            case "team.archive":
                out["teams_archived"] += 1
            case "user.create" | "user.update" | "user.disable" | "user.enable" | "user.delete":
                out[f"accounts_{c.op.removeprefix('user.')}d"] += 1
    return out


def chunks(items: Sequence[UserRef], size: int = REFS_PER_REQUEST) -> Iterator[tuple[UserRef, ...]]:
    for start in range(0, len(items), size):
        yield tuple(items[start : start + size])


@dataclass(frozen=True)
class RemovalRules:
    """What happens to a managed object whose roster entry is gone (DESIGN §3 `removal`)."""

    group: str = "delete"  # delete | keep
    team: str = "archive"  # archive | delete | keep
    archive_prefix: str = "Archived {academic_year}: "
    archived_on: str = ""  # the date written into an archived group's description


def diff(
    want: DesiredState,
    have: ActualState,
    *,
    remove_groups: bool = True,
    remove_admin_units: bool = True,
    rules: RemovalRules | None = None,
) -> Plan:
    """The changes that turn `have` into `want`, in the order they must be applied."""
    rules = rules or RemovalRules(group="delete" if remove_groups else "keep")
    notices: list[Notice] = list(want.notices) + list(have.notices)
    teams: list[Change] = []
    archives: list[Change] = []
    creates: list[Change] = []
    updates: list[Change] = []
    owner_adds: list[Change] = []
    member_adds: list[Change] = []
    owner_removes: list[Change] = []
    member_removes: list[Change] = []
    deletes: list[Change] = []

    for key, spec in want.groups.items():
        current = have.groups.get(key)
        if current is None:
            creates.extend(_create_group(spec))
            if spec.team_template and spec.owners:
                teams.append(Change("team.create", key, name=spec.display_name, template=spec.team_template))
            continue
        if current.archived:
            notices.append(
                Notice(
                    "archived_group_in_roster",
                    f"Group '{current.display_name}' ({key}) was archived by smartsync but the roster lists "
                    "it again; it is left as it is. Unarchive it in Teams and remove 'Archived by smartsync' "
                    "from its description to manage it again.",
                )
            )
            continue
        if current.type != spec.type:
            notices.append(
                Notice(
                    "group_type_mismatch",
                    f"Group '{current.display_name}' ({key}) is a {current.type} group but the config asks "
                    f"for {spec.type}; Graph cannot convert it. Delete the group in Entra to let smartsync "
                    "recreate it, or change sync.groups.type.",
                )
            )
        if current.display_name != spec.display_name:
            updates.append(
                Change(
                    "group.update",
                    key,
                    name=spec.display_name,
                    object_id=current.id,
                    set_fields=(("displayName", spec.display_name),),
                )
            )
        _membership_changes(spec, current, notices, owner_adds, member_adds, owner_removes, member_removes)
        if spec.team_template and not current.is_team and spec.owners:
            if spec.education_class and not current.education_class:
                notices.append(
                    Notice(
                        "class_group_not_education_class",
                        f"Group '{current.display_name}' ({key}) was created as a plain group, and Graph "
                        "only gives the educationClass team template to groups created as classes. smartsync "
                        "does not convert it silently: delete the group in Entra (restorable for 30 days) to "
                        "let smartsync recreate it as a class, or set sync.teams.template: standard.",
                    )
                )
            else:
                teams.append(
                    Change(
                        "team.create",
                        key,
                        name=spec.display_name,
                        object_id=current.id,
                        template=spec.team_template,
                    )
                )

    for key, current in have.groups.items():
        if key in want.groups or current.archived:
            continue
        if current.is_team:
            if rules.team == "archive":
                archives.append(_archive(current, rules))
            elif rules.team == "delete":
                deletes.append(Change("group.delete", key, name=current.display_name, object_id=current.id))
        elif rules.group == "delete":
            deletes.append(Change("group.delete", key, name=current.display_name, object_id=current.id))

    au_changes = _diff_admin_units(want.admin_units, have.admin_units, remove_admin_units, notices)
    changes = (
        creates
        + updates
        + owner_adds
        + member_adds
        + owner_removes
        + member_removes
        + au_changes
        + teams
        + archives
        + deletes
    )
    return Plan(
        changes=tuple(changes),
        notices=tuple(notices),
        managed_memberships=have.managed_memberships,
        roster_people=want.roster_people,
        matched_people=want.matched_people,
        left_alone=have.left_alone,
    )


def _archive(current: GroupState, rules: RemovalRules) -> Change:
    year = academic_year_of_key(current.key) or ""
    prefix = rules.archive_prefix.replace("{academic_year}", year).replace("  ", " ")
    name = current.display_name if current.display_name.startswith(prefix) else prefix + current.display_name
    kind = current.key.split("-")[1] if current.key.count("-") >= 1 else "group"
    description = archived_description(kind, current.education_class, rules.archived_on or "the year end")
    return Change(
        "team.archive",
        current.key,
        name=current.display_name,
        object_id=current.id,
        set_fields=(("displayName", name[:256]), ("description", description)),
    )


def hold_removals(plan: Plan, reason: str, frozen_keys: frozenset[str] = frozenset()) -> Plan:
    """The plan without removals, deletions and archives (the summer quiet window).

    Changes to `frozen_keys` (this year's classes, while the MIS may already hold next year's) are
    held back entirely, so no pupil is added to a class that is about to end.
    """
    removing = ("group.members.remove", "group.owners.remove", "admin_unit.members.remove")
    leaving = ("user.disable", "user.delete")  # sync.users: leavers' accounts wait for the new year too

    def held(c: Change) -> bool:
        return c.is_delete or c.op in removing or c.op in leaving or c.key in frozen_keys

    waiting = [c for c in plan.changes if held(c)]
    if not waiting:
        return plan
    kept = tuple(c for c in plan.changes if not held(c))
    note = Notice(
        "quiet_window",
        f"{len(waiting)} changes held back (removals, deletions, archives and changes to this year's "
        f"classes): {reason}",
    )
    return replace(plan, changes=kept, notices=(*plan.notices, note))


def _create_group(spec: GroupSpec) -> list[Change]:
    owners = sorted(spec.owners)
    # /education/classes takes no member references: a class's people are all added afterwards.
    first_owners = [] if spec.education_class else owners[:REFS_PER_REQUEST]
    members = sorted(spec.members)
    room = 0 if spec.education_class else REFS_PER_REQUEST - len(first_owners)
    first_members = members[:room]
    out = [
        Change(
            "group.create",
            spec.key,
            name=spec.display_name,
            users=tuple(first_members),
            owners=tuple(first_owners),
            group=spec,
        )
    ]
    out += [
        Change("group.owners.add", spec.key, name=spec.display_name, users=chunk)
        for chunk in chunks(owners[len(first_owners) :])
    ]
    out += [
        Change("group.members.add", spec.key, name=spec.display_name, users=chunk)
        for chunk in chunks(members[room:])
    ]
    return out


def _membership_changes(
    spec: GroupSpec,
    current: GroupState,
    notices: list[Notice],
    owner_adds: list[Change],
    member_adds: list[Change],
    owner_removes: list[Change],
    member_removes: list[Change],
) -> None:
    name, oid, key = spec.display_name, current.id, spec.key
    for chunk in chunks(sorted(spec.owners - current.owners)):
        owner_adds.append(Change("group.owners.add", key, name=name, object_id=oid, users=chunk))
    for chunk in chunks(sorted(spec.members - current.members)):
        member_adds.append(Change("group.members.add", key, name=name, object_id=oid, users=chunk))
    leaving_owners = sorted(current.owners - spec.owners)
    if leaving_owners and not spec.owners:
        # Graph refuses to remove a group's last owner; keep one until the roster names a new one.
        kept = leaving_owners.pop(0)
        notices.append(
            Notice(
                "last_owner_kept",
                f"Group '{name}' has no teacher or mentor in the roster; {kept.address} stays its owner "
                "because Graph does not allow removing a group's last owner.",
                email=kept.address,
            )
        )
    if leaving_owners:
        owner_removes.append(
            Change("group.owners.remove", key, name=name, object_id=oid, users=tuple(leaving_owners))
        )
    kept_owner_members = {o for o in current.owners if o not in spec.owners} - set(leaving_owners)
    leaving_members = sorted(current.members - spec.members - kept_owner_members)
    if leaving_members:
        member_removes.append(
            Change("group.members.remove", key, name=name, object_id=oid, users=tuple(leaving_members))
        )


def _diff_admin_units(
    want: dict[str, AdminUnitSpec],
    have: dict[str, AdminUnitState],
    remove: bool,
    notices: list[Notice],
) -> list[Change]:
    creates: list[Change] = []
    updates: list[Change] = []
    adds: list[Change] = []
    removes: list[Change] = []
    deletes: list[Change] = []
    for key, spec in want.items():
        current = have.get(key)
        members = sorted(spec.members)
        if current is None:
            creates.append(Change("admin_unit.create", key, name=spec.display_name, unit=spec))
            if members:
                adds.append(
                    Change("admin_unit.members.add", key, name=spec.display_name, users=tuple(members))
                )
            continue
        if current.restricted != spec.restricted:
            notices.append(
                Notice(
                    "admin_unit_restriction_differs",
                    f"Administrative unit '{current.display_name}' has restricted management "
                    f"{'on' if current.restricted else 'off'} but the config asks for "
                    f"{'on' if spec.restricted else 'off'}; Graph only sets this at creation. "
                    "Delete the unit in Entra to let smartsync recreate it, "
                    "or change sync.admin_units.restricted_management.",
                )
            )
        fields: tuple[tuple[str, str], ...] = ()
        if current.display_name != spec.display_name:
            fields += (("displayName", spec.display_name),)
        if current.description_update is not None:
            # The older marker without the prefix, rewritten in place (DESIGN §5): never recreated.
            fields += (("description", current.description_update),)
        if fields:
            updates.append(
                Change(
                    "admin_unit.update", key, name=spec.display_name, object_id=current.id, set_fields=fields
                )
            )
        added = sorted(spec.members - current.members)
        if added:
            adds.append(
                Change(
                    "admin_unit.members.add",
                    key,
                    name=spec.display_name,
                    object_id=current.id,
                    users=tuple(added),
                )
            )
        removed = sorted(current.members - spec.members)
        if removed:
            removes.append(
                Change(
                    "admin_unit.members.remove",
                    key,
                    name=spec.display_name,
                    object_id=current.id,
                    users=tuple(removed),
                )
            )
    if remove:
        for key, current in have.items():
            if key not in want:
                deletes.append(
                    Change("admin_unit.delete", key, name=current.display_name, object_id=current.id)
                )
    return creates + updates + adds + removes + deletes
