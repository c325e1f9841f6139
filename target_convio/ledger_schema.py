"""The sync ledger's tables, their upgrades, and the URL and engine that reach them.

Nothing a server answers, and no stream name, can make a write fail: texts are stored as
`storable` makes them, and names that could outgrow an index are kept by `indexable`.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

# 2: memberships; 3: match claims, the record's key, unbounded texts; 4: calls per day;
# 5: run history, the replay queue's index; 6: each entry lists its claims, the queue's index
# holds only queued entries (a first run writes two random index entries fewer per record);
# 7: the entries' and claims' keys begin with their hash
SCHEMA_VERSION = 7
HISTORY_VERSION = 5  # the first schema with the run history
DEFAULT_LEDGER_URL = "sqlite:///.target-convio/ledger.sqlite"
MAX_NAME = 200  # longer stream names and sites are kept as a prefix and a digest
MAX_MESSAGE = 2000

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
    sa.Column("site", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("identity", sa.String(64), nullable=False),
    sa.Column("fingerprint", sa.String(64), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("cons_id", sa.Text),
    sa.Column("code", sa.Text),
    sa.Column("message", sa.Text),
    sa.Column("confirmed_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_run", sa.Text),
    sa.Column("replay_params", sa.Text),
    sa.Column("replays", sa.Integer, nullable=False, default=0),
    sa.Column("memberships", sa.Text),  # {"group:1234": true, ...} as Convio last confirmed
    sa.Column("record_key", sa.Text),  # the key's values as JSON, to name it in a conflict
    # The hashes of the match values this key may hold in target_convio_claims, space
    # separated: its claims are released through them, without an index by identity.
    sa.Column("claims", sa.Text),
    # The hash first: two keys differ in its first bytes, where every key of a site and stream
    # would begin with the same URL and name, compared again at every step of an insert.
    sa.PrimaryKeyConstraint("identity", "site", "stream"),
)
# The replay queue in identity order, and nothing else: an entry is in this index only while
# a replay waits, so the queue is found without visiting other entries, and writing an
# accepted entry costs no index entry here. Plain DDL, not an sa.Index: its dialect options
# would import PostgreSQL's dialect at every start.
QUEUE_INDEX = "target_convio_ledger_queued"
CREATE_QUEUE_INDEX = (
    f"CREATE INDEX IF NOT EXISTS {QUEUE_INDEX} ON target_convio_ledger (site, stream, identity) "
    "WHERE replay_params IS NOT NULL"
)
# Which key a match value (email, member_id, cons_id) belongs to: its hash, never the value.
claims = sa.Table(
    "target_convio_claims",
    metadata,
    sa.Column("site", sa.Text, nullable=False),
    sa.Column("stream", sa.Text, nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("identity", sa.String(64), nullable=False),
    sa.PrimaryKeyConstraint("hash", "site", "stream"),  # the hash first, as the entries' key
    sqlite_with_rowid=False,  # the primary key is the table: smaller, one B-tree to write
)
# API calls made to a site per UTC day, by every run and partition sharing the ledger.
calls_per_day = sa.Table(
    "target_convio_calls",
    metadata,
    sa.Column("site", sa.Text, primary_key=True),
    sa.Column("day", sa.String(10), primary_key=True),  # 2026-11-30
    sa.Column("calls", sa.Integer, nullable=False),
)

# One row per run, written as it starts (`unfinished`) and again when it ends, however it ends.
runs = sa.Table(
    "target_convio_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),
    sa.Column("site", sa.Text, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("ended", sa.String(16), nullable=False),
    sa.Column("streams", sa.Text, nullable=False),  # JSON: the streams received, in order
    sa.Column("records", sa.Integer, nullable=False),
    sa.Column("records_per_second", sa.Float, nullable=False),
    sa.Column("replay_queue", sa.Integer),  # records waiting to be replayed when it ended
    sa.Column("counts", sa.Text, nullable=False),  # JSON: {outcome: rows}
    sa.Column("by_code", sa.Text, nullable=False),  # JSON: {Convio code: rows}
    sa.Column("by_field", sa.Text, nullable=False),  # JSON: {field: refused rows}
    sa.Column("reasons", sa.Text, nullable=False),  # JSON: {reason: refused rows}
    sa.Column("calls", sa.Text, nullable=False),  # JSON: {method: HTTP requests}
)
sa.Index("target_convio_runs_started", runs.c.site, runs.c.started_at)

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# A password may hold only these unencoded; anything else must be percent-encoded.
_USERINFO = re.compile(r"^[A-Za-z0-9._~!$&'()*+,;=%-]*(:[A-Za-z0-9._~!$&'()*+,;=%-]*)?$")


class LedgerError(Exception):
    """The ledger cannot be opened or used; the message never shows the URL's password."""


def storable(text: str | None, limit: int | None = None) -> str | None:
    """A text any database keeps: no NUL, no lone surrogate (written escaped), at most `limit`."""
    if text is None:
        return None
    # An ASCII text (its kind is known without a scan) can hold only the NUL.
    if (not text.isascii() or "\x00" in text) and _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(lambda m: m.group().encode("unicode_escape").decode(), text)
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


@functools.lru_cache(maxsize=256)
def indexable(name: str) -> str:
    """A stream name or site as the ledger keys it: as it is, unless too long to index."""
    safe = storable(name) or ""
    if safe == name and len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    return f"{safe[: MAX_NAME - 40]}…{digest}"


