"""Memberships the warehouse owns: group_map and interest_map against the emulator's groups."""

from __future__ import annotations

import json
import sqlite3

import pytest
import sqlalchemy as sa

from target_convio.emulator import Emulator
from tests.target.conftest import DONOR_SCHEMA, cli, donor, singer_lines

PROPERTIES = {
    **DONOR_SCHEMA["properties"],
    "monthly": {"type": ["boolean", "string", "null"]},
    "volunteer": {"type": ["boolean", "null"]},
    "alerts": {"type": ["boolean", "null"]},
}
MAPS = {"group_map": {"monthly": 1001, "volunteer": 1002}, "interest_map": {"alerts": 2}}


def schema() -> dict:
    return {
        "type": "SCHEMA",
        "stream": "donors",
        "schema": {"properties": PROPERTIES},
        "key_properties": ["id"],
    }


def stored(emulator: Emulator) -> dict:
    (record,) = emulator.constituents()
    return {"groups": record["groups"], "interests": record["interests"]}


@pytest.fixture
def sync(emulator, config_for, run_target, ledger_url):
    def run(*records: dict, **settings):
        before = emulator.calls.get("createOrUpdate", 0)
        config = config_for(emulator, ledger_url=ledger_url, **MAPS, **settings)
        outcome = run_target(config, [schema(), *records])
        assert outcome.returncode == 0, outcome.stderr
        return outcome, emulator.calls.get("createOrUpdate", 0) - before

    return run


def test_true_adds_false_removes_null_leaves_and_hand_made_groups_stay(sync, emulator) -> None:
    sync(donor(1, monthly=True, volunteer=True, alerts=True))
    assert stored(emulator) == {"groups": [1001, 1002], "interests": [2]}
    emulator.store.get(emulator.constituents()[0]["cons_id"]).groups.add(1003)  # by staff
    run, sent = sync(donor(1, monthly="no", volunteer=None, alerts=False))
    assert (sent, run.rows[0]["outcome"]) == (1, "updated")
    assert stored(emulator) == {"groups": [1002, 1003], "interests": []}


def test_an_unchanged_membership_costs_no_call(sync, emulator) -> None:
    sync(donor(1, monthly=True))
    again, sent = sync(donor(1, monthly=True))
    assert (sent, again.rows[0]["outcome"]) == (0, "unchanged")
    left, sent = sync(donor(1, monthly=False))
    assert (sent, left.rows[0]["outcome"]) == (1, "updated")
    assert stored(emulator)["groups"] == []


def test_only_the_difference_from_what_convio_confirmed_is_sent(sync, emulator) -> None:
    sync(donor(1, monthly=True, volunteer=False))
    cons_id = emulator.constituents()[0]["cons_id"]
    emulator.store.get(cons_id).groups.discard(1001)  # staff took it away by hand
    _, sent = sync(donor(1, monthly=True, volunteer=True))
    assert sent == 1
    # Only the change was sent (add 1002): 1001, which the ledger holds as confirmed, is not
    # re-added; resend_after_days or full_sync would bring it back.
    assert stored(emulator)["groups"] == [1002]
    sync(donor(1, monthly=True, volunteer=True), full_sync=True)
    assert stored(emulator)["groups"] == [1001, 1002]


def test_a_value_that_is_not_true_or_false_is_invalid(sync, emulator) -> None:
    run, sent = sync(donor(1, monthly="sometimes"))
    assert (sent, run.rows[0]["outcome"]) == (0, "invalid")
    assert run.rows[0]["errors"][0]["field"] == "monthly"


def test_groups_below_1000_are_refused_before_any_call(emulator, config_for, tmp_path) -> None:
    config = config_for(emulator, group_map={"monthly": 101})
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = cli("--config", str(tmp_path / "config.json"), stdin=singer_lines([schema()]))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "group_map names groups below 1000, which are Convio's own" in errors[0]
    assert "monthly: 101" in errors[0]
    assert emulator.calls == {}


def test_a_version_1_ledger_is_upgraded_in_place(emulator, config_for, run_target, tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:  # the schema target-convio's first ledger wrote
        old.executescript(
            "CREATE TABLE target_convio_meta (name VARCHAR(64) PRIMARY KEY, value VARCHAR(200));"
            "INSERT INTO target_convio_meta VALUES ('schema_version', '1');"
            "CREATE TABLE target_convio_ledger (site VARCHAR(500), stream VARCHAR(500),"
            " identity VARCHAR(64), fingerprint VARCHAR(64) NOT NULL, state VARCHAR(16) NOT NULL,"
            " cons_id VARCHAR(64), code VARCHAR(16), message TEXT, confirmed_at DATETIME,"
            " updated_at DATETIME NOT NULL, last_run VARCHAR(64), replay_params TEXT,"
            " replays INTEGER NOT NULL, PRIMARY KEY (site, stream, identity));"
        )
    config = config_for(emulator, ledger_url=f"sqlite:///{path}", **MAPS)
    run_target(config, [schema(), donor(1, monthly=True)])
    again = run_target(config, [schema(), donor(1, monthly=True)])
    assert again.rows[0]["outcome"] == "unchanged"
    with sqlite3.connect(path) as upgraded:
        assert upgraded.execute("SELECT value FROM target_convio_meta").fetchone() == ("7",)
        (memberships,) = upgraded.execute("SELECT memberships FROM target_convio_ledger").fetchone()
    assert json.loads(memberships) == {"group:1001": True}


def test_a_version_2_ledger_is_upgraded_in_place(emulator, config_for, run_target, ledger_url):
    """Version 2 bounded its texts; on PostgreSQL they become unbounded, with claims beside."""
    engine = sa.create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as old:  # the schema the memberships release wrote
        old.execute(
            sa.text(
                "CREATE TABLE target_convio_meta (name VARCHAR(64) PRIMARY KEY, value VARCHAR(200))"
            )
        )
        old.execute(sa.text("INSERT INTO target_convio_meta VALUES ('schema_version', '2')"))
        old.execute(
            sa.text(
                "CREATE TABLE target_convio_ledger (site VARCHAR(500), stream VARCHAR(500),"
                " identity VARCHAR(64), fingerprint VARCHAR(64) NOT NULL,"
                " state VARCHAR(16) NOT NULL,"
                " cons_id VARCHAR(64), code VARCHAR(16), message TEXT, confirmed_at TIMESTAMP,"
                " updated_at TIMESTAMP NOT NULL, last_run VARCHAR(64), replay_params TEXT,"
                " replays INTEGER NOT NULL, memberships TEXT, PRIMARY KEY (site, stream, identity))"
            )
        )
    config = config_for(emulator, ledger_url=ledger_url, **MAPS)
    run_target(config, [schema(), donor(1, monthly=True, city="Austin")])
    again = run_target(config, [schema(), donor(1, monthly=True, city="Austin")])
    assert again.rows[0]["outcome"] == "unchanged"
    with engine.connect() as upgraded:
        version = upgraded.execute(sa.text("SELECT value FROM target_convio_meta")).scalar()
        claims = upgraded.execute(sa.text("SELECT count(*) FROM target_convio_claims")).scalar()
        listed = upgraded.execute(sa.text("SELECT claims FROM target_convio_ledger")).scalar()
    engine.dispose()
    assert (version, claims, len(listed.split())) == ("7", 2, 2)  # the email and the cons_id
