"""Shared checks for the reliability and security tests and for `make soak`.

A tenant is compared with the roster as plain values: the managed groups (by `mailNickname`) and
administrative units (by marker) that should exist, with their members, owners and teams, against
what the simulator holds. Nothing here calls smartsync's plan or diff, so a bug there cannot hide
itself: the expected picture is built from the desired state alone, the actual one from the
simulator's own state dump.
"""

from __future__ import annotations

import json
import os
import signal
import ssl
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import yaml
from served import served_tenant_section

from smartsync.config import Config
from smartsync.demo import DEMO_SECRET
from smartsync.engine.desired import UserDirectory, build_desired
from smartsync.engine.naming import key_from_au_description, parse_group_description
from smartsync.engine.state import EntraUser
from smartsync.roster.model import Group, Membership, Person, Roster
from smartsync.roster.sample import write_export

PREFIX = "smartsync-"
# The journal op that adds a person to an existing group, per role (creation carries its own people).
ADD_OPS = {"member": "group.members.add", "owner": "group.owners.add"}


@dataclass(frozen=True)
class GroupPicture:
    display_name: str
    unified: bool
    members: tuple[str, ...]
    owners: tuple[str, ...]
    team: bool


@dataclass(frozen=True)
class UnitPicture:
    display_name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class TenantPicture:
    groups: dict[str, GroupPicture]
    units: dict[str, UnitPicture]

    def objects(self) -> int:
        return len(self.groups) + len(self.units) + sum(1 for g in self.groups.values() if g.team)

    def difference(self, other: TenantPicture) -> list[str]:
        """Human-readable differences (self is what should be, other what is), at most a few."""
        out: list[str] = []
        for name, mine, theirs in (("group", self.groups, other.groups), ("unit", self.units, other.units)):
            for key in sorted(set(mine) | set(theirs)):
                if key not in theirs:
                    out.append(f"{name} {key} missing")
                elif key not in mine:
                    out.append(f"{name} {key} not wanted")
                elif mine[key] != _kept_owner_allowed(mine[key], theirs[key]):
                    out.append(f"{name} {key}: want {mine[key]}, have {theirs[key]}")
        return out[:10]


def _kept_owner_allowed(want: Any, have: Any) -> Any:
    """`have`, forgiving the documented rules for a group the roster gives no owner any more.

    Graph never lets the last owner go, so one stays (owner and member); and a team, once made, stays.
    """
    if isinstance(want, GroupPicture) and isinstance(have, GroupPicture) and not want.owners:
        if len(have.owners) == 1:
            members = tuple(m for m in have.members if m not in have.owners)
            have = replace(have, owners=(), members=members)
        return replace(have, team=want.team)
    return have


def entra_users(state: dict[str, Any]) -> list[EntraUser]:
    return [
        EntraUser(u["id"], u["userPrincipalName"], u.get("mail"), u.get("employeeId")) for u in state["users"]
    ]


def expected_picture(state: dict[str, Any], roster: Roster, config: Config, today: date) -> TenantPicture:
    want = build_desired(
        roster, config, UserDirectory.build(entra_users(state), config.users.match), today=today
    )
    groups = {
        g.mail_nickname.lower(): GroupPicture(
            g.display_name,
            g.type == "microsoft365",
            tuple(sorted(u.id for u in g.members)),
            tuple(sorted(u.id for u in g.owners)),
            bool(g.team_template and g.owners) and config.sync.teams.enabled,
        )
        for g in want.groups.values()
    }
    units = {
        u.key: UnitPicture(u.display_name, tuple(sorted(m.id for m in u.members)))
        for u in want.admin_units.values()
    }
    return TenantPicture(groups, units)


def actual_picture(state: dict[str, Any]) -> TenantPicture:
    users = {u["id"] for u in state["users"]}  # owners that are not users (the app itself) are not ours
    groups = {
        str(g["mailNickname"]).lower(): GroupPicture(
            g["displayName"],
            "Unified" in (g.get("groupTypes") or []),
            tuple(sorted(g.get("members") or [])),
            tuple(sorted(o for o in g.get("owners") or [] if o in users)),
            bool(g.get("team")),
        )
        for g in state["groups"]
        if str(g.get("mailNickname") or "").lower().startswith(PREFIX)
        # A team archived at the end of its roster entry is kept on purpose and never synced again.
        and not parse_group_description(g.get("description"))[1]
    }
    units = {
        key: UnitPicture(u["displayName"], tuple(sorted(u.get("members") or [])))
        for u in state["administrative_units"]
        if (key := key_from_au_description(u.get("description")))
    }
    return TenantPicture(groups, units)


