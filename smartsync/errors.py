"""Typed errors and the exit codes they map to (DESIGN §2).

Everything that can stop a run raises one of these; the CLI has one handler that turns them into a
message and an exit code. Messages give the fact, the numbers and the next step, and never carry a
secret or a token.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_INPUT = 2
EXIT_AUTH = 3
EXIT_REFUSED = 4
EXIT_LOCKED = 5


class SmartsyncError(Exception):
    """Base for errors a person can act on."""

    exit_code = EXIT_INPUT


class ConfigError(SmartsyncError):
    """The config file is missing, unreadable or invalid."""

    exit_code = EXIT_INPUT


@dataclass(frozen=True)
class Problem:
    """One problem found in input data, located as precisely as the input allows."""

    file: str
    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
        if self.column:
            where += f" (column {self.column})"
        return f"{where}: {self.message}"


class InputDataError(SmartsyncError):
    """The roster source is invalid; every problem found is listed, nothing was written."""

    exit_code = EXIT_INPUT

    def __init__(self, problems: list[Problem], source: str = "roster") -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(
            f"The {source} has {count} problem{'s' if count != 1 else ''}; nothing was written. "
            "Fix the export and run `smartsync validate` again."
        )


class AuthError(SmartsyncError):
    """Authentication failed or a permission is missing; nothing was written."""

    exit_code = EXIT_AUTH


class SafetyRefusal(SmartsyncError):
    """A safety limit refused the plan; nothing was written."""

    exit_code = EXIT_REFUSED

    def __init__(self, limit: str, value: float, allowed: float, message: str) -> None:
        self.limit = limit
        self.value = value
        self.allowed = allowed
        super().__init__(message)


class LockHeldError(SmartsyncError):
    """Another run holds the lock."""

    exit_code = EXIT_LOCKED
