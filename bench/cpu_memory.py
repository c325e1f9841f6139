"""CPU per record, peak memory, and the cost of writing results, for a whole target process.

1. CPU per record at zero latency, validate_records on and off (goals: 1.0 and 0.8 ms).
2. Peak RSS for 100k and 1M records in dry_run (goal: at most 150 MB at 1M, flat in N).
3. The cost of writing results: dry_run with no results file and `results_in_state: none`,
   against a results file and `results_in_state: records`.
Each figure subtracts the fixed cost of a run (start, listUserFields, exit), measured in the
same run with an empty input.
Usage: python bench/cpu_memory.py [--records N] [--memory 100000,1000000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import emulator, per_record_ms, run_target, singer_input, target_config

CPU_GOALS_MS = {True: 1.0, False: 0.8}
RSS_GOAL_MB = 150


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20000, help="records for CPU figures")
    parser.add_argument("--memory", default="100000,1000000", help="record counts for RSS")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    n = args.records
    with emulator() as url:
        fixed = run_target(target_config(url), singer_input(0, folder))
        cpu = {}
        for validate in (True, False):
            path = singer_input(n, folder, tag=f"-v{validate}")
            cpu[validate] = run_target(target_config(url, validate_records=validate), path)
        dry_path = singer_input(n, folder, tag="-dry")
        quiet = run_target(target_config(url, dry_run=True, results_in_state="none"), dry_path)
        loud = run_target(
            target_config(
                url,
                dry_run=True,
                results_in_state="records",
                results_path=str(folder / "results.jsonl"),
            ),
            dry_path,
        )
        memory = []
        for count in (int(c) for c in args.memory.split(",")):
            path = singer_input(count, folder, tag="-mem")
            memory.append((count, run_target(target_config(url, dry_run=True), path)))
            path.unlink()

    print(f"fixed cost of a run: {fixed.cpu_s:.2f} s CPU, {fixed.max_rss_mb:.0f} MB peak RSS\n")
    print(f"CPU per record at zero latency, {n:,} records, whole target-convio process:\n")
    print("| validate_records | CPU ms/record | records/s | goal |")
    print("|---|---|---|---|")
    for validate, measured in cpu.items():
        ms = per_record_ms(measured, fixed, n)
        rate = n / (measured.wall_s - fixed.wall_s)
        goal = CPU_GOALS_MS[validate]
        print(
            f"| {'on' if validate else 'off'} | {ms:.3f} | {rate:,.0f} | {goal} ms "
            f"{'met' if ms <= goal else 'MISSED'} |"
        )
    print("\nPeak RSS in dry_run (every record mapped, checked and given a row):\n")
    print("| records | peak RSS MB | vs fixed cost | goal |")
    print("|---|---|---|---|")
    for count, measured in memory:
        verdict = "met" if measured.max_rss_mb <= RSS_GOAL_MB else "MISSED"
        print(
            f"| {count:,} | {measured.max_rss_mb:.1f} | "
            f"{measured.max_rss_mb / fixed.max_rss_mb:.2f}x | {RSS_GOAL_MB} MB {verdict} |"
        )
    print(f"\nCost of writing results, dry_run, {n:,} records:\n")
    print("| results | CPU ms/record |")
    print("|---|---|")
    quiet_ms, loud_ms = per_record_ms(quiet, fixed, n), per_record_ms(loud, fixed, n)
    print(f"| no file, `results_in_state: none` | {quiet_ms:.4f} |")
    print(f"| file + `results_in_state: records` | {loud_ms:.4f} |")
    print(f"| difference: writing results | {loud_ms - quiet_ms:.4f} |")


if __name__ == "__main__":
    main()
