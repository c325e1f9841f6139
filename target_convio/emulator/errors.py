"""Convio error codes as the emulator answers them (Convio's published list of codes)."""

from __future__ import annotations

MESSAGES: dict[int, str] = {
    1: "Unable to process request.",
    2: "Incorrect API key.",
    3: "Authentication or authorization failed.",
    4: "The request was made from an IP address that is not allowed to call the requested method.",
    5: "The requested method can only be called from a trusted source.",
    6: "No method was specified in the request.",
    7: "Single sign-on failed.",
    8: "The request for a single constituent matched several records.",
    10: "Required fields missing.",
    11: "Cannot add the new user because there is already a matching record.",
    12: "Specified user name is already in use.",
    13: "Cannot add or update the user because there is already a record having the same "
    "email address and the site is configured to disallow duplicate email addresses.",
    14: "The requested method is not allowed by the caller.",
    15: "Cannot update the user because multiple records match the search criteria.",
    16: "Cannot access the user because no records match the search criteria.",
    17: "No method was requested or the requested method does not exist.",
    18: "The requested field was not found.",
    19: "The members of a group could not be retrieved.",
    22: "Validation error.",
    23: "Input size error.",
    24: "The address correction service failed.",
    35: "Input contains invalid characters.",
    405: 'Bad HTTP method. Requests must be made via the "post" HTTP method.',
}


class ApiError(Exception):
    """An `errorResponse`: a Convio error code and its message."""

    def __init__(self, code: int, detail: str | None = None, *, whole: bool = False) -> None:
        """`detail` follows the code's message, or with `whole` is the entire message."""
        self.code = code
        self.message = MESSAGES.get(code, "Error.")
        if detail:
            self.message = detail if whole else f"{self.message} {detail}"
        super().__init__(f"{code}: {self.message}")
