"""The sync ledger's storage: what Convio last did with each record, in SQLite or PostgreSQL.

One entry per (site, stream, identity). It keeps hashes, never the record: the identity, the
fingerprint and each claimed match value are SHA-256 digests, plus the key's values, the
cons_id, the last outcome and, only while a record waits to be replayed, its write parameters.
Reads go a chunk at a time; a checkpoint's changes are one transaction, applied in input order.
"""

from __future__ import annotations

import datetime as dt
import functools
import itertools
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import sqlalchemy as sa

from target_convio.digests import cons_id_claim
from target_convio.json_text import encoder
from target_convio.ledger_schema import (
    CREATE_QUEUE_INDEX,
    MAX_MESSAGE,
    SCHEMA_VERSION,
    LedgerError,
    calls_per_day,
    check_url,
    claims,
    engine_for,
    entries,
    exists,
    indexable,
    meta_table,
    metadata,
    reason,
    storable,
    upgrade,
)

CHUNK = 500
ROWS_PER_INSERT = 50  # entries or claims written by one statement (`Ledger._insert_rows`)
# json.dumps with options would build an encoder for every entry written.
_KEY_TEXT = encoder(ensure_ascii=True, separators=(", ", ": "))  # as json.dumps writes it
_SORTED_JSON = json.JSONEncoder(sort_keys=True, default=str)
# The entries' columns as `Ledger._row` gives their values.
ENTRY_COLUMNS = (
    "site",
    "stream",
    "identity",
    "fingerprint",
    "state",
    "cons_id",
    "code",
    "message",
    "confirmed_at",
    "updated_at",
    "last_run",
    "replay_params",
    "replays",
    "memberships",
    "record_key",
    "claims",
)
_NO_CLAIMS: frozenset[str] = frozenset()
VERSION_QUERY = sa.select(meta_table.c.value).where(meta_table.c.name == "schema_version")
# What `lookup` reads of an entry, in `_entry`'s order.
LOOKED_UP = (
    "identity, fingerprint, state, cons_id, code, message, confirmed_at, replays, memberships, "
    "replay_params IS NOT NULL"
)
# Read with `Ledger._in_chunks`: {0} a bound parameter, {1} a chunk's.
LOOKUP_QUERY = (
    f"SELECT {LOOKED_UP} FROM target_convio_ledger "  # noqa: S608 - our own names
    "WHERE site = {0} AND stream = {0} AND identity IN ({1})"
)
CLAIMS_QUERY = (
    "SELECT c.hash, c.identity, e.record_key FROM target_convio_claims AS c "
    "LEFT OUTER JOIN target_convio_ledger AS e "
    "ON e.site = c.site AND e.stream = c.stream AND e.identity = c.identity "
    "WHERE c.site = {0} AND c.stream = {0} AND c.hash IN ({1})"
)
LISTED_QUERY = (
    "SELECT identity, claims FROM target_convio_ledger "
    "WHERE site = {0} AND stream = {0} AND identity IN ({1}) AND claims IS NOT NULL"
)
ACCEPTED, REJECTED, FAILED = "accepted", "rejected", "failed"
DAMAGED = ""  # the fingerprint of an entry that could not be read back: it matches nothing


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
    queued: bool = False  # a replay waits in the queue


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
            queued=True,
        )


@dataclass(frozen=True)
class Claim:
    """Another key holds this match value: its identity and its key's values."""

    identity: str
    key: dict[str, Any] | None


