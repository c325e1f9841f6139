"""Result rows (DESIGN.md §4), the run's summary, and the JSONL results file."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from singer_sdk.singerlib.json import serialize_json

from target_convio.answers import Reply
from target_convio.codes import GLOBAL, Kind, lookup
from target_convio.mapping import FieldError

OUTCOMES = ("created", "updated", "invalid", "rejected", "failed", "skipped")
Row = dict[str, Any]


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def row(
    stream: str,
    seq: int,
    key: dict[str, Any] | None,
    outcome: str,
    *,
    cons_id: str | None = None,
    code: str | None = None,
    message: str = "",
    errors: Sequence[FieldError] = (),
    attempts: int = 0,
) -> Row:
    return {
        "stream": stream,
        "seq": seq,
        "key": key,
        "outcome": outcome,
        "cons_id": cons_id,
        "code": code,
        "message": message,
        "errors": [error.as_dict() for error in errors],
        "attempts": attempts,
        "at": now(),
    }


def invalid_row(
    stream: str, seq: int, key: dict[str, Any] | None, errors: Sequence[FieldError]
) -> Row:
    summary = "; ".join(f"{e.field}: {e.message}" for e in errors[:3])
    return row(stream, seq, key, "invalid", message=f"not sent: {summary}", errors=errors)


def reply_row(stream: str, seq: int, key: dict[str, Any] | None, method: str, reply: Reply) -> Row:
    """The row for a record whose call settled (success, refusal or exhausted retries)."""
    if reply.kind is Kind.OK:
        message = str((reply.body or {}).get("message") or "")
        created = method == "create" or (method == "createOrUpdate" and "added" in message.lower())
        outcome = "created" if created else "updated"
        return row(
            stream,
            seq,
            key,
            outcome,
            cons_id=reply.cons_id,
            message=message,
            attempts=reply.attempts,
        )
    if reply.kind is Kind.RECORD:
        info = lookup(reply.code)
        outcome, error = (
            "rejected",
            FieldError(info.field, info.error or "unknown_error", reply.message),
        )
    else:
        outcome, error = "failed", FieldError(GLOBAL, "unknown_error", reply.message)
    return row(
        stream,
        seq,
        key,
        outcome,
        code=reply.code,
        message=reply.message,
        errors=[error],
        attempts=reply.attempts,
    )


class Summary:
    """Outcomes and Convio codes counted over the run."""

    def __init__(self) -> None:
        self.outcomes: Counter[str] = Counter(dict.fromkeys(OUTCOMES, 0))
        self.by_code: Counter[str] = Counter()

    def add(self, rows: Iterable[Row]) -> None:
        for item in rows:
            self.outcomes[item["outcome"]] += 1
            if item["code"] is not None:
                self.by_code[item["code"]] += 1

    @property
    def total(self) -> int:
        return sum(self.outcomes.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            **{o: self.outcomes[o] for o in OUTCOMES},
            "by_code": dict(sorted(self.by_code.items())),
        }

    def table(self) -> str:
        """A small text table: outcomes, then Convio codes."""
        lines = [f"{'outcome':<10} {'records':>9}"]
        lines += [f"{o:<10} {self.outcomes[o]:>9,}" for o in OUTCOMES]
        lines.append(f"{'total':<10} {self.total:>9,}")
        lines += [f"code {code:<5} {count:>9,}" for code, count in sorted(self.by_code.items())]
        return "\n".join(lines)


class ResultsFile:
    """Appends rows to a JSONL file; each checkpoint is flushed and synced to disk."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def write(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        text = "".join(serialize_json(item, ensure_ascii=False) + "\n" for item in rows)
        with self._lock:
            self._file.write(text)
            self._file.flush()
            os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()
