"""Checks a seed/state file before the simulator loads it, so a bad entry is a message, not a traceback.

Each problem names the file, the entry (`users[3]`, with its id or sign-in address when it has one)
and what the entry needs, e.g.
`seed.json: users[3] (id 'u-3'): userPrincipalName is missing; every user needs a sign-in address`.
Only what the tenant cannot do without is required; every other field keeps its default.
"""

from __future__ import annotations

from typing import Any

_LISTS = ("users", "groups", "deleted_groups", "administrative_units", "deleted_administrative_units")
_ID_LISTS = ("members", "owners")


def _label(section: str, index: int, entry: dict[str, Any]) -> str:
    for key in ("id", "userPrincipalName", "displayName"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return f"{section}[{index}] ({key} {value!r})"
    return f"{section}[{index}]"


def _text(entry: dict[str, Any], key: str) -> bool:
    return isinstance(entry.get(key), str) and bool(str(entry[key]).strip())


def seed_problems(data: Any, origin: str) -> list[str]:
    """Every problem in a seed document, each as `origin: entry: what is wrong; what it needs`."""
    if not isinstance(data, dict):
        return [f"{origin}: the state file must hold one JSON object with tenant_id, app, users, groups"]
    problems: list[str] = []
    if "tenant_id" in data and not _text(data, "tenant_id"):
        problems.append(f"{origin}: tenant_id must be a text id such as a GUID")
    app = data.get("app")
    if app is not None:
        if not isinstance(app, dict):
            problems.append(f"{origin}: app must be an object with client_id, client_secret and roles")
        else:
            for key in ("client_id", "client_secret"):
                if key in app and not _text(app, key):
                    problems.append(f"{origin}: app.{key} must be text")
            roles = app.get("roles")
            if roles is not None and not (isinstance(roles, list) and all(isinstance(r, str) for r in roles)):
                problems.append(f"{origin}: app.roles must be a list of permission names, e.g. User.Read.All")
    seen: dict[str, str] = {}
    for section in _LISTS:
        entries = data.get(section)
        if entries is None:
            continue
        if not isinstance(entries, list):
            problems.append(f"{origin}: {section} must be a list of objects")
            continue
        for index, entry in enumerate(entries):
            if not isinstance(entry, dict):
                problems.append(f"{origin}: {section}[{index}] must be an object")
                continue
            where = f"{origin}: {_label(section, index, entry)}"
            if "id" in entry:
                if not _text(entry, "id"):
                    problems.append(f"{where}: id must be text (or left out, to have one made)")
                elif entry["id"] in seen:
                    problems.append(f"{where}: id is also used by {seen[entry['id']]}; ids must be unique")
                else:
                    seen[str(entry["id"])] = f"{section}[{index}]"
            if section == "users" and not _text(entry, "userPrincipalName"):
                problems.append(
                    f"{where}: userPrincipalName is missing; every user needs a sign-in address, "
                    'e.g. "a.pupil@school.example"'
                )
            for key in _ID_LISTS:
                ids = entry.get(key)
                if ids is not None and not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)):
                    problems.append(f"{where}: {key} must be a list of user object ids")
            if section.endswith("groups") and "team" in entry and not isinstance(entry["team"], dict | None):
                problems.append(f'{where}: team must be an object such as {{"isArchived": false}}')
    operations = data.get("teams_operations")
    if operations is not None:
        required = ("id", "team_id", "operation_type", "created", "completes_at")
        for index, entry in enumerate(operations if isinstance(operations, list) else [None]):
            if not isinstance(entry, dict) or any(key not in entry for key in required):
                problems.append(f"{origin}: teams_operations[{index}] needs {', '.join(required)}")
    return problems


__all__ = ["seed_problems"]
