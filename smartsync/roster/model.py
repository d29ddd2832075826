"""The roster: people, groups and memberships as read from a school's MIS export.

Plain frozen values, whatever the source format. Sources (`smartsync.roster.sources`) build a `Roster`
after validating their input; everything downstream reads only this model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

PersonRole = Literal["learner", "staff"]
PersonStatus = Literal["active", "suspended", "left"]
GroupType = Literal["class", "mentor", "year", "group"]
MembershipRole = Literal["learner", "teacher", "mentor", "member"]

PERSON_ROLES: tuple[PersonRole, ...] = ("learner", "staff")
PERSON_STATUSES: tuple[PersonStatus, ...] = ("active", "suspended", "left")
GROUP_TYPES: tuple[GroupType, ...] = ("class", "mentor", "year", "group")
MEMBERSHIP_ROLES: tuple[MembershipRole, ...] = ("learner", "teacher", "mentor", "member")
OWNER_ROLES: frozenset[str] = frozenset({"teacher", "mentor"})


@dataclass(frozen=True)
class Person:
    id: str
    role: PersonRole
    email: str
    first_name: str
    last_name: str
    year_group: str | None = None
    status: PersonStatus = "active"
    employee_id: str | None = None
    school: str | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    type: GroupType
    subject: str | None = None
    year_group: str | None = None
    school: str | None = None


@dataclass(frozen=True)
class Membership:
    group_id: str
    user_id: str
    role: MembershipRole

    @property
    def is_owner(self) -> bool:
        return self.role in OWNER_ROLES


@dataclass(frozen=True)
class Roster:
    """A validated roster: ids are unique and every membership names a known person and group."""

    people: tuple[Person, ...] = ()
    groups: tuple[Group, ...] = ()
    memberships: tuple[Membership, ...] = ()
    source: str = ""
    notes: tuple[str, ...] = field(default=())

    def person(self, person_id: str) -> Person:
        return self._people_by_id()[person_id]

    def _people_by_id(self) -> dict[str, Person]:
        cache: dict[str, Person] | None = self.__dict__.get("_people_cache")
        if cache is None:
            cache = {p.id: p for p in self.people}
            object.__setattr__(self, "_people_cache", cache)
        return cache

    @property
    def learners(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.role == "learner")

    @property
    def staff(self) -> tuple[Person, ...]:
        return tuple(p for p in self.people if p.role == "staff")
