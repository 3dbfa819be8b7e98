"""Outcome building: the result of a poll, its failure with every member's real error, its span.

Pure but for the span: the Consensus actor (``_actor``) decides, these functions say it.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec
from opentelemetry import trace

from actors import Failure, FailureKind
from actors.llm import Completion
from actors.orchestration.consensus._aggregate import Verdict
from actors.orchestration.consensus._conclude import Assessment
from actors.orchestration.consensus._extract import extract
from actors.orchestration.consensus._messages import (
    ConsensusResult,
    LowConsensus,
    MemberAnswer,
)
from actors.orchestration.consensus._poll import Poll

__all__ = ["low_consensus", "members_failure", "result_of", "span_ended"]


def result_of(  # noqa: PLR0917 - the poll's parts, passed on
    poll: Poll,
    answers: list[MemberAnswer],
    needed: int,
    verdict: Verdict,
    assessment: Assessment,
    clustering: str,
    synthesis: tuple[str, Completion] | None,
) -> ConsensusResult:
    """The :class:`ConsensusResult` of ``answers`` (the aggregated ones) under ``verdict``."""
    spec = poll.spec
    members, labels, cost = _marked(poll.finished(), answers, verdict)
    answer = verdict.answer
    text = answers[verdict.representative].text if verdict.representative is not None else ""
    aggregated_by = ""
    if synthesis is not None:
        aggregated_by, completion = synthesis
        text = completion.content
        try:
            extracted = extract(text, spec.output, how=spec.extract, choices=spec.choices)
        except Exception:  # noqa: BLE001 - the synthesis is then the answer as it is
            extracted = None
        answer = extracted if extracted is not None else text
        if completion.cost_usd is not None:
            cost = completion.cost_usd if cost is None else cost + completion.cost_usd
    if not text and answer is not None:
        text = answer if isinstance(answer, str) else msgspec.json.encode(answer).decode()
    return ConsensusResult(
        answer=answer,
        text=text,
        output=spec.output,
        method=verdict.method if spec.method not in ("synthesis", "debate") else spec.method,
        confidence=round(assessment.confidence, 6),
        agreement=round(assessment.agreement, 6),
        entropy=round(assessment.entropy, 6),
        spread=assessment.spread,
        relative_spread=assessment.relative_spread,
        low_consensus=assessment.low,
        threshold=spec.threshold,
        members=members,
        outliers=tuple([labels[i] for i in verdict.outliers]) if verdict.outliers else (),
        clusters=tuple([tuple([labels[i] for i in g]) for g in verdict.groups]),
        fields=dict(verdict.fields) if verdict.fields else {},
        asked=poll.asked,
        answered=len(answers),
        quorum=needed,
        degraded=len(answers) < needed or bool(poll.fallback),
        fallback=poll.fallback,
        stopped_early=poll.stopped_early,
        added=poll.added,
        clustering=clustering,
        aggregated_by=aggregated_by,
        note=poll.note,
        cost_usd=cost,
        latency_s=time.perf_counter() - poll.started,
    )


def _marked(
    finished: list[MemberAnswer], answers: list[MemberAnswer], verdict: Verdict
) -> tuple[tuple[MemberAnswer, ...], list[str], float | None]:
    """Every answer so far, the aggregated ones marked; their labels; the total cost.

    Each aggregated answer (``answers``, which indices in ``verdict`` refer to) is marked:
    whether it agrees, whether it is an outlier, its cluster. ``answers`` come from the
    last round in the order asked, so one walk over ``finished`` meets them in turn;
    should one not be met so, the rest are found by identity instead. The cost is the
    sum of the priced answers (``None``: none was priced).
    """
    support = verdict.support
    outliers = verdict.outliers
    cluster: list[int | None] = [None] * len(answers)
    for number, group in enumerate(verdict.groups):
        for index in group:
            cluster[index] = number
    replace = msgspec.structs.replace
    count = len(answers)
    labels = [a.member for a in answers]
    members: list[MemberAnswer] = []
    cost: float | None = None
    index = 0
    for each in finished:
        if index < count and each is answers[index]:
            members.append(
                replace(
                    each,
                    agrees=index in support,
                    outlier=index in outliers,
                    cluster=cluster[index],
                )
            )
            index += 1
        else:
            members.append(each)
        if each.cost_usd is not None:
            cost = each.cost_usd if cost is None else cost + each.cost_usd
    if index < count:  # not met in order: marked by identity
        at = {id(a): i for i, a in enumerate(answers)}
        for position, answer in enumerate(members):
            i = at.get(id(answer), -1)
            if i >= index:
                members[position] = replace(
                    answer, agrees=i in support, outlier=i in outliers, cluster=cluster[i]
                )
    return tuple(members), labels, cost


def members_failure(
    finished: list[MemberAnswer], needed: int, got: int
) -> tuple[FailureKind, str, dict[str, str]]:
    """Too few usable answers: the commonest member error's kind, a message, every error."""
    kinds = [a.error_kind for a in finished if a.error_kind]
    kind = FailureKind.INVALID_RESPONSE
    if kinds:
        common = max(set(kinds), key=lambda k: (kinds.count(k), k))
        try:
            kind = FailureKind(common)
        except ValueError:
            kind = FailureKind.INTERNAL
    if kind is FailureKind.CANCELLED:
        kind = FailureKind.TIMEOUT  # members cut off by the quorum deadline
    unusable = [a for a in finished if not a.ok or a.value is None]
    errors = "; ".join(f"{a.member}: {a.error_kind or 'no answer'}: {a.error}" for a in unusable)
    message = (
        f"consensus: {got} usable answer(s), the quorum needs {needed}"
        f" ({errors or 'no member answered'})"
    )
    details = {a.member: f"{a.error_kind or 'unusable'}: {a.error}" for a in unusable}
    return kind, message, details


def low_consensus(poll: Poll, result: ConsensusResult) -> LowConsensus:
    """The event a result under its threshold publishes."""
    message = poll.message
    return LowConsensus(
        run_id=message.run_id,
        step=message.step,
        confidence=result.confidence,
        threshold=result.threshold,
        answer=result.text[:500],
        agreement=result.agreement,
        answered=result.answered,
    )


def span_ended(span: trace.Span, result: ConsensusResult | None, failure: Failure | None) -> None:
    """End a poll's span with its figures and a member event each, or its failure."""
    if result is not None:
        attributes: dict[str, Any] = {
            "reactor.consensus.confidence": result.confidence,
            "reactor.consensus.agreement": result.agreement,
            "reactor.consensus.entropy": result.entropy,
            "reactor.consensus.low": result.low_consensus,
            "reactor.consensus.answered": result.answered,
            "reactor.consensus.asked": result.asked,
            "reactor.consensus.answer": result.text[:200],
            "reactor.consensus.outliers": list(result.outliers),
        }
        span.set_attributes(attributes)
        for answer in result.members:
            span.add_event(
                "consensus.member",
                {
                    "member": answer.member,
                    "ok": answer.ok,
                    "agrees": answer.agrees,
                    "outlier": answer.outlier,
                    "error": answer.error_kind or "",
                    "latency_s": answer.latency_s,
                },
            )
    if failure is not None:
        span.set_attribute("error.type", failure.kind.value)
        span.set_status(trace.StatusCode.ERROR, failure.message)
    span.end()
