"""The ledger's decision for each record: send it (with a remembered cons_id), or settle it.

Records pass through a `Gate` in input order. With a ledger, the gate holds them until a
chunk is full (or the input pauses, or a STATE message arrives), looks the chunk up in one
query, and hands each record on: settled at once (`unchanged`, or `rejected` as before) or
sent. Without a ledger every record is sent as it comes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_convio.checkpoints import MAX_WAITING, Checkpointer, Pending
from target_convio.compare import locator
from target_convio.dispatch import Dispatcher
from target_convio.fields import Catalogue
from target_convio.ledger import ACCEPTED, REJECTED, Entry, Ledger
from target_convio.memberships import difference, with_changes
from target_convio.modes import SyncMode
from target_convio.rows import (
    LedgerNote,
    RecordRef,
    ResultRow,
    given_up_row,
    rejected_before_row,
    skipped_row,
    unchanged_row,
)

CHUNK = 200


@dataclass(frozen=True)
class SyncSettings:
    """What the ledger's decisions depend on (README, "The sync ledger")."""

    mode: SyncMode
    full_sync: bool = False
    compare: bool = False  # a compare dry run: each record is looked up, never written
    resend_after_days: float = 0
    resend_rejected: bool = False
    max_replays: int = 5


@dataclass
class Candidate:
    """A read record on its way to a decision: its row already, or what to send."""

    record: RecordRef
    row: ResultRow | None = None
    params: dict[str, str] | None = None
    identity: str | None = None
    memberships: dict[str, bool] = field(default_factory=dict)  # what the record wants


def identity_of(key: Mapping[str, Any] | None, params: Mapping[str, str]) -> str | None:
    """A record's ledger identity: its key properties, else member_id, else its email."""
    if key:
        basis: Any = ["key", sorted(key.items())]
    elif params.get("member_id"):
        basis = ["member_id", params["member_id"]]
    elif params.get("primary_email"):
        basis = ["email", params["primary_email"].strip().casefold()]
    else:
        return None
    return _digest(basis)


def fingerprint_of(
    method: str, params: Mapping[str, str], memberships: Mapping[str, bool] | None = None
) -> str:
    """A hash of a write as it would be sent (credentials are never in `params`), with the
    memberships the record wants."""
    if memberships:
        return _digest([method, sorted(params.items()), sorted(memberships.items())])
    return _digest([method, sorted(params.items())])


