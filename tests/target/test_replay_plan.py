"""The replay query reads only the queued entries: its plan uses the queue's index, on SQLite
and on PostgreSQL, so its cost follows the queue, not the ledger. Older ledgers gain it, and
the claims each entry lists, in place."""

from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from target_convio.digests import cons_id_claim, match_claims
from target_convio.ledger import CLAIMS_QUERY, FAILED, LOOKUP_QUERY, Ledger
from target_convio.ledger_schema import CREATE_QUEUE_INDEX, claims, entries, rekey
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
                        "replay_params": '{"params": {}}' if i % 50 == 0 else None,
                    }
                    for i in range(2000)
                ],
            )
        found = plan(ledger)
        assert "target_convio_ledger_queued" in found, found
        assert "TEMP B-TREE" not in found.upper()  # ordered by the index: no sort
        assert "Sort" not in found
    finally:
        ledger.close()


def email_claim(email: str) -> str:
    return match_claims({"primary_email": email})["primary_email"]


def claims_of(ledger: Ledger, key: int) -> tuple[set[str], set[str]]:
    """What the key's entry lists, and the claim rows that name it."""
    with ledger.engine.connect() as connection:
        identity, listed = connection.execute(
            sa.text("SELECT identity, claims FROM target_convio_ledger WHERE record_key = :key"),
            {"key": json.dumps({"id": key})},
        ).one()
        rows = connection.execute(
            sa.text("SELECT hash FROM target_convio_claims WHERE identity = :identity"),
            {"identity": identity},
        ).all()
    return set((listed or "").split()), {row[0] for row in rows}


def test_a_version_4_ledger_gains_the_queue_index_the_claims_lists_and_the_history_in_place(
    emulator, config_for, run_target, ledger_url
) -> None:
    config = config_for(emulator, ledger_url=ledger_url)
    first = run_target(config, [schema(), donor(1, email="old@example.org")])
    assert first.returncode == 0, first.stderr
    ledger = Ledger.open(ledger_url, SITE)
    with ledger.engine.begin() as connection:  # as the release before the history left it
        connection.execute(sa.text("DROP TABLE target_convio_runs"))
        connection.execute(sa.text("DROP INDEX target_convio_ledger_queued"))
        connection.execute(sa.text("ALTER TABLE target_convio_ledger DROP COLUMN claims"))
        connection.execute(
            sa.text(
                "CREATE INDEX target_convio_ledger_replays "
                "ON target_convio_ledger (site, stream, state)"
            )
        )
        connection.execute(
            sa.text(
                "CREATE INDEX target_convio_claims_identity "
                "ON target_convio_claims (site, stream, identity)"
            )
        )
        connection.execute(sa.text("UPDATE target_convio_meta SET value = '4'"))
    run = run_target(config, [schema(), donor(2)])
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["created"]
    with ledger.engine.connect() as connection:
        version = connection.execute(sa.text("SELECT value FROM target_convio_meta")).scalar()
        entry_indexes = sa.inspect(connection).get_indexes("target_convio_ledger")
        claim_indexes = sa.inspect(connection).get_indexes("target_convio_claims")
        runs = connection.execute(sa.text("SELECT ended FROM target_convio_runs")).all()
    assert version == "7"
    assert {i["name"] for i in entry_indexes} == {"target_convio_ledger_queued"}
    assert claim_indexes == []
    assert runs == [("finished",)]  # the run that upgraded it is the history's first
    listed, held = claims_of(ledger, 1)  # listed by the upgrade: its email and its cons_id
    assert (
        listed == held == {email_claim("old@example.org"), cons_id_claim(first.rows[0]["cons_id"])}
    )
    # The key's new email is accepted: the old one is released, and another key may use it.
    moved = run_target(config, [schema(), donor(1, email="new@example.org")])
    taken = run_target(config, [schema(), donor(3, email="old@example.org")])
    ledger.close()
    assert [r["outcome"] for r in moved.rows + taken.rows] == ["updated", "created"]


def explain(ledger: Ledger, query: str) -> str:
    """The plan of one of the ledger's driver-SQL reads, for the site, `donors` and two values."""
    sql = query.format("'x'", "'a', 'b'")
    with ledger.engine.connect() as connection:
        if ledger.engine.dialect.name == "postgresql":
            connection.execute(sa.text("SET enable_seqscan = off"))
            return "\n".join(str(r[0]) for r in connection.exec_driver_sql(f"EXPLAIN {sql}"))
        return "\n".join(
            str(r[-1]) for r in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        )


def test_lookups_seek_each_key_by_its_hash(ledger_url) -> None:
    ledger = Ledger.open(ledger_url, SITE)
    try:
        found = {query: explain(ledger, query) for query in (LOOKUP_QUERY, CLAIMS_QUERY)}
    finally:
        ledger.close()
    for query, text in found.items():  # each value sought by the key that begins with it
        first = "identity" if query is LOOKUP_QUERY else "hash"
        sqlite_seeks = f"({first}=?" in text.replace(" ", "") and "SCAN" not in text
        postgresql_seeks = "_pkey" in text and "Seq Scan" not in text
        assert sqlite_seeks or postgresql_seeks, text


def primary_keys(ledger: Ledger) -> dict[str, list[str]]:
    with ledger.engine.connect() as connection:
        inspector = sa.inspect(connection)
        return {
            table.name: inspector.get_pk_constraint(table.name)["constrained_columns"]
            for table in (entries, claims)
        }


def test_a_version_6_ledger_is_keyed_by_hash_first_keeping_every_entry_and_claim(
    emulator, config_for, run_target, ledger_url
) -> None:
    config = config_for(emulator, ledger_url=ledger_url)
    first = run_target(config, [schema(), donor(1), donor(2, email="two@example.org")])
    assert first.returncode == 0, first.stderr
    ledger = Ledger.open(ledger_url, SITE)
    old = sa.MetaData()
    with ledger.engine.begin() as connection:  # as schema 6 keyed them: site and stream first
        for table in (entries, claims):
            first_key = ("site", "stream", "hash" if table is claims else "identity")
            columns = [sa.Column(c.name, c.type, nullable=c.nullable) for c in table.c]
            keyed = sa.Table(table.name, old, *columns, sa.PrimaryKeyConstraint(*first_key))
            rekey(connection, keyed)
        connection.execute(sa.text(CREATE_QUEUE_INDEX))
        connection.execute(sa.text("UPDATE target_convio_meta SET value = '6'"))
    assert primary_keys(ledger) == {
        "target_convio_ledger": ["site", "stream", "identity"],
        "target_convio_claims": ["site", "stream", "hash"],
    }
    # Donor 1 unchanged (its entry kept); donor 3 with donor 2's email (its claim kept).
    run = run_target(config, [schema(), donor(1), donor(3, email="two@example.org")])
    assert run.returncode == 0, run.stderr
    with ledger.engine.connect() as connection:
        version = connection.execute(sa.text("SELECT value FROM target_convio_meta")).scalar()
        indexes = sa.inspect(connection).get_indexes("target_convio_ledger")
        kept = connection.execute(sa.text("SELECT count(*) FROM target_convio_claims")).scalar()
    keys = primary_keys(ledger)
    ledger.close()
    assert [r["outcome"] for r in run.rows] == ["unchanged", "invalid"]
    assert "already_used" in json.dumps(run.rows[1])
    assert version == "7"
    assert keys == {
        "target_convio_ledger": ["identity", "site", "stream"],
        "target_convio_claims": ["hash", "site", "stream"],
    }
    assert {i["name"] for i in indexes} == {"target_convio_ledger_queued"}
    assert kept == 4  # two keys, each its email and its cons_id
