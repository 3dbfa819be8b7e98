"""Errors of the tools package.

The tree::

    ToolDefinitionError (ValueError)   a function, model or MCP tool cannot be a tool
    ToolError                          one tool call did not produce a result
    ├── UnknownToolError               the model named a tool it was not offered
    ├── ToolArgumentError              the arguments failed validation (names the fields)
    ├── ToolPermissionError            a policy denied the call (``permission_denied``)
    ├── ToolTimeoutError               the call ran past the tool's timeout
    ├── ToolOutputError                the tool returned something its return type rejects
    ├── ToolRateLimitedError           the tool's rate limit is spent for now
    └── ToolRetry                      raised by a tool: "call me again, corrected"
    ToolLoopError                      a ``tools`` loop ended without an answer
    ApprovalError (ValueError)         an approval names no pending call, or the wrong payload

Every :class:`ToolError` has a ``kind`` (what the model and the audit log see) and says
whether the model may correct the call (``correctable``): argument errors, unknown tools
and :class:`ToolRetry` spend the tool's retry budget; denials are final.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "ApprovalError",
    "ToolArgumentError",
    "ToolDefinitionError",
    "ToolError",
    "ToolLoopError",
    "ToolOutputError",
    "ToolPermissionError",
    "ToolRateLimitedError",
    "ToolRetry",
    "ToolTimeoutError",
    "UnknownToolError",
]


class ToolDefinitionError(ValueError):
    """A function, pydantic model or MCP tool cannot be registered as a tool."""


class ToolError(Exception):
    """A tool call did not produce a result.

    Attributes:
        kind: What went wrong, as the model and the audit log see it.
        tool: The tool's name.
        correctable: Whether the model may try again with a corrected call.
    """

    kind = "error"
    correctable = False

    def __init__(self, message: str, *, tool: str = "") -> None:
        super().__init__(message)
        self.tool = tool


class UnknownToolError(ToolError):
    """The model called a tool it was not offered (the message lists those it was)."""

    kind = "unknown_tool"
    correctable = True


class ToolArgumentError(ToolError):
    """The arguments failed validation.

    Attributes:
        fields: The dotted path of each field at fault (``"path"``, ``"items.0.qty"``).
    """

    kind = "invalid_arguments"
    correctable = True

    def __init__(self, message: str, *, tool: str = "", fields: Sequence[str] = ()) -> None:
        super().__init__(message, tool=tool)
        self.fields = tuple(fields)


class ToolPermissionError(ToolError):
    """A policy denied the call; the model hears ``permission_denied`` and why."""

    kind = "permission_denied"


class ToolTimeoutError(ToolError):
    """The call ran past the tool's timeout (a thread running a plain ``def`` is not stopped)."""

    kind = "timeout"
    correctable = True


class ToolOutputError(ToolError):
    """The tool returned a value its declared return type rejects (the tool's fault)."""

    kind = "invalid_output"


class ToolRateLimitedError(ToolError):
    """The tool's rate limit is spent; the model may try again later in the loop."""

    kind = "rate_limited"
    correctable = True


class ToolRetry(ToolError):  # noqa: N818 - raised as a request ("retry"), not an error
    """Raise it from a tool to have the model call it again, corrected (spends the retry budget).

    Example::

        @tool
        def read(path: str) -> str:
            if not path.endswith(".md"):
                raise ToolRetry("only .md files can be read; pass a path ending in .md")
    """

    kind = "retry"
    correctable = True


class ToolLoopError(Exception):
    """A ``tools`` loop ended without an answer.

    Attributes:
        reason: ``max_turns``, ``budget``, ``retries`` (a tool's retry budget is spent)
            or ``model`` (the model failed).
    """

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class ApprovalError(ValueError):
    """A decision names no pending call, or a call decided already, or arguments that do not fit."""
