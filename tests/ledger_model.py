"""A model-based test of the sync ledger (docs/ledger.md, "What the ledger guarantees"): random
nights, checked after each one.

A seeded generator plays a warehouse: people (keys) whose city and email change, new keys,
a key twice in one night's input, full and incremental inputs, a night's chosen records
failing past their retries, and `kill -9` at a random moment followed by a resume from the
last STATE line, as Meltano would. After every night it checks, against the emulator and
the results file:

- every input record of a run has exactly one row (a run that was killed: at most one);
- no key has two constituents, and no constituent holds another key's values;
- a key whose latest row says Convio accepted its values (created, updated, unchanged) has
  a constituent holding exactly the latest values sent for it;

and at the end, after a clean full night, that every key holds its latest values and that
the same full input again makes no write call at all.

Each constituent carries its key as its first name (`K7`), so whose values it holds is
always visible.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from target_convio.emulator import Emulator, Faults

WRITES = ("createOrUpdate", "create", "update")
SCHEMA_PROPERTIES = {
    "id": {"type": "integer"},
    "email": {"type": "string"},
    "first_name": {"type": "string"},
    "last_name": {"type": "string"},
    "city": {"type": "string"},
}
FIELD_MAP = {
    "email": "email.primary_address",
    "first_name": "name.first",
    "last_name": "name.last",
    "city": "primary_address.city",
}
ACCEPTED = ("created", "updated", "unchanged")


class InvariantBrokenError(AssertionError):
    """An invariant did not hold; the message names the seed and the night."""


@dataclass(frozen=True)
class Person:
    """One key's values as the warehouse holds them at some moment."""

    key: int
    email: str
    city: str
    version: int = 1

    def record(self) -> dict[str, Any]:
        return {
            "id": self.key,
            "email": self.email,
            "first_name": f"K{self.key}",
            "last_name": f"v{self.version}",
            "city": self.city,
        }


@dataclass
class Run:
    """One process's input, and whether it ran to its end."""

    people: list[Person]
    completed: bool = True


