"""Accounts for joiners, movers and leavers (`sync.users`, DESIGN §5): what to create, update, disable.

Off unless the config has a `sync.users` section. A pure function of the roster, the config, the Entra
accounts and the run date turns into `user.*` changes that go at the front of the plan:

- which accounts are smartsync's: those carrying `{prefix}:{key}` in the configured
  `onPremisesExtensionAttributes` attribute (default `extensionAttribute15`), where the key is
  `{school}-user-{roster id}`. Only they are ever updated, disabled or deleted; an unmarked account
  that matches a roster person is matched as before and never modified, unless `adopt: true` marks it
  (the adoption is listed first in the plan, and the account is managed from the next run on);
- joiners (`create: true`): an active person no account matches gets one, with a placeholder object id
  (`new:{key}`) in the desired state so that the same run places it in its groups and units; the
  applier swaps the placeholder for the id Graph returns;
- movers: name, year group and the other listed properties follow the roster; a changed sign-in
  address renames the account only with `rename: true`, otherwise it is a warning with both addresses;
- leavers (status `left` or `suspended`, or gone from the roster): disabled once `disable_after_days`
  have passed since smartsync first saw them leave, deleted (soft) `delete_after_days` after being
  disabled; a person who comes back is enabled again.

The dates live in the marker value itself (`smartsync:NFA-user-4711;disabled=2026-07-24`), so the
lifecycle survives journal pruning, moving the journal and a reinstall, and needs no state file.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from smartsync.config import AccountsConfig, Config
from smartsync.engine.desired import UserDirectory
from smartsync.engine.naming import object_key
from smartsync.engine.plan import Change
from smartsync.engine.state import AccountSpec, EntraUser, Notice, UserRef
from smartsync.errors import SmartsyncError
from smartsync.graph import GraphClient, GraphError
from smartsync.roster.model import Person, Roster

ACCOUNT_SELECT = (
    "id,userPrincipalName,mail,employeeId,displayName,givenName,surname,department,jobTitle,"
    "companyName,usageLocation,accountEnabled,onPremisesExtensionAttributes"
)
PLACEHOLDER = "new:"  # object id of an account this run creates, until Graph gives the real one
ACCOUNT_OPS = ("user.create", "user.update", "user.disable", "user.enable", "user.delete")
# Properties compared with the roster on every run (movers), in the order they are sent.
MANAGED_PROPERTIES = (
    "displayName",
    "givenName",
    "surname",
    "employeeId",
    "department",
    "jobTitle",
    "companyName",
    "usageLocation",
)
# Entra's length limits for these user properties (the user resource's reference page).
MAX_LENGTH = {
    "displayName": 256,
    "givenName": 64,
    "surname": 64,
    "employeeId": 16,
    "department": 64,
    "jobTitle": 128,
    "companyName": 64,
    "usageLocation": 2,
}
_MARKER = re.compile(r"^(?P<prefix>[A-Za-z0-9_]+):(?P<key>[^;\s]+)(?P<rest>(;[a-z]+=[0-9-]+)*)$")


class AccountDomainError(SmartsyncError):
    """New or renamed accounts would be in a domain the tenant has not verified (exit 2)."""


@dataclass(frozen=True)
class Marker:
    """The marker of an account smartsync manages, with the lifecycle dates it keeps there."""

    prefix: str
    key: str
    leaving: date | None = None  # first run that saw the person leave (disable_after_days > 0)
    disabled: date | None = None  # the run that disabled the account (starts delete_after_days)

    def value(self) -> str:
        text = f"{self.prefix}:{self.key}"
        if self.leaving is not None:
            text += f";leaving={self.leaving.isoformat()}"
        if self.disabled is not None:
            text += f";disabled={self.disabled.isoformat()}"
        return text


def parse_marker(value: str | None) -> Marker | None:
    """The marker in `value`, or None when the attribute holds something else (never ours)."""
    match = _MARKER.match((value or "").strip())
    if match is None:
        return None
    dates: dict[str, date] = {}
    for part in filter(None, match.group("rest").split(";")):
        name, _, text = part.partition("=")
        try:
            dates[name] = date.fromisoformat(text)
        except ValueError:
            return None
    return Marker(match.group("prefix"), match.group("key"), dates.get("leaving"), dates.get("disabled"))


@dataclass(frozen=True)
class Account:
    """An Entra user as the account lifecycle sees it."""

    id: str
    user_principal_name: str
    enabled: bool = True
    properties: Mapping[str, str | None] = field(default_factory=dict)
    marker_value: str | None = None
    mail: str | None = None
    employee_id: str | None = None

    @property
    def user(self) -> EntraUser:
        return EntraUser(self.id, self.user_principal_name, self.mail, self.employee_id)

    @property
    def ref(self) -> UserRef:
        return UserRef(self.user_principal_name, self.id)


def read_accounts(client: GraphClient, marker_attribute: str) -> list[Account]:
    """Every user with the properties the lifecycle compares (one read, also used for matching)."""
    rows = client.get_all("/users", {"$select": ACCOUNT_SELECT, "$top": "999"})
    out: list[Account] = []
    for row in rows:
        if not isinstance(row, dict) or not isinstance(row.get("id"), str):
            raise GraphError(
                None,
                "UnexpectedResponse",
                "GET /users returned entries that are not objects with an id (null or damaged); "
                "nothing was written. If a proxy sits between smartsync and Graph, check it; otherwise "
                "run again later",
            )
        extensions = row.get("onPremisesExtensionAttributes") or {}
        marker = extensions.get(marker_attribute) if isinstance(extensions, dict) else None
        out.append(
            Account(
                id=row["id"],
                user_principal_name=row.get("userPrincipalName") or row["id"],
                enabled=row.get("accountEnabled") is not False,
                properties={name: _text(row.get(name)) for name in MANAGED_PROPERTIES},
                marker_value=marker if isinstance(marker, str) else None,
                mail=row.get("mail"),
                employee_id=row.get("employeeId"),
            )
        )
    return out


def read_verified_domains(client: GraphClient) -> set[str]:
    """The tenant's verified domain names, lower case (`GET /domains`, Domain.Read.All)."""
    rows = client.get_all("/domains")
    return {str(r["id"]).lower() for r in rows if isinstance(r, dict) and r.get("isVerified") and r.get("id")}


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def account_key(config: Config, person: Person) -> str:
    return object_key(person.school or config.school.code, "user", person.id)


