"""Answers Convio documents, and answers it should never give, read into classified replies."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest

from target_convio.convio.answers import as_list, parse_document, read_answer
from target_convio.convio.codes import CODES, Kind, lookup
from tests.hostile import Canned, HostileServer

NS = (
    'xmlns="http://convio.com/crm/v1.0" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
    'xsi:schemaLocation="http://convio.com/crm/v1.0 '
    'http://service.convio.net/xmlschema/crm.public.v1.xsd"'
)
SEED_XML_OK = (
    f"<createOrUpdateConsResponse {NS}><cons_id>1002001</cons_id>"
    "<message>New user added.</message></createOrUpdateConsResponse>"
).encode()
SEED_JSON_OK = (
    b'{"createOrUpdateConsResponse ":{"message":\n"New user added.","cons_id":"1002001"}}'
)
SEED_XML_ERROR = (
    f"<errorResponse {NS}><code>12</code>"
    "<message>Specified user name is already in use.</message></errorResponse>"
).encode()
BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
    b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
    b"<errorResponse><code>&lol3;</code></errorResponse>"
)
LOGIN_PAGE = (
    b"<!DOCTYPE html><html><head><title>Login</title></head><body><form></form></body></html>"
)


@pytest.mark.parametrize("data", [SEED_XML_OK, SEED_JSON_OK])
def test_seed_success_answers(data: bytes) -> None:
    reply = read_answer(200, data, "createOrUpdateConsResponse")
    assert (reply.kind, reply.cons_id) == (Kind.OK, "1002001")
    assert reply.body == {"cons_id": "1002001", "message": "New user added."}


@pytest.mark.parametrize("status", [403, 200])
@pytest.mark.parametrize(
    "data",
    [
        SEED_XML_ERROR,
        b'{"errorResponse":{"code":"12","message":"Specified user name is already in use."}}',
    ],
)
def test_seed_error_answers_whatever_the_status(data: bytes, status: int) -> None:
    reply = read_answer(status, data, "createOrUpdateConsResponse")
    assert (reply.kind, reply.code, reply.http_status) == (Kind.RECORD, "12", status)
    assert reply.message == "Specified user name is already in use."


def test_xml_nil_and_empty_elements_are_none() -> None:
    root, body = parse_document(
        f'<getConsResponse {NS}><name><first>Ada</first><title xsi:nil="true"/><last/></name>'
        "</getConsResponse>".encode()
    )
    assert root == "getConsResponse"
    assert body == {"name": {"first": "Ada", "title": None, "last": None}}


def test_xml_special_characters_and_unicode() -> None:
    _, body = parse_document(
        f"<getConsResponse {NS}><x>a &amp; b &lt;c&gt; Zoë 🎉</x></getConsResponse>".encode()
    )
    assert body == {"x": "a & b <c> Zoë 🎉"}


def test_empty_root_is_an_empty_body() -> None:
    assert parse_document(b'{"getConsGroupsResponse":{}}') == ("getConsGroupsResponse", {})
    assert parse_document(f"<getConsGroupsResponse {NS}/>".encode()) == (
        "getConsGroupsResponse",
        {},
    )


def test_as_list_undoes_the_one_item_collapse() -> None:
    assert as_list(None) == []
    assert as_list({}) == []
    assert as_list({"id": "1"}) == [{"id": "1"}]
    assert as_list([{"id": "1"}, {"id": "2"}]) == [{"id": "1"}, {"id": "2"}]


@pytest.mark.parametrize(
    ("status", "data", "kind", "message"),
    [
        (200, b"", Kind.TRANSIENT, "HTTP 200: not a Convio answer (empty answer)"),
        (200, b"   \n", Kind.TRANSIENT, "(empty answer)"),
        (200, LOGIN_PAGE, Kind.TRANSIENT, "root element 'html'"),
        (200, b"<html><body>Login</body></html>", Kind.TRANSIENT, "root element 'html'"),
        (200, SEED_XML_OK[:60], Kind.TRANSIENT, "invalid XML"),
        (
            200,
            SEED_XML_OK.replace(b"</createOrUpdateConsResponse>", b"</createConsResponse>"),
            Kind.TRANSIENT,
            "invalid XML",
        ),
        (200, BILLION_LAUGHS, Kind.TRANSIENT, "invalid XML"),
        (200, b'{"createOrUpdateConsResponse": {"cons_id": "1"', Kind.TRANSIENT, "invalid JSON"),
        (200, b"[1, 2]", Kind.TRANSIENT, "neither XML nor JSON"),
        (200, b'{"a": {}, "b": {}}', Kind.TRANSIENT, "not a single root element"),
        (200, b'{"createOrUpdateConsResponse": "x"}', Kind.TRANSIENT, "holds no elements"),
        (200, b'{"getConsResponse": {}}', Kind.TRANSIENT, "where 'createOrUpdateConsResponse'"),
        (200, b"\xff\xfe garbage", Kind.TRANSIENT, "neither XML nor JSON"),
        (500, b"<html>oops</html>", Kind.TRANSIENT, "HTTP 500"),
        (502, b"", Kind.TRANSIENT, "HTTP 502"),
        (429, b"slow down", Kind.TRANSIENT, "HTTP 429"),
        (404, LOGIN_PAGE, Kind.FATAL, "HTTP 404: no SRConsAPI at api_url"),
        (403, b"<html>Forbidden by WAF</html>", Kind.FATAL, "HTTP 403"),
        (401, b"", Kind.FATAL, "HTTP 401"),
        (500, SEED_XML_OK, Kind.TRANSIENT, "HTTP 500"),
    ],
)
def test_what_is_not_a_convio_answer(status: int, data: bytes, kind: Kind, message: str) -> None:
    reply = read_answer(status, data, "createOrUpdateConsResponse")
    assert reply.kind is kind
    assert message in reply.message
    assert reply.code is None
    assert len(reply.message) < 200


@pytest.mark.parametrize("code", ["2", "3", "4", "5", "6", "7", "14", "17", "405"])
def test_fatal_codes(code: str) -> None:
    reply = read_answer(403, f'{{"errorResponse":{{"code":"{code}","message":"m"}}}}'.encode())
    assert (reply.kind, reply.code) == (Kind.FATAL, code)
    assert lookup(code).hint


def test_unknown_codes_refuse_only_their_record_and_keep_the_message() -> None:
    reply = read_answer(403, b'{"errorResponse":{"code":"9999","message":"Something new."}}')
    assert (reply.kind, reply.code, reply.message) == (Kind.RECORD, "9999", "Something new.")
    assert lookup("9999").error == "unknown_error"


def test_error_response_without_a_code() -> None:
    reply = read_answer(403, b'{"errorResponse":{"message":"?"}}')
    assert (reply.kind, reply.code) == (Kind.RECORD, None)


def test_the_table_covers_every_documented_code() -> None:
    documented = {*map(str, range(1, 37)), "50", "405"}
    assert documented <= set(CODES)
    for info in CODES.values():
        assert (info.error is None) == (info.kind is Kind.FATAL)
        assert info.error is None or info.error == info.error.lower()


# -- over HTTP --------------------------------------------------------------------------------


def test_credentials_travel_in_the_body_never_the_url(make_client) -> None:
    with HostileServer(lambda n: Canned(200, SEED_XML_OK)) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@example.org"})
        assert reply.ok
        ((http_method, path, body),) = server.requests
    assert (http_method, path) == ("POST", "/demo/site/SRConsAPI")
    sent = parse_qs(body.decode("ascii"), keep_blank_values=True)
    assert sent["method"] == ["createOrUpdate"]
    assert sent["v"] == ["1.0"]
    assert sent["login_password"] == ["apipass"]
    assert sent["response_format"] == ["xml"]
    assert sent["primary_email"] == ["a@example.org"]


def test_settings_override_any_same_named_record_param(make_client) -> None:
    with HostileServer(lambda n: Canned(200, SEED_XML_OK)) as server:
        make_client(server.url).create_or_update({"api_key": "x", "method": "update", "v": "2"})
        sent = parse_qs(server.requests[0][2].decode("ascii"))
    assert (sent["api_key"], sent["method"], sent["v"]) == (
        ["demo-api-key"],
        ["createOrUpdate"],
        ["1.0"],
    )


def test_html_login_page_is_retried_then_failed(make_client) -> None:
    with HostileServer(lambda n: Canned(200, LOGIN_PAGE, {"Content-Type": "text/html"})) as server:
        reply = make_client(server.url, max_retries=2).create_or_update(
            {"primary_email": "a@b.org"}
        )
        assert len(server.requests) == 3
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 3)


def test_a_garbled_answer_then_a_good_one_succeeds(make_client) -> None:
    answers = {1: Canned(200, SEED_XML_OK[:50]), 2: Canned(503), 3: Canned(200, SEED_JSON_OK)}
    with HostileServer(lambda n: answers[n]) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts, reply.cons_id) == (Kind.OK, 3, "1002001")


def test_an_oversized_answer_is_cut_off(make_client) -> None:
    huge = b"<createOrUpdateConsResponse>" + b"x" * (50 * 1024 * 1024)
    with HostileServer(lambda n: Canned(200, huge)) as server:
        reply = make_client(server.url, max_retries=0).create_or_update(
            {"primary_email": "a@b.org"}
        )
    assert reply.kind is Kind.TRANSIENT
    assert reply.message == "answer larger than 8 MB"


def test_a_server_that_never_answers_times_out(make_client) -> None:
    with HostileServer(lambda n: Canned(200, SEED_XML_OK, hang=3)) as server:
        client = make_client(server.url, request_timeout_seconds=0.2, max_retries=1)
        reply = client.create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 2)
    assert reply.message == "no full answer within 0.2 s"


@pytest.mark.parametrize("hang", [0.0, 0.3], ids=["headers trickle", "body trickles"])
def test_a_trickling_answer_is_cut_at_the_call_timeout(make_client, hang: float) -> None:
    body = SEED_XML_OK + b" " * 40
    with HostileServer(lambda n: Canned(200, body, trickle=0.05, hang=hang)) as server:
        client = make_client(server.url, request_timeout_seconds=0.8, max_retries=1)
        started = time.monotonic()
        reply = client.create_or_update({"primary_email": "a@b.org"})
        elapsed = time.monotonic() - started
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 2)
    assert reply.message == "no full answer within 0.8 s"
    assert elapsed < 2.5  # two attempts of 0.8 s, where a byte every 0.05 s would take 20 s


def test_retry_after_as_an_http_date(make_client) -> None:
    answers = {
        1: Canned(503, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
        2: Canned(200, SEED_XML_OK),
    }
    with HostileServer(lambda n: answers[n]) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts) == (Kind.OK, 2)  # a date in the past: no wait


# -- answers that once ended wrong --------------------------------------------------------


def test_a_success_without_a_cons_id_is_not_taken_for_one(make_client) -> None:
    no_id = b'{"createOrUpdateConsResponse": {"message": "User updated."}}'
    answers = {1: Canned(200, no_id), 2: Canned(200, SEED_JSON_OK)}
    with HostileServer(lambda n: answers.get(n, Canned(200, no_id))) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@b.org"})
        assert (reply.kind, reply.attempts, reply.cons_id) == (Kind.OK, 2, "1002001")
        reply = make_client(server.url, max_retries=1).create_or_update({"primary_email": "a"})
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 2)
    assert reply.message == "Convio's answer named no cons_id (User updated.)"


@pytest.mark.parametrize("value", ["\u00b2", "1\u0663", "-1", "1e400", "9" * 400])
def test_an_odd_retry_after_is_a_plain_retry(make_client, value: str) -> None:
    answers = {1: Canned(503, headers={"Retry-After": value}), 2: Canned(200, SEED_XML_OK)}
    with HostileServer(lambda n: answers[n]) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts) == (Kind.OK, 2)


@pytest.mark.parametrize(
    "body",
    [b'{"createOrUpdateConsResponse": ' + b"[" * 100_000, b"<a>" * 100_000],
    ids=["json", "xml"],
)
def test_a_deeply_nested_answer_is_retried(make_client, body: bytes) -> None:
    answers = {1: Canned(200, body), 2: Canned(200, SEED_XML_OK)}
    with HostileServer(lambda n: answers[n]) as server:
        reply = make_client(server.url).create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts) == (Kind.OK, 2)
