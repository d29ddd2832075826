"""The YAML config (DESIGN §3): pydantic models, `${ENV}` expansion, clear errors.

Unknown keys are errors so that a typo never silently disables a feature. Every error names the key
path (`sync.groups.kinds[2]`) and says what was expected. Secrets are held as `SecretStr` so that
they never appear in a repr, a log line or an exception.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator

from smartsync.errors import ConfigError

GroupKind = Literal["class", "mentor", "year", "group", "all_learners", "all_staff"]
GROUP_KINDS: tuple[str, ...] = ("class", "mentor", "year", "group", "all_learners", "all_staff")
AdminUnitKind = Literal["learners", "staff", "mentors", "year_groups"]
GroupTypeName = Literal["security", "microsoft365"]
Cloud = Literal["global", "usgov", "usgov-dod", "china"]

DEFAULT_CONFIG_PATHS = ("./smartsync.yaml", "/etc/smartsync/config.yaml")

# Login and Graph endpoints per national cloud (Microsoft's national cloud deployments table).
CLOUD_ENDPOINTS: dict[str, tuple[str, str]] = {
    "global": ("https://login.microsoftonline.com", "https://graph.microsoft.com"),
    "usgov": ("https://login.microsoftonline.us", "https://graph.microsoft.us"),
    "usgov-dod": ("https://login.microsoftonline.us", "https://dod-graph.microsoft.us"),
    "china": ("https://login.chinacloudapi.cn", "https://microsoftgraph.chinacloudapi.cn"),
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Certificate(_Model):
    path: Path
    thumbprint: str | None = None
    passphrase: SecretStr | None = None


class TenantConfig(_Model):
    tenant_id: str
    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: Path | None = None
    certificate: Certificate | None = None
    cloud: Cloud = "global"
    authority_host: str | None = None
    graph_endpoint: str | None = None
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _one_credential(self) -> TenantConfig:
        given = [
            n for n in ("client_secret", "client_secret_file", "certificate") if getattr(self, n) is not None
        ]
        if len(given) > 1:
            raise ValueError(
                f"give only one of client_secret, client_secret_file, certificate (got {', '.join(given)})"
            )
        return self

    @property
    def login_url(self) -> str:
        return (self.authority_host or CLOUD_ENDPOINTS[self.cloud][0]).rstrip("/")

    @property
    def graph_url(self) -> str:
        return (self.graph_endpoint or CLOUD_ENDPOINTS[self.cloud][1]).rstrip("/")

    def secret(self) -> str | None:
        """The client secret, read from the file when `client_secret_file` is used."""
        if self.client_secret is not None:
            return self.client_secret.get_secret_value()
        if self.client_secret_file is not None:
            try:
                return self.client_secret_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(
                    f"tenant.client_secret_file: cannot read {self.client_secret_file} ({exc.strerror})."
                ) from None
        return None


SourceType = Literal["realsmart-export", "realsmart-https", "oneroster-csv", "sds-csv"]


class SourceConfig(_Model):
    type: SourceType = "realsmart-export"
    path: Path | None = None
    url: str | None = None
    token: SecretStr | None = None
    # realsmart-https: TLS trust for a re-signing proxy or a private CA, and how patient to be.
    ca_bundle: Path | None = None
    timeout_seconds: float = Field(default=60.0, gt=0)
    retries: int = Field(default=3, ge=0, le=10)
    # oneroster-csv / sds-csv: grade -> year group entries that replace the US default (grade 9 is
    # Year 10); and the domain appended to usernames that are not sign-in addresses (SDS v1 "OKlein").
    grade_map: dict[str, str] = Field(default_factory=dict)
    username_domain: str | None = Field(default=None, pattern=r"^@?[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")

    @model_validator(mode="before")
    @classmethod
    def _grade_keys_as_text(cls, data: Any) -> Any:
        # YAML reads `9: Year 10` with an integer key; grades are text (`09`, `KG`).
        if isinstance(data, dict) and isinstance(data.get("grade_map"), dict):
            grades = {str(k): "" if v is None else str(v) for k, v in data["grade_map"].items()}
            return {**data, "grade_map": grades}
        return data

    @model_validator(mode="after")
    def _location(self) -> SourceConfig:
        if self.type == "realsmart-https":
            if not self.url:
                raise ValueError("source.url is required for type realsmart-https")
            if not self.url.lower().startswith("https://"):
                raise ValueError(
                    "source.url must start with https:// (the bearer token must not travel in clear)"
                )
        elif self.path is None:
            raise ValueError(f"source.path is required for type {self.type}")
        return self


class SchoolConfig(_Model):
    code: str = Field(min_length=1, max_length=16, pattern=r"^[A-Za-z0-9_]+$")
    name: str = ""


class UsersConfig(_Model):
    match: Literal["userPrincipalName", "mail", "employeeId"] = "userPrincipalName"


GroupTypeKey = Literal["class", "mentor", "year", "group", "all_learners", "all_staff", "default"]
AdminUnitNameKey = Literal["learners", "staff", "mentors", "year_group"]


def _all_kinds() -> list[GroupKind]:
    return ["class", "mentor", "year", "group", "all_learners", "all_staff"]


def _class_only() -> list[GroupKind]:
    return ["class"]


def _default_group_types() -> dict[GroupTypeKey, GroupTypeName]:
    return {"class": "microsoft365", "default": "security"}


def _default_au_units() -> list[AdminUnitKind]:
    return ["learners", "staff", "mentors", "year_groups"]


def _default_group_names() -> dict[GroupKind, str]:
    return {
        "class": "{name} {subject}",
        "mentor": "Mentor group {name}",
        "year": "{year_group} learners",
        "group": "{name}",
        "all_learners": "All learners",
        "all_staff": "All staff",
    }


class GroupsConfig(_Model):
    enabled: bool = True
    kinds: list[GroupKind] = Field(default_factory=_all_kinds)
    type: dict[GroupTypeKey, GroupTypeName] = Field(default_factory=_default_group_types)
    names: dict[GroupKind, str] = Field(default_factory=_default_group_names)
    welcome_email: bool = False
    hide_from_outlook: bool = True

    def type_of(self, kind: str) -> GroupTypeName:
        types: dict[str, GroupTypeName] = {k: v for k, v in self.type.items()}
        return types.get(kind, types.get("default", "security"))

    def name_template(self, kind: str) -> str:
        names: dict[str, str] = {k: v for k, v in _default_group_names().items()}
        names.update({k: v for k, v in self.names.items()})
        return names[kind]


def _default_au_names() -> dict[AdminUnitNameKey, str]:
    return {"learners": "Learners", "staff": "Staff", "mentors": "Mentors", "year_group": "{year_group}"}


class AdminUnitsConfig(_Model):
    enabled: bool = True
    units: list[AdminUnitKind] = Field(default_factory=_default_au_units)
    names: dict[AdminUnitNameKey, str] = Field(default_factory=_default_au_names)
    restricted_management: bool = False
    # Also place each year's managed groups (classes, mentor and year groups) in that year's unit.
    include_groups: bool = False

    def name_template(self, kind: str) -> str:
        names: dict[str, str] = {k: v for k, v in _default_au_names().items()}
        names.update({k: v for k, v in self.names.items()})
        return names[kind]


class TeamsConfig(_Model):
    enabled: bool = True
    kinds: list[GroupKind] = Field(default_factory=_class_only)
    template: Literal["educationClass", "standard"] = "educationClass"
    # Owners for a team whose class has no teacher in the roster (sign-in addresses); without them
    # such a class gets a warning and no team until the roster names a teacher.
    fallback_owners: list[str] = Field(default_factory=list)
    # Display-name prefix for archived teams; {academic_year} is the year the class belonged to.
    archive_prefix: str = "Archived {academic_year}: "
    # A new group may not be usable for a team for up to 15 minutes (Graph replication): retry this
    # many times this far apart, then leave it pending for the next run.
    creation_retries: int = Field(default=3, ge=0, le=10)
    creation_retry_seconds: float = Field(default=10.0, ge=0)
    # Teams creates a team asynchronously: poll its operation this often, for at most this long.
    poll_seconds: float = Field(default=5.0, ge=0)
    poll_timeout_seconds: float = Field(default=120.0, ge=0)

    def template_for(self, kind: str) -> str:
        return self.template if kind == "class" else "standard"


class SyncConfig(_Model):
    prefix: str = Field(default="smartsync", min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_]+$")
    groups: GroupsConfig = Field(default_factory=GroupsConfig)
    admin_units: AdminUnitsConfig = Field(default_factory=AdminUnitsConfig)
    teams: TeamsConfig = Field(default_factory=TeamsConfig)


_MONTH_DAY = r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"


class YearConfig(_Model):
    """The academic year: classes belong to one, so September's classes are new objects."""

    # e.g. "2025-26"; by default derived from today's date and `start`.
    academic_year: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}$")
    start: str = Field(default="09-01", pattern=_MONTH_DAY)
    # Kinds whose groups belong to one academic year (new objects each September).
    scoped_kinds: list[GroupKind] = Field(default_factory=_class_only)
    # From this month-day until the year's start, runs add but never remove, delete or archive.
    quiet_from: str | None = Field(default="08-01", pattern=_MONTH_DAY)


