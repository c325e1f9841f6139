"""Reading Singer input: the SDK's reader, with a bad line named briefly and no traceback."""

from __future__ import annotations

import json

from singer_sdk.io_base import SingerReader
from singer_sdk.singerlib.exceptions import InvalidInputLine
from singer_sdk.singerlib.json import deserialize_json

SHOWN = 120


def shorten(text: str, limit: int = SHOWN) -> str:
    """Text cut for a one-line message."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class InputReader(SingerReader):
    """Counts lines, so a line that is not JSON can be named by its number."""

    line_number = 0

    def deserialize_json(self, line: str) -> dict:
        self.line_number += 1
        try:
            message = deserialize_json(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputLine(
                f"input line {self.line_number} is not JSON ({exc.msg}): {shorten(line)}"
            ) from exc
        if not isinstance(message, dict):
            raise InvalidInputLine(
                f"input line {self.line_number} is not a Singer message: {shorten(line)}"
            )
        return message
