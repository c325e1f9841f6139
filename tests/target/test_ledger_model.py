"""The ledger's invariants (docs/ledger.md, "What the ledger guarantees") over random
nights: a fixed seed here, long runs with `python bench/ledger_model.py` (tests/ledger_model.py
says what is generated and checked)."""

from __future__ import annotations

from tests.ledger_model import play
from tests.target.conftest import EXE

SEED = 20261130
NIGHTS = 12


def test_random_nights_keep_one_constituent_per_key_with_its_latest_values(
    emulator, ledger_url, tmp_path
) -> None:
    # Slow by design (about 20 target runs per ledger): each night is a real process.
    play(SEED, NIGHTS, emulator, ledger_url, tmp_path, EXE)
