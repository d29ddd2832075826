"""Keys, markers and names of managed objects (DESIGN §5).

Every object smartsync manages has a stable key built from the school code, the kind and the roster
id (`NFA-class-4711`). Groups carry it in `mailNickname` as `{prefix}-{key}`; administrative units
carry it in `description` as a trailing `[smartsync/{prefix}:{key}]` marker (older units carry
`[smartsync:{key}]`, without the prefix, and are migrated). Nothing without the marker is ever touched.
"""

from __future__ import annotations

import hashlib
import re
import string
from collections.abc import Mapping

MAIL_NICKNAME_MAX = 64
DISPLAY_NAME_MAX = 256
_NICKNAME_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_AU_MARKER = re.compile(r"\[smartsync:([^\]\s]+)\]\s*$")
# The prefix is in the marker so that two configs of one school with different prefixes never take
# each other's units; "smartsync/" (not "smartsync:") so older versions never read it as theirs.
_AU_PREFIXED_MARKER = re.compile(r"\[smartsync/([A-Za-z0-9_]+):([^\]\s]+)\]\s*$")
_EDU_MARK = "(education class)"
_ARCHIVED_MARK = "Archived by smartsync"
# Throwaway objects of `smartsync preflight` carry `smartsync-preflight-<run id>`; with the default
# prefix `smartsync` their nicknames start like managed ones, so they are excluded by this pattern.
PREFLIGHT_MARKER = "smartsync-preflight-"
_PREFLIGHT = re.compile(r"^smartsync-preflight-\d{8}T\d{6}Z", re.IGNORECASE)


def safe_id(value: str) -> str:
    """A roster id or name reduced to characters allowed in a mailNickname."""
    return _NICKNAME_UNSAFE.sub("_", value.strip()).strip("_") or "x"


def object_key(school: str, kind: str, roster_id: str | None = None) -> str:
    parts = [safe_id(school), kind]
    if roster_id is not None:
        parts.append(safe_id(roster_id))
    return "-".join(parts)


def mail_nickname(prefix: str, key: str) -> str:
    """`{prefix}-{key}`, at most 64 allowed characters; a short hash keeps long keys unique."""
    nick = _NICKNAME_UNSAFE.sub("_", f"{prefix}-{key}")
    if len(nick) <= MAIL_NICKNAME_MAX:
        return nick
    digest = hashlib.sha256(nick.encode("utf-8")).hexdigest()[:10]
    return f"{nick[: MAIL_NICKNAME_MAX - 11]}_{digest}"


def nickname_prefix(prefix: str) -> str:
    return f"{prefix}-"


def key_from_nickname(prefix: str, nickname: str) -> str | None:
    """The key of a managed group (its nickname without the prefix), or None when not managed."""
    head = nickname_prefix(prefix)
    if not nickname.lower().startswith(head.lower()) or is_preflight_name(nickname):
        return None
    return nickname[len(head) :]


def is_preflight_name(text: str | None) -> bool:
    """A name, nickname or description of a preflight's throwaway object (never managed, never synced)."""
    return bool(text) and _PREFLIGHT.match(text or "") is not None


def au_marker(key: str, prefix: str | None = None) -> str:
    """The unit marker; without a prefix the older `[smartsync:{key}]` form."""
    return f"[smartsync:{key}]" if prefix is None else f"[smartsync/{prefix}:{key}]"


def au_description(key: str, text: str = "Managed by smartsync", *, prefix: str | None = None) -> str:
    return f"{text} {au_marker(key, prefix)}"


def parse_au_marker(description: str | None) -> tuple[str | None, str] | None:
    """(prefix, key) of a unit's marker; prefix None for the older form; None without a marker."""
    if not description or is_preflight_name(description):
        return None
    match = _AU_PREFIXED_MARKER.search(description)
    if match:
        return match.group(1), match.group(2)
    match = _AU_MARKER.search(description)
    return (None, match.group(1)) if match else None


def migrated_au_description(description: str, prefix: str) -> str:
    """An older unit's description with its marker rewritten to carry `prefix` (the text is kept)."""
    match = _AU_MARKER.search(description)
    if match is None:
        return description
    return description[: match.start()] + au_marker(match.group(1), prefix)


def key_from_au_description(description: str | None) -> str | None:
    if not description or is_preflight_name(description):
        return None
    marker = parse_au_marker(description)
    return marker[1] if marker else None


def code_of_key(key: str) -> str:
    """The school code a key starts with (`NFA` of `NFA-class-4711`)."""
    return key.split("-", 1)[0]


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render_name(template: str, values: Mapping[str, str | None]) -> str:
    """Fill a name template; unknown or empty fields vanish and spacing is tidied."""
    fields = _Blank({k: v or "" for k, v in values.items()})
    text = string.Formatter().vformat(template, (), fields)
    text = re.sub(r"\s+", " ", text).strip(" -:/")
    return text[:DISPLAY_NAME_MAX]


def group_description(kind: str, education_class: bool = False) -> str:
    """The description smartsync gives the groups it creates; it also records how they were made."""
    made = f" {_EDU_MARK}" if education_class else ""
    return f"Managed by smartsync: {kind}{made}. Changes made here are overwritten."


def archived_description(kind: str, education_class: bool, when: str) -> str:
    return f"{group_description(kind, education_class)} {_ARCHIVED_MARK} on {when}."


def parse_group_description(description: str | None) -> tuple[bool, bool]:
    """(made as an education class, archived by smartsync) as recorded in a managed group's description."""
    text = description or ""
    return _EDU_MARK in text, _ARCHIVED_MARK in text


_YEAR_IN_KEY = re.compile(r"^[^-]+-[a-z_]+-(\d{4})-")


def academic_year_of_key(key: str) -> str | None:
    """ "2025-26" for a year-scoped key such as `NFA-class-2025-4711`."""
    match = _YEAR_IN_KEY.search(key)
    if match is None:
        return None
    start = int(match.group(1))
    return f"{start}-{(start + 1) % 100:02d}"
