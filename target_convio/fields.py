"""The site's field catalogue (from listUserFields) and the coercion of values onto it."""

from __future__ import annotations

import datetime as dt
import difflib
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from target_convio.convio.answers import as_list

log = logging.getLogger(__name__)
# Flagged required by real sites for their registration form; the API creates without them.
SIGN_UP_ONLY = frozenset({"user_name", "user_password"})
# Write parameters that locate a record; listUserFields does not list them.
LOCATORS = ("cons_id", "member_id", "primary_email")
EMAIL_FIELD = "email.primary_address"
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
# The longest number written out for a field without maxChars.
MAX_NUMBER_CHARS = 1000
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%Y/%m/%d", "%Y%m%d")
_QUOTED_LABEL = re.compile(r'"(?:[^"]*/)?([^"/]+)"')
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ISO_PREFIX = re.compile(r"(\d{4}-\d{2}-\d{2})[T ]")


class FieldValueError(ValueError):
    """A value the site would refuse: an `errors[].code` constant and a message."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class FieldSpec:
    """One writable constituent field."""

    name: str
    value_type: str = "TEXT"
    max_chars: int | None = None
    required: bool = False
    choices: tuple[str, ...] = ()
    label: str = ""

    def coerce(self, value: Any) -> str:
        """The value as Convio expects it, or FieldValueError (never for None: callers skip it)."""
        if isinstance(value, (dict, list)):
            kind = "an object" if isinstance(value, dict) else "a list"
            raise FieldValueError("invalid", f"expects a single value, not {kind}")
        if isinstance(value, Decimal):
            self._check_number(value)
        elif isinstance(value, float) and not math.isfinite(value):
            raise FieldValueError("invalid", f"{value} is not a number Convio can store")
        if self.value_type == "BOOLEAN":
            return boolean(value)
        if self.value_type == "DATE":
            return _date(value)
        text = _text(value)
        if self.value_type == "ENUMERATION":
            return self._choice(text)
        if self.max_chars is not None and len(text) > self.max_chars:
            raise FieldValueError(
                "max_length", f"is {len(text)} characters long; the site allows {self.max_chars}"
            )
        if self.name.startswith("email.") and self.name.endswith("_address"):
            return email_address(text)
        return text

    def _check_number(self, value: Decimal) -> None:
        """Refuse a number before writing it out: `1e-999999999` is a billion digits long."""
        if not value.is_finite():
            raise FieldValueError("invalid", f"{value} is not a number Convio can store")
        length = _written_length(value)
        limit = self.max_chars or MAX_NUMBER_CHARS
        if length > limit:
            raise FieldValueError(
                "max_length" if self.max_chars else "invalid",
                f"is a number of {length:,} digits written out; the site allows {limit:,}",
            )

    def _choice(self, text: str) -> str:
        if text in self.choices or not self.choices:  # a listing may name no choices
            return text
        folded = [c for c in self.choices if c.casefold() == text.casefold()]
        if len(folded) == 1:
            return folded[0]
        allowed = ", ".join(self.choices[:12]) + (", ..." if len(self.choices) > 12 else "")
        raise FieldValueError("invalid", f"{_shown(text)} is not one of: {allowed}")


class Catalogue:
    """The fields a site lets this account write, by name."""

    def __init__(self, fields: Iterable[FieldSpec]) -> None:
        self.fields = {spec.name: spec for spec in fields}
        self._by_label = {spec.label.casefold(): spec.name for spec in self.fields.values()}

    def field_named_in(self, message: str) -> str | None:
        """The field a validation message names: `"Biographical Information/User Name" ...`."""
        quoted = _QUOTED_LABEL.search(message)
        return self._by_label.get(quoted.group(1).strip().casefold()) if quoted else None

    def __contains__(self, name: str) -> bool:
        return name in self.fields or name in LOCATORS

    def get(self, name: str) -> FieldSpec | None:
        return self.fields.get(name)

    def closest(self, name: str) -> str | None:
        """The field a misspelt name most likely meant, if one is close."""
        known = sorted({*self.fields, *LOCATORS})
        found = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        return found[0] if found else None

    @property
    def required(self) -> list[str]:
        """Fields a create needs; the sign-up form's own (SIGN_UP_ONLY) are not among them."""
        return [
            spec.name
            for spec in self.fields.values()
            if spec.required and spec.name not in SIGN_UP_ONLY
        ]

    @classmethod
    def from_listing(cls, listing: Iterable[Mapping[str, Any]]) -> Catalogue:
        """From listUserFields' `field` elements (all strings, as Convio sends them)."""
        specs = []
        for item in listing:
            name = item.get("name")
            if not isinstance(name, str) or not name:
                continue
            value_type = str(item.get("valueType") or "TEXT").upper()
            choices = tuple(
                str(c) for c in as_list((item.get("choices") or {}).get("choice")) if c is not None
            )
            specs.append(
                FieldSpec(
                    name=name,
                    # Unknown valueTypes are treated as TEXT: Convio documents no full list.
                    value_type=value_type if value_type in _TYPES else "TEXT",
                    max_chars=_positive_int(item.get("maxChars")),
                    required=str(item.get("required", "")).lower() == "true",
                    # DATE choices are selectable years, not a constraint on values.
                    choices=choices if value_type == "ENUMERATION" else (),
                    label=str(item.get("label") or ""),
                )
            )
        flagged = sorted(s.name for s in specs if s.required and s.name in SIGN_UP_ONLY)
        if flagged:
            log.warning(
                "listUserFields marks %s required: that is the site's sign-up form, not the "
                "API, so records are not refused for lacking them",
                " and ".join(flagged),
            )
        return cls(specs)


