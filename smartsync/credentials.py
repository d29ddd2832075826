"""`check-credentials`: can smartsync sign in, does it hold the permissions its features need, and
when does its secret or certificate expire?

The permission table follows DESIGN §7: the least the enabled features need. Granted permissions
that no enabled feature uses are reported too, because the usual set-up guides ask schools to grant
far more than a roster sync needs. A broad permission that stands in for a narrow one (say
Directory.ReadWrite.All instead of AdministrativeUnit.ReadWrite.All) keeps the run working, so it is
a warning that names the narrow permission to grant before removing the broad one.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smartsync.config import Config
from smartsync.graph import GraphClient, GraphError

EXPIRY_WARNING_DAYS = 30
SECRETS_PAGE = "App registrations > your app > Certificates & secrets"

# What each feature needs, from the Permissions tables of the Graph v1.0 reference (DESIGN §7).
PERMISSIONS_BY_FEATURE: dict[str, tuple[str, ...]] = {
    "matching users": ("User.Read.All",),
    "groups": ("Group.ReadWrite.All", "GroupMember.ReadWrite.All"),
    "admin units": ("AdministrativeUnit.ReadWrite.All",),
    "teams": ("Team.Create", "Group.ReadWrite.All"),
    "archiving teams (removal.team: archive)": ("TeamSettings.ReadWrite.All",),
    "class teams (educationClass template)": ("EduRoster.ReadWrite.All",),
    # sync.users: create, update, disable and delete accounts; the verified domains are read before
    # any account is created or renamed.
    "accounts (sync.users)": ("User.ReadWrite.All", "Domain.Read.All"),
}
OPTIONAL = {"Application.Read.All": "secret and certificate expiry warnings"}
# Optional for teams: membership changes of groups with a team through the Teams membership API,
# which reach Teams in minutes; without it they go through the group API and take hours.
TEAMS_MEMBERSHIP = "TeamMember.ReadWrite.All"
OPTIONAL_FOR_TEAMS = {TEAMS_MEMBERSHIP: "membership changes that reach Teams in minutes (teams)"}

# Broader permissions that also grant a required one (so a school that granted them is not blocked).
# Graph accepts Group.ReadWrite.All and Directory.ReadWrite.All for creating and archiving teams only
# "for backward compatibility", so those stand-ins are warned about like any other.
COVERED_BY: dict[str, tuple[str, ...]] = {
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Group.ReadWrite.All": ("Directory.ReadWrite.All",),
    "GroupMember.ReadWrite.All": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "AdministrativeUnit.ReadWrite.All": ("Directory.ReadWrite.All",),
    "Team.Create": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "TeamSettings.ReadWrite.All": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "Application.Read.All": ("Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "User.ReadWrite.All": ("Directory.ReadWrite.All",),
    "Domain.Read.All": ("Domain.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
}
BACKWARD_COMPATIBLE_ONLY = frozenset({"Team.Create", "TeamSettings.ReadWrite.All"})


def enabled_features(config: Config) -> list[str]:
    """The features of PERMISSIONS_BY_FEATURE that this config switches on."""
    features = ["matching users"]
    if config.sync.groups.enabled:
        features.append("groups")
    if config.sync.admin_units.enabled:
        features.append("admin units")
    if config.sync.teams.enabled:
        features.append("teams")
        if config.removal.team == "archive":
            features.append("archiving teams (removal.team: archive)")
        if config.sync.teams.template == "educationClass" and "class" in config.sync.teams.kinds:
            features.append("class teams (educationClass template)")
    if config.sync.users is not None:
        features.append("accounts (sync.users)")
    return features


def optional_permissions(config: Config) -> dict[str, str]:
    """Permissions the enabled features use when granted and do without otherwise, with what they give."""
    return {**OPTIONAL, **(OPTIONAL_FOR_TEAMS if config.sync.teams.enabled else {})}


def required_permissions(config: Config) -> dict[str, list[str]]:
    """Each required permission with the enabled features that need it."""
    out: dict[str, list[str]] = {}
    for feature in enabled_features(config):
        for permission in PERMISSIONS_BY_FEATURE[feature]:
            out.setdefault(permission, []).append(feature)
    return out


_FEATURE_OF_OP = {"team.create": "teams", "team.archive": "archiving teams (removal.team: archive)"}


def _feature_of(op: str) -> str | None:
    if op in _FEATURE_OF_OP:
        return _FEATURE_OF_OP[op]
    if op.startswith("group."):
        return "groups"
    return "admin units" if op.startswith("admin_unit.") else None


def plan_features(changes: Iterable[Any]) -> list[str]:
    """The features of PERMISSIONS_BY_FEATURE that these plan changes use (by their `op`)."""
    features: list[str] = []
    for change in changes:
        wanted = [_feature_of(str(change.op))]
        group = getattr(change, "group", None)
        if change.op == "group.create" and group is not None and group.education_class:
            wanted.append("class teams (educationClass template)")
        features += [f for f in wanted if f is not None and f not in features]
    return features


def missing_for_plan(granted: Iterable[str], changes: Iterable[Any]) -> dict[str, list[str]]:
    """Each permission the plan's changes need that the token does not grant -> the features needing it."""
    required: dict[str, list[str]] = {}
    for feature in plan_features(changes):
        for permission in PERMISSIONS_BY_FEATURE[feature]:
            required.setdefault(permission, []).append(feature)
    return compare_roles(granted, required).missing