def placeholder_id(key: str) -> str:
    return f"{PLACEHOLDER}{key}"


@dataclass(frozen=True)
class AccountPlan:
    """The account changes of one run, and who the desired state can place in groups."""

    changes: tuple[Change, ...] = ()
    notices: tuple[Notice, ...] = ()
    new_users: tuple[EntraUser, ...] = ()  # joiners, under placeholder ids
    aliases: Mapping[str, EntraUser] = field(default_factory=dict)  # match value -> managed account

    def directory(self, base: UserDirectory) -> UserDirectory:
        """`base` plus this run's new accounts and the managed accounts of renamed people."""
        joined = UserDirectory.build(self.new_users, base.match)
        index = {**joined.index, **base.index, **self.aliases}
        addresses = {**joined.addresses, **base.addresses}
        return replace(base, index=index, addresses=addresses)


def _match_value(person: Person, match: str) -> str | None:
    value = person.employee_id if match == "employeeId" else person.email
    return value.strip().lower() if value else None


def _group_of(roster: Roster) -> dict[str, str]:
    """Each person's mentor (tutor) group name, else their first class: the hand-out's third column."""
    names = {g.id: (g.type, g.name) for g in roster.groups}
    mentor: dict[str, str] = {}
    klass: dict[str, str] = {}
    for m in roster.memberships:
        kind, name = names.get(m.group_id, ("", ""))
        if kind == "mentor":
            mentor.setdefault(m.user_id, name)
        elif kind == "class":
            klass.setdefault(m.user_id, name)
    return {**klass, **mentor}


