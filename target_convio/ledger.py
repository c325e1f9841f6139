"""The sync ledger's storage: what Convio last did with each record, in SQLite or PostgreSQL.

One entry per (site, stream, identity). It keeps hashes, never the record: the identity and
the fingerprint are SHA-256 digests, plus the cons_id, the last outcome and, only while a
record waits to be replayed, its write parameters. Reads and writes go a chunk at a time; a
checkpoint's changes are one transaction. SQLAlchemy Core reaches both databases.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url

SCHEMA_VERSION = 2  # 2: memberships
CHUNK = 500
ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"

metadata = sa.MetaData()
meta_table = sa.Table(
    "target_convio_meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(200), nullable=False),
)
entries = sa.Table(
    "target_convio_ledger",
    metadata,
    sa.Column("site", sa.String(500), primary_key=True),
    sa.Column("stream", sa.String(500), primary_key=True),
    sa.Column("identity", sa.String(64), primary_key=True),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cons_id", sa.String(64)),
    sa.Column("code", sa.String(16)),
    sa.Column("message", sa.Text),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_run", sa.String(64)),
    sa.Column("replay_params", sa.Text),
    sa.Column("replays", sa.Integer, nullable=False, default=0),
    sa.Column("memberships", sa.Text),  # {"group:1234": true, ...} as Convio last confirmed
)
sa.Index("target_convio_ledger_replays", entries.c.site, entries.c.stream, entries.c.state)


@dataclass(frozen=True)
class Entry:
    """What the ledger knows of one record."""

    fingerprint: str
    state: str
    cons_id: str | None
    code: str | None
    message: str | None
    confirmed_at: dt.datetime | None
    replays: int
    memberships: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Replay:
    """A record that ended `failed` in an earlier run, queued to be sent again."""

    identity: str
    fingerprint: str
    params: dict[str, str]
    key: dict[str, Any] | None
    cons_id: str | None
    replays: int
    wanted: dict[str, bool]  # the memberships it asked for
    confirmed: dict[str, bool]  # those Convio last confirmed

    @property
    def entry(self) -> Entry:
        """What the ledger holds for it, as a lookup would give it."""
        return Entry(
            self.fingerprint,
            FAILED,
            self.cons_id,
            code=None,
            message=None,
            confirmed_at=None,
            replays=self.replays,
            memberships=self.confirmed,
        )


@dataclass(frozen=True)
class Change:
    """One settled record, as the ledger keeps it."""

    stream: str
    identity: str
    fingerprint: str
    state: str
    cons_id: str | None = None
    keep_cons_id: bool = True  # else `cons_id` replaces the stored one, None included
    code: str | None = None
    message: str | None = None
    replay: Mapping[str, Any] | None = None  # {"params", "key", "memberships"} to send again
    replayed: bool = False  # this run's send was a replay
    memberships: Mapping[str, bool] | None = None  # confirmed now (accepted writes only)


class LedgerError(Exception):
    """The ledger cannot be opened or used; the message names the setting."""


def engine_for(url: str) -> sa.Engine:
    """An engine for `ledger_url`; a relative SQLite path is from the working directory."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(parsed, connect_args={"timeout": 30})
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed, pool_pre_ping=True)


