"""The daemon's errors: one JSON shape for every failed request.

Every error response is ``{"error": {"code": ..., "message": ..., "field": ...}}`` with a
stable ``code`` (a client branches on it, never on the message) and, when one input is
at fault, ``field`` as a path into the request (``tasks[2].type``, ``inputs.topic``).

::

    ApiError (code, status, field)
    ├── bad_request        400  the body or a parameter is invalid
    ├── unauthorized       401  no token, or the wrong one
    ├── forbidden          403  a browser origin that is not allowed
    ├── not_found          404  no such agent, run, reactor
    ├── method_not_allowed 405  the path has no such method (``Allow`` lists those it has)
    ├── conflict           409  the run exists, ended, or its plan changed
    ├── internal           500  a failure no handler foresaw (logged with its traceback)
    └── unavailable        503  the daemon is stopping, or nothing can serve the request
"""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["ApiError", "ErrorBody", "ErrorDetail"]

STATUS: Final[dict[str, int]] = {
    "bad_request": 400,
    "unauthorized": 401,
    "forbidden": 403,
    "not_found": 404,
    "method_not_allowed": 405,
    "conflict": 409,
    "internal": 500,
    "unavailable": 503,
}


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What went wrong: a stable code, a message for people, the field at fault."""

    code: str
    message: str
    field: str | None = None


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """The body of every error response."""

    error: ErrorDetail


class ApiError(Exception):
    """A request the daemon refuses; becomes an :class:`ErrorBody` response.

    Args:
        code: One of the codes in the module docstring.
        message: What is wrong, naming the thing (agent, run, reactor, step, model).
        field: The request field at fault, as a path.
    """

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    @property
    def status(self) -> int:
        """The HTTP status for :attr:`code`."""
        return STATUS.get(self.code, 500)

    def body(self) -> ErrorBody:
        """The JSON body."""
        return ErrorBody(error=ErrorDetail(code=self.code, message=self.message, field=self.field))
