"""The compare dry run: getUser per record, a prediction on every row, no write call, ever."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from tests.conftest import site_with
from tests.target.conftest import DONOR_SCHEMA, donor, schema

PROPERTIES = {**DONOR_SCHEMA["properties"], "monthly": {"type": ["boolean", "null"]}}
SEEDS = [
    {  # holds exactly what donor 2 sends (its date as getUser shows it, with a zone)
        "cons_id": "601",
        "fields": {
            "email.primary_address": "donor2@example.org",
            "name.first": "First2",
            "name.last": "Last2",
            "birth_date": "1975-03-15",
            "custom_string1": "Teal",
        },
        "groups": [1001],
    },
    {
        "cons_id": "602",
        "fields": {
            "email.primary_address": "donor3@example.org",
            "name.first": "First3",
            "name.last": "Last3",
            "primary_address.city": "Boston",
        },
    },
    {"cons_id": "603", "fields": {"email.primary_address": "twin@example.org"}},
    {"cons_id": "604", "fields": {"email.primary_address": "twin@example.org"}},
    {  # donor 6's email, with no member_id yet
        "cons_id": "605",
        "fields": {"email.primary_address": "donor6@example.org", "name.first": "First6"},
    },
    {"cons_id": "606", "member_id": "M7", "fields": {"email.primary_address": "seven@example.org"}},
    {"cons_id": "607", "fields": {"email.primary_address": "donor7@example.org"}},
]
INPUT = [
    {
        "type": "SCHEMA",
        "stream": "donors",
        "schema": {"properties": PROPERTIES},
        "key_properties": ["id"],
    },
    donor(1),  # nobody has donor1@: created
    donor(  # the same values and group
        2, birth_date="1975-03-15", email="DONOR2@example.org", custom_string1="Teal", monthly=True
    ),
    donor(3, city="Austin", custom_string1="Red", monthly=True),  # updated: two fields, a group
    donor(4, email="twin@example.org"),  # two records have it: ambiguous
    donor(5, gender="robot"),  # fails a check: rejected
    donor(6, member_id="M6"),  # a new member_id, an email Convio has: updated
    donor(7, member_id="M7"),  # 606's member_id, 607's email: refused (13)
]
GROUPS = {"group_map": {"monthly": 1001}}


def test_compare_predicts_every_record_and_writes_nothing(make_api, config_for, run_target) -> None:
    emulator = make_api(site_with(constituents=SEEDS)).emulator
    run = run_target(config_for(emulator, dry_run="compare", **GROUPS), INPUT)
    assert run.returncode == 0, run.stderr
    rows = run.results
    assert [(r["outcome"], r["predicted"], r["cons_id"]) for r in rows] == [
        ("skipped", "created", None),
        ("skipped", "unchanged", "601"),
        ("skipped", "updated", "602"),
        ("skipped", "ambiguous", None),
        ("invalid", "rejected", None),
        ("skipped", "updated", "605"),
        ("skipped", "rejected", "606"),
    ]
    assert rows[1]["changes"] == {}
    assert rows[2]["changes"] == {
        "custom_string1": [None, "Red"],  # read from getUser's custom.string list
        "group:1001": [False, True],
        "primary_address.city": ["Boston", "Austin"],
    }
    assert rows[5]["changes"] == {"member_id": [None, "M6"], "name.last": [None, "Last6"]}
    assert "belongs to constituent 607" in rows[6]["message"]
    assert "(code 13)" in rows[6]["message"]
    assert rows[0]["changes"] is None
    assert all(r["attempts"] == 0 for r in rows)
    # donors 6 and 7 took two reads each; the two found with the group mapped, a group read
    assert emulator.calls == {"listUserFields": 1, "getUser": 8, "getUserGroups": 2}
    assert run.states == []  # a dry run never moves the pipeline's bookmark
    table = dict(re.findall(r"would be (\w+) +(\d+)", run.stderr))
    assert table == {
        "ambiguous": "1",
        "created": "1",
        "rejected": "2",
        "unchanged": "1",
        "updated": "2",
    }


@pytest.mark.parametrize("first_contact", ["write", "read"])
def test_every_prediction_comes_true(make_api, config_for, run_target, first_contact) -> None:
    emulator = make_api(site_with(constituents=SEEDS)).emulator
    predicted = run_target(config_for(emulator, dry_run="compare", **GROUPS), INPUT).results
    config = config_for(emulator, ledger_url="none", first_contact=first_contact, **GROUPS)
    real = run_target(config, INPUT).rows
    came_true = {
        "created": {("created", None)},
        "updated": {("updated", None)},
        # Convio answers "updated" to an identical write; a read first writes nothing
        "unchanged": {("updated" if first_contact == "write" else "unchanged", None)},
        "ambiguous": {("rejected", "8"), ("rejected", "15")},
        "rejected": {("invalid", None), ("rejected", "13")},
    }
    for guess, outcome in zip(predicted, real, strict=True):
        assert (outcome["outcome"], outcome["code"]) in came_true[guess["predicted"]], outcome
        if guess["predicted"] in ("updated", "unchanged"):
            assert guess["cons_id"] == outcome["cons_id"]
    stored = {c["cons_id"]: c for c in emulator.constituents()}
    assert stored["602"]["fields"]["primary_address.city"] == "Austin"
    assert stored["602"]["groups"] == [1001]
    assert stored["605"]["member_id"] == "M6"
    assert stored["606"]["fields"]["email.primary_address"] == "seven@example.org"
    twins = Counter(c["fields"].get("email.primary_address") for c in stored.values())
    assert twins["twin@example.org"] == 2


def test_predictions_that_hang_on_the_ledger_come_true(emulator, config_for, run_target) -> None:
    first = run_target(config_for(emulator), [schema(), donor(1), donor(2)])
    merged = first.rows[0]["cons_id"]
    emulator.store.remove(merged)  # merged in Luminate into a survivor that has the email
    survivor = emulator.store.add({"email.primary_address": "donor1@example.org"}).cons_id

    moved = [schema(), donor(1, city="Austin")]  # changed, so the real run sends it
    looked = run_target(config_for(emulator, dry_run="compare"), moved)
    (guess,) = looked.results[-1:]
    assert (guess["predicted"], guess["cons_id"]) == ("updated", survivor)
    (real,) = run_target(config_for(emulator), moved).rows
    assert (real["outcome"], real["cons_id"]) == ("updated", survivor)

    create_only = config_for(emulator, sync_mode="create_only")
    looked = run_target({**create_only, "dry_run": "compare"}, [schema(), donor(2)])
    (guess,) = looked.results[-1:]
    assert (guess["outcome"], guess["predicted"]) == ("skipped", "skipped")
    (real,) = run_target(create_only, [schema(), donor(2)]).rows
    assert (real["outcome"], real["cons_id"]) == ("skipped", first.rows[1]["cons_id"])


def test_compare_finds_a_record_by_the_ledgers_cons_id(emulator, config_for, run_target) -> None:
    run_target(config_for(emulator), [schema(), donor(1)])  # the ledger learns its cons_id
    moved = [schema(), donor(1, email="moved@example.org")]
    run = run_target(config_for(emulator, dry_run="compare"), moved)
    (row,) = run.results[1:]
    assert row["predicted"] == "updated"
    assert row["changes"] == {"email.primary_address": ["donor1@example.org", "moved@example.org"]}
    assert emulator.calls.get("createOrUpdate") == 1  # the first run's only
