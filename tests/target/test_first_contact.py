"""`first_contact: read` against a populated emulator: a key the ledger does not know is read
first, adopted without a write when Convio already holds it, written by the cons_id found
when it differs, refused when several constituents match, created when nobody does."""

from __future__ import annotations

from target_convio.emulator import Faults
from tests.conftest import site_with
from tests.target.conftest import DONOR_SCHEMA, donor

PROPERTIES = {**DONOR_SCHEMA["properties"], "monthly": {"type": ["boolean", "null"]}}
SEEDS = [
    {  # holds what donor 2 sends, its group included
        "cons_id": "701",
        "fields": {
            "email.primary_address": "donor2@example.org",
            "name.first": "First2",
            "name.last": "Last2",
        },
        "groups": [1001],
    },
    {  # donor 3, in another city and not yet in the group
        "cons_id": "702",
        "fields": {
            "email.primary_address": "donor3@example.org",
            "name.first": "First3",
            "name.last": "Last3",
            "primary_address.city": "Boston",
        },
    },
    {"cons_id": "703", "fields": {"email.primary_address": "twin@example.org"}},
    {"cons_id": "704", "fields": {"email.primary_address": "twin@example.org"}},
]
INPUT = [
    {
        "type": "SCHEMA",
        "stream": "donors",
        "schema": {"properties": PROPERTIES},
        "key_properties": ["id"],
    },
    donor(1, monthly=True),  # nobody: created
    donor(2, monthly=True),  # identical: adopted
    donor(3, city="Austin", monthly=True),  # differs: written by 702
    donor(4, email="twin@example.org"),  # several: refused, never written
]


def test_a_first_sync_adopts_what_convio_holds_and_writes_only_what_differs(
    make_api, config_for, run_target, ledger_url
) -> None:
    emulator = make_api(site_with(constituents=SEEDS)).emulator
    config = config_for(
        emulator, ledger_url=ledger_url, first_contact="read", group_map={"monthly": 1001}
    )
    run = run_target(config, INPUT)
    assert run.returncode == 0, run.stderr
    rows = run.rows
    assert [(r["outcome"], r["cons_id"], r["code"]) for r in rows] == [
        ("created", rows[0]["cons_id"], None),
        ("unchanged", "701", None),
        ("updated", "702", None),
        ("rejected", None, "8"),
    ]
    assert rows[1]["message"] == "adopted: constituent 701 already holds every value; not written"
    assert run.states[-1]["target_convio"]["summary"]["adopted"] == 1
    assert "adopted            1 (of the unchanged: found, not written)" in run.stderr
    assert rows[2]["changes"] == {
        "group:1001": [False, True],
        "primary_address.city": ["Boston", "Austin"],
    }
    assert rows[3]["message"].startswith("not written: several records match (code 8)")
    assert rows[3]["errors"][0]["code"] == "conflicting_data"
    assert "changes" not in rows[0]
    assert "changes" not in rows[1]
    assert [r["attempts"] for r in rows] == [2, 2, 3, 1]  # reads and writes alike
    assert emulator.calls == {
        "listUserFields": 1,
        "getUser": 4,
        "getUserGroups": 2,  # of the two found
        "createOrUpdate": 2,
    }
    stored = {c["cons_id"]: c for c in emulator.constituents()}
    assert len(stored) == 5
    assert stored["701"]["updates"] == 0  # no write: no interaction on its history
    assert stored["702"]["updates"] == 1
    assert stored["702"]["fields"]["primary_address.city"] == "Austin"
    assert stored["702"]["groups"] == [1001]
    assert stored[rows[0]["cons_id"]]["groups"] == [1001]
    assert not any(c["welcome_sent"] for c in stored.values())

    again = run_target(config, INPUT)  # the ledger knows every key now: not one call
    assert [r["outcome"] for r in again.rows] == ["unchanged"] * 3 + ["rejected"]
    assert [r["cons_id"] for r in again.rows[:3]] == [r["cons_id"] for r in rows[:3]]
    assert emulator.calls == {
        "listUserFields": 2,
        "getUser": 4,
        "getUserGroups": 2,
        "createOrUpdate": 2,
    }


