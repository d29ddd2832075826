"""Reader for the Realsmart export (DESIGN §4): a folder, a .zip or one .json file.

The export is checked as a whole: every problem found (missing files or columns, empty files, unknown
roles, duplicate ids or emails, memberships naming unknown ids, bytes that are not UTF-8) is collected
with its file, line and column, and `InvalidExportError` lists them all at the end, so a sysadmin fixes
the export in one pass rather than one error per run. Nothing downstream ever sees a half-valid roster.

The reader returns what the files hold. Year groups and the all-learners / all-staff groups that the
export does not list are derived later, by the code that works out the desired state.
"""

from __future__ import annotations

import csv
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar, cast

from smartsync.errors import InputDataError, Problem
from smartsync.roster.model import (
    GROUP_TYPES,
    MEMBERSHIP_ROLES,
    OWNER_ROLES,
    PERSON_ROLES,
    PERSON_STATUSES,
    Group,
    Membership,
    MembershipRole,
    Person,
    Roster,
)

USERS_FILE = "users.csv"
GROUPS_FILE = "groups.csv"
MEMBERSHIPS_FILE = "memberships.csv"


@dataclass(frozen=True)
class TableSpec:
    """One table of the export: its CSV file name, its JSON key and its columns."""

    file: str
    key: str
    required: tuple[str, ...]
    optional: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return self.required + self.optional


USERS = TableSpec(
    USERS_FILE,
    "users",
    ("id", "role", "email", "first_name", "last_name"),
    ("year_group", "status", "employee_id", "school"),
)
GROUPS = TableSpec(GROUPS_FILE, "groups", ("id", "name", "type"), ("subject", "year_group", "school"))
MEMBERSHIPS = TableSpec(MEMBERSHIPS_FILE, "memberships", ("group_id", "user_id", "role"), ())
TABLES: tuple[TableSpec, ...] = (USERS, GROUPS, MEMBERSHIPS)


class InvalidExportError(InputDataError):
    """The export has problems; `roster` holds the rows that were valid, for counting only."""

    def __init__(self, problems: list[Problem], source: str, roster: Roster) -> None:
        super().__init__(problems, source)
        self.roster = roster


