"""What the Consensus coordinator is asked and answers, and what it publishes.

* :class:`ConsensusSpec`: how to reach consensus (members, quorum, aggregator, threshold,
  adaptive stopping); a definition, checked once by :func:`spec_problems`;
* :class:`ConsensusRequest`: one question for the members; answered with a
  :class:`ConsensusResult` (the answer, its confidence and flag, every member's answer
  or error, outliers, clusters, cost and latency), or a ``Failure`` whose details keep
  each member's real error;
* :class:`LowConsensus` (an event): a result's confidence fell below its threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from actors import Event, Message, Request
from actors.llm import ChatRequest, TaskType
from actors.orchestration.consensus._extract import Extractor, OutputType

__all__ = [
    "AGGREGATORS",
    "DEFAULT_AGGREGATOR",
    "Aggregator",
    "ConsensusRequest",
    "ConsensusResult",
    "ConsensusSpec",
    "LowConsensus",
    "Member",
    "MemberAnswer",
    "OnLow",
    "OnShort",
    "Quorum",
    "spec_problems",
]

Aggregator = str | Callable[[Sequence[Any]], Any]
"""An aggregator's name (:data:`AGGREGATORS`) or ``fn(values) -> Verdict | answer``."""

OnShort = Literal["degrade", "fail", "fallback"]
"""Fewer answers than the quorum: aggregate those there are, fail, or ask one fallback model."""

OnLow = Literal["flag", "fail", "halt"]
"""Low consensus: flag it in the result, fail the step, or halt the run for a human."""

AGGREGATORS: dict[str, tuple[str, ...]] = {
    "plurality": ("categorical",),
    "weighted": ("categorical",),
    "median": ("numeric",),
    "trimmed_mean": ("numeric",),
    "mad": ("numeric",),
    "fieldwise": ("structured",),
    "cluster": ("text", "categorical"),
    "synthesis": ("text", "categorical", "numeric", "structured"),
    "debate": ("text", "categorical", "numeric", "structured"),
}
"""Each named aggregator and the output types it serves."""

DEFAULT_AGGREGATOR: dict[str, str] = {
    "categorical": "weighted",
    "numeric": "mad",
    "structured": "fieldwise",
    "text": "cluster",
}
"""The aggregator an output type gets when none is named."""