class Ledger:
    """The ledger of one site (its `api_url`)."""

    def __init__(self, engine: sa.Engine, site: str) -> None:
        self.engine = engine
        self.site = site
        self._insert = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}.get(
            engine.dialect.name
        )
        if self._insert is None:
            raise LedgerError(f"ledger_url: {engine.dialect.name} is not supported")

    @classmethod
    def open(cls, url: str, site: str) -> Ledger:
        """Connect, and create or upgrade the schema; LedgerError says what failed."""
        try:
            engine = engine_for(url)
            ledger = cls(engine, site)
            ledger._prepare()
        except (sa.exc.SQLAlchemyError, ImportError, OSError, ValueError) as exc:
            raise LedgerError(f"ledger_url: cannot open the ledger ({_reason(exc)})") from None
        return ledger

    def _prepare(self) -> None:
        for attempt in range(3):
            try:
                self._create_or_check()
            except sa.exc.SQLAlchemyError:
                # Two processes (two partitions) creating a new ledger at once: the one that
                # lost the race finds the tables on its next look.
                if attempt == 2:
                    raise
            else:
                return

    def _create_or_check(self) -> None:
        with self.engine.begin() as connection:
            metadata.create_all(connection, checkfirst=True)
            found = connection.execute(
                sa.select(meta_table.c.value).where(meta_table.c.name == "schema_version")
            ).scalar()
            if found is None:
                connection.execute(
                    self._insert_if_new(meta_table, ["name"]).values(
                        name="schema_version", value=str(SCHEMA_VERSION)
                    )
                )
            elif int(found) > SCHEMA_VERSION:
                raise LedgerError(
                    f"ledger_url: the ledger was written by a newer target-convio (schema "
                    f"{found}, this one knows {SCHEMA_VERSION})"
                )
            elif int(found) < SCHEMA_VERSION:
                _upgrade(connection, int(found))

    def _insert_if_new(self, table: sa.Table, keys: list[str]) -> Any:
        statement: Any = self._insert(table)  # type: ignore[misc]
        return statement.on_conflict_do_nothing(index_elements=keys)

    def close(self) -> None:
        self.engine.dispose()

    # -- reading --------------------------------------------------------------------------

    def lookup(self, stream: str, identities: Sequence[str]) -> dict[str, Entry]:
        """The entries of these identities, one query per CHUNK of them."""
        found: dict[str, Entry] = {}
        wanted = sorted(set(identities))
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), CHUNK):
                rows = connection.execute(
                    sa.select(
                        entries.c.identity,
                        entries.c.fingerprint,
                        entries.c.state,
                        entries.c.cons_id,
                        entries.c.code,
                        entries.c.message,
                        entries.c.confirmed_at,
                        entries.c.replays,
                        entries.c.memberships,
                    ).where(
                        entries.c.site == self.site,
                        entries.c.stream == stream,
                        entries.c.identity.in_(wanted[start : start + CHUNK]),
                    )
                )
                for row in rows:
                    found[row.identity] = Entry(
                        row.fingerprint,
                        row.state,
                        row.cons_id,
                        row.code,
                        row.message,
                        _aware(row.confirmed_at),
                        row.replays,
                        _memberships(row.memberships),
                    )
        return found

    def replays(self, stream: str, run_id: str) -> Iterator[Replay]:
        """The stream's replay queue, less what this run already settled, a chunk at a time."""
        after = ""
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(
                    sa.select(
                        entries.c.identity,
                        entries.c.fingerprint,
                        entries.c.replay_params,
                        entries.c.cons_id,
                        entries.c.replays,
                        entries.c.memberships,
                    )
                    .where(
                        entries.c.site == self.site,
                        entries.c.stream == stream,
                        entries.c.state == FAILED,
                        entries.c.replay_params.is_not(None),
                        sa.or_(entries.c.last_run.is_(None), entries.c.last_run != run_id),
                        entries.c.identity > after,
                    )
                    .order_by(entries.c.identity)
                    .limit(CHUNK)
                ).all()
            if not rows:
                return
            for row in rows:
                stored = json.loads(row.replay_params)
                yield Replay(
                    row.identity,
                    row.fingerprint,
                    stored["params"],
                    stored.get("key"),
                    row.cons_id,
                    row.replays,
                    stored.get("memberships") or {},
                    _memberships(row.memberships),
                )
            after = rows[-1].identity

    # -- writing --------------------------------------------------------------------------

    def commit(self, changes: Sequence[Change], run_id: str) -> None:
        """A checkpoint's changes, in one transaction: one statement per kind of change."""
        if not changes:
            return
        now = dt.datetime.now(dt.timezone.utc)
        groups: dict[tuple[str, bool, bool], list[dict[str, Any]]] = {}
        for change in changes:
            replace_cons_id = change.cons_id is not None or not change.keep_cons_id
            values: dict[str, Any] = {
                "site": self.site,
                "stream": change.stream,
                "identity": change.identity,
                "fingerprint": change.fingerprint,
                "state": change.state,
                "cons_id": change.cons_id,
                "code": change.code,
                "message": change.message,
                "confirmed_at": now if change.state == ACCEPTED else None,
                "updated_at": now,
                "last_run": run_id,
                "replay_params": (
                    json.dumps(dict(change.replay), sort_keys=True, default=str)
                    if change.replay is not None
                    else None
                ),
                "replays": 1 if change.replayed else 0,
                "memberships": (
                    json.dumps(dict(change.memberships), sort_keys=True)
                    if change.memberships
                    else None
                ),
            }
            kind = (change.state, replace_cons_id, change.replayed)
            groups.setdefault(kind, []).append(values)
        with self.engine.begin() as connection:
            for kind, rows in groups.items():
                connection.execute(self._upsert_entries(*kind), rows)

    def _upsert_entries(self, state: str, replace_cons_id: bool, replayed: bool) -> Any:
        statement: Any = self._insert(entries)  # type: ignore[misc]
        kept = ("site", "stream", "identity", "replays", "cons_id", "confirmed_at", "memberships")
        update = {c.name: statement.excluded[c.name] for c in entries.c if c.name not in kept}
        if replace_cons_id:
            update["cons_id"] = statement.excluded["cons_id"]
        if state == ACCEPTED:
            update["confirmed_at"] = statement.excluded["confirmed_at"]
            update["memberships"] = statement.excluded["memberships"]
        if state == FAILED:
            update["replays"] = entries.c.replays + (1 if replayed else 0)
        else:
            update["replays"] = 0
        return statement.on_conflict_do_update(
            index_elements=["site", "stream", "identity"], set_=update
        )

    # -- the console script's views -------------------------------------------------------

    def counts(self) -> list[tuple[str, str, str, int]]:
        """(site, stream, state, entries), every site of the ledger."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(entries.c.site, entries.c.stream, entries.c.state, sa.func.count())
                .group_by(entries.c.site, entries.c.stream, entries.c.state)
                .order_by(entries.c.site, entries.c.stream, entries.c.state)
            )
            return [(r[0], r[1], r[2], int(r[3])) for r in rows]

    def queue(self, stream: str | None = None) -> list[dict[str, Any]]:
        """The replay queue of every site (or of one stream), oldest first."""
        condition = sa.and_(entries.c.state == FAILED, entries.c.replay_params.is_not(None))
        if stream is not None:
            condition = sa.and_(condition, entries.c.stream == stream)
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    entries.c.site,
                    entries.c.stream,
                    entries.c.replay_params,
                    entries.c.replays,
                    entries.c.message,
                    entries.c.updated_at,
                )
                .where(condition)
                .order_by(entries.c.updated_at, entries.c.identity)
            )
            return [
                {
                    "site": row.site,
                    "stream": row.stream,
                    "key": json.loads(row.replay_params).get("key"),
                    "replays": row.replays,
                    "message": row.message,
                    "since": _aware(row.updated_at),
                }
                for row in rows
            ]

    def forget(self, stream: str, site: str | None = None) -> int:
        """Remove a stream's entries (of one site, or all); its next run sends everything."""
        condition = entries.c.stream == stream
        if site is not None:
            condition = sa.and_(condition, entries.c.site == site)
        with self.engine.begin() as connection:
            return int(connection.execute(sa.delete(entries).where(condition)).rowcount)


def _upgrade(connection: sa.Connection, version: int) -> None:
    """Bring an older ledger's schema to SCHEMA_VERSION, in place, keeping every entry."""
    if version < 2:
        connection.execute(sa.text("ALTER TABLE target_convio_ledger ADD COLUMN memberships TEXT"))
    connection.execute(
        sa.update(meta_table)
        .where(meta_table.c.name == "schema_version")
        .values(value=str(SCHEMA_VERSION))
    )


def _memberships(text: str | None) -> dict[str, bool]:
    return {str(k): bool(v) for k, v in json.loads(text).items()} if text else {}


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; the ledger writes UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value


def _reason(exc: BaseException) -> str:
    """A one-line reason without the URL (it may hold a password)."""
    text = (
        str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else type(exc).__name__
    )
    return f"{type(exc).__name__}: {text[:200]}"
