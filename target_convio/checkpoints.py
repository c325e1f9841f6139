"""Checkpoints: settled in order on their own thread, each ending in results and one STATE line.

The reader seals a checkpoint (its records' calls, and the tap state received so far) and goes
on reading while the calls finish, so a checkpoint costs the call pipeline no idle tail. A
checkpoint's rows reach the results file, and then its STATE line reaches stdout, only once
every one of its calls has settled and every earlier checkpoint has been written.
"""

from __future__ import annotations

import copy
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from singer_sdk.singerlib.json import serialize_json

from target_convio.answers import Reply
from target_convio.results import ResultsFile, Row, Summary, reply_row

STATE_KEY = "target_convio"
# Sealed checkpoints waiting for their calls; the reader waits when this many are.
MAX_WAITING = 2


@dataclass
class Pending:
    """A record read: its row already, or the call that will decide it."""

    stream: str
    seq: int
    key: dict[str, Any] | None
    row: Row | None = None
    call: Future[Reply | None] | None = None
    method: str = ""

    def settle(self) -> Row | None:
        """Its row, once its call is done; None if the call never ran (the run is stopping)."""
        if self.call is not None and self.row is None:
            reply = self.call.result()
            if reply is not None:
                self.row = reply_row(self.stream, self.seq, self.key, self.method, reply)
        return self.row


@dataclass
class Checkpoint:
    number: int
    records: list[Pending]
    tap_state: dict[str, Any] | None


class Checkpointer:
    """Turns sealed checkpoints into results-file rows and STATE lines, strictly in order."""

    def __init__(
        self,
        results_path: str | None,
        results_in_state: str,
        stop_reason: Callable[[], str | None],
        logger: logging.Logger,
    ) -> None:
        self.summary = Summary()
        self.written = 0  # checkpoints whose STATE line is out
        self.stopped = False  # a checkpoint could not settle: no STATE line from now on
        self.error: BaseException | None = None
        # Opened now, so an unwritable results_path stops the run before any call.
        self._results_file = ResultsFile(results_path) if results_path else None
        self._results_in_state = results_in_state
        self._stop_reason = stop_reason
        self._logger = logger
        self._handed: list[Pending] = []
        self._handed_lock = threading.Lock()  # sinks may drain in parallel threads
        self._sealed = 0
        self._queue: queue.Queue[Checkpoint | None] = queue.Queue(MAX_WAITING)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._work, name="checkpoints", daemon=True)
        self._thread.start()

    def hand_over(self, records: list[Pending]) -> None:
        """Records drained from a sink, for the next checkpoint."""
        with self._handed_lock:
            self._handed.extend(records)

    def seal(self, tap_state: dict[str, Any] | None) -> None:
        """Close the current checkpoint; waits while MAX_WAITING checkpoints are unsettled."""
        state = copy.deepcopy(tap_state) if tap_state else None
        with self._handed_lock:
            records = self._handed
        # Put first: a signal may interrupt the wait, and then nothing must be lost.
        self._queue.put(Checkpoint(self._sealed + 1, records, state))
        self._sealed += 1
        with self._handed_lock:
            self._handed = []

    def finish(self) -> None:
        """Wait until every sealed checkpoint is written (or dropped by a stop)."""
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._results_file is not None:
            self._results_file.close()

    def _work(self) -> None:
        try:
            while (checkpoint := self._queue.get()) is not None:
                self._write(checkpoint)
        except BaseException as exc:  # handed to the reader thread, which reports it
            self.error = exc
            self.stopped = True
            while self._queue.get() is not None:  # unblock a reader waiting to seal
                pass

    def _write(self, checkpoint: Checkpoint) -> None:
        settled = [row for pending in checkpoint.records if (row := pending.settle()) is not None]
        rows = sorted(settled, key=lambda r: (r["stream"], r["seq"]))
        self.summary.add(rows)
        self._append(rows)
        if len(rows) < len(checkpoint.records) or self._stop_reason():
            self.stopped = True
        if self.stopped:
            return
        payload: dict[str, Any] = {"checkpoint": checkpoint.number}
        if self._results_in_state != "none":
            payload["summary"] = self.summary.as_dict()
        if self._results_in_state == "records":
            payload["results"] = rows
        # The tap's numbers arrive as Decimal; serialize_json writes them back as they came.
        line = serialize_json({**(checkpoint.tap_state or {}), STATE_KEY: payload})
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        self.written = checkpoint.number
        self._log_progress(checkpoint.number)

    def _append(self, rows: list[Row]) -> None:
        if self._results_file is not None:
            self._results_file.write(rows)

    def _log_progress(self, number: int) -> None:
        elapsed = time.monotonic() - self._started
        done = self.summary.total
        counts = ", ".join(f"{n} {o}" for o, n in self.summary.outcomes.items() if n)
        self._logger.info(
            "Checkpoint %d: %d records in %.1f s (%.1f/s)%s",
            number,
            done,
            elapsed,
            done / elapsed if elapsed else 0.0,
            f": {counts}" if counts else "",
        )
