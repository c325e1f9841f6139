"""The Convio server Constituent API: one call, sent, retried when worth it, classified."""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from target_convio.convio.answers import Reply, as_list, read_answer, transient
from target_convio.convio.budget import CallBudget
from target_convio.convio.codes import Kind, lookup
from target_convio.convio.concurrency import ConcurrencyLimit
from target_convio.convio.form import form_encoded
from target_convio.convio.pacing import Pacer
from target_convio.convio.redact import Redactor
from target_convio.convio.transport import (
    MAX_ANSWER_BYTES,
    HTTPTransport,
    Response,
    Transport,
    TransportError,
)

log = logging.getLogger(__name__)

WRITE_ROOTS = frozenset({"createOrUpdateConsResponse", "createConsResponse", "updateConsResponse"})
# Methods that are not safe to resend once a call may have been carried out.
LOOK_BEFORE_RETRY = frozenset({"create"})
LOST = "the answer to create was lost"
# Answers that say the site is overloaded, whatever else they say.
BACK_PRESSURE_CODES = frozenset({"1", "24", "34"})
ROOTS = {
    "createOrUpdate": "createOrUpdateConsResponse",
    "create": "createConsResponse",
    "update": "updateConsResponse",
    "getUser": "getConsResponse",
    "listUserFields": "listConsFieldsResponse",
}


class ConvioError(Exception):
    """A call that did not succeed, with a message that holds no secret."""

    def __init__(self, message: str, reply: Reply | None = None) -> None:
        super().__init__(message)
        self.reply = reply


class FatalCallError(ConvioError):
    """An answer that means the run is misconfigured (codes.py: the fatal codes)."""


class ConfigError(ConvioError, ValueError):
    """A setting that cannot work, named with the reason."""


@dataclass(frozen=True)
class ClientSettings:
    """What the client needs from the target's settings (settings.py)."""

    api_url: str
    api_key: str
    login_name: str
    login_password: str
    response_format: str = "xml"
    request_timeout_seconds: float = 30.0
    max_retries: int = 4
    max_concurrency: int = 8
    adaptive_concurrency: bool = True
    max_requests_per_second: float | None = None
    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 60.0

    def __repr__(self) -> str:
        return f"ClientSettings(api_url={self.api_url!r}, login_name={self.login_name!r}, ...)"

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ClientSettings:
        """From a target config, whose numbers may arrive as Decimal, int or float."""
        values = {k: v for k, v in config.items() if k in cls.__dataclass_fields__}
        values = {k: v for k, v in values.items() if v is not None}
        for name in ("max_concurrency", "max_retries"):
            if name in values:
                values[name] = int(values[name])
        for name in ("request_timeout_seconds", "max_requests_per_second"):
            if name in values:
                values[name] = float(values[name])
        return cls(**values)


