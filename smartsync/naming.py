"""Keys, markers and names of managed objects (DESIGN §5).

Every object smartsync manages has a stable key built from the school code, the kind and the roster
id (`NFA-class-4711`). Groups carry it in `mailNickname` as `{prefix}-{key}`; administrative units
carry it in `description` as a trailing `[smartsync:{key}]` marker. Nothing without the marker is
ever touched.
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
    if not nickname.lower().startswith(head.lower()):
        return None
    return nickname[len(head) :]


def au_marker(key: str) -> str:
    return f"[smartsync:{key}]"


def au_description(key: str, text: str = "Managed by smartsync") -> str:
    return f"{text} {au_marker(key)}"


def key_from_au_description(description: str | None) -> str | None:
    if not description:
        return None
    match = _AU_MARKER.search(description)
    return match.group(1) if match else None


class _Blank(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return ""


def render_name(template: str, values: Mapping[str, str | None]) -> str:
    """Fill a name template; unknown or empty fields vanish and spacing is tidied."""
    fields = _Blank({k: v or "" for k, v in values.items()})
    text = string.Formatter().vformat(template, (), fields)
    text = re.sub(r"\s+", " ", text).strip(" -:/")
    return text[:DISPLAY_NAME_MAX]
