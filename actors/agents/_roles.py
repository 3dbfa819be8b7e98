"""Roles, agents' definitions, turns, and history windowing (pure functions).

An :class:`AgentSpec` is what an agent *is* (immutable, stored as the first event of its
stream); its history is a list of :class:`Turn` s. What the model sees of that history
is decided by the agent's :class:`Window`:

* ``last``: the system prompt and the last ``turns`` turns;
* ``tokens``: the system prompt and as many of the most recent turns as fit in
  ``tokens`` (about four characters a token; the newest turn always stays);
* ``summary``: the system prompt, a summary of the older turns (written by a model call
  when more than ``turns`` turns are not yet summarised) and the last ``keep`` turns.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import msgspec

from actors.agents._errors import AgentError
from actors.llm import ChatMessage

__all__ = [
    "AgentSpec",
    "Role",
    "Turn",
    "Window",
    "estimate_tokens",
    "system_prompt",
    "window_messages",
]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class Role(msgspec.Struct, frozen=True, kw_only=True):
    """What an agent is for.

    Attributes:
        name: The role's name (``security-reviewer``).
        system_prompt: What the model is told it is.
        context: Anything more it should know: specialties, experience, ... (each
            key and value becomes a line of the system prompt).
        constraints: Rules it must follow, one sentence each.
    """

    name: str
    system_prompt: str
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    constraints: tuple[str, ...] = ()


class Window(msgspec.Struct, frozen=True, kw_only=True):
    """How much of an agent's history goes to the model (see the module docstring).

    Attributes:
        kind: ``last``, ``tokens`` or ``summary``.
        turns: ``last``: turns kept; ``summary``: unsummarised turns that trigger a summary.
        tokens: ``tokens``: the history's size limit, system prompt included.
        keep: ``summary``: recent turns always kept whole.
    """

    kind: Literal["last", "tokens", "summary"] = "last"
    turns: int = 20
    tokens: int = 4000
    keep: int = 4

    @classmethod
    def last(cls, turns: int) -> Window:
        """Keep the last ``turns`` turns."""
        return cls(kind="last", turns=turns)

    @classmethod
    def token_limit(cls, tokens: int) -> Window:
        """Keep the system prompt and the most recent turns that fit in ``tokens``."""
        return cls(kind="tokens", tokens=tokens)

    @classmethod
    def summary(cls, *, after: int = 12, keep: int = 4) -> Window:
        """Summarise older turns (a model call) once ``after`` are unsummarised; keep ``keep``."""
        return cls(kind="summary", turns=after, keep=keep)


class AgentSpec(msgspec.Struct, frozen=True, kw_only=True):
    """An agent's definition.

    Attributes:
        name: Unique name; the agent is addressed by it.
        role: Its role.
        model: A named model (``llama3.2``, ``host/model``), a selector policy
            (``auto`` or ``auto:<policy>``), a configured fallback chain
            (``chain:<name>``), or a tuple of models: an inline fallback chain.
        tools: Tools it may use (names, globs, ``tag:x``); empty: none.
        window: How its history is windowed.
        temperature: Sampling temperature (the server's default when ``None``).
        max_tokens: Output token limit per answer.
        description: One line about it (listings, spans).
        template: The template it was made from, if any.
        capabilities: What it can do (from its template), for composition.
    """

    name: str
    role: Role
    model: str | tuple[str, ...] = "auto"
    tools: tuple[str, ...] = ()
    window: Window = Window()
    temperature: float | None = None
    max_tokens: int | None = None
    description: str = ""
    template: str = ""
    capabilities: tuple[str, ...] = ()

    def check(self) -> None:
        """Reject what cannot work, before anything runs (``define`` calls it).

        Not done on construction: a stored or received spec always decodes.

        Raises:
            AgentError: The name, model or window cannot work.
        """
        if not _NAME.match(self.name):
            msg = f"agent name {self.name!r}: letters, digits, '_', '.', '-' (at most 64)"
            raise AgentError(msg)
        if isinstance(self.model, tuple) and not self.model:
            msg = f"agent {self.name!r}: model: an empty fallback chain"
            raise AgentError(msg)
        if self.model == "":
            msg = f"agent {self.name!r}: model must not be empty"
            raise AgentError(msg)
        if self.window.turns < 1 or self.window.tokens < 1 or self.window.keep < 0:
            msg = f"agent {self.name!r}: window: turns and tokens must be >= 1, keep >= 0"
            raise AgentError(msg)

    @property
    def model_label(self) -> str:
        """The model as one string (a chain joined by ``>``)."""
        return " > ".join(self.model) if isinstance(self.model, tuple) else self.model


class Turn(msgspec.Struct, frozen=True, kw_only=True):
    """One message in an agent's history.

    Attributes:
        role: ``user`` (what the agent was told) or ``assistant`` (its answer).
        content: The text.
        sender: Who said it (another agent's name, ``user``, or the agent itself).
        conversation: The conversation it belongs to, if any.
    """

    role: Literal["user", "assistant"]
    content: str
    sender: str = "user"
    conversation: str = ""


def estimate_tokens(text: str) -> int:
    """About four characters a token (what windowing and splitting count with)."""
    return len(text) // 4 + 1


def system_prompt(spec: AgentSpec) -> str:
    """The role's system prompt with its context and constraints appended."""
    role = spec.role
    parts = [role.system_prompt.strip()]
    if role.context:
        lines = [f"- {key}: {_text(value)}" for key, value in role.context.items()]
        parts.append("Context:\n" + "\n".join(lines))
    if role.constraints:
        parts.append("Constraints:\n" + "\n".join(f"- {c}" for c in role.constraints))
    return "\n\n".join(p for p in parts if p)


def _text(value: object) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _message(turn: Turn, me: str) -> ChatMessage:
    if turn.role == "assistant":
        return ChatMessage.assistant(turn.content)
    prefix = f"[{turn.sender}] " if turn.sender not in {"user", me} else ""
    return ChatMessage.user(prefix + turn.content)


def window_messages(
    system: str,
    turns: Sequence[Turn],
    window: Window,
    *,
    agent: str = "",
    summary: str = "",
    summarised: int = 0,
) -> list[ChatMessage]:
    """The messages the model sees: system prompt first, then the windowed turns.

    Args:
        system: The system prompt (always kept).
        turns: The whole history, oldest first (the new message last).
        window: The policy.
        agent: The agent's own name (its turns carry no sender prefix).
        summary: For ``summary``: the summary of ``turns[:summarised]``.
        summarised: For ``summary``: how many of the oldest turns the summary covers.
    """
    head = [ChatMessage.system(system)] if system else []
    match window.kind:
        case "last":
            kept = list(turns[-window.turns :])
        case "tokens":
            kept = _fit(system, turns, window.tokens)
        case "summary":
            rest = list(turns[summarised:])
            if summary:
                head.append(ChatMessage.system(f"Summary of the earlier conversation: {summary}"))
            kept = rest
    return head + [_message(t, agent) for t in kept]


def _fit(system: str, turns: Sequence[Turn], tokens: int) -> list[Turn]:
    used = estimate_tokens(system)
    kept: list[Turn] = []
    for turn in reversed(turns):
        cost = estimate_tokens(turn.content)
        if kept and used + cost > tokens:
            break
        kept.append(turn)
        used += cost
    kept.reverse()
    return kept


def needs_summary(turns: Sequence[Turn], window: Window, summarised: int) -> bool:
    """Whether a ``summary`` window has more unsummarised turns than it allows."""
    return window.kind == "summary" and len(turns) - summarised > window.turns


def summary_prompt(previous: str, turns: Sequence[Turn]) -> str:
    """The request that asks a model to fold ``turns`` into the running summary."""
    lines = "\n".join(f"{t.sender}: {t.content}" for t in turns)
    before = f"Summary so far: {previous}\n\n" if previous else ""
    return (
        f"{before}Summarise the conversation below in a few sentences, keeping facts, "
        f"decisions and open questions.\n\n{lines}"
    )
