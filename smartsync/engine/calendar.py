"""The school calendar: which academic year a date belongs to, and the summer quiet window.

Classes change every September and MIS ids get reused, so year-scoped groups carry their academic
year in their key. In the weeks before the new year starts the MIS is usually half rolled over:
runs then add but never remove, delete or archive.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from smartsync.config import YearConfig


@dataclass(frozen=True)
class AcademicYear:
    start_year: int

    @property
    def label(self) -> str:
        return f"{self.start_year}-{(self.start_year + 1) % 100:02d}"

    @property
    def key_part(self) -> str:
        return str(self.start_year)


def _month_day(text: str) -> tuple[int, int]:
    month, day = text.split("-")
    return int(month), int(day)


def academic_year(today: date, year: YearConfig) -> AcademicYear:
    if year.academic_year:
        return AcademicYear(int(year.academic_year[:4]))
    start = _month_day(year.start)
    return AcademicYear(today.year if (today.month, today.day) >= start else today.year - 1)


def in_quiet_window(today: date, year: YearConfig) -> bool:
    """True from `quiet_from` until the day before the academic year starts."""
    if year.quiet_from is None:
        return False
    begin, end, now = _month_day(year.quiet_from), _month_day(year.start), (today.month, today.day)
    if begin <= end:
        return begin <= now < end
    return now >= begin or now < end
