"""The compare dry run: what a write would do, predicted from what getUser says Convio holds.

Values are compared the way Convio stores them: emails case-folded, dates as `yyyy-MM-dd`
(getUser adds a time zone), booleans and choices case-insensitively, blanks trimmed; custom
fields are read from where getUser puts them (`custom.<type>`, a list of `{id, content}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from target_convio.convio.answers import Reply, as_list
from target_convio.convio.codes import Kind
from target_convio.modes import SyncMode

# Parameters that locate a record or steer the write; they are not values Convio stores.
NOT_STORED = frozenset(
    {
        "cons_id",
        "member_id",
        "primary_email",
        "no_welcome",
        "source",
        "sub_source",
        "add_group_ids",
        "remove_group_ids",
        "add_interest_ids",
        "remove_interest_ids",
    }
)
CREATED, UPDATED, UNCHANGED, AMBIGUOUS, REJECTED = (
    "created",
    "updated",
    "unchanged",
    "ambiguous",
    "rejected",
)


def locator(params: Mapping[str, str], known_cons_id: str | None) -> dict[str, str]:
    """How getUser finds the record a write would address: cons_id, member_id, then email."""
    if params.get("cons_id"):
        return {"cons_id": params["cons_id"]}
    if known_cons_id:
        return {"cons_id": known_cons_id}
    if params.get("member_id"):
        return {"member_id": params["member_id"]}
    if params.get("primary_email"):
        return {"primary_email": params["primary_email"]}
    return {}


def predict(
    mode: SyncMode, params: Mapping[str, str], reply: Reply
) -> tuple[str | None, dict[str, list[str | None]] | None, str]:
    """(predicted outcome, changes, message) from getUser's answer."""
    if reply.kind is Kind.OK:
        return _found(mode, params, reply.body or {})
    if reply.code == "16":
        if mode is SyncMode.UPDATE_ONLY or params.get("cons_id"):
            return REJECTED, None, "no record matches: update would be refused (code 16)"
        return CREATED, None, "no record matches: a new one would be created"
    if reply.code in ("8", "15"):
        return AMBIGUOUS, None, f"several records match (code {reply.code})"
    return None, None, f"could not ask Convio: {reply.message or reply.code}"


def _found(
    mode: SyncMode, params: Mapping[str, str], body: Mapping[str, Any]
) -> tuple[str, dict[str, list[str | None]] | None, str]:
    changes = {
        name: [held, sent]
        for name, sent in sorted(params.items())
        if name not in NOT_STORED and not _same(name, held := stored(body, name), sent)
    }
    if mode is SyncMode.CREATE_ONLY:
        return REJECTED, None, "a record matches: create would be refused (code 11 or 13)"
    if changes:
        return UPDATED, changes, f"would update {len(changes)} field(s)"
    return UNCHANGED, {}, "Convio already holds every value that would be sent"


def stored(body: Mapping[str, Any], name: str) -> str | None:
    """The value getUser shows for a field: nested by its dots, custom fields by their id."""
    if name.startswith("custom_"):
        kind = name.removeprefix("custom_").rstrip("0123456789")
        custom = body.get("custom")
        items = as_list(custom.get(kind)) if isinstance(custom, Mapping) else []
        for item in items:
            if isinstance(item, Mapping) and item.get("id") == name:
                return _text(item.get("content"))
        return None
    node: Any = body
    for part in name.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return _text(node)


def _text(value: Any) -> str | None:
    if value is None or value == {} or isinstance(value, (dict, list)):
        return None
    return str(value)


def _same(name: str, held: str | None, sent: str) -> bool:
    if held is None:
        return not sent.strip()
    a, b = held.strip(), sent.strip()
    if "email" in name or b in ("true", "false"):
        return a.casefold() == b.casefold()
    if len(b) == 10 and b[4:5] == "-" and b[7:8] == "-":  # a date: getUser adds a zone
        return a[:10] == b
    return a == b