class RemovalConfig(_Model):
    group: Literal["delete", "keep"] = "delete"
    team: Literal["archive", "delete", "keep"] = "archive"


class SafetyConfig(_Model):
    max_deletes: int = Field(default=20, ge=0)
    max_membership_removal_fraction: float = Field(default=0.25, ge=0.0, le=1.0)
    max_unmatched_fraction: float = Field(default=0.5, ge=0.0, le=1.0)


class JournalConfig(_Model):
    path: Path = Path("/var/log/smartsync/changes.jsonl")
    retention_days: int = Field(default=400, ge=1)
    lock_path: Path | None = None

    @property
    def lock_file(self) -> Path:
        return self.lock_path or self.path.with_name(self.path.name + ".lock")


class GraphConfig(_Model):
    """How smartsync talks to Graph; the defaults suit every tenant size."""

    concurrency: int = Field(default=4, ge=1, le=16)
    timeout_seconds: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=6, ge=0, le=20)
    # `daily`: the first run of each day reads everything, later ones only what changed (delta.py).
    full_read: Literal["daily", "every-run"] = "daily"


NotifyOn = Literal["ok", "failed", "partial", "refused", "expiring"]


def _default_notify_on() -> list[NotifyOn]:
    return ["failed", "partial", "refused", "expiring"]


