"""What the ledger keeps of a record, as SHA-256 digests, never the values themselves: its
identity (the key), its fingerprint (the write as sent), and the claims of its match values.

A constituent is found by its cons_id, member_id or email; a key that was written with one of
them holds it, and no other key's record may be sent with it (one constituent, one key).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from decimal import Decimal
from json.encoder import encode_basestring as quoted
from typing import Any

from target_convio.json_text import encoder

MAX_EXPONENT = 100  # integral numbers beyond this many digits keep their decimal form
_BEYOND_EXPONENT = 10 ** (MAX_EXPONENT + 1)
_COMPACT = encoder(ensure_ascii=False, separators=(",", ":"))


def digest(value: Any) -> str:
    """SHA-256 of a JSON value, lone surrogates included."""
    return hashlib.sha256(_COMPACT(value).encode("utf-8", "surrogatepass")).hexdigest()


def cons_id_claim(cons_id: str) -> str:
    value = str(cons_id).strip()
    if value.isdigit() and value.isascii():  # Convio's own: its JSON text needs no escape
        return hashlib.sha256(f'["cons_id","{value}"]'.encode()).hexdigest()
    return digest(["cons_id", value])


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


def identity_of(key: Mapping[str, Any] | None, params: Mapping[str, str]) -> str | None:
    """A record's ledger identity: its key properties, else member_id, else its email.

    Key values are compared as JSON values with numbers normalised: 1, 1.0 and 1.00 are one
    key; "1" and 1 are two.
    """
    if key:
        basis: Any = ["key", sorted((name, _normalised(value)) for name, value in key.items())]
    elif params.get("member_id"):
        basis = ["member_id", params["member_id"]]
    elif params.get("primary_email"):
        basis = ["email", params["primary_email"].strip().casefold()]
    else:
        return None
    return digest(basis)


def _normalised(value: Any) -> Any:
    if value is None or type(value) in (str, bool) or _small_int(value):
        return value  # the usual key; a small int is what the Decimal round trip would give
    if isinstance(value, (int, float, Decimal)):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if number.is_finite() and number.adjusted() <= MAX_EXPONENT and number == int(number):
            return int(number)  # as an integer key always was
        return {"number": str(number.normalize())}
    if isinstance(value, Mapping):
        return {str(k): _normalised(v) for k, v in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_normalised(v) for v in value]
    return str(value)


def _small_int(value: Any) -> bool:
    return type(value) is int and abs(value) < _BEYOND_EXPONENT


def fingerprint_of(
    method: str, params: Mapping[str, str], memberships: Mapping[str, bool] | None = None
) -> str:
    """A hash of a write as it would be sent (credentials are never in `params`), with the
    memberships the record wants."""
    pairs = sorted(params.items())
    if memberships:
        return digest([method, pairs, sorted(memberships.items())])
    try:
        # The JSON text `digest` hashes, written here: a third of the time for the usual
        # parameters, all text (every record sent with a ledger is fingerprinted).
        text = f"[{quoted(method)},[{','.join([f'[{quoted(k)},{quoted(v)}]' for k, v in pairs])}]]"
    except TypeError:  # a value that is not text: the encoder writes it
        return digest([method, pairs])
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
