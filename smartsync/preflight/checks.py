"""`smartsync preflight`: prove, in the school's tenant, each call the config's features make (DESIGN §10).

`check-credentials` reads the token's roles; it cannot tell whether Graph will accept the writes (an
education tenant or not, restricted units manageable or not, Teams licensed or not, a policy that
blocks a granted permission). Preflight makes each call once, on throwaway objects only, and reports
a check per call: Graph's answer on failure and what it means for the sync.

Every throwaway object carries `smartsync-preflight-<run id>` in its name, nickname and description.
`naming.is_preflight_name` keeps every sync from reading one as managed, and the sweep here deletes
them: first any left by an earlier, killed preflight, then this run's own, even after a failure or
Ctrl-C (and SIGTERM), and purged from deleted items where the app may. Units go before groups, so a
group is never held inside a restricted unit when it is deleted.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from smartsync.config import Config
from smartsync.credentials import expiry_warnings, read_credentials
from smartsync.engine.desired import UserDirectory
from smartsync.engine.naming import PREFLIGHT_MARKER, is_preflight_name
from smartsync.engine.state import EntraUser
from smartsync.errors import EXIT_AUTH, EXIT_OK, ConfigError
from smartsync.graph import GraphClient, GraphError, GraphResult
from smartsync.preflight.results import (
    EDUCATION_CLASSES,
    FALLBACKS,
    OWNERS_IN_PATCH,
    RESTRICTED_UNIT_ROLE,
    CheckResult,
    PreflightResults,
)
from smartsync.roster.model import Roster

Say = Callable[[str], None]
# Graph: a team may not be creatable for up to 15 minutes after its group was made.
TEAM_REPLICATION_SECONDS = 15 * 60
NOT_TRIED = "not tried: "  # a check that needs an object an earlier, failed check was to make

# What each check proves, for the report line ("✓ group.rename: renaming a group").
LABELS = {
    "group.create": "creating groups with an owner and a member bound",
    OWNERS_IN_PATCH: "owners in PATCH",
    "group.remove_member": "removing a member",
    "group.rename": "renaming a group",
    "admin_unit.create": "creating an administrative unit",
    "admin_unit.members": "adding and removing unit members",
    "admin_unit.include_group": "placing a group in a unit, then changing its members",
    EDUCATION_CLASSES: "education classes",
    "team.create": "creating a team",
    "team.archive": "archiving a team",
    "team.members": "the Teams membership API",
    "credentials.expiry": "reading the app's secret and certificate expiry",
}

# What a refusal stops the sync doing (checks with a fallback are in preflight_results.FALLBACKS).
STOPS = {
    "group.create": "smartsync cannot create its groups; run `smartsync check-credentials`",
    "group.remove_member": "people who leave a class would stay in its group",
    "group.rename": "a class renamed in the roster would keep its old name in Entra",
    "admin_unit.create": "smartsync cannot create administrative units (or set sync.admin_units.enabled: "
    "false)",
    "admin_unit.members": "smartsync cannot manage the members of its administrative units",
    "admin_unit.include_group": (
        "year units cannot hold their groups (or set sync.admin_units.include_groups: false)"
    ),
    EDUCATION_CLASSES: (
        "class teams cannot use the educationClass template: set `sync.teams.template: standard` "
        "(plan and run stop until then)"
    ),
    "team.create": "smartsync cannot create teams; run `smartsync check-credentials`",
    "team.archive": "teams cannot be archived at year end (or set removal.team: keep)",
}


@dataclass(frozen=True)
class Cleanup:
    ok: bool
    left: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "left": list(self.left)}


@dataclass
class PreflightReport:
    run_id: str
    user: str
    user_source: str
    checks: list[CheckResult] = field(default_factory=list)
    earlier: Cleanup = field(default_factory=lambda: Cleanup(True))
    cleanup: Cleanup = field(default_factory=lambda: Cleanup(True))
    kept: bool = False

    @property
    def ok(self) -> bool:
        """Everything the config needs works (refusals with a fallback do not count against it)."""
        return all(c.ok or c.name in FALLBACKS or c.detail.startswith(NOT_TRIED) for c in self.checks)

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.ok else EXIT_AUTH

    def results(self) -> PreflightResults:
        return PreflightResults(
            datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), self.run_id, tuple(self.checks)
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checks": [c.to_dict() for c in self.checks],
            "cleanup": self.cleanup.to_dict(),
        }

    def render_text(self) -> list[str]:
        lines = []
        for check in self.checks:
            label = LABELS.get(check.name, check.name)
            if check.ok:
                lines.append(f"✓ {check.name}: {label}" + (f" ({check.detail})" if check.detail else ""))
            elif check.detail.startswith(NOT_TRIED):
                lines.append(f"✗ {check.name}: {label} {check.detail}")
            else:
                lines.append(f"✗ {check.name}: {label} refused ({check.detail}): {check.consequence}")
        if self.kept:
            lines.append(f"Kept for inspection (--keep): {', '.join(self.cleanup.left) or 'nothing'}.")
            lines.append("The next `smartsync preflight` deletes them first.")
        elif self.cleanup.ok:
            lines.append("Cleanup: every throwaway object deleted, and purged from deleted items.")
        else:
            lines.append("Cleanup incomplete; still in the tenant (the next preflight tries again):")
            lines.extend(f"  {left}" for left in self.cleanup.left)
        return lines


def pick_user(config: Config, roster: Roster, users: list[EntraUser]) -> tuple[EntraUser, str]:
    """The one person the throwaway objects use: `preflight.user`, else the first matched staff member."""
    directory = UserDirectory.build(users, config.users.match)
    if config.preflight.user:
        user = directory.by_address(config.preflight.user)
        if user is None:
            raise ConfigError(
                f"preflight.user {config.preflight.user} is not a user in this tenant (compared with "
                "userPrincipalName). Give the sign-in address of an existing staff account."
            )
        return user, "preflight.user in the config"
    for person in sorted((p for p in roster.people if p.active and p.role == "staff"), key=lambda p: p.id):
        user = directory.find(person)
        if user is not None:
            return user, f"the first roster staff member found in Entra, roster id {person.id}"
    raise ConfigError(
        "No active staff member of the roster matches an Entra user, so preflight has no one to put in "
        "its test groups. Set preflight.user to the sign-in address of a staff account."
    )


@contextmanager
def interrupts_raise() -> Iterator[None]:
    """SIGTERM and SIGHUP end the checks like Ctrl-C does, so the cleanup in `finally` still runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def interrupts_deferred() -> Iterator[list[int]]:
    """While cleaning up, Ctrl-C, SIGTERM and SIGHUP wait until the cleanup is done, then interrupt."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def remember(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    sigs = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, remember) for sig in sigs}
    try:
        yield received
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if received:
        raise KeyboardInterrupt  # honoured once the cleanup is done


def _not_replicated(error: GraphError) -> bool:
    """Graph's answers while a new group or class is still replicating (graph-field-notes.md)."""
    message = error.message.lower()
    if error.status == 404:
        return True
    return error.status == 400 and any(
        words in message
        for words in ("do not exist", "does not belong to a class", "must have one or more owners")
    )