def check_settings(settings: ClientSettings) -> None:
    """ConfigError for a URL or value that cannot work or would expose a secret."""
    parts = urlsplit(settings.api_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError("api_url must be a full https:// URL ending in /site/SRConsAPI")
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError("api_url must use https:// (plain http:// only for a loopback host)")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("api_url must not carry a user, a query string or a fragment")
    if not parts.path.endswith("/SRConsAPI"):
        raise ConfigError("api_url must end in /SRConsAPI (the server Constituent API)")
    if settings.response_format not in ("xml", "json"):
        raise ConfigError("response_format must be xml or json")
    for name in ("api_key", "login_name", "login_password"):
        if not getattr(settings, name):
            raise ConfigError(f"{name} is required")
    if settings.max_concurrency < 1 or settings.max_retries < 0:
        raise ConfigError("max_concurrency must be at least 1 and max_retries at least 0")
    if settings.request_timeout_seconds <= 0:
        raise ConfigError("request_timeout_seconds must be positive")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ConvioClient:
    """Calls SRConsAPI methods; safe to share between threads.

    `transport` carries each request (default: HTTPTransport to `api_url`); tests may pass
    their own to answer calls without a socket. `budget` counts every request; when it is
    spent, a call raises BudgetSpentError instead of being sent. `close_on_fatal`: a fatal
    answer closes the client before its slot is handed on, so no waiting call is sent.
    """

    def __init__(
        self,
        settings: ClientSettings,
        transport: Transport | None = None,
        budget: CallBudget | None = None,
        *,
        close_on_fatal: bool = False,
    ) -> None:
        check_settings(settings)
        self.settings = settings
        self.budget = budget
        self.close_on_fatal = close_on_fatal
        self._transport = transport or HTTPTransport(
            settings.api_url, settings.max_concurrency, settings.request_timeout_seconds
        )
        self._pacer = Pacer(settings.max_requests_per_second)
        self.concurrency = ConcurrencyLimit(
            settings.max_concurrency, adaptive=settings.adaptive_concurrency
        )
        self._redactor = Redactor([settings.api_key, settings.login_password])
        self._closed = threading.Event()
        self.calls: Counter[str] = Counter()  # HTTP requests sent, by method, retries included
        self._calls_lock = threading.Lock()
        self._common = {
            "v": "1.0",
            "api_key": settings.api_key,
            "login_name": settings.login_name,
            "login_password": settings.login_password,
            "response_format": settings.response_format,
        }

    def __repr__(self) -> str:
        return f"ConvioClient({self.settings.api_url!r})"

    @property
    def closed(self) -> bool:
        """Closed by `close` or by a fatal answer: no call starts any more."""
        return self._closed.is_set()

    def close(self) -> None:
        """Cut short any backoff wait, drop pooled connections, give back unused budget."""
        self._closed.set()
        self._transport.close()
        if self.budget is not None:
            self.budget.close()

    # -- methods --------------------------------------------------------------------------

    def list_user_fields(self) -> list[dict[str, Any]]:
        """The fields this account may write, with their choices (ConvioError if refused)."""
        reply = self.call(
            "listUserFields", {"access": "update", "include_choices": "true"}, expect=True
        )
        return [f for f in as_list((reply.body or {}).get("field")) if isinstance(f, dict)]

    def create_or_update(self, params: Mapping[str, str]) -> Reply:
        return self.call("createOrUpdate", params)

    def create(self, params: Mapping[str, str]) -> Reply:
        return self.call("create", params)

    def update(self, params: Mapping[str, str]) -> Reply:
        return self.call("update", params)

    def get_user(self, **locator: str) -> dict[str, Any] | None:
        """The record a locator (cons_id, member_id or primary_email) finds, or None."""
        reply = self.call("getUser", locator)
        if reply.code == "16":
            return None
        if not reply.ok:
            raise ConvioError(f"getUser failed: {describe(reply)}", reply)
        return reply.body

    # -- one call, with retries -----------------------------------------------------------

    def call(self, method: str, params: Mapping[str, str], *, expect: bool = False) -> Reply:
        """Send one call until it settles; with expect=True a failure raises ConvioError."""
        body = form_encoded({**params, **self._common, "method": method})
        attempts = 0
        while True:
            attempts += 1
            reply, retry_after = self._attempt(method, body)
            if reply.maybe_written and method in LOOK_BEFORE_RETRY:
                found = self._find_created(params)
                if found is not None:
                    reply = found
                    break
            if reply.kind is not Kind.TRANSIENT or attempts > self.settings.max_retries:
                break
            if self.closed:
                break  # stopping: no retry, and no warning that one is coming
            delay = self._backoff(attempts, retry_after)
            log.warning(
                "%s: attempt %d of %d failed (%s); retrying in %.1f s",
                method,
                attempts,
                self.settings.max_retries + 1,
                describe(reply),
                delay,
            )
            if self._closed.wait(delay):
                break
        reply = reply.with_attempts(attempts)
        if expect and not reply.ok:
            error = FatalCallError if reply.kind is Kind.FATAL else ConvioError
            raise error(f"{method} failed: {describe(reply)}", reply)
        return reply

    def _attempt(self, method: str, body: bytes) -> tuple[Reply, float | None]:
        """One request, when the concurrency limit and the pacing let it start."""
        if not self.concurrency.acquire(self._closed):
            return transient("not sent: the client was closed"), None
        started = answered = None
        pushed_back = False
        try:
            if self.budget is not None:
                self.budget.take()
            self._pacer.wait(self._closed)  # a paced wait is not latency
            with self._calls_lock:
                self.calls[method] += 1
            started = self.concurrency.now()
            try:
                response: Response | TransportError = self._transport.send(body)
            except TransportError as exc:
                response = exc
            answered = self.concurrency.now()  # reading the answer is our CPU, not latency
            reply, retry_after, pushed_back = self._judge(response, ROOTS.get(method))
            if reply.kind is Kind.FATAL and self.close_on_fatal:
                self._closed.set()  # before the slot is handed on
        finally:
            self.concurrency.release(started, answered, pushed_back=pushed_back)
        return reply, retry_after

    def _judge(
        self, response: Response | TransportError, expected_root: str | None
    ) -> tuple[Reply, float | None, bool]:
        """The reply, the server's Retry-After, and whether the site pushed back."""
        if isinstance(response, TransportError):
            if response.fatal:
                return Reply(Kind.FATAL, response.message), None, False
            return transient(response.message, maybe_written=response.maybe_sent), None, True
        pushed_back = response.status == 429 or response.status >= 500
        if len(response.body) > MAX_ANSWER_BYTES:
            limit = MAX_ANSWER_BYTES // (1024 * 1024)
            return transient(f"answer larger than {limit} MB", response.status), None, pushed_back
        reply = read_answer(response.status, response.body, expected_root)
        pushed_back = pushed_back or reply.code in BACK_PRESSURE_CODES
        if reply.ok and expected_root in WRITE_ROOTS and not reply.cons_id:
            said = str((reply.body or {}).get("message") or "nothing")
            reply = transient(f"Convio's answer named no cons_id ({said})", maybe_written=True)
        # A server may echo the request, secrets included.
        if self._redactor.found_in(reply.message) or self._redactor.found_in(reply.body):
            reply = replace(
                reply,
                message=self._redactor.text(reply.message),
                body=self._redactor.value(reply.body),
            )
        return reply, _retry_after(response.retry_after), pushed_back

    def _find_created(self, params: Mapping[str, str]) -> Reply | None:
        """After a create whose answer was lost: its outcome, or None if it wrote nothing.

        A create is not safe to resend (on a site without unique emails it would make a
        second record), so getUser asks whether the lost call created the record.
        """
        name = next((n for n in ("member_id", "primary_email") if params.get(n)), None)
        if name is None:
            return transient(f"{LOST}, and the record has no member_id or email to look it up by")
        lookup = self.call("getUser", {name: params[name]})
        if lookup.ok and lookup.cons_id:
            message = f"New user added ({LOST}; getUser found the new record by {name})"
            body = {"cons_id": lookup.cons_id, "message": message}
            return Reply(Kind.OK, message, None, ROOTS["create"], body)
        if lookup.code == "16":
            return None
        if lookup.code in ("8", "15"):
            text = f"{LOST}, and several records now have this {name}; not created again"
            return Reply(Kind.RECORD, text, lookup.code)
        why = describe(lookup)
        return transient(f"{LOST}, and getUser could not tell if it was written ({why})")

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        cap = self.settings.max_backoff_seconds
        if retry_after is not None:
            return min(retry_after, cap)
        exponential = min(cap, self.settings.backoff_seconds * 2.0 ** (attempt - 1))
        return exponential * (0.5 + random.random() / 2)  # noqa: S311 - jitter, not secrecy


def describe(reply: Reply) -> str:
    """One line for logs and results: the code and message, or what went wrong."""
    text = f"code {reply.code}: {reply.message}" if reply.code else reply.message or "no message"
    hint = lookup(reply.code).hint if reply.code else ""
    return f"{text} ({hint})" if hint else text


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    if re.fullmatch(r"\s*[0-9]+\s*", value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
