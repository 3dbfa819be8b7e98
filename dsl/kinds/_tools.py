"""The ``tools`` kind: a model calls tools until it answers; the result is a ``ToolLoopResult``.

``prompt``, ``system`` and ``model`` are ``str.format`` templates whose placeholders are
the step's arguments, as for ``ask``. The tools come from a ToolRunner actor (named
``tools`` unless ``runner`` says otherwise), trimmed to ``allow``. Drawn as a
subroutine box; journaled (when added while running) with its settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Unpack

from dsl._sources import Source
from dsl.kinds._binding import Binder, template_arguments
from dsl.kinds._kind import StepKind, register
from dsl.kinds._options import CommonOptions
from dsl.kinds._spec import StepDef

__all__ = ["ToolsImpl", "ToolsKind", "tools"]


@dataclass(frozen=True, slots=True)
class ToolsImpl:
    """A tool-calling loop: model turn, tool calls, results, until the model answers.

    Attributes:
        prompt: The prompt template.
        model: The model (a template).
        host: The ModelHost's name (``None``: one that serves ``model``).
        system: A system prompt template (the tools' capability docs follow it).
        allow: The tools offered: names, ``fnmatch`` globs, ``tag:x`` (``None``: all).
        runner: The ToolRunner actor's name.
        identity: Who is calling, for policies and the audit log (default: the
            reactor and step, ``Reactor.step``).
        max_turns: Model turns at most.
        budget_tokens: Tokens (in and out, all turns) at most.
        budget_usd: Cost (all turns, priced models) at most.
        tool_choice: ``auto``, ``required``, ``none``, or a tool's name.
        native: ``True``: the provider's tool calling; ``False``: the JSON-in-text
            fallback for models without it; ``None``: native, falling back when the
            server refuses tools.
        docs: Put the capability docs in the system prompt.
        context_chars: Window the conversation to this many characters.
        keep_turns: The last turns windowing always keeps whole.
        turn_timeout: Seconds one model turn, or one turn's tool calls, may take.
        temperature: Sampling temperature.
        max_tokens: Output tokens per turn.
        options: Vendor-specific request fields.
    """

    prompt: str
    model: str
    host: str | None = None
    system: str | None = None
    allow: tuple[str, ...] | None = None
    runner: str = "tools"
    identity: str = ""
    max_turns: int = 8
    budget_tokens: int | None = None
    budget_usd: float | None = None
    tool_choice: str | None = None
    native: bool | None = None
    docs: bool = True
    context_chars: int | None = None
    keep_turns: int = 2
    turn_timeout: float = 300.0
    temperature: float | None = None
    max_tokens: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


class ToolsKind(StepKind[ToolsImpl]):
    """Steps that run a tool loop (no ``undo``: tools that change things say how, themselves)."""

    name = "tools"
    impl = ToolsImpl
    options = CommonOptions
    shape = ("[[", "]]")

    def bind(
        self, impl: ToolsImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[ToolsImpl, dict[str, Source]]:
        """One argument per placeholder of the prompt, model and system prompt; settings checked."""
        if not isinstance(impl.model, str) or not impl.model:
            binder.fail(f"option 'model' must name a model, got {impl.model!r}")
        if impl.max_turns < 1:
            binder.fail(f"option 'max_turns' must be at least 1, got {impl.max_turns!r}")
        if impl.budget_tokens is not None and impl.budget_tokens < 1:
            binder.fail(f"option 'budget_tokens' must be positive, got {impl.budget_tokens!r}")
        if impl.budget_usd is not None and not impl.budget_usd > 0:
            binder.fail(f"option 'budget_usd' must be positive, got {impl.budget_usd!r}")
        if impl.context_chars is not None and impl.context_chars < 1:
            binder.fail(f"option 'context_chars' must be positive, got {impl.context_chars!r}")
        if not impl.turn_timeout > 0:
            binder.fail(f"option 'turn_timeout' must be positive, got {impl.turn_timeout!r}")
        if isinstance(impl.allow, str):
            binder.fail(
                f"option 'allow' must be a list of tool names or patterns, got {impl.allow!r}"
            )
        texts = [impl.prompt, impl.model]
        if impl.system is not None:
            texts.append(impl.system)
        return impl, template_arguments(binder, texts, sources)

    def result_type(self, impl: ToolsImpl) -> Any:
        """:class:`~actors.tools.ToolLoopResult`."""
        from actors.tools import ToolLoopResult  # noqa: PLC0415 - only when decoding

        return ToolLoopResult

    def describe(self, impl: ToolsImpl) -> dict[str, Any]:
        """``{"tools": {...every setting...}}``."""
        data = {name: getattr(impl, name) for name in ToolsImpl.__dataclass_fields__}
        data["allow"] = list(impl.allow) if impl.allow is not None else None
        data["options"] = dict(impl.options)
        return {"tools": data}

    def rebuild(self, data: Mapping[str, Any]) -> ToolsImpl:
        """The settings, read back."""
        fields = dict(data["tools"])
        if fields.get("allow") is not None:
            fields["allow"] = tuple(fields["allow"])
        return ToolsImpl(**fields)


register(ToolsKind())


def tools(
    prompt: str,
    *,
    model: str,
    allow: Sequence[str] | None = None,
    host: str | None = None,
    system: str | None = None,
    runner: str = "tools",
    identity: str = "",
    max_turns: int = 8,
    budget_tokens: int | None = None,
    budget_usd: float | None = None,
    tool_choice: str | None = None,
    native: bool | None = None,
    docs: bool = True,
    context_chars: int | None = None,
    keep_turns: int = 2,
    turn_timeout: float = 300.0,
    temperature: float | None = None,
    max_tokens: int | None = None,
    options: Mapping[str, Any] | None = None,
    args: Mapping[str, Any] | None = None,
    **step_options: Unpack[CommonOptions],
) -> Any:
    """A step where ``model`` calls tools until it answers; its result is a ``ToolLoopResult``.

    The loop (``actors.tools.run_tool_loop``) is journaled turn by turn: on resume, tool
    calls whose results were journaled are not run again. Calls of tools that need
    approval halt the run until a human decides (``reactor runs approve|reject``), then
    ``resume`` applies the decision.

    Args:
        prompt: The prompt template.
        model: The model (a template).
        allow: The tools offered (names, globs, ``tag:x``); all of the runner's by default.
        host: The ModelHost to ask; by default one that serves ``model``.
        system: A system prompt template.
        runner: The ToolRunner actor's name.
        identity: Who is calling (policies, audit); default ``Reactor.step``.
        max_turns: Model turns at most.
        budget_tokens: Tokens over all turns at most.
        budget_usd: Cost over all turns at most (priced models).
        tool_choice: ``auto``, ``required``, ``none`` or a tool's name.
        native: The provider's tool calling (``False``: JSON in the text; ``None``: native
            unless the server refuses tools, then JSON).
        docs: Put the capability docs in the system prompt.
        context_chars: Window the conversation to this many characters.
        keep_turns: Turns windowing always keeps whole.
        turn_timeout: Seconds a model turn, or a turn's tool calls, may take.
        temperature: Sampling temperature.
        max_tokens: Output tokens per turn.
        options: Vendor-specific request fields.
        args: Sources for placeholders that are not bound by name.
        **step_options: The common step options (:class:`~dsl.kinds.CommonOptions`).
    """
    impl = ToolsImpl(
        prompt=prompt,
        model=model,
        host=host,
        system=system,
        allow=tuple(allow) if allow is not None and not isinstance(allow, str) else allow,  # type: ignore[arg-type]
        runner=runner,
        identity=identity,
        max_turns=max_turns,
        budget_tokens=budget_tokens,
        budget_usd=budget_usd,
        tool_choice=tool_choice,
        native=native,
        docs=docs,
        context_chars=context_chars,
        keep_turns=keep_turns,
        turn_timeout=turn_timeout,
        temperature=temperature,
        max_tokens=max_tokens,
        options=dict(options or {}),
    )
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(step_options))
