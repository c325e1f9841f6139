"""Result rows (README, "Results and STATE"): the one place a record's row is made."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from target_convio.answers import Reply
from target_convio.codes import GLOBAL, Kind, lookup
from target_convio.fields import Catalogue
from target_convio.modes import SyncMode
from target_convio.outcomes import FieldError, Outcome


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


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

    def as_dict(self) -> dict[str, Any]:
        """The row as written to the results file and STATE, in the contract's order.

        Text UTF-8 cannot carry (lone surrogates) is written escaped, as `\\ud800`.
        """
        key = self.record.key
        return {
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


def skipped_row(record: RecordRef, reason: str) -> ResultRow:
    """A record not sent by design (a dry run)."""
    return ResultRow(record, Outcome.SKIPPED, message=reason)


def reply_row(
    record: RecordRef, mode: SyncMode, reply: Reply, catalogue: Catalogue | None = None
) -> ResultRow:
    """A record whose call settled: accepted, refused, or out of retries.

    A refusal's field is the code's own (codes.py), else the field its message names.
    """
    if reply.kind is Kind.OK:
        message = str((reply.body or {}).get("message") or "")
        return ResultRow(
            record,
            mode.accepted(message),
            cons_id=reply.cons_id,
            message=message,
            attempts=reply.attempts,
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
    return ResultRow(
        record,
        outcome,
        code=reply.code,
        message=reply.message,
        errors=(error,),
        attempts=reply.attempts,
    )
