"""The README's promises under hostile answers, hostile input and crashes (each case a test)."""

from __future__ import annotations

from collections import Counter

import pytest

from target_convio.emulator import Emulator, Faults
from tests.conftest import site_with
from tests.target.conftest import donor, schema, state

CREATES = frozenset({"create"})
LOST_ANSWERS = {
    "answer past the timeout": (
        Faults(slow_rate=1.0, slow_ms=1500, methods=CREATES),
        {"request_timeout_seconds": 0.5},
    ),
    "reset after the write": (Faults(lost_rate=1.0, methods=CREATES), {}),
}


@pytest.mark.parametrize("unique_email", [False, True], ids=["duplicate emails", "unique email"])
@pytest.mark.parametrize("case", list(LOST_ANSWERS))
def test_a_create_whose_answer_is_lost_is_looked_up_never_sent_twice(
    make_api, config_for, run_target, case: str, unique_email: bool
) -> None:
    faults, settings = LOST_ANSWERS[case]
    emulator: Emulator = make_api(site_with(unique_email=unique_email), faults=faults).emulator
    messages = [schema(), donor(1), donor(2, member_id="M2"), donor(3)]
    config = config_for(emulator, sync_mode="create_only", max_retries=3, **settings)
    run = run_target(config, messages)
    assert run.returncode == 0, run.stderr
    stored = {r["fields"]["email.primary_address"]: r["cons_id"] for r in emulator.constituents()}
    assert Counter(r["fields"]["email.primary_address"] for r in emulator.constituents()) == {
        f"donor{i}@example.org": 1 for i in (1, 2, 3)
    }
    assert [(r["outcome"], r["code"], r["cons_id"]) for r in run.rows] == [
        ("created", None, stored[f"donor{i}@example.org"]) for i in (1, 2, 3)
    ]
    assert all("the answer to create was lost" in r["message"] for r in run.rows)
    assert emulator.calls["create"] == 3  # each sent once, then found with getUser
    assert emulator.calls["getUser"] == 3


def test_no_empty_checkpoint_trails_a_full_one(emulator, config_for, run_target) -> None:
    messages = [schema()]
    for i in range(1, 5):
        messages += [donor(i), state({"bookmarks": {"donors": {"id": i}}})]
    run = run_target(config_for(emulator, batch_size_rows=2), messages)
    assert run.returncode == 0, run.stderr
    assert [len(s["target_convio"]["results"]) for s in run.states] == [2, 2, 0]
    assert run.states[-1]["bookmarks"] == {"donors": {"id": 4}}  # the newer tap state
    quiet = run_target(config_for(emulator, batch_size_rows=2), [schema(), *messages[1::2]])
    assert [len(s["target_convio"]["results"]) for s in quiet.states] == [2, 2]
