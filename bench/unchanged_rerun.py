"""CPU per record of an unchanged rerun (every record settled by the ledger, no call), the
fixed cost of a run subtracted: the figure issue 21 aims to bring to 0.10 ms.
Usage: python bench/unchanged_rerun.py [--records 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from harness import emulator, per_record_ms, run_target, singer_input, target_config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3, help="reruns; the best is reported")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    ledger = f"sqlite:///{folder / 'ledger.sqlite'}"
    with emulator() as url:
        config = target_config(url, max_concurrency=8, batch_size_rows=500, ledger_url=ledger)
        empty = singer_input(0, folder)
        fixed = min((run_target(config, empty) for _ in range(args.repeat)), key=lambda m: m.cpu_s)
        path = singer_input(args.records, folder)
        run_target(config, path)  # the first run: the ledger learns every key
        reruns = [run_target(config, path) for _ in range(args.repeat)]
    best = min(reruns, key=lambda m: m.cpu_s)
    per_record = per_record_ms(best, fixed, args.records)
    print(f"unchanged rerun of {args.records:,} records: {per_record:.3f} ms CPU per record")


if __name__ == "__main__":
    main()
