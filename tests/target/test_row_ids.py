"""`row_id`: one per result row, unique across runs, replays included, the same in the
results file and in STATE."""

from __future__ import annotations

from target_convio.emulator import Faults
from tests.target.conftest import donor, schema


def test_row_ids_are_unique_across_runs_and_replays(emulator, config_for, run_target) -> None:
    config = config_for(emulator, max_retries=0)
    emulator.faults = Faults(fail_values=frozenset({"Boston", "Denver"}))
    nights = [
        [schema(), donor(1), donor(2, city="Boston"), donor(3, city="Denver")],
        [schema(), donor(1), donor(4)],  # 2 and 3 are replayed, and fail again
        [schema(), donor(4)],
    ]
    runs = [run_target(config, night) for night in nights]
    assert all(run.returncode == 0 for run in runs)
    second = runs[1]
    assert [(r["seq"], r["outcome"]) for r in second.rows] == [
        (1, "unchanged"),
        (2, "created"),
        (None, "failed"),
        (None, "failed"),
    ]
    run_id = second.rows[0]["run_id"]
    assert [r["row_id"] for r in second.rows] == [
        f"{run_id}/donors/1",
        f"{run_id}/donors/2",
        f"{run_id}/donors/replay-1",
        f"{run_id}/donors/replay-2",
    ]
    results = runs[-1].results  # every run's rows, appended
    assert len(results) == 3 + 4 + 3
    assert len({r["row_id"] for r in results}) == len(results)
    assert [r["row_id"] for r in results] == [r["row_id"] for run in runs for r in run.rows]
    assert all(next(iter(r)) == "row_id" for r in results)  # the row's first field
