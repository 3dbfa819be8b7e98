"""Registering a step kind, both sides at once; and the built-in kinds' executors."""

from __future__ import annotations

from typing import Any

from dsl.kinds import StepKind
from dsl.kinds import register as register_definition
from dsl.kinds import unregister as unregister_definition
from reactor.kinds._agent import AgentExecutor, ConversationExecutor
from reactor.kinds._around import AroundExecutor
from reactor.kinds._ask import AskExecutor
from reactor.kinds._collect import CollectExecutor
from reactor.kinds._compose import ComposeExecutor
from reactor.kinds._consensus import ConsensusExecutor
from reactor.kinds._debug import DebugExecutor
from reactor.kinds._fallback import FallbackExecutor
from reactor.kinds._flunk import FlunkExecutor
from reactor.kinds._for_each import ForEachExecutor
from reactor.kinds._function import FunctionExecutor
from reactor.kinds._group import GroupExecutor
from reactor.kinds._recurse import RecurseExecutor
from reactor.kinds._select import SelectExecutor
from reactor.kinds._strategy import StrategyExecutor
from reactor.kinds._switch import SwitchExecutor
from reactor.kinds._template import TemplateExecutor
from reactor.kinds._tools import ToolsExecutor
from reactor.run import StepExecutor, register_executor, unregister_executor

__all__ = ["register", "unregister"]


def register(kind: StepKind[Any], executor: StepExecutor) -> None:
    """Make a step kind usable: its definition for the DSL, its executor for runs.

    Raises:
        dsl.kinds.KindError: The name is taken (by another kind, or another executor);
            nothing is registered then.
    """
    registered = register_definition(kind)
    try:
        register_executor(kind.name, executor)
    except Exception:
        if registered is kind:
            unregister_definition(kind.name)
        raise


def unregister(name: str) -> None:
    """Forget the kind ``name``, both sides (tests that register kinds clean up)."""
    unregister_executor(name)
    unregister_definition(name)


_BUILT_IN: tuple[tuple[str, StepExecutor], ...] = (
    ("function", FunctionExecutor()),
    ("ask", AskExecutor()),
    ("fallback", FallbackExecutor()),
    ("select", SelectExecutor()),
    ("consensus", ConsensusExecutor()),
    ("strategy", StrategyExecutor()),
    ("template", TemplateExecutor()),
    ("collect", CollectExecutor()),
    ("compose", ComposeExecutor()),
    ("for_each", ForEachExecutor()),
    ("switch", SwitchExecutor()),
    ("group", GroupExecutor()),
    ("around", AroundExecutor()),
    ("recurse", RecurseExecutor()),
    ("flunk", FlunkExecutor()),
    ("debug", DebugExecutor()),
    ("tools", ToolsExecutor()),
    ("agent", AgentExecutor()),
    ("conversation", ConversationExecutor()),
)
for _name, _executor in _BUILT_IN:
    register_executor(_name, _executor)