_TYPES = frozenset({"TEXT", "BOOLEAN", "DATE", "ENUMERATION"})


def _positive_int(value: Any) -> int | None:
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def email_address(text: str) -> str:
    """The address as sent, or FieldValueError for one Convio would refuse (code 22).

    The rule is the emulator's: something, an @, a domain with a dot, and no blanks.
    """
    address = text.strip()
    if not _EMAIL.fullmatch(address):
        raise FieldValueError("invalid", f"{_shown(text)} is not an email address")
    return address


def sendable(text: str) -> str:
    """The text, or FieldValueError when it holds what UTF-8 cannot carry (lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise FieldValueError("invalid", "holds characters that are not valid Unicode") from None
    return text


def _text(value: Any) -> str:
    if isinstance(value, str):
        return sendable(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    return str(value)


def _written_length(value: Decimal) -> int:
    """The length of _decimal_text(value) (or one more), found without writing it out."""
    sign, digits, exponent = value.as_tuple()
    places = int(exponent)
    if places >= 0:
        return sign + len(digits) + places
    whole = max(len(digits) + places, 0)
    if value == value.to_integral_value():
        return sign + max(whole, 1)
    return sign + max(whole, 1) + 1 + -places


def _decimal_text(value: Decimal) -> str:
    """Plain digits, never an exponent: `12.50` stays `12.50`, `1E+2` is `100`, `3.0` is `3`."""
    sign, digits, exponent = value.as_tuple()
    text = "".join(map(str, digits))
    places = int(exponent)
    if places >= 0:
        whole, fraction = text + "0" * places, ""
    else:
        text = text.rjust(-places + 1, "0")
        whole, fraction = text[:places], text[places:]
        if not fraction.strip("0"):
            fraction = ""
    whole = whole.lstrip("0") or "0"
    number = f"{whole}.{fraction}" if fraction else whole
    return f"-{number}" if sign and number.strip("0.") else number


def boolean(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    word = _text(value).strip().lower()
    if word in TRUE_WORDS:
        return "true"
    if word in FALSE_WORDS:
        return "false"
    raise FieldValueError("invalid", f"{_shown(value)} is not true or false")


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str):
        text = value.strip()
        iso = _ISO_PREFIX.match(text)
        if iso:
            text = iso.group(1)
        for fmt in _DATE_FORMATS:
            try:
                return dt.datetime.strptime(text, fmt).date().isoformat()
            except ValueError:
                continue
    raise FieldValueError("invalid", f"{_shown(value)} is not a date (yyyy-MM-dd)")


def _shown(value: Any) -> str:
    """A value quoted for a message, cut short."""
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 40 else text[:37] + "...'"
