"""Reading one Convio answer, XML or JSON, into a classified Reply."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict

from target_convio.convio.codes import Kind, lookup

# HTTP statuses worth another try when the body is not a Convio answer.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Of those, the ones that say the request was turned away before it was carried out.
NOT_CARRIED_OUT = frozenset({408, 425, 429, 503})


@dataclass(frozen=True)
class Reply:
    """What one call came to: its class, the Convio root and body, or the error."""

    kind: Kind
    message: str = ""
    code: str | None = None
    root: str | None = None
    body: dict[str, Any] | None = None
    http_status: int | None = None
    attempts: int = 1
    maybe_written: bool = False  # transient, yet the server may have carried the call out
    without_cons_id: bool = False  # sent again without a remembered cons_id Convio lacks

    @property
    def ok(self) -> bool:
        return self.kind is Kind.OK

    @property
    def cons_id(self) -> str | None:
        value = (self.body or {}).get("cons_id")
        return value if isinstance(value, str) else None

    def with_attempts(self, attempts: int) -> Reply:
        return replace(self, attempts=attempts)


def transient(
    message: str, http_status: int | None = None, *, maybe_written: bool = False
) -> Reply:
    return Reply(Kind.TRANSIENT, message, http_status=http_status, maybe_written=maybe_written)


def read_answer(status: int, data: bytes, expected_root: str | None = None) -> Reply:
    """Classify an HTTP answer: a Convio success, a Convio error, or something else."""
    try:
        root, body = parse_document(data)
    except ValueError as exc:
        return _not_convio(status, str(exc))
    if root == "errorResponse":
        code = body.get("code")
        code = code.strip() if isinstance(code, str) else None
        message = body.get("message")
        message = message if isinstance(message, str) else ""
        return Reply(lookup(code).kind, message, code, root, body, status)
    if expected_root is not None and root != expected_root:
        return _not_convio(status, f"answer {root!r} where {expected_root!r} was expected")
    if not 200 <= status < 300:
        return _not_convio(status, f"a {root!r} answer")
    return Reply(Kind.OK, "", None, root, body, status)


def _not_convio(status: int, what: str) -> Reply:
    if status in RETRY_STATUSES or 200 <= status < 300:
        written = status not in NOT_CARRIED_OUT
        return transient(
            f"HTTP {status}: not a Convio answer ({what})", status, maybe_written=written
        )
    if status == 404:
        return Reply(Kind.FATAL, "HTTP 404: no SRConsAPI at api_url", http_status=status)
    return Reply(Kind.FATAL, f"HTTP {status}: not a Convio answer ({what})", http_status=status)


def parse_document(data: bytes) -> tuple[str, dict[str, Any]]:
    """(root name, content) of a Convio document; ValueError says why it is not one."""
    try:
        return _parse_document(data)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _parse_document(data: bytes) -> tuple[str, dict[str, Any]]:
    start = data.lstrip()[:1]
    if start == b"{":
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"invalid JSON at character {getattr(exc, 'pos', '?')}") from exc
    elif start == b"<":
        try:
            document = xmltodict.parse(data)
        except (ExpatError, ValueError) as exc:
            raise ValueError(f"invalid XML: {str(exc)[:80]}") from exc
        document = _plain(document)
    else:
        raise ValueError("empty answer" if not data.strip() else "neither XML nor JSON")
    if not isinstance(document, dict) or len(document) != 1:
        raise ValueError("not a single root element")
    ((root, body),) = document.items()
    root = root.strip()  # Convio's own example carries "createOrUpdateConsResponse " with a space
    if not root.endswith("Response"):
        raise ValueError(f"root element {root[:40]!r}")
    if body is None or body == "":
        body = {}
    if not isinstance(body, dict):
        raise ValueError(f"{root} holds no elements")
    return root, body


def _plain(node: Any) -> Any:
    """xmltodict output without XML attributes; xsi:nil elements become None."""
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if not isinstance(node, dict):
        return node
    if node.get("@xsi:nil") == "true":
        return None
    plain = {key: _plain(value) for key, value in node.items() if not key.startswith("@")}
    return plain["#text"] if list(plain) == ["#text"] else plain


def as_list(value: Any) -> list[Any]:
    """A repeated element as a list, whether Convio sent none, one or many."""
    if value is None or value == {}:
        return []
    return value if isinstance(value, list) else [value]
