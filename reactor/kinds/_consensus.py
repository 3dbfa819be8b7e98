"""Running a ``consensus`` step: render the prompt and ask the engine's Consensus coordinator.

The coordinator (one per engine) fans the request out, aggregates and answers a
:class:`~actors.orchestration.consensus.ConsensusResult` or a failure keeping each
member's error. What a low consensus does depends on the spec's ``on_low``:

* ``flag``: the result, flagged (``low_consensus``), is the step's value;
* ``fail``: the step fails ``low_consensus`` (its retries and ``compensate`` apply);
* ``halt``: the run halts for a person. Before asking the members again, a resumed step
  looks for a human's answer in its review stream (:func:`answer_review` writes one);
  if there is one, that answer is the step's result (``method="human"``).
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from actors import AskError, Failure, Ref
from actors.llm import ChatRequest
from actors.orchestration.consensus import (
    ConsensusRequest,
    ConsensusResult,
    HumanAnswer,
    review_stream,
)
from actors.store import Journal
from dsl import ConsensusImpl, Halt
from reactor.kinds._ask import spend_scope
from reactor.run import Attempt, Cancellable, Err, Ok, Outcome, StepExecutor, StepFailure

__all__ = ["ConsensusExecutor", "answer_review"]

_SLACK_S = 1.0
"""Time the coordinator gets beyond its members' deadlines to aggregate and answer."""


def answer_review(
    journal: Journal, run_id: str, step: str, answer: Any, *, reviewer: str = "", note: str = ""
) -> None:
    """Give a halted consensus step a person's answer; then ``engine.resume(run_id)``.

    Args:
        journal: The engine's journal (``engine.journal``).
        run_id: The halted run.
        step: The consensus step that halted it.
        answer: The answer the step returns instead of the members' consensus.
        reviewer: Who answered.
        note: Why.
    """
    data = HumanAnswer(answer=answer, reviewer=reviewer, note=note)
    journal.append(review_stream(run_id, step), "HumanAnswer", data)


class ConsensusExecutor(StepExecutor):
    """Asks the Consensus coordinator; routes a low consensus by the spec's ``on_low``."""

    def start(self, attempt: Attempt[ConsensusImpl]) -> Cancellable | None:
        """Render the prompt and ask; without a coordinator, or with a bad placeholder, fail."""
        impl = attempt.impl
        coordinator = attempt.services.consensus
        if coordinator is None:
            attempt.fail(StepFailure("not_found", "this engine has no Consensus coordinator"))
            return None
        try:
            prompt = impl.prompt.format_map(attempt.arguments)
            system = impl.system.format_map(attempt.arguments) if impl.system else None
        except (LookupError, AttributeError, ValueError) as exc:
            attempt.fail(StepFailure("bad_argument", str(exc)))
            return None
        spec = impl.spec
        request = ChatRequest.prompt(
            "",
            prompt,
            system=system,
            temperature=spec.temperature,
            max_tokens=spec.max_tokens,
            options=dict(impl.options),
        )
        scope = spend_scope(attempt)
        timeout = attempt.spec.timeout
        if timeout is None:
            rounds = (
                max(spec.rounds, spec.layers + 1) if spec.method in ("debate", "synthesis") else 2
            )
            timeout = spec.member_timeout_s * rounds + _SLACK_S
        message = ConsensusRequest(
            request=request,
            spec=spec,
            run_id=attempt.run_id,
            step=attempt.spec.name,
            reactor=scope.reactor,
            agent=scope.agent,
            deadline=time.time() + timeout,
        )
        if spec.on_low == "halt":
            journal = Journal(attempt.services.store)
            stream = review_stream(attempt.run_id, attempt.spec.name)
            return attempt.run(_reviewed(coordinator, message, journal, stream))
        attempt.ask(coordinator, message)
        return None

    def outcome(self, attempt: Attempt[Any], reply: Any) -> Outcome:
        """A result flagged low fails the step when ``on_low`` is ``fail``."""
        if isinstance(reply, Failure):
            return Err(AskError(reply))
        if isinstance(reply, Err):
            return reply
        value = reply.value if isinstance(reply, Ok) else reply
        spec = attempt.impl.spec
        if isinstance(value, ConsensusResult) and value.low_consensus and spec.on_low == "fail":
            return Err(StepFailure("low_consensus", _low(value)))
        return Ok(value)


def _low(result: ConsensusResult) -> str:
    return (
        f"low consensus: confidence {result.confidence:.3f} < {result.threshold} "
        f"({result.answered} answers, {result.agreement:.0%} agreeing on {result.text[:80]!r})"
    )


async def _reviewed(
    coordinator: Ref[Any], message: ConsensusRequest, journal: Journal, stream: str
) -> ConsensusResult | Halt:
    """A human's answer if there is one; else the consensus, or ``Halt`` when it is low."""
    entries = await journal.read_async(stream)
    if entries:
        human = msgspec.json.decode(entries[-1].data, type=HumanAnswer)
        text = (
            human.answer
            if isinstance(human.answer, str)
            else msgspec.json.encode(human.answer).decode()
        )
        return ConsensusResult(
            answer=human.answer,
            text=text,
            output=message.spec.output,
            method="human",
            confidence=1.0,
            agreement=1.0,
            threshold=message.spec.threshold,
            note=f"answered by {human.reviewer or 'a person'}"
            + (f": {human.note}" if human.note else ""),
        )
    result: ConsensusResult = await coordinator.ask_async(message)
    if result.low_consensus:
        return Halt(f"{_low(result)}: needs a human's answer (answer_review, then resume)")
    return result
