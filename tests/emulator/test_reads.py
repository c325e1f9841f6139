"""getUser, getUserGroups, getUserInterests, listUserFields, listUserFieldChoices, inspection."""

from __future__ import annotations

import ipaddress

import pytest

from target_convio.emulator import Emulator
from tests.conftest import PERSON, Caller


@pytest.fixture
def ada(api: Caller) -> str:
    params = {
        **PERSON,
        "birth_date": "1975-03-15",
        "custom_string1": "teal",
        "primary_address.city": "Austin",
        "member_id": "M-ADA",
    }
    return api.ok("createOrUpdate", primary_email="ada@example.org", **params)["cons_id"]


def test_get_user_nests_dotted_names(api: Caller, ada: str) -> None:
    user = api.ok("getUser", cons_id=ada)
    assert user["cons_id"] == ada
    assert user["member_id"] == "M-ADA"
    assert user["name"]["first"] == "Ada"
    assert user["name"]["middle"] is None  # unset fields are nil
    assert user["email"]["primary_address"] == "ada@example.org"
    assert user["primary_address"]["city"] == "Austin"
    assert user["birth_date"] == "1975-03-15-06:00"  # xsd:date with the site's offset
    strings = user["custom"]["string"]
    assert {"id": "custom_string1", "content": "teal"} in strings
    assert user["custom"]["boolean"] == {"id": "custom_boolean1", "content": None}


@pytest.mark.parametrize("locator", ["cons_id", "member_id", "primary_email"])
def test_get_user_by_each_locator(api: Caller, ada: str, locator: str) -> None:
    value = {"cons_id": ada, "member_id": "M-ADA", "primary_email": "ADA@example.org"}[locator]
    assert api.ok("getUser", **{locator: value})["cons_id"] == ada


def test_get_user_fields_filter(api: Caller, ada: str) -> None:
    user = api.ok("getUser", cons_id=ada, fields="name.first,email")
    assert user["name"] == {"first": "Ada"}
    assert set(user["email"]) == {
        "primary_address",
        "secondary_address",
        "accepts_email",
        "preferred_format",
    }
    assert "primary_address" not in user
    assert "custom" not in user


def test_get_user_of_nobody_is_code_16(api: Caller) -> None:
    assert api.error("getUser", primary_email="ghost@example.org")[0] == "16"
    assert api.error("getUser", cons_id="42")[0] == "16"


def test_get_user_groups_collapses_one_item_and_empties_to_an_object(api: Caller, ada: str) -> None:
    assert api.json("getUserGroups", cons_id=ada)[1] == {"getConsGroupsResponse": {}}
    api.ok("update", cons_id=ada, add_group_ids="1002")
    assert api.ok("getUserGroups", cons_id=ada) == {"group": {"id": "1002", "label": "Volunteers"}}
    api.ok("update", cons_id=ada, add_group_ids="1001")
    groups = api.ok("getUserGroups", cons_id=ada)["group"]
    assert groups == [
        {"id": "1001", "label": "Monthly Donors"},
        {"id": "1002", "label": "Volunteers"},
    ]
    _, xml = api.xml("getUserGroups", cons_id=ada)
    assert [g["id"] for g in xml["getConsGroupsResponse"]["group"]] == ["1001", "1002"]


def test_get_user_interests(api: Caller, ada: str) -> None:
    api.ok("update", cons_id=ada, add_interest_ids="2")
    answer = api.ok("getUserInterests", cons_id=ada)
    assert answer == {
        "interest": {
            "id": "2",
            "label": "Action Alerts",
            "path": "Action Alerts",
            "for_email": "true",
            "for_web": "true",
        }
    }
    api.ok("update", cons_id=ada, remove_interest_ids="2")
    assert api.json("getUserInterests", cons_id=ada)[1] == {"getConsInterestsResponse": {}}


