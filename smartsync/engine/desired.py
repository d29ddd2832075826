"""Desired state: the roster and the config rules turned into the groups and units Entra should hold.

A pure function of the roster, the config and the directory of Entra users. Only active people
take part; each is matched to an existing Entra user by `users.match` (smartsync never creates
users), and the unmatched become warnings.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date

from smartsync.config import Config
from smartsync.engine.calendar import AcademicYear, academic_year
from smartsync.engine.naming import au_description, mail_nickname, object_key, render_name
from smartsync.engine.state import AdminUnitSpec, DesiredState, EntraUser, GroupSpec, Notice, UserRef
from smartsync.roster.model import Group, Person, Roster


@dataclass(frozen=True)
class UserDirectory:
    """Entra users indexed by the property the roster key is compared with."""

    match: str
    index: Mapping[str, EntraUser]
    addresses: Mapping[str, EntraUser] = field(default_factory=dict)

    @classmethod
    def build(cls, users: Iterable[EntraUser], match: str) -> UserDirectory:
        index: dict[str, EntraUser] = {}
        addresses: dict[str, EntraUser] = {}
        for user in users:
            for value in _match_values(user, match):
                index.setdefault(value, user)
            addresses.setdefault(user.user_principal_name.lower(), user)
        return cls(match, index, addresses)

    def by_address(self, address: str) -> EntraUser | None:
        return self.addresses.get(address.strip().lower())

    def find(self, person: Person) -> EntraUser | None:
        value = person.employee_id if self.match == "employeeId" else person.email
        return self.index.get(value.strip().lower()) if value else None


def _match_values(user: EntraUser, match: str) -> list[str]:
    if match == "employeeId":
        return [user.employee_id.strip().lower()] if user.employee_id else []
    if match == "mail":
        return [user.mail.strip().lower()] if user.mail else []
    return [user.user_principal_name.strip().lower()]


def build_desired(
    roster: Roster, config: Config, directory: UserDirectory, *, today: date | None = None
) -> DesiredState:
    """The groups and administrative units the roster asks for, with matched users."""
    notices: list[Notice] = []
    matched: dict[str, UserRef] = {}
    active = [p for p in roster.people if p.active]
    for person in active:
        user = directory.find(person)
        if user is None:
            how = "employeeId" if directory.match == "employeeId" else directory.match
            value = person.employee_id if directory.match == "employeeId" else person.email
            notices.append(
                Notice(
                    "user_not_found",
                    f"{person.role} {person.display_name} has no Entra user with {how} {value or '(empty)'}",
                    roster_id=person.id,
                    email=person.email,
                )
            )
        else:
            matched[person.id] = user.ref

    year = academic_year(today or date.today(), config.year)
    builder = _GroupBuilder(roster, config, matched, active, year, directory)
    groups = builder.build() if config.sync.groups.enabled else {}
    units = _admin_units(config, matched, active, roster) if config.sync.admin_units.enabled else {}
    notices.extend(builder.notices)
    notices.extend(
        Notice(
            "fallback_owner_not_found",
            f"sync.teams.fallback_owners: {address} is not an Entra user; check the address.",
            email=address,
        )
        for address in builder.missing_fallbacks
    )
    return DesiredState(
        groups=groups,
        admin_units=units,
        notices=tuple(notices),
        roster_people=len(active),
        matched_people=len(matched),
    )


class _GroupBuilder:
    def __init__(
        self,
        roster: Roster,
        config: Config,
        matched: dict[str, UserRef],
        active: list[Person],
        year: AcademicYear,
        directory: UserDirectory,
    ):
        self.year = year
        self.scoped = set(config.year.scoped_kinds)
        teams = config.sync.teams
        self.team_kinds = set(teams.kinds) if teams.enabled else set()
        self.fallback_owners: set[UserRef] = set()
        for address in teams.fallback_owners:
            user = directory.by_address(address)
            if user is not None:
                self.fallback_owners.add(user.ref)
        self.missing_fallbacks = [a for a in teams.fallback_owners if directory.by_address(a) is None]
        self.roster = roster
        self.config = config
        self.matched = matched
        self.active = active
        self.notices: list[Notice] = []
        self.kinds = set(config.sync.groups.kinds)
        groups = config.sync.groups
        # No flood of welcome mail for pupils, and no class groups in everyone's Outlook (DESIGN §5).
        self.behaviour_options = tuple(
            option
            for option, wanted in (
                ("WelcomeEmailDisabled", not groups.welcome_email),
                ("HideGroupInOutlook", groups.hide_from_outlook),
            )
            if wanted
        )
        self.default_school = config.school.code
        self.groups: dict[str, GroupSpec] = {}

    def school_of(self, value: str | None) -> str:
        return value or self.default_school

    def add(
        self,
        kind: str,
        school: str,
        roster_id: str | None,
        fields: Mapping[str, str | None],
        members: set[UserRef],
        owners: set[UserRef],
    ) -> None:
        gcfg = self.config.sync.groups
        scoped = kind in self.scoped and roster_id is not None
        key = object_key(school, kind, f"{self.year.key_part}-{roster_id}" if scoped else roster_id)
        values = dict(fields)
        values.setdefault("academic_year", self.year.label)
        values.setdefault("school_code", school)
        values.setdefault("school_name", self.config.school.name if school == self.default_school else school)
        name = render_name(gcfg.name_template(kind), values) or key
        group_type = gcfg.type_of(kind)
        template = None
        if kind in self.team_kinds:
            if group_type != "microsoft365":
                self.notices.append(
                    Notice(
                        "team_needs_microsoft365",
                        f"Group '{name}' should become a team (sync.teams.kinds) but {kind} groups are "
                        f"security groups; set sync.groups.type.{kind}: microsoft365.",
                    )
                )
            else:
                template = self.config.sync.teams.template_for(kind)
                if not owners:
                    owners = set(self.fallback_owners)
                if not owners:
                    self.notices.append(
                        Notice(
                            "team_without_owner",
                            f"'{name}' has no teacher in the roster, so its team waits until it has an "
                            "owner; name one in the MIS or set sync.teams.fallback_owners.",
                            roster_id=roster_id,
                        )
                    )
        self.groups[key] = GroupSpec(
            key=key,
            kind=kind,
            display_name=name,
            type=group_type,
            mail_nickname=mail_nickname(self.config.sync.prefix, key),
            members=frozenset(members | owners),
            owners=frozenset(owners),
            roster_id=roster_id,
            team_template=template,
            education_class=template == "educationClass",
            academic_year=self.year.label if scoped else None,
            year_group=fields.get("year_group"),
            school=school,
            behaviour_options=self.behaviour_options if group_type == "microsoft365" else (),
        )

    def build(self) -> dict[str, GroupSpec]:
        by_group: dict[str, list[tuple[str, bool]]] = defaultdict(list)
        for m in self.roster.memberships:
            by_group[m.group_id].append((m.user_id, m.is_owner))
        listed_years: set[tuple[str, str]] = set()
        for group in self.roster.groups:
            if group.type == "year" and group.year_group:
                listed_years.add((self.school_of(group.school), group.year_group))
            if group.type not in self.kinds:
                continue
            members, owners = self._people(by_group.get(group.id, []))
            if group.type == "year" and not members and group.year_group:
                members = self._year_learners(self.school_of(group.school), group.year_group)
            self.add(
                group.type, self.school_of(group.school), group.id, _group_fields(group), members, owners
            )
        if "year" in self.kinds:
            years: dict[tuple[str, str], set[UserRef]] = defaultdict(set)
            for person in self.active:
                if person.role == "learner" and person.year_group and person.id in self.matched:
                    years[(self.school_of(person.school), person.year_group)].add(self.matched[person.id])
            for (school, year), members in sorted(years.items()):
                if (school, year) not in listed_years:
                    self.add("year", school, year, {"name": year, "year_group": year}, members, set())
        for kind, role in (("all_learners", "learner"), ("all_staff", "staff")):
            if kind not in self.kinds:
                continue
            by_school: dict[str, set[UserRef]] = defaultdict(set)
            for person in self.active:
                if person.role == role and person.id in self.matched:
                    by_school[self.school_of(person.school)].add(self.matched[person.id])
            for school in sorted(by_school) or [self.default_school]:
                self.add(kind, school, None, {}, by_school.get(school, set()), set())
        return dict(sorted(self.groups.items()))

    def _people(self, entries: list[tuple[str, bool]]) -> tuple[set[UserRef], set[UserRef]]:
        members: set[UserRef] = set()
        owners: set[UserRef] = set()
        for person_id, is_owner in entries:
            ref = self.matched.get(person_id)
            if ref is None:
                continue
            (owners if is_owner else members).add(ref)
        return members, owners

    def _year_learners(self, school: str, year: str) -> set[UserRef]:
        return {
            self.matched[p.id]
            for p in self.active
            if p.role == "learner"
            and p.year_group == year
            and self.school_of(p.school) == school
            and p.id in self.matched
        }


def _group_fields(group: Group) -> dict[str, str | None]:
    return {"name": group.name, "subject": group.subject, "year_group": group.year_group}


def _admin_units(
    config: Config, matched: dict[str, UserRef], active: list[Person], roster: Roster
) -> dict[str, AdminUnitSpec]:
    acfg = config.sync.admin_units
    wanted = set(acfg.units)
    mentors = {m.user_id for m in roster.memberships if m.role == "mentor"}
    units: dict[str, AdminUnitSpec] = {}
    schools = sorted({p.school or config.school.code for p in active}) or [config.school.code]
    several = len(schools) > 1

    def add(
        kind: str,
        school: str,
        roster_id: str | None,
        name_kind: str,
        extra: dict[str, str],
        people: set[UserRef],
    ) -> None:
        key = object_key(school, f"au_{kind}", roster_id)
        values = {"school_code": school, "school_name": config.school.name, **extra}
        name = render_name(acfg.name_template(name_kind), values)
        if several and "{school_code}" not in acfg.name_template(name_kind):
            name = f"{name} ({school})"
        units[key] = AdminUnitSpec(
            key=key,
            display_name=name,
            members=frozenset(people),
            restricted=acfg.restricted_management,
            year_group=extra.get("year_group"),
            school=school,
            description=au_description(key, prefix=config.sync.prefix),
        )

    for school in schools:
        people = [p for p in active if (p.school or config.school.code) == school and p.id in matched]
        if "learners" in wanted:
            add(
                "learners",
                school,
                None,
                "learners",
                {},
                {matched[p.id] for p in people if p.role == "learner"},
            )
        if "staff" in wanted:
            add("staff", school, None, "staff", {}, {matched[p.id] for p in people if p.role == "staff"})
        if "mentors" in wanted:
            add("mentors", school, None, "mentors", {}, {matched[p.id] for p in people if p.id in mentors})
        if "year_groups" in wanted:
            years: dict[str, set[UserRef]] = defaultdict(set)
            for p in people:
                if p.role == "learner" and p.year_group:
                    years[p.year_group].add(matched[p.id])
            for year, members in sorted(years.items()):
                add("year", school, year, "year_group", {"year_group": year}, members)
    return dict(sorted(units.items()))


__all__ = ["UserDirectory", "au_description", "build_desired"]
