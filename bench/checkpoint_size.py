"""What small checkpoints cost: records/s with batch_size_rows 1 against 500, in one run.

Each checkpoint commits its rows and prints a STATE line; with a checkpoint per record that
work must not throttle the calls. The emulator answers after LATENCY_MS; both runs use
max_concurrency 4, so the ideal is the same for both and the ratio shows the checkpoint cost.
Usage: python bench/checkpoint_size.py [--records N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from harness import emulator, run_target, singer_input, target_config

LATENCY_MS = 5
SIZES = (1, 500)
GOAL = 0.8  # records/s with batch_size_rows 1, as a share of those with 500


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    rates = {}
    with emulator("--latency-ms", str(LATENCY_MS)) as url:
        path = singer_input(args.records, folder)
        for size in SIZES:
            config = target_config(url, max_concurrency=4, batch_size_rows=size)
            measured = run_target(config, path)
            assert measured.returncode == 0, measured
            rates[size] = args.records / measured.wall_s
    ratio = rates[1] / rates[500]
    print(f"{args.records} records, emulator latency {LATENCY_MS} ms, max_concurrency 4")
    print("| batch_size_rows | records/s (whole run) |")
    print("|---|---|")
    for size in SIZES:
        print(f"| {size} | {rates[size]:,.0f} |")
    verdict = "met" if ratio >= GOAL else "MISSED"
    print(f"| ratio 1 / 500 | {ratio:.2f} (goal {GOAL}: {verdict}) |")


if __name__ == "__main__":
    sys.exit(main())
