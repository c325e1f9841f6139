"""Two target processes sharing one site of finite capacity: adaptive concurrency keeps both
going without drawing the site's refusals, where fixed concurrency draws many."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from target_convio.emulator import Emulator, Faults
from tests.target.conftest import EXE, donor, schema, singer_lines

RECORDS = 150


def two_at_once(emulator: Emulator, config_for, tmp_path: Path, **settings: object) -> None:
    """Two target processes loading 150 donors each at once; every donor created."""
    processes = []
    for part in (0, 1):
        config = config_for(
            emulator,
            results_path=str(tmp_path / f"results{part}.jsonl"),
            ledger_url=f"sqlite:///{tmp_path / f'ledger{part}.sqlite'}",
            max_concurrency=32,
            max_retries=10,
            **settings,
        )
        path = tmp_path / f"config{part}.json"
        path.write_text(json.dumps(config))
        process = subprocess.Popen(
            [EXE, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        processes.append(process)
    messages = [[schema(), *(donor(part * 1000 + i) for i in range(RECORDS))] for part in (0, 1)]
    for process, part in zip(processes, messages, strict=True):
        assert process.stdin is not None
        process.stdin.write(singer_lines(part))
        process.stdin.close()
    for process in processes:
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stderr.close()
        assert process.wait(120) == 0, stderr
    for part in (0, 1):
        rows = (tmp_path / f"results{part}.jsonl").read_text().splitlines()
        assert [json.loads(row)["outcome"] for row in rows] == ["created"] * RECORDS


def refused_share(emulator: Emulator) -> float:
    return emulator.faults_injected.get("over_capacity", 0) / sum(emulator.calls.values())


def test_two_processes_share_a_small_site_without_drawing_its_refusals(
    config_for, tmp_path
) -> None:
    shares = {}
    for adaptive in (True, False):
        with Emulator(faults=Faults(latency_ms=20, capacity=4)) as emulator:
            folder = tmp_path / str(adaptive)
            folder.mkdir()
            two_at_once(emulator, config_for, folder, adaptive_concurrency=adaptive)
            assert len(emulator.constituents()) == 2 * RECORDS
            shares[adaptive] = refused_share(emulator)
    assert shares[False] >= 0.2  # 32 calls each at a site that refuses past 8
    # Adaptive: only the overshoot of the first doublings, short as this load is.
    assert shares[True] <= min(0.1, shares[False] / 3)
