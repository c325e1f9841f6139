"""The client against the running emulator: every outcome class, both formats, both modes."""

from __future__ import annotations

import threading
import time

import pytest

from target_convio.convio.client import ConvioError, FatalCallError
from target_convio.convio.codes import Kind
from target_convio.emulator import Emulator, Faults
from tests.conftest import PERSON, site_with

ADA = {"primary_email": "ada@example.org", **PERSON}


def test_create_then_update(emulator: Emulator, make_client, response_format: str) -> None:
    client = make_client(emulator, response_format=response_format)
    created = client.create_or_update(ADA)
    assert (created.kind, created.root, created.attempts) == (
        Kind.OK,
        "createOrUpdateConsResponse",
        1,
    )
    assert created.body == {"cons_id": created.cons_id, "message": "New user added."}
    updated = client.create_or_update({**ADA, "home_phone": "555-0100"})
    assert (updated.cons_id, updated.body["message"]) == (created.cons_id, "User updated.")
    assert emulator.constituents()[0]["fields"]["home_phone"] == "555-0100"


def test_create_and_update_methods(emulator: Emulator, make_client, response_format: str) -> None:
    client = make_client(emulator, response_format=response_format)
    created = client.create(ADA)
    assert created.root == "createConsResponse"
    updated = client.update({"cons_id": created.cons_id, "name.last": "King"})
    assert (updated.root, updated.cons_id) == ("updateConsResponse", created.cons_id)
    again = client.create(ADA)
    assert (again.kind, again.code) == (Kind.RECORD, "13")


def test_get_user(emulator: Emulator, make_client, response_format: str) -> None:
    client = make_client(emulator, response_format=response_format)
    cons_id = client.create_or_update(ADA).cons_id
    user = client.get_user(primary_email="ada@example.org")
    assert user is not None
    assert user["cons_id"] == cons_id
    assert user["name"]["first"] == "Ada"
    assert user["name"]["middle"] is None
    assert client.get_user(cons_id="404") is None


def test_list_user_fields(emulator: Emulator, make_client, response_format: str) -> None:
    fields = make_client(emulator, response_format=response_format).list_user_fields()
    by_name = {f["name"]: f for f in fields}
    assert "custom_string4" not in by_name  # access=update
    assert by_name["gender"]["choices"]["choice"] == ["UNDEFINED", "MALE", "FEMALE"]
    assert by_name["name.first"]["maxChars"] == "50"
    assert emulator.calls == {"listUserFields": 1}


def test_list_user_fields_of_a_site_with_one_field(make_api, make_client, response_format) -> None:
    api = make_api(site_with(fields=[{"name": "name.first", "valueType": "TEXT"}]))
    fields = make_client(api.emulator, response_format=response_format).list_user_fields()
    assert [f["name"] for f in fields] == ["name.first"]


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"primary_email": "not-an-email"}, "22"),
        ({**ADA, "name.first": "x" * 51}, "23"),
        ({**ADA, "name.first": "bell\x07"}, "35"),
        ({"primary_email": "new@example.org"}, "10"),
        ({"cons_id": "12345", **PERSON}, "16"),
        ({**ADA, "add_group_ids": "5"}, "22"),
    ],
)
def test_record_level_errors_are_not_retried(
    emulator: Emulator, make_client, response_format: str, params: dict, code: str
) -> None:
    reply = make_client(emulator, response_format=response_format).create_or_update(params)
    assert (reply.kind, reply.code, reply.attempts) == (Kind.RECORD, code, 1)
    assert reply.message
    assert emulator.calls == {"createOrUpdate": 1}


@pytest.mark.parametrize("suppress", ["true", "false"])
def test_error_responses_are_read_whatever_the_http_status(
    emulator: Emulator, make_client, response_format: str, suppress: str
) -> None:
    client = make_client(emulator, response_format=response_format)
    reply = client.create_or_update({"primary_email": "bad", "suppress_response_codes": suppress})
    assert (reply.kind, reply.code) == (Kind.RECORD, "22")
    assert reply.http_status == (200 if suppress == "true" else 403)


# -- transient faults and retries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "message"),
    [
        (Faults(error_rate=1.0), "Unable to process request."),
        (Faults(http_500_rate=1.0), "HTTP 500: not a Convio answer"),
        (Faults(http_503_rate=1.0), "HTTP 503: not a Convio answer"),
        (Faults(reset_rate=1.0), "connection failed"),
    ],
)
def test_transient_faults_are_retried_then_fail(
    emulator: Emulator, make_client, faults: Faults, message: str
) -> None:
    emulator.faults = faults
    reply = make_client(emulator, max_retries=3).create_or_update(ADA)
    assert reply.kind is Kind.TRANSIENT
    assert message in reply.message
    assert reply.attempts == 4
    assert emulator.calls == {"createOrUpdate": 4}
    assert emulator.constituents() == []


def test_a_slow_answer_times_out_and_is_retried(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(slow_rate=1.0, slow_ms=400)
    client = make_client(emulator, request_timeout_seconds=0.1, max_retries=1)
    reply = client.create_or_update(ADA)
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 2)
    assert reply.message == "no full answer within 0.1 s"


