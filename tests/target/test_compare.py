"""The compare dry run: getUser per record, a prediction on every row, no write call, ever."""

from __future__ import annotations

import re
from collections import Counter

from tests.conftest import site_with
from tests.target.conftest import donor, schema

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
]
INPUT = [
    schema(),
    donor(1),  # nobody has donor1@: created
    donor(2, birth_date="1975-03-15", email="DONOR2@example.org", custom_string1="Teal"),  # same
    donor(3, city="Austin", custom_string1="Red"),  # updated: the city, a custom field
    donor(4, email="twin@example.org"),  # two records have it: ambiguous
    donor(5, gender="robot"),  # fails a check: rejected
]


def test_compare_predicts_every_record_and_writes_nothing(make_api, config_for, run_target) -> None:
    emulator = make_api(site_with(constituents=SEEDS)).emulator
    run = run_target(config_for(emulator, dry_run="compare"), INPUT)
    assert run.returncode == 0, run.stderr
    rows = run.results
    assert [(r["outcome"], r["predicted"]) for r in rows] == [
        ("skipped", "created"),
        ("skipped", "unchanged"),
        ("skipped", "updated"),
        ("skipped", "ambiguous"),
        ("invalid", "rejected"),
    ]
    assert rows[1]["changes"] == {}
    assert rows[2]["changes"] == {
        "custom_string1": [None, "Red"],  # read from getUser's custom.string list
        "primary_address.city": ["Boston", "Austin"],
    }
    assert rows[0]["changes"] is None
    assert all(r["attempts"] == 0 for r in rows)
    assert emulator.calls == {"listUserFields": 1, "getUser": 4}  # never a write
    assert run.states == []  # a dry run never moves the pipeline's bookmark
    table = re.findall(r"would be (\w+) +(\d+)", run.stderr)
    assert table == [(p, "1") for p in ("ambiguous", "created", "rejected", "unchanged", "updated")]


def test_every_prediction_comes_true(make_api, config_for, run_target) -> None:
    emulator = make_api(site_with(constituents=SEEDS)).emulator
    predicted = run_target(config_for(emulator, dry_run="compare"), INPUT).results
    real = run_target(config_for(emulator, ledger_url="none"), INPUT).rows
    came_true = {
        "created": {("created", None)},
        "updated": {("updated", None)},
        "unchanged": {("updated", None)},  # Convio answers "updated" to an identical write
        "ambiguous": {("rejected", "8"), ("rejected", "15")},
        "rejected": {("invalid", None)},
    }
    for guess, outcome in zip(predicted, real, strict=True):
        assert (outcome["outcome"], outcome["code"]) in came_true[guess["predicted"]], outcome
    stored = {c["cons_id"]: c["fields"] for c in emulator.constituents()}
    assert stored["602"]["primary_address.city"] == "Austin"
    assert Counter(f.get("email.primary_address") for f in stored.values())["twin@example.org"] == 2


def test_compare_finds_a_record_by_the_ledgers_cons_id(emulator, config_for, run_target) -> None:
    run_target(config_for(emulator), [schema(), donor(1)])  # the ledger learns its cons_id
    moved = [schema(), donor(1, email="moved@example.org")]
    run = run_target(config_for(emulator, dry_run="compare"), moved)
    (row,) = run.results[1:]
    assert row["predicted"] == "updated"
    assert row["changes"] == {"email.primary_address": ["donor1@example.org", "moved@example.org"]}
    assert emulator.calls.get("createOrUpdate") == 1  # the first run's only
