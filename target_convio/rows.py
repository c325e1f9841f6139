"""Result rows (docs/results.md): the one place a record's row is made."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, NamedTuple

from target_convio.compare import UNCHANGED, Prediction
from target_convio.convio.answers import Reply
from target_convio.convio.codes import GLOBAL, Kind, lookup
from target_convio.fields import Catalogue
from target_convio.locate import Found
from target_convio.modes import SyncMode
from target_convio.outcomes import FieldError, Outcome

WITHOUT_CONS_ID = (
    "Convio no longer has the cons_id the ledger kept (deleted or merged); sent without it:"
)


_SECOND: list[tuple[int, str]] = [(0, "")]  # the last second written out, and its text


def now() -> str:
    """The time in UTC to the second, `2026-11-23T02:00:00Z`; written out once a second."""
    second = int(time.time())
    last, text = _SECOND[0]
    if second != last:
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(second))
        _SECOND[0] = (second, text)
    return text


def new_run_id() -> str:
    """Different for every run, sortable by start time: `2026-11-23T02:00:00Z-5f3a`."""
    return f"{now()}-{secrets.token_hex(2)}"


@dataclass(frozen=True)
class RecordRef:
    """Which record a row is about: its run, stream, place in the input and key."""

    run_id: str
    stream: str
    seq: int | None
    key: dict[str, Any] | None
    replay: int | None = None  # a replay's place among its stream's replays in this run

    @property
    def row_id(self) -> str:
        """Unique across runs: `<run_id>/<stream>/<seq>`, `.../replay-<n>` for a replay."""
        place = self.seq if self.seq is not None else f"replay-{self.replay}"
        return f"{self.run_id}/{self.stream}/{place}"


_NOTHING: Mapping[str, bool] = MappingProxyType({})


class LedgerNote(NamedTuple):
    """What the sync ledger keeps of a sent record once it settles (not written in a row).

    A named tuple: one is made for every record sent with a ledger, in a fifth of a frozen
    dataclass's time. Nothing changes its mappings after it is made.
    """

    identity: str
    fingerprint: str
    params: Mapping[str, str]  # as sent, less a cons_id the ledger supplied: kept for a replay
    key: Mapping[str, Any] | None  # kept with them, so a replay's row names its record
    wanted: Mapping[str, bool] = _NOTHING  # memberships the record asked for
    confirmed: Mapping[str, bool] = _NOTHING  # held once the write succeeds
    dropped_cons_id: bool = False  # Convio no longer knew it (code 16): sent without it
    replayed: bool = False
    claims: frozenset[str] = frozenset()  # the match values it was sent with (digests.py)
    known: bool = False  # the ledger had an entry for the key, or it was sent earlier this run
    sent: bool = True  # else a newer record that was not sent: it only ends the key's replay

    @classmethod
    def of_sent(
        cls,
        identity: str,
        fingerprint: str,
        params: Mapping[str, str],
        key: Mapping[str, Any] | None,
        *,
        wanted: Mapping[str, bool],
        confirmed: Mapping[str, bool],
        replayed: bool,
        claims: frozenset[str],
        known: bool,
    ) -> LedgerNote:
        """The note of a record sent as it came. Made without a keyword call to the class,
        which passes keywords to the tuple's `__new__` in a dict, at three times the cost."""
        return tuple.__new__(
            cls,
            (
                identity,
                fingerprint,
                params,
                key,
                wanted,
                confirmed,
                False,  # dropped_cons_id
                replayed,
                claims,
                known,
                True,  # sent
            ),
        )


def superseding(identity: str) -> LedgerNote:
    """The note of a record that was not sent: its key's queued replay is outdated."""
    return LedgerNote(identity, "", {}, None, sent=False)


@dataclass(frozen=True)
class ResultRow:
    """One record's result."""

    record: RecordRef
    outcome: Outcome
    cons_id: str | None = None
    code: str | None = None
    message: str = ""
    errors: tuple[FieldError, ...] = ()
    attempts: int = 0
    at: str = field(default_factory=now)
    ledger: LedgerNote | None = None
    predicted: str | None = None  # a compare dry run's prediction
    changes: dict[str, list[Any]] | None = None  # {field: [in Convio, sent or would send]}
    compared: bool = False  # a compare dry run's: written with `predicted`
    adopted: bool = False  # unchanged: found by a read, holding every value (first_contact)

    def as_dict(self) -> dict[str, Any]:
        """The row as written to the results file and STATE, in the contract's order.

        Text UTF-8 cannot carry (lone surrogates) is written escaped, as `\\ud800`.
        """
        key = self.record.key
        return {
            "row_id": escaped(self.record.row_id),
            "run_id": self.record.run_id,
            "stream": escaped(self.record.stream),
            "seq": self.record.seq,
            "key": {escaped(k): escaped(v) for k, v in key.items()} if key else key,
            "outcome": self.outcome.value,
            "cons_id": self.cons_id,
            "code": self.code,
            "message": escaped(self.message),
            "errors": [
                {name: escaped(text) for name, text in error.as_dict().items()}
                for error in self.errors
            ],
            "attempts": self.attempts,
            "at": self.at,
            **({"predicted": self.predicted} if self.compared else {}),
            **({"changes": self.changes} if self.compared or self.changes is not None else {}),
        }


def escaped(value: Any) -> Any:
    """A text with what UTF-8 cannot carry written as backslash escapes; other values as is."""
    if isinstance(value, str) and not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def invalid_row(record: RecordRef, errors: Sequence[FieldError]) -> ResultRow:
    """A record that failed the checks before sending; it cost no call."""
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
    return ResultRow(record, Outcome.INVALID, message=f"not sent: {summary}", errors=tuple(errors))


