"""Throughput against the ideal: records/s at 50 ms latency for max_concurrency 1, 4, 16, 64,
fixed and as the ceiling of adaptive concurrency (a site without a capacity limit: adaptive
should climb to the ceiling and lose only its climb).

The ideal is concurrency / latency. Each target run is a whole `target-convio` process on a
Singer file; its fixed cost (start, listUserFields, exit) is measured in the same run with an
empty input and reported apart, so `load efficiency` shows how close the loading itself comes
to the ideal. The naive sequential script (bench/naive_load.py) runs last, as the baseline.
Usage: python bench/throughput.py [--records N] [--levels 1,4,16,64]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import BIN, emulator, run_target, singer_input, target_config

LATENCY_MS = 50
GOALS = {1: 0.9, 4: 0.9, 16: 0.9, 64: 0.75}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    parser.add_argument("--levels", default="1,4,16,64")
    args = parser.parse_args()
    levels = [int(n) for n in args.levels.split(",")]
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    rows = []
    with emulator("--latency-ms", str(LATENCY_MS)) as url:
        fixed = run_target(target_config(url), singer_input(0, folder)).wall_s
        for level in levels:
            path = singer_input(args.records, folder, tag=f"-c{level}")
            measured = run_target(target_config(url, max_concurrency=level), path)
            assert measured.returncode == 0, measured
            rows.append((f"target-convio, max_concurrency {level}", level, measured.wall_s))
            config = target_config(url, max_concurrency=level, adaptive_concurrency=True)
            measured = run_target(config, singer_input(args.records, folder, tag=f"-a{level}"))
            assert measured.returncode == 0, measured
            rows.append((f"target-convio, adaptive, ceiling {level}", level, measured.wall_s))
        path = singer_input(args.records, folder, tag="-naive")
        started = time.perf_counter()
        subprocess.run(
            [BIN / "python", Path(__file__).with_name("naive_load.py"), url, path], check=True
        )
        rows.append(("naive script (requests, sequential)", 1, time.perf_counter() - started))
    print(
        f"{args.records} records, emulator latency {LATENCY_MS} ms; fixed cost of a target "
        f"run (start, listUserFields, exit): {fixed:.2f} s"
    )
    print(
        "| loader | ideal rec/s | rec/s (whole run) | efficiency | rec/s (load) | "
        "load efficiency | goal |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, level, wall in rows:
        ideal = level * 1000 / LATENCY_MS
        whole = args.records / wall
        load = args.records / (wall - fixed) if name.startswith("target") else whole
        goal = GOALS.get(level, 0) if name.startswith("target") else None
        verdict = "" if goal is None else f"{goal} {'met' if load / ideal >= goal else 'MISSED'}"
        print(
            f"| {name} | {ideal:,.0f} | {whole:,.1f} | {whole / ideal:.3f} | {load:,.1f} | "
            f"{load / ideal:.3f} | {verdict} |"
        )


if __name__ == "__main__":
    sys.exit(main())
