"""Roster sources: read a school's roster export into a validated `Roster`.

`read_roster` dispatches on `source.type` of the config: the Realsmart export (`realsmart`), the same
export over HTTPS (`https`), OneRoster CSV (`oneroster`) and School Data Sync CSV (`sds`). Each reader
collects every problem in its input and raises `InputDataError` listing them, so nothing downstream
runs on a half-valid roster; each maps its format onto the same `Roster`.
"""

from __future__ import annotations

from pathlib import Path

from smartsync.config import SourceConfig
from smartsync.errors import ConfigError
from smartsync.roster.model import Roster
from smartsync.roster.sources.mapping import GradeMap
from smartsync.roster.sources.oneroster import read_oneroster
from smartsync.roster.sources.realsmart import InvalidExportError, read_realsmart_export
from smartsync.roster.sources.sds import read_sds


def resolve_source_path(path: Path, base_dir: Path | None) -> Path:
    """A relative `source.path` is relative to the config file's folder, not to where cron runs."""
    expanded = path.expanduser()
    if expanded.is_absolute() or base_dir is None:
        return expanded
    return base_dir / expanded


def read_roster(source: SourceConfig, *, base_dir: Path | None = None) -> Roster:
    """Read the roster the config's `source` names; raise `InputDataError` listing every problem.

    `realsmart-https` raises `ConfigError` when the server refuses the token and `InputDataError` when
    the export cannot be fetched whole.
    """
    if source.type == "realsmart-https":
        from smartsync.roster.sources.https import read_realsmart_https

        return read_realsmart_https(source)
    assert source.path is not None  # the config model requires a path for the file-based types
    path = resolve_source_path(source.path, base_dir)
    grade_map = GradeMap(source.grade_map)
    if source.type == "oneroster-csv":
        return read_oneroster(path, grade_map=grade_map, username_domain=source.username_domain)
    if source.type == "sds-csv":
        return read_sds(path, grade_map=grade_map, username_domain=source.username_domain)
    if source.type == "realsmart-export":
        return read_realsmart_export(path)
    raise ConfigError(
        f"source.type '{source.type}' is not known; use realsmart-export, realsmart-https, oneroster-csv "
        "or sds-csv."
    )


__all__ = [
    "InvalidExportError",
    "read_oneroster",
    "read_realsmart_export",
    "read_roster",
    "read_sds",
    "resolve_source_path",
]
