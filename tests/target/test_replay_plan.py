"""The replay query reads only the queued entries: its plan uses the queue's index, on SQLite
and on PostgreSQL, so its cost follows the queue, not the ledger."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from target_convio.ledger import FAILED, Ledger
from target_convio.ledger_schema import entries
from tests.target.conftest import donor, schema

SITE = "https://secure2.convio.net/org/site/SRConsAPI"
NOW = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)


def replay_query(ledger: Ledger) -> sa.Select:
    """The statement `Ledger.replays` runs, as the ledger builds it."""
    return ledger.replay_statement("donors", "2026-11-30T02:00:00Z-ab12", after="")


def plan(ledger: Ledger) -> str:
    statement = replay_query(ledger)
    compiled = statement.compile(ledger.engine, compile_kwargs={"literal_binds": True})
    with ledger.engine.connect() as connection:
        if ledger.engine.dialect.name == "postgresql":
            connection.execute(sa.text("ANALYZE target_convio_ledger"))  # as autovacuum would
            connection.execute(sa.text("SET enable_seqscan = off"))  # a tiny table, still
            rows = connection.execute(sa.text(f"EXPLAIN {compiled}")).all()
            return "\n".join(str(row[0]) for row in rows)
        rows = connection.execute(sa.text(f"EXPLAIN QUERY PLAN {compiled}")).all()
        return "\n".join(str(row[-1]) for row in rows)


def test_the_replay_query_seeks_the_failed_entries_in_order(ledger_url) -> None:
    ledger = Ledger.open(ledger_url, SITE)
    try:
        with ledger.engine.begin() as connection:
            connection.execute(
                entries.insert(),
                [
                    {
                        "site": ledger.site,
                        "stream": "donors",
                        "identity": f"{i:064x}",
                        "fingerprint": "f" * 64,
                        "state": FAILED if i % 50 == 0 else "accepted",
                        "updated_at": NOW,
                        "replays": 0,
                    }
                    for i in range(2000)
                ],
            )
        found = plan(ledger)
        assert "target_convio_ledger_queue" in found, found
        assert "TEMP B-TREE" not in found.upper()  # ordered by the index: no sort
        assert "Sort" not in found
    finally:
        ledger.close()


def test_a_version_4_ledger_gains_the_queue_index_and_the_run_history_in_place(
    emulator, config_for, run_target, ledger_url
) -> None:
    config = config_for(emulator, ledger_url=ledger_url)
    assert run_target(config, [schema(), donor(1)]).returncode == 0
    ledger = Ledger.open(ledger_url, SITE)
    with ledger.engine.begin() as connection:  # as the release before the history left it
        connection.execute(sa.text("DROP TABLE target_convio_runs"))
        connection.execute(sa.text("DROP INDEX target_convio_ledger_queue"))
        connection.execute(
            sa.text(
                "CREATE INDEX target_convio_ledger_replays "
                "ON target_convio_ledger (site, stream, state)"
            )
        )
        connection.execute(sa.text("UPDATE target_convio_meta SET value = '4'"))
    run = run_target(config, [schema(), donor(1), donor(2)])
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["unchanged", "created"]
    with ledger.engine.connect() as connection:
        version = connection.execute(sa.text("SELECT value FROM target_convio_meta")).scalar()
        indexes = {i["name"] for i in sa.inspect(connection).get_indexes("target_convio_ledger")}
        runs = connection.execute(sa.text("SELECT ended FROM target_convio_runs")).all()
    ledger.close()
    assert version == "5"
    assert "target_convio_ledger_queue" in indexes
    assert "target_convio_ledger_replays" not in indexes
    assert runs == [("finished",)]  # the run that upgraded it is the history's first