def check_url(url: str) -> URL:
    """The parsed `ledger_url`; LedgerError (showing no part of it) if it cannot be used."""
    scheme, _, rest = url.partition("://")
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0]
    userinfo = netloc.rpartition("@")[0]
    after = rest[len(netloc) :]
    if (userinfo and not _USERINFO.match(userinfo)) or ("@" in after and scheme != "sqlite"):
        raise LedgerError(
            "ledger_url: the user name or password holds a reserved character (@ : / ? # and "
            "the like); percent-encode it (@ as %40, : as %3A, / as %2F)"
        )
    try:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        parsed.port  # noqa: B018 - a port that is not a number fails here, not later
    except Exception:
        raise LedgerError("ledger_url: not a URL (sqlite:///path or postgresql://...)") from None
    if backend not in ("sqlite", "postgresql"):
        raise LedgerError("ledger_url must be sqlite:///path, postgresql://... or none")
    if backend == "sqlite" and (
        not parsed.database or parsed.database == ":memory:" or parsed.query.get("mode") == "memory"
    ):
        raise LedgerError(
            "ledger_url: an in-memory SQLite database is gone when the run ends; give a file, "
            "e.g. sqlite:///.target-convio/ledger.sqlite"
        )
    return parsed


def exists(url: URL) -> bool:
    """Whether an SQLite ledger's file is there (`Ledger.find` asks PostgreSQL for its tables)."""
    return url.get_backend_name() != "sqlite" or Path(url.database or "").expanduser().exists()


def engine_for(url: URL, timeout: float, *, create: bool = True) -> sa.Engine:
    """An engine whose every wait (connect, lock, statement) ends within `timeout` seconds."""
    if url.get_backend_name() == "sqlite":
        if create:
            Path(url.database or "").expanduser().parent.mkdir(parents=True, exist_ok=True)
        return sa.create_engine(url, connect_args={"timeout": timeout})
    if url.drivername == "postgresql":
        url = url.set(drivername="postgresql+psycopg")
    milliseconds = max(1, int(timeout * 1000))
    connect_args: dict[str, Any] = {
        "connect_timeout": max(1, round(timeout)),
        "options": f"-c lock_timeout={milliseconds} -c statement_timeout={milliseconds}",
        "keepalives": 1,
        "keepalives_idle": 30,
    }
    return sa.create_engine(
        url, pool_pre_ping=True, pool_timeout=timeout, connect_args=connect_args
    )


def upgrade(connection: sa.Connection, version: int) -> None:
    """Bring an older ledger's schema to SCHEMA_VERSION, in place, keeping every entry.

    New tables (claims in 3, calls per day in 4, runs in 5) and the queue's index (6) are made
    before this runs. A big ledger's upgrade to 6 and 7 takes a while once: every entry's claims
    are listed in it, and the entries and claims are keyed anew.
    """
    table = "target_convio_ledger"
    if version < 2:
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN memberships TEXT"))
    if version < 3:
        connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN record_key TEXT"))
        if connection.dialect.name == "postgresql":  # SQLite never enforced the lengths
            for column in ("site", "stream", "cons_id", "code", "last_run"):
                connection.execute(sa.text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE TEXT"))
    if version < 6:
        columns = {column["name"] for column in sa.inspect(connection).get_columns(table)}
        if "claims" not in columns:  # a version number set back by hand keeps its column
            connection.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN claims TEXT"))
        sqlite = connection.dialect.name == "sqlite"
        joined = "group_concat(hash, ' ')" if sqlite else "string_agg(hash, ' ')"
        connection.execute(  # while the claims' index by identity is still there
            sa.text(
                f"UPDATE {table} SET claims = (SELECT {joined} FROM target_convio_claims AS c "  # noqa: S608 - our own names
                f"WHERE c.site = {table}.site AND c.stream = {table}.stream "
                f"AND c.identity = {table}.identity)"
            )
        )
        for index in ("claims_identity", "ledger_queue", "ledger_replays"):  # 3-5, 5, 1-4
            connection.execute(sa.text(f"DROP INDEX IF EXISTS target_convio_{index}"))
    if version < 7:
        for rekeyed in (entries, claims):
            rekey(connection, rekeyed)
        connection.execute(sa.text(CREATE_QUEUE_INDEX))  # where SQLite dropped it
    connection.execute(
        sa.update(meta_table)
        .where(meta_table.c.name == "schema_version")
        .values(value=str(SCHEMA_VERSION))
    )


def rekey(connection: sa.Connection, table: sa.Table) -> None:
    """`table` with the primary key it has now, its rows kept. SQLite cannot change a primary
    key: the table is made again (the old one's indexes go with it)."""
    key = ", ".join(column.name for column in table.primary_key)
    if connection.dialect.name != "sqlite":
        name = sa.inspect(connection).get_pk_constraint(table.name)["name"]
        connection.execute(
            sa.text(f'ALTER TABLE {table.name} DROP CONSTRAINT "{name}", ADD PRIMARY KEY ({key})')
        )
        return
    columns = ", ".join(column.name for column in table.c)
    connection.execute(sa.text(f"ALTER TABLE {table.name} RENAME TO {table.name}_old"))
    table.create(connection)
    connection.execute(
        sa.text(f"INSERT INTO {table.name} ({columns}) SELECT {columns} FROM {table.name}_old")  # noqa: S608 - our own names
    )
    connection.execute(sa.text(f"DROP TABLE {table.name}_old"))


def reason(exc: BaseException, url: str | None = None) -> str:
    """A one-line reason, without the URL's password."""
    text = str(getattr(exc, "orig", None) or exc)
    text = text.splitlines()[0] if text else type(exc).__name__
    if url:
        try:
            password = make_url(url).password
        except Exception:
            password = None
        if password:
            text = text.replace(str(password), "***")
    return f"{type(exc).__name__}: {text[:200]}"