class _Record(NamedTuple):
    """One row of a table, wherever it came from, with what is needed to point at it.

    A named tuple rather than a frozen dataclass: a trust's export has hundreds of thousands of rows.
    """

    file: str
    line: int | None  # physical line in a CSV file (header = 1); None for JSON
    path: str | None  # JSON location such as "users[3]"; None for CSV
    values: dict[str, str]  # column -> stripped value; absent columns are ""

    def column(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem(self, column: str | None, message: str) -> Problem:
        where = self.column(column) if column else self.path
        return Problem(self.file, self.line, where, message)

    @property
    def label(self) -> str:
        """Where this row is, for messages that point back at an earlier row."""
        if self.line is not None:
            return f"line {self.line}"
        return self.path or self.file


@dataclass
class _Collected:
    """What reading the raw files produced, before the rows are checked."""

    tables: dict[str, list[_Record] | None]  # None: the table could not be read at all
    problems: list[Problem]
    notes: list[str]


# ---------------------------------------------------------------------------------------------------
# Entry point


def read_realsmart_export(path: Path) -> Roster:
    """Read and check a Realsmart export at `path` (folder, .zip or .json).

    Raises `InvalidExportError` (an `InputDataError`) listing every problem, a missing `path` included.
    """
    label = f"realsmart-export: {path}"
    if not path.exists():
        raise InvalidExportError(
            [Problem(str(path), None, None, "does not exist; check source.path in the config")],
            f"Realsmart export {path}",
            Roster(source=label),
        )
    if path.is_dir():
        collected = _collect_csv_tables(_folder_files(path))
    elif path.suffix.lower() == ".zip":
        collected = _collect_zip(path)
    elif path.suffix.lower() == ".json":
        collected = _collect_json(path)
    else:
        raise InvalidExportError(
            [
                Problem(
                    path.name,
                    None,
                    None,
                    "is not a folder, a .zip or a .json file; point source.path at the export folder, "
                    "the .zip or the .json file",
                )
            ],
            f"Realsmart export {path}",
            Roster(source=label),
        )
    roster = _build_roster(collected, label)
    if collected.problems:
        raise InvalidExportError(_in_reading_order(collected.problems), f"Realsmart export {path}", roster)
    return roster


def read_realsmart_document(document: Any, name: str, label: str) -> Roster:
    """Check an export already parsed from JSON (the HTTPS source) exactly as a .json file is checked.

    `name` is what problems point at; `label` says where the roster came from.
    """
    collected = _collect_json_document(
        name, document, _Collected({spec.file: None for spec in TABLES}, [], [])
    )
    roster = _build_roster(collected, label)
    if collected.problems:
        raise InvalidExportError(_in_reading_order(collected.problems), label, roster)
    return roster


def _in_reading_order(problems: list[Problem]) -> list[Problem]:
    """Users, groups, then memberships, each top to bottom: the order a person fixes them in."""

    def key(problem: Problem) -> tuple[int, int]:
        table = next(
            (i for i, spec in enumerate(TABLES) if problem.file.lower().endswith(spec.file)), len(TABLES)
        )
        return table, problem.line or 0

    return sorted(problems, key=key)


# ---------------------------------------------------------------------------------------------------
# Finding and decoding the files


def _folder_files(folder: Path) -> dict[str, tuple[str, bytes | None]]:
    """Each expected file name -> (name to show, bytes or None when absent), matched case-insensitively."""
    present = {p.name.lower(): p for p in sorted(folder.iterdir()) if p.is_file()}
    found: dict[str, tuple[str, bytes | None]] = {}
    for spec in TABLES:
        match = present.get(spec.file)
        found[spec.file] = (match.name, match.read_bytes()) if match else (spec.file, None)
    return found


def _collect_zip(path: Path) -> _Collected:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return _Collected(
            {spec.file: None for spec in TABLES},
            [Problem(path.name, None, None, f"cannot be opened as a zip file ({exc}); export it again")],
            [],
        )
    with archive:
        # Exports are sometimes zipped with their folder: match on the file name, ignoring directories.
        members: dict[str, zipfile.ZipInfo] = {}
        for entry in archive.infolist():
            if not entry.is_dir():
                members.setdefault(entry.filename.rsplit("/", 1)[-1].lower(), entry)
        found: dict[str, tuple[str, bytes | None]] = {}
        for spec in TABLES:
            info = members.get(spec.file)
            found[spec.file] = (
                (f"{path.name}:{info.filename}", archive.read(info))
                if info
                else (f"{path.name}:{spec.file}", None)
            )
    return _collect_csv_tables(found)


def _decode(name: str, data: bytes, problems: list[Problem]) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ").upper()
        problems.append(
            Problem(
                name,
                line,
                None,
                f"is not UTF-8 (byte {bad}); save or export the file as UTF-8 (in Excel: 'CSV UTF-8')",
            )
        )
        return None


# ---------------------------------------------------------------------------------------------------
# CSV


def _collect_csv_tables(files: dict[str, tuple[str, bytes | None]]) -> _Collected:
    collected = _Collected({}, [], [])
    for spec in TABLES:
        name, data = files[spec.file]
        if data is None:
            collected.problems.append(
                Problem(
                    name,
                    None,
                    None,
                    f"is missing; the export needs {USERS_FILE}, {GROUPS_FILE} and {MEMBERSHIPS_FILE}",
                )
            )
            collected.tables[spec.file] = None
            continue
        collected.tables[spec.file] = _read_csv_table(spec, name, data, collected)
    return collected


def _read_csv_table(spec: TableSpec, name: str, data: bytes, collected: _Collected) -> list[_Record] | None:
    problems = collected.problems
    if not data.strip():
        problems.append(
            Problem(
                name,
                None,
                None,
                f"is empty; expected a header row ({', '.join(spec.required)}) and data rows",
            )
        )
        return None
    text = _decode(name, data, problems)
    if text is None:
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader)
    except csv.Error as exc:
        problems.append(Problem(name, 1, None, f"the header row cannot be read as CSV ({exc})"))
        return None
    header = [cell.strip().lower() for cell in header_row]
    if not any(header):
        problems.append(
            Problem(
                name,
                1,
                None,
                f"the first line is blank; expected the header row ({', '.join(spec.required)})",
            )
        )
        return None
    missing = [c for c in spec.required if c not in header]
    for column in missing:
        problems.append(
            Problem(
                name,
                1,
                column,
                f"required column '{column}' is missing (the header has: {', '.join(header)})",
            )
        )
    seen_columns: set[str] = set()
    for column in header:
        if column in seen_columns and column:
            problems.append(Problem(name, 1, column, f"column '{column}' appears twice in the header"))
        seen_columns.add(column)
    unused = [c for c in header if c and c not in spec.columns]
    if unused:
        collected.notes.append(f"{name}: column{'s' if len(unused) > 1 else ''} {', '.join(unused)} not used")

    records: list[_Record] = []
    width = len(header)
    wanted: dict[str, int] = {}
    for index, column in enumerate(header):
        if column in spec.columns:
            wanted.setdefault(column, index)
    blank = dict.fromkeys(spec.columns, "")
    last_line = reader.line_num
    try:
        for row in reader:
            line = last_line + 1  # a quoted value may span lines: point at the row's first line
            last_line = reader.line_num
            if len(row) > width and any(cell.strip() for cell in row[width:]):
                problems.append(
                    Problem(
                        name,
                        line,
                        None,
                        f"has {len(row)} values but the header has {width} columns; "
                        "check for an unquoted comma",
                    )
                )
                continue
            values = blank.copy()
            cells = len(row)
            for column, index in wanted.items():
                if index < cells:
                    values[column] = row[index].strip()
            if not any(values.values()) and not any(cell.strip() for cell in row):
                continue  # blank line, such as a trailing one
            records.append(_Record(name, line, None, values))
    except csv.Error as exc:
        problems.append(
            Problem(
                name, reader.line_num, None, f"cannot be read as CSV ({exc}); later rows were not checked"
            )
        )
    if not records and not missing:
        problems.append(Problem(name, None, None, "has a header but no data rows; is the export complete?"))
    # Rows of a table without a required column cannot be checked: one problem for the column is enough.
    return None if missing else records


