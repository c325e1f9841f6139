"""Schema checks that turn a non-conforming record into an `invalid` result, not a crash."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fastjsonschema
from singer_sdk.sinks.core import JSONSchemaValidator

from target_convio.outcomes import FieldError

SCHEMA_ERRORS = "__target_convio_schema_errors__"


class CollectingValidator(JSONSchemaValidator):
    """Validates against the stream's schema; the errors ride on the record, never raise.

    A compiled validator (fastjsonschema, about 40 times faster) passes the records that
    conform; jsonschema words the errors of the others, as it always did. A schema the
    compiler cannot take is checked by jsonschema alone.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        super().__init__(schema)
        self._passes: Callable[[Any], Any] | None
        try:
            # jsonschema checks no format here (the SDK's default), so neither may this one.
            self._passes = fastjsonschema.compile(without_formats(schema))
        except Exception:  # any schema a tap sends: jsonschema alone then
            self._passes = None

    def _conforms(self, record: dict[str, Any]) -> bool:
        if self._passes is None:
            return False
        try:
            self._passes(record)
        except Exception:  # not valid, or not judged: jsonschema says why, or that it is
            return False
        return True

    def validate(self, record: dict[str, Any]) -> None:
        if self._conforms(record):
            return
        errors = [
            FieldError(
                ".".join(str(p) for p in error.absolute_path) or "global_error",
                "invalid",
                f"does not match the stream's schema: {error.message[:120]}",
            )
            for error in self.validator.iter_errors(record)
        ]
        if errors:
            record[SCHEMA_ERRORS] = errors


SUBSCHEMAS = ("items", "additionalProperties", "additionalItems", "not", "contains")
SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "items")
SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")
NOT_CHECKED = frozenset({"format", "$schema", "default"})


def without_formats(schema: Any) -> Any:
    """The schema as the compiled validator takes it: no `format` (not checked here), no
    `$schema`, and no `default`, which fastjsonschema would write into the record."""
    if not isinstance(schema, dict):
        return schema
    kept = {key: value for key, value in schema.items() if key not in NOT_CHECKED}
    for key, value in kept.items():
        if key in SCHEMA_MAPS and isinstance(value, dict):
            kept[key] = {name: without_formats(sub) for name, sub in value.items()}
        elif key in SCHEMA_LISTS and isinstance(value, list):
            kept[key] = [without_formats(sub) for sub in value]
        elif key in SUBSCHEMAS:
            kept[key] = without_formats(value)
    return kept


def without_date_formats(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema with date/time formats dropped, so the SDK leaves date strings alone.

    DATE coercion (fields.py) reads dates itself, and a bad date becomes an `invalid` result
    instead of the SDK's parse error ending the run.
    """
    if isinstance(schema, dict):
        return {
            key: without_date_formats(value)
            for key, value in schema.items()
            if not (key == "format" and value in ("date", "date-time", "time"))
        }
    if isinstance(schema, list):
        return [without_date_formats(item) for item in schema]
    return schema
