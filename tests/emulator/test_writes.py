"""createOrUpdate, create and update: match rules, field checks, groups, interests, flags."""

from __future__ import annotations

import pytest

from target_convio.emulator import Emulator
from tests.conftest import PERSON, Caller, site_with


def only(emulator: Emulator) -> dict:
    (record,) = emulator.constituents()
    return record


# -- createOrUpdate match rules (Convio's createOrUpdate page) -----------------------------


def test_create_or_update_creates_then_updates(api: Caller, emulator: Emulator) -> None:
    first = api.ok("createOrUpdate", primary_email="Ada@Example.ORG", **PERSON)
    assert first["message"] == "New user added."
    again = api.ok("createOrUpdate", primary_email="ada@example.org", **{"name.last": "King"})
    assert again == {"cons_id": first["cons_id"], "message": "User updated."}
    record = only(emulator)
    assert record["fields"]["email.primary_address"] == "ada@example.org"
    assert record["fields"]["name.last"] == "King"
    assert record["fields"]["name.first"] == "Ada"
    assert record["updates"] == 1


def test_cons_id_that_matches_nothing_creates_nothing(api: Caller, emulator: Emulator) -> None:
    code, _ = api.error("createOrUpdate", cons_id="999", primary_email="n@example.org", **PERSON)
    assert code == "16"
    assert emulator.constituents() == []


def test_cons_id_wins_over_email(api: Caller, emulator: Emulator) -> None:
    a = api.ok("createOrUpdate", primary_email="a@example.org", **PERSON)["cons_id"]
    api.ok("createOrUpdate", primary_email="b@example.org", **PERSON)
    answer = api.ok("createOrUpdate", cons_id=a, primary_email="new@example.org")
    assert answer["cons_id"] == a
    record = next(r for r in emulator.constituents() if r["cons_id"] == a)
    assert record["fields"]["email.primary_address"] == "new@example.org"


def test_member_id_matches_before_email(api: Caller, emulator: Emulator) -> None:
    a = api.ok("createOrUpdate", primary_email="a@example.org", member_id="M1", **PERSON)
    answer = api.ok("createOrUpdate", member_id="M1", primary_email="a2@example.org")
    assert answer == {"cons_id": a["cons_id"], "message": "User updated."}
    assert only(emulator)["fields"]["email.primary_address"] == "a2@example.org"


def test_member_id_without_match_falls_through_to_email(api: Caller, emulator: Emulator) -> None:
    a = api.ok("createOrUpdate", primary_email="a@example.org", **PERSON)
    answer = api.ok("createOrUpdate", member_id="M9", primary_email="a@example.org")
    assert answer["cons_id"] == a["cons_id"]
    assert only(emulator)["member_id"] == "M9"


def test_new_member_id_and_email_creates(api: Caller, emulator: Emulator) -> None:
    answer = api.ok("createOrUpdate", member_id="M2", primary_email="m2@example.org", **PERSON)
    assert answer["message"] == "New user added."
    assert only(emulator)["member_id"] == "M2"


TWINS = [
    {"cons_id": "501", "member_id": "DUP", "fields": {"email.primary_address": "twin@example.org"}},
    {"cons_id": "502", "member_id": "DUP", "fields": {"email.primary_address": "twin@example.org"}},
]


@pytest.mark.parametrize("method", ["createOrUpdate", "update"])
def test_several_member_id_matches_is_code_15(make_api, method: str) -> None:
    api = make_api(site_with(constituents=TWINS))
    assert api.error(method, member_id="DUP")[0] == "15"
    assert len(api.emulator.constituents()) == 2


@pytest.mark.parametrize("method", ["createOrUpdate", "update"])
def test_several_email_matches_on_unique_email_site_is_code_8(make_api, method: str) -> None:
    api = make_api(site_with(constituents=TWINS, unique_email=True))
    assert api.error(method, primary_email="twin@example.org", **PERSON)[0] == "8"
    assert len(api.emulator.constituents()) == 2


def test_several_email_matches_without_unique_email_creates_a_new_record(make_api) -> None:
    api = make_api(site_with(constituents=TWINS, unique_email=False))
    answer = api.ok("createOrUpdate", primary_email="twin@example.org", **PERSON)
    assert answer["message"] == "New user added."
    assert answer["cons_id"] not in ("501", "502")
    assert len(api.emulator.constituents()) == 3


def test_update_with_several_email_matches_is_an_error_on_any_site(make_api) -> None:
    api = make_api(site_with(constituents=TWINS, unique_email=False))
    assert api.error("update", primary_email="twin@example.org")[0] == "8"


# -- create and update ---------------------------------------------------------------------


def test_create_adds_a_record(api: Caller, emulator: Emulator) -> None:
    answer = api.ok("create", primary_email="c@example.org", **PERSON)
    assert answer["message"] == "New user added."
    assert only(emulator)["cons_id"] == answer["cons_id"]


def test_create_with_existing_member_id_is_code_11(api: Caller, emulator: Emulator) -> None:
    api.ok("create", primary_email="c@example.org", member_id="M1", **PERSON)
    assert api.error("create", primary_email="d@example.org", member_id="M1", **PERSON)[0] == "11"
    assert len(emulator.constituents()) == 1