class _Planner:
    def __init__(self, roster: Roster, config: Config, accounts: list[Account], today: date) -> None:
        assert config.sync.users is not None
        self.cfg: AccountsConfig = config.sync.users
        self.config = config
        self.roster = roster
        self.today = today
        self.prefix = config.sync.prefix
        self.match = config.users.match
        self.accounts = {a.id: a for a in accounts}
        self.directory = UserDirectory.build((a.user for a in accounts), self.match)
        self.notices: list[Notice] = []
        self.adopt: list[Change] = []
        self.creates: list[Change] = []
        self.updates: list[Change] = []
        self.enables: list[Change] = []
        self.disables: list[Change] = []
        self.deletes: list[Change] = []
        self.new_users: list[EntraUser] = []
        self.aliases: dict[str, EntraUser] = {}
        self.groups = _group_of(roster)
        schools = {config.school.code.lower()} | {(p.school or "").lower() for p in roster.people}
        self.owned: dict[str, tuple[Account, Marker]] = {}
        for account in sorted(accounts, key=lambda a: a.id):
            marker = parse_marker(account.marker_value)
            if marker is None or marker.prefix != self.prefix:
                continue
            school, _, rest = marker.key.partition("-")
            if school.lower() not in schools or not rest.startswith("user-"):
                continue  # another school's (or another config's) account
            if marker.key in self.owned:
                first = self.owned[marker.key][0]
                self.notices.append(
                    Notice(
                        "duplicate_managed_account",
                        f"Two accounts carry the marker {marker.key} ({first.user_principal_name} and "
                        f"{account.user_principal_name}); smartsync manages the first and leaves the other "
                        f"alone. Clear {self.cfg.marker_attribute} on the one that is not the person's.",
                        email=account.user_principal_name,
                    )
                )
                continue
            self.owned[marker.key] = (account, marker)

    # -- desired properties ---------------------------------------------------------------------------

    def wanted(self, person: Person) -> dict[str, str]:
        school = person.school or self.config.school.code
        company = self.config.school.name if school == self.config.school.code else school
        values = {
            "displayName": person.display_name,
            "givenName": person.first_name,
            "surname": person.last_name,
            "employeeId": person.employee_id,
            "department": person.year_group if person.role == "learner" else self.cfg.staff_department,
            "jobTitle": self.cfg.learner_job_title if person.role == "learner" else self.cfg.staff_job_title,
            "companyName": company or school,
            "usageLocation": self.cfg.usage_location,
        }
        return {k: v.strip()[: MAX_LENGTH[k]] for k, v in values.items() if v and v.strip()}

    def spec(
        self,
        upn: str,
        properties: Iterable[tuple[str, str | bool]],
        marker: Marker | None,
        person: Person | None,
    ) -> AccountSpec:
        return AccountSpec(
            user_principal_name=upn,
            properties=tuple(properties),
            marker=marker.value() if marker is not None else None,
            marker_attribute=self.cfg.marker_attribute,
            year_group=person.year_group if person is not None else None,
            group_name=self.groups.get(person.id) if person is not None else None,
        )

    # -- the lifecycle --------------------------------------------------------------------------------

    def run(self) -> AccountPlan:
        by_key: dict[str, Person] = {}
        for person in self.roster.people:
            key = account_key(self.config, person)
            by_key[key] = person
            owned = self.owned.get(key)
            if person.active:
                if owned is not None:
                    self.keep(key, person, *owned)
                else:
                    self.unmanaged(key, person)
            elif owned is not None:
                self.leaver(key, *owned, person=person)
        for key, (account, marker) in self.owned.items():
            if key not in by_key:
                self.leaver(key, account, marker, person=None)
        changes = self.adopt + self.creates + self.updates + self.enables + self.disables + self.deletes
        return AccountPlan(tuple(changes), tuple(self.notices), tuple(self.new_users), self.aliases)

    def keep(self, key: str, person: Person, account: Account, marker: Marker) -> None:
        """An active person with a managed account: the mover rules, and enabling a returner."""
        value = _match_value(person, self.match)
        if value is not None:
            self.aliases[value] = account.user
        properties: list[tuple[str, str | bool]] = [
            (name, wanted)
            for name, wanted in self.wanted(person).items()
            if account.properties.get(name) != wanted
        ]
        if account.user_principal_name.lower() != person.email.strip().lower():
            holder = self.directory.by_address(person.email)
            if holder is not None and holder.id != account.id:
                self.notices.append(
                    Notice(
                        "account_address_taken",
                        f"{person.display_name}'s sign-in address in the roster is now {person.email}, which "
                        f"another account already has; their account stays {account.user_principal_name}.",
                        roster_id=person.id,
                        email=person.email,
                    )
                )
            elif self.cfg.rename:
                properties.append(("userPrincipalName", person.email.strip()))
            else:
                self.notices.append(
                    Notice(
                        "account_address_changed",
                        f"{person.display_name}'s sign-in address in the roster is now {person.email} but "
                        f"the account is {account.user_principal_name}; it is left as it is. Rename it in "
                        "Entra, or set sync.users.rename: true to let smartsync rename accounts.",
                        roster_id=person.id,
                        email=person.email,
                    )
                )
        new_marker = replace(marker, leaving=None, disabled=None)
        if not account.enabled:
            if marker.disabled is None:
                self.notices.append(
                    Notice(
                        "account_disabled_elsewhere",
                        f"The account {account.user_principal_name} of {person.display_name} was disabled "
                        "outside smartsync, so smartsync leaves it disabled; enable it in Entra when right.",
                        roster_id=person.id,
                        email=account.user_principal_name,
                    )
                )
            else:
                self.enables.append(
                    Change(
                        "user.enable",
                        key,
                        name=person.display_name,
                        object_id=account.id,
                        users=(account.ref,),
                        account=self.spec(
                            account.user_principal_name, [("accountEnabled", True)], new_marker, person
                        ),
                    )
                )
                new_marker = marker  # the enable rewrites the marker
        marker_changed = new_marker.value() != marker.value()
        if properties or marker_changed:
            self.updates.append(
                Change(
                    "user.update",
                    key,
                    name=person.display_name,
                    object_id=account.id,
                    users=(account.ref,),
                    account=self.spec(
                        account.user_principal_name,
                        properties,
                        new_marker if marker_changed else None,
                        person,
                    ),
                )
            )

    def unmanaged(self, key: str, person: Person) -> None:
        """An active person without a managed account: match, adopt or create."""
        user = self.directory.find(person)
        if user is not None:
            account = self.accounts[user.id]
            if self.cfg.adopt and not account.marker_value:  # an attribute in other use is left alone
                self.adopt.append(
                    Change(
                        "user.update",
                        key,
                        name=person.display_name,
                        object_id=account.id,
                        users=(account.ref,),
                        account=self.spec(account.user_principal_name, [], Marker(self.prefix, key), person),
                    )
                )
            return
        if not self.cfg.create:
            return
        address = person.email.strip()
        if _match_value(person, self.match) is None:
            self.notices.append(
                Notice(
                    "account_not_created",
                    f"{person.display_name} has no {self.match} in the roster, so an account made for them "
                    "could never be matched; no account is created.",
                    roster_id=person.id,
                )
            )
            return
        taken = self.directory.by_address(address)
        if taken is not None:
            self.notices.append(
                Notice(
                    "account_address_taken",
                    f"No account matches {person.display_name} by {self.match}, but {address} is already "
                    "the sign-in address of another account; no account is created. Check the roster's "
                    f"{self.match} for this person.",
                    roster_id=person.id,
                    email=address,
                )
            )
            return
        new_id = placeholder_id(key)
        properties: list[tuple[str, str | bool]] = [("accountEnabled", True), *self.wanted(person).items()]
        self.creates.append(
            Change(
                "user.create",
                key,
                name=person.display_name,
                users=(UserRef(address, new_id),),
                account=self.spec(address, properties, Marker(self.prefix, key), person),
            )
        )
        self.new_users.append(EntraUser(new_id, address, address, person.employee_id))

    def leaver(self, key: str, account: Account, marker: Marker, *, person: Person | None) -> None:
        name = person.display_name if person is not None else account.properties.get("displayName") or key
        ref = account.ref
        upn = account.user_principal_name
        if account.enabled:
            waited = self.cfg.disable_after_days
            since = marker.leaving or self.today
            if waited == 0 or (self.today - since).days >= waited:
                disabled = replace(marker, leaving=None, disabled=self.today)
                spec = self.spec(upn, [("accountEnabled", False)], disabled, person)
                self.disables.append(
                    Change("user.disable", key, name=name, object_id=account.id, users=(ref,), account=spec)
                )
            elif marker.leaving is None:
                # Start the disable_after_days clock: the date goes into the marker.
                spec = self.spec(upn, [], replace(marker, leaving=self.today), person)
                self.updates.append(
                    Change("user.update", key, name=name, object_id=account.id, users=(ref,), account=spec)
                )
            return
        if marker.disabled is None:
            # Disabled by someone else while the person was leaving: the deletion clock starts now.
            spec = self.spec(upn, [], replace(marker, leaving=None, disabled=self.today), person)
            self.updates.append(
                Change("user.update", key, name=name, object_id=account.id, users=(ref,), account=spec)
            )
        elif (self.today - marker.disabled).days >= self.cfg.delete_after_days:
            self.deletes.append(Change("user.delete", key, name=name, object_id=account.id, users=(ref,)))


