"""The FallbackChain actor's protocol: one request in, the answer with its provenance out."""

from __future__ import annotations

import msgspec

from actors import Message, Request
from actors.llm import ChatRequest, Completion

__all__ = ["FallbackAttempt", "FallbackRequest", "FallbackResult"]


class FallbackAttempt(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One link the chain considered, and what happened.

    Attributes:
        link: The link (``host/model`` or the model).
        outcome: ``ok``, a failure kind, ``rejected`` (the quality check said no) or
            ``skipped``.
        action: What the chain did next: ``answer``, ``retry``, ``next``, ``stop``,
            ``skip`` or ``wait``.
        why: A sentence: the failure's message, or why the link was skipped.
        latency_s: How long the call took (0 when nothing was sent).
        waited_s: How long the chain waited before the next try (backoff, cooling).
    """

    link: str
    outcome: str
    action: str
    why: str = ""
    latency_s: float = 0.0
    waited_s: float = 0.0


class FallbackResult(Message, frozen=True, kw_only=True):
    """A chain's answer: the completion, which link gave it, and the way there.

    Attributes:
        completion: The answer (its ``model`` and ``host`` are the link's: billing and
            history follow the model that answered).
        chain: The chain's name (or its links).
        link: The link that answered.
        index: Its position in the chain (0 is the first).
        attempts: Every link considered, in order, with why the chain moved on.
        restarted: A streamed answer broke after producing tokens and was restarted on
            the next link (only with ``restart_streams``): its consumer must discard
            what it showed.
    """

    completion: Completion
    chain: str
    link: str
    index: int
    attempts: tuple[FallbackAttempt, ...] = ()
    restarted: bool = False

    @property
    def content(self) -> str:
        """The answer's text."""
        return self.completion.content


class FallbackRequest(Request[FallbackResult], frozen=True, kw_only=True):
    """Walk the chain for ``request``; the request's ``model`` is replaced by each link's.

    Attributes:
        request: The chat request.
        run_id: The top-level run it is for (budgets).
        reactor: The reactor (budgets).
        agent: The agent, if any (budgets).
    """

    request: ChatRequest
    run_id: str = ""
    reactor: str = ""
    agent: str = ""