# ---------------------------------------------------------------------------------------------------
# JSON


def _collect_json(path: Path) -> _Collected:
    name = path.name
    collected = _Collected({spec.file: None for spec in TABLES}, [], [])
    data = path.read_bytes()
    if not data.strip():
        collected.problems.append(
            Problem(
                name, None, None, 'is empty; expected {"users": [...], "groups": [...], "memberships": [...]}'
            )
        )
        return collected
    text = _decode(name, data, collected.problems)
    if text is None:
        return collected
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        collected.problems.append(
            Problem(name, exc.lineno, None, f"is not valid JSON: {exc.msg} (column {exc.colno})")
        )
        return collected
    return _collect_json_document(name, document, collected)


def _collect_json_document(name: str, document: Any, collected: _Collected) -> _Collected:
    if not isinstance(document, dict):
        collected.problems.append(
            Problem(
                name,
                None,
                None,
                f'must be a JSON object {{"users": [...], "groups": [...], "memberships": [...]}}, '
                f"not {_json_type(document)}",
            )
        )
        return collected
    unused = [str(k) for k in document if k not in {spec.key for spec in TABLES}]
    if unused:
        collected.notes.append(f"{name}: key{'s' if len(unused) > 1 else ''} {', '.join(unused)} not used")
    for spec in TABLES:
        collected.tables[spec.file] = _read_json_table(spec, name, document.get(spec.key), collected.problems)
    return collected


