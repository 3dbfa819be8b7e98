"""The ``consensus`` kind: ask several models one question, aggregate, say how sure.

``prompt`` and ``system`` are ``str.format`` templates whose placeholders are the step's
arguments. The members are models (``"llama3.2"``, ``"ollama/qwen2.5"``), or
:class:`~actors.orchestration.consensus.Member` s (a model at its own temperature, seed,
deadline or known accuracy); none given: the Consensus coordinator chooses a diverse set.
The step's result is a :class:`~actors.orchestration.consensus.ConsensusResult`: the
answer, its confidence and ``low_consensus`` flag, and every member's answer or error.

A low consensus (confidence under ``threshold``) is flagged in the result by default
(a ``switch`` can route on ``result.low_consensus``), fails the step with
``on_low="fail"``, or halts the run for a human with ``on_low="halt"`` (resumed with
the human's answer: see :func:`reactor.kinds.answer_review`).

Drawn as a double circle; journaled when added while running, unless the spec holds
functions (a custom aggregator or extraction), which cannot be written down.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Unpack

from actors.orchestration.consensus import (
    Aggregator,
    ConsensusSpec,
    Extractor,
    Member,
    OnLow,
    OnShort,
    OutputType,
    Quorum,
    spec_problems,
)
from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["ConsensusImpl", "ConsensusKind", "consensus"]


@dataclass(frozen=True, slots=True)
class ConsensusImpl:
    """Ask the members ``prompt`` and aggregate their answers under ``spec``.

    Attributes:
        prompt: The prompt template.
        spec: How the consensus is reached (members, quorum, aggregator, threshold).
        system: An optional system prompt template.
        options: Vendor-specific request fields.
    """

    prompt: str
    spec: ConsensusSpec = field(default_factory=ConsensusSpec)
    system: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class ConsensusKind(StepKind[ConsensusImpl]):
    """Steps that ask several models (no ``undo``: asking has no side effect)."""

    name = "consensus"
    bounded = True  # its model calls end by their own deadlines
    impl = ConsensusImpl
    options = CommonOptions
    shape = ("(((", ")))")

    def bind(
        self, impl: ConsensusImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[ConsensusImpl, dict[str, Source]]:
        """Check the spec (every problem named), then one argument per placeholder."""
        problems = spec_problems(impl.spec)
        if problems:
            binder.fail("; ".join(problems))
        texts = [impl.prompt]
        if impl.system is not None:
            texts.append(impl.system)
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: ConsensusImpl) -> Any:
        """:class:`~actors.orchestration.consensus.ConsensusResult`."""
        from actors.orchestration.consensus import ConsensusResult  # noqa: PLC0415

        return ConsensusResult

    def describe(self, impl: ConsensusImpl) -> dict[str, Any]:
        """``{"consensus": {prompt, system, options, spec}}``; functions cannot be journaled."""
        spec = impl.spec
        if callable(spec.aggregator) or callable(spec.extract):
            msg = "a consensus step with a custom aggregator or extraction cannot be journaled"
            raise ValueError(msg)
        data = asdict(spec)
        data["members"] = [
            {k: v for k, v in _member_fields(m).items() if v is not None} for m in spec.members
        ]
        data["accuracy"] = dict(spec.accuracy)
        data["schema"] = None if spec.schema is None else dict(spec.schema)
        return {
            "consensus": {
                "prompt": impl.prompt,
                "system": impl.system,
                "options": dict(impl.options),
                "spec": data,
            }
        }

    def rebuild(self, data: Mapping[str, Any]) -> ConsensusImpl:
        """What :meth:`describe` wrote."""
        fields = dict(data["consensus"])
        raw = dict(fields.pop("spec"))
        raw["members"] = tuple(Member(**m) for m in raw.get("members", ()))
        raw["quorum"] = Quorum(**raw.get("quorum", {}))
        raw["choices"] = tuple(raw.get("choices", ()))
        return ConsensusImpl(spec=ConsensusSpec(**raw), **fields)


def _member_fields(member: Member) -> dict[str, Any]:
    """A member's fields as a dict."""
    return {f: getattr(member, f) for f in member.__struct_fields__}


register(ConsensusKind())


def _member(entry: str | Member) -> Member:
    if isinstance(entry, Member):
        return entry
    return Member(model=entry)


