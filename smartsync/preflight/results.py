"""What `smartsync preflight` learned about the tenant, kept for `plan` and `run` (DESIGN §10).

`preflight.json` sits next to the journal (mode 0600, written atomically) and holds each check with
Graph's answer and the time it was made. `plan` and `run` read it before they plan: a tenant that
refuses owners in a `PATCH` gets its owners added one at a time; one that refuses education classes
or restricted-unit membership stops the sync with the fix to make, before anything is written. A
run that meets one of these refusals without a preflight records it here too (`record_refusal`), so
every later run adapts from the start.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from smartsync.config import Config
from smartsync.errors import AuthError, ConfigError, SmartsyncError

RESULTS_NAME = "preflight.json"
SCHEMA = "smartsync.preflight/1"
_FILE_MODE = 0o600

# The checks, in the order preflight makes them (the names are part of `preflight --json`).
CHECK_NAMES = (
    "group.create",
    "group.patch_owners_members",
    "group.remove_member",
    "group.rename",
    "admin_unit.create",
    "admin_unit.members",
    "admin_unit.include_group",
    "education_class.create",
    "team.create",
    "team.archive",
    "team.members",
    "credentials.expiry",
)
OWNERS_IN_PATCH = "group.patch_owners_members"
EDUCATION_CLASSES = "education_class.create"
RESTRICTED_MEMBERS = "admin_unit.members"
TEAMS_MEMBERS_API = "team.members"

# The role an app needs to manage members inside a restricted-management unit (Entra's
# "restricted management administrative units" page): Graph's application permissions alone do not.
RESTRICTED_UNIT_ROLE = (
    "assign the app's enterprise application the User Administrator role (and Groups Administrator "
    "when sync.admin_units.include_groups is on) scoped to each restricted unit, in Entra > Roles & "
    "admins > Administrative units > the unit > Roles and administrators; or set "
    "sync.admin_units.restricted_management: false"
)

# What a refusal means for the sync, by check; checks not listed here stop the sync's work (exit 3).
FALLBACKS = {
    OWNERS_IN_PATCH: (
        "smartsync will add owners one at a time (owners bound when a group is created are unaffected; "
        "about 1.14× the first run's writes for a school whose classes are education classes)"
    ),
    TEAMS_MEMBERS_API: (
        "team membership changes go through the group APIs, which can take hours to reach Teams"
    ),
    "credentials.expiry": "no expiry warnings before the app's secret or certificate runs out",
}


def results_path(config: Config) -> Path:
    return config.journal.path.with_name(RESULTS_NAME)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str = ""
    consequence: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail, "consequence": self.consequence}


@dataclass(frozen=True)
class PreflightResults:
    """The last preflight's checks (plus refusals met by runs since), with when they were made."""

    time: str
    run: str
    checks: tuple[CheckResult, ...] = ()
    # Refusals a sync run met and recorded itself: check name -> "run <id> at <time>".
    seen_by_runs: dict[str, str] = field(default_factory=dict)

    def refused(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name and not c.ok), None)

    @property
    def owners_in_patch(self) -> bool:
        return self.refused(OWNERS_IN_PATCH) is None

    @property
    def teams_members_api(self) -> bool:
        """False when Graph refused `POST /teams/{id}/members/add|remove` (the group APIs remain)."""
        return self.refused(TEAMS_MEMBERS_API) is None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "time": self.time,
            "run": self.run,
            "checks": [c.to_dict() for c in self.checks],
            "seen_by_runs": dict(self.seen_by_runs),
        }

    @classmethod
    def from_dict(cls, data: Any) -> PreflightResults:
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            raise ValueError(f"not a {SCHEMA} document")
        checks = tuple(
            CheckResult(
                str(c["name"]), bool(c["ok"]), str(c.get("detail") or ""), str(c.get("consequence") or "")
            )
            for c in data.get("checks") or []
            if isinstance(c, dict) and "name" in c and "ok" in c
        )
        seen = data.get("seen_by_runs") or {}
        return cls(
            str(data.get("time") or ""),
            str(data.get("run") or ""),
            checks,
            {str(k): str(v) for k, v in seen.items()} if isinstance(seen, dict) else {},
        )


