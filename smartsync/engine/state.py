"""Desired and actual state: what Entra should hold (`want`) and what it holds (`have`).

Both sides use the same small values keyed by the managed object's key, so the diff is a plain
comparison of sets. Users are referred to by their Entra object id; `UserRef` pairs it with the
sign-in address for reports and the journal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

GroupType = Literal["security", "microsoft365"]


@dataclass(frozen=True, order=True)
class UserRef:
    """An Entra user as smartsync names it: sign-in address first (for sorting), object id."""

    address: str
    id: str


@dataclass(frozen=True)
class EntraUser:
    id: str
    user_principal_name: str
    mail: str | None = None
    employee_id: str | None = None
    display_name: str | None = None

    @property
    def ref(self) -> UserRef:
        return UserRef(self.user_principal_name, self.id)


@dataclass(frozen=True)
class AccountSpec:
    """An account change's content (`sync.users`): the properties it sets, never a password.

    `properties` are Graph user properties as sent (`accountEnabled` a bool, the rest text); `marker`
    is the new value of the marker attribute; the rest feeds the hand-out file of new accounts.
    """

    user_principal_name: str
    properties: tuple[tuple[str, str | bool], ...] = ()
    marker: str | None = None
    marker_attribute: str = "extensionAttribute15"
    year_group: str | None = None
    group_name: str | None = None


@dataclass(frozen=True)
class GroupSpec:
    """A group as the roster and config want it."""

    key: str
    kind: str
    display_name: str
    type: GroupType
    mail_nickname: str
    members: frozenset[UserRef] = frozenset()
    owners: frozenset[UserRef] = frozenset()
    roster_id: str | None = None
    # The Teams template when this group should be a team ("educationClass" or "standard").
    team_template: str | None = None
    # Created through /education/classes so that the educationClass team template is allowed.
    education_class: bool = False
    academic_year: str | None = None
    year_group: str | None = None
    school: str | None = None
    # Microsoft 365 groups only: `resourceBehaviorOptions` sent at creation (no welcome mail, hidden).
    behaviour_options: tuple[str, ...] = ()


@dataclass(frozen=True)
class GroupState:
    """A managed group as Entra holds it."""

    id: str
    key: str
    display_name: str
    type: GroupType
    mail_nickname: str
    members: frozenset[UserRef] = frozenset()
    owners: frozenset[UserRef] = frozenset()
    is_team: bool = False
    education_class: bool = False
    # Archived by smartsync at the end of its academic year: kept as it is, never synced again.
    archived: bool = False
    # Why Graph will not let smartsync write it (mail-enabled, on-premises synced, dynamic), if so.
    unwritable: str | None = None


@dataclass(frozen=True)
class AdminUnitSpec:
    key: str
    display_name: str
    members: frozenset[UserRef] = frozenset()
    restricted: bool = False
    year_group: str | None = None  # set on year-group units
    school: str | None = None
    description: str | None = None  # with the marker that names prefix and key (DESIGN §5)


@dataclass(frozen=True)
class AdminUnitState:
    id: str
    key: str
    display_name: str
    members: frozenset[UserRef] = frozenset()
    restricted: bool = False
    # The description to write when the unit still carries the older marker without the prefix.
    description_update: str | None = None


@dataclass(frozen=True)
class LeftAlone:
    """Objects of another school code or prefix seen while reading Entra, and left alone."""

    kind: str  # group | admin_unit
    prefix: str | None  # None: a unit with the older marker, which names no prefix
    school: str
    count: int

    def to_dict(self) -> dict[str, str | int | None]:
        return {"kind": self.kind, "prefix": self.prefix, "school": self.school, "count": self.count}


@dataclass(frozen=True)
class Notice:
    """A warning for the report and the plan document (DESIGN §6 `warnings`)."""

    code: str
    message: str
    roster_id: str | None = None
    email: str | None = None

    def to_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.roster_id is not None:
            out["roster_id"] = self.roster_id
        if self.email is not None:
            out["email"] = self.email
        return out


@dataclass(frozen=True)
class DesiredState:
    groups: dict[str, GroupSpec] = field(default_factory=dict)
    admin_units: dict[str, AdminUnitSpec] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()
    roster_people: int = 0
    matched_people: int = 0


@dataclass(frozen=True)
class ActualState:
    groups: dict[str, GroupState] = field(default_factory=dict)
    admin_units: dict[str, AdminUnitState] = field(default_factory=dict)
    notices: tuple[Notice, ...] = ()
    left_alone: tuple[LeftAlone, ...] = ()

    @property
    def managed_memberships(self) -> int:
        """Memberships smartsync manages: the base of the removal-fraction safety limit."""
        groups = sum(len(g.members) + len(g.owners) for g in self.groups.values() if not g.archived)
        return groups + sum(len(u.members) for u in self.admin_units.values())
