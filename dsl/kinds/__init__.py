"""Step kinds: one file per kind, each a definition class, a :class:`StepKind` and a constructor.

A kind's file holds everything the DSL knows about its steps: the definition class
(what a step of that kind does), the options it takes, how its arguments bind, its
shape in a Mermaid diagram, and how a step of that kind added while a run runs is
written to the journal and read back. The executor that runs it lives in
``reactor/kinds/`` under the same name.

=============  ========================  =================================
kind           file                      constructor
=============  ========================  =================================
``function``   ``_function.py``          :func:`step`
``ask``        ``_ask.py``               :func:`ask`
``fallback``   ``_fallback.py``          :func:`fallback`
``select``     ``_select.py``            :func:`select`
``consensus``  ``_consensus.py``         :func:`consensus`
``strategy``   ``_strategy.py``          :func:`strategy`
``template``   ``_template.py``          :func:`template`
``tools``      ``_tools.py``             :func:`tools`
``agent``      ``_agent.py``             :func:`agent`, :func:`conversation`
``collect``    ``_collect.py``           :func:`collect`
``compose``    ``_compose.py``           :func:`compose`
``for_each``   ``_for_each.py``          :func:`for_each`
``switch``     ``_switch.py``            :func:`switch`
``group``      ``_group.py``             :func:`group`
``around``     ``_around.py``            :func:`around`
``recurse``    ``_recurse.py``           :func:`recurse`
``flunk``      ``_flunk.py``             :func:`flunk`
``debug``      ``_debug.py``             :func:`debug`
=============  ========================  =================================

A kind of your own: subclass :class:`StepKind`, :func:`register` an instance, and give
users a constructor returning a :class:`StepDef`; then register its executor
(``reactor.kinds.register``). The common options (``max_retries``, ``timeout``, ...) are
declared once, in :class:`CommonOptions`.
"""

from dsl.kinds._agent import (
    AgentImpl,
    AgentKind,
    ConversationImpl,
    ConversationKind,
    agent,
    conversation,
)
from dsl.kinds._around import AroundImpl, AroundKind, around
from dsl.kinds._ask import AskImpl, AskKind, ask
from dsl.kinds._binding import Binder, template_arguments, template_fields
from dsl.kinds._collect import CollectImpl, CollectKind, collect
from dsl.kinds._compose import ComposeImpl, ComposeKind, compose
from dsl.kinds._composite import CompositeKind
from dsl.kinds._consensus import ConsensusImpl, ConsensusKind, consensus
from dsl.kinds._debug import LEVELS, DebugImpl, DebugKind, debug
from dsl.kinds._fallback import FallbackImpl, FallbackKind, fallback
from dsl.kinds._flunk import FlunkImpl, FlunkKind, flunk
from dsl.kinds._for_each import ForEachImpl, ForEachKind, for_each
from dsl.kinds._function import FunctionImpl, FunctionKind, function_impl, step
from dsl.kinds._group import GroupImpl, GroupKind, group
from dsl.kinds._journal import describe_steps, rebuild_steps
from dsl.kinds._kind import KindError, StepKind, kind_named, kind_of, kinds, register, unregister
from dsl.kinds._options import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    Backoff,
    CommonOptions,
    FlowOptions,
    FunctionOptions,
    Option,
    UndoableOptions,
    exponential,
)
from dsl.kinds._placement import LOCAL, RAY, Placement, placement_of
from dsl.kinds._recurse import RecurseImpl, RecurseKind, recurse
from dsl.kinds._select import AUTO, SelectImpl, SelectKind, select
from dsl.kinds._spec import Impl, StepContext, StepDef, StepSpec, bind
from dsl.kinds._strategy import StrategyImpl, StrategyStepKind, strategy
from dsl.kinds._switch import SwitchImpl, SwitchKind, switch
from dsl.kinds._template import TemplateImpl, TemplateKind, template
from dsl.kinds._tools import ToolsImpl, ToolsKind, tools

__all__ = [
    "AUTO",
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_RETRIES",
    "LEVELS",
    "LOCAL",
    "RAY",
    "AgentImpl",
    "AgentKind",
    "AroundImpl",
    "AroundKind",
    "AskImpl",
    "AskKind",
    "Backoff",
    "Binder",
    "CollectImpl",
    "CollectKind",
    "CommonOptions",
    "ComposeImpl",
    "ComposeKind",
    "CompositeKind",
    "ConsensusImpl",
    "ConsensusKind",
    "ConversationImpl",
    "ConversationKind",
    "DebugImpl",
    "DebugKind",
    "FallbackImpl",
    "FallbackKind",
    "FlowOptions",
    "FlunkImpl",
    "FlunkKind",
    "ForEachImpl",
    "ForEachKind",
    "FunctionImpl",
    "FunctionKind",
    "FunctionOptions",
    "GroupImpl",
    "GroupKind",
    "Impl",
    "KindError",
    "Option",
    "Placement",
    "RecurseImpl",
    "RecurseKind",
    "SelectImpl",
    "SelectKind",
    "StepContext",
    "StepDef",
    "StepKind",
    "StepSpec",
    "StrategyImpl",
    "StrategyStepKind",
    "SwitchImpl",
    "SwitchKind",
    "TemplateImpl",
    "TemplateKind",
    "ToolsImpl",
    "ToolsKind",
    "UndoableOptions",
    "agent",
    "around",
    "ask",
    "bind",
    "collect",
    "compose",
    "consensus",
    "conversation",
    "debug",
    "describe_steps",
    "exponential",
    "fallback",
    "flunk",
    "for_each",
    "function_impl",
    "group",
    "kind_named",
    "kind_of",
    "kinds",
    "placement_of",
    "rebuild_steps",
    "recurse",
    "register",
    "select",
    "step",
    "strategy",
    "switch",
    "template",
    "template_arguments",
    "template_fields",
    "tools",
    "unregister",
]
