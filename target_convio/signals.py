"""Signals that arrive before the target is built (the SDK's imports take a second or so).

The console script installs these handlers first thing; each only keeps the signal's number,
and the target acts on it once it runs, as on any later signal.
"""

from __future__ import annotations

import signal
from types import FrameType

_received: list[int] = []


def catch_early() -> None:
    """From now until the target installs its own, SIGINT and SIGTERM are kept, not raised."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _keep)


def received_early() -> int | None:
    """The first signal that arrived before the target's own handlers, if any."""
    return _received[0] if _received else None


def _keep(signum: int, frame: FrameType | None) -> None:
    _received.append(signum)