def duplicates(state: dict[str, Any]) -> list[str]:
    """Managed objects that exist more than once (same nickname, same marker), which must never happen."""
    nicknames = Counter(str(g.get("mailNickname") or "").lower() for g in state["groups"])
    markers = Counter(
        key for u in state["administrative_units"] if (key := key_from_au_description(u.get("description")))
    )
    return sorted(
        [f"group {n} x{c}" for n, c in nicknames.items() if c > 1 and n.startswith(PREFIX)]
        + [f"unit {k} x{c}" for k, c in markers.items() if c > 1]
    )


def unmanaged_snapshot(state: dict[str, Any]) -> str:
    """Everything smartsync must never change: users, unmanaged groups and units, byte for byte."""
    return json.dumps(
        {
            "users": state["users"],
            "groups": [
                g for g in state["groups"] if not str(g.get("mailNickname") or "").lower().startswith(PREFIX)
            ],
            "units": [
                u for u in state["administrative_units"] if not key_from_au_description(u.get("description"))
            ],
        },
        sort_keys=True,
    )


def read_journal(path: Path) -> list[dict[str, Any]]:
    events = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line torn by a killed process; the journal starts a fresh line after it
        if isinstance(event, dict):
            events.append(event)
    return events


def journal_gaps(state: dict[str, Any], events: list[dict[str, Any]]) -> list[str]:
    """Managed objects, memberships and teams in the tenant that no successful journal line accounts for."""
    address = {u["id"]: u["userPrincipalName"].lower() for u in state["users"]}
    ok = [e for e in events if e.get("event") == "change" and e.get("result") == "ok"]
    created = {(e["op"], e.get("object_id")) for e in ok}
    people = {(e["op"], e.get("object_id"), str(e.get("user") or "").lower(), e.get("role")) for e in ok}
    gaps: list[str] = []

    def recorded(object_id: str, user: str, role: str) -> bool:
        added = (ADD_OPS[role], object_id, user, None)
        return ("group.create", object_id, user, role) in people or added in people

    for group in state["groups"]:
        if not str(group.get("mailNickname") or "").lower().startswith(PREFIX):
            continue
        gid, nick = group["id"], group["mailNickname"]
        if ("group.create", gid) not in created:
            gaps.append(f"group {nick} ({gid}) has no group.create line")
        for role, rel in (("member", "members"), ("owner", "owners")):
            for uid in group.get(rel) or []:
                if uid not in address:
                    continue  # the app's own service principal, which Graph made an owner
                if not recorded(gid, address.get(uid, uid), role):
                    gaps.append(f"{role} {address.get(uid, uid)} of {nick} has no journal line")
        if group.get("team") and ("team.create", gid) not in created:
            gaps.append(f"team of {nick} has no team.create line")
    for unit in state["administrative_units"]:
        if not key_from_au_description(unit.get("description")):
            continue
        uid_ = unit["id"]
        if ("admin_unit.create", uid_) not in created:
            gaps.append(f"unit {unit['displayName']} has no admin_unit.create line")
        for uid in unit.get("members") or []:
            if ("admin_unit.members.add", uid_, address.get(uid, uid), None) not in people:
                who = address.get(uid, uid)
                gaps.append(f"unit member {who} of {unit['displayName']} has no journal line")
    return gaps


# -- a small roster for tests that run the real CLI in a subprocess ---------------------------------


def mini_roster(classes: int = 6, learners_per_class: int = 8) -> Roster:
    """A school small enough that a subprocess run takes about a second: classes, mentor groups, years."""
    people: list[Person] = [
        Person(f"S{n}", "staff", f"staff{n}@mini.example", "Staff", f"Member{n}") for n in range(3)
    ]
    groups: list[Group] = []
    members: list[Membership] = []
    for c in range(classes):
        year = f"Year {7 + c % 2}"
        gid = f"C{c}"
        groups.append(Group(gid, f"{7 + c % 2}X/Ma{c}", "class", subject="Maths", year_group=year))
        members.append(Membership(gid, f"S{c % 3}", "teacher"))
        for n in range(learners_per_class):
            pid = f"L{c}-{n}"
            people.append(Person(pid, "learner", f"learner{c}.{n}@mini.example", "Pupil", f"N{c}x{n}", year))
            members.append(Membership(gid, pid, "learner"))
    groups.append(Group("M1", "7M", "mentor", year_group="Year 7"))
    members.append(Membership("M1", "S0", "mentor"))
    members.extend(Membership("M1", f"L0-{n}", "learner") for n in range(learners_per_class))
    return Roster(tuple(people), tuple(groups), tuple(members))


@dataclass
class ServedTenant:
    """`smartsync simulator serve` running in a subprocess, as an admin would try a config against it."""

    process: subprocess.Popen[str]
    base_url: str
    ca_cert: Path
    request_log: Path

    def state(self) -> dict[str, Any]:
        with httpx.Client(verify=ssl.create_default_context(cafile=str(self.ca_cert))) as http:
            response = http.get(f"{self.base_url}/_simulator/state", timeout=30)
            response.raise_for_status()
            data: dict[str, Any] = response.json()
            return data

    def requests_logged(self) -> int:
        try:
            with self.request_log.open("rb") as log:
                return sum(1 for _ in log)
        except FileNotFoundError:
            return 0


