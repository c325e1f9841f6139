"""Known secret values, removed from whatever a server sends back, in any form it may echo."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"


class Redactor:
    """Replaces each secret, raw, URL-encoded, JSON- or XML-escaped, with `[redacted]`."""

    def __init__(self, secrets: Iterable[str | None]) -> None:
        forms: set[str] = set()
        for secret in filter(None, secrets):
            forms |= {
                secret,
                quote_plus(secret),
                quote(secret, safe=""),
                json.dumps(secret)[1:-1],
                json.dumps(secret, ensure_ascii=False)[1:-1],
                html.escape(secret),
                html.escape(secret, quote=False),
            }
        longest_first = sorted(forms, key=len, reverse=True)
        self._pattern = (
            re.compile("|".join(map(re.escape, longest_first)), re.IGNORECASE) if forms else None
        )

    def found_in(self, value: Any) -> bool:
        """Whether any text inside `value` holds a secret (checked without copying)."""
        if self._pattern is None:
            return False
        if isinstance(value, str):
            return self._pattern.search(value) is not None
        if isinstance(value, dict):
            return any(self.found_in(k) or self.found_in(v) for k, v in value.items())
        if isinstance(value, list):
            return any(self.found_in(item) for item in value)
        return False

    def text(self, text: str) -> str:
        return self._pattern.sub(REDACTED, text) if self._pattern else text

    def value(self, value: Any) -> Any:
        """Every text inside `value` (dicts and lists walked), redacted."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.value(item) for item in value]
        return value
