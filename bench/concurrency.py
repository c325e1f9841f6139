"""Adaptive concurrency against sites of finite capacity (the emulator's --capacity: N calls
served at once at 40 ms, more queue, past 2N refused with HTTP 503).

For each capacity: the target at several fixed concurrencies and adaptive with a ceiling of
64, never told the capacity; throughput as a share of the best fixed one measured in the same
run, and the share of calls refused. Then two target processes at once against one site of
capacity 8: each one's throughput and the refusals.
Usage: python bench/concurrency.py [--capacities 3,8,24] [--seconds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BIN, emulator, run_target, singer_input, site_state, target_config

LATENCY_MS = 40
CEILING = 64


def refused_share(url: str, before: dict) -> float:
    after = site_state(url)
    calls = sum(after["calls"].values()) - sum(before["calls"].values())
    refused = after["faults"].get("over_capacity", 0) - before["faults"].get("over_capacity", 0)
    return refused / calls if calls else 0.0


def measure(url: str, config: dict, records: int, folder: Path, tag: str) -> tuple[float, float]:
    """Records per second (loading only, start-up excluded) and the share of calls refused."""
    before = site_state(url)
    measured = run_target(config, singer_input(records, folder, tag=tag))
    assert measured.returncode == 0, measured
    return records / measured.wall_s, refused_share(url, before)


def two_at_once(url: str, records: int, folder: Path) -> tuple[list[float], float]:
    """Two target processes started together; each one's records per second."""
    before = site_state(url)
    processes = []
    for part in (0, 1):
        path = folder / f"config-{part}.json"
        path.write_text(json.dumps(target_config(url, max_concurrency=CEILING, **ADAPTIVE)))
        stdin = singer_input(records, folder, tag=f"-two{part}").open()
        processes.append(
            (
                time.perf_counter(),
                stdin,
                subprocess.Popen(
                    [BIN / "target-convio", "--config", path],
                    stdin=stdin,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                ),
            )
        )
    rates = []
    for started, stdin, process in processes:
        _, status, _ = os.wait4(process.pid, 0)
        rates.append(records / (time.perf_counter() - started))
        stdin.close()
        assert os.waitstatus_to_exitcode(status) == 0
    return rates, refused_share(url, before)


ADAPTIVE = {"adaptive_concurrency": True}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--capacities", default="3,8,24")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each load")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    print(
        f"emulator latency {LATENCY_MS} ms; adaptive ceiling {CEILING}; records/s of whole runs\n"
    )
    print(
        "| capacity | fixed: rec/s (refused) | best fixed | adaptive rec/s | ratio | "
        "adaptive refused | fixed 64 refused |"
    )
    print("|---|---|---|---|---|---|---|")
    for capacity in (int(c) for c in args.capacities.split(",")):
        records = max(40, int(args.seconds * capacity * 1000 / LATENCY_MS))
        with emulator("--latency-ms", str(LATENCY_MS), "--capacity", str(capacity)) as url:
            fixed = {}
            for level in sorted({max(1, capacity // 2), capacity, 2 * capacity, CEILING}):
                config = target_config(url, max_concurrency=level, max_retries=10)
                fixed[level] = measure(url, config, records, folder, f"-c{capacity}-{level}")
            config = target_config(url, max_concurrency=CEILING, max_retries=10, **ADAPTIVE)
            adaptive, refused = measure(url, config, records, folder, f"-c{capacity}-a")
        best = max(rate for rate, _ in fixed.values())
        shown = ", ".join(f"{lv}: {r:,.0f} ({f:.1%})" for lv, (r, f) in fixed.items())
        print(
            f"| {capacity} | {shown} | {best:,.0f} | {adaptive:,.0f} | {adaptive / best:.2f} | "
            f"{refused:.2%} | {fixed[CEILING][1]:.1%} |"
        )
    capacity = 8
    records = max(40, int(args.seconds * capacity * 1000 / LATENCY_MS))
    with emulator("--latency-ms", str(LATENCY_MS), "--capacity", str(capacity)) as url:
        rates, refused = two_at_once(url, records, folder)
    print(
        f"\nTwo processes at once, capacity {capacity}, {records} records each: "
        f"{rates[0]:,.0f} and {rates[1]:,.0f} rec/s (slower/faster {min(rates) / max(rates):.2f}),"
        f" {refused:.2%} of calls refused"
    )


if __name__ == "__main__":
    sys.exit(main())
