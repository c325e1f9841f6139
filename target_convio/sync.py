"""The ledger's decision for each record: send it (with a remembered cons_id), or settle it.

Records pass through a `Gate` in input order. With a ledger, the gate holds them until a
chunk is full (or the input pauses, or a STATE message arrives), looks the chunk up in one
query (and, for those it would send, who holds their match values in another), and hands each
record on: settled at once (`unchanged`, `rejected` as before, `invalid` as `already_used`)
or sent. Without a ledger every record is sent as it comes.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from target_convio.checkpoints import MAX_WAITING, Checkpointer, Pending
from target_convio.digests import fingerprint_of, match_claims
from target_convio.dispatch import Chain, Dispatcher
from target_convio.fields import Catalogue
from target_convio.ledger import ACCEPTED, REJECTED, Claim, Entry, Ledger, Replay
from target_convio.memberships import difference, with_changes
from target_convio.modes import SyncMode
from target_convio.read_first import Looked, look, look_then_write
from target_convio.rows import (
    LedgerNote,
    RecordRef,
    ResultRow,
    already_used_row,
    compare_row,
    first_contact_row,
    given_up_row,
    predicted_row,
    rejected_before_row,
    skipped_row,
    superseding,
    unchanged_row,
)

CHUNK = 200


@dataclass(frozen=True)
class SyncSettings:
    """What the ledger's decisions depend on (docs/ledger.md)."""

    mode: SyncMode
    full_sync: bool = False
    read_first: bool = False  # first_contact: read: a key the ledger does not know is read first
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
    fingerprint: str = ""
    replayed: Entry | None = None  # a replay: its entry, as the queue gave it
    _claims: dict[str, str] | None = field(default=None, init=False, repr=False)

    @property
    def claims(self) -> dict[str, str]:
        """{field: claim} of its match values, with or without a ledger (no two keys of one run
        share a constituent); made when first asked: an unchanged record never asks."""
        if self._claims is None:
            self._claims = match_claims(self.params) if self.params and self.identity else {}
        return self._claims


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
        # Keys and match values sent lately: their new state may not be committed yet, so
        # the ledger's word on them is stale. Records settle at most MAX_WAITING + 1
        # checkpoints after they are sent; older ones are in the ledger.
        self._window = (MAX_WAITING + 2) * checkpointer.size + CHUNK
        self._chains: OrderedDict[tuple[str, str], Chain] = OrderedDict()
        self._claimed: OrderedDict[tuple[str, str], Claim] = OrderedDict()
        self._catalogue: Catalogue | None = None
        self._key_properties: dict[str, list[str]] = {}
        self._fault = False  # the ledger could not be read: nothing more is decided
        self.streams: list[str] = []  # streams this run received, in order of arrival
        self._replays: Counter[str] = Counter()

    def receive(self, stream: str, catalogue: Catalogue, key_properties: Sequence[str]) -> None:
        """A stream's SCHEMA arrived: its queued replays are sent at the end of the run."""
        self._catalogue = catalogue
        self._key_properties[stream] = sorted(key_properties)
        if stream not in self.streams:
            self.streams.append(stream)

    def add(self, candidate: Candidate) -> None:
        """A record read; decided at once without a ledger, else with its chunk."""
        self._held.append(candidate)
        if self.ledger is None or len(self._held) >= CHUNK:
            self.flush()

    def flush(self) -> None:
        """Decide every held record: a ledger query per stream, then on to the checkpoint."""
        held, self._held = self._held, []
        self._decide_all(held)

    def replay(self) -> None:
        """Send again what failed in earlier runs, for the streams this run received."""
        if self.ledger is None or not self.streams or self.settings.compare:
            return
        self.flush()
        self._checkpointer.wait_until_committed()  # this run's own results first
        for stream in self.streams:
            batch: list[Candidate] = []
            try:
                for queued in self.ledger.replays(stream, self._run_id):
                    batch.append(self._replayed(stream, queued))
                    if len(batch) >= CHUNK:
                        self._decide_all(batch)
                        batch = []
            except SQLAlchemyError as exc:
                self._stop(exc)
            self._decide_all(batch)

    def _replayed(self, stream: str, queued: Replay) -> Candidate:
        """A queued record as this run sends it, or its last row (given up, or outdated)."""
        self._replays[stream] += 1
        record = RecordRef(self._run_id, stream, None, queued.key, self._replays[stream])
        note = LedgerNote(queued.identity, queued.fingerprint, {}, queued.key, replayed=True)
        if queued.replays >= self.settings.max_replays:
            return Candidate(record, row=given_up_row(record, queued.replays + 1, note))
        if sorted(queued.key or {}) != self._key_properties.get(stream, []):
            names = ", ".join(self._key_properties.get(stream, [])) or "none"
            row = skipped_row(
                record,
                f"not replayed: it was queued under other key properties; the stream's are "
                f"now {names}, and its records are sent under them",
            )
            return Candidate(record, row=replace(row, ledger=superseding(queued.identity)))
        return Candidate(
            record,
            params=queued.params,
            identity=queued.identity,
            memberships=queued.wanted,
            replayed=queued.entry,
        )

    # -- deciding -------------------------------------------------------------------------

    def _decide_all(self, held: list[Candidate]) -> None:
        mode = self.settings.mode
        if self.ledger is not None:  # else nothing compares or keeps a fingerprint
            for candidate in held:
                if candidate.params is not None and candidate.identity:
                    candidate.fingerprint = fingerprint_of(
                        mode.method, candidate.params, candidate.memberships
                    )
        known = self._lookup(c for c in held if c.replayed is None)
        for candidate in held:
            if candidate.replayed is not None and candidate.identity:
                known[(candidate.record.stream, candidate.identity)] = candidate.replayed
        claims = self._claims(held, known)
        for candidate in held:
            stream = candidate.record.stream
            entry = known.get((stream, candidate.identity or ""))
            self._checkpointer.add(self._decide(candidate, entry, claims.get(stream, {})))

    def _lookup(self, held: Iterable[Candidate]) -> dict[tuple[str, str], Entry]:
        if self.ledger is None or self._fault:
            return {}
        by_stream: dict[str, list[str]] = {}
        for candidate in held:
            if candidate.identity:
                by_stream.setdefault(candidate.record.stream, []).append(candidate.identity)
        known: dict[tuple[str, str], Entry] = {}
        try:
            for stream, identities in by_stream.items():
                for identity, found in self.ledger.lookup(stream, identities).items():
                    known[(stream, identity)] = found
        except SQLAlchemyError as exc:
            self._stop(exc)
        return known

    def _claims(
        self, held: Iterable[Candidate], known: Mapping[tuple[str, str], Entry]
    ) -> dict[str, dict[str, Claim]]:
        """Who holds the match values of the records that may be sent, by stream."""
        if self.ledger is None or self._fault:
            return {}
        by_stream: dict[str, list[str]] = {}
        for candidate in held:
            if candidate.params is None or candidate.identity is None:
                continue
            entry = known.get((candidate.record.stream, candidate.identity))
            if (
                entry is not None
                and entry.fingerprint == candidate.fingerprint
                and entry.state == ACCEPTED
                and not self.settings.full_sync
            ):
                continue  # unchanged, or sent as Convio last accepted it
            hashes = list(candidate.claims.values())
            by_stream.setdefault(candidate.record.stream, []).extend(hashes)
        found: dict[str, dict[str, Claim]] = {}
        try:
            for stream, hashes in by_stream.items():
                found[stream] = self.ledger.claims(stream, hashes)
        except SQLAlchemyError as exc:
            self._stop(exc)
        return found

    def _stop(self, exc: BaseException) -> None:
        """The ledger cannot be read: the run stops in order; undecided records get no row."""
        self._fault = True
        if self.ledger is not None:
            self._dispatcher.stop(str(self.ledger.failure("read", exc)), kind="ledger_error")

    def _decide(
        self, candidate: Candidate, entry: Entry | None, claims: Mapping[str, Claim]
    ) -> Pending:
        mode = self.settings.mode
        record = candidate.record
        if candidate.row is not None or candidate.params is None:
            return Pending(record, mode, row=self._superseding(candidate, entry))
        params = candidate.params
        if self._fault:
            return Pending(record, mode)  # no row: the run is stopping
        if self.settings.compare:
            return self._compare(candidate, entry, claims)
        if candidate.identity is None:  # not tracked: always sent
            if self.settings.read_first:
                return self._read_first(candidate, None, None)
            sent = with_changes(params, difference(candidate.memberships, {}))
            call = self._dispatcher.submit(mode.method, sent)
            return Pending(record, mode, call=call, catalogue=self._catalogue)
        return self._tracked(candidate, candidate.identity, entry, claims)

    def _tracked(
        self,
        candidate: Candidate,
        identity: str,
        entry: Entry | None,
        claims: Mapping[str, Claim],
    ) -> Pending:
        """A record whose key the ledger tracks: settled by the ledger, or sent."""
        mode, record, params = self.settings.mode, candidate.record, candidate.params or {}
        wanted = candidate.memberships
        slot = (record.stream, identity)
        recent = slot in self._chains  # sent earlier in this run: the entry may be outdated
        row = self._settled_without_a_call(record, entry, candidate.fingerprint, recent)
        row = row or self._conflict(candidate, claims)
        if row is not None:
            candidate.row = row
            return Pending(record, mode, row=self._superseding(candidate, entry))
        chain = self._chains.pop(slot, None) or Chain(entry.cons_id if entry else None)
        self._remember(self._chains, slot, chain, self._window)
        sent_claims = self._claim(candidate)
        confirmed = entry.memberships if entry is not None else {}
        note = (
            None
            if self.ledger is None
            else LedgerNote.of_sent(
                identity,
                candidate.fingerprint,
                params,
                record.key,
                wanted=wanted,
                confirmed={**confirmed, **wanted},
                replayed=candidate.replayed is not None,
                claims=frozenset(sent_claims.values()),
                known=entry is not None or recent,
            )
        )
        if self.settings.read_first and not recent and (entry is None or not entry.cons_id):
            return self._read_first(candidate, chain, note)
        # A full, stale or repeated send repairs drift: every wanted membership is sent.
        stale = self.settings.full_sync or recent or (entry is not None and not self._fresh(entry))
        sent = with_changes(params, difference(wanted, {} if stale else confirmed))
        everything = with_changes(params, difference(wanted, {}))  # for a new constituent
        call = self._dispatcher.submit(mode.method, sent, chain=chain, without_cons_id=everything)
        return Pending(record, mode, call=call, catalogue=self._catalogue, note=note)

    def _read_first(
        self, candidate: Candidate, chain: Chain | None, note: LedgerNote | None
    ) -> Pending:
        """`first_contact: read`: Convio is read first; only what differs is written."""
        record, mode, params = candidate.record, self.settings.mode, candidate.params or {}
        task = partial(look_then_write, mode=mode, params=params, wanted=candidate.memberships)
        call = self._dispatcher.submit_task(params, task, chain=chain)
        catalogue = self._catalogue

        def row_of(looked: Looked) -> ResultRow:
            found, prediction, write = looked.found, looked.prediction, looked.write
            return first_contact_row(
                record, mode, found, prediction, write=write, catalogue=catalogue, note=note
            )

        return Pending(record, mode, call=call, row_of=row_of)

    def _compare(
        self, candidate: Candidate, entry: Entry | None, claims: Mapping[str, Claim]
    ) -> Pending:
        """A compare dry run asks Convio, by the ledger's cons_id when it has one."""
        record, mode, params = candidate.record, self.settings.mode, candidate.params or {}
        conflict = self._conflict(candidate, claims)
        if conflict is not None:  # the real run would not send it
            return Pending(record, mode, row=predicted_row(conflict, "rejected"))
        if mode is SyncMode.CREATE_ONLY and entry is not None and entry.cons_id:
            known = skipped_row(record, "exists; create_only does not update", entry.cons_id)
            return Pending(record, mode, row=predicted_row(known, "skipped"))
        self._claim(candidate)
        known_cons_id = entry.cons_id if entry is not None else None
        task = partial(
            look,
            mode=mode,
            params=params,
            wanted=candidate.memberships,
            known_cons_id=known_cons_id,
        )
        call = self._dispatcher.submit_task(params, task, chain=None)
        return Pending(
            record,
            mode,
            call=call,
            row_of=lambda looked: compare_row(record, looked.found, looked.prediction),
        )

    def _settled_without_a_call(
        self, record: RecordRef, entry: Entry | None, fingerprint: str, recent: bool
    ) -> ResultRow | None:
        """The row of a record the ledger settles: unchanged, refused before, or known."""
        if self.settings.mode is SyncMode.CREATE_ONLY and recent:
            return skipped_row(record, "a record of this key was sent earlier in this run")
        if entry is None:
            return None
        if entry.fingerprint == fingerprint and not self.settings.full_sync and not recent:
            if entry.state == ACCEPTED and self._fresh(entry):
                return unchanged_row(record, entry.cons_id, entry.confirmed_at)
            if entry.state == REJECTED and not self.settings.resend_rejected:
                return rejected_before_row(record, entry.code, entry.message)
        if entry.cons_id and self.settings.mode is SyncMode.CREATE_ONLY:
            return skipped_row(record, "exists; create_only does not update", entry.cons_id)
        return None

    def _conflict(self, candidate: Candidate, claims: Mapping[str, Claim]) -> ResultRow | None:
        """`already_used` if a match value belongs to another key (ledger, or this run)."""
        stream = candidate.record.stream
        for name, digest_ in candidate.claims.items():
            holder = self._claimed.get((stream, digest_)) or claims.get(digest_)
            if holder is not None and holder.identity != candidate.identity:
                return already_used_row(candidate.record, name, holder.key)
        return None

    def _claim(self, candidate: Candidate) -> dict[str, str]:
        """The record's match values, held for its key for the rest of the run."""
        found = candidate.claims
        if candidate.identity is not None:
            holder = Claim(candidate.identity, candidate.record.key)
            for digest_ in found.values():
                # up to three match values a record: the window holds as many records' worth
                slot = (candidate.record.stream, digest_)
                self._remember(self._claimed, slot, holder, 3 * self._window)
        return found

    def _superseding(self, candidate: Candidate, entry: Entry | None) -> ResultRow | None:
        """A record not sent takes its key's replay, queued or made in this run, out of the
        queue: the newest record of a key wins, valid or not."""
        row = candidate.row
        identity = candidate.identity
        if row is None or identity is None or row.ledger is not None:
            return row
        if (entry is not None and entry.queued) or (candidate.record.stream, identity) in (
            self._chains
        ):
            return replace(row, ledger=superseding(identity))
        return row

    @staticmethod
    def _remember(recent: OrderedDict[Any, Any], slot: Any, value: Any, limit: int) -> None:
        recent[slot] = value
        recent.move_to_end(slot)
        if len(recent) > limit:
            recent.popitem(last=False)

    def _fresh(self, entry: Entry) -> bool:
        days = self.settings.resend_after_days
        if not days or entry.confirmed_at is None:
            return True
        return dt.datetime.now(dt.timezone.utc) - entry.confirmed_at < dt.timedelta(days=days)
