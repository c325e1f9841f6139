"""The end-of-run replay query against ledgers of 10k, 100k and 1M keys, 10 of them queued:
with the queue's index (site, stream, identity, holding only queued entries) and with the
index of schema 4 and before (site, stream, state), in one sitting, on SQLite (PostgreSQL
with --postgres URL).
Usage: python bench/replay_scan.py [--sizes 10000,100000,1000000] [--postgres URL]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

from target_convio.ledger import FAILED, Ledger
from target_convio.ledger_schema import CREATE_QUEUE_INDEX, QUEUE_INDEX, entries

SITE = "https://secure2.convio.net/org/site/SRConsAPI"
QUEUED = 10
OLD_INDEX = (
    "CREATE INDEX target_convio_ledger_replays ON target_convio_ledger (site, stream, state)"
)


def fill(ledger: Ledger, keys: int) -> None:
    now = dt.datetime.now(dt.timezone.utc)
    every = keys // QUEUED
    with ledger.engine.begin() as connection:
        connection.execute(entries.delete())
        for start in range(0, keys, 50_000):
            connection.execute(
                entries.insert(),
                [
                    {
                        "site": ledger.site,
                        "stream": "donors",
                        "identity": f"{i:064x}",
                        "fingerprint": "f" * 64,
                        "state": FAILED if i % every == 0 else "accepted",
                        "updated_at": now,
                        "replays": 0,
                        "replay_params": '{"params": {"primary_email": "a@example.org"}}'
                        if i % every == 0
                        else None,
                    }
                    for i in range(start, min(keys, start + 50_000))
                ],
            )
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE target_convio_ledger"))


def timed(ledger: Ledger) -> float:
    """Milliseconds to read the whole queue, the best of five."""
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        found = list(ledger.replays("donors", "run"))
        best = min(best, time.perf_counter() - started)
        assert len(found) == QUEUED
    return best * 1000


def swap(ledger: Ledger, *, new_index: bool) -> None:
    with ledger.engine.begin() as connection:
        connection.execute(sa.text(f"DROP INDEX IF EXISTS {QUEUE_INDEX}"))
        connection.execute(sa.text("DROP INDEX IF EXISTS target_convio_ledger_replays"))
        if new_index:
            connection.execute(sa.text(CREATE_QUEUE_INDEX))
        else:
            connection.execute(sa.text(OLD_INDEX))
        if connection.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE target_convio_ledger"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--postgres", help="a PostgreSQL ledger_url to measure as well")
    args = parser.parse_args()
    urls = [f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench-')) / 'ledger.sqlite'}"]
    if args.postgres:
        urls.append(args.postgres)
    print(f"{'ledger':<10} {'keys':>9} {'queue index ms':>15} {'old index ms':>13} {'ratio':>6}")
    for url in urls:
        ledger = Ledger.open(url, SITE)
        for keys in (int(size) for size in args.sizes.split(",")):
            fill(ledger, keys)
            swap(ledger, new_index=False)
            old = timed(ledger)
            swap(ledger, new_index=True)
            new = timed(ledger)
            name = ledger.engine.dialect.name
            print(f"{name:<10} {keys:>9,} {new:>15.2f} {old:>13.2f} {old / new:>6.0f}")
        ledger.close()


if __name__ == "__main__":
    main()
