"""Checkpoints: sealed by the reader, settled in order on their own thread, then committed.

The reader seals a checkpoint (its records' calls, and the tap state received so far) and goes
on reading while the calls finish, so a checkpoint costs the call pipeline no idle tail. Once
every call of a checkpoint has settled and every earlier checkpoint is committed, its commit
steps run in order (commit.py): rows to the results file first, the STATE line last.
"""

from __future__ import annotations

import copy
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from typing import Any

from target_convio.commit import CommitStep, Settled
from target_convio.fields import Catalogue
from target_convio.modes import SyncMode
from target_convio.rows import LedgerNote, RecordRef, ResultRow, reply_row
from target_convio.summary import Summary

# Sealed checkpoints waiting for their calls; the reader waits when this many are.
MAX_WAITING = 2
# A checkpoint is sealed when its first record is this old, so a slow tap still checkpoints.
MAX_AGE_SECONDS = 300.0
POLL_SECONDS = 0.1


@dataclass
class Pending:
    """A record read: its row already (not sent), or the call that will decide it."""

    record: RecordRef
    mode: SyncMode
    row: ResultRow | None = None
    call: Future[Any] | None = None  # a Reply, or what `row_of` takes
    catalogue: Catalogue | None = None  # names the field of a refusal
    note: LedgerNote | None = None  # what the ledger keeps once the call settles
    row_of: Callable[[Any], ResultRow] | None = None  # the row of a task's result (read_first.py)

    def settle(self) -> ResultRow | None:
        """Its row, once its call is done; None if the call never ran (the run is stopping)."""
        if self.row is None and self.call is not None:
            result = self.call.result()
            if result is not None and self.row_of is not None:
                self.row = self.row_of(result)
            elif result is not None:
                self.row = reply_row(self.record, self.mode, result, self.catalogue, self.note)
        return self.row


@dataclass
class Checkpoint:
    number: int
    records: list[Pending] = field(default_factory=list)
    tap_state: dict[str, Any] | None = None
    opened: float = field(default_factory=time.monotonic)


class Checkpointer:
    """Collects records into checkpoints of `size`; commits each, strictly in order.

    `stop_reason` says why the run is stopping (then no checkpoint is complete); `poll` is
    called while the reader waits here, so a signal can still be acted on. A step that fails
    (a full disk, a ledger gone) calls `stop_run`: no new call starts, the checkpoints of the
    calls in flight still settle and reach the steps that work, and no STATE line is printed.
    """

    def __init__(
        self,
        steps: Sequence[CommitStep],
        size: int,
        stop_reason: Callable[[], str | None],
        poll: Callable[[], object],
        logger: logging.Logger,
        *,
        stop_run: Callable[[str], object] = lambda reason: None,
        calls: Callable[[], str] = lambda: "",
    ) -> None:
        """`calls`: how calls are going, for the progress line (`up to 6 calls at once`)."""
        self.summary = Summary()
        self.tap_state: dict[str, Any] | None = None  # the latest the tap sent
        self.written = 0  # the last checkpoint whose STATE line is out
        self.stopped = False  # a checkpoint could not settle: no STATE line from now on
        self.error: BaseException | None = None
        self._steps = list(steps)
        self.size = size
        self._stop_reason = stop_reason
        self._poll = poll
        self._logger = logger
        self._stop_run = stop_run
        self._calls = calls
        self._broken: set[int] = set()  # steps that failed: not tried again
        self._open = Checkpoint(1)
        self._sealed_state: dict[str, Any] | None = None
        self._queue: queue.Queue[Checkpoint | None] = queue.Queue(MAX_WAITING)
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._work, name="checkpoints", daemon=True)
        self._thread.start()

    def add(self, pending: Pending) -> None:
        """A record read, in input order; seals the checkpoint once it is full or old."""
        checkpoint = self._open
        if not checkpoint.records:
            checkpoint.opened = time.monotonic()
        checkpoint.records.append(pending)
        if (
            len(checkpoint.records) >= self.size
            or time.monotonic() - checkpoint.opened > MAX_AGE_SECONDS
        ):
            self.seal()

    def seal(self, *, final: bool = False) -> None:
        """Close the open checkpoint if it holds records; at the end, also if it brings a newer
        tap state or would be the run's only one (a run always prints a STATE line).

        Waits while MAX_WAITING sealed checkpoints are unsettled.
        """
        checkpoint = self._open
        news = self.tap_state is not None and self.tap_state != self._sealed_state
        if not checkpoint.records and not (final and (news or checkpoint.number == 1)):
            return
        checkpoint.tap_state = copy.deepcopy(self.tap_state)
        self._sealed_state = checkpoint.tap_state
        self._put(checkpoint)
        self._open = Checkpoint(checkpoint.number + 1)

    def wait_until_committed(self) -> None:
        """Seal what is open and wait until every sealed checkpoint is committed."""
        self.seal()
        while self._queue.unfinished_tasks and not self.stopped:
            time.sleep(POLL_SECONDS / 10)
            self._poll()

    def finish(self) -> None:
        """Wait until every sealed checkpoint is committed (or dropped by a stop)."""
        if self._thread.is_alive():
            self._put(None)
            while self._thread.is_alive():
                self._thread.join(POLL_SECONDS)
                self._poll()
        for step in self._steps:
            try:
                step.close()
            except OSError as exc:  # a last flush that failed (a full disk): as if in _work
                self.error = self.error or exc
                self.stopped = True

    def _put(self, item: Checkpoint | None) -> None:
        while True:
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
            except queue.Full:
                self._poll()
            else:
                return

    def _work(self) -> None:
        try:
            while (checkpoint := self._queue.get()) is not None:
                self._commit(checkpoint)
                self._queue.task_done()
        except BaseException as exc:  # a bug: handed to the reader thread, which reports it
            self.error = exc
            self.stopped = True
            while self._queue.get() is not None:  # unblock a reader waiting to seal
                self._queue.task_done()

    def _commit(self, checkpoint: Checkpoint) -> None:
        settled = [row for pending in checkpoint.records if (row := pending.settle()) is not None]
        rows = sorted(settled, key=lambda row: row.record.stream)  # stable: input order
        self.summary.add(rows)
        if len(rows) < len(checkpoint.records) or self._stop_reason():
            self.stopped = True
        result = Settled(
            checkpoint.number, rows, not self.stopped, checkpoint.tap_state, self.summary
        )
        for index, step in enumerate(self._steps):
            if index in self._broken:
                break  # a step runs only after those before it: the commit keeps its order
            if step.complete_only and not result.complete:
                continue
            try:
                step.commit(result)
            except Exception as exc:
                self._broken.add(index)
                self.error = self.error or exc
                self.stopped = True
                self._stop_run(str(exc))
                result = replace(result, complete=False)
                break
        if result.complete:
            self.written = checkpoint.number
            self._log_progress(checkpoint.number)

    def _log_progress(self, number: int) -> None:
        elapsed = time.monotonic() - self._started
        done = self.summary.total
        counts = self.summary.progress()
        calls = self._calls()
        self._logger.info(
            "Checkpoint %d: %d records in %.1f s (%.1f/s%s)%s",
            number,
            done,
            elapsed,
            done / elapsed if elapsed else 0.0,
            f", {calls}" if calls else "",
            f": {counts}" if counts else "",
        )
