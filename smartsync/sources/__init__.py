"""Roster sources: read a school's roster export into a validated `Roster`.

`read_roster` dispatches on `source.type` of the config; each reader collects every problem in its
input and raises `InputDataError` listing them, so nothing downstream runs on a half-valid roster.
"""

from __future__ import annotations

from pathlib import Path

from smartsync.config import SourceConfig
from smartsync.errors import ConfigError
from smartsync.roster import Roster
from smartsync.sources.realsmart import InvalidExportError, read_realsmart_export


def resolve_source_path(path: Path, base_dir: Path | None) -> Path:
    """A relative `source.path` is relative to the config file's folder, not to where cron runs."""
    expanded = path.expanduser()
    if expanded.is_absolute() or base_dir is None:
        return expanded
    return base_dir / expanded


def read_roster(source: SourceConfig, *, base_dir: Path | None = None) -> Roster:
    """Read the roster the config's `source` names; raise `InputDataError` listing every problem."""
    if source.type == "realsmart-export":
        assert source.path is not None  # the config model requires a path for this type
        return read_realsmart_export(resolve_source_path(source.path, base_dir))
    raise ConfigError(
        f"source.type '{source.type}' is not supported yet; use source.type: realsmart-export with "
        "source.path pointing at the export folder, .zip or .json file."
    )


__all__ = ["InvalidExportError", "read_realsmart_export", "read_roster", "resolve_source_path"]
