"""CSV tables of the multi-file roster formats (OneRoster, School Data Sync): finding, decoding, reading.

The files come as a folder or a .zip, named case-insensitively. Each table is read by header name,
never by position: headers are compared without case and with runs of spaces folded, so `SIS ID`,
`sis id ` and `Sis  Id` are one column, and a format's alternative names for a column (SDS v1's US
`SIS ID` and UK `ID`) are looked up as alternatives. Every problem found is added to a shared list with
its file, line and column, so a reader can report them all at once.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from smartsync.errors import Problem

_SPACES = re.compile(r"\s+")


def header_key(name: str) -> str:
    """How a header is compared: case and surrounding or repeated spaces do not matter."""
    return _SPACES.sub(" ", name.strip().lower())


@dataclass(frozen=True)
class Row:
    """One data row: where it is, and its values by header key (stripped; absent columns read as "")."""

    file: str
    line: int
    values: dict[str, str]
    headers: dict[str, str]  # header key -> the header as written, for messages

    def get(self, *names: str) -> str:
        """The first non-empty value among alternative column names."""
        for name in names:
            value = self.values.get(header_key(name), "")
            if value:
                return value
        return ""

    def column_name(self, *names: str) -> str:
        """The column as the file writes it (the first alternative present), for pointing at a value."""
        for name in names:
            written = self.headers.get(header_key(name))
            if written is not None:
                return written
        return names[0]

    def problem(self, column: str | Sequence[str] | None, message: str) -> Problem:
        names = (column,) if isinstance(column, str) else tuple(column or ())
        return Problem(self.file, self.line, self.column_name(*names) if names else None, message)


@dataclass
class Table:
    """A CSV file read by header name."""

    file: str
    headers: dict[str, str]  # header key -> as written, in file order
    rows: list[Row] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        return any(header_key(name) in self.headers for name in names)


SourceFiles = dict[str, tuple[str, bytes]]  # lower-case file name -> (name to show, bytes)


def source_files(path: Path, problems: list[Problem]) -> SourceFiles | None:
    """The CSV files of a folder or a .zip, by lower-case file name; None (and a problem) if unreadable."""
    if not path.exists():
        problems.append(Problem(str(path), None, None, "does not exist; check source.path in the config"))
        return None
    if path.is_dir():
        return {
            p.name.lower(): (p.name, p.read_bytes())
            for p in sorted(path.iterdir())
            if p.is_file() and p.suffix.lower() == ".csv"
        }
    if path.suffix.lower() == ".zip":
        try:
            archive = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, OSError) as exc:
            problems.append(Problem(path.name, None, None, f"cannot be opened as a zip file ({exc})"))
            return None
        found: SourceFiles = {}
        with archive:
            # Zipped with their folder or not: match on the file name, ignoring directories.
            for entry in archive.infolist():
                base = entry.filename.rsplit("/", 1)[-1]
                if not entry.is_dir() and base.lower().endswith(".csv"):
                    found.setdefault(base.lower(), (f"{path.name}:{entry.filename}", archive.read(entry)))
        return found
    problems.append(
        Problem(
            path.name,
            None,
            None,
            "is neither a folder nor a .zip; point source.path at the folder of CSV files",
        )
    )
    return None


def decode(name: str, data: bytes, problems: list[Problem]) -> str | None:
    """UTF-8 text without a byte-order mark; a problem naming the line of the first bad byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        bad = data[exc.start : exc.end].hex(" ").upper()
        problems.append(
            Problem(name, line, None, f"is not UTF-8 (byte {bad}); export or save the file as UTF-8")
        )
        return None


def read_table(
    name: str,
    data: bytes,
    required: Sequence[Sequence[str]],
    problems: list[Problem],
    *,
    allow_empty: bool = False,
) -> Table | None:
    """Read one CSV file; `required` lists columns, each as its alternative names.

    Returns None when the table cannot be used at all (undecodable, no header, a required column
    missing); the reason is in `problems`.
    """
    text = decode(name, data, problems)
    if text is None:
        return None
    if not text.strip():
        problems.append(Problem(name, None, None, "is empty; expected a header row and data rows"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header_row = next(reader)
    except csv.Error as exc:
        problems.append(Problem(name, 1, None, f"the header row cannot be read as CSV ({exc})"))
        return None
    keys = [header_key(cell) for cell in header_row]
    headers: dict[str, str] = {}
    for key, written in zip(keys, header_row, strict=True):
        if not key:
            continue
        if key in headers:
            problems.append(Problem(name, 1, written.strip(), f"column '{written.strip()}' appears twice"))
        headers.setdefault(key, written.strip())
    table = Table(name, headers)
    missing = [alternatives for alternatives in required if not table.has(*alternatives)]
    for alternatives in missing:
        also = f" (or {', '.join(repr(a) for a in alternatives[1:])})" if len(alternatives) > 1 else ""
        problems.append(
            Problem(
                name,
                1,
                alternatives[0],
                f"required column '{alternatives[0]}'{also} is missing "
                f"(the header has: {', '.join(headers.values())})",
            )
        )
    if missing:
        return None
    width = len(keys)
    last_line = reader.line_num
    try:
        for cells in reader:
            line = last_line + 1  # a quoted value may span lines: point at the row's first line
            last_line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) > width and any(cell.strip() for cell in cells[width:]):
                problems.append(
                    Problem(
                        name,
                        line,
                        None,
                        f"has {len(cells)} values but the header has {width} columns; "
                        "check for an unquoted comma",
                    )
                )
                continue
            values: dict[str, str] = {}
            for key, cell in zip(keys, cells, strict=False):
                if key and key not in values:
                    values[key] = cell.strip()
            table.rows.append(Row(name, line, values, headers))
    except csv.Error as exc:
        problems.append(
            Problem(
                name, reader.line_num, None, f"cannot be read as CSV ({exc}); later rows were not checked"
            )
        )
    if not table.rows and not allow_empty:
        problems.append(Problem(name, None, None, "has a header but no data rows; is the export complete?"))
    return table


__all__ = ["Row", "SourceFiles", "Table", "decode", "header_key", "read_table", "source_files"]