def missing_permission_message(missing: Mapping[str, list[str]]) -> str:
    """What `run` says when the token lacks a permission the plan needs (before anything is written)."""
    parts = [f"{permission} (needed by {', '.join(features)})" for permission, features in missing.items()]
    first = next(iter(missing))
    return (
        f"The app lacks the application permission{'s' if len(missing) > 1 else ''} {'; '.join(parts)} "
        "that this run's changes need. " + _grant_advice(first) + " Then run "
        "`smartsync check-credentials` and run again."
    )


@dataclass(frozen=True)
class RoleComparison:
    """The token's roles against what the enabled features need."""

    missing: dict[str, list[str]]  # permission -> features that need it; nothing grants it
    stand_ins: dict[str, str]  # required (or optional) permission not granted -> broader one that covers it
    unused: list[str]  # granted, and neither required, optional nor standing in for anything

    def broader(self, required: Mapping[str, list[str]]) -> dict[str, list[str]]:
        """Granted broad permissions that only stand in for narrow ones -> the narrow ones."""
        out: dict[str, list[str]] = {}
        for narrow, broad in sorted(self.stand_ins.items()):
            if broad not in required:
                out.setdefault(broad, []).append(narrow)
        return out


def compare_roles(
    granted: Iterable[str], required: Mapping[str, list[str]], optional: Mapping[str, str] = OPTIONAL
) -> RoleComparison:
    have = set(granted)
    missing: dict[str, list[str]] = {}
    stand_ins: dict[str, str] = {}
    wanted = {**{p: list(f) for p, f in required.items()}, **{p: [] for p in optional if p not in required}}
    for permission, features in wanted.items():
        if permission in have:
            continue
        covering = [b for b in COVERED_BY.get(permission, ()) if b in have]
        if covering:
            # A stand-in that is needed anyway is the one doing the work; else the narrowest granted.
            stand_ins[permission] = next((b for b in covering if b in required), covering[0])
        elif permission in required:
            missing[permission] = features
    known = set(required) | set(optional) | set(stand_ins.values())
    unused = sorted(r for r in have if r not in known)
    return RoleComparison(missing, stand_ins, unused)


@dataclass(frozen=True)
class Credential:
    kind: str  # secret | certificate
    name: str
    expires: datetime | None
    in_use: bool | None  # None: cannot tell which credential the config uses

    def days_left(self, now: datetime) -> float | None:
        return None if self.expires is None else (self.expires - now) / timedelta(days=1)