class History:
    """Nights of one seeded warehouse, loaded by the target into one emulator and ledger."""

    def __init__(
        self,
        seed: int,
        emulator: Emulator,
        ledger_url: str,
        folder: Path,
        executable: str,
        log: Callable[[str], object] = lambda line: None,
    ) -> None:
        self.seed = seed
        self.random = random.Random(seed)
        self.emulator = emulator
        self.ledger_url = ledger_url
        self.folder = folder
        self.executable = executable
        self.log = log
        self.people: dict[int, Person] = {}
        self.night_number = 0
        self._counter = itertools.count(1)
        self._results = folder / "results.jsonl"
        self._rows_read = 0
        self.last_run_id = ""
        self._pending: dict[int, Person] = {}  # failed: a replay will send these values
        self._status: dict[int, tuple[str, Person]] = {}  # the latest row's outcome, values
        for _ in range(6):
            self._new_person()

    # -- a night ----------------------------------------------------------------------------

    def night(self) -> None:
        """One night: the warehouse changes, the target loads it, the invariants are checked."""
        self.night_number += 1
        r = self.random
        for _ in range(r.choice([0, 0, 1, 2])):
            self._new_person()
        full = r.random() < 0.3
        keys = list(self.people)
        if not full:
            keys = r.sample(keys, r.randint(1, len(keys)))
        r.shuffle(keys)
        tonight = [self._edited(key) for key in keys]
        for person in list(tonight):
            if r.random() < 0.25:  # the key again, once or twice, later the same night
                after = tonight.index(person)
                for _ in range(r.choice([1, 1, 2])):
                    after = r.randint(after + 1, len(tonight))
                    tonight.insert(after, self._edited(person.key, changed=True))
        fresh = [p.city for p in tonight if p.city.startswith(f"c{self.night_number}-")]
        failing = set(r.sample(fresh, len(fresh) // 3)) if fresh and r.random() < 0.4 else set()
        kill = r.random() < 0.25
        settings = {
            "batch_size_rows": r.choice([2, 3, 5, 50]),
            "max_concurrency": r.choice([1, 4]),
        }
        self.log(
            f"night {self.night_number}: {len(tonight)} records ({'full' if full else 'some'}),"
            f" {len(failing)} failing{', killed and resumed' if kill else ''}, {settings}"
        )
        self.emulator.faults = Faults(fail_values=frozenset(failing))
        self._load(tonight, settings, kill=kill)
        self.emulator.faults = Faults()
        self.check()

    def finish(self) -> None:
        """A clean full night settles every key; the same input again makes no write call."""
        self.night_number += 1
        everyone = [self.people[key] for key in sorted(self.people)]
        self._load(everyone, {"batch_size_rows": 50, "max_concurrency": 4}, kill=False)
        self.check()
        unsettled = [key for key, (outcome, _) in self._status.items() if outcome not in ACCEPTED]
        self._expect(not unsettled, f"keys not settled after a clean full night: {unsettled}")
        before = self._writes()
        run_id = self._load(everyone, {"batch_size_rows": 50, "max_concurrency": 4}, kill=False)
        self._expect(self._writes() == before, "an unchanged full rerun made write calls")
        outcomes = Counter(row["outcome"] for row in self._rows_of(run_id))
        self._expect(outcomes == {"unchanged": len(everyone)}, f"the rerun's rows: {outcomes}")

    # -- the warehouse ----------------------------------------------------------------------

    def _new_person(self) -> None:
        key = len(self.people) + 1
        self.people[key] = Person(key, self._email(key), self._city())

    def _edited(self, key: int, *, changed: bool = False) -> Person:
        """The key's next values: a new city, a new email, or (unless `changed`) the same."""
        person = self.people[key]
        roll = self.random.random() * (0.7 if changed else 1.0)
        if roll < 0.5:
            person = replace(person, city=self._city(), version=person.version + 1)
        elif roll < 0.7:
            person = replace(person, email=self._email(key), version=person.version + 1)
        self.people[key] = person
        return person

    def _email(self, key: int) -> str:
        return f"k{key}-{next(self._counter)}@example.org"

    def _city(self) -> str:
        return f"c{self.night_number}-{next(self._counter)}"

    # -- running the target -----------------------------------------------------------------

    def _load(self, people: list[Person], settings: dict[str, Any], *, kill: bool) -> str:
        """Run the target on these records; killed at a random moment, then resumed from the
        last STATE line. Returns the run_id of the run that completed."""
        config = {
            "api_url": self.emulator.api_url,
            "api_key": "demo-api-key",
            "login_name": "apiuser",
            "login_password": "apipass",
            "field_map": FIELD_MAP,
            "results_path": str(self._results),
            "ledger_url": self.ledger_url,
            "max_retries": 0,
            **settings,
        }
        path = self.folder / "config.json"
        path.write_text(json.dumps(config))
        start = 0
        if kill:
            self.emulator.faults = replace(self.emulator.faults, latency_ms=4)
            states = self._run(path, people, 0, kill_after=self.random.uniform(0.8, 2.5))
            self.emulator.faults = replace(self.emulator.faults, latency_ms=0)
            start = states[-1]["bookmarks"]["donors"]["position"] if states else 0
        self._run(path, people, start)
        return self.last_run_id

    def _run(
        self, config: Path, people: list[Person], start: int, kill_after: float | None = None
    ) -> list[dict[str, Any]]:
        run_input = people[start:]
        lines = [{"type": "SCHEMA", "stream": "donors", "key_properties": ["id"],
                  "schema": {"properties": SCHEMA_PROPERTIES}}]  # fmt: skip
        for position, person in enumerate(run_input, start + 1):
            lines.append({"type": "RECORD", "stream": "donors", "record": person.record()})
            if position % 3 == 0 or position == len(people):
                bookmark = {"bookmarks": {"donors": {"position": position}}}
                lines.append({"type": "STATE", "value": bookmark})
        stdin = "".join(json.dumps(line) + "\n" for line in lines)
        process = subprocess.Popen(
            [self.executable, "--config", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.folder,
            env={**os.environ, "LOGLEVEL": "WARNING"},
        )
        if kill_after is None:
            stdout, stderr = process.communicate(stdin, timeout=300)
            self._expect(process.returncode == 0, f"the run failed: {stderr[-2000:]}")
        else:
            try:
                stdout, stderr = process.communicate(stdin, timeout=kill_after)
            except subprocess.TimeoutExpired:
                process.kill()  # kill -9
                stdout, stderr = process.communicate()
        self._expect("Traceback" not in stderr, f"a traceback: {stderr[-2000:]}")
        states = [json.loads(line) for line in stdout.splitlines()]
        self.last_run_id = self._read_rows(Run(run_input, completed=kill_after is None))
        return states

    # -- reading and checking ---------------------------------------------------------------

    def _read_rows(self, run: Run) -> str:
        """Take in the rows the run that just ended wrote; returns its run_id."""
        lines = self._results.read_text().splitlines() if self._results.exists() else []
        rows = [json.loads(line) for line in lines[self._rows_read :]]
        self._rows_read = len(lines)
        run_ids = {row["run_id"] for row in rows}
        self._expect(len(run_ids) <= 1, f"one process wrote rows of several runs: {run_ids}")
        for row in rows:
            self._settle(run, row)
        run_id = run_ids.pop() if run_ids else ""
        seqs = [row["seq"] for row in rows if row["seq"] is not None]
        self._expect(len(seqs) == len(set(seqs)), f"run {run_id} gave a record two rows")
        if run.completed:
            missing = set(range(1, len(run.people) + 1)) - set(seqs)
            self._expect(not missing, f"run {run_id}: records without a row: {sorted(missing)}")
        return run_id

    def _settle(self, run: Run, row: dict[str, Any]) -> None:
        key = row["key"]["id"]
        if row["seq"] is None:  # a replay: the values of the key's last failed send
            self._expect(key in self._pending, f"a replay of key {key}, which had none queued")
            person = self._pending[key]
        else:
            person = run.people[row["seq"] - 1]
            self._expect(person.key == key, f"row {row} names the wrong key")
        outcome = row["outcome"]
        self._expect(outcome in (*ACCEPTED, "failed"), f"an unexpected row: {row}")
        if outcome == "failed" and row["attempts"]:
            self._pending[key] = person
        else:
            self._pending.pop(key, None)
        self._status[key] = (outcome, person)

    def _rows_of(self, run_id: str) -> list[dict[str, Any]]:
        lines = self._results.read_text().splitlines()
        return [row for line in lines if (row := json.loads(line))["run_id"] == run_id]

    def check(self) -> None:
        """One constituent per key, holding the key's latest accepted values."""
        by_key: dict[str, list[dict[str, Any]]] = {}
        for constituent in self.emulator.constituents():
            by_key.setdefault(constituent["fields"].get("name.first", "?"), []).append(constituent)
        for tag, found in by_key.items():
            self._expect(len(found) == 1, f"{tag} has {len(found)} constituents")
            self._expect(tag.startswith("K"), f"a constituent of no key: {found}")
        for key, (outcome, person) in self._status.items():
            if outcome not in ACCEPTED:
                continue
            found = by_key.get(f"K{key}", [])
            self._expect(len(found) == 1, f"key {key} was {outcome} but has no constituent")
            fields = found[0]["fields"]
            held = (
                fields.get("email.primary_address"),
                fields.get("primary_address.city"),
                fields.get("name.last"),
            )
            wanted = (person.email.lower(), person.city, f"v{person.version}")
            self._expect(held == wanted, f"key {key} ({outcome}) holds {held}, not {wanted}")

    def _writes(self) -> int:
        return sum(self.emulator.calls.get(method, 0) for method in WRITES)

    def _expect(self, condition: bool, message: str) -> None:
        if not condition:
            raise InvariantBrokenError(self._where(message))

    def _where(self, message: str) -> str:
        return f"seed {self.seed}, night {self.night_number}: {message}"


def play(
    seed: int,
    nights: int,
    emulator: Emulator,
    ledger_url: str,
    folder: Path,
    executable: str,
    log: Callable[[str], object] = lambda line: None,
) -> float:
    """Play `nights` nights and the final check; the seconds it took."""
    started = time.monotonic()
    history = History(seed, emulator, ledger_url, folder, executable, log)
    for _ in range(nights):
        history.night()
    history.finish()
    return time.monotonic() - started