def test_create_with_existing_cons_id_is_code_11(api: Caller) -> None:
    cons_id = api.ok("create", primary_email="c@example.org", **PERSON)["cons_id"]
    assert api.error("create", cons_id=cons_id, primary_email="d@example.org", **PERSON)[0] == "11"


def test_create_with_taken_email_on_unique_site_is_code_13(api: Caller) -> None:
    api.ok("create", primary_email="c@example.org", **PERSON)
    assert api.error("create", primary_email="C@example.org", **PERSON)[0] == "13"


def test_create_with_taken_email_on_non_unique_site_adds_another(make_api) -> None:
    api = make_api(site_with(unique_email=False))
    api.ok("create", primary_email="c@example.org", **PERSON)
    api.ok("create", primary_email="c@example.org", **PERSON)
    assert len(api.emulator.constituents()) == 2


def test_duplicate_user_name_is_code_12(api: Caller, emulator: Emulator) -> None:
    api.ok("create", primary_email="a@example.org", user_name="ada", **PERSON)
    code, message = api.error("create", primary_email="b@example.org", user_name="ADA", **PERSON)
    assert (code, message) == ("12", "Specified user name is already in use.")
    code, _ = api.error("createOrUpdate", primary_email="b@example.org", user_name="ada", **PERSON)
    assert code == "12"
    assert len(emulator.constituents()) == 1


def test_user_name_may_be_resent_by_its_owner(api: Caller) -> None:
    api.ok("create", primary_email="a@example.org", user_name="ada", **PERSON)
    assert api.ok("update", primary_email="a@example.org", user_name="ada")["cons_id"]


def test_update_to_a_taken_email_is_code_13(api: Caller, emulator: Emulator) -> None:
    api.ok("create", primary_email="a@example.org", member_id="A", **PERSON)
    api.ok("create", primary_email="b@example.org", member_id="B", **PERSON)
    assert api.error("update", member_id="B", primary_email="a@example.org")[0] == "13"
    code, _ = api.error("update", member_id="B", **{"email.primary_address": "a@example.org"})
    assert code == "13"
    emails = sorted(r["fields"]["email.primary_address"] for r in emulator.constituents())
    assert emails == ["a@example.org", "b@example.org"]


def test_update_of_nobody_is_code_16(api: Caller, emulator: Emulator) -> None:
    assert api.error("update", primary_email="ghost@example.org", **PERSON)[0] == "16"
    assert api.error("update", member_id="ghost")[0] == "16"
    assert emulator.constituents() == []


def test_update_without_any_locator_is_code_10(api: Caller) -> None:
    assert api.error("update", **PERSON)[0] == "10"


def test_update_does_not_require_required_fields(api: Caller, emulator: Emulator) -> None:
    api.ok("create", primary_email="a@example.org", **PERSON)
    assert api.ok("update", primary_email="a@example.org", home_phone="555-0100")
    assert only(emulator)["fields"]["home_phone"] == "555-0100"


# -- field checks --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["create", "createOrUpdate"])
@pytest.mark.parametrize(
    "params",
    [
        {"name.first": "Ada"},  # name.last is required on the default site
        {"name.last": "Lovelace"},
        {"name.first": "Ada", "name.last": " "},
        {},
    ],
)
def test_required_fields_missing_on_create_is_code_10(
    api: Caller, emulator: Emulator, method: str, params: dict
) -> None:
    code, message = api.error(method, primary_email="r@example.org", **params)
    assert code == "10"
    assert "name." not in message  # Convio does not say which field is missing
    assert emulator.constituents() == []


@pytest.mark.parametrize("method", ["create", "createOrUpdate"])
def test_create_needs_an_email(api: Caller, method: str) -> None:
    assert api.error(method, **PERSON)[0] == "10"


def test_email_primary_address_alone_is_enough_to_create(api: Caller, emulator: Emulator) -> None:
    api.ok("create", **{**PERSON, "email.primary_address": "Field@Example.org"})
    assert only(emulator)["fields"]["email.primary_address"] == "field@example.org"


@pytest.mark.parametrize(
    ("field", "value", "code"),
    [
        ("name.first", "x" * 51, "23"),
        ("custom_string1", "y" * 256, "23"),
        ("gender", "male", "22"),
        ("gender", "UNKNOWN", "22"),
        ("marital_status", "", None),
        ("birth_date", "1975-02-30", "22"),
        ("birth_date", "15/03/1975", "22"),
        ("birth_date", "yesterday", "22"),
        ("birth_date", "1975-03-15T00:00:00", "22"),
        ("custom_date1", "2026-W01-1", "22"),
        ("accepts_postal_mail", "maybe", "22"),
        ("email.accepts_email", "2", "22"),
        ("primary_email", "not-an-email", "22"),
        ("email.primary_address", "a@b", "22"),
        ("name.first", "Ada\x00", "35"),
        ("name.last", "Love\x1blace", "35"),
        ("primary_address.city", "Aus\x7ftin", "35"),
    ],
)
def test_field_checks(
    api: Caller, emulator: Emulator, field: str, value: str, code: str | None
) -> None:
    params = {"primary_email": "f@example.org", **PERSON, field: value}
    if code is None:
        api.ok("createOrUpdate", **params)
        return
    assert api.error("createOrUpdate", **params)[0] == code
    assert emulator.constituents() == []


