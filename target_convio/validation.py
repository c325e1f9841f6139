"""Schema checks that turn a non-conforming record into an `invalid` result, not a crash."""

from __future__ import annotations

from typing import Any

from singer_sdk.sinks.core import JSONSchemaValidator

from target_convio.outcomes import FieldError

SCHEMA_ERRORS = "__target_convio_schema_errors__"


class CollectingValidator(JSONSchemaValidator):
    """Validates against the stream's schema; the errors ride on the record, never raise."""

    def validate(self, record: dict[str, Any]) -> None:
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