class Change(NamedTuple):
    """One settled record, as the ledger keeps it.

    `state` None: the record was not sent (a newer record that is invalid, unchanged or
    skipped); it only takes its key's replay out of the queue. A named tuple: one is made for
    every sent record, in a third of a frozen dataclass's time.
    """

    stream: str
    identity: str
    state: str | None
    fingerprint: str = ""
    cons_id: str | None = None
    keep_cons_id: bool = True  # else `cons_id` replaces the stored one, None included
    code: str | None = None
    message: str | None = None
    replay: Mapping[str, Any] | None = None  # {"params", "key", "memberships"} to send again
    replayed: bool = False  # this run's send was a replay
    memberships: Mapping[str, bool] | None = None  # confirmed now (accepted writes only)
    key: Mapping[str, Any] | None = None
    claims: frozenset[str] = frozenset()  # hashes of the match values it was sent with
    confirmed: bool = False  # Convio accepted it (or an earlier change of this checkpoint)
    known: bool = False  # the key may hold claims already (an entry, or sent earlier this run)
    new_constituent: bool = False  # Convio created it: no other key can hold its cons_id

    @classmethod
    def accepted(
        cls,
        stream: str,
        identity: str,
        fingerprint: str,
        *,
        cons_id: str | None,
        key: Mapping[str, Any] | None,
        memberships: Mapping[str, bool] | None,
        claims: frozenset[str],
        known: bool,
        new_constituent: bool,
    ) -> Change:
        """A write Convio accepted: its cons_id (None too) and memberships replace the stored
        ones. Built by position: a keyword call to the class passes the keywords to the tuple's
        `__new__` in a dict, at three times the cost, and every sent record is made here."""
        return tuple.__new__(
            cls,
            (
                stream,
                identity,
                ACCEPTED,
                fingerprint,
                cons_id,
                False,  # keep_cons_id
                None,  # code
                None,  # message
                None,  # replay
                False,  # replayed
                memberships,
                key,
                claims,
                True,  # confirmed
                known,
                new_constituent,
            ),
        )

    def then(self, later: Change) -> Change:
        """This change followed by a later one of the same key: what the ledger must hold."""
        if later.state is None:
            return self._replace(replay=None)
        merged = later._replace(known=self.known or later.known)
        if later.keep_cons_id and later.cons_id is None:
            merged = merged._replace(cons_id=self.cons_id, keep_cons_id=self.keep_cons_id)
        if not later.confirmed:
            # An accepted write's values and memberships stand until another is accepted; a
            # write that failed may have landed, so what it claimed is kept too.
            merged = merged._replace(
                claims=self.claims | later.claims,
                memberships=self.memberships,
                confirmed=self.confirmed,
            )
        return merged


