"""Coercion by valueType, the field catalogue, and mapping records onto it."""

from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

import pytest

from target_convio.emulator import Site
from target_convio.fields import Catalogue, FieldSpec, FieldValueError
from target_convio.mapping import Mapper, MappingError
from target_convio.modes import SyncMode

TEXT = FieldSpec("name.first", "TEXT", max_chars=5)
BOOLEAN = FieldSpec("accepts_postal_mail", "BOOLEAN")
DATE = FieldSpec("birth_date", "DATE")
GENDER = FieldSpec("gender", "ENUMERATION", choices=("UNDEFINED", "MALE", "FEMALE"))


@pytest.mark.parametrize(
    ("spec", "value", "sent"),
    [
        (TEXT, "Ada", "Ada"),
        (TEXT, "Zoë🎉", "Zoë🎉"),
        (TEXT, 12345, "12345"),
        (TEXT, Decimal("12.50"), "12.50"),
        (TEXT, Decimal("1E+2"), "100"),
        (TEXT, True, "true"),
        (TEXT, "<&>", "<&>"),
        (BOOLEAN, True, "true"),
        (BOOLEAN, False, "false"),
        (BOOLEAN, "Yes", "true"),
        (BOOLEAN, "0", "false"),
        (BOOLEAN, 1, "true"),
        (DATE, dt.date(1975, 3, 15), "1975-03-15"),
        (DATE, dt.datetime(1975, 3, 15, 23, 0, tzinfo=dt.timezone.utc), "1975-03-15"),
        (DATE, "1975-03-15", "1975-03-15"),
        (DATE, "1975-03-15T10:00:00Z", "1975-03-15"),
        (DATE, "1975-03-15 10:00:00", "1975-03-15"),
        (DATE, "3/15/1975", "1975-03-15"),
        (DATE, "1975/03/15", "1975-03-15"),
        (DATE, "19750315", "1975-03-15"),
        (GENDER, "FEMALE", "FEMALE"),
        (GENDER, "female", "FEMALE"),
    ],
)
def test_values_are_coerced(spec: FieldSpec, value: object, sent: str) -> None:
    assert spec.coerce(value) == sent


@pytest.mark.parametrize(
    ("spec", "value", "code", "message"),
    [
        (TEXT, "Adaline", "max_length", "is 7 characters long; the site allows 5"),
        (TEXT, {"a": 1}, "invalid", "not an object"),
        (TEXT, [1], "invalid", "not a list"),
        (BOOLEAN, "maybe", "invalid", "'maybe' is not true or false"),
        (BOOLEAN, 2, "invalid", "2 is not true or false"),
        (DATE, "15/03/1975", "invalid", "is not a date"),
        (DATE, "1975-02-30", "invalid", "is not a date"),
        (DATE, 1975, "invalid", "1975 is not a date"),
        (DATE, "x" * 500, "invalid", "...'"),
        (GENDER, "robot", "invalid", "'robot' is not one of: UNDEFINED, MALE, FEMALE"),
    ],
)
def test_values_that_are_refused(spec: FieldSpec, value: object, code: str, message: str) -> None:
    with pytest.raises(FieldValueError) as caught:
        spec.coerce(value)
    assert caught.value.code == code
    assert message in caught.value.message
    assert len(caught.value.message) < 200


def test_catalogue_from_the_emulators_listing() -> None:
    site = Site.default()
    listing = [f.describe(include_choices=True) for f in site.fields.values()]
    listing = [
        {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in f.items()} for f in listing
    ]
    catalogue = Catalogue.from_listing(listing)
    assert catalogue.get("name.first") == FieldSpec(
        "name.first", "TEXT", 50, True, (), "First Name"
    )
    assert catalogue.get("gender").choices == ("UNDEFINED", "MALE", "FEMALE")
    assert catalogue.get("birth_date").choices == ()  # years are not a constraint
    assert catalogue.required == ["name.first", "name.last"]
    assert "primary_email" in catalogue
    assert "cons_id" in catalogue


def test_catalogue_tolerates_odd_listings() -> None:
    catalogue = Catalogue.from_listing(
        [
            {"name": "a", "valueType": "NUMBER", "maxChars": "x"},
            {"name": "b", "valueType": "ENUMERATION", "choices": {"choice": "ONLY"}},
            {"label": "no name"},
            {"name": "c", "maxChars": "-1", "required": "TRUE"},
        ]
    )
    assert catalogue.get("a") == FieldSpec("a", "TEXT", None)
    assert catalogue.get("b").choices == ("ONLY",)
    assert catalogue.get("c") == FieldSpec("c", "TEXT", None, True)