class EmailNotificationConfig(_Model):
    """SMTP delivery; give the password as `${SMTP_PASSWORD}` so the file holds no secret."""

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535)
    starttls: bool | None = None
    ssl: bool = False
    username: str | None = None
    password: SecretStr | None = None
    sender: str = Field(alias="from", min_length=3)
    to: list[str] = Field(min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> EmailNotificationConfig:
        if self.ssl and self.starttls:
            raise ValueError("give ssl: true (usually port 465) or starttls: true (port 587), not both")
        return self

    @property
    def use_starttls(self) -> bool:
        return not self.ssl if self.starttls is None else self.starttls

    @property
    def effective_port(self) -> int:
        if self.port is not None:
            return self.port
        return 465 if self.ssl else 587 if self.use_starttls else 25


class WebhookNotificationConfig(_Model):
    # Teams and Slack webhook URLs grant posting rights by themselves, so the URL is kept secret too.
    url: SecretStr
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_seconds: float = Field(default=10.0, gt=0)
    ca_bundle: Path | None = None

    @model_validator(mode="after")
    def _http_url(self) -> WebhookNotificationConfig:
        if not re.match(r"^https?://[^/\s]+", self.url.get_secret_value()):
            raise ValueError("webhook url must start with https:// (or http:// for a relay on the same host)")
        return self


class NotificationsConfig(_Model):
    """Who hears about a run: on failure, partial failure, safety refusal and coming secret expiry."""

    on: list[NotifyOn] = Field(default_factory=_default_notify_on)
    email: EmailNotificationConfig | None = None
    webhook: WebhookNotificationConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _yaml_on_key(cls, data: Any) -> Any:
        # YAML 1.1 reads a bare `on:` key as the boolean true; take it back as the `on` list.
        if isinstance(data, dict) and True in data and "on" not in data:
            return {("on" if key is True else key): value for key, value in data.items()}
        return data

    @model_validator(mode="after")
    def _some_channel(self) -> NotificationsConfig:
        if self.email is None and self.webhook is None:
            raise ValueError("give notifications.email, notifications.webhook or both")
        return self


class Config(_Model):
    tenant: TenantConfig
    source: SourceConfig
    school: SchoolConfig
    users: UsersConfig = Field(default_factory=UsersConfig)
    sync: SyncConfig = Field(default_factory=SyncConfig)
    year: YearConfig = Field(default_factory=YearConfig)
    removal: RemovalConfig = Field(default_factory=RemovalConfig)
    safety: SafetyConfig = Field(default_factory=SafetyConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    graph: GraphConfig = Field(default_factory=GraphConfig)
    notifications: NotificationsConfig | None = None


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand_env(value: Any, path: str, missing: list[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                missing.append(f"{path}: environment variable {name} is not set")
                return ""
            return os.environ[name]

        return _ENV_REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: _expand_env(v, f"{path}.{k}" if path else str(k), missing) for k, v in value.items()}
    if isinstance(value, list):
        return [_expand_env(v, f"{path}[{i}]", missing) for i, v in enumerate(value)]
    return value


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _describe(err: dict[str, Any]) -> str:
    kind = err["type"]
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "literal_error":
        expected = str(ctx.get("expected", "")).replace("'", "").replace(" or ", ", ")
        return f"{given!r} is not one of {expected}"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against config.example.yaml)"
    if kind == "missing":
        return "required key is missing"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    return f"{err['msg']} (got {given!r})" if not isinstance(given, dict | list) else str(err["msg"])


def format_validation_error(exc: ValidationError) -> list[str]:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        lines.append(f"{_loc(loc)}: {_describe(dict(err))}")
    return lines


def parse_config(data: Any, origin: str = "config") -> Config:
    """Validate an already-loaded YAML document; raise ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: expected a mapping of keys (tenant, source, school, ...), got {type(data).__name__}"
        )
    missing: list[str] = []
    expanded = _expand_env(data, "", missing)
    if missing:
        raise ConfigError(f"{origin} is invalid:\n  " + "\n  ".join(missing))
    try:
        return Config.model_validate(expanded)
    except ValidationError as exc:
        raise ConfigError(f"{origin} is invalid:\n  " + "\n  ".join(format_validation_error(exc))) from None


def resolve_config_path(given: str | None) -> Path:
    if given:
        return Path(given)
    env = os.environ.get("SMARTSYNC_CONFIG")
    if env:
        return Path(env)
    for candidate in DEFAULT_CONFIG_PATHS:
        if Path(candidate).exists():
            return Path(candidate)
    raise ConfigError(
        "No config file found (tried $SMARTSYNC_CONFIG, ./smartsync.yaml, /etc/smartsync/config.yaml). "
        "Copy config.example.yaml and pass it with --config PATH."
    )


def load_config(path: Path) -> tuple[Config, list[str]]:
    """Load and validate the config at `path`; return it with any warnings about the file itself."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist. Copy config.example.yaml to start.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    config = parse_config(data, str(path))
    warnings: list[str] = []
    holds_secret = config.tenant.client_secret is not None or (
        config.tenant.certificate is not None and config.tenant.certificate.passphrase is not None
    )
    literal_secret = holds_secret and "client_secret: ${" not in text and "passphrase: ${" not in text
    try:
        mode = path.stat().st_mode
    except OSError:
        mode = 0
    if literal_secret and mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append(
            f"{path} holds a secret and is readable by group or others (mode {stat.S_IMODE(mode):o}); "
            f"run `chmod 600 {path}`, or move the secret to client_secret_file "
            "or ${SMARTSYNC_CLIENT_SECRET}."
        )
    return config, warnings