def already_used_row(record: RecordRef, field: str, other_key: dict[str, Any] | None) -> ResultRow:
    """A record whose match value belongs to the constituent of another key: not sent."""
    owner = f"another key ({json.dumps(other_key, default=str)})" if other_key else "another key"
    error = FieldError(
        field,
        "already_used",
        f"the value belongs to the constituent of {owner} of this stream; not sent, so as "
        "not to overwrite that constituent (it is sent once the value differs)",
    )
    return invalid_row(record, [error])


def skipped_row(record: RecordRef, reason: str, cons_id: str | None = None) -> ResultRow:
    """A record not sent by design (a dry run, a known key in create_only)."""
    return ResultRow(record, Outcome.SKIPPED, cons_id=cons_id, message=reason)


def unchanged_row(record: RecordRef, cons_id: str | None, since: dt.datetime | None) -> ResultRow:
    """Convio already accepted exactly these values for this key: no call."""
    when = f" on {since.date().isoformat()}" if since else ""
    return ResultRow(
        record,
        Outcome.UNCHANGED,
        cons_id=cons_id,
        message=f"not sent: Convio accepted these values{when}",
    )


def rejected_before_row(record: RecordRef, code: str | None, message: str | None) -> ResultRow:
    """Convio refused exactly these values before; they are not resent (resend_rejected)."""
    info = lookup(code)
    text = f"not sent again: Convio refused these values before: {message or ''}".rstrip(": ")
    error = FieldError(info.field, info.error or "unknown_error", message or "")
    return ResultRow(record, Outcome.REJECTED, code=code, message=text, errors=(error,))


def compare_row(record: RecordRef, found: Found, prediction: Prediction) -> ResultRow:
    """A compare dry run's row: `skipped`, with what the write would have done."""
    return ResultRow(
        record,
        Outcome.SKIPPED,
        cons_id=found.cons_id,
        message=f"compare dry run: {prediction.message}",
        predicted=prediction.outcome,
        changes=prediction.changes,
        compared=True,
    )


def predicted_row(row: ResultRow, predicted: str) -> ResultRow:
    """A row the real run would give without a call, as a compare dry run shows it."""
    return replace(row, predicted=predicted, compared=True)


def first_contact_row(
    record: RecordRef,
    mode: SyncMode,
    found: Found,
    prediction: Prediction,
    *,
    write: Reply | None,
    catalogue: Catalogue | None,
    note: LedgerNote | None,
) -> ResultRow:
    """A record looked up before it was written (`first_contact: read`)."""
    if note is not None:  # what Convio holds once the write, if any, is done
        note = note._replace(confirmed={**found.memberships, **note.wanted})
    if write is not None:
        row = reply_row(record, mode, write, catalogue, note)
        changes = prediction.changes if found.body is not None else None
        return replace(row, changes=changes, attempts=row.attempts + found.reads)
    if found.body is not None and prediction.outcome == UNCHANGED:
        return ResultRow(
            record,
            Outcome.UNCHANGED,
            cons_id=found.cons_id,
            message=f"adopted: constituent {found.cons_id} already holds every value; not written",
            attempts=found.reads,
            ledger=note,
            adopted=True,
        )
    if found.body is not None:  # create_only: it exists
        row = skipped_row(record, "exists; create_only does not update", found.cons_id)
        return replace(row, attempts=found.reads)
    row = reply_row(record, mode, found.reply, catalogue, note)
    reason = prediction.message if found.answered else f"could not read Convio: {row.message}"
    return replace(row, message=f"not written: {reason}")


def given_up_row(record: RecordRef, runs: int, note: LedgerNote) -> ResultRow:
    """A queued record that failed in `runs` runs: its last row, it is not retried again."""
    return ResultRow(
        record,
        Outcome.FAILED,
        message=f"failed in {runs} earlier runs; not retried again (max_replays)",
        errors=(FieldError(GLOBAL, "unknown_error", "gave up after max_replays runs"),),
        ledger=note,
    )


def reply_row(
    record: RecordRef,
    mode: SyncMode,
    reply: Reply,
    catalogue: Catalogue | None = None,
    note: LedgerNote | None = None,
) -> ResultRow:
    """A record whose call settled: accepted, refused, or out of retries.

    A refusal's field is the code's own (codes.py), else the field its message names.
    """
    if note is not None and reply.without_cons_id:
        # A new constituent, or another one: it holds just the memberships sent to it.
        note = note._replace(dropped_cons_id=True, confirmed=dict(note.wanted))
    if reply.kind is Kind.OK:
        message = str((reply.body or {}).get("message") or "")
        if reply.without_cons_id:
            message = f"{WITHOUT_CONS_ID} {message}"
        return ResultRow(
            record,
            mode.accepted(message),
            cons_id=reply.cons_id,
            message=message,
            attempts=reply.attempts,
            ledger=note,
        )
    if reply.kind is Kind.RECORD:
        info = lookup(reply.code)
        outcome = Outcome.REJECTED
        field = info.field
        if field == GLOBAL and catalogue is not None:
            field = catalogue.field_named_in(reply.message) or GLOBAL
        error = FieldError(field, info.error or "unknown_error", reply.message)
    else:
        outcome = Outcome.FAILED
        error = FieldError(GLOBAL, "unknown_error", reply.message)
    message = f"{WITHOUT_CONS_ID} {reply.message}" if reply.without_cons_id else reply.message
    return ResultRow(
        record,
        outcome,
        code=reply.code,
        message=message,
        errors=(error,),
        attempts=reply.attempts,
        ledger=note,
    )