def load_results(path: Path, on_warning: Callable[[str], None] | None = None) -> PreflightResults | None:
    """The kept results, or None when preflight never ran (or its file cannot be used: then a warning)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        if on_warning is not None:
            on_warning(f"cannot read {path} ({exc.strerror}); running as if preflight had never run")
        return None
    try:
        return PreflightResults.from_dict(json.loads(text))
    except (ValueError, KeyError, TypeError):
        if on_warning is not None:
            on_warning(
                f"{path} is damaged; running as if preflight had never run (run `smartsync preflight`)"
            )
        return None


def save_results(path: Path, results: PreflightResults) -> None:
    """Write atomically with mode 0600: a reader sees the old file or the new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
    try:
        os.write(fd, (json.dumps(results.to_dict(), indent=2, ensure_ascii=False) + "\n").encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)


def record_refusal(path: Path, name: str, detail: str, run_id: str) -> None:
    """A run met a refusal preflight would have found: keep it so later runs adapt from the start."""
    current = load_results(path) or PreflightResults(time=_now(), run=run_id)
    check = CheckResult(name, False, detail, FALLBACKS.get(name, ""))
    checks = (*(c for c in current.checks if c.name != name), check)
    seen = {**current.seen_by_runs, name: f"run {run_id} at {_now()}"}
    save_results(path, PreflightResults(current.time, current.run, checks, seen))


def _when(results: PreflightResults, name: str) -> str:
    return results.seen_by_runs.get(name) or f"preflight of {results.time}"


def blocking_refusal(config: Config, results: PreflightResults | None) -> SmartsyncError | None:
    """The refusal that keeps this config's sync from doing its job, as the error to stop with."""
    if results is None:
        return None
    teams = config.sync.teams
    edu = results.refused(EDUCATION_CLASSES)
    if edu is not None and teams.enabled and teams.template == "educationClass" and "class" in teams.kinds:
        return ConfigError(
            f"This tenant refused education classes ({_when(results, EDUCATION_CLASSES)}: {edu.detail}), "
            "so class teams cannot use the educationClass template. Set `sync.teams.template: standard` "
            "in the config (or use an education tenant), then run again. Nothing was written."
        )
    restricted = results.refused(RESTRICTED_MEMBERS)
    if (
        restricted is not None
        and config.sync.admin_units.enabled
        and config.sync.admin_units.restricted_management
    ):
        return AuthError(
            f"This tenant refused membership changes in a restricted-management unit "
            f"({_when(results, RESTRICTED_MEMBERS)}: {restricted.detail}). To let smartsync manage them, "
            f"{RESTRICTED_UNIT_ROLE}; then run `smartsync preflight` again. Nothing was written."
        )
    return None


# What a refusal met mid-run changes, for the report (the run records it with `record_refusal`).
MID_RUN = {
    OWNERS_IN_PATCH: "this run and later ones add owners one at a time",
    EDUCATION_CLASSES: (
        "class teams cannot use the educationClass template here; `plan` and `run` stop until "
        "`sync.teams.template: standard` is set"
    ),
}


def met_mid_run(name: str, detail: str) -> str:
    return (
        f"Graph refused {name} ({detail}): {MID_RUN.get(name, 'kept for later runs')} (kept in "
        f"{RESULTS_NAME} next to the journal)."
    )


def adaptations(results: PreflightResults | None) -> list[str]:
    """One line per way this run works around a refusal, for the report's warnings."""
    if results is None:
        return []
    out = []
    for name in (OWNERS_IN_PATCH, TEAMS_MEMBERS_API):
        refused = results.refused(name)
        if refused is not None:
            out.append(
                f"{_upper_first(_when(results, name))} found {name} refused ({refused.detail}): "
                f"{FALLBACKS[name]}."
            )
    return out


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]
