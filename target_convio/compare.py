"""What a write would do, predicted from what Convio holds (locate.py): for the compare dry
run's rows, and for `first_contact: read`, which writes only what differs.

Values are compared the way Convio stores them: emails case-folded, dates as `yyyy-MM-dd`
(getUser adds a time zone), booleans and choices case-insensitively, blanks trimmed; custom
fields are read from where getUser puts them (`custom.<type>`, a list of `{id, content}`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from target_convio.convio.answers import as_list
from target_convio.fields import EMAIL_FIELD
from target_convio.locate import Found
from target_convio.modes import SyncMode

# Parameters that locate a record or steer the write; they are not values Convio stores.
NOT_STORED = frozenset(
    {
        "cons_id",
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


@dataclass(frozen=True)
class Prediction:
    """What a write would do, from what Convio holds."""

    outcome: str | None  # None: Convio could not be asked
    message: str
    changes: dict[str, list[Any]] | None = None  # {field: [in Convio, would send]}
    code: str | None = None  # the code Convio would refuse it with


def predict(
    mode: SyncMode, params: Mapping[str, str], wanted: Mapping[str, bool], found: Found
) -> Prediction:
    """What a write of `params` (and the `wanted` memberships) would do, from what the reads
    found (locate.py)."""
    if found.body is not None:
        return _found(mode, params, wanted, found)
    reply = found.reply
    if reply.code == "16":
        if mode is SyncMode.UPDATE_ONLY or params.get("cons_id"):
            return Prediction(
                REJECTED, "no record matches: update would be refused (code 16)", code="16"
            )
        return Prediction(CREATED, "no record matches: a new one would be created")
    if reply.code in ("8", "15"):
        return Prediction(AMBIGUOUS, f"several records match (code {reply.code})", code=reply.code)
    return Prediction(None, f"could not ask Convio: {reply.message or reply.code}")


def _found(
    mode: SyncMode, params: Mapping[str, str], wanted: Mapping[str, bool], found: Found
) -> Prediction:
    if mode is SyncMode.CREATE_ONLY:
        return Prediction(REJECTED, "a record matches: create would be refused (code 11)")
    if found.email_owner:
        return Prediction(
            REJECTED,
            f"its email belongs to {_owner(found.email_owner)}: the update would be "
            "refused on a site with unique emails (code 13)",
            code="13",
        )
    changes = differences(params, wanted, found)
    if changes:
        return Prediction(UPDATED, f"would update {len(changes)} field(s)", changes)
    return Prediction(UNCHANGED, "Convio already holds every value that would be sent", {})


def differences(
    params: Mapping[str, str], wanted: Mapping[str, bool], found: Found
) -> dict[str, list[Any]]:
    """`{field: [in Convio, would send]}` for every value and membership that would change."""
    body = found.body or {}
    sent_values = dict(params)
    if params.get("primary_email"):  # the locator is also the value a write stores
        sent_values.setdefault(EMAIL_FIELD, params["primary_email"])
    changes: dict[str, list[Any]] = {
        name: [held, sent]
        for name, sent in sorted(sent_values.items())
        if name not in NOT_STORED and not _same(name, held := stored(body, name), sent)
    }
    for name, member in sorted(wanted.items()):
        if found.memberships.get(name) is not member:
            changes[name] = [found.memberships.get(name, False), member]
    return changes


def _owner(cons_id: str) -> str:
    return cons_id if " " in cons_id else f"constituent {cons_id}"


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