class Member(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One member of a consensus: a model, at a temperature and seed of its own if given.

    The same model may be a member several times (self-consistency), told apart by its
    temperature or seed.

    Attributes:
        model: The model: a name, ``host/model`` or an alias.
        host: Its host, when the name alone is ambiguous.
        temperature: Its sampling temperature (default: the request's).
        seed: Its sampling seed (sent as the ``seed`` option).
        timeout_s: Its own deadline (default: the spec's ``member_timeout_s``).
        accuracy: Its known accuracy on this task type, 0 to 1 (a weighted vote's weight).
    """

    model: str
    host: str | None = None
    temperature: float | None = None
    seed: int | None = None
    timeout_s: float | None = None
    accuracy: float | None = None

    @property
    def label(self) -> str:
        """``host/model``, with ``@t`` and ``#seed`` when given: how results name it."""
        name = f"{self.host}/{self.model}" if self.host else self.model
        if self.temperature is not None:
            name += f"@t{self.temperature:g}"
        if self.seed is not None:
            name += f"#{self.seed}"
        return name


@dataclass(frozen=True, slots=True)
class Quorum:
    """How many answers are enough, how long to wait for them, and what fewer means.

    Attributes:
        min_answers: Answers needed (``None``: a majority of the members asked).
        wait_s: The quorum deadline, seconds from the start of a round: then the round
            ends with the answers in, and members still running are cancelled (``None``:
            each member's own deadline).
        on_short: Fewer answers than ``min_answers``: ``degrade`` (aggregate those
            there are, flagged ``degraded``), ``fail``, or ``fallback`` (ask ``fallback``).
        fallback: The one model asked when the quorum is short and ``on_short`` is
            ``fallback``.
    """

    min_answers: int | None = None
    wait_s: float | None = None
    on_short: OnShort = "degrade"
    fallback: str | None = None


@dataclass(frozen=True, slots=True)
class ConsensusSpec:
    """How a consensus is reached: checked once (:func:`spec_problems`), used per request.

    Attributes:
        members: The members; empty: chosen for diversity (different families and hosts
            first) among the catalog's chat models, best first by the Selector.
        count: How many members to choose when none are given (``None``: from the
            task's complexity, ``min_members`` to ``max_members``).
        min_members: The fewest members chosen for a trivial task.
        max_members: The most members: the complexity scale's top and the limit of
            adaptive growth.
        output: ``categorical``, ``numeric``, ``structured`` or ``text``.
        aggregator: A name in :data:`AGGREGATORS` or a function (default: by output).
        choices: The categories, for extraction (``A``, ``B``, ...; ``yes``, ``no``).
        classes: How many categories there are, for log-odds weights (default:
            ``len(choices)``, else 2).
        extract: How answers are pulled out of the text: a name (``last_number``,
            ``boxed``, ``first_line``, ``answer_line``, ``json``, ``text``) or a function.
        schema: The JSON Schema structured answers must fit.
        quorum: The quorum rule.
        threshold: Below this confidence the result is flagged low consensus.
        on_low: What a low consensus does to a step (``flag``, ``fail``, ``halt``).
        adaptive: Stop once the answer is decided (the remaining members cannot
            change it), and add members (up to ``max_members``, within the budget) when
            the answers in are not decisive.
        member_timeout_s: Each member's own deadline.
        accuracy: Known accuracies by member label or model (weighted votes).
        similarity: Free text: the cosine similarity that puts two answers in one cluster.
        lexical_similarity: Free text without embeddings: the difflib ratio that does.
        embedding_model: The embedding model for free text (``None``: the catalog's
            first; ``""``: none, lexical clustering).
        aggregator_model: Synthesis: the model that reads the proposers' answers.
        fallback_aggregator: Synthesis: the model used when the aggregator fails.
        layers: Synthesis: layers of proposers before the aggregator.
        rounds: Debate: rounds, the first one independent.
        task_type: The task type (history, weights, member choice); default inferred.
        policy: The Selector policy that ranks members chosen for diversity.
        temperature: Default sampling temperature of the members.
        max_tokens: Output token limit of each member call.
    """

    members: tuple[Member, ...] = ()
    count: int | None = None
    min_members: int = 3
    max_members: int = 7
    output: OutputType = "categorical"
    aggregator: Aggregator | None = None
    choices: tuple[str, ...] = ()
    classes: int | None = None
    extract: str | Extractor | None = None
    schema: Mapping[str, Any] | None = None
    quorum: Quorum = field(default_factory=Quorum)
    threshold: float = 0.5
    on_low: OnLow = "flag"
    adaptive: bool = False
    member_timeout_s: float = 60.0
    accuracy: Mapping[str, float] = field(default_factory=dict)
    similarity: float = 0.75
    lexical_similarity: float = 0.5
    embedding_model: str | None = None
    aggregator_model: str | None = None
    fallback_aggregator: str | None = None
    layers: int = 2
    rounds: int = 2
    task_type: TaskType | None = None
    policy: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None

    @property
    def method(self) -> str:
        """The aggregator's name (``custom`` for a function)."""
        if self.aggregator is None:
            return DEFAULT_AGGREGATOR[self.output]
        return self.aggregator if isinstance(self.aggregator, str) else "custom"


def spec_problems(spec: ConsensusSpec) -> list[str]:  # noqa: PLR0912, PLR0915 - one check per field
    """Everything wrong with ``spec``, one sentence each naming the field (empty: it is fine)."""
    problems: list[str] = []
    if spec.output not in DEFAULT_AGGREGATOR:
        problems.append(
            f"output must be one of {', '.join(DEFAULT_AGGREGATOR)}, got {spec.output!r}"
        )
        return problems
    method = spec.method
    if isinstance(spec.aggregator, str):
        serves = AGGREGATORS.get(spec.aggregator)
        if serves is None:
            problems.append(
                f"aggregator {spec.aggregator!r} is unknown (known: {', '.join(AGGREGATORS)})"
            )
        elif spec.output not in serves:
            problems.append(
                f"aggregator {spec.aggregator!r} does not serve {spec.output} answers "
                f"(it serves {', '.join(serves)})"
            )
    labels = [m.label for m in spec.members]
    for member in spec.members:
        if not member.model:
            problems.append("members: a member has no model")
        if member.accuracy is not None and not 0.0 <= member.accuracy <= 1.0:
            problems.append(f"members: {member.label} accuracy must be 0 to 1")
        if member.timeout_s is not None and member.timeout_s <= 0:
            problems.append(f"members: {member.label} timeout_s must be positive")
    duplicates = sorted({x for x in labels if labels.count(x) > 1})
    if duplicates:
        problems.append(
            f"members: {', '.join(duplicates)} appear twice; give each copy its own "
            "temperature or seed"
        )
    if spec.count is not None and spec.count < 1:
        problems.append(f"count must be at least 1, got {spec.count}")
    if spec.min_members < 1 or spec.max_members < spec.min_members:
        problems.append(
            f"min_members ({spec.min_members}) must be at least 1 and at most "
            f"max_members ({spec.max_members})"
        )
    if not 0.0 <= spec.threshold <= 1.0:
        problems.append(f"threshold must be 0 to 1, got {spec.threshold}")
    if spec.on_low not in ("flag", "fail", "halt"):
        problems.append(f"on_low must be flag, fail or halt, got {spec.on_low!r}")
    if spec.member_timeout_s <= 0:
        problems.append(f"member_timeout_s must be positive, got {spec.member_timeout_s}")
    quorum = spec.quorum
    if quorum.min_answers is not None and quorum.min_answers < 1:
        problems.append(f"quorum.min_answers must be at least 1, got {quorum.min_answers}")
    if quorum.min_answers is not None and spec.members and quorum.min_answers > len(spec.members):
        problems.append(
            f"quorum.min_answers ({quorum.min_answers}) is more than the "
            f"{len(spec.members)} members"
        )
    if quorum.wait_s is not None and quorum.wait_s <= 0:
        problems.append(f"quorum.wait_s must be positive, got {quorum.wait_s}")
    if quorum.on_short not in ("degrade", "fail", "fallback"):
        problems.append(
            f"quorum.on_short must be degrade, fail or fallback, got {quorum.on_short!r}"
        )
    if quorum.on_short == "fallback" and not quorum.fallback:
        problems.append("quorum.on_short is 'fallback' but quorum.fallback names no model")
    for key, value in spec.accuracy.items():
        if not 0.0 <= value <= 1.0:
            problems.append(f"accuracy[{key!r}] must be 0 to 1, got {value}")
    if not 0.0 < spec.similarity <= 1.0 or not 0.0 < spec.lexical_similarity <= 1.0:
        problems.append("similarity and lexical_similarity must be in (0, 1]")
    if method == "synthesis" and not spec.aggregator_model:
        problems.append(
            "aggregator 'synthesis' needs aggregator_model (the model that synthesises)"
        )
    if spec.layers < 1:
        problems.append(f"layers must be at least 1, got {spec.layers}")
    if spec.rounds < 1:
        problems.append(f"rounds must be at least 1, got {spec.rounds}")
    if isinstance(spec.extract, str):
        from actors.orchestration.consensus._extract import EXTRACTORS  # noqa: PLC0415

        if spec.extract not in EXTRACTORS:
            problems.append(
                f"extract {spec.extract!r} is unknown (known: {', '.join(sorted(EXTRACTORS))})"
            )
    return problems


class MemberAnswer(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One member's part: its answer (text and extracted value) or its real error.

    Attributes:
        member: Its label (``host/model@t0.7#3``).
        model: The model that answered, qualified (``host/model``).
        ok: Whether it answered.
        text: Its answer's text.
        value: The answer extracted from it (``None``: none could be).
        error_kind: The failure kind, when it did not answer (``cancelled`` for a
            member still running when the round ended).
        error: The failure's message.
        outlier: Rejected by the aggregator (an outlier, or not fitting the schema).
        agrees: Its answer supports the consensus answer.
        cluster: The index of its cluster in the result's ``clusters``.
        latency_s: Its call's latency.
        cost_usd: What its call cost (``None``: unpriced).
        input_tokens: Prompt tokens.
        output_tokens: Output tokens.
        stated_confidence: A confidence the model verbalised (telemetry, never used).
        round: The round (debate) or layer (synthesis) it answered in, from 1.
        not_applied: Request fields its model refused, so its answer was sampled
            without them (``temperature`` on a reasoning model, say): see
            ``Completion.extras["dropped_params"]``.
    """

    member: str
    model: str = ""
    ok: bool = False
    text: str = ""
    value: Any = None
    error_kind: str | None = None
    error: str = ""
    outlier: bool = False
    agrees: bool = False
    cluster: int | None = None
    latency_s: float = 0.0
    cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    stated_confidence: float | None = None
    round: int = 1
    not_applied: tuple[str, ...] = ()


class ConsensusResult(Message, frozen=True, kw_only=True):
    """A consensus and its provenance: what the step returns and the journal keeps.

    Attributes:
        answer: The aggregated answer (a category, number, object or text).
        text: The representative answer's full text (the synthesis for ``synthesis``).
        output: The output type.
        method: The aggregator that decided.
        confidence: The Wilson 95% lower bound of the winning share (statistics, not
            self-report).
        agreement: The winning share itself (weighted for a weighted vote).
        entropy: Discrete semantic entropy over the answers' groups.
        spread: Numbers: the scaled MAD of the answers (``None`` otherwise).
        relative_spread: Numbers: the spread over ``|answer|``.
        low_consensus: ``confidence < threshold``: worth a human's look.
        threshold: The threshold it was compared with.
        members: Every member's answer or error, in the order asked.
        outliers: The labels of the members rejected as outliers.
        clusters: The groups of agreeing members (labels), largest first.
        fields: Structured answers: the agreement per field.
        asked: Member calls made (all rounds).
        answered: Answers counted in the final aggregation.
        quorum: The answers the quorum needed.
        degraded: Fewer answers than the quorum were aggregated.
        fallback: The model asked because the quorum was short ("" none).
        stopped_early: Adaptive stopping ended the round before every member answered.
        added: Members added because the answers were not decisive.
        clustering: How free text was clustered (``embeddings:<model>``, ``lexical``).
        aggregated_by: Synthesis: the model that wrote the answer.
        note: Anything else worth knowing, in a sentence (a fallback taken, ...).
        cost_usd: Total cost of the priced calls (``None``: none was priced).
        latency_s: Wall time of the whole consensus.
    """

    answer: Any = None
    text: str = ""
    output: str = "categorical"
    method: str = ""
    confidence: float = 0.0
    agreement: float = 0.0
    entropy: float = 0.0
    spread: float | None = None
    relative_spread: float | None = None
    low_consensus: bool = False
    threshold: float = 0.5
    members: tuple[MemberAnswer, ...] = ()
    outliers: tuple[str, ...] = ()
    clusters: tuple[tuple[str, ...], ...] = ()
    fields: dict[str, float] = msgspec.field(default_factory=dict)
    asked: int = 0
    answered: int = 0
    quorum: int = 0
    degraded: bool = False
    fallback: str = ""
    stopped_early: bool = False
    added: int = 0
    clustering: str = ""
    aggregated_by: str = ""
    note: str = ""
    cost_usd: float | None = None
    latency_s: float = 0.0

    @property
    def content(self) -> str:
        """The answer's text."""
        return self.text


class LowConsensus(Event, frozen=True, kw_only=True):
    """Published when a consensus's confidence is below its threshold.

    Attributes:
        run_id: The run (empty outside one).
        step: The step.
        confidence: The confidence.
        threshold: The threshold.
        answer: The answer, as text.
        agreement: The winning share.
        answered: How many answers were aggregated.
    """

    run_id: str = ""
    step: str = ""
    confidence: float = 0.0
    threshold: float = 0.5
    answer: str = ""
    agreement: float = 0.0
    answered: int = 0


class ConsensusRequest(Request[ConsensusResult], frozen=True, kw_only=True):
    """Ask the members ``request`` and aggregate their answers under ``spec``.

    Attributes:
        request: The chat request (its ``model`` is replaced by each member's).
        spec: How (see :class:`ConsensusSpec`; it may hold functions, so this request
            travels between actors of one process, not over the wire).
        run_id: The run asking (budgets, events).
        step: The step asking.
        reactor: The reactor (budgets).
        agent: The agent, if any (budgets).
    """

    request: ChatRequest
    spec: Any = msgspec.field(default_factory=ConsensusSpec)
    run_id: str = ""
    step: str = ""
    reactor: str = ""
    agent: str = ""
