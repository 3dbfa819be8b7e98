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
from actors.llm import ChatRequest, Completion, Usage
from actors.orchestration.budget._ledger import SpendScope
from actors.orchestration.budget._messages import Release, Reservation, Reserve, Settle

__all__ = [
    "budgeted_chat",
    "estimate_prompt_tokens",
    "failed_usage",
    "settle_failure",
    "tell_budget",
]

_BYTES_PER_TOKEN = 3
"""ASCII: generous on purpose (English runs ~4 bytes a token, code ~3)."""
_WIDE_BYTES_PER_TOKEN = 2
"""Other scripts: a CJK character is 3 UTF-8 bytes and ~1 to 1.5 tokens."""
_PER_MESSAGE = 4
"""Tokens a chat template adds around each message."""


def _text_tokens(text: str) -> int:
    size = len(text)
    wide = len(text.encode()) - size  # extra bytes of the non-ASCII characters
    if wide <= 0:
        return math.ceil(size / _BYTES_PER_TOKEN)
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    other_bytes = size - ascii_chars + wide
    return math.ceil(ascii_chars / _BYTES_PER_TOKEN + other_bytes / _WIDE_BYTES_PER_TOKEN)


def estimate_prompt_tokens(request: ChatRequest) -> int:
    """A cheap upper estimate of the prompt's tokens (no tokenizer: microseconds).

    ASCII at 3 bytes a token, other text at 2 bytes a token, plus a few tokens per
    message and the tools' schemas: tokenizers average about 4 bytes a token on
    English and 3 on code or CJK text, so this is above the real count for ordinary
    text, by a margin of roughly a quarter to a third. The Budget then calibrates it
    per model with the servers' own counts (see :class:`~actors.orchestration.Budget`),
    and the real count settles the call.
    """
    tokens = 0
    for message in request.messages:
        tokens += _text_tokens(message.content) + _text_tokens(message.name or "")
        for call in message.tool_calls:
            tokens += math.ceil(len(msgspec.json.encode(call)) / _BYTES_PER_TOKEN)
    for tool in request.tools:
        tokens += math.ceil(len(msgspec.json.encode(tool)) / _BYTES_PER_TOKEN)
    return tokens + _PER_MESSAGE * len(request.messages)


def failed_usage(failure: Failure, request: ChatRequest) -> Usage | None:
    """What a failed call used, when the server did work before it failed; else ``None``.

    The server did work when it reported usage before the failure (``input_tokens`` /
    ``output_tokens`` in the failure's details), or when output arrived: text
    (``received_chars``) or a tool call begun (``received_tool_calls``). Tokens it did
    not report are estimated: the prompt as at admission, the output from the text
    received (at least a token per tool call begun: its arguments are not kept).
    """
    details = failure.details
    reported_in = _int(details.get("input_tokens"))
    reported_out = _int(details.get("output_tokens"))
    received = _int(details.get("received_chars")) or 0
    calls = _int(details.get("received_tool_calls")) or 0
    text = details.get("received_text", "")
    if not received and not calls and reported_in is None and reported_out is None:
        return None
    out_estimate = _text_tokens(text) if text else math.ceil(received / _BYTES_PER_TOKEN)
    out_estimate = max(out_estimate, calls)
    return Usage(
        input_tokens=reported_in if reported_in is not None else estimate_prompt_tokens(request),
        output_tokens=max(reported_out or 0, out_estimate),
        estimated=reported_in is None,
    )


def _int(value: str | None) -> int | None:
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def budgeted_chat(
    host: Ref[Any],
    request: ChatRequest,
    *,
    budget: Ref[Any] | None,
    scope: SpendScope,
    timeout: float | None = None,
    exact_tokens: bool | None = None,
) -> Completion | Failure:
    """Ask ``host`` for ``request`` within ``budget``; the answer or a typed failure.

    Without a budget this is a plain ask. With one, the worst case is reserved first
    (a ``budget_exceeded`` failure comes back before any request is sent), the request
    goes out with ``max_tokens`` (and, for a model priced per GPU-second, its deadline)
    bounded by the reservation, and the reservation is
    settled to the real cost, or released if the call failed or was cancelled.
    ``exact_tokens``: have the server count the prompt for the reservation (where the
    host has a count route); ``None``: as the Budget is configured.
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
        request=request,
        exact=exact_tokens,
    )
    try:
        held: Reservation = await budget.ask_async(reserve)
    except AskError as exc:
        return exc.failure
    if request.max_tokens != held.max_tokens:
        request = msgspec.structs.replace(request, max_tokens=held.max_tokens)
    if held.seconds is not None:
        request, timeout = _within(request, timeout, held.seconds)
    started = time.perf_counter()
    try:
        completion: Completion = await host.ask_async(request, timeout=timeout)
    except AskError as exc:
        outcome = settle_failure(
            held.id, exc.failure, request, host=host.name, scope=scope, started=started
        )
        await tell_budget(budget, outcome)
        return exc.failure
    except asyncio.CancelledError:
        budget.tell(Release(id=held.id, reason="cancelled"))
        raise
    await tell_budget(
        budget,
        Settle(
            id=held.id,
            usage=completion.usage,
            seconds=completion.latency_s or time.perf_counter() - started,
            cost_usd=completion.cost_usd,
            host=host.name,
            model=request.model,
            run_id=scope.run_id,
            reactor=scope.reactor,
            agent=scope.agent,
        ),
    )
    return completion


def _within(
    request: ChatRequest, timeout: float | None, seconds: float
) -> tuple[ChatRequest, float | None]:
    """``request`` and ``timeout`` bounded by the wall time a reservation counted.

    A model priced per GPU-second costs what its call lasts: one that outlived the
    time reserved for it would cost more than is held, so it must end by then (the
    host enforces the request's deadline and aborts the call).
    """
    if timeout is None or timeout > seconds:
        timeout = seconds
    deadline = time.time() + seconds
    if request.deadline is None or request.deadline > deadline:
        request = msgspec.structs.replace(request, deadline=deadline)
    return request, timeout


def settle_failure(
    rid: str,
    failure: Failure,
    request: ChatRequest,
    *,
    host: str,
    scope: SpendScope,
    started: float,
) -> Settle | Release:
    """What to tell the Budget of a failed call: charge what it used, or release it."""
    usage = failed_usage(failure, request)
    if usage is None:
        return Release(id=rid, reason=failure.kind.value)
    return Settle(
        id=rid,
        usage=usage,
        seconds=time.perf_counter() - started,
        host=host,
        model=request.model,
        run_id=scope.run_id,
        reactor=scope.reactor,
        agent=scope.agent,
        failed=True,
    )


async def tell_budget(
    budget: Ref[Any], message: Settle | Release, *, patience: float = 10.0
) -> None:
    """Tell the Budget how a call ended, waiting out a restart (up to ``patience`` s).

    A message told while the Budget restarts would be a dead letter: the reservation
    would then stay held until it expires, and the spend would go uncounted.
    """
    if budget.tell_if_alive(message):
        return
    give_up = time.monotonic() + patience
    while time.monotonic() < give_up:
        await asyncio.sleep(0.01)
        if budget.tell_if_alive(message):
            return
    budget.tell(message)  # recorded as a dead letter


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