class Ledger:
    """The ledger of one site (its `api_url`)."""

    def __init__(self, engine: sa.Engine, site: str, url: str = "") -> None:
        self.engine = engine
        self.site = indexable(site)
        self._url = url
        self.version = SCHEMA_VERSION
        self._insert: Any = _upsert_for(engine.dialect.name)
        self._mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"  # driver SQL's

    @classmethod
    def open(cls, url: str, site: str, *, timeout: float = 30.0) -> Ledger:
        """Connect, and create or upgrade the schema; LedgerError says what failed."""
        parsed = check_url(url)
        try:
            ledger = cls(engine_for(parsed, timeout), site, url)
            ledger._prepare()
        except (sa.exc.SQLAlchemyError, ImportError, OSError, ValueError) as exc:
            raise cannot_open(exc, url) from None
        return ledger

    @classmethod
    def find(cls, url: str, site: str, *, timeout: float = 30.0) -> Ledger | None:
        """An existing ledger, read as it is (never created or upgraded); None if there is none."""
        parsed = check_url(url)
        if not exists(parsed):
            return None
        try:
            ledger = cls(engine_for(parsed, timeout, create=False), site, url)
            with ledger.engine.connect() as connection:
                if not sa.inspect(connection).has_table(meta_table.name):
                    ledger.close()
                    return None
                found = connection.execute(VERSION_QUERY).scalar()
            ledger.version = int(found or 0)
        except (sa.exc.SQLAlchemyError, ImportError, OSError, ValueError) as exc:
            raise cannot_open(exc, url) from None
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
        with self.engine.connect() as connection:
            if _probed_version(connection) == str(SCHEMA_VERSION):
                return  # the usual open: no table to look for, nothing to create
            with connection.begin():
                self._create_or_upgrade(connection)

    def _create_or_upgrade(self, connection: sa.Connection) -> None:
        metadata.create_all(connection, checkfirst=True)
        connection.execute(sa.text(CREATE_QUEUE_INDEX))
        found = connection.execute(VERSION_QUERY).scalar()
        if found is None:
            statement = self._insert(meta_table).on_conflict_do_nothing(index_elements=["name"])
            connection.execute(statement.values(name="schema_version", value=str(SCHEMA_VERSION)))
        elif int(found) > SCHEMA_VERSION:
            raise LedgerError(
                f"ledger_url: the ledger was written by a newer target-convio (schema "
                f"{found}, this one knows {SCHEMA_VERSION})"
            )
        elif int(found) < SCHEMA_VERSION:
            upgrade(connection, int(found))

    def close(self) -> None:
        self.engine.dispose()

    def failure(self, verb: str, exc: BaseException) -> LedgerError:
        """The one line that reports a ledger fault, without the URL's password."""
        return LedgerError(f"Cannot {verb} the ledger: {reason(exc, self._url)}")

    # -- reading --------------------------------------------------------------------------

    def lookup(self, stream: str, identities: Sequence[str]) -> dict[str, Entry]:
        """The entries of these identities, one query per CHUNK of them.

        An entry that cannot be read back (a damaged timestamp or memberships) is given a
        fingerprint that matches nothing, so its record is sent again.
        """
        with self.engine.connect() as connection:
            rows = self._in_chunks(connection, LOOKUP_QUERY, stream, identities)
            return {row[0]: _entry(row) for row in rows}

    def claims(self, stream: str, hashes: Sequence[str]) -> dict[str, Claim]:
        """Which keys hold these match values, one query per CHUNK of them."""
        with self.engine.connect() as connection:
            rows = self._in_chunks(connection, CLAIMS_QUERY, stream, hashes)
            return {digest: Claim(who, _json(record_key)) for digest, who, record_key in rows}

    def _in_chunks(
        self, connection: sa.Connection, query: str, stream: str, values: Iterable[str]
    ) -> Iterator[Sequence[Any]]:
        """The rows of `query` for the site, the stream and one CHUNK of `values` at a time:
        {0} stands for a bound parameter, {1} for the chunk's. Plain driver SQL: every record
        of a run is looked up, and SQLAlchemy's statement building and row processing cost
        three times the query itself."""
        wanted = sorted(set(values))
        mark = self._mark
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            yield from connection.exec_driver_sql(  # the names are ours; values are bound
                query.format(mark, ", ".join([mark] * len(chunk))),
                (self.site, indexable(stream), *chunk),
            )

    def replays(self, stream: str, run_id: str) -> Iterator[Replay]:
        """The stream's replay queue, less what this run already settled, a chunk at a time."""
        after = ""
        while True:
            with self.engine.connect() as connection:
                rows = connection.execute(self.replay_statement(stream, run_id, after)).all()
            if not rows:
                return
            for row in rows:
                stored = _json(row.replay_params)
                if not isinstance(stored, dict) or not isinstance(stored.get("params"), dict):
                    continue  # damaged: nothing to send
                yield Replay(
                    row.identity,
                    row.fingerprint,
                    stored["params"],
                    stored.get("key"),
                    row.cons_id,
                    row.replays,
                    _flags(stored.get("memberships") or {}) or {},
                    _memberships(row.memberships) or {},
                )
            after = rows[-1].identity

    def replay_statement(self, stream: str, run_id: str, after: str) -> sa.Select[Any]:
        """The next CHUNK of the queue after identity `after`: a seek in the queue's index,
        which holds only queued entries, so its cost follows the queue, not the ledger."""
        return (
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
                entries.c.stream == indexable(stream),
                entries.c.state == FAILED,
                entries.c.replay_params.is_not(None),
                sa.or_(entries.c.last_run.is_(None), entries.c.last_run != run_id),
                entries.c.identity > after,
            )
            .order_by(entries.c.identity)
            .limit(CHUNK)
        )

    # -- writing --------------------------------------------------------------------------

    def commit(self, changes: Sequence[Change], run_id: str) -> list[Change]:
        """A checkpoint's changes, in one transaction, as if applied one by one in input order.

        Returns the accepted writes whose cons_id another key holds: they are not remembered
        with it (one constituent, one key), and are kept as refused.
        """
        merged: dict[tuple[str, str], Change] = {}
        for change in changes:
            slot = (change.stream, change.identity)
            earlier = merged.get(slot)
            merged[slot] = change if earlier is None else earlier.then(change)
        if not merged:
            return []
        now = self._stored_time(dt.datetime.now(dt.timezone.utc))
        with self.engine.begin() as connection:
            conflicts = self._conflicts(connection, list(merged.values()))
            folded = [conflicts.get(slot, change) for slot, change in merged.items()]
            listed = self._listed_claims(connection, [c for c in folded if c.known])
            indexed = {name: indexable(name) for name in {c.stream for c in folded}}
            ended: list[dict[str, Any]] = []  # newer records, not sent: their replays end
            released: list[tuple[str, str, str, str]] = []  # claims a confirmed write gave up
            claimed: dict[tuple[str, str], str] = {}  # (stream, hash): the last key to send it
            # Rows of one kind, their values one after another (`_insert_rows`).
            groups: dict[tuple[str, bool, bool, tuple[bool, ...]], list[Any]] = {}
            for change in folded:
                stream = indexed[change.stream]
                if change.state is None:
                    ended.append(
                        {
                            "b_site": self.site,
                            "b_stream": stream,
                            "b_identity": change.identity,
                            "b_last_run": run_id,
                        }
                    )
                    continue
                before = listed.get((change.stream, change.identity), _NO_CLAIMS)
                for digest in change.claims:
                    claimed[(stream, digest)] = change.identity
                if change.confirmed:
                    held = change.claims
                    if before:
                        released += [(self.site, stream, h, change.identity) for h in before - held]
                else:  # a write that failed may have landed: what it claimed is kept too
                    held = before | change.claims
                replace_cons_id = change.cons_id is not None or not change.keep_cons_id
                given, row = self._row(change, stream, now, run_id, held)
                kind = (change.state, replace_cons_id, change.confirmed, given)
                groups.setdefault(kind, []).extend(itertools.compress(row, given))
            if ended:
                connection.execute(_replay_ended(), ended)
            for kind, values in groups.items():
                self._upsert(connection, kind, values)
            self._write_claims(connection, claimed, released)
        return [merged[slot] for slot in conflicts]

    def _stored_time(self, when: dt.datetime) -> Any:
        """A time as SQLAlchemy stores it: text on SQLite, for driver SQL to write as well."""
        return (
            when.strftime("%Y-%m-%d %H:%M:%S.%f") if self.engine.dialect.name == "sqlite" else when
        )

    def _row(
        self, change: Change, stream: str, now: Any, run_id: str, held: frozenset[str]
    ) -> tuple[tuple[bool, ...], tuple[Any, ...]]:
        """An entry's values in ENTRY_COLUMNS order (`stream` as indexed, `held`: the claims it
        lists), after which of them are given (not NULL)."""
        cons_id = storable(change.cons_id)
        code = None if change.code is None else storable(change.code, 100)
        message = None if change.message is None else storable(change.message, MAX_MESSAGE)
        replay = None if change.replay is None else _SORTED_JSON.encode(dict(change.replay))
        memberships = _SORTED_JSON.encode(dict(change.memberships)) if change.memberships else None
        key = _KEY_TEXT(change.key) if change.key else None
        claimed = " ".join(sorted(held)) or None
        confirmed = change.confirmed
        # Spelled out: a loop over the row's values cost a fifth of the commit's own time.
        given = (
            True,
            True,
            True,
            True,
            True,
            cons_id is not None,
            code is not None,
            message is not None,
            confirmed,
            True,
            True,
            replay is not None,
            True,
            memberships is not None,
            key is not None,
            claimed is not None,
        )
        row = (
            self.site,
            stream,
            change.identity,
            change.fingerprint,
            change.state,
            cons_id,
            code,
            message,
            now if confirmed else None,
            now,
            run_id,
            replay,
            1 if change.replayed else 0,
            memberships,
            key,
            claimed,
        )
        return given, row

    def _upsert(
        self,
        connection: sa.Connection,
        kind: tuple[str, bool, bool, tuple[bool, ...]],
        values: list[Any],
    ) -> None:
        """Each entry written whole, but for what an earlier write keeps: the replays (counted
        while it fails), the cons_id (unless replaced), what Convio last confirmed (unless
        confirmed now). `given`: the columns the rows hold; the others are NULL, as inserted
        and as `excluded` gives them (the driver looks for an adapter for every None bound).
        Plain driver SQL: SQLAlchemy's per-row processing cost a fifth of the write."""
        state, replace_cons_id, confirmed, given = kind
        replaced = ["fingerprint", "state", "code", "message", "updated_at", "last_run"]
        replaced += ["replay_params", "record_key", "claims"]
        replaced += ["cons_id"] if replace_cons_id else []
        replaced += ["confirmed_at", "memberships"] if confirmed else []
        update = [f"{name} = excluded.{name}" for name in replaced]
        table = entries.name
        update.append(
            f"replays = {table}.replays + excluded.replays" if state == FAILED else "replays = 0"
        )
        columns = list(itertools.compress(ENTRY_COLUMNS, given))
        conflict = f"ON CONFLICT (site, stream, identity) DO UPDATE SET {', '.join(update)}"
        self._insert_rows(connection, table, columns, conflict, values)

    def _insert_rows(
        self,
        connection: sa.Connection,
        table: str,
        columns: Sequence[str],
        conflict: str,
        values: Sequence[Any],
    ) -> None:
        """INSERT rows (no two with one key) with `conflict`, its ON CONFLICT clause; `values`:
        the rows' values one after another. ROWS_PER_INSERT rows to a statement, the rest one
        by one: the driver binds, steps and resets a statement for each parameter set, and with
        many rows to a set SQLite writes a sent record's entry and claims in 10 thousand fewer
        instructions."""
        mark, width = self._mark, len(columns)
        one = f"({', '.join([mark] * width)})"
        head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "  # noqa: S608 - our names
        step = width * ROWS_PER_INSERT
        whole = len(values) - len(values) % step
        if whole:
            connection.exec_driver_sql(  # the table and column names are ours; values are bound
                f"{head}{', '.join([one] * ROWS_PER_INSERT)} {conflict}",
                [tuple(values[start : start + step]) for start in range(0, whole, step)],
            )
        if whole < len(values):
            rest = range(whole, len(values), width)
            connection.exec_driver_sql(
                f"{head}{one} {conflict}", [tuple(values[start : start + width]) for start in rest]
            )

    def _conflicts(
        self, connection: sa.Connection, changes: Sequence[Change]
    ) -> dict[tuple[str, str], Change]:
        """Accepted writes that landed on a constituent another key holds, as refusals."""
        wanted = [c for c in changes if c.state == ACCEPTED and c.cons_id and not c.new_constituent]
        if not wanted:
            return {}
        owners: dict[str, str] = {}
        for stream in {c.stream for c in wanted}:
            hashes = [cons_id_claim(c.cons_id or "") for c in wanted if c.stream == stream]
            for start in range(0, len(hashes), CHUNK):
                rows = connection.execute(
                    sa.select(claims.c.hash, claims.c.identity).where(
                        claims.c.site == self.site,
                        claims.c.stream == indexable(stream),
                        claims.c.hash.in_(hashes[start : start + CHUNK]),
                    )
                )
                owners.update({f"{stream}\0{row.hash}": row.identity for row in rows})
        found: dict[tuple[str, str], Change] = {}
        for change in wanted:
            slot = f"{change.stream}\0{cons_id_claim(change.cons_id or '')}"
            owner = owners.setdefault(slot, change.identity)
            if owner != change.identity:
                found[(change.stream, change.identity)] = change._replace(
                    state=REJECTED,
                    cons_id=None,
                    keep_cons_id=False,
                    code=None,
                    message=f"Convio answered with constituent {change.cons_id}, which another "
                    "key of this stream holds (already_used); it is not remembered for this key",
                    claims=change.claims - {cons_id_claim(change.cons_id or "")},
                )
        return found

    def _listed_claims(
        self, connection: sa.Connection, changes: Sequence[Change]
    ) -> dict[tuple[str, str], frozenset[str]]:
        """The claims these keys' entries list (keys new to the ledger have none to read)."""
        found: dict[tuple[str, str], frozenset[str]] = {}
        for stream in {c.stream for c in changes}:
            identities = (c.identity for c in changes if c.stream == stream)
            rows = self._in_chunks(connection, LISTED_QUERY, stream, identities)
            found.update({(stream, who): frozenset(text.split()) for who, text in rows})
        return found

    def _write_claims(
        self,
        connection: sa.Connection,
        claimed: Mapping[tuple[str, str], str],
        released: Sequence[tuple[str, str, str, str]],
    ) -> None:
        """Released claims deleted (unless another key took them since), then the claims sent,
        {(stream as indexed, hash): the last key that sent it}, written."""
        mark = self._mark
        if released:
            connection.exec_driver_sql(  # the table name is ours; every value is bound
                f"DELETE FROM {claims.name} WHERE site = {mark} AND stream = {mark} "  # noqa: S608
                f"AND hash = {mark} AND identity = {mark}",
                list(released),
            )
        values: list[str] = []
        for (stream, digest), who in claimed.items():
            values += (self.site, stream, digest, who)
        if values:
            # Plain driver SQL: a sent record's claims are written on the first run's hot path,
            # and SQLAlchemy's per-row parameter processing would double their cost.
            self._insert_rows(
                connection,
                claims.name,
                ("site", "stream", "hash", "identity"),
                "ON CONFLICT (site, stream, hash) DO UPDATE SET identity = excluded.identity",
                values,
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
            condition = sa.and_(condition, entries.c.stream == indexable(stream))
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
                    "key": (_json(row.replay_params) or {}).get("key"),
                    "replays": row.replays,
                    "message": row.message,
                    "since": _aware(row.updated_at),
                }
                for row in rows
            ]

    # -- the daily call budget ------------------------------------------------------------

    def reserve_calls(self, day: str, wanted: int, budget: int) -> tuple[int, int]:
        """Up to `wanted` calls of `day`'s `budget`, counted as made: (granted, counted).

        The count is raised before it is read, so the transaction holds the row's write lock
        and two processes reserving at once never both get the last calls.
        """
        where = sa.and_(calls_per_day.c.site == self.site, calls_per_day.c.day == day)
        try:
            with self.engine.begin() as connection:
                add = self._insert(calls_per_day).on_conflict_do_nothing()
                connection.execute(add.values(site=self.site, day=day, calls=0))
                connection.execute(
                    sa.update(calls_per_day)
                    .where(where)
                    .values(calls=calls_per_day.c.calls + wanted)
                )
                counted = connection.execute(sa.select(calls_per_day.c.calls).where(where))
                before = counted.scalar_one() - wanted
                granted = max(0, min(wanted, budget - before))
                if granted != wanted:
                    connection.execute(
                        sa.update(calls_per_day).where(where).values(calls=before + granted)
                    )
        except sa.exc.SQLAlchemyError as exc:
            raise self.failure("count calls in", exc) from None
        return granted, before + granted

    def give_back_calls(self, day: str, unused: int) -> None:
        """Calls reserved but not made, returned to `day`'s count."""
        where = sa.and_(calls_per_day.c.site == self.site, calls_per_day.c.day == day)
        try:
            with self.engine.begin() as connection:
                left = sa.case(
                    (calls_per_day.c.calls > unused, calls_per_day.c.calls - unused), else_=0
                )
                connection.execute(sa.update(calls_per_day).where(where).values(calls=left))
        except sa.exc.SQLAlchemyError as exc:
            raise self.failure("count calls in", exc) from None

    def copy_to(self, other: Ledger) -> tuple[int, int]:
        """Every entry and claim of this ledger (every site), written into `other` over what it
        holds for the same keys: (entries, claims). A chunk at a time, one transaction.

        An entry written over another keeps listing the claims that one listed: `other`'s
        claim rows of that key stay, and must stay releasable."""
        copied = []
        with self.engine.connect() as source, other.engine.begin() as target:
            for table in (entries, claims):
                keys = [column.name for column in table.primary_key]
                statement: Any = other._insert(table)
                kept = {c.name: statement.excluded[c.name] for c in table.c if c.name not in keys}
                statement = statement.on_conflict_do_update(index_elements=keys, set_=kept)
                count = 0
                result = source.execution_options(yield_per=CHUNK).execute(_readable(table, source))
                for rows in result.partitions(CHUNK):
                    values = [_portable(dict(row._mapping)) for row in rows]
                    if table is entries:
                        _list_claims_held_there(target, values)
                    target.execute(statement, values)
                    count += len(rows)
                copied.append(count)
        return copied[0], copied[1]

    def forget(self, stream: str, site: str | None = None) -> int:
        """Remove a stream's entries (of one site, or all); its next run sends everything."""
        removed = 0
        with self.engine.begin() as connection:
            for table in (claims, entries):
                condition = table.c.stream == indexable(stream)
                if site is not None:
                    condition = sa.and_(condition, table.c.site == indexable(site))
                removed = int(connection.execute(sa.delete(table).where(condition)).rowcount)
        return removed


