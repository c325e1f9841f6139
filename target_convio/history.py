"""The run history: one row per run in the ledger, how it went and how it ended.

A run's row is written as it starts (`unfinished`) and again when it ends, however it ends
(`ended`: finished, fatal, breaker, signal, budget, input_error, ledger_error, results_error),
so a run whose process was killed stays `unfinished`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from target_convio.ledger import FAILED, Ledger
from target_convio.ledger_schema import entries, runs, storable

MAX_REASONS = 20  # the commonest refusal reasons a run keeps


@dataclass(frozen=True)
class Run:
    """One run as the history keeps it."""

    run_id: str
    site: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    ended: str = "unfinished"
    streams: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    by_code: dict[str, int] = field(default_factory=dict)
    by_field: dict[str, int] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    records_per_second: float = 0.0
    replay_queue: int | None = None

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    @property
    def seconds(self) -> float | None:
        return (self.ended_at - self.started_at).total_seconds() if self.ended_at else None

    def as_dict(self) -> dict[str, Any]:
        """As `target-convio-ledger runs --format json` prints it."""
        return {
            "run_id": self.run_id,
            "site": self.site,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "ended": self.ended,
            "streams": self.streams,
            "records": self.records,
            "records_per_second": round(self.records_per_second, 1),
            "counts": self.counts,
            "by_code": self.by_code,
            "by_field": self.by_field,
            "reasons": self.reasons,
            "calls": self.calls,
            "replay_queue": self.replay_queue,
        }


def start_run(ledger: Ledger, run_id: str, started_at: dt.datetime) -> None:
    """The run's row, `unfinished` until `finish_run` rewrites it."""
    with ledger.engine.begin() as connection:
        connection.execute(sa.insert(runs).values(_values(Run(run_id, ledger.site, started_at))))


def finish_run(ledger: Ledger, run: Run) -> None:
    """The run's row as it ended, with the replay queue's depth at that moment (None if the
    entries cannot be read: a run stopped by its ledger still gets its row)."""
    queued = sa.select(sa.func.count()).where(
        entries.c.site == ledger.site,
        entries.c.state == FAILED,
        entries.c.replay_params.is_not(None),
    )
    try:
        with ledger.engine.connect() as connection:
            depth: int | None = int(connection.execute(queued).scalar_one())
    except sa.exc.SQLAlchemyError:
        depth = None
    with ledger.engine.begin() as connection:
        values = _values(replace(run, replay_queue=depth))
        where = runs.c.run_id == run.run_id
        if connection.execute(sa.update(runs).where(where).values(values)).rowcount == 0:
            connection.execute(sa.insert(runs).values(values))


def latest_runs(ledger: Ledger, last: int | None = None, *, every_site: bool = True) -> list[Run]:
    """The latest runs, newest first (of every site the ledger serves, unless told)."""
    query = sa.select(runs).order_by(runs.c.started_at.desc(), runs.c.run_id.desc())
    if not every_site:
        query = query.where(runs.c.site == ledger.site)
    if last is not None:
        query = query.limit(last)
    with ledger.engine.connect() as connection:
        return [_run(dict(row._mapping)) for row in connection.execute(query)]


def _values(run: Run) -> dict[str, Any]:
    reasons = dict(sorted(run.reasons.items(), key=lambda item: -item[1])[:MAX_REASONS])
    return {
        "run_id": run.run_id,
        "site": run.site,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "ended": run.ended,
        "streams": _json(run.streams),
        "records": run.records,
        "records_per_second": run.records_per_second,
        "replay_queue": run.replay_queue,
        "counts": _json(run.counts),
        "by_code": _json(run.by_code),
        "by_field": _json(run.by_field),
        "reasons": _json(reasons),
        "calls": _json(run.calls),
    }


def _run(row: Mapping[str, Any]) -> Run:
    return Run(
        run_id=row["run_id"],
        site=row["site"],
        started_at=_aware(row["started_at"]),
        ended_at=_aware(row["ended_at"]) if row["ended_at"] is not None else None,
        ended=row["ended"],
        streams=_parsed(row["streams"], []),
        counts=_parsed(row["counts"], {}),
        by_code=_parsed(row["by_code"], {}),
        by_field=_parsed(row["by_field"], {}),
        reasons=_parsed(row["reasons"], {}),
        calls=_parsed(row["calls"], {}),
        records_per_second=float(row["records_per_second"] or 0),
        replay_queue=row["replay_queue"],
    )


def _json(value: Any) -> str:
    return storable(json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))) or ""


def _parsed(text: str | None, empty: Any) -> Any:
    try:
        value = json.loads(text or "null")
    except ValueError:
        return empty
    return value if isinstance(value, type(empty)) else empty


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives timestamps back without their zone; they were written in UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _iso(moment: dt.datetime | None) -> str | None:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None
