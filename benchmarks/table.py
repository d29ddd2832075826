"""`python -m benchmarks.table`: the Markdown table of `benchmarks/results.json` (as in README.md)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results.json"
HEADER = (
    "| school | scenario | client | latency | read | requests | round trips | writes (× floor) "
    "| RU (× floor) | 429s (share) | failed | sim s (× floor) |\n"
    "| --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def _ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def _seconds(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def row(r: dict[str, Any]) -> str:
    ratios = r["ratios"]
    return (
        f"| {r['school']} | {r['scenario']} | {r['client']} | {r['latency_ms']:g} ms | {r['read']} "
        f"| {r['requests']:,} | {r['batch_round_trips']:,} | {r['writes']:,} ({_ratio(ratios['writes'])}) "
        f"| {r['ru']:,} ({_ratio(ratios['ru'])}) | {r['throttled']:,} ({100 * r['throttled_share']:.1f} %) "
        f"| {r['failed_changes']} | {_seconds(r['sim_seconds'])} ({_ratio(ratios['sim_seconds'])}) |"
    )


def main(path: Path = RESULTS) -> int:
    results = json.loads(path.read_text(encoding="utf-8"))
    print(HEADER)
    for record in results:
        print(row(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
