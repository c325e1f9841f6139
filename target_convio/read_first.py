"""Tasks that read before they decide, run by the dispatcher like any call.

`look`: the compare dry run's, which only reads. `look_then_write`: `first_contact: read`'s
for a key the ledger does not know; it writes only what differs from what Convio holds, by
the cons_id it found, and adopts a constituent that already holds every value without a write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from target_convio.compare import AMBIGUOUS, REJECTED, UNCHANGED, Prediction, predict
from target_convio.convio.answers import Reply
from target_convio.dispatch import Session
from target_convio.locate import Found, locate
from target_convio.memberships import difference, with_changes
from target_convio.modes import SyncMode


@dataclass(frozen=True)
class Looked:
    """What the reads found, what a write would do, and the write if one was sent."""

    found: Found
    prediction: Prediction
    write: Reply | None = None

    @property
    def adopted(self) -> bool:
        """Convio holds every value already: its constituent is the key's, with no write."""
        return self.write is None and self.prediction.outcome == UNCHANGED


def look(
    session: Session,
    mode: SyncMode,
    params: dict[str, str],
    wanted: Mapping[str, bool],
    known_cons_id: str | None,
) -> Looked | None:
    """Where a write would land and what it would do; None if the run is stopping."""
    found = locate(session.read, params, known_cons_id, wanted)
    if found is None:
        return None
    return Looked(found, predict(mode, params, wanted, found))


def look_then_write(
    session: Session, mode: SyncMode, params: dict[str, str], wanted: Mapping[str, bool]
) -> Looked | None:
    """Read first; write only if Convio's values differ, or nobody holds the record."""
    looked = look(session, mode, params, wanted, None)
    if looked is None:
        return None
    found, prediction = looked.found, looked.prediction
    if not _writes(mode, found, prediction):
        if looked.adopted and session.chain is not None:
            session.chain.cons_id = found.cons_id  # a repeat of the key in this run updates it
        return looked
    if found.cons_id:  # exactly the constituent that was read, and only what it lacks
        sent = with_changes(
            {**params, "cons_id": found.cons_id}, difference(wanted, found.memberships)
        )
    else:
        sent = with_changes(params, difference(wanted, {}))
    reply = session.write(mode.method, sent)
    return None if reply is None else Looked(found, prediction, reply)


def _writes(mode: SyncMode, found: Found, prediction: Prediction) -> bool:
    """False where the reads settle the record: it is adopted, several constituents match, a
    required match is missing (16), it exists in create_only, or Convio could not be read."""
    if not found.answered or prediction.outcome in (UNCHANGED, AMBIGUOUS):
        return False
    if prediction.outcome == REJECTED and prediction.code == "16":
        return False
    return not (mode is SyncMode.CREATE_ONLY and found.cons_id)
