"""Routes, parameters, the auth chain, HTTP methods, both formats and both status modes."""

from __future__ import annotations

import pytest
import requests

from target_convio.emulator import Emulator
from target_convio.emulator.api import GET_ALLOWED
from tests.conftest import PERSON, Caller, site_with

NAMESPACE = "http://convio.com/crm/v1.0"
POST_ONLY = ["createOrUpdate", "create", "update", "getUser", "getUserGroups", "getUserInterests"]


def test_both_routes_answer(api: Caller, emulator: Emulator) -> None:
    for url in (emulator.api_url, f"{emulator.url}/site/SRConsAPI"):
        response = api.raw("listUserFields", url=url, response_format="json")
        assert response.status_code == 200
        assert "listConsFieldsResponse" in response.json()


@pytest.mark.parametrize("path", ["/other-org/site/SRConsAPI", "/demo/site/CRConsAPI", "/"])
def test_other_paths_are_404(api: Caller, emulator: Emulator, path: str) -> None:
    response = api.raw("listUserFields", url=emulator.url + path)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


def test_query_string_and_body_are_merged(api: Caller, emulator: Emulator) -> None:
    url = f"{emulator.api_url}?method=createOrUpdate&v=1.0&response_format=json"
    body = {"api_key": "demo-api-key", "login_name": "apiuser", "login_password": "apipass"}
    response = api.session.post(url, data={**body, "primary_email": "q@example.org", **PERSON})
    assert response.status_code == 200
    assert response.json()["createOrUpdateConsResponse"]["message"] == "New user added."


def test_body_wins_over_query_string(api: Caller, emulator: Emulator) -> None:
    url = f"{emulator.api_url}?method=getUser"
    response = api.session.post(
        url,
        data={
            "method": "listUserFields",
            "api_key": "demo-api-key",
            "login_name": "apiuser",
            "login_password": "apipass",
            "v": "1.0",
            "response_format": "json",
        },
    )
    assert "listConsFieldsResponse" in response.json()


def test_utf8_and_xml_special_characters_round_trip(api: Caller) -> None:
    name = 'Zoë <&> "Ñandú" 李 🎉'
    api.ok("createOrUpdate", primary_email="z@example.org", **{**PERSON, "name.first": name})
    assert api.ok("getUser", primary_email="z@example.org")["name"]["first"] == name
    _, xml = api.xml("getUser", primary_email="z@example.org")
    assert xml["getConsResponse"]["name"]["first"] == name


# -- the auth chain ------------------------------------------------------------------------


@pytest.mark.parametrize("api_key", [None, "", "wrong-key"])
def test_bad_api_key_is_code_2(api: Caller, api_key: str | None) -> None:
    assert api.error("listUserFields", api_key=api_key)[0] == "2"


def test_secondary_api_key_is_accepted(make_api) -> None:
    api = make_api(site_with(api_keys=["primary", "secondary"]))
    assert api.json("listUserFields", api_key="secondary")[0] == 200
    assert api.json("listUserFields", api_key="primary")[0] == 200


def test_ip_outside_the_white_list_is_code_4(make_api) -> None:
    api = make_api(site_with(allowed_ips=["203.0.113.0/24"]))
    code, message = api.error("listUserFields")
    assert code == "4"
    assert "IP address" in message


def test_api_key_is_checked_before_the_ip(make_api) -> None:
    api = make_api(site_with(allowed_ips=["203.0.113.0/24"]))
    assert api.error("listUserFields", api_key="wrong")[0] == "2"


@pytest.mark.parametrize(
    ("login_name", "login_password"),
    [
        ("apiuser", "wrong"),
        ("apiuser", None),
        (None, None),
        ("nobody", "apipass"),
        ("webuser", "webpass"),
    ],  # webuser exists but lacks the API permission
)
def test_bad_login_is_code_3(
    api: Caller, login_name: str | None, login_password: str | None
) -> None:
    code, _ = api.error("listUserFields", login_name=login_name, login_password=login_password)
    assert code == "3"


@pytest.mark.parametrize("version", [None, "2.0", ""])
def test_version_must_be_1_0(api: Caller, version: str | None) -> None:
    code, message = api.error("listUserFields", v=version)
    assert code == "10"
    assert "1.0" in message


def test_no_method_is_code_6(api: Caller) -> None:
    assert api.error(None)[0] == "6"


@pytest.mark.parametrize("method", ["deleteUser", "createorupdate", "CreateOrUpdate"])
def test_unknown_method_is_code_17(api: Caller, method: str) -> None:
    assert api.error(method)[0] == "17"


