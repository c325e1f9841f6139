"""One SRConsAPI request, from its parameters to its answer: auth chain, method, errors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from target_convio.emulator.errors import ApiError
from target_convio.emulator.methods import Methods, Params, Result
from target_convio.emulator.site import TRUE_WORDS, printable

# Every other method answers only POST (Convio documents HTTP 405 "Bad Method").
GET_ALLOWED = frozenset({"listUserFields", "listUserFieldChoices"})


@dataclass(frozen=True)
class Answer:
    """An API answer before encoding."""

    status: int
    root: str
    body: dict[str, Any]
    fmt: str

    @property
    def error_code(self) -> int | None:
        return int(self.body["code"]) if self.root == "errorResponse" else None


def answer_format(params: Mapping[str, str]) -> str:
    return "json" if params.get("response_format", "").lower() == "json" else "xml"


def error_answer(params: Mapping[str, str], error: ApiError, status: int = 403) -> Answer:
    """An errorResponse; HTTP 200 instead when the caller set suppress_response_codes."""
    if params.get("suppress_response_codes", "").strip().lower() in TRUE_WORDS:
        status = 200
    body = {"code": error.code, "message": error.message}
    return Answer(status, "errorResponse", body, answer_format(params))


def answer(methods: Methods, params: Mapping[str, str], http_method: str, client_ip: str) -> Answer:
    """The answer to one call; checks run in the order docs/emulator.md lists."""
    try:
        handler = _authorize(methods, params, client_ip)
        if http_method != "POST" and params["method"] not in GET_ALLOWED:
            return error_answer(params, ApiError(405), status=405)
        root, body = handler(params)
    except ApiError as error:
        return error_answer(params, error)
    return Answer(200, root, body, answer_format(params))


def _authorize(
    methods: Methods, params: Mapping[str, str], client_ip: str
) -> Callable[[Params], Result]:
    site = methods.site
    if params.get("api_key") not in site.api_keys:
        raise ApiError(2)
    if not site.ip_allowed(client_ip):
        raise ApiError(4)
    if not site.authenticate(params.get("login_name"), params.get("login_password")):
        raise ApiError(3)
    if params.get("v") != "1.0":
        raise ApiError(10, "Parameter 'v' must be 1.0.")
    name = params.get("method", "")
    if not name:
        raise ApiError(6)
    handler = methods.table.get(name)
    if handler is None:
        raise ApiError(17, f"Method '{printable(name)}' is not known.")
    return handler
