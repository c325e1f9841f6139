"""The first sync of a populated site, with and without `first_contact: read`.

The emulator starts holding 20,000 constituents: 90% exactly as the warehouse has them, 10%
in another city. The warehouse sends those 20,000 and 1,000 new donors. Each mode runs on a
fresh copy of the site and a fresh ledger, at 50 ms per call and a fixed concurrency; then
`read` runs again on its ledger. Reports writes, reads and wall time of each.
Usage: python bench/first_contact.py [--held 20000] [--new 1000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from harness import emulator, run_target, singer_input, site_state, target_config, write_calls

LATENCY_MS = 50


def seed(held: int, path: Path) -> None:
    """The site's constituents: donor i as the warehouse sends it, every tenth in Boston."""
    constituents = [
        {
            "cons_id": str(1_000_000 + i),
            "fields": {
                "email.primary_address": f"donor{i}@example.org",
                "name.first": "Bench",
                "name.last": f"Donor{i}",
                "primary_address.city": "Boston" if i % 10 == 0 else "Austin",
            },
        }
        for i in range(1, held + 1)
    ]
    path.write_text(json.dumps(constituents))


def first_sync(
    mode: str, seeded: Path, input_path: Path, folder: Path, concurrency: int
) -> tuple[float, int, int, float]:
    """Wall time, writes and reads of a first sync; then the calls of a second run."""
    state = folder / f"site-{mode}.json"
    shutil.copy(seeded, state)  # the emulator saves its state here when it stops
    config = target_config(
        "",
        ledger_url=f"sqlite:///{folder / f'ledger-{mode}.sqlite'}",
        first_contact=mode,
        max_concurrency=concurrency,
    )
    with emulator("--state-file", str(state), "--latency-ms", str(LATENCY_MS)) as url:
        config["api_url"] = url
        measured = run_target(config, input_path)
        assert measured.returncode == 0, measured
        writes = write_calls(url)
        reads = site_state(url)["calls"].get("getUser", 0)
        before = sum(site_state(url)["calls"].values())
        again = run_target(config, input_path)
        assert again.returncode == 0, again
        second = sum(site_state(url)["calls"].values()) - before - 1  # less listUserFields
    return measured.wall_s, writes, reads, second


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--held", type=int, default=20_000)
    parser.add_argument("--new", type=int, default=1_000)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    seeded = folder / "seeded.json"
    seed(args.held, seeded)
    input_path = singer_input(args.held + args.new, folder)
    differing = args.held // 10
    print(
        f"A site holding {args.held:,} donors ({differing:,} differing), the warehouse sending "
        f"those and {args.new:,} new; {LATENCY_MS} ms a call, {args.concurrency} at once"
    )
    print(f"{'first_contact':<14} {'wall s':>7} {'writes':>7} {'reads':>7} {'2nd run calls':>14}")
    walls = {}
    for mode in ("write", "read"):
        wall, writes, reads, second = first_sync(mode, seeded, input_path, folder, args.concurrency)
        walls[mode] = wall
        print(f"{mode:<14} {wall:>7.1f} {writes:>7,} {reads:>7,} {second:>14,}")
    print(f"wall time, read / write: {walls['read'] / walls['write']:.2f}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
