"""Request bodies are form-encoded exactly as urllib.parse.urlencode writes them."""

from __future__ import annotations

import random
from urllib.parse import parse_qsl, urlencode

import pytest

from target_convio.convio.form import form_encoded

PIECES = [chr(code) for code in range(128)] + ["é", "€", "𝄞", "ü", "\u00a0", "+", "%", "&", "="]


def test_any_text_and_numbers_are_encoded_as_urlencode_does() -> None:
    rng = random.Random(20261130)
    for _ in range(5000):
        params: dict[str, object] = {
            "".join(rng.choice(PIECES) for _ in range(rng.randrange(8))): "".join(
                rng.choice(PIECES) for _ in range(rng.randrange(24))
            )
            for _ in range(rng.randrange(6))
        }
        params["number"] = rng.choice([rng.randrange(-(10**6), 10**6), 1.5, -0.25])
        body = form_encoded(params)
        assert body == urlencode(params).encode("ascii"), params
        assert dict(parse_qsl(body.decode("ascii"), keep_blank_values=True)) == {
            k: str(v) for k, v in params.items()
        }


def test_a_lone_surrogate_is_refused_as_urlencode_refuses_it() -> None:
    with pytest.raises(UnicodeEncodeError):
        urlencode({"name.first": "a\ud800"})
    with pytest.raises(UnicodeEncodeError):
        form_encoded({"name.first": "a\ud800"})