def _read_json_table(spec: TableSpec, name: str, items: Any, problems: list[Problem]) -> list[_Record] | None:
    if items is None:
        problems.append(Problem(name, None, spec.key, f'"{spec.key}" is missing; expected a list of objects'))
        return None
    if not isinstance(items, list):
        problems.append(
            Problem(name, None, spec.key, f'"{spec.key}" must be a list of objects, not {_json_type(items)}')
        )
        return None
    if not items:
        problems.append(
            Problem(name, None, spec.key, f'"{spec.key}" is an empty list; is the export complete?')
        )
        return None
    records: list[_Record] = []
    for index, item in enumerate(items):
        where = f"{spec.key}[{index}]"
        if not isinstance(item, dict):
            problems.append(Problem(name, None, where, f"must be an object, not {_json_type(item)}"))
            continue
        values = {column: "" for column in spec.columns}
        ok = True
        for key, value in item.items():
            column = str(key).strip().lower()
            if column not in values:
                continue
            if value is None:
                continue
            # Ids are often numbers in JSON exports; anything but a string or an integer is a mistake.
            if isinstance(value, bool) or not isinstance(value, str | int):
                problems.append(
                    Problem(name, None, f"{where}.{column}", f"must be a string, not {_json_type(value)}")
                )
                ok = False
                continue
            values[column] = str(value).strip()
        if ok:
            records.append(_Record(name, None, where, values))
    return records


def _json_type(value: Any) -> str:
    names = {
        dict: "an object",
        list: "a list",
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
    }
    return "null" if value is None else names.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------------
# Checking the rows and building the roster

E = TypeVar("E", bound=str)


def _choice(
    record: _Record, column: str, allowed: Sequence[E], problems: list[Problem], default: E | None = None
) -> E | None:
    raw = record.values[column]
    if not raw:
        if default is not None:
            return default
        problems.append(record.problem(column, f"{column} is empty; expected one of {', '.join(allowed)}"))
        return None
    value = raw.lower()
    if value in allowed:
        return cast(E, value)
    problems.append(record.problem(column, f"unknown {column} '{raw}'; expected one of {', '.join(allowed)}"))
    return None


def _required(record: _Record, columns: Iterable[str], problems: list[Problem]) -> bool:
    ok = True
    for column in columns:
        if not record.values[column]:
            problems.append(record.problem(column, f"{column} is empty; it is required"))
            ok = False
    return ok


# Deliberately loose: one @, something on each side, a dot in the domain, no spaces. Entra decides the rest.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _looks_like_email(value: str) -> bool:
    return _EMAIL.fullmatch(value) is not None


def _repeated(
    records: list[_Record], key: Callable[[_Record], str], column: str, what: str, problems: list[Problem]
) -> set[int]:
    """Positions of records whose key repeats an earlier record's, each reported with where the first was.

    Every row takes part, valid or not, so that all duplicates show up in one pass; empty keys are left to
    the required-value check.
    """
    first: dict[str, _Record] = {}
    repeated: set[int] = set()
    for index, record in enumerate(records):
        value = key(record)
        if not value:
            continue
        earlier = first.setdefault(value, record)
        if earlier is not record:
            problems.append(
                record.problem(
                    column, f"duplicate {what} '{record.values[column]}' (first at {earlier.label})"
                )
            )
            repeated.add(index)
    return repeated


def _people(records: list[_Record], problems: list[Problem]) -> list[Person]:
    repeated = _repeated(records, lambda r: r.values["id"], "id", "user id", problems)
    repeated |= _repeated(records, lambda r: r.values["email"].lower(), "email", "email", problems)
    people: list[Person] = []
    for index, record in enumerate(records):
        v = record.values
        ok = _required(record, USERS.required, problems)
        role = _choice(record, "role", PERSON_ROLES, problems) if v["role"] else None
        status = _choice(record, "status", PERSON_STATUSES, problems, default="active")
        if v["email"] and not _looks_like_email(v["email"]):
            problems.append(record.problem("email", f"'{v['email']}' is not an email address"))
            ok = False
        if role == "learner" and status == "active" and not v["year_group"]:
            problems.append(record.problem("year_group", "year_group is empty; it is required for learners"))
            ok = False
        if ok and role is not None and status is not None and index not in repeated:
            people.append(
                Person(
                    id=v["id"],
                    role=role,
                    email=v["email"],
                    first_name=v["first_name"],
                    last_name=v["last_name"],
                    year_group=v["year_group"] or None,
                    status=status,
                    employee_id=v["employee_id"] or None,
                    school=v["school"] or None,
                )
            )
    return people