def test_a_membership_convio_lacks_is_all_that_is_written(make_api, config_for, run_target) -> None:
    seeds = [{**SEEDS[0], "groups": [], "interests": [2]}]
    emulator = make_api(site_with(constituents=seeds)).emulator
    maps = {"group_map": {"monthly": 1001}, "interest_map": {"alerts": 2}}
    config = config_for(emulator, first_contact="read", **maps)
    properties = {**PROPERTIES, "alerts": {"type": ["boolean", "null"]}}
    stream = {**INPUT[0], "schema": {"properties": properties}}
    (row,) = run_target(config, [stream, donor(2, monthly=True, alerts=True)]).rows
    assert (row["outcome"], row["cons_id"]) == ("updated", "701")
    assert row["changes"] == {"group:1001": [False, True]}
    (stored,) = emulator.constituents()
    assert (stored["groups"], stored["interests"]) == ([1001], [2])
    assert emulator.calls["getUserGroups"] == emulator.calls["getUserInterests"] == 1


def test_a_read_that_fails_leaves_a_failed_row_and_the_next_run_reads_again(
    make_api, config_for, run_target
) -> None:
    emulator = make_api(site_with(constituents=SEEDS[:1])).emulator
    emulator.faults = Faults(error_rate=1.0, error_code=1, methods=frozenset({"getUser"}))
    config = config_for(emulator, first_contact="read", max_retries=0)
    (failed,) = run_target(config, [INPUT[0], donor(2)]).rows
    assert (failed["outcome"], failed["code"]) == ("failed", "1")
    assert failed["message"].startswith("not written: could not read Convio:")
    assert emulator.calls.get("createOrUpdate") is None
    emulator.faults = Faults()
    (adopted,) = run_target(config, [INPUT[0], donor(2)]).rows
    assert (adopted["outcome"], adopted["cons_id"]) == ("unchanged", "701")
    assert emulator.calls.get("createOrUpdate") is None


def test_without_first_contact_read_every_new_key_is_written(
    make_api, config_for, run_target
) -> None:
    emulator = make_api(site_with(constituents=SEEDS[:1])).emulator
    (row,) = run_target(config_for(emulator), [INPUT[0], donor(2)]).rows
    assert (row["outcome"], row["cons_id"]) == ("updated", "701")
    assert emulator.calls == {"listUserFields": 1, "createOrUpdate": 1}


def test_reads_that_fail_do_not_trip_the_failure_breaker(make_api, config_for, run_target) -> None:
    emulator = make_api(site_with(constituents=SEEDS[:1])).emulator
    emulator.faults = Faults(error_rate=1.0, error_code=1, methods=frozenset({"getUser"}))
    config = config_for(emulator, first_contact="read", max_retries=0, max_failure_rate=0.1)
    run = run_target(config, [INPUT[0], *(donor(i) for i in range(1, 41))])
    assert run.returncode == 0, run.stderr  # 40 failed reads, and the breaker never opened
    assert [r["outcome"] for r in run.rows] == ["failed"] * 40
    assert emulator.calls == {"listUserFields": 1, "getUser": 40}


def test_a_get_user_answer_without_a_cons_id_is_a_failed_read_never_an_adoption(
    make_api, config_for, run_target
) -> None:
    emulator = make_api(site_with(constituents=SEEDS[:1])).emulator
    get_user = emulator.server.methods.table["getUser"]

    def without_cons_id(params: dict) -> tuple[str, dict]:
        root, body = get_user(params)
        return root, {k: v for k, v in body.items() if k != "cons_id"}

    emulator.server.methods.table["getUser"] = without_cons_id
    (row,) = run_target(config_for(emulator, first_contact="read"), [INPUT[0], donor(2)]).rows
    assert (row["outcome"], row["cons_id"]) == ("failed", None)
    assert "getUser answered without a cons_id" in row["message"]
    assert "createOrUpdate" not in emulator.calls


def test_reads_count_for_the_daily_budget(make_api, config_for, run_target) -> None:
    emulator = make_api(site_with()).emulator
    config = config_for(emulator, first_contact="read", max_calls_per_day=2)
    run = run_target(config, [INPUT[0], donor(1)])
    assert run.returncode == 75, run.stderr  # listUserFields and the read spent it
    assert emulator.calls == {"listUserFields": 1, "getUser": 1}  # so no write
    assert run.results == []  # the record is sent by the run that resumes
    assert "max_calls_per_day" in run.errors[0]
