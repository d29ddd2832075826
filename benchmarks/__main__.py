"""`python -m benchmarks`: run the scenarios and write `benchmarks/results.json` (see README.md)."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.planning import measure_planning
from benchmarks.runner import CLIENTS, LATENCIES_MS, SCENARIOS, run_school
from smartsync.roster.sample import SIZES

RESULTS = Path(__file__).parent / "results.json"
# The naive client sends one request per membership: hundreds of thousands for a trust, which takes
# long in wall time without telling anything the secondary school does not.
NAIVE_SIZES = ("small", "secondary")
# The large trust (about 100,000 people, 50 schools) is there to show scale: its first sync (at no
# service time; the quotas set its pace) and its planning. Every scenario of it takes long.
SCALE_SIZES = ("trust50",)
SCALE_SCENARIOS = ("initial",)
SCALE_LATENCIES = (0.0,)


def _sizes(text: str) -> list[str]:
    sizes = [s for s in text.replace(",", "+").split("+") if s]
    unknown = [s for s in sizes if s not in SIZES]
    if unknown or not sizes:
        raise argparse.ArgumentTypeError(
            f"unknown size {', '.join(unknown)}; use {', '.join(SIZES)}, joined by +"
        )
    return sizes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--size",
        type=_sizes,
        default=["secondary", "trust", "trust50"],
        help="e.g. small, secondary+trust (default: secondary+trust+trust50)",
    )
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all of them")
    parser.add_argument("--client", choices=CLIENTS, action="append", help="default: both")
    parser.add_argument(
        "--naive-all-sizes", action="store_true", help="also run the naive client for the trust (slow)"
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        action="append",
        help=f"median service time per request; default: {', '.join(f'{ms:g}' for ms in LATENCIES_MS)}",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"default: {RESULTS.name} beside this file")
    args = parser.parse_args(argv)
    scenarios = tuple(args.scenario or SCENARIOS)
    results: list[dict[str, object]] = []

    started = time.perf_counter()
    for size in args.size:
        clients = tuple(
            c for c in (args.client or CLIENTS) if c != "naive" or size in NAIVE_SIZES or args.naive_all_sizes
        )
        scale = size in SCALE_SIZES
        measured = run_school(
            size,
            clients,
            tuple(s for s in scenarios if s in SCALE_SCENARIOS) if scale and not args.scenario else scenarios,
            latencies=tuple(args.latency_ms or (SCALE_LATENCIES if scale else LATENCIES_MS)),
            progress=lambda m: print(json.dumps(m.to_dict()), flush=True),
        )
        planning = measure_planning(size) if "smartsync" in clients else {}
        for m in measured:
            record = m.to_dict()
            if m.client == "smartsync" and m.scenario in planning and m.latency_ms == 0:
                record["planning"] = planning[m.scenario]
            results.append(record)
        if planning:
            print(json.dumps({"planning": planning}), flush=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(
        f"{len(results)} results in {time.perf_counter() - started:.0f} s "
        f"(Python {platform.python_version()}) written to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