def _digest(value: Any) -> str:
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class Gate:
    """Where each record is decided, in input order, and handed to its checkpoint."""

    def __init__(
        self,
        ledger: Ledger | None,
        settings: SyncSettings,
        dispatcher: Dispatcher,
        checkpointer: Checkpointer,
        run_id: str,
    ) -> None:
        self.ledger = ledger
        self.settings = settings
        self._dispatcher = dispatcher
        self._checkpointer = checkpointer
        self._run_id = run_id
        self._held: list[Candidate] = []
        # Keys sent lately: their new state may not be committed yet, so the ledger's word on
        # them is stale. Records settle at most MAX_WAITING + 1 checkpoints after they are sent.
        self._recent: deque[str] = deque(maxlen=(MAX_WAITING + 2) * checkpointer.size + CHUNK)
        self._recent_count: Counter[str] = Counter()
        self._catalogue: Catalogue | None = None
        self.streams: list[str] = []  # streams this run received, in order of arrival

    def receive(self, stream: str, catalogue: Catalogue) -> None:
        """A stream's SCHEMA arrived: its queued replays are sent at the end of the run."""
        self._catalogue = catalogue
        if stream not in self.streams:
            self.streams.append(stream)

    def add(self, candidate: Candidate) -> None:
        """A record read; decided at once without a ledger, else with its chunk."""
        self._held.append(candidate)
        if self.ledger is None or len(self._held) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Decide every held record: one ledger query per stream, then on to the checkpoint."""
        held, self._held = self._held, []
        known: dict[tuple[str, str], Entry] = {}
        if self.ledger is not None:
            by_stream: dict[str, list[str]] = {}
            for candidate in held:
                if candidate.identity and candidate.row is None:
                    by_stream.setdefault(candidate.record.stream, []).append(candidate.identity)
            for stream, identities in by_stream.items():
                for identity, found in self.ledger.lookup(stream, identities).items():
                    known[(stream, identity)] = found
        for candidate in held:
            entry = known.get((candidate.record.stream, candidate.identity or ""))
            self._checkpointer.add(self._decide(candidate, entry))

    def replay(self) -> None:
        """Send again what failed in earlier runs, for the streams this run received."""
        if self.ledger is None or not self.streams or self.settings.compare:
            return
        self.flush()
        self._checkpointer.wait_until_committed()  # this run's own results first
        for stream in self.streams:
            for queued in self.ledger.replays(stream, self._run_id):
                record = RecordRef(self._run_id, stream, None, queued.key)
                if queued.replays >= self.settings.max_replays:
                    note = LedgerNote(queued.identity, queued.fingerprint, {}, None, replayed=True)
                    row = given_up_row(record, queued.replays + 1, note)
                    self._checkpointer.add(Pending(record, self.settings.mode, row=row))
                    continue
                candidate = Candidate(
                    record,
                    params=queued.params,
                    identity=queued.identity,
                    memberships=queued.wanted,
                )
                self._checkpointer.add(self._decide(candidate, queued.entry, replayed=True))

    def _decide(
        self,
        candidate: Candidate,
        entry: Entry | None,
        *,
        replayed: bool = False,
    ) -> Pending:
        mode = self.settings.mode
        record = candidate.record
        catalogue = self._catalogue
        if candidate.row is not None or candidate.params is None:
            return Pending(record, mode, row=candidate.row)
        params = candidate.params
        wanted = candidate.memberships
        if self.settings.compare:  # ask Convio, by the ledger's cons_id when it has one
            found = locator(params, entry.cons_id if entry is not None else None)
            call = self._dispatcher.submit("getUser", found, read_only=True)
            return Pending(record, mode, call=call, compare=params)
        if candidate.identity is None:  # not tracked: always sent
            sent = with_changes(params, difference(wanted, {}))
            call = self._dispatcher.submit(mode.method, sent)
            return Pending(record, mode, call=call, catalogue=catalogue)
        fingerprint = fingerprint_of(mode.method, params, wanted)
        if self._recent_count[candidate.identity]:
            entry = None  # sent earlier in this run: what the ledger holds may be outdated
        row = self._settled_without_a_call(record, entry, fingerprint, params)
        if row is not None:
            return Pending(record, mode, row=row)
        self._remember(candidate.identity)
        confirmed = entry.memberships if entry is not None else {}
        note = LedgerNote(
            candidate.identity,
            fingerprint,
            params,
            record.key,
            wanted=wanted,
            confirmed={**confirmed, **wanted},
            replayed=replayed,
        )
        # A full or stale resend repairs drift: every wanted membership is sent, not the change.
        stale = self.settings.full_sync or (entry is not None and not self._fresh(entry))
        sent = with_changes(params, difference(wanted, {} if stale else confirmed))
        if entry is not None and entry.cons_id and not params.get("cons_id"):
            call = self._dispatcher.submit(
                mode.method, {**sent, "cons_id": entry.cons_id}, without_cons_id=sent
            )
        else:
            call = self._dispatcher.submit(mode.method, sent)
        return Pending(record, mode, call=call, catalogue=catalogue, note=note)

    def _settled_without_a_call(
        self, record: RecordRef, entry: Entry | None, fingerprint: str, params: dict[str, str]
    ) -> ResultRow | None:
        """The row of a record the ledger settles: unchanged, refused before, or known."""
        if entry is None:
            return None
        if entry.fingerprint == fingerprint and not self.settings.full_sync:
            if entry.state == ACCEPTED and self._fresh(entry):
                return unchanged_row(record, entry.cons_id, entry.confirmed_at)
            if entry.state == REJECTED and not self.settings.resend_rejected:
                return rejected_before_row(record, entry.code, entry.message)
        if (
            entry.cons_id
            and not params.get("cons_id")
            and self.settings.mode is SyncMode.CREATE_ONLY
        ):
            return skipped_row(record, "exists; create_only does not update", entry.cons_id)
        return None

    def _remember(self, identity: str) -> None:
        if len(self._recent) == self._recent.maxlen:
            oldest = self._recent[0]
            self._recent_count[oldest] -= 1
            if not self._recent_count[oldest]:
                del self._recent_count[oldest]
        self._recent.append(identity)
        self._recent_count[identity] += 1

    def _fresh(self, entry: Entry) -> bool:
        days = self.settings.resend_after_days
        if not days or entry.confirmed_at is None:
            return True
        return dt.datetime.now(dt.timezone.utc) - entry.confirmed_at < dt.timedelta(days=days)
