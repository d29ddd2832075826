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
from smartsync.paths import POSIX_MODES, default_config_file, default_journal_file
from smartsync.yamlfile import DuplicateKeyError, load_yaml

GroupKind = Literal["class", "mentor", "year", "group", "all_learners", "all_staff"]
GROUP_KINDS: tuple[str, ...] = ("class", "mentor", "year", "group", "all_learners", "all_staff")
AdminUnitKind = Literal["learners", "staff", "mentors", "year_groups"]
GroupTypeName = Literal["security", "microsoft365"]
Cloud = Literal["global", "usgov", "usgov-dod", "china"]

DEFAULT_CONFIG_PATHS = ("./smartsync.yaml", str(default_config_file()))

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


_SCHOOL_CODE = r"^[A-Za-z0-9_]+$"


class SchoolConfig(_Model):
    # The config owns only the objects of its codes (DESIGN §5). `codes` is for an export holding
    # several schools of a trust; `code` is then the first of them unless given (rows without a school
    # belong to `code`).
    code: str = Field(min_length=1, max_length=16, pattern=_SCHOOL_CODE)
    codes: list[str] = Field(default_factory=list)
    name: str = ""

    @model_validator(mode="before")
    @classmethod
    def _code_from_codes(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "codes" not in data:
            return data
        codes = data["codes"]
        if not isinstance(codes, list) or not codes:
            raise ValueError("school.codes must be a list of one or more school codes, e.g. [NFA, SPS]")
        if "code" in data:
            if str(data["code"]).lower() not in {str(c).lower() for c in codes}:
                raise ValueError(
                    "school.code must be one of school.codes when both are given (it is the school of "
                    "rows without one); or give only school.codes"
                )
            return data
        return {**data, "code": codes[0]}

    @model_validator(mode="after")
    def _valid_codes(self) -> SchoolConfig:
        for code in self.codes:
            if not isinstance(code, str) or not re.match(_SCHOOL_CODE, code) or len(code) > 16:
                raise ValueError(
                    f"school.codes: {code!r} is not a school code (letters, digits, _; at most 16)"
                )
        lowered = [c.lower() for c in self.codes]
        if len(set(lowered)) != len(lowered):
            raise ValueError("school.codes lists a code twice")
        return self

    @property
    def all_codes(self) -> tuple[str, ...]:
        """Every school code this config owns, `code` first."""
        return (self.code, *(c for c in self.codes if c.lower() != self.code.lower()))


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


def restricted_unit_lockout() -> str:
    return (
        "include_groups with restricted_management would lock smartsync out of its own groups: Graph's "
        "application permissions do not let an app change objects inside a restricted-management unit, so "
        "once a class is placed in one its members could no longer be synced. Either give the app an Entra "
        "role scoped to the units (for example Groups Administrator on each unit) and set "
        "sync.admin_units.app_has_unit_role: true (then only security groups are placed: Microsoft 365 "
        "groups cannot be members of such units), or turn off include_groups or restricted_management"
    )


class AdminUnitsConfig(_Model):
    enabled: bool = True
    units: list[AdminUnitKind] = Field(default_factory=_default_au_units)
    names: dict[AdminUnitNameKey, str] = Field(default_factory=_default_au_names)
    restricted_management: bool = False
    # Also place each year's managed groups (classes, mentor and year groups) in that year's unit.
    include_groups: bool = False
    # The app holds an Entra role scoped to the units (needed to keep changing groups placed in
    # restricted-management units; see restricted_unit_lockout).
    app_has_unit_role: bool = False

    @model_validator(mode="after")
    def _no_lockout(self) -> AdminUnitsConfig:
        if self.enabled and self.include_groups and self.restricted_management and not self.app_has_unit_role:
            raise ValueError(restricted_unit_lockout())
        return self

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


ExtensionAttribute = Literal[
    "extensionAttribute1", "extensionAttribute2", "extensionAttribute3", "extensionAttribute4",
    "extensionAttribute5", "extensionAttribute6", "extensionAttribute7", "extensionAttribute8",
    "extensionAttribute9", "extensionAttribute10", "extensionAttribute11", "extensionAttribute12",
    "extensionAttribute13", "extensionAttribute14", "extensionAttribute15",
]  # fmt: skip


class AccountsConfig(_Model):
    """`sync.users`: the accounts of joiners, movers and leavers (only accounts smartsync marked)."""

    create: bool = False
    adopt: bool = False
    rename: bool = False
    disable_after_days: int = Field(default=0, ge=0)
    delete_after_days: int = Field(default=90, ge=0)
    handout_retention_days: int = Field(default=14, ge=1)
    marker_attribute: ExtensionAttribute = "extensionAttribute15"
    usage_location: str = Field(default="GB", pattern=r"^[A-Z]{2}$")
    staff_department: str = Field(default="Staff", min_length=1, max_length=64)
    learner_job_title: str = Field(default="Learner", min_length=1, max_length=128)
    staff_job_title: str = Field(default="Staff", min_length=1, max_length=128)


class ReplicationConfig(_Model):
    """Waiting for Entra to replicate objects this run created (requests naming them answer 404 a while)."""

    first_wait_seconds: float = Field(default=2.0, ge=0)
    max_wait_seconds: float = Field(default=30.0, ge=0)
    # The most a run waits, in all, for new groups, classes and units; what still fails then fails.
    budget_minutes: float = Field(default=5.0, ge=0)
    # The most a run waits for new groups to reach Teams; teams still refused then stay pending.
    team_budget_minutes: float = Field(default=15.0, ge=0)


class SyncConfig(_Model):
    prefix: str = Field(default="smartsync", min_length=1, max_length=20, pattern=r"^[A-Za-z0-9_]+$")
    groups: GroupsConfig = Field(default_factory=GroupsConfig)
    admin_units: AdminUnitsConfig = Field(default_factory=AdminUnitsConfig)
    teams: TeamsConfig = Field(default_factory=TeamsConfig)
    users: AccountsConfig | None = None  # accounts are managed only when this section is present
    replication: ReplicationConfig = Field(default_factory=ReplicationConfig)


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
    # Beside the fraction: at most this many memberships removed in one run (like Entra Connect's
    # deletion threshold), so a large trust cannot lose a fifth of its memberships unasked.
    max_membership_removals: int = Field(default=500, ge=0)
    # A year group, a school or all learners losing more than this share of its people in one run.
    max_cohort_loss_fraction: float = Field(default=0.5, ge=0.0, le=1.0)
    max_account_creations: int = Field(default=300, ge=0)
    max_account_disables: int = Field(default=20, ge=0)
    max_account_deletes: int = Field(default=20, ge=0)


class JournalConfig(_Model):
    path: Path = Field(default_factory=default_journal_file)
    retention_days: int = Field(default=400, ge=1)
    lock_path: Path | None = None
    # Write each run's HTML report page to reports/<run id>.html next to the journal (mode 600,
    # kept as long as the journal keeps its lines).
    html_reports: bool = False

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
    # Only for `smartsync simulator serve --time-scale N`: its quotas refill N times faster, so the
    # client's own pacing (graph/quota.py) counts its windows N times shorter. 1 for a real tenant.
    time_scale: float = Field(default=1.0, gt=0)


class PreflightConfig(_Model):
    """`smartsync preflight`: the one person its throwaway objects use (default: first staff member)."""

    user: str | None = Field(default=None, min_length=3)


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
    # Attach the run's HTML report page (journal.html_reports); it names pupils, so off by default.
    attach_report: bool = False

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
    preflight: PreflightConfig = Field(default_factory=PreflightConfig)


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


_SECRET_KEYS = ("client_secret", "passphrase", "token", "password", "url")


def _secret_variable_problem(path: str, name: str, value: str) -> str | None:
    """An empty or space-padded secret variable, named, before it becomes a baffling sign-in error."""
    if not (path.rsplit(".", 1)[-1] in _SECRET_KEYS or ".headers." in path):
        return None
    where = "where it is set (for cron and systemd: /etc/smartsync/environment)"
    if not value.strip():
        return f"{path}: environment variable {name} is set but empty; put the secret's value in it {where}"
    if value != value.strip():
        return (
            f"{path}: environment variable {name} has spaces or a line break around its value, which a "
            f"secret never has; remove them {where}"
        )
    return None


def _expand_env(value: Any, path: str, missing: list[str]) -> Any:
    if isinstance(value, str):

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in os.environ:
                missing.append(f"{path}: environment variable {name} is not set")
                return ""
            problem = _secret_variable_problem(path, name, os.environ[name])
            if problem:
                missing.append(problem)
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


# Only commands that sign in (or notify) use these; `validate` and `log` work without their ${ENV}.
SIGN_IN_ONLY = ("tenant.", "notifications.")


def parse_config(data: Any, origin: str = "config", *, signs_in: bool = True) -> Config:
    """Validate an already-loaded YAML document; raise ConfigError listing every problem.

    With `signs_in=False` an unset environment variable under `tenant` or `notifications` is no
    error (the value is left empty, notifications are left out): reading needs no secret.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{origin}: expected a mapping of keys (tenant, source, school, ...), got {type(data).__name__}"
        )
    missing: list[str] = []
    expanded = _expand_env(data, "", missing)
    if not signs_in:
        if any(m.startswith("notifications.") for m in missing):
            expanded.pop("notifications", None)
        missing = [m for m in missing if not m.startswith(SIGN_IN_ONLY)]
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
        f"No config file found (tried $SMARTSYNC_CONFIG, {', '.join(DEFAULT_CONFIG_PATHS)}). "
        "Copy config.example.yaml and pass it with --config PATH."
    )


def load_config(path: Path, *, signs_in: bool = True) -> tuple[Config, list[str]]:
    """Load and validate the config at `path`; return it with any warnings about the file itself.

    `signs_in=False` (validate, log) tolerates unset secret variables; see `parse_config`.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist. Copy config.example.yaml to start.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read config file {path}: {exc}") from None
    try:
        data = load_yaml(text)
    except DuplicateKeyError as exc:
        raise ConfigError(f"{path} is invalid: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    config = parse_config(data, str(path), signs_in=signs_in)
    return config, readable_secret_warnings(path, data, config)


# Keys whose value is a secret: a literal value (not a ${NAME}) makes the file itself secret.
SECRET_KEYS = (
    ("tenant", "client_secret"),
    ("tenant", "certificate", "passphrase"),
    ("source", "token"),
    ("notifications", "email", "password"),
    ("notifications", "webhook", "url"),
    ("notifications", "webhook", "headers"),
)


def _literal_secrets(data: Any) -> list[str]:
    """The dotted keys of `data` (as written, before ${ENV} expansion) that hold a literal secret."""
    found: list[str] = []
    for keys in SECRET_KEYS:
        value: Any = data
        for key in keys:
            value = value.get(key) if isinstance(value, dict) else None
        values = list(value.values()) if isinstance(value, dict) else [value]
        if any(v is not None and str(v).strip() and not _ENV_REF.search(str(v)) for v in values):
            found.append(".".join(keys))
    return found


def _open_to_others(path: Path) -> int | None:
    """The permission bits of `path` when others may read it, else None.

    "Others" are everyone but the owner and the group smartsync runs as: the installed layout keeps
    the config `root:smartsync` 0640, which only root and the service account can read.
    """
    if not POSIX_MODES:
        return None  # Windows: access is set with ACLs (icacls), see docs/setup.md
    try:
        info = path.stat()
    except OSError:
        return None
    mode = info.st_mode
    foreign_group = bool(mode & stat.S_IRWXG) and info.st_gid not in {os.getgid(), *os.getgroups()}
    return stat.S_IMODE(mode) if mode & stat.S_IRWXO or foreign_group else None


def readable_secret_warnings(path: Path, data: Any, config: Config) -> list[str]:
    """A warning for a config holding a literal secret, and for a secret file, that others can read."""
    warnings: list[str] = []
    literal = _literal_secrets(data)
    mode = _open_to_others(path) if literal else None
    if mode is not None:
        warnings.append(
            f"{path} holds a secret and is readable by others (mode {mode:o}), written out in "
            f"{', '.join(literal)}; move the secret to ${{SMARTSYNC_CLIENT_SECRET}} (set in "
            f"/etc/smartsync/environment) or client_secret_file, or run `chmod 640 {path}` with the "
            "group smartsync runs as (`chmod 600` if only its owner runs smartsync)."
        )
    secret_file = config.tenant.client_secret_file
    mode = _open_to_others(secret_file) if secret_file is not None else None
    if secret_file is not None and mode is not None:
        warnings.append(
            f"tenant.client_secret_file {secret_file} is readable by others (mode {mode:o}); "
            f"run `chmod 600 {secret_file}` (owned by the user smartsync runs as), or `chmod 640` with "
            "the group smartsync runs as."
        )
    return warnings