@contextmanager
def served_tenant(
    folder: Path, seed: dict[str, Any], *, extra: tuple[str, ...] = ()
) -> Iterator[ServedTenant]:
    folder.mkdir(parents=True, exist_ok=True)
    seed_path, ready = folder / "seed.json", folder / "ready.json"
    seed_path.write_text(json.dumps(seed), encoding="utf-8")
    command = [
        sys.executable, "-m", "smartsync", "simulator", "serve", "--port", "0", "--state", str(seed_path),
        "--request-log", str(folder / "requests.jsonl"), "--ready-file", str(ready),
        "--cert-dir", str(folder / "certs"), "--time-scale", "1000", *extra,
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not ready.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        if not ready.exists():
            raise RuntimeError(f"simulator did not start: {process.stderr.read() if process.stderr else ''}")
        info = json.loads(ready.read_text(encoding="utf-8"))
        yield ServedTenant(process, info["base_url"], Path(info["ca_cert"]), folder / "requests.jsonl")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def write_cli_config(folder: Path, served: ServedTenant, roster: Roster, **sections: Any) -> Path:
    """An export of `roster` and a config for the served tenant; the secret comes from the environment."""
    write_export(roster, folder / "export")
    data: dict[str, Any] = {
        "tenant": served_tenant_section(served.base_url, served.ca_cert),
        "source": {"type": "realsmart-export", "path": str(folder / "export")},
        "school": {"code": "MIN", "name": "Mini School"},
        "journal": {"path": str(folder / "journal" / "changes.jsonl")},
        "sync": {"teams": {"creation_retry_seconds": 0, "poll_seconds": 0, "poll_timeout_seconds": 5}},
        "graph": {"time_scale": 1000},  # the served tenant's clock (`--time-scale 1000`): quota windows too
    }
    for name, value in sections.items():
        data[name] = {**data.get(name, {}), **value}
    path = folder / "smartsync.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    path.chmod(0o600)
    return path


def cli_env(secret: str = DEMO_SECRET) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTSYNC_")}
    env["SMARTSYNC_CLIENT_SECRET"] = secret
    return env


def cli_command(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "smartsync", "--config", str(config), *args]


def run_cli(config: Path, *args: str, secret: str = DEMO_SECRET) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cli_command(config, *args), capture_output=True, text=True, env=cli_env(secret), timeout=180
    )


@dataclass(frozen=True)
class KillOutcome:
    """What one SIGKILL round found: whether the kill landed mid-apply, and what the reruns left."""

    killed: bool
    applied_before_kill: int
    reruns: int
    problems: list[str]
    duplicates: list[str]
    unmanaged_changed: bool
    objects: int
    # Changes the tenant holds without an `ok` journal line once the reruns have reconciled.
    journal_gaps: int = 0


def writes_logged(log: Path) -> int:
    """Write requests the served tenant has handled so far (its request log is written as it goes)."""
    try:
        text = log.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return sum(1 for line in text.splitlines() if '"method": "GET"' not in line and '"$batch"' not in line)


def sigkill_round(folder: Path, roster: Roster, kill_after_writes: int) -> KillOutcome:
    """Serve a tenant, SIGKILL `smartsync run` once it has applied that many writes, rerun up to twice."""
    from smartsync.config import load_config
    from smartsync.demo import demo_seed

    with served_tenant(folder / "server", demo_seed(roster)) as served:
        config_path = write_cli_config(folder, served, roster)
        os.environ["SMARTSYNC_CLIENT_SECRET"] = DEMO_SECRET
        try:
            config = load_config(config_path)[0]
        finally:
            del os.environ["SMARTSYNC_CLIENT_SECRET"]
        today = date.today()  # the CLI plans for today's academic year
        before = unmanaged_snapshot(served.state())
        process = subprocess.Popen(
            cli_command(config_path, "run", "--json"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
        )
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if writes_logged(served.request_log) >= kill_after_writes:
                process.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
        process.communicate(timeout=60)
        killed = process.returncode == -signal.SIGKILL
        applied = writes_logged(served.request_log)
        problems: list[str] = ["not run"]
        reruns = 0
        while problems and reruns < 2:
            reruns += 1
            rerun = run_cli(config_path, "run", "--json")
            state = served.state()
            problems = expected_picture(state, roster, config, today).difference(actual_picture(state))
            if rerun.returncode not in (0, 1):
                problems.append(f"rerun exit {rerun.returncode}: {rerun.stderr[-500:]}")
        return KillOutcome(
            killed,
            applied,
            reruns,
            problems,
            duplicates(state),
            unmanaged_snapshot(state) != before,
            actual_picture(state).objects(),
            len(journal_gaps(state, read_journal(config.journal.path))),
        )
