"""Convio error codes: what each means for a record and for the run (docs/results.md's table)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

GLOBAL = "global_error"


class Kind(str, Enum):
    """How an answer affects the run."""

    OK = "ok"
    RECORD = "record"  # this record is refused; the run goes on
    TRANSIENT = "transient"  # worth retrying; the record fails if retries run out
    FATAL = "fatal"  # the run is misconfigured: stop


@dataclass(frozen=True)
class Code:
    """One Convio error code: its class, the `errors[].code` constant and the field it names."""

    kind: Kind
    error: str | None
    field: str = GLOBAL
    hint: str = ""


_BAD_SETUP = "check the target's settings and the site's API configuration"

CODES: dict[str, Code] = {
    "1": Code(Kind.TRANSIENT, "unknown_error"),
    "2": Code(Kind.FATAL, None, hint="api_key is not the site's API key"),
    "3": Code(
        Kind.FATAL,
        None,
        hint="login_name/login_password are wrong, or that account lacks the API permission",
    ),
    "4": Code(
        Kind.FATAL,
        None,
        hint="this machine's IP address is not on the site's API IP white list",
    ),
    "5": Code(Kind.FATAL, None, hint="the method needs a trusted caller; " + _BAD_SETUP),
    "6": Code(Kind.FATAL, None, hint="no method reached the API; check api_url"),
    "7": Code(Kind.FATAL, None, hint="single sign-on failed; " + _BAD_SETUP),
    "8": Code(Kind.RECORD, "conflicting_data", "primary_email"),
    "9": Code(Kind.RECORD, "required"),
    "10": Code(Kind.RECORD, "required"),
    "11": Code(Kind.RECORD, "already_exists"),
    "12": Code(Kind.RECORD, "already_exists", "user_name"),
    "13": Code(Kind.RECORD, "already_exists", "primary_email"),
    "14": Code(Kind.FATAL, None, hint="the API account may not call this method"),
    "15": Code(Kind.RECORD, "conflicting_data"),
    "16": Code(Kind.RECORD, "not_found"),
    "17": Code(Kind.FATAL, None, hint="the API does not know the method; check api_url"),
    "18": Code(Kind.RECORD, "unknown_field"),
    "19": Code(Kind.RECORD, "unknown_error"),
    "20": Code(Kind.RECORD, "invalid", "password"),
    "21": Code(Kind.RECORD, "invalid", "password"),
    "22": Code(Kind.RECORD, "invalid"),
    "23": Code(Kind.RECORD, "max_length"),
    "24": Code(Kind.TRANSIENT, "unknown_error"),  # the address-correction service failed
    "25": Code(Kind.RECORD, "invalid"),
    **{str(n): Code(Kind.RECORD, "invalid") for n in range(26, 33)},  # interaction errors
    "33": Code(Kind.RECORD, "invalid"),
    "34": Code(Kind.TRANSIENT, "unknown_error"),  # the UK address lookup failed
    "35": Code(Kind.RECORD, "invalid"),
    "36": Code(Kind.RECORD, "invalid", "user_name"),
    "50": Code(Kind.RECORD, "invalid"),
    "405": Code(Kind.FATAL, None, hint="the API refused the HTTP method; check api_url"),
}

UNKNOWN = Code(Kind.RECORD, "unknown_error")


def lookup(code: str | None) -> Code:
    """The meaning of a Convio error code; an unknown code refuses only its record."""
    return CODES.get((code or "").strip(), UNKNOWN)