def test_transient_faults_recover_within_the_retries(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(error_rate=0.3, http_503_rate=0.2, reset_rate=0.1, seed=5)
    client = make_client(emulator, max_retries=12)
    replies = [
        client.create_or_update({**PERSON, "primary_email": f"r{i}@example.org"}) for i in range(30)
    ]
    assert all(reply.ok for reply in replies)
    assert sum(reply.attempts for reply in replies) == emulator.calls["createOrUpdate"]
    assert sum(reply.attempts for reply in replies) > 30
    assert len(emulator.constituents()) == 30


def test_max_retries_zero_sends_once(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(error_rate=1.0)
    reply = make_client(emulator, max_retries=0).create_or_update(ADA)
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 1)


def test_retry_after_of_a_429_is_honoured(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(max_rps=1)
    client = make_client(emulator, max_backoff_seconds=5, max_retries=2)
    assert client.create_or_update(ADA).ok
    started = time.monotonic()
    reply = client.create_or_update({**ADA, "home_phone": "1"})
    assert reply.ok
    assert reply.attempts == 2
    assert time.monotonic() - started >= 0.9  # Retry-After: 1, not the 1 ms backoff


def test_retry_logs_name_the_method_and_the_cause(
    emulator: Emulator, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    emulator.faults = Faults(http_503_rate=1.0)
    make_client(emulator, max_retries=2).create_or_update(ADA)
    lines = [r.getMessage() for r in caplog.records if r.name == "target_convio.convio.client"]
    assert len(lines) == 2
    assert lines[0].startswith("createOrUpdate: attempt 1 of 3 failed (HTTP 503")


def test_close_cuts_a_backoff_short(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(error_rate=1.0)
    client = make_client(emulator, backoff_seconds=30, max_backoff_seconds=30, max_retries=5)
    threading.Timer(0.2, client.close).start()
    started = time.monotonic()
    reply = client.create_or_update(ADA)
    assert time.monotonic() - started < 5
    assert reply.kind is Kind.TRANSIENT
    assert reply.attempts == 1


# -- fatal answers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "code", "hint"),
    [
        ({"api_key": "wrong"}, "2", "api_key"),
        ({"login_password": "wrong"}, "3", "login_name/login_password"),
        ({"login_name": "webuser", "login_password": "webpass"}, "3", "API permission"),
    ],
)
def test_fatal_codes_raise_with_a_hint(
    emulator: Emulator, make_client, response_format: str, overrides: dict, code: str, hint: str
) -> None:
    client = make_client(emulator, response_format=response_format, **overrides)
    with pytest.raises(FatalCallError) as caught:
        client.list_user_fields()
    assert caught.value.reply is not None
    assert caught.value.reply.code == code
    assert hint in str(caught.value)
    reply = client.create_or_update(ADA)
    assert (reply.kind, reply.code, reply.attempts) == (Kind.FATAL, code, 1)


def test_ip_not_on_the_white_list_is_fatal(make_api, make_client) -> None:
    api = make_api(site_with(allowed_ips=["203.0.113.0/24"]))
    with pytest.raises(FatalCallError, match="white list"):
        make_client(api.emulator).list_user_fields()


def test_unknown_method_and_no_method_are_fatal(emulator: Emulator, make_client) -> None:
    client = make_client(emulator)
    assert client.call("deleteUser", {}).code == "17"
    assert client.call("deleteUser", {}).kind is Kind.FATAL
    assert client.call("", {}).code == "6"


def test_wrong_path_is_fatal(emulator: Emulator, make_client) -> None:
    client = make_client(emulator.url + "/other-org/site/SRConsAPI")
    reply = client.create_or_update(ADA)
    assert (reply.kind, reply.http_status) == (Kind.FATAL, 404)
    assert reply.message == "HTTP 404: no SRConsAPI at api_url"


def test_nothing_listening_is_transient(make_client) -> None:
    client = make_client("http://127.0.0.1:9/demo/site/SRConsAPI", max_retries=1)
    reply = client.create_or_update(ADA)
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 2)
    assert reply.message == "cannot connect to 127.0.0.1:9"
    with pytest.raises(ConvioError, match="listUserFields failed: cannot connect to"):
        client.list_user_fields()


# -- concurrency and pacing -----------------------------------------------------------------


def in_threads(client, count: int, prefix: str) -> float:
    """Seconds taken by `count` createOrUpdate calls started at once, one thread each."""
    threads = [
        threading.Thread(
            target=client.create_or_update,
            args=({**PERSON, "primary_email": f"{prefix}{i}@example.org"},),
        )
        for i in range(count)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def test_pool_is_sized_to_max_concurrency(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(latency_ms=100)
    client = make_client(emulator, max_concurrency=2)
    assert in_threads(client, 6, "c") >= 0.3  # 6 calls, 2 at a time, 100 ms each
    assert emulator.connections == 2
    assert len(emulator.constituents()) == 6


def test_concurrent_calls_all_settle(emulator: Emulator, make_client) -> None:
    emulator.faults = Faults(latency_ms=20, error_rate=0.2, seed=1)
    client = make_client(emulator, max_concurrency=8, max_retries=10)
    replies: list = []
    lock = threading.Lock()

    def work(start: int) -> None:
        for i in range(start, start + 10):
            reply = client.create_or_update({**PERSON, "primary_email": f"t{i}@example.org"})
            with lock:
                replies.append(reply)

    threads = [threading.Thread(target=work, args=(n * 10,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 80
    assert all(reply.ok for reply in replies)
    assert len({reply.cons_id for reply in replies}) == 80


def test_pacing_is_shared_across_threads(emulator: Emulator, make_client) -> None:
    client = make_client(emulator, max_requests_per_second=20, max_concurrency=4)
    assert in_threads(client, 11, "p") >= 0.49  # 11 starts, 50 ms apart
    assert len(emulator.constituents()) == 11
