"""The dispatcher and the checkpointer in-process, with a client whose transport a test answers."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any
from urllib.parse import parse_qsl

import pytest

from target_convio.breaker import FailureBreaker
from target_convio.checkpoints import MAX_WAITING, Checkpointer, Pending
from target_convio.commit import PrintState, Settled
from target_convio.convio.answers import Reply
from target_convio.convio.client import ClientSettings, ConvioClient
from target_convio.convio.codes import Kind
from target_convio.convio.transport import Response, TransportError
from target_convio.dispatch import Dispatcher
from target_convio.modes import SyncMode
from target_convio.outcomes import Outcome
from target_convio.rows import RecordRef

LOG = logging.getLogger("tests")


def created(cons_id: str = "1") -> Response:
    body = {"createOrUpdateConsResponse": {"cons_id": cons_id, "message": "New user added."}}
    return Response(200, json.dumps(body).encode())


def error(code: str, message: str = "refused") -> Response:
    return Response(403, json.dumps({"errorResponse": {"code": code, "message": message}}).encode())


class ScriptedTransport:
    """Answers each call with `answer(params)`; keeps the parameters of every call, in order."""

    def __init__(self, answer: Callable[[dict[str, str]], Response]) -> None:
        self.answer = answer
        self.calls: list[dict[str, str]] = []
        self._lock = threading.Lock()

    def send(self, body: bytes) -> Response:
        params = dict(parse_qsl(body.decode()))
        with self._lock:
            self.calls.append(params)
        return self.answer(params)

    def close(self) -> None:
        pass


def client_for(transport: ScriptedTransport, **settings: Any) -> ConvioClient:
    values: dict[str, Any] = {
        "api_url": "https://convio.invalid/site/SRConsAPI",
        "api_key": "k",
        "login_name": "u",
        "login_password": "p",
        "response_format": "json",
        "backoff_seconds": 0.001,
        "max_backoff_seconds": 0.01,
        **settings,
    }
    return ConvioClient(ClientSettings(**values), transport)


def dispatcher_for(
    answer: Callable[[dict[str, str]], Response], concurrency: int = 4, rate: float = 1.0
) -> tuple[Dispatcher, ScriptedTransport]:
    transport = ScriptedTransport(answer)
    client = client_for(transport, max_concurrency=concurrency, adaptive_concurrency=False)
    return Dispatcher(client, concurrency, FailureBreaker(rate)), transport


# -- the client over a scripted transport -------------------------------------------------


def test_the_client_retries_a_lost_answer_then_succeeds() -> None:
    answers = iter([TransportError("the answer broke off"), created("7")])

    def answer(params: dict[str, str]) -> Response:
        item = next(answers)
        if isinstance(item, Exception):
            raise item
        return item

    transport = ScriptedTransport(answer)
    reply = client_for(transport).create_or_update({"primary_email": "a@example.org"})
    assert (reply.kind, reply.cons_id, reply.attempts) == (Kind.OK, "7", 2)
    assert [call["method"] for call in transport.calls] == ["createOrUpdate"] * 2


def test_a_fatal_transport_error_is_not_retried() -> None:
    def answer(params: dict[str, str]) -> Response:
        raise TransportError("TLS verification of api_url failed", fatal=True)

    transport = ScriptedTransport(answer)
    reply = client_for(transport).create_or_update({"primary_email": "a@example.org"})
    assert (reply.kind, reply.message, reply.attempts) == (
        Kind.FATAL,
        "TLS verification of api_url failed",
        1,
    )


# -- the dispatcher -----------------------------------------------------------------------


def test_calls_for_different_constituents_run_at_once() -> None:
    barrier = threading.Barrier(4, timeout=5)

    def answer(params: dict[str, str]) -> Response:
        barrier.wait()  # breaks (and the call fails) unless four calls are in flight together
        return created()

    dispatcher, _ = dispatcher_for(answer, concurrency=4)
    futures = [
        dispatcher.submit("createOrUpdate", {"primary_email": f"d{i}@example.org"})
        for i in range(4)
    ]
    replies = [f.result(10) for f in futures]
    assert [reply.kind if reply else None for reply in replies] == [Kind.OK] * 4
    dispatcher.close()


def test_calls_that_may_address_one_constituent_run_in_input_order() -> None:
    def answer(params: dict[str, str]) -> Response:
        if params["name.first"] == "first":
            time.sleep(0.2)  # the first call is slow: a racing second call would overtake it
        return created()

    dispatcher, transport = dispatcher_for(answer, concurrency=4)
    futures = [
        dispatcher.submit("createOrUpdate", {"primary_email": "Ada@Example.org", "name.first": n})
        for n in ("first", "second")
    ]
    futures.append(
        dispatcher.submit(
            "createOrUpdate",
            {"member_id": "M1", "email.primary_address": "ada@example.org", "name.first": "third"},
        )
    )
    for future in futures:
        future.result(10)
    assert [call["name.first"] for call in transport.calls] == ["first", "second", "third"]
    dispatcher.close()


def test_a_fatal_answer_stops_every_later_call() -> None:
    def answer(params: dict[str, str]) -> Response:
        return error("3", "Invalid login.") if params["primary_email"] == "d2@x.org" else created()

    dispatcher, transport = dispatcher_for(answer, concurrency=1)
    futures = [
        dispatcher.submit("createOrUpdate", {"primary_email": f"d{i}@x.org"}) for i in range(1, 6)
    ]
    results = [f.result(10) for f in futures]
    assert results[0] is not None
    assert results[0].kind is Kind.OK
    assert results[1:] == [None] * 4  # the refused call and those after it have no result
    assert len(transport.calls) == 2
    assert dispatcher.stop_reason is not None
    assert "code 3: Invalid login." in dispatcher.stop_reason
    assert "login_name/login_password" in dispatcher.stop_reason
    dispatcher.close()


def test_calls_a_fatal_answer_kept_from_starting_are_no_failures() -> None:
    # The client closes on a fatal answer before it hands the call's slot on, and the
    # dispatcher hears of it only when that call returns: calls turned away meanwhile were
    # never sent. They get no row, and the breaker must not count them.
    def answer(params: dict[str, str]) -> Response:
        return error("14", "no access") if params["primary_email"] == "d0@x.org" else created()

    transport = ScriptedTransport(answer)
    client = client_for(transport)
    client.close_on_fatal = True  # as the target makes it
    dispatcher = Dispatcher(client, 4, FailureBreaker(0.5))
    assert client.create_or_update({"primary_email": "d0@x.org"}).kind is Kind.FATAL
    futures = [
        dispatcher.submit("createOrUpdate", {"primary_email": f"d{i}@x.org"}) for i in range(1, 41)
    ]
    assert [f.result(10) for f in futures] == [None] * 40
    assert len(transport.calls) == 1
    assert dispatcher.stop_reason is None  # the fatal call's own return stops the run
    dispatcher.close()


def test_the_breaker_stops_a_run_whose_calls_fail() -> None:
    dispatcher, transport = dispatcher_for(lambda params: error("22"), concurrency=1, rate=0.5)
    futures = [
        dispatcher.submit("createOrUpdate", {"primary_email": f"d{i}@x.org"}) for i in range(40)
    ]
    results = [f.result(10) for f in futures]
    assert sum(r is not None for r in results) == 20
    assert len(transport.calls) == 20
    assert dispatcher.stop_reason == (
        "20 of the last 20 records sent were rejected or failed, at or above max_failure_rate=0.5"
    )
    dispatcher.close()


def test_a_bug_in_a_call_fails_its_record_not_the_run() -> None:
    def answer(params: dict[str, str]) -> Response:
        if params["primary_email"] == "bad@x.org":
            raise RuntimeError("a bug")
        return created()

    dispatcher, _ = dispatcher_for(answer)
    bad = dispatcher.submit("createOrUpdate", {"primary_email": "bad@x.org"}).result(10)
    good = dispatcher.submit("createOrUpdate", {"primary_email": "good@x.org"}).result(10)
    assert bad is not None
    assert (bad.kind, bad.message) == (
        Kind.TRANSIENT,
        "internal error (RuntimeError)",
    )
    assert good is not None
    assert good.kind is Kind.OK
    assert dispatcher.stop_reason is None
    dispatcher.close()


# -- the checkpointer ---------------------------------------------------------------------


class Recorder:
    """A commit step that notes what it was given."""

    def __init__(self, name: str, log: list[tuple[str, int, bool]], complete_only: bool) -> None:
        self.name = name
        self.log = log
        self.complete_only = complete_only
        self.closed = False

    def commit(self, checkpoint: Settled) -> None:
        self.log.append((self.name, checkpoint.number, checkpoint.complete))

    def close(self) -> None:
        self.closed = True


def pending(seq: int, reply: Reply | Future[Reply | None] | None, stream: str = "s") -> Pending:
    call: Future[Reply | None]
    if isinstance(reply, Future):
        call = reply
    else:
        call = Future()
        call.set_result(reply)
    return Pending(RecordRef("run", stream, seq, {"id": seq}), SyncMode.UPSERT, call=call)


def ok(message: str = "User updated.") -> Reply:
    return Reply(Kind.OK, body={"cons_id": "9", "message": message})


def make_checkpointer(
    steps: list[Any], size: int = 2, stop: Callable[[], str | None] = lambda: None
) -> tuple[Checkpointer, list[int]]:
    polls: list[int] = []
    return Checkpointer(steps, size, stop, lambda: polls.append(1), LOG), polls


def test_steps_run_in_order_and_checkpoints_commit_in_order() -> None:
    log: list[tuple[str, int, bool]] = []
    steps = [Recorder("results", log, False), Recorder("ledger", log, False)]
    steps.append(Recorder("state", log, True))
    checkpointer, _ = make_checkpointer(steps, size=2)
    slow: Future[Reply | None] = Future()
    checkpointer.add(pending(1, slow))
    checkpointer.add(pending(2, ok()))  # seals checkpoint 1, still waiting for record 1
    checkpointer.add(pending(3, ok()))
    checkpointer.add(pending(4, ok()))  # checkpoint 2 has settled before checkpoint 1
    time.sleep(0.1)
    assert log == []
    slow.set_result(ok())
    checkpointer.finish()
    assert log == [
        ("results", 1, True),
        ("ledger", 1, True),
        ("state", 1, True),
        ("results", 2, True),
        ("ledger", 2, True),
        ("state", 2, True),
    ]
    assert all(step.closed for step in steps)
    assert checkpointer.written == 2
    assert checkpointer.summary.outcomes[Outcome.UPDATED] == 4


def test_a_stopped_checkpoint_keeps_its_settled_rows_but_prints_no_state() -> None:
    log: list[tuple[str, int, bool]] = []
    steps = [Recorder("results", log, False), Recorder("state", log, True)]
    checkpointer, _ = make_checkpointer(steps, size=3)
    checkpointer.add(pending(1, ok()))
    checkpointer.add(pending(2, None))  # its call never ran: the run is stopping
    checkpointer.add(pending(3, ok()))
    checkpointer.finish()
    assert log == [("results", 1, False)]
    assert checkpointer.stopped
    assert checkpointer.written == 0


class Failing(Recorder):
    """A step that fails on its first checkpoint, as a ledger that cannot be written does."""

    def commit(self, checkpoint: Settled) -> None:
        super().commit(checkpoint)
        raise RuntimeError("Cannot write the ledger: disk full")


def test_a_failing_step_stops_the_run_and_later_checkpoints_keep_their_rows() -> None:
    log: list[tuple[str, int, bool]] = []
    steps = [Recorder("results", log, False), Failing("ledger", log, False)]
    steps.append(Recorder("state", log, True))
    stops: list[str] = []
    checkpointer = Checkpointer(steps, 1, lambda: None, lambda: None, LOG, stop_run=stops.append)
    for seq in (1, 2, 3):
        checkpointer.add(pending(seq, ok()))
    checkpointer.finish()
    # The ledger is not tried again, and nothing after it runs: no STATE line at all.
    assert log == [
        ("results", 1, True),
        ("ledger", 1, True),
        ("results", 2, False),
        ("results", 3, False),
    ]
    assert stops == ["Cannot write the ledger: disk full"]
    assert str(checkpointer.error) == "Cannot write the ledger: disk full"
    assert (checkpointer.stopped, checkpointer.written) == (True, 0)


def test_sealing_waits_for_room_and_polls_meanwhile() -> None:
    log: list[tuple[str, int, bool]] = []
    checkpointer, polls = make_checkpointer([Recorder("state", log, True)], size=1)
    calls: list[Future[Reply | None]] = [Future() for _ in range(MAX_WAITING + 2)]
    timer = threading.Timer(0.5, lambda: [call.set_result(ok()) for call in calls])
    timer.start()
    started = time.monotonic()
    for seq, call in enumerate(calls, 1):
        checkpointer.add(pending(seq, call))
    waited = time.monotonic() - started
    checkpointer.finish()
    timer.join()
    assert waited >= 0.4  # the reader was held back until checkpoints settled
    assert len(polls) >= 3
    assert [number for _, number, _ in log] == [1, 2, 3, 4]


def test_rows_are_in_input_order_per_stream() -> None:
    out = io.StringIO()
    checkpointer, _ = make_checkpointer([PrintState("records", out)], size=4)
    late: Future[Reply | None] = Future()
    checkpointer.add(pending(1, late, stream="b"))
    checkpointer.add(pending(1, ok(), stream="a"))
    checkpointer.add(pending(2, ok("New user added."), stream="b"))
    threading.Timer(0.1, lambda: late.set_result(ok())).start()
    checkpointer.add(pending(2, ok(), stream="a"))
    checkpointer.finish()
    (line,) = out.getvalue().splitlines()
    rows = json.loads(line)["target_convio"]["results"]
    assert [(r["stream"], r["seq"], r["outcome"]) for r in rows] == [
        ("a", 1, "updated"),
        ("a", 2, "updated"),
        ("b", 1, "updated"),
        ("b", 2, "created"),  # createOrUpdate says "New user added." when it created
    ]


@pytest.mark.parametrize(("records", "lines"), [(4, 2), (5, 3), (0, 1)])
def test_only_checkpoints_with_records_are_sealed(records: int, lines: int) -> None:
    out = io.StringIO()
    checkpointer, _ = make_checkpointer([PrintState("records", out)], size=2)
    for seq in range(1, records + 1):
        checkpointer.add(pending(seq, ok()))
    checkpointer.seal(final=True)
    checkpointer.finish()
    states = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(states) == lines
    if records:
        assert all(state["target_convio"]["results"] for state in states)


def test_a_newer_tap_state_at_the_end_gets_its_own_line() -> None:
    out = io.StringIO()
    checkpointer, _ = make_checkpointer([PrintState("none", out)], size=2)
    checkpointer.tap_state = {"bookmarks": {"s": 1}}
    checkpointer.add(pending(1, ok()))
    checkpointer.add(pending(2, ok()))
    checkpointer.tap_state = {"bookmarks": {"s": 2}}
    checkpointer.seal(final=True)
    checkpointer.finish()
    states = [json.loads(line) for line in out.getvalue().splitlines()]
    assert states == [
        {"bookmarks": {"s": 1}, "target_convio": {"checkpoint": 1}},
        {"bookmarks": {"s": 2}, "target_convio": {"checkpoint": 2}},
    ]