def _list_claims_held_there(connection: sa.Connection, values: Sequence[dict[str, Any]]) -> None:
    """Entries about to be written over the target's: each lists the claims of both."""
    by_slot: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for value in values:
        by_slot.setdefault((value["site"], value["stream"]), []).append(value)
    for (site, stream), group in by_slot.items():
        rows = connection.execute(
            sa.select(entries.c.identity, entries.c.claims).where(
                entries.c.site == site,
                entries.c.stream == stream,
                entries.c.identity.in_([value["identity"] for value in group]),
                entries.c.claims.is_not(None),
            )
        )
        there = {row.identity: set(row.claims.split()) for row in rows}
        for value in group:
            if value["identity"] in there:
                listed = there[value["identity"]] | set((value["claims"] or "").split())
                value["claims"] = " ".join(sorted(listed))


def _readable(table: sa.Table, connection: sa.Connection) -> Any:
    """All of a table; SQLite's times as text, so a damaged one cannot stop the copy."""
    if connection.dialect.name != "sqlite":
        return sa.select(table)
    return sa.select(
        *(
            sa.type_coerce(c, sa.Text).label(c.name) if isinstance(c.type, sa.DateTime) else c
            for c in table.c
        )
    )


def _portable(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as any ledger takes it: times in UTC (an unreadable one: unknown, or now)."""
    values = dict(row)
    for name in ("confirmed_at", "updated_at"):
        if name in values:
            try:
                values[name] = _time(values[name])
            except ValueError:
                values[name] = None
            if name == "updated_at" and values[name] is None:
                values[name] = dt.datetime.now(dt.timezone.utc)
    return values


def cannot_open(exc: BaseException, url: str) -> LedgerError:
    """The one line for a ledger that cannot be reached; a missing driver names the extra."""
    if isinstance(exc, ImportError) and "psycopg" in str(exc):
        return LedgerError(
            "Cannot open the ledger (ledger_url): PostgreSQL needs the postgres extra: "
            "pip install 'target-convio[postgres]'"
        )
    return LedgerError(f"Cannot open the ledger (ledger_url): {reason(exc, url)}")


def _at_slot(table: sa.Table) -> Any:
    """The row of one key, its values bound as `b_site`, `b_stream` and `b_identity`."""
    return sa.and_(
        table.c.site == sa.bindparam("b_site"),
        table.c.stream == sa.bindparam("b_stream"),
        table.c.identity == sa.bindparam("b_identity"),
    )


def _replay_ended() -> Any:
    return (
        sa.update(entries)
        .where(_at_slot(entries))
        .values(replay_params=None, last_run=sa.bindparam("b_last_run"))
    )


def _probed_version(connection: sa.Connection) -> str | None:
    """The ledger's schema version; None where there is no ledger yet (no table), which is
    then made. A ledger that cannot be reached raises from `connect`, once."""
    try:
        found = connection.execute(VERSION_QUERY).scalar()
    except sa.exc.DBAPIError:
        found = None
    connection.rollback()  # PostgreSQL keeps a failed transaction open
    return None if found is None else str(found)


def _upsert_for(dialect: str) -> Any:
    """The dialect's INSERT with ON CONFLICT; PostgreSQL's is imported only when used (30 ms
    of every start otherwise)."""
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite  # noqa: PLC0415

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql  # noqa: PLC0415

        return postgresql.insert
    raise LedgerError(f"ledger_url: {dialect} is not supported")


def _entry(row: Sequence[Any]) -> Entry:
    """An entry as LOOKED_UP reads it (SQLite gives times back as text)."""
    _, fingerprint, state, cons_id, code, message, confirmed_at, replays, memberships, queued = row
    confirmed: dict[str, bool] | None = _memberships(memberships) if memberships else {}
    try:
        when = _time(confirmed_at)
    except ValueError:
        when, confirmed = None, None
    return Entry(
        DAMAGED if confirmed is None else fingerprint,
        state,
        cons_id,
        code,
        message,
        when,
        replays or 0,
        confirmed or {},
        bool(queued),
    )


def _json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _memberships(text: str | None) -> dict[str, bool] | None:
    """What Convio confirmed; None when the stored text is damaged."""
    return _flags(_json(text) if text else {})


def _flags(value: Any) -> dict[str, bool] | None:
    if not isinstance(value, dict):
        return None
    return {str(k): bool(v) for k, v in value.items()}


def _time(value: dt.datetime | str | None) -> dt.datetime | None:
    """A stored time in UTC; ValueError when it cannot be read."""
    if isinstance(value, str):
        return _time_from_text(value)
    return _aware(value)


@functools.lru_cache(maxsize=256)  # the entries of one commit share their time
def _time_from_text(text: str) -> dt.datetime | None:
    return _aware(dt.datetime.fromisoformat(text))


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    """SQLite gives naive datetimes back; the ledger writes UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.timezone.utc)
    return value
