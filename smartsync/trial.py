"""`smartsync simulator seed`: try a school's own config and export against the simulated tenant.

From the school's real config it builds two files:

- a seed for `smartsync simulator serve`: an Entra user for every active roster person, found by the
  config's `users.match` property the way a real tenant would hold them (optionally leaving a few out,
  to show the unmatched-user warnings), and an app granted exactly the permissions the config's
  features need (plus Application.Read.All, for the expiry check);
- a trial config: the school's config with the `tenant` section pointing at the simulator, the journal
  and lock in the trial folder, and `notifications` removed (a trial must not mail the IT team).

The real config is read without its secrets: its `tenant` section is replaced before validation, so
a trial can be prepared on a machine that does not hold the client secret.
"""

from __future__ import annotations

import copy
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from smartsync.config import Config, parse_config
from smartsync.credentials import OPTIONAL, required_permissions
from smartsync.errors import ConfigError
from smartsync.roster.model import Person
from smartsync.roster.sources import read_roster

TRIAL_TENANT = "00000000-0000-4000-8000-0000000071a1"
TRIAL_CLIENT = "00000000-0000-4000-8000-0000000071c1"
# The simulated tenant's own secret: printed on purpose, it opens nothing but the simulator.
TRIAL_SECRET = "simulator-only-not-a-real-secret"
DEFAULT_PORT = 8443


@dataclass(frozen=True)
class Trial:
    seed: dict[str, Any]
    config: dict[str, Any]
    active_people: int
    left_out: int
    roles: list[str]
    base_url: str
    ca_cert: Path


def _read_raw(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(
            f"Config file {path} does not exist; pass the school's config with --config."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys (tenant, source, school, ...)")
    return data


def _source_section(raw: dict[str, Any], config_dir: Path, source: Path | None) -> dict[str, Any]:
    section = dict(raw.get("source") or {})
    if source is not None:
        if section.get("type") == "realsmart-https":
            section = {"type": "realsmart-export"}  # --source names a downloaded copy of that export
        section["path"] = str(source.resolve())
    elif section.get("path") and "${" not in str(section["path"]):
        # The trial config lives elsewhere; a relative path was relative to the real config's folder.
        section["path"] = str((config_dir / str(section["path"])).resolve())
    return section


def _left_out(count: int, leave_out: int) -> set[int]:
    """`leave_out` indexes spread evenly over `count` people, so the warnings are not all one class."""
    if leave_out <= 0 or count == 0:
        return set()
    leave_out = min(leave_out, count)
    step = count / leave_out
    return {min(count - 1, int(step * n + step / 2)) for n in range(leave_out)}


def _user(person: Person) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"smartsync-trial/{person.id}")),
        "userPrincipalName": person.email,
        "mail": person.email,
        "displayName": person.display_name,
        "givenName": person.first_name,
        "surname": person.last_name,
        "employeeId": person.employee_id,
        "accountEnabled": True,
    }


def build_trial(
    config_path: Path,
    trial_dir: Path,
    *,
    source: Path | None = None,
    unmatched: int = 0,
    port: int = DEFAULT_PORT,
    cert_dir: Path | None = None,
) -> Trial:
    """The seed and trial config for `config_path`'s school; reads the roster, writes nothing."""
    raw = _read_raw(config_path)
    trial_dir = trial_dir.resolve()
    base_url = f"https://127.0.0.1:{port}"
    ca_cert = (cert_dir.resolve() if cert_dir is not None else trial_dir / "certs") / "ca.pem"
    trial = copy.deepcopy(raw)
    trial["tenant"] = {
        "tenant_id": TRIAL_TENANT,
        "client_id": TRIAL_CLIENT,
        "client_secret": TRIAL_SECRET,
        "authority_host": base_url,
        "graph_endpoint": base_url,
        "ca_bundle": str(ca_cert),
    }
    trial["source"] = _source_section(raw, config_path.resolve().parent, source)
    journal = {k: v for k, v in dict(raw.get("journal") or {}).items() if k == "retention_days"}
    trial["journal"] = {**journal, "path": str(trial_dir / "changes.jsonl")}
    trial.pop("notifications", None)
    config: Config = parse_config(trial, f"{config_path} (with the simulator's tenant)")
    roster = read_roster(config.source)
    active = sorted((p for p in roster.people if p.active), key=lambda p: p.id)
    skipped = _left_out(len(active), unmatched)
    roles = sorted({*required_permissions(config), *OPTIONAL})
    expires = (datetime.now(UTC) + timedelta(days=365)).strftime("%Y-%m-%dT%H:%M:%SZ")
    seed = {
        "tenant_id": TRIAL_TENANT,
        "app": {
            "client_id": TRIAL_CLIENT,
            "client_secret": TRIAL_SECRET,
            "roles": roles,
            "password_credentials": [{"displayName": "trial", "endDateTime": expires}],
        },
        "users": [_user(person) for index, person in enumerate(active) if index not in skipped],
        "groups": [],
        "administrative_units": [],
    }
    return Trial(seed, trial, len(active), len(skipped), roles, base_url, ca_cert)


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 (a trial config still holds pupils' export path)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text)


def config_text(trial: Trial) -> str:
    header = (
        "# Trial config for `smartsync simulator serve`, written by `smartsync simulator seed`.\n"
        "# The school's config with the simulator's tenant, the journal in this folder and no\n"
        "# notifications. Never point it at the real tenant: make a fresh one with `simulator seed`.\n"
    )
    return header + yaml.safe_dump(trial.config, sort_keys=False, allow_unicode=True)


__all__ = [
    "DEFAULT_PORT",
    "TRIAL_CLIENT",
    "TRIAL_SECRET",
    "TRIAL_TENANT",
    "Trial",
    "build_trial",
    "config_text",
    "write_private",
]
