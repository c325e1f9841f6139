"""The ledger's own work for a sent record of a first run, apart from the rest of the target.

In one process, for new donors in checkpoints of 500: the gate's two queries (`lookup`, and
`claims` for their emails), then `RecordInLedger.commit` of their rows (each created, with a
cons_id), as a first run with a SQLite ledger does them. The rows are made before it counts.

By default: CPU per record (best of the rounds). `--instructions`: user-space instructions
per record under valgrind's callgrind, the same run counted with and without the ledger's
work and the difference taken: deterministic to about 0.5%, where whole runs move by 1%.

Usage: python bench/ledger_commit.py [--records N] [--rounds N] [--instructions]
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import CALLGRIND, collected

from target_convio.commit import RecordInLedger, Settled
from target_convio.digests import fingerprint_of, identity_of, match_claims
from target_convio.ledger import Ledger
from target_convio.outcomes import Outcome
from target_convio.rows import LedgerNote, RecordRef, ResultRow
from target_convio.summary import Summary

CHECKPOINT = 500
SITE = "http://127.0.0.1:43117/site/SRConsAPI"


def rows(records: int, first: int = 0) -> list[ResultRow]:
    """Created donors' rows, with the note the gate gives a record it sends."""
    made = []
    for i in range(first, first + records):
        params = {
            "primary_email": f"donor{i}@example.org",
            "name.first": "Bench",
            "name.last": f"Donor{i}",
            "primary_address.city": "Austin",
        }
        key = {"id": i}
        note = LedgerNote(
            identity_of(key, params) or "",
            fingerprint_of("createOrUpdate", params),
            params,
            key,
            claims=frozenset(match_claims(params).values()),
        )
        record = RecordRef("run", "donors", i, key)
        made.append(ResultRow(record, Outcome.CREATED, cons_id=str(10**6 + i), ledger=note))
    return made


def load(made: list[ResultRow], work: bool) -> float:
    """The ledger's work on `made` in a new ledger (none if not `work`): CPU seconds."""
    ledger = Ledger.open(f"sqlite:///{tempfile.mkdtemp(prefix='bench-')}/ledger.sqlite", SITE)
    step = RecordInLedger(ledger, "run", logging.getLogger("bench"))
    started = time.process_time()
    for start in range(0, len(made) if work else 0, CHECKPOINT):
        chunk = made[start : start + CHECKPOINT]
        ledger.lookup("donors", [row.ledger.identity for row in chunk if row.ledger])
        ledger.claims(
            "donors", sorted({c for row in chunk if row.ledger for c in row.ledger.claims})
        )
        step.commit(Settled(start // CHECKPOINT, chunk, True, None, Summary()))
    spent = time.process_time() - started
    ledger.close()
    return spent


def counted(records: int, work: bool) -> int:
    """User-space instructions of this script's `--once` run, under callgrind."""
    once = [sys.executable, __file__, "--once", str(records), "1" if work else "0"]
    log = Path(tempfile.mkdtemp(prefix="bench-")) / "callgrind.log"
    subprocess.run([*CALLGRIND, f"--log-file={log}", *once], check=True, capture_output=True)
    try:
        return collected(log)
    finally:
        log.unlink()


def main() -> None:
    if sys.argv[1:2] == ["--once"]:
        load(rows(int(sys.argv[2])), work=sys.argv[3] == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--instructions", action="store_true", help="count, under callgrind")
    args = parser.parse_args()
    if args.instructions:
        extra = counted(args.records, True) - counted(args.records, False)
        print(
            f"the ledger's work: {extra / args.records / 1000:.1f} thousand instructions a record"
        )
        return
    best = min(load(rows(args.records, r * args.records), True) for r in range(args.rounds))
    print(f"the ledger's work: {best / args.records * 1e6:.1f} us CPU a record (best of rounds)")


if __name__ == "__main__":
    main()