@dataclass
class CredentialReport:
    ok: bool
    granted: list[str] = field(default_factory=list)
    missing: dict[str, list[str]] = field(default_factory=dict)
    stand_ins: dict[str, str] = field(default_factory=dict)
    unused: list[str] = field(default_factory=list)
    optional: dict[str, bool] = field(default_factory=dict)  # optional permission -> granted
    credentials: list[Credential] = field(default_factory=list)
    expiry_known: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "signed_in": True,
            "error": None,
            "granted": self.granted,
            "missing": [{"permission": p, "needed_by": f} for p, f in self.missing.items()],
            "stand_ins": [{"permission": p, "granted_instead": b} for p, b in self.stand_ins.items()],
            "unused": self.unused,
            "optional": [{"permission": p, "granted": g} for p, g in self.optional.items()],
            "expiry_known": self.expiry_known,
            "credentials": [
                {
                    "kind": c.kind,
                    "name": c.name,
                    "expires": c.expires.isoformat().replace("+00:00", "Z") if c.expires else None,
                    "in_use": c.in_use,
                }
                for c in self.credentials
            ],
            "problems": self.problems,
            "warnings": self.warnings,
        }


def sign_in_failure(code: str | None, message: str, *, signed_in: bool = False) -> dict[str, Any]:
    """The `--json` document when the check could not finish (no token, or Graph failed): the same keys,
    nothing known beyond the error."""
    return {
        "ok": False,
        "signed_in": signed_in,
        "error": {"code": code, "message": message},
        "granted": [],
        "missing": [],
        "stand_ins": [],
        "unused": [],
        "optional": [],
        "expiry_known": False,
        "credentials": [],
        "problems": [message],
        "warnings": [],
    }


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def key_thumbprints(cred: Mapping[str, Any]) -> set[str]:
    """SHA-1 thumbprints (hex, upper case) a keyCredential can be recognised by.

    `customKeyIdentifier` is Edm.Binary, so Graph sends base64 of the thumbprint's bytes (the portal
    sets it so); some tools store the hex text instead. `key` is the certificate itself (base64 DER).
    """
    out: set[str] = set()
    ident = str(cred.get("customKeyIdentifier") or "").strip()
    if ident:
        out.add(ident.replace(":", "").upper())
        with contextlib.suppress(binascii.Error, ValueError):
            out.add(base64.b64decode(ident, validate=True).hex().upper())
    key = cred.get("key")
    if isinstance(key, str) and key:
        with contextlib.suppress(binascii.Error, ValueError):
            out.add(hashlib.sha1(base64.b64decode(key)).hexdigest().upper())
    return out


def read_credentials(client: GraphClient, config: Config) -> list[Credential] | None:
    """The app's secrets and certificates with end dates; None when the app may not read them (403)."""
    from smartsync.graph.auth import certificate_thumbprint

    client_id = config.tenant.client_id
    try:
        app = client.get(
            f"/applications(appId='{client_id}')", {"$select": "passwordCredentials,keyCredentials"}
        )
    except GraphError as exc:
        if exc.status in (401, 403, 404):
            return None
        raise
    certificate = config.tenant.certificate
    secret = config.tenant.secret() if certificate is None else None
    thumbprint = certificate_thumbprint(certificate) if certificate is not None else None
    out: list[Credential] = []
    for cred in app.get("passwordCredentials") or []:
        hint = cred.get("hint")
        # A config that signs in with a certificate uses none of the secrets.
        in_use = (
            False if certificate is not None else None if not (secret and hint) else secret.startswith(hint)
        )
        name = cred.get("displayName") or f"secret {hint or cred.get('keyId', '')}".strip()
        out.append(Credential("secret", name, _parse_time(cred.get("endDateTime")), in_use))
    for cred in app.get("keyCredentials") or []:
        known = key_thumbprints(cred)
        in_use = False if certificate is None else None if not (thumbprint and known) else thumbprint in known
        ident = str(cred.get("customKeyIdentifier") or cred.get("keyId") or "")
        name = cred.get("displayName") or f"certificate {ident[:8]}"
        out.append(Credential("certificate", name, _parse_time(cred.get("endDateTime")), in_use))
    return out