@pytest.mark.parametrize("method", POST_ONLY)
def test_write_and_get_methods_refuse_get_with_405(api: Caller, method: str) -> None:
    response = api.raw(method, http="GET", response_format="json", primary_email="a@example.org")
    assert response.status_code == 405
    assert response.json()["errorResponse"]["code"] == "405"
    assert api.emulator.constituents() == []


@pytest.mark.parametrize("method", sorted(GET_ALLOWED))
def test_list_methods_answer_get(api: Caller, method: str) -> None:
    response = api.raw(method, http="GET", field="gender")
    assert response.status_code == 200


# -- formats and status modes --------------------------------------------------------------


def test_xml_is_the_default_with_the_convio_namespace(api: Caller) -> None:
    response = api.raw("createOrUpdate", primary_email="x@example.org", **PERSON)
    assert response.headers["Content-Type"] == "text/xml;charset=UTF-8"
    assert response.text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    _, doc = api.xml("getUser", primary_email="x@example.org")
    root = doc["getConsResponse"]
    assert root["@xmlns"] == NAMESPACE
    assert root["@xsi:schemaLocation"].startswith(NAMESPACE + " http://service.convio.net/")
    assert root["name"]["middle"] == {"@xsi:nil": "true"}


def test_xml_error_response(api: Caller) -> None:
    status, doc = api.xml("getUser", primary_email="nobody@example.org")
    assert status == 403
    assert doc["errorResponse"]["code"] == "16"
    assert doc["errorResponse"]["@xmlns"] == NAMESPACE


def test_json_scalars_are_all_strings(api: Caller) -> None:
    answer = api.ok("listUserFields", include_choices="true")
    first = answer["field"][0]
    assert first["required"] in ("true", "false")
    maxed = next(f for f in answer["field"] if "maxChars" in f)
    assert isinstance(maxed["maxChars"], str)
    assert int(maxed["maxChars"]) > 0
    _, raw = api.json("create", primary_email="s@example.org", **PERSON)
    assert isinstance(raw["createConsResponse"]["cons_id"], str)


def test_json_errors_carry_string_codes(api: Caller) -> None:
    status, answer = api.json("getUser", primary_email="nobody@example.org")
    assert status == 403
    assert answer == {
        "errorResponse": {"code": "16", "message": answer["errorResponse"]["message"]}
    }
    assert isinstance(answer["errorResponse"]["code"], str)


@pytest.mark.parametrize("flag", ["true", "TRUE", "1"])
def test_suppress_response_codes_answers_errors_with_200(api: Caller, flag: str) -> None:
    response = api.raw(
        "getUser",
        response_format="json",
        suppress_response_codes=flag,
        primary_email="nobody@example.org",
    )
    assert response.status_code == 200
    assert response.json()["errorResponse"]["code"] == "16"
    response = api.raw("getUser", suppress_response_codes=flag, primary_email="n@example.org")
    assert response.status_code == 200
    assert "<code>16</code>" in response.text


def test_suppress_response_codes_false_keeps_403(api: Caller) -> None:
    response = api.raw("getUser", suppress_response_codes="false", primary_email="n@example.org")
    assert response.status_code == 403


def test_suppress_response_codes_also_covers_405(api: Caller) -> None:
    response = api.raw(
        "getUser", http="GET", suppress_response_codes="true", primary_email="n@example.org"
    )
    assert response.status_code == 200
    assert "<code>405</code>" in response.text


def test_keep_alive_serves_many_calls_on_one_connection(api: Caller) -> None:
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=1)
    api.session.mount("http://", adapter)
    for _ in range(20):
        assert api.json("listUserFields")[0] == 200
    assert api.emulator.calls["listUserFields"] == 20
    assert api.emulator.connections == 1


@pytest.mark.parametrize("method", ["get\x00User<&>", "x" * 5000, "caf\ufffe"])
def test_echoed_request_text_keeps_the_xml_well_formed(api: Caller, method: str) -> None:
    status, doc = api.xml(method)
    assert status == 403
    assert doc["errorResponse"]["code"] == "17"
    assert len(doc["errorResponse"]["message"]) < 200


def test_non_characters_are_code_35(api: Caller) -> None:
    code, _ = api.error(
        "createOrUpdate", primary_email="n@example.org", **{**PERSON, "name.first": "A\ufffe"}
    )
    assert code == "35"


def test_an_emulator_bug_is_an_http_500_and_a_log_line(
    api: Caller, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(params: object) -> None:
        raise RuntimeError("boom")

    emulator.server.methods.table["getUser"] = broken
    response = api.raw("getUser", cons_id="1")
    assert response.status_code == 500
    assert "emulator error on POST /demo/site/SRConsAPI" in caplog.text
    assert api.json("listUserFields")[0] == 200
