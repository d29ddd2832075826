"""`check-credentials`: can smartsync sign in, does it hold the permissions its features need, and
when does its secret or certificate expire?

The permission table follows DESIGN §7: the least the enabled features need. Granted permissions
that no enabled feature uses are reported too, because the usual set-up guides ask schools to grant
far more than a roster sync needs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from smartsync.config import Config
from smartsync.graph import GraphClient, GraphError

EXPIRY_WARNING_DAYS = 30

# permission -> what it is for; grouped per feature below.
PERMISSIONS_BY_FEATURE: dict[str, tuple[str, ...]] = {
    "matching users": ("User.Read.All",),
    "groups": ("Group.ReadWrite.All", "GroupMember.ReadWrite.All"),
    "admin units": ("AdministrativeUnit.ReadWrite.All",),
    "teams": ("Team.Create", "Group.ReadWrite.All", "TeamSettings.ReadWrite.All"),
    "class teams (educationClass template)": ("EduRoster.ReadWrite.All",),
}
OPTIONAL = {"Application.Read.All": "secret and certificate expiry warnings"}

# Broader permissions that also grant a required one (so a school that granted them is not blocked).
COVERED_BY: dict[str, tuple[str, ...]] = {
    "User.Read.All": ("User.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
    "Group.ReadWrite.All": ("Directory.ReadWrite.All",),
    "GroupMember.ReadWrite.All": ("Group.ReadWrite.All", "Directory.ReadWrite.All"),
    "AdministrativeUnit.ReadWrite.All": ("Directory.ReadWrite.All",),
    "Application.Read.All": ("Application.ReadWrite.All", "Directory.Read.All", "Directory.ReadWrite.All"),
}


def required_permissions(config: Config) -> dict[str, list[str]]:
    """Each required permission with the enabled features that need it."""
    features = ["matching users"]
    if config.sync.groups.enabled:
        features.append("groups")
    if config.sync.admin_units.enabled:
        features.append("admin units")
    if config.sync.teams.enabled:
        features.append("teams")
        if config.sync.teams.template == "educationClass" and "class" in config.sync.teams.kinds:
            features.append("class teams (educationClass template)")
    out: dict[str, list[str]] = {}
    for feature in features:
        for permission in PERMISSIONS_BY_FEATURE[feature]:
            out.setdefault(permission, []).append(feature)
    return out


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
    unused: list[str] = field(default_factory=list)
    credentials: list[Credential] = field(default_factory=list)
    expiry_known: bool = False
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "granted": self.granted,
            "missing": [{"permission": p, "needed_by": f} for p, f in self.missing.items()],
            "unused": self.unused,
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


def compare_roles(
    granted: Iterable[str], required: Mapping[str, list[str]]
) -> tuple[dict[str, list[str]], list[str]]:
    """(missing permission -> features, granted permissions nothing uses)."""
    have = set(granted)
    missing = {
        p: features
        for p, features in required.items()
        if p not in have and not any(b in have for b in COVERED_BY.get(p, ()))
    }
    used = set(required) | set(OPTIONAL)
    unused = sorted(r for r in have if r not in used)
    return missing, unused


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def read_credentials(client: GraphClient, config: Config) -> list[Credential] | None:
    """The app's secrets and certificates with end dates; None when the app may not read them (403)."""
    client_id = config.tenant.client_id
    try:
        app = client.get(
            f"/applications(appId='{client_id}')", {"$select": "passwordCredentials,keyCredentials"}
        )
    except GraphError as exc:
        if exc.status in (401, 403, 404):
            return None
        raise
    secret = config.tenant.secret() if config.tenant.certificate is None else None
    thumbprint = (config.tenant.certificate.thumbprint or "").upper() if config.tenant.certificate else ""
    out: list[Credential] = []
    for cred in app.get("passwordCredentials") or []:
        hint = cred.get("hint")
        in_use = None if not (secret and hint) else secret.startswith(hint)
        name = cred.get("displayName") or f"secret {hint or cred.get('keyId', '')}".strip()
        out.append(Credential("secret", name, _parse_time(cred.get("endDateTime")), in_use))
    for cred in app.get("keyCredentials") or []:
        ident = str(cred.get("customKeyIdentifier") or "").upper()
        in_use = None if not (thumbprint and ident) else ident == thumbprint
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
                "(App registrations > Certificates & secrets) and update the config."
            )
        elif left <= days:
            warnings.append(
                f"The app's {cred.kind} '{cred.name}' expires on {when} (in {int(left)} days); "
                "add a new one in Entra (App registrations > Certificates & secrets) and update "
                "the config before then."
            )
    return problems, warnings


def check(
    config: Config, roles: Iterable[str], client: GraphClient, now: datetime | None = None
) -> CredentialReport:
    now = now or datetime.now(UTC)
    granted = sorted(set(roles))
    missing, unused = compare_roles(granted, required_permissions(config))
    report = CredentialReport(ok=not missing, granted=granted, missing=missing, unused=unused)
    for permission, features in missing.items():
        report.problems.append(
            f"Missing application permission {permission} (needed by {', '.join(features)}). In Entra: App "
            "registrations > your app > API permissions > Add a permission > Microsoft Graph > Application "
            f"permissions > {permission}, then 'Grant admin consent'."
        )
    if unused:
        report.warnings.append(
            f"Granted but never used by the enabled features: {', '.join(unused)}. Remove them for least "
            "privilege (API permissions > Remove permission)."
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
