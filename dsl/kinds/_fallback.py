"""The ``fallback`` kind: ask a chain of models, the first good answer wins.

The step's result is a :class:`~actors.orchestration.FallbackResult`: the completion,
which link answered, and every attempt with why the chain moved on. ``prompt`` and
``system`` are ``str.format`` templates whose placeholders are the step's arguments.
Drawn as a trapezoid (a way down); journaled with its chain's links (a chain added
while running keeps its links and rules, not its Python callables).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from actors import FailureKind
from actors.llm import FallbackAction
from actors.orchestration import Chain, Link
from actors.orchestration.fallback import QualityCheck
from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["FallbackImpl", "FallbackKind", "fallback"]


@dataclass(frozen=True, slots=True)
class FallbackImpl:
    """Ask a chain: render ``prompt`` and let the chain's actor find a model that answers.

    Attributes:
        prompt: The prompt template.
        chain: A configured chain's name (``[fallback.chains.<name>]``) or a chain.
        system: An optional system prompt template.
        temperature: Sampling temperature.
        max_tokens: Output token limit.
        stream: Stream on the wire (a broken stream falls back only before its first
            token, unless the chain has ``restart_streams``).
        options: Vendor-specific request fields.
    """

    prompt: str
    chain: Chain | str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    stream: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)


class FallbackKind(StepKind[FallbackImpl]):
    """Steps that ask a fallback chain (no ``undo``: asking has no side effect)."""

    name = "fallback"
    bounded = True  # its model calls end by their own deadlines
    impl = FallbackImpl
    options = CommonOptions
    shape = ("[/", "\\]")

    def bind(
        self, impl: FallbackImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[FallbackImpl, dict[str, Source]]:
        """One argument per placeholder of the prompt and the system prompt."""
        if isinstance(impl.chain, str) and not impl.chain:
            binder.fail("option 'chain' must name a configured chain or list models")
        texts = [impl.prompt]
        if impl.system is not None:
            texts.append(impl.system)
        if isinstance(impl.chain, Chain):
            texts += impl.chain.template_texts()
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: FallbackImpl) -> Any:
        """:class:`~actors.orchestration.FallbackResult`."""
        from actors.orchestration import FallbackResult  # noqa: PLC0415 - only when decoding

        return FallbackResult

    def describe(self, impl: FallbackImpl) -> dict[str, Any]:
        """``{"fallback": {prompt, chain, ...}}``: a chain by name, or its links and rules."""
        chain: Any = impl.chain
        if isinstance(chain, Chain):
            chain = _describe_chain(chain)
        return {
            "fallback": {
                "prompt": impl.prompt,
                "chain": chain,
                "system": impl.system,
                "temperature": impl.temperature,
                "max_tokens": impl.max_tokens,
                "stream": impl.stream,
                "options": dict(impl.options),
            }
        }

    def rebuild(self, data: Mapping[str, Any]) -> FallbackImpl:
        """What :meth:`describe` wrote."""
        fields = dict(data["fallback"])
        chain = fields.pop("chain")
        if not isinstance(chain, str):
            chain = _rebuild_chain(chain)
        return FallbackImpl(chain=chain, **fields)


def _describe_chain(chain: Chain) -> dict[str, Any]:
    return {
        "name": chain.name,
        "links": [
            {"model": x.model, "host": x.host, "context_length": x.context_length}
            for x in chain.links
        ],
        "on": {kind.value: action for kind, action in chain.on.items()},
        "retries": chain.retries,
        "backoff_s": chain.backoff_s,
        "restart_streams": chain.restart_streams,
        "content_policy": None
        if chain.content_policy is None
        else _describe_chain(chain.content_policy),
    }


def _rebuild_chain(data: Mapping[str, Any]) -> Chain:
    policy = data.get("content_policy")
    return Chain(
        links=tuple(
            Link(x["model"], x.get("host"), None, None, x.get("context_length"))
            for x in data["links"]
        ),
        name=data.get("name", ""),
        on={FailureKind(k): v for k, v in data.get("on", {}).items()},
        retries=data.get("retries", 1),
        backoff_s=data.get("backoff_s", 0.25),
        restart_streams=data.get("restart_streams", False),
        content_policy=None if policy is None else _rebuild_chain(policy),
    )


register(FallbackKind())


def fallback(
    prompt: str,
    *,
    chain: Sequence[str | Link] | Chain | str,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    stream: bool = False,
    on: Mapping[str | FailureKind, FallbackAction] | None = None,
    retries: int | None = None,
    backoff_s: float | None = None,
    content_policy: Sequence[str | Link] | Chain | None = None,
    restart_streams: bool | None = None,
    quality: QualityCheck | None = None,
    name: str = "",
    options: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step that asks a chain of models; its result is a ``FallbackResult``.

    ``fallback("Summarise {doc}", chain=["llama3.2", "gpt-4o-mini"])`` tries the local
    model first and the cloud one when it fails in a way that another model can fix
    (see :data:`~actors.orchestration.fallback.DEFAULT_ACTIONS`); ``chain="cloud"``
    names a chain configured in ``[fallback.chains.cloud]``.

    Args:
        prompt: The prompt template.
        chain: Model names and :func:`~actors.orchestration.link` s in order, a
            :class:`~actors.orchestration.Chain`, or a configured chain's name.
        system: A system prompt template.
        temperature: Sampling temperature.
        max_tokens: Output token limit.
        stream: Stream on the wire.
        on: Per failure kind, ``retry``, ``next`` or ``stop`` over the defaults.
        retries: How often ``retry`` tries a link again (default 1).
        backoff_s: The first retry's wait (default 0.25 s, doubling).
        content_policy: The chain a ``content_policy`` refusal takes (without one, a
            refusal fails the step).
        restart_streams: Fall back even after a stream produced tokens.
        quality: ``quality(completion) -> bool``; ``False`` moves on to the next link.
        name: The chain's name in results and spans.
        options: Vendor-specific request fields.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).
            ``max_retries`` defaults to 0 here, not 3: the chain is the retry loop (its
            ``retries`` and its links), so a chain that has failed is not walked again
            from the top. Give ``max_retries`` to walk it again.

    Raises:
        ValueError: A chain option is invalid (an empty chain, an unknown action), or
            chain options are given with a configured chain's name.
    """
    rules: dict[str, Any] = {
        "on": on,
        "retries": retries,
        "backoff_s": backoff_s,
        "content_policy": content_policy,
        "restart_streams": restart_streams,
        "quality": quality,
    }
    given = {k: v for k, v in rules.items() if v is not None}
    if isinstance(chain, str):
        if given:
            msg = (
                f"fallback(chain={chain!r}): a configured chain keeps its own rules; "
                f"{', '.join(sorted(given))} must be set in its [fallback.chains.{chain}] section"
            )
            raise ValueError(msg)
        definition: Chain | str = chain
    elif isinstance(chain, Chain):
        if given:
            msg = "fallback(chain=Chain(...)): give the rules to the Chain, not to fallback()"
            raise ValueError(msg)
        definition = chain
    else:
        policy = given.pop("content_policy", None)
        if policy is not None and not isinstance(policy, Chain):
            policy = Chain(links=tuple(policy), name=f"{name or 'chain'} (content policy)")
        actions = {FailureKind(k): v for k, v in dict(given.pop("on", {}) or {}).items()}
        definition = Chain(
            links=tuple(chain),
            name=name,
            on=actions,
            content_policy=policy,
            **given,
        )
    impl = FallbackImpl(
        prompt=prompt,
        chain=definition,
        system=system,
        temperature=temperature,
        max_tokens=max_tokens,
        stream=stream,
        options=dict(options or {}),
    )
    options_given: dict[str, Any] = {"max_retries": 0, **step_options}
    return StepDef(impl=impl, sources=dict(args or {}), options=options_given)