def test_list_user_fields_default_is_every_field_by_name(api: Caller, emulator: Emulator) -> None:
    fields = api.ok("listUserFields")["field"]
    names = [f["name"] for f in fields]
    assert names == sorted(emulator.site.fields)
    assert len(names) >= 30
    assert all("choices" not in f for f in fields)
    first = next(f for f in fields if f["name"] == "name.first")
    assert first == {
        "name": "name.first",
        "label": "First Name",
        "valueType": "TEXT",
        "maxChars": "50",
        "required": "true",
        "group": "Name",
        "isUserModifiable": "true",
    }
    street = next(f for f in fields if f["name"] == "primary_address.street1")
    assert street["subGroup"] == "Home Address"


def test_list_user_fields_update_access_hides_read_only_fields(api: Caller) -> None:
    view = {f["name"] for f in api.ok("listUserFields", access="view")["field"]}
    update = {f["name"] for f in api.ok("listUserFields", access="update")["field"]}
    assert view - update == {"custom_string4"}


def test_list_user_fields_include_choices(api: Caller) -> None:
    fields = {f["name"]: f for f in api.ok("listUserFields", include_choices="true")["field"]}
    assert fields["gender"]["choices"] == {"choice": ["UNDEFINED", "MALE", "FEMALE"]}
    assert fields["name.title"]["choices"]["choice"][0] == "Mr."
    years = fields["birth_date"]["choices"]["choice"]
    assert years[0] == "1900"
    assert "choices" not in fields["name.first"]


def test_list_user_fields_sort_order_group(api: Caller) -> None:
    fields = api.ok("listUserFields", sort_order="group")["field"]
    groups = [f["group"] for f in fields]
    seen: list[str] = []
    for group in groups:
        if not seen or seen[-1] != group:
            assert group not in seen, "a group's fields must stand together"
            seen.append(group)
    assert fields[0]["name"] == "user_name"  # catalogue order within a group


def test_list_user_fields_in_xml(api: Caller) -> None:
    _, doc = api.xml("listUserFields", include_choices="true")
    fields = {f["name"]: f for f in doc["listConsFieldsResponse"]["field"]}
    assert fields["gender"]["choices"]["choice"] == ["UNDEFINED", "MALE", "FEMALE"]
    assert fields["name.first"]["maxChars"] == "50"


def test_list_user_field_choices(api: Caller) -> None:
    assert api.ok("listUserFieldChoices", field="gender") == {
        "choice": ["UNDEFINED", "MALE", "FEMALE"]
    }
    assert api.json("listUserFieldChoices", field="name.first")[1] == {
        "listConsFieldChoicesResponse": {}
    }
    assert api.error("listUserFieldChoices", field="no_such_field")[0] == "18"
    assert api.error("listUserFieldChoices")[0] == "10"


# -- inspection ------------------------------------------------------------------------------


def test_inspection_route_shows_records_and_call_counts(
    api: Caller, emulator: Emulator, ada: str
) -> None:
    api.error("getUser", cons_id="nope")
    api.raw("listUserFields", api_key="wrong")
    state = api.session.get(f"{emulator.url}/_emulator/state", timeout=5).json()
    assert [r["cons_id"] for r in state["constituents"]] == [ada]
    assert state["constituents"][0]["fields"]["name.first"] == "Ada"
    assert state["calls"] == {"createOrUpdate": 1, "getUser": 1, "listUserFields": 1}
    assert state == {**state, "faults": {}}
    assert emulator.calls == state["calls"]


def test_inspection_route_is_read_only(api: Caller, emulator: Emulator) -> None:
    response = api.session.post(f"{emulator.url}/_emulator/state", data={"x": "1"}, timeout=5)
    assert response.status_code == 405


def test_inspection_route_refuses_clients_outside_its_networks(
    api: Caller, emulator: Emulator
) -> None:
    assert [str(n) for n in emulator.server.inspect_networks] == ["127.0.0.0/8", "::1/128"]
    emulator.server.inspect_networks = [ipaddress.ip_network("203.0.113.0/24")]
    assert api.session.get(f"{emulator.url}/_emulator/state", timeout=5).status_code == 403