def consensus(
    prompt: str,
    *,
    members: Sequence[str | Member] = (),
    count: int | None = None,
    output: OutputType = "categorical",
    aggregator: Aggregator | None = None,
    choices: Sequence[str] = (),
    extract: str | Extractor | None = None,
    schema: Mapping[str, Any] | None = None,
    threshold: float = 0.5,
    on_low: OnLow = "flag",
    quorum: int | None = None,
    wait_s: float | None = None,
    on_short: OnShort = "degrade",
    fallback_model: str | None = None,
    adaptive: bool = False,
    min_members: int = 3,
    max_members: int = 7,
    member_timeout_s: float = 60.0,
    accuracy: Mapping[str, float] | None = None,
    embedding_model: str | None = None,
    similarity: float = 0.75,
    aggregator_model: str | None = None,
    fallback_aggregator: str | None = None,
    layers: int = 2,
    rounds: int = 2,
    task_type: Any = None,
    policy: str | None = None,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    options: Mapping[str, Any] | None = None,
    spec: ConsensusSpec | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that asks several models; its result is a ``ConsensusResult``.

    ``consensus("Is {claim} true? Answer yes or no.", members=["llama3.2", "qwen2.5",
    "gpt-4o-mini"], choices=["yes", "no"])`` asks the three at once and votes.

    Args:
        prompt: The prompt template.
        members: Model names or ``Member`` s (default: chosen for diversity).
        count: How many members to choose when none are given (default: by complexity).
        output: ``categorical``, ``numeric``, ``structured`` or ``text``.
        aggregator: ``plurality``, ``weighted``, ``median``, ``trimmed_mean``, ``mad``,
            ``fieldwise``, ``cluster``, ``synthesis``, ``debate``, or a function of the
            extracted answers (default: by output).
        choices: The categories (extraction finds the one an answer settles on).
        extract: How answers are pulled from prose (a name or a function).
        schema: The JSON Schema structured answers must fit.
        threshold: Confidence below which the result is flagged ``low_consensus``.
        on_low: ``flag``, ``fail`` or ``halt`` (for a human) on low consensus.
        quorum: Answers needed (default: a majority of the members).
        wait_s: The quorum deadline: members still running then are cancelled.
        on_short: Too few answers: ``degrade``, ``fail`` or ``fallback``.
        fallback_model: The model ``on_short="fallback"`` asks.
        adaptive: Stop once decided; add members (to ``max_members``) when not decisive.
        min_members: Fewest members chosen (trivial task).
        max_members: Most members (complexity 1, adaptive growth).
        member_timeout_s: Each member's own deadline.
        accuracy: Known accuracies by member or model (weighted votes).
        embedding_model: Free text: the embedding model ("" for lexical clustering).
        similarity: Free text: the cosine similarity of one cluster.
        aggregator_model: Synthesis: the model that synthesises.
        fallback_aggregator: Synthesis: the model used when that one fails.
        layers: Synthesis: proposer layers.
        rounds: Debate: rounds.
        task_type: The task type (default: inferred from the prompt).
        policy: The Selector policy that ranks members chosen for diversity.
        system: A system prompt template.
        temperature: The members' default sampling temperature.
        max_tokens: Output token limit per member call.
        options: Vendor-specific request fields.
        spec: A whole :class:`ConsensusSpec` instead of the keywords above.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).
    """
    if spec is None:
        spec = ConsensusSpec(
            members=tuple(_member(m) for m in members),
            count=count,
            min_members=min_members,
            max_members=max_members,
            output=output,
            aggregator=aggregator,
            choices=tuple(choices),
            extract=extract,
            schema=schema,
            quorum=Quorum(
                min_answers=quorum, wait_s=wait_s, on_short=on_short, fallback=fallback_model
            ),
            threshold=threshold,
            on_low=on_low,
            adaptive=adaptive,
            member_timeout_s=member_timeout_s,
            accuracy=dict(accuracy or {}),
            similarity=similarity,
            embedding_model=embedding_model,
            aggregator_model=aggregator_model,
            fallback_aggregator=fallback_aggregator,
            layers=layers,
            rounds=rounds,
            task_type=task_type,
            policy=policy,
            temperature=temperature,
            max_tokens=max_tokens,
        )
    impl = ConsensusImpl(prompt=prompt, spec=spec, system=system, options=dict(options or {}))
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
