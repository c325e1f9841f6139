"""The built-in site and site-file loading."""

from __future__ import annotations

from target_convio.emulator import Emulator, Site
from tests.conftest import Caller, site_with


def test_default_site_is_realistic() -> None:
    site = Site.default()
    names = set(site.fields)
    assert len(names) >= 30
    assert {
        "name.first",
        "name.last",
        "email.primary_address",
        "primary_address.street1",
        "primary_address.zip",
        "home_phone",
        "birth_date",
        "gender",
        "custom_string1",
        "custom_string2",
        "custom_string3",
        "custom_boolean1",
        "custom_date1",
    } <= names
    types = {f.value_type for f in site.fields.values()}
    assert types == {"TEXT", "BOOLEAN", "DATE", "ENUMERATION"}
    assert site.fields["gender"].value_type == "ENUMERATION"
    assert all(f.max_chars for f in site.fields.values() if f.value_type == "TEXT")
    assert site.unique_email


def test_unknown_value_type_words_are_upper_cased() -> None:
    site = site_with(fields=[{"name": "flag", "valueType": "boolean"}])
    assert site.fields["flag"].value_type == "BOOLEAN"


def test_seeded_constituents_are_served_and_new_ids_skip_them() -> None:
    site = site_with(
        constituents=[
            {
                "cons_id": 1000001,
                "member_id": "S1",
                "fields": {"email.primary_address": "Seed@Example.org"},
                "groups": [1001],
            }
        ]
    )
    with Emulator(site) as emulator:
        api = Caller(emulator)
        assert api.ok("getUser", primary_email="seed@example.org")["cons_id"] == "1000001"
        assert api.ok("getUserGroups", member_id="S1")["group"]["id"] == "1001"
        new = api.ok(
            "create", primary_email="n@example.org", **{"name.first": "N", "name.last": "M"}
        )
        assert new["cons_id"] == "1000002"


def test_a_site_file_without_api_users_keeps_the_demo_user(make_api) -> None:
    api = make_api(Site.from_dict({"api_keys": ["k"]}))
    assert api.json("listUserFields", api_key="k")[0] == 200
    assert Site.from_dict({}).fields == {}


def test_a_site_file_with_no_api_users_lets_nobody_in(make_api) -> None:
    api = make_api(Site.from_dict({"api_users": []}))
    assert api.error("listUserFields")[0] == "3"
