"""Reading Singer input: lines from a named thread, a stop at a message boundary, no traceback.

A thread ("input") reads lines into a short queue, so the main thread never blocks on input
for long and can stop at the next message boundary when asked (a signal, a fatal answer).
Input the run cannot go past (a line that is not JSON, a record before its schema) ends the
reading; the error is kept for the target to report after what was read is settled.
"""

from __future__ import annotations

import io
import json
import queue
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import IO, Any, cast

from singer_sdk.exceptions import FatalSyncError, InvalidJSONSchema
from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine, SingerReadError

SHOWN = 120
MAX_INT_DIGITS = 4000  # Python refuses to parse longer ones (sys.get_int_max_str_digits)
QUEUED_LINES = 1024
POLL_SECONDS = 0.1
# Input the target cannot read: reported in one line, after what was read before is settled.
INPUT_ERRORS = (SingerReadError, FatalSyncError, InvalidJSONSchema, ValueError)
_END = object()


def shorten(text: str, limit: int = SHOWN) -> str:
    """Text cut for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputReader(SingerReader):
    """The SDK's reader, fed by the "input" thread; counts lines to name a bad one."""

    def __init__(self) -> None:
        super().__init__()
        self.line_number = 0
        self.counts: Counter[str] = Counter()  # messages read, by type
        self._streams: set[str] = set()  # streams whose SCHEMA has been read
        self.should_stop: Callable[[], bool] = lambda: False
        self.on_idle: Callable[[], object] = lambda: None  # called while no input arrives
        self.stopped_early = False  # should_stop said so before the input ended
        self.error: Exception | None = None  # the input the run could not go past

    def process_lines(
        self, file_input: IO[str] | None, callbacks: dict[str, Callable[[dict[str, Any]], None]]
    ) -> Counter[str]:
        lines = _lines_from_thread(file_input or _stdin(), self._wait)
        try:
            # The SDK's loop only iterates over its input, which a generator does as well.
            super().process_lines(cast("IO[str]", lines), callbacks)
        except _Stopped:
            self.stopped_early = True
        except Exception as exc:  # kept, reported once the records read before are settled
            self.error = exc
        return self.counts

    def _wait(self) -> None:
        self.on_idle()
        if self.should_stop():
            raise _Stopped

    def deserialize_json(self, line: str) -> dict[str, Any]:
        if self.should_stop():
            raise _Stopped
        self.line_number += 1
        try:
            message = _DECODER.decode(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"input line {self.line_number} is not JSON ({exc.msg}): {shorten(line)}"
            ) from exc
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message: {shorten(line)}"
            )
        self._check_supported(message)
        self.counts[str(message.get("type"))] += 1
        return message

    def _check_supported(self, message: dict[str, Any]) -> None:
        """Refuse, by name, the messages the SDK would fail on with an internal error."""
        kind, stream = message.get("type"), message.get("stream")
        where = f"input line {self.line_number}"
        if kind == "SCHEMA":
            self._streams.add(str(stream))
        elif kind == "BATCH":
            raise InvalidInputLine(
                f"{where}: BATCH messages are not supported (stream {stream!r}); "
                "let the tap send RECORD messages (turn its batch_config off)"
            )
        elif kind == "ACTIVATE_VERSION" and str(stream) not in self._streams:
            raise InvalidInputLine(
                f"{where}: ACTIVATE_VERSION for stream {stream!r} before its SCHEMA"
            )


def _integer(text: str) -> int | Decimal:
    """An integer; one too long for Python's int parsing stays a Decimal, for the checks."""
    return int(text) if len(text) <= MAX_INT_DIGITS else Decimal(text)


# The SDK's deserialize_json (decimals for floats) with long integers kept: one decoder for
# every line, where json.loads with options would build one per line.
_DECODER = json.JSONDecoder(parse_float=Decimal, parse_int=_integer)


class _Stopped(Exception):  # noqa: N818 - control flow, never seen outside this module
    pass


def _stdin() -> IO[str]:
    """Standard input as UTF-8 whatever the locale; a byte UTF-8 does not allow becomes a lone
    surrogate, which the checks refuse for that record alone."""
    return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="surrogateescape")


def _lines_from_thread(source: IO[str], wait: Callable[[], None]) -> Iterator[str]:
    """The lines of `source`, read on the "input" thread; `wait` is called while none come."""
    lines: queue.Queue[object] = queue.Queue(QUEUED_LINES)

    def read() -> None:
        try:
            for line in source:
                lines.put(line)
        except Exception as exc:  # an unreadable input is reported like a bad line
            lines.put(exc)
        lines.put(_END)

    threading.Thread(target=read, name="input", daemon=True).start()
    while True:
        try:
            item = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            wait()
            continue
        if item is _END:
            return
        if isinstance(item, Exception):
            raise InvalidInputLine(f"input could not be read: {item}")
        yield cast("str", item)
