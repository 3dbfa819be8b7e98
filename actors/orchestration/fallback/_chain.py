"""A fallback chain's definition: its links, and what each failure kind does (pure data).

The defaults are the ones users expect and that gateways commonly get wrong:

* ``context_window_exceeded`` moves on, but skips every link whose context is not
  larger than the one that overflowed: the same payload never goes to a smaller window;
* ``content_policy`` stops, unless a content-policy chain is configured: a refusal
  never falls through to the general chain (that would route around a safety refusal);
* ``auth``, ``bad_request`` and ``cancelled`` stop: another model will not fix them;
* ``rate_limited``, ``overloaded``, ``timeout``, ``server_error``, ``connection``,
  ``circuit_open``, ``not_found``, ``invalid_response``, ``insufficient_memory`` and
  ``budget_exceeded`` (a cheaper link may fit) move on to the next link.

``on`` overrides any of them with ``retry`` (the same link again, ``retries`` times,
with doubling, jittered backoff that honours the server's ``retry_after``), ``next`` or
``stop``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from actors import FailureKind
from actors.llm import ChatRequest, Completion, FallbackAction, FallbackChainConfig

__all__ = [
    "DEFAULT_ACTIONS",
    "Chain",
    "Link",
    "Predicate",
    "QualityCheck",
    "Transform",
    "chain_from_config",
    "link",
]

DEFAULT_ACTIONS: Mapping[FailureKind, FallbackAction] = {
    FailureKind.CONTEXT_WINDOW_EXCEEDED: "next",
    FailureKind.CONTENT_POLICY: "stop",
    FailureKind.AUTH: "stop",
    FailureKind.BAD_REQUEST: "stop",
    FailureKind.CANCELLED: "stop",
    FailureKind.RATE_LIMITED: "next",
    FailureKind.OVERLOADED: "next",
    FailureKind.TIMEOUT: "next",
    FailureKind.SERVER_ERROR: "next",
    FailureKind.CONNECTION: "next",
    FailureKind.CIRCUIT_OPEN: "next",
    FailureKind.NOT_FOUND: "next",
    FailureKind.INVALID_RESPONSE: "next",
    FailureKind.INSUFFICIENT_MEMORY: "next",
    FailureKind.BUDGET_EXCEEDED: "next",
    FailureKind.ACTOR_CRASHED: "next",
    FailureKind.ACTOR_STOPPED: "next",
}
"""What each failure kind does unless a chain says otherwise (others stop)."""

Predicate = Callable[[ChatRequest], bool]
Transform = Callable[[ChatRequest], ChatRequest]
QualityCheck = Callable[[Completion], bool]


@dataclass(frozen=True, slots=True, eq=False)
class Link:
    """One model in a chain.

    Attributes:
        model: The model; ``host/model`` names its host when ``host`` is not given.
        host: The ModelHost's name (``None``: whichever host serves the model).
        when: Try this link only when ``when(request)`` holds (e.g. only short prompts).
        transform: Rewrite the request for this link (e.g. trim the history for a
            smaller model); the next link gets the original again.
        context_length: Its context window, when the catalog does not know it.
    """

    model: str
    host: str | None = None
    when: Predicate | None = None
    transform: Transform | None = None
    context_length: int | None = None
    label: str = field(init=False, repr=False)
    """``host/model`` or the model: how results and spans name the link (set once, as
    every attempt record names its link)."""

    def __post_init__(self) -> None:
        model = self.model or "(default model)"
        object.__setattr__(self, "label", f"{self.host}/{model}" if self.host else model)

    @property
    def templated(self) -> bool:
        """Whether its model or host is a ``str.format`` template (``"{model}"``)."""
        return "{" in self.model or (self.host is not None and "{" in self.host)

    def render(self, values: Mapping[str, Any]) -> Link:
        """This link with its model and host templates filled in from ``values``."""
        host = None if self.host is None else self.host.format_map(values)
        return Link(
            self.model.format_map(values), host, self.when, self.transform, self.context_length
        )


def link(
    model: str,
    *,
    host: str | None = None,
    when: Predicate | None = None,
    transform: Transform | None = None,
    context_length: int | None = None,
) -> Link:
    """A :class:`Link` (for chains written in Python)."""
    if not isinstance(model, str) or not model:
        msg = f"link(model={model!r}): a link needs a model name"
        raise ValueError(msg)
    return Link(model, host, when, transform, context_length)


class Chain:
    """An ordered chain of models and how to walk it (immutable once made).

    Args:
        links: The links, in order of preference: model names or :func:`link` s.
        name: A name for spans, results and metrics.
        on: Per failure kind, ``retry``, ``next`` or ``stop`` over :data:`DEFAULT_ACTIONS`.
        retries: How often ``retry`` tries a link again.
        backoff_s: The first retry's wait (doubled each time, and drawn from the upper
            half of that for jitter; a longer ``retry_after`` from the server wins).
        content_policy: The chain to take after a ``content_policy`` refusal (without
            one, a refusal stops).
        restart_streams: Fall back after a streamed answer produced tokens; the result
            then says the stream restarted (``FallbackResult.restarted``).
        quality: A check on each answer: ``False`` rejects it and moves on.
        eject_after: Consecutive failures that eject a link (demoted to the end).
        eject_base_s: The first ejection's length; the n-th lasts ``n`` times as long ...
        eject_max_s: ... up to this.
        max_ejected_percent: The share of links ejected at once (at least one may be,
            and never every link: the floor keeps one in front).

    Raises:
        ValueError: No links, a link that is neither a name nor a :class:`Link`, an
            action other than retry/next/stop, or a negative retry setting.
    """

    __slots__ = (
        "backoff_s",
        "content_policy",
        "eject_after",
        "eject_base_s",
        "eject_max_s",
        "links",
        "max_ejected_percent",
        "name",
        "on",
        "quality",
        "restart_streams",
        "retries",
    )

    def __init__(
        self,
        links: Iterable[Link | str],
        *,
        name: str = "",
        on: Mapping[Any, FallbackAction] | None = None,
        retries: int = 1,
        backoff_s: float = 0.25,
        content_policy: Chain | None = None,
        restart_streams: bool = False,
        quality: QualityCheck | None = None,
        eject_after: int = 3,
        eject_base_s: float = 30.0,
        eject_max_s: float = 300.0,
        max_ejected_percent: float = 50.0,
    ) -> None:
        self.name = name
        self.links: tuple[Link, ...] = tuple(
            _as_link(item, name, number) for number, item in enumerate(links)
        )
        if not self.links:
            msg = f"fallback chain {name or '(unnamed)'}: it needs at least one link"
            raise ValueError(msg)
        actions: dict[FailureKind, FallbackAction] = {}
        given: dict[Any, FallbackAction] = dict(on or {})
        for kind, action in given.items():
            if action not in ("retry", "next", "stop"):
                msg = (
                    f"fallback chain {self.title}: on[{str(kind)!r}] = {action!r}, "
                    "not retry, next or stop"
                )
                raise ValueError(msg)
            actions[FailureKind(kind)] = action
        self.on: Mapping[FailureKind, FallbackAction] = actions
        if retries < 0 or backoff_s < 0 or eject_after < 1:
            msg = (
                f"fallback chain {self.title}: retries and backoff_s must not be negative, "
                "eject_after at least 1"
            )
            raise ValueError(msg)
        self.retries = retries
        self.backoff_s = backoff_s
        self.content_policy = content_policy
        self.restart_streams = restart_streams
        self.quality = quality
        self.eject_after = eject_after
        self.eject_base_s = eject_base_s
        self.eject_max_s = eject_max_s
        self.max_ejected_percent = max_ejected_percent

    def __repr__(self) -> str:
        return f"Chain({self.title!r})"

    @property
    def templated(self) -> bool:
        """Whether a link names its model by a template of the step's arguments."""
        policy = self.content_policy
        return any(x.templated for x in self.links) or (policy is not None and policy.templated)

    def template_texts(self) -> list[str]:
        """The templates of its links (what a step binds as arguments)."""
        texts = [x.model for x in self.links] + [x.host for x in self.links if x.host]
        if self.content_policy is not None:
            texts += self.content_policy.template_texts()
        return texts

    def render(self, values: Mapping[str, Any]) -> Chain:
        """This chain with its links' templates filled in (the rules are the same)."""
        policy = self.content_policy
        return Chain(
            [x.render(values) for x in self.links],
            name=self.name,
            on=self.on,
            retries=self.retries,
            backoff_s=self.backoff_s,
            content_policy=None if policy is None else policy.render(values),
            restart_streams=self.restart_streams,
            quality=self.quality,
            eject_after=self.eject_after,
            eject_base_s=self.eject_base_s,
            eject_max_s=self.eject_max_s,
            max_ejected_percent=self.max_ejected_percent,
        )

    def action(self, kind: FailureKind) -> FallbackAction:
        """What a failure of ``kind`` does in this chain."""
        return self.on.get(kind) or DEFAULT_ACTIONS.get(kind, "stop")

    @property
    def title(self) -> str:
        """Its name, or its links joined by arrows."""
        return self.name or " → ".join(item.label for item in self.links)