def _groups(records: list[_Record], problems: list[Problem]) -> list[Group]:
    repeated = _repeated(records, lambda r: r.values["id"], "id", "group id", problems)
    groups: list[Group] = []
    for index, record in enumerate(records):
        v = record.values
        ok = _required(record, GROUPS.required, problems)
        kind = _choice(record, "type", GROUP_TYPES, problems) if v["type"] else None
        if ok and kind is not None and index not in repeated:
            groups.append(
                Group(
                    id=v["id"],
                    name=v["name"],
                    type=kind,
                    subject=v["subject"] or None,
                    year_group=v["year_group"] or None,
                    school=v["school"] or None,
                )
            )
    return groups


def _memberships(
    records: list[_Record],
    user_ids: set[str] | None,
    group_ids: set[str] | None,
    learner_ids: set[str],
    problems: list[Problem],
    notes: list[str],
) -> list[Membership]:
    memberships: list[Membership] = []
    first_line: dict[tuple[str, str, str], _Record] = {}
    duplicates: list[str] = []
    for record in records:
        group_id, user_id = record.values["group_id"], record.values["user_id"]
        ok = bool(group_id and user_id) or _required(record, ("group_id", "user_id"), problems)
        role: MembershipRole | None = None
        if record.values["role"]:
            role = _choice(record, "role", MEMBERSHIP_ROLES, problems)
        else:
            _required(record, ("role",), problems)
        if group_id and group_ids is not None and group_id not in group_ids:
            problems.append(record.problem("group_id", f"group id '{group_id}' is not in {GROUPS_FILE}"))
            ok = False
        if user_id and user_ids is not None and user_id not in user_ids:
            problems.append(record.problem("user_id", f"user id '{user_id}' is not in {USERS_FILE}"))
            ok = False
        if role in OWNER_ROLES and user_id in learner_ids:
            # A teacher or mentor becomes the group's (and the Team's) owner: never a pupil.
            problems.append(
                record.problem("role", f"user '{user_id}' is a learner and cannot have role {role}")
            )
            ok = False
        if not ok or role is None:
            continue
        key = (group_id, user_id, role)
        earlier = first_line.get(key)
        if earlier is not None:
            duplicates.append(f"{record.file} {record.label} repeats {earlier.label}")
            continue
        first_line[key] = record
        memberships.append(Membership(group_id=group_id, user_id=user_id, role=role))
    if duplicates:
        shown = "; ".join(duplicates[:5]) + (
            f"; and {len(duplicates) - 5} more" if len(duplicates) > 5 else ""
        )
        plural = "s" if len(duplicates) > 1 else ""
        notes.append(f"{len(duplicates)} duplicate membership row{plural} ignored ({shown})")
    return memberships


def _build_roster(collected: _Collected, label: str) -> Roster:
    problems, notes = collected.problems, collected.notes
    user_records = collected.tables.get(USERS_FILE)
    group_records = collected.tables.get(GROUPS_FILE)
    membership_records = collected.tables.get(MEMBERSHIPS_FILE)
    people = _people(user_records, problems) if user_records is not None else []
    groups = _groups(group_records, problems) if group_records is not None else []
    # A membership is checked against every id the file lists, valid row or not, so that one bad user row
    # gives one problem, not one more per membership naming that user.
    user_ids = {r.values["id"] for r in user_records if r.values["id"]} if user_records is not None else None
    group_ids = (
        {r.values["id"] for r in group_records if r.values["id"]} if group_records is not None else None
    )
    learner_ids = {p.id for p in people if p.role == "learner"}
    memberships = (
        _memberships(membership_records, user_ids, group_ids, learner_ids, problems, notes)
        if membership_records is not None
        else []
    )
    valid_people = {p.id for p in people}
    valid_groups = {g.id for g in groups}
    memberships = [m for m in memberships if m.user_id in valid_people and m.group_id in valid_groups]
    return Roster(
        people=tuple(people),
        groups=tuple(groups),
        memberships=tuple(memberships),
        source=label,
        notes=tuple(notes),
    )


__all__ = [
    "GROUPS",
    "MEMBERSHIPS",
    "TABLES",
    "USERS",
    "InvalidExportError",
    "TableSpec",
    "read_realsmart_document",
    "read_realsmart_export",
]
