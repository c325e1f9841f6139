"""The stream's schema check: a compiled validator passes conforming records, jsonschema words
the errors of the others, and neither changes a record."""

from __future__ import annotations

import copy

from target_convio.validation import SCHEMA_ERRORS, CollectingValidator, without_formats

SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "id": {"type": "integer"},
        "email": {"type": ["string", "null"], "format": "email"},
        "format": {"type": ["string", "null"], "default": "plain"},  # a property so named
        "default": {"type": ["boolean", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id"],
}


def test_a_conforming_record_passes_unchanged() -> None:
    validator = CollectingValidator(SCHEMA)
    assert validator._passes is not None  # compiled
    record = {"id": 1, "email": "not an email, and formats are not checked", "tags": ["a"]}
    before = copy.deepcopy(record)
    validator.validate(record)
    assert record == before  # no default written in, no errors


def test_a_record_that_fails_gets_jsonschemas_words() -> None:
    record = {"id": "one", "tags": ["a", 2], "default": "yes"}
    CollectingValidator(SCHEMA).validate(record)
    fields = sorted(error.field for error in record[SCHEMA_ERRORS])
    assert fields == ["default", "id", "tags.1"]
    assert all("does not match the stream's schema" in e.message for e in record[SCHEMA_ERRORS])


def test_only_keywords_are_dropped_never_properties() -> None:
    stripped = without_formats(SCHEMA)
    assert "$schema" not in stripped
    assert set(stripped["properties"]) == set(SCHEMA["properties"])
    assert "format" not in stripped["properties"]["email"]
    assert "default" not in stripped["properties"]["format"]
