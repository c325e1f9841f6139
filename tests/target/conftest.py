"""Running `target-convio` as Meltano does: a subprocess fed Singer messages on stdin."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from target_convio.emulator import Emulator

EXE = shutil.which("target-convio") or str(Path(sys.executable).with_name("target-convio"))

DONOR_SCHEMA = {
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"]},
        "first_name": {"type": ["string", "null"]},
        "last_name": {"type": ["string", "null"]},
        "member_id": {"type": ["string", "null"]},
        "cons_id": {"type": ["string", "null"]},
        "user_name": {"type": ["string", "null"]},
        "gender": {"type": ["string", "null"]},
        "birth_date": {"type": ["string", "null"], "format": "date"},
        "city": {"type": ["string", "null"]},
        "custom_string1": {"type": ["string", "null"]},
    }
}
DONOR_MAP = {
    "email": "email.primary_address",
    "first_name": "name.first",
    "last_name": "name.last",
    "city": "primary_address.city",
}


def schema(
    stream: str = "donors", properties: dict | None = None, keys: list | None = None
) -> dict:
    return {
        "type": "SCHEMA",
        "stream": stream,
        "schema": {"properties": properties or DONOR_SCHEMA["properties"]},
        "key_properties": ["id"] if keys is None else keys,
    }


def record(fields: dict, stream: str = "donors") -> dict:
    return {"type": "RECORD", "stream": stream, "record": fields}


def state(value: dict) -> dict:
    return {"type": "STATE", "value": value}


def singer_lines(messages: list[dict | str]) -> str:
    """Messages as a Singer input stream; a str is written as it is (a raw, maybe bad, line)."""
    return "".join((m if isinstance(m, str) else json.dumps(m)) + "\n" for m in messages)


def cli(
    *args: str,
    env: dict | None = None,
    stdin: str = "",
    cwd: Path | None = None,
    exe: str = EXE,
) -> subprocess.CompletedProcess:
    """Run the target-convio command (or another of ours) to the end, by default in a fresh
    folder, where a config without ledger_url keeps its ledger."""
    return subprocess.run(
        [exe, *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
        env={**os.environ, **(env or {})},
        cwd=cwd or tempfile.mkdtemp(prefix="target-convio-"),
        check=False,
    )


def donor(i: int, **fields: Any) -> dict:
    base = {
        "id": i,
        "email": f"donor{i}@example.org",
        "first_name": f"First{i}",
        "last_name": f"Last{i}",
    }
    return record({**base, **fields})


def assert_no_secret(config: dict, *texts: str) -> None:
    """Every run of the target is checked: its secrets appear in none of its outputs."""
    for secret in (config.get("api_key"), config.get("login_password")):
        if secret:
            for text in texts:
                assert secret not in text, "a secret reached the output"


@dataclass
class TargetRun:
    returncode: int
    states: list[dict]
    stderr: str
    stdout: str
    results: list[dict]

    @property
    def rows(self) -> list[dict]:
        """Result rows carried by the STATE lines."""
        return [r for s in self.states for r in s["target_convio"].get("results", [])]

    @property
    def errors(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "| ERROR" in line]


@pytest.fixture
def run_target(tmp_path: Path):
    """Run target-convio on messages with a config; parse every stdout line as a STATE."""
    counter = iter(range(1000))

    def run(
        config: dict, messages: list[dict], *, env: dict | None = None, args: tuple[str, ...] = ()
    ) -> TargetRun:
        n = next(counter)
        config_path = tmp_path / f"config{n}.json"
        config_path.write_text(json.dumps(config))
        result = cli("--config", str(config_path), *args, env=env, stdin=singer_lines(messages))
        states = [json.loads(line) for line in result.stdout.splitlines()]
        results_path = config.get("results_path")
        results = []
        if results_path and Path(results_path).exists():
            results = [json.loads(line) for line in Path(results_path).read_text().splitlines()]
        assert_no_secret(config, result.stdout, result.stderr, json.dumps(results))
        return TargetRun(result.returncode, states, result.stderr, result.stdout, results)

    return run


@pytest.fixture
def config_for(tmp_path: Path):
    def make(emulator: Emulator, **overrides: Any) -> dict:
        return {
            "api_url": emulator.api_url,
            "api_key": "demo-api-key",
            "login_name": "apiuser",
            "login_password": "apipass",
            "field_map": DONOR_MAP,
            "results_path": str(tmp_path / "results.jsonl"),
            "ledger_url": f"sqlite:///{tmp_path / 'ledger.sqlite'}",
            **overrides,
        }

    return make