def plan_accounts(
    roster: Roster,
    config: Config,
    accounts: list[Account],
    *,
    today: date,
    verified_domains: Callable[[], set[str]] | None = None,
) -> AccountPlan:
    """The account changes for this run; raises AccountDomainError before anything is written."""
    plan = _Planner(roster, config, accounts, today).run()
    addresses = [c.account.user_principal_name for c in plan.changes if c.op == "user.create" and c.account]
    addresses += [
        str(value)
        for c in plan.changes
        if c.account is not None
        for name, value in c.account.properties
        if name == "userPrincipalName"
    ]
    if addresses and verified_domains is not None:
        check_domains(addresses, verified_domains())
    return plan


def check_domains(addresses: list[str], verified: set[str]) -> None:
    counts: dict[str, int] = {}
    for address in addresses:
        domain = address.rpartition("@")[2].lower()
        if domain not in verified:
            counts[domain] = counts.get(domain, 0) + 1
    if counts:
        named = ", ".join(
            f"{d or '(no domain)'} ({n} account{'s' if n != 1 else ''})" for d, n in counts.items()
        )
        raise AccountDomainError(
            f"sync.users: new or renamed accounts would sign in with a domain the tenant has not verified: "
            f"{named}. Verified domains: {', '.join(sorted(verified)) or '(none)'}. Nothing was written. "
            "Correct the e-mail addresses in the export, or add and verify the domain in the Entra admin "
            "centre (Settings > Domain names)."
        )


__all__ = [
    "ACCOUNT_OPS",
    "Account",
    "AccountDomainError",
    "AccountPlan",
    "Marker",
    "account_key",
    "parse_marker",
    "placeholder_id",
    "plan_accounts",
    "read_accounts",
    "read_verified_domains",
]