@pytest.mark.parametrize(
    ("field", "value", "stored"),
    [
        ("name.first", "x" * 50, "x" * 50),
        ("name.first", "é" * 50, "é" * 50),  # maxChars counts characters, not bytes
        ("gender", "FEMALE", "FEMALE"),
        ("birth_date", "1975-03-15", "1975-03-15"),
        ("birth_date", "3/15/1975", "1975-03-15"),
        ("accepts_postal_mail", "TRUE", "true"),
        ("accepts_postal_mail", "f", "false"),
        ("custom_boolean1", "1", "true"),
        ("primary_address.street1", "1 Main St\nApt 2", "1 Main St\nApt 2"),
        ("name.title", "Rev.", "Rev."),  # a TEXT field's choices only suggest
    ],
)
def test_accepted_values_are_stored_normalised(
    api: Caller, emulator: Emulator, field: str, value: str, stored: str
) -> None:
    api.ok("createOrUpdate", primary_email="f@example.org", **{**PERSON, field: value})
    assert only(emulator)["fields"][field] == stored


def test_unknown_fields_are_ignored(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="u@example.org", favourite_dinosaur="T. rex", **PERSON)
    assert "favourite_dinosaur" not in only(emulator)["fields"]


def test_fields_that_are_not_user_modifiable_are_ignored(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="u@example.org", custom_string4="legacy", **PERSON)
    assert "custom_string4" not in only(emulator)["fields"]


def test_empty_value_leaves_a_field_and_a_blank_clears_it(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="e@example.org", home_phone="555-0100", **PERSON)
    api.ok("createOrUpdate", primary_email="e@example.org", home_phone="")
    assert only(emulator)["fields"]["home_phone"] == "555-0100"
    api.ok("createOrUpdate", primary_email="e@example.org", home_phone=" ")
    assert "home_phone" not in only(emulator)["fields"]


def test_a_failed_update_changes_nothing(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="e@example.org", **PERSON)
    before = only(emulator)
    assert api.error("update", primary_email="e@example.org", home_phone="1", gender="x")[0] == "22"
    assert only(emulator) == before


# -- groups, interests, source, welcome ----------------------------------------------------


def test_groups_are_added_and_removed(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="g@example.org", add_group_ids="1001,1002", **PERSON)
    assert only(emulator)["groups"] == [1001, 1002]
    api.ok("update", primary_email="g@example.org", add_group_ids="1003", remove_group_ids="1001")
    assert only(emulator)["groups"] == [1002, 1003]


@pytest.mark.parametrize("ids", ["101", "999", "1099", "4242", "abc", "1001,x"])
def test_refused_group_ids_are_code_22(api: Caller, emulator: Emulator, ids: str) -> None:
    assert (
        api.error("createOrUpdate", primary_email="g@example.org", add_group_ids=ids, **PERSON)[0]
        == "22"
    )
    assert (
        api.error("createOrUpdate", primary_email="g@example.org", remove_group_ids=ids, **PERSON)[
            0
        ]
        == "22"
    )
    assert emulator.constituents() == []


def test_interests_are_added_and_removed(api: Caller, emulator: Emulator) -> None:
    api.ok("createOrUpdate", primary_email="i@example.org", add_interest_ids="1,2", **PERSON)
    api.ok("update", primary_email="i@example.org", add_interest_ids="3", remove_interest_ids="1")
    assert only(emulator)["interests"] == [2, 3]
    assert api.error("update", primary_email="i@example.org", add_interest_ids="77")[0] == "22"


def test_source_is_stored_on_new_records_only(api: Caller, emulator: Emulator) -> None:
    api.ok(
        "createOrUpdate",
        primary_email="s@example.org",
        source="warehouse",
        sub_source="nightly",
        **PERSON,
    )
    api.ok("createOrUpdate", primary_email="s@example.org", source="other", sub_source="x")
    record = only(emulator)
    assert (record["source"], record["sub_source"]) == ("warehouse", "nightly")


@pytest.mark.parametrize(
    ("no_welcome", "sent"), [("true", False), (None, False), ("f", True), ("False", True)]
)
def test_no_welcome_decides_the_welcome_email(
    api: Caller, emulator: Emulator, no_welcome: str | None, sent: bool
) -> None:
    api.ok("createOrUpdate", primary_email="w@example.org", no_welcome=no_welcome, **PERSON)
    assert only(emulator)["welcome_sent"] is sent


def test_site_without_welcome_never_sends_one(make_api) -> None:
    api = make_api(site_with(send_welcome=False))
    api.ok("createOrUpdate", primary_email="w@example.org", no_welcome="false", **PERSON)
    assert api.emulator.constituents()[0]["welcome_sent"] is False
