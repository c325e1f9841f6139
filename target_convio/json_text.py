"""JSON texts from encoders whose C part is made once.

`json.JSONEncoder.encode` makes its C encoder anew for every value: half the cost of a small
value's text. `encoder` returns a function that writes the same text as `JSONEncoder(...,
default=str).encode`, with the C part made once (tests/target/test_digests.py compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from json.encoder import (  # type: ignore[attr-defined]
    c_make_encoder,
    encode_basestring,
    encode_basestring_ascii,
)
from typing import Any


def encoder(*, ensure_ascii: bool, separators: tuple[str, str]) -> Callable[[Any], str]:
    """What `json.JSONEncoder(default=str, ensure_ascii=..., separators=...).encode` writes."""
    fallback = json.JSONEncoder(default=str, ensure_ascii=ensure_ascii, separators=separators)
    if c_make_encoder is None:  # an interpreter without the C accelerator
        return fallback.encode
    item, key = separators
    quote = encode_basestring_ascii if ensure_ascii else encode_basestring
    # No cycle check (markers None): the values are JSON that was read, or built here.
    made = c_make_encoder(None, str, quote, None, key, item, False, False, True)

    def encode(value: Any) -> str:
        return "".join(made(value, 0))

    return encode