def _as_link(item: Any, chain: str, number: int) -> Link:
    if isinstance(item, Link):
        return item
    if isinstance(item, str) and item:
        return Link(item)
    msg = (
        f"fallback chain {chain or '(unnamed)'}: links[{number}] is {item!r}, "
        "not a model name or link()"
    )
    raise ValueError(msg)


def chain_from_config(
    name: str, chains: Mapping[str, FallbackChainConfig], *, _seen: tuple[str, ...] = ()
) -> Chain:
    """The :class:`Chain` that ``[fallback.chains.<name>]`` describes.

    Raises:
        KeyError: No chain has that name.
        ValueError: Its content-policy chains refer back to it.
    """
    if name in _seen:
        msg = f"fallback chain {name!r}: content_policy_chain loops ({' → '.join((*_seen, name))})"
        raise ValueError(msg)
    section = chains[name]
    links = tuple(
        Link(item)
        if isinstance(item, str)
        else Link(item.model, item.host, None, None, item.context_length)
        for item in section.links
    )
    policy = None
    if section.content_policy_chain is not None:
        policy = chain_from_config(section.content_policy_chain, chains, _seen=(*_seen, name))
    return Chain(
        links=links,
        name=name,
        on=dict(section.on),
        retries=section.retries,
        backoff_s=section.backoff_s,
        content_policy=policy,
        restart_streams=section.restart_streams,
        eject_after=section.eject_after,
        eject_base_s=section.eject_base_s,
        eject_max_s=section.eject_max_s,
        max_ejected_percent=section.max_ejected_percent,
    )
