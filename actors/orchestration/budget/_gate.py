"""One model call under a budget: reserve, send with a bounded ``max_tokens``, settle or release.

Used by the ``ask`` step (when the engine has a Budget) and by each link of a fallback
chain, so every model call the engine makes is admitted the same way.
"""

from __future__ import annotations

import asyncio
import math
import time
from typing import Any

import msgspec

from actors import AskError, Failure, FailureKind, Ref
from actors.llm import ChatRequest, Completion
from actors.orchestration.budget._ledger import SpendScope
from actors.orchestration.budget._messages import Release, Reservation, Reserve, Settle

__all__ = ["budgeted_chat", "estimate_prompt_tokens"]

_BYTES_PER_TOKEN = 3
"""Generous on purpose: English runs ~4 bytes a token, code and other scripts fewer."""
_PER_MESSAGE = 4
"""Tokens a chat template adds around each message."""


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A cheap upper estimate of the prompt's tokens (no tokenizer: microseconds).

    Bytes / 3 plus a few tokens per message and the tools' schemas: a reservation
    made from it is rarely below the real count, and the real count settles it.
    """
    size = 0
    for message in request.messages:
        size += len(message.content.encode()) + len(message.name or "")
        for call in message.tool_calls:
            size += len(msgspec.json.encode(call))
    for tool in request.tools:
        size += len(msgspec.json.encode(tool))
    tokens = math.ceil(size / _BYTES_PER_TOKEN)
    return tokens + _PER_MESSAGE * len(request.messages)


async def budgeted_chat(
    host: Ref[Any],
    request: ChatRequest,
    *,
    budget: Ref[Any] | None,
    scope: SpendScope,
    timeout: float | None = None,
) -> Completion | Failure:
    """Ask ``host`` for ``request`` within ``budget``; the answer or a typed failure.

    Without a budget this is a plain ask. With one, the worst case is reserved first
    (a ``budget_exceeded`` failure comes back before any request is sent), the request
    goes out with ``max_tokens`` bounded by the reservation, and the reservation is
    settled to the real cost, or released if the call failed or was cancelled.
    """
    if budget is None:
        try:
            answer: Completion = await host.ask_async(request, timeout=timeout)
        except AskError as exc:
            return exc.failure
        return answer
    seconds = timeout if timeout is not None else _remaining(request)
    reserve = Reserve(
        host=host.name,
        model=request.model,
        prompt_tokens=estimate_prompt_tokens(request),
        max_tokens=request.max_tokens,
        seconds=seconds,
        run_id=scope.run_id,
        reactor=scope.reactor,
        agent=scope.agent,
    )
    try:
        held: Reservation = await budget.ask_async(reserve)
    except AskError as exc:
        return exc.failure
    if request.max_tokens != held.max_tokens:
        request = msgspec.structs.replace(request, max_tokens=held.max_tokens)
    started = time.perf_counter()
    try:
        completion: Completion = await host.ask_async(request, timeout=timeout)
    except AskError as exc:
        budget.tell(Release(id=held.id, reason=exc.failure.kind.value))
        return exc.failure
    except asyncio.CancelledError:
        budget.tell(Release(id=held.id, reason="cancelled"))
        raise
    budget.tell(
        Settle(
            id=held.id,
            usage=completion.usage,
            seconds=completion.latency_s or time.perf_counter() - started,
            cost_usd=completion.cost_usd,
        )
    )
    return completion


def _remaining(request: ChatRequest) -> float | None:
    if request.deadline is None:
        return None
    return max(0.0, request.deadline - time.time())


def budget_failure(message: str, source: str, **details: str) -> Failure:
    """A ``budget_exceeded`` failure (the call was not sent)."""
    return Failure(
        kind=FailureKind.BUDGET_EXCEEDED,
        message=message,
        source=source,
        details={"sent": "false", **details},
    )