def expiry_warnings(
    credentials: Iterable[Credential], now: datetime, *, days: int = EXPIRY_WARNING_DAYS
) -> tuple[list[str], list[str]]:
    """(problems: expired credentials in use, warnings: ones expiring within `days`)."""
    problems: list[str] = []
    warnings: list[str] = []
    for cred in credentials:
        left = cred.days_left(now)
        if left is None or cred.in_use is False:
            continue
        when = cred.expires.date().isoformat() if cred.expires else "?"
        if left < 0:
            target = problems if cred.in_use else warnings
            target.append(
                f"The app's {cred.kind} '{cred.name}' expired on {when}; add a new one in Entra "
                f"({SECRETS_PAGE}) and update the config."
            )
        elif left <= days:
            whole = math.ceil(left)
            plural = "s" if whole != 1 else ""
            warnings.append(
                f"The app's {cred.kind} '{cred.name}' expires on {when} (in {whole} day{plural}); "
                f"add a new one in Entra ({SECRETS_PAGE}) and update the config before then."
            )
    return problems, warnings


def _grant_advice(permission: str) -> str:
    return (
        f"In Entra: {SECRETS_PAGE.replace('Certificates & secrets', 'API permissions')} > Add a permission > "
        f"Microsoft Graph > Application permissions > {permission}, then 'Grant admin consent for <your "
        "organisation>'."
    )


def check(
    config: Config, roles: Iterable[str], client: GraphClient, now: datetime | None = None
) -> CredentialReport:
    now = now or datetime.now(UTC)
    granted = sorted(set(roles))
    required = required_permissions(config)
    optional = optional_permissions(config)
    roles_vs_needs = compare_roles(granted, required, optional)
    report = CredentialReport(
        ok=not roles_vs_needs.missing,
        granted=granted,
        missing=roles_vs_needs.missing,
        stand_ins=roles_vs_needs.stand_ins,
        unused=roles_vs_needs.unused,
    )
    for permission, features in roles_vs_needs.missing.items():
        report.problems.append(
            f"Missing application permission {permission} (needed by {', '.join(features)}). "
            + _grant_advice(permission)
        )
    for broad, narrower in roles_vs_needs.broader(required).items():
        report.warnings.append(
            f"{broad} is broader than smartsync needs; it stands in for {', '.join(narrower)}. For least "
            f"privilege grant {', '.join(narrower)} (with admin consent), then remove {broad}."
        )
    for narrow, covering in sorted(roles_vs_needs.stand_ins.items()):
        if covering in required and narrow in BACKWARD_COMPATIBLE_ONLY:
            report.warnings.append(
                f"{narrow} is not granted; {covering} covers it for now, but Graph accepts that only for "
                f"backward compatibility. Grant {narrow} (with admin consent)."
            )
    if TEAMS_MEMBERSHIP in optional and TEAMS_MEMBERSHIP not in granted:
        report.warnings.append(
            f"{TEAMS_MEMBERSHIP} is not granted (optional): membership changes of groups that have a team go "
            "through the group API and take hours to reach Teams (owners up to 2 h, members up to 48 h). "
            "Grant it for changes that reach Teams in minutes. " + _grant_advice(TEAMS_MEMBERSHIP)
        )
    report.optional = {p: p in granted for p in optional}
    if roles_vs_needs.unused:
        report.warnings.append(
            f"Granted but never used by the enabled features: {', '.join(roles_vs_needs.unused)}. Remove "
            "them for least privilege (API permissions > the permission's ... menu > Remove permission)."
        )
    credentials = read_credentials(client, config)
    if credentials is None:
        report.warnings.append(
            "Secret and certificate expiry unknown: the app cannot read its own registration. Grant "
            "Application.Read.All to get expiry warnings (optional)."
        )
    else:
        report.expiry_known = True
        report.credentials = credentials
        problems, warnings = expiry_warnings(credentials, now)
        report.problems.extend(problems)
        report.warnings.extend(warnings)
        if problems:
            report.ok = False
    return report