def _answer(error: GraphError) -> str:
    return f"{error.status} {error.message}" if error.status else error.message


class Preflight:
    """The checks for one config, run once against one tenant."""

    def __init__(
        self,
        config: Config,
        client: GraphClient,
        user: EntraUser,
        *,
        run_id: str,
        teams: bool,
        say: Say | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.client = client
        self.user = user
        self.run_id = run_id
        self.marker = f"{PREFLIGHT_MARKER}{run_id}"
        self.teams = teams
        self.say = say or (lambda _message: None)
        self.sleep = sleep
        self.graph_v1 = f"{config.tenant.graph_url}/v1.0"
        self.checks: list[CheckResult] = []
        self.created: list[tuple[str, str, str]] = []  # (kind, id, label), in creation order
        self.group_id: str | None = None  # security group, created with owner and member
        self.unified_id: str | None = None
        self.class_id: str | None = None
        self.unit_id: str | None = None
        self.team_id: str | None = None

    # -- the checks -----------------------------------------------------------------------------------

    def run(self) -> list[CheckResult]:
        sync = self.config.sync
        if sync.groups.enabled or sync.teams.enabled:
            self._check("group.create", self._group_create)
            self._check(OWNERS_IN_PATCH, self._patch_owners_members)
            self._check("group.remove_member", self._remove_member)
            self._check("group.rename", self._rename)
        if sync.admin_units.enabled:
            self._check("admin_unit.create", self._unit_create)
            self._check("admin_unit.members", self._unit_members)
            if sync.admin_units.include_groups and sync.groups.enabled:
                self._check("admin_unit.include_group", self._include_group)
        education = (
            sync.teams.enabled and sync.teams.template == "educationClass" and "class" in sync.teams.kinds
        )
        if education:
            self._check(EDUCATION_CLASSES, self._education_class)
        if sync.teams.enabled and self.teams:
            self._check("team.create", self._team_create)
            self._check("team.archive", self._team_archive)
            self._check("team.members", self._team_members)
        self._check("credentials.expiry", self._credentials)
        return self.checks

    def _check(self, name: str, action: Callable[[], str]) -> None:
        self.say(f"checking {name} …")
        try:
            detail = action()
        except _NotTried as exc:
            self.checks.append(CheckResult(name, False, f"{NOT_TRIED}{exc}", "see the check it needs, above"))
            return
        except GraphError as exc:
            self.checks.append(CheckResult(name, False, _answer(exc), self._consequence(name)))
            return
        self.checks.append(CheckResult(name, True, detail, ""))

    def _consequence(self, name: str) -> str:
        restricted = self.config.sync.admin_units.restricted_management
        if name in ("admin_unit.members", "admin_unit.include_group") and restricted:
            return f"smartsync cannot manage a restricted-management unit: {RESTRICTED_UNIT_ROLE}"
        return FALLBACKS.get(name) or STOPS.get(name, "smartsync cannot do this part of its job")

    def _ref(self, object_id: str) -> str:
        return f"{self.graph_v1}/directoryObjects/{object_id}"

    def _description(self) -> str:
        return f"{self.marker}: throwaway test object of smartsync preflight; safe to delete"

    def _create(self, kind: str, path: str, body: dict[str, Any], label: str) -> str:
        result = self.client.request("POST", path, json=body)
        object_id = str((result.body or {}).get("id") or "") if isinstance(result.body, dict) else ""
        if not object_id:
            raise GraphError(result.status, "UnexpectedResponse", f"POST {path} returned no object id")
        self.created.append((kind, object_id, label))
        return object_id

    def _group_body(self, suffix: str, *, unified: bool, bind: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "displayName": f"{self.marker} {suffix}",
            "mailNickname": f"{self.marker}-{suffix}",
            "mailEnabled": unified,
            "securityEnabled": not unified,
            "groupTypes": ["Unified"] if unified else [],
            "description": self._description(),
        }
        if unified:
            body["visibility"] = "Private"
            options = [] if self.config.sync.groups.welcome_email else ["WelcomeEmailDisabled"]
            if self.config.sync.groups.hide_from_outlook:
                options.append("HideGroupInOutlook")
            if options:
                body["resourceBehaviorOptions"] = options
        if bind:
            body["owners@odata.bind"] = [self._ref(self.user.id)]
            body["members@odata.bind"] = [self._ref(self.user.id)]
        return body

    def _wants_unified(self) -> bool:
        groups, teams = self.config.sync.groups, self.config.sync.teams
        kinds = list(groups.kinds) + (list(teams.kinds) if teams.enabled and self.teams else [])
        return any(groups.type_of(kind) == "microsoft365" for kind in kinds)

    def _group_create(self) -> str:
        self.group_id = self._create(
            "group", "/groups", self._group_body("sec", unified=False, bind=True), "security group"
        )
        made = "a security group"
        if self._wants_unified():
            body = self._group_body("m365", unified=True, bind=True)
            self.unified_id = self._create("group", "/groups", body, "Microsoft 365 group")
            options = ", ".join(body.get("resourceBehaviorOptions", [])) or "no behaviour options"
            made += f" and a Microsoft 365 group ({options})"
        return f"{made}, each with 1 owner and 1 member"

    def _patch_owners_members(self) -> str:
        patch_id = self._create(
            "group", "/groups", self._group_body("patch", unified=False, bind=False), "group"
        )
        refs = [self._ref(self.user.id)]
        body = {"owners@odata.bind": refs, "members@odata.bind": refs}
        self._retry_new(functools.partial(self.client.request, "PATCH", f"/groups/{patch_id}", json=body))
        return "1 owner and 1 member in one PATCH"

    def _need_group(self) -> str:
        if self.group_id is None:
            raise _NotTried("group.create did not make the test group")
        return self.group_id

    def _remove_member(self) -> str:
        path = f"/groups/{self._need_group()}/members/{self.user.id}/$ref"
        self._retry_new(functools.partial(self.client.request, "DELETE", path))
        return ""

    def _rename(self) -> str:
        body = {"displayName": f"{self.marker} renamed"}
        self._retry_new(
            functools.partial(self.client.request, "PATCH", f"/groups/{self._need_group()}", json=body)
        )
        return ""

    def _unit_create(self) -> str:
        restricted = self.config.sync.admin_units.restricted_management
        body: dict[str, Any] = {"displayName": f"{self.marker} unit", "description": self._description()}
        if restricted:
            body["isMemberManagementRestricted"] = True
        self.unit_id = self._create("unit", "/directory/administrativeUnits", body, "administrative unit")
        return "restricted-management unit" if restricted else ""

    def _need_unit(self) -> str:
        if self.unit_id is None:
            raise _NotTried("admin_unit.create did not make the test unit")
        return self.unit_id

    def _unit_members(self) -> str:
        unit_id = self._need_unit()
        path = f"/directory/administrativeUnits/{unit_id}/members"
        self._retry_new(
            lambda: self.client.request(
                "POST", f"{path}/$ref", json={"@odata.id": self._ref(self.user.id)}, idempotent=True
            )
        )
        self._retry_new(functools.partial(self.client.request, "DELETE", f"{path}/{self.user.id}/$ref"))
        return "1 member added and removed"

    def _include_group(self) -> str:
        unit_id, group_id = self._need_unit(), self._need_group()
        path = f"/directory/administrativeUnits/{unit_id}/members/$ref"
        ref = {"@odata.id": self._ref(group_id)}
        self._retry_new(functools.partial(self.client.request, "POST", path, json=ref, idempotent=True))
        member = {"@odata.id": self._ref(self.user.id)}
        add = functools.partial(
            self.client.request, "POST", f"/groups/{group_id}/members/$ref", json=member, idempotent=True
        )
        self._retry_new(add)
        return "group placed in the unit, then a member added to it"

    def _education_class(self) -> str:
        body = {
            "displayName": f"{self.marker} class",
            "mailNickname": f"{self.marker}-class",
            "description": self._description(),
            "externalId": self.marker,
            "externalName": f"{self.marker} class",
            "externalSource": "manual",
        }
        self.class_id = class_id = self._create("group", "/education/classes", body, "education class")
        ref = {"@odata.id": self._ref(self.user.id)}
        for rel in ("owners", "members"):
            path = f"/groups/{class_id}/{rel}/$ref"
            self._retry_new(functools.partial(self.client.request, "POST", path, json=ref, idempotent=True))
        return "class created; owner and member added through its group"

    def _retry_new(self, call: Callable[[], GraphResult], *, patience: float | None = None) -> GraphResult:
        """A call naming an object created moments ago may fail until Graph has replicated it.

        Retried `sync.teams.creation_retries` times, or for `patience` seconds (team creation: Graph
        documents up to 15 minutes), `creation_retry_seconds` apart, with progress shown.
        """
        teams = self.config.sync.teams
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except GraphError as exc:
                waited = time.monotonic() - started
                more = waited < patience if patience is not None else attempt <= teams.creation_retries
                if not (_not_replicated(exc) and more):
                    raise
                self.say(
                    f"  Graph has not replicated the new object yet ({exc.status}); retrying in "
                    f"{teams.creation_retry_seconds:g} s ({waited:.0f} s so far)"
                )
                self.sleep(teams.creation_retry_seconds)

    def _team_create(self) -> str:
        teams = self.config.sync.teams
        note = ""
        if teams.template == "educationClass" and "class" in teams.kinds and self.class_id is None:
            # Education classes refused: show whether the advised `template: standard` would work.
            note = "; education classes refused, so tried what `sync.teams.template: standard` does"
        if teams.template == "educationClass" and "class" in teams.kinds and not note:
            assert self.class_id is not None
            group_id, template = self.class_id, "educationClass"
            body = {
                "template@odata.bind": f"{self.graph_v1}/teamsTemplates('educationClass')",
                "group@odata.bind": f"{self.graph_v1}/groups('{group_id}')",
            }
            result = self._retry_new(
                lambda: self.client.request("POST", "/teams", json=body, idempotent=True),
                patience=TEAM_REPLICATION_SECONDS,
            )
        else:
            if self.unified_id is None:
                raise _NotTried("group.create did not make a Microsoft 365 group")
            group_id, template = self.unified_id, "standard"
            result = self._retry_new(
                lambda: self.client.request("PUT", f"/groups/{group_id}/team", json={}),
                patience=TEAM_REPLICATION_SECONDS,
            )
        self._wait(result, "creating the team")
        self.team_id = group_id
        return f"{template} team{note}"

    def _wait(self, result: GraphResult, what: str) -> None:
        """Follow a 202's teamsAsyncOperation until it succeeds (progress shown), fails or times out."""
        location = next((v for k, v in result.headers.items() if k.lower() == "location"), None)
        if result.status != 202 or not location:
            return
        teams = self.config.sync.teams
        started = time.monotonic()
        while True:
            operation = self.client.get(location)
            status = str(operation.get("status") or "")
            if status == "succeeded":
                return
            if status == "failed":
                error = operation.get("error") or {}
                message = error.get("message") if isinstance(error, dict) else None
                raise GraphError(None, "OperationFailed", f"Teams reported {what} failed: {message or error}")
            waited = time.monotonic() - started
            if waited >= max(teams.poll_timeout_seconds, 1.0):
                raise GraphError(
                    None, "OperationTimedOut", f"Teams was still {what} after {waited:.0f} s ({status})"
                )
            self.say(f"  Teams is {what} ({status or 'waiting'}, {waited:.0f} s so far)")
            self.sleep(max(teams.poll_seconds, 0.2))

    def _need_team(self) -> str:
        if self.team_id is None:
            raise _NotTried("team.create did not make the test team")
        return self.team_id

    def _team_archive(self) -> str:
        result = self.client.request("POST", f"/teams/{self._need_team()}/archive", idempotent=True)
        self._wait(result, "archiving the team")
        return ""

    def _team_members(self) -> str:
        team_id = self._need_team()
        member = {
            "@odata.type": "microsoft.graph.aadUserConversationMember",
            "roles": ["owner"],
            "user@odata.bind": f"{self.graph_v1}/users('{self.user.id}')",
        }
        added = self.client.request("POST", f"/teams/{team_id}/members/add", json={"values": [member]})
        removed = self.client.request(
            "POST", f"/teams/{team_id}/members/remove", json={"values": [{**member, "roles": []}]}
        )
        # The test person is the team's only owner, so Graph may keep them: the API answering is what counts.
        return f"add answered {added.status}, remove answered {removed.status}"

    def _credentials(self) -> str:
        credentials = read_credentials(self.client, self.config)
        if credentials is None:
            raise GraphError(
                403,
                "Authorization_RequestDenied",
                "the app may not read its own registration (grant Application.Read.All)",
            )
        problems, soon = expiry_warnings(credentials, datetime.now(UTC))
        if problems:
            raise GraphError(None, "CredentialExpired", problems[0])
        dates = [
            c.expires.date().isoformat()
            for c in credentials
            if c.expires is not None and c.in_use is not False
        ]
        detail = (
            f"in use until {min(dates)}" if dates else f"{len(credentials)} credential(s), no end date in use"
        )
        return detail + (f"; {soon[0]}" if soon else "")

    # -- cleanup --------------------------------------------------------------------------------------

    def sweep(self) -> Cleanup:
        """Delete every preflight object (this run's and any earlier one's), then purge deleted items."""
        left: list[str] = []
        removed: list[str] = []
        units, groups = self._find_units(left), self._find_groups(left)
        for kind, object_id, _label in self.created:
            target = units if kind == "unit" else groups
            target.setdefault(object_id, f"{_label} {object_id}")
        for base, found in (("/directory/administrativeUnits", units), ("/groups", groups)):
            for object_id, label in found.items():
                try:
                    self.client.request("DELETE", f"{base}/{object_id}")
                    removed.append(label)
                except GraphError as exc:
                    if exc.status != 404:
                        left.append(f"{label}: {_answer(exc)}")
        left.extend(self._purge_deleted(removed))
        return Cleanup(not left, tuple(left), tuple(removed))

    def _find_groups(self, left: list[str]) -> dict[str, str]:
        try:
            rows = self.client.get_all(
                "/groups",
                {
                    "$filter": f"startswith(mailNickname,'{PREFLIGHT_MARKER}')",
                    "$select": "id,displayName,mailNickname",
                    "$top": "999",
                },
            )
        except GraphError as exc:
            left.append(f"groups could not be listed: {_answer(exc)}")
            return {}
        return {
            str(r["id"]): f"group {r.get('displayName')}"
            for r in rows
            if is_preflight_name(r.get("mailNickname"))
        }

    def _find_units(self, left: list[str]) -> dict[str, str]:
        try:
            rows = self.client.get_all(
                "/directory/administrativeUnits", {"$select": "id,displayName,description", "$top": "999"}
            )
        except GraphError as exc:
            # Without units in the config the app may not read them; an earlier preflight made none then.
            if self.config.sync.admin_units.enabled or exc.status not in (401, 403):
                left.append(f"administrative units could not be listed: {_answer(exc)}")
            return {}
        return {
            str(r["id"]): f"unit {r.get('displayName')}"
            for r in rows
            if is_preflight_name(r.get("description")) or is_preflight_name(r.get("displayName"))
        }

    def _purge_deleted(self, removed: list[str]) -> list[str]:
        left: list[str] = []
        kinds = [
            ("group", "id,displayName,mailNickname"),
            ("administrativeUnit", "id,displayName,description"),
        ]
        for kind, select in kinds:
            try:
                rows = self.client.get_all(
                    f"/directory/deletedItems/microsoft.graph.{kind}", {"$select": select}
                )
            except GraphError as exc:
                if kind == "administrativeUnit" and not self.config.sync.admin_units.enabled:
                    continue  # the app may not read units; an earlier preflight made none then
                left.append(
                    f"deleted {kind}s could not be listed ({_answer(exc)}); Entra purges them after 30 days"
                )
                continue
            for row in rows:
                names = (row.get("mailNickname"), row.get("description"), row.get("displayName"))
                if not any(is_preflight_name(n) for n in names):
                    continue
                try:
                    self.client.request("DELETE", f"/directory/deletedItems/{row['id']}")
                except GraphError as exc:
                    if exc.status != 404:
                        left.append(
                            f"deleted {kind} {row.get('displayName')} not purged ({_answer(exc)}); "
                            "Entra purges it after 30 days"
                        )
        return left


class _NotTried(Exception):
    """A check that needs an object an earlier check could not make."""


def run_preflight(
    config: Config,
    client: GraphClient,
    user: EntraUser,
    user_source: str,
    *,
    run_id: str,
    teams: bool,
    keep: bool,
    say: Say | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> PreflightReport:
    """Clean up after earlier preflights, run the checks, clean up again (unless `keep`)."""
    say = say or (lambda _message: None)
    preflight = Preflight(config, client, user, run_id=run_id, teams=teams, say=say, sleep=sleep)
    report = PreflightReport(run_id, user.user_principal_name, user_source)
    with interrupts_deferred():
        report.earlier = preflight.sweep()
    if report.earlier.removed:
        say(
            f"removed {len(report.earlier.removed)} object(s) left by an earlier preflight: "
            + ", ".join(report.earlier.removed)
        )
    for left in report.earlier.left:
        say(f"could not remove what an earlier preflight left: {left}")
    finished = False
    try:
        with interrupts_raise():
            report.checks = preflight.run()
        finished = True
    finally:
        if keep and finished:
            report.kept = True
            report.cleanup = Cleanup(True, tuple(f"{label} {oid}" for _, oid, label in preflight.created))
        else:
            say("cleaning up …")
            with interrupts_deferred():
                report.cleanup = preflight.sweep()
    return report
