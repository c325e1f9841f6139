"""Match values as the ledger claims them for a key: digests, never the values themselves.

A constituent is found by its cons_id, member_id or email; a key that was written with one of
them holds it, and no other key's record may be sent with it (one constituent, one key).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def digest(value: Any) -> str:
    """SHA-256 of a JSON value, lone surrogates included."""
    text = json.dumps(value, default=str, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def cons_id_claim(cons_id: str) -> str:
    return digest(["cons_id", str(cons_id).strip()])


def match_claims(params: Mapping[str, str]) -> dict[str, str]:
    """{the field that names it: its claim} for each match value the write parameters hold."""
    found: dict[str, str] = {}
    if params.get("cons_id"):
        found["cons_id"] = cons_id_claim(params["cons_id"])
    if params.get("member_id"):
        found["member_id"] = digest(["member_id", str(params["member_id"]).strip()])
    email = params.get("primary_email") or params.get("email.primary_address")
    if email:
        found["primary_email"] = digest(["email", str(email).strip().casefold()])
    return found
