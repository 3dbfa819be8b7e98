"""Tracebacks for log lines, rendered here: plain text, never a frame's local variables.

A crash log line that hands the exception itself to structlog (``exc_info``) is drawn by
whatever renderer the program configured; with ``rich`` installed, structlog's default
console renderer shows every frame's locals, and a handler's locals may hold an API key.
The runtime passes the traceback as text under ``exception`` instead, which every
renderer (console or JSON) prints as it is.
"""

from __future__ import annotations

import traceback

__all__ = ["plain_traceback"]


def plain_traceback(exc: BaseException) -> str:
    """``exc``'s traceback as the interpreter prints it (causes included), no locals."""
    return "".join(traceback.format_exception(exc)).rstrip("\n")
