"""The executors of the step kinds: what running each kind of step means.

One file per kind, named like its definition in ``dsl/kinds/``; importing this package
registers them all (the engine imports it, so they are always there).

=============  =====================  ======================================
kind           file                   how an attempt runs
=============  =====================  ======================================
``function``   ``_function.py``       on the event loop, or in the worker pool
``ask``        ``_ask.py``            a request to a ModelHost actor
``select``     ``_select.py``         a request to the Selector actor
``consensus``  ``_consensus.py``      a request to the Consensus coordinator
``strategy``   ``_strategy.py``       the chooser, then member calls on the I/O loop
``template``   ``_template.py``       at once, in the run
``collect``    ``_collect.py``        at once, in the run
``compose``    ``_compose.py``        a child run
``for_each``   ``_for_each.py``       a child run per element
``switch``     ``_switch.py``         the chosen branch's child run
``group``      ``_group.py``          ``before``, a child run, ``after``
``around``     ``_around.py``         the user's wrapper around a child run
``recurse``    ``_recurse.py``        child runs one after another, each fed the
                                      last one's result
``flunk``      ``_flunk.py``          fails at once (``ForcedFailureError``)
``debug``      ``_debug.py``          a structlog line, at once, in the run
``tools``      ``_tools.py``          a tool loop: a ModelHost and the ToolRunner
``agent``      ``_agent.py``          a request to the agents' router (and
                                      ``conversation``: a team conversation)
=============  =====================  ======================================

A kind of your own: :func:`register` its definition (a :class:`dsl.kinds.StepKind`)
and its executor (a :class:`reactor.run.StepExecutor`) together.
"""

from reactor.kinds._agent import AgentExecutor, ConversationExecutor
from reactor.kinds._around import AroundExecutor
from reactor.kinds._ask import AskExecutor
from reactor.kinds._collect import CollectExecutor
from reactor.kinds._compose import ComposeExecutor
from reactor.kinds._composite import CompositeExecutor
from reactor.kinds._consensus import ConsensusExecutor, answer_review
from reactor.kinds._debug import DebugExecutor
from reactor.kinds._flunk import FlunkExecutor
from reactor.kinds._for_each import ForEachExecutor
from reactor.kinds._function import FunctionExecutor
from reactor.kinds._group import GroupExecutor
from reactor.kinds._recurse import RecurseExecutor
from reactor.kinds._registry import register, unregister
from reactor.kinds._select import SelectExecutor
from reactor.kinds._strategy import StrategyExecutor
from reactor.kinds._switch import SwitchExecutor
from reactor.kinds._template import TemplateExecutor
from reactor.kinds._tools import ToolsExecutor

__all__ = [
    "AgentExecutor",
    "AroundExecutor",
    "AskExecutor",
    "CollectExecutor",
    "ComposeExecutor",
    "CompositeExecutor",
    "ConsensusExecutor",
    "ConversationExecutor",
    "DebugExecutor",
    "FlunkExecutor",
    "ForEachExecutor",
    "FunctionExecutor",
    "GroupExecutor",
    "RecurseExecutor",
    "SelectExecutor",
    "StrategyExecutor",
    "SwitchExecutor",
    "TemplateExecutor",
    "ToolsExecutor",
    "answer_review",
    "register",
    "unregister",
]
