"""A checkpoint's commit: ordered steps, each with one job, the STATE line always last.

The checkpointer runs the steps in the order it is given: the results file, then the sync
ledger, then the STATE line. A new kind of commit is a new step class.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from singer_sdk.singerlib.json import serialize_json

from target_convio.digests import cons_id_claim
from target_convio.ledger import FAILED, REJECTED, Change, Ledger
from target_convio.outcomes import Outcome
from target_convio.rows import ResultRow
from target_convio.summary import Summary

STATE_KEY = "target_convio"


@dataclass(frozen=True)
class Settled:
    """A checkpoint whose calls are over: its rows, in input order per stream.

    `complete` is False when some of its records have no row (the run is stopping); then
    only steps that keep what did settle run, and no STATE line is printed.
    """

    number: int
    rows: Sequence[ResultRow]
    complete: bool
    tap_state: dict[str, Any] | None
    summary: Summary  # the run's, these rows included


class CommitStep(Protocol):
    #: Runs only for a complete checkpoint (a STATE line must never pass a record).
    complete_only: bool

    def commit(self, checkpoint: Settled) -> None: ...

    def close(self) -> None: ...


class AppendResults:
    """Appends rows to a JSONL results file; each checkpoint is flushed and synced to disk."""

    complete_only = False

    def __init__(self, path: str | os.PathLike[str], logger: logging.Logger) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._move_torn_tail_aside(logger)

    def _move_torn_tail_aside(self, logger: logging.Logger) -> None:
        """A run killed while appending leaves a partial last row; the next row must not join it.

        The partial row goes to `<results>.torn-<time>`, and the file ends after its last
        whole row again.
        """
        with self.path.open("rb+") as file:
            size = file.seek(0, os.SEEK_END)
            if not size:
                return
            start = size
            while start > 0:
                step = min(start, 64 * 1024)
                file.seek(start - step)
                chunk = file.read(step)
                newline = chunk.rfind(b"\n")
                if newline >= 0:
                    start = start - step + newline + 1
                    break
                start -= step
            if start == size:
                return
            file.seek(start)
            tail = file.read()
            aside = self.path.with_name(f"{self.path.name}.torn-{time.strftime('%Y%m%dT%H%M%S')}")
            aside.write_bytes(tail)
            file.truncate(start)
        logger.warning(
            "The results file ended in a partial row (a run stopped while writing it); "
            "moved its %d bytes to %s",
            len(tail),
            aside,
        )

    def commit(self, checkpoint: Settled) -> None:
        if not checkpoint.rows:
            return
        text = "".join(
            serialize_json(row.as_dict(), ensure_ascii=False) + "\n" for row in checkpoint.rows
        )
        self._file.write(text)
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()


class RecordInLedger:
    """Keeps in the sync ledger what Convio did with the checkpoint's sent records.

    A write that fails raises LedgerError ("Cannot write the ledger: ..."): the checkpointer
    then stops the run in order.
    """

    complete_only = False  # what was sent and settled is kept, even in a stopped checkpoint

    def __init__(self, ledger: Ledger, run_id: str, logger: logging.Logger) -> None:
        self._ledger = ledger
        self._run_id = run_id
        self._logger = logger

    def commit(self, checkpoint: Settled) -> None:
        changes = [change for row in checkpoint.rows if (change := ledger_change(row))]
        try:
            conflicts = self._ledger.commit(changes, self._run_id)
        except Exception as exc:
            raise self._ledger.failure("write", exc) from None
        for change in conflicts:
            self._logger.warning(
                "Stream '%s', key %s: Convio answered with constituent %s, which the ledger "
                "keeps for another key; it is not remembered for this one (already_used)",
                change.stream,
                json.dumps(change.key, default=str),
                change.cons_id,
            )

    def close(self) -> None:
        self._ledger.close()


def ledger_change(row: ResultRow) -> Change | None:
    """What the ledger keeps of a row; None for a record the ledger did not send.

    Each Change is built once (no `replace`): every sent record of a run passes here.
    """
    note = row.ledger
    if note is None:
        return None
    stream = row.record.stream
    if not note.sent:
        return Change(stream, note.identity, None)
    outcome = row.outcome
    # `unchanged` with a note to keep: a constituent adopted without a write (first_contact).
    if outcome is Outcome.CREATED or outcome is Outcome.UPDATED or outcome is Outcome.UNCHANGED:
        claims = (note.claims | {cons_id_claim(row.cons_id)}) if row.cons_id else note.claims
        return Change.accepted(
            stream,
            note.identity,
            note.fingerprint,
            cons_id=row.cons_id,
            key=note.key,
            memberships=note.confirmed,
            claims=claims,
            known=note.known,
            new_constituent=outcome is Outcome.CREATED,
        )
    if outcome is Outcome.REJECTED or outcome is Outcome.FAILED:
        # Refused: Convio changed nothing, the key claims no more. Failed: the write may have
        # landed, so its claims are kept, and it is queued to be sent again.
        failed = outcome is Outcome.FAILED
        replay = (
            {"params": dict(note.params), "key": note.key, "memberships": dict(note.wanted)}
            if failed and row.attempts
            else None
        )
        return Change(
            stream,
            note.identity,
            FAILED if failed else REJECTED,
            note.fingerprint,
            keep_cons_id=not note.dropped_cons_id,
            code=row.code,
            message=row.message,
            replay=replay,
            replayed=failed and note.replayed,
            key=note.key,
            claims=note.claims if failed else frozenset(),
            known=note.known,
        )
    return None


class PrintState:
    """Prints the checkpoint's STATE line: the tap's state plus the `target_convio` key."""

    complete_only = True

    def __init__(self, results_in_state: str, out: TextIO | None = None) -> None:
        self._results_in_state = results_in_state
        self._out = out
        self.closed_at: int | None = None  # the checkpoint whose line found stdout closed

    def commit(self, checkpoint: Settled) -> None:
        if self.closed_at is not None:
            return
        payload: dict[str, Any] = {"checkpoint": checkpoint.number}
        if self._results_in_state != "none":
            payload["summary"] = checkpoint.summary.as_dict()
        if self._results_in_state == "records":
            payload["results"] = [row.as_dict() for row in checkpoint.rows]
        # The tap's numbers arrive as Decimal; serialize_json writes them back as they came.
        line = serialize_json({**(checkpoint.tap_state or {}), STATE_KEY: payload})
        out = self._out or sys.stdout  # looked up late: test runners swap sys.stdout
        try:
            out.write(line + "\n")
            out.flush()
        except BrokenPipeError:
            # Whoever read the STATE lines is gone; the results file still gets every row.
            self.closed_at = checkpoint.number
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - no flush error at exit

    def close(self) -> None:
        pass