CATALOGUE = Catalogue(
    [
        TEXT,
        FieldSpec("name.last", "TEXT", 50, True),
        DATE,
        GENDER,
        FieldSpec("email.primary_address", "TEXT", 255),
    ]
)


def mapper(field_map: dict | None = None) -> Mapper:
    return Mapper(CATALOGUE, field_map or {}, "donors", logging.getLogger("test"))


def test_mapping_by_field_map_exact_name_flattened_and_nested_names() -> None:
    mapped = mapper({"surname": "name.last", "mail": "primary_email"}).map(
        {
            "surname": "Lovelace",
            "mail": "ada@example.org",
            "gender": "FEMALE",
            "name__first": "Ada",
            "birth": {"date": "x"},
            "name": {"middle": "B"},
        }
    )
    assert mapped.params == {
        "name.last": "Lovelace",
        "primary_email": "ada@example.org",
        "gender": "FEMALE",
        "name.first": "Ada",
    }
    assert mapped.errors == []


def test_nested_objects_map_to_dotted_names() -> None:
    mapped = mapper().map({"name": {"first": "Ada", "last": "L"}, "birth_date": "1815-12-10"})
    assert mapped.params == {"name.first": "Ada", "name.last": "L", "birth_date": "1815-12-10"}


def test_nulls_and_empty_strings_are_not_sent() -> None:
    mapped = mapper().map({"name.first": None, "name.last": "", "gender": None, "cons_id": None})
    assert mapped.params == {}


def test_email_field_also_locates_by_primary_email() -> None:
    assert mapper().map({"email.primary_address": "a@b.org"}).params == {
        "email.primary_address": "a@b.org",
        "primary_email": "a@b.org",
    }
    assert (
        mapper()
        .map({"email.primary_address": "a@b.org", "primary_email": "c@d.org"})
        .params["primary_email"]
        == "c@d.org"
    )


def test_locators_take_plain_values() -> None:
    mapped = mapper().map({"cons_id": 1001, "member_id": " M-1 ", "primary_email": ["x"]})
    assert mapped.params == {"cons_id": "1001", "member_id": "M-1"}
    assert [(e.field, e.code) for e in mapped.errors] == [("primary_email", "invalid")]


def test_every_bad_field_is_reported() -> None:
    mapped = mapper().map({"name.first": "Adaline", "gender": "x", "birth_date": "soon"})
    assert [(e.field, e.code) for e in mapped.errors] == [
        ("name.first", "max_length"),
        ("gender", "invalid"),
        ("birth_date", "invalid"),
    ]


def test_unmapped_properties_are_named_once(caplog: pytest.LogCaptureFixture) -> None:
    m = mapper()
    m.map({"favourite": "x", "_sdc_extracted_at": "t", "name.first": "A"})
    m.map({"favourite": "y", "other": 1})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "Stream 'donors': ignoring properties that match no Convio field: favourite "
        "(map them with field_map or stream_maps)",
        "Stream 'donors': ignoring properties that match no Convio field: other "
        "(map them with field_map or stream_maps)",
    ]


def test_field_map_to_a_field_the_site_lacks_is_refused() -> None:
    with pytest.raises(MappingError, match="custom_string9, nope"):
        mapper({"a": "nope", "b": "custom_string9", "c": "name.first"})


@pytest.mark.parametrize(
    ("mode", "params", "errors"),
    [
        ("upsert", {"primary_email": "a@b.org"}, []),
        ("upsert", {"member_id": "M"}, []),
        ("upsert", {"cons_id": "1"}, []),
        ("upsert", {"name.first": "A"}, [("global_error", "required")]),
        ("update_only", {"name.first": "A"}, [("global_error", "required")]),
        ("update_only", {"cons_id": "1"}, []),
        ("create_only", {"primary_email": "a@b.org", "name.first": "A", "name.last": "L"}, []),
        ("create_only", {"primary_email": "a@b.org"}, [("name.last", "required")]),
        ("create_only", {"cons_id": "1", "name.last": "L"}, [("primary_email", "required")]),
    ],
)
def test_checks_before_sending(mode: str, params: dict, errors: list) -> None:
    found = SyncMode(mode).checks(params, CATALOGUE)
    assert [(e.field, e.code) for e in found] == errors
