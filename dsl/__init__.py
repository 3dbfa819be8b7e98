"""The reactor DSL: define a dependency graph of steps as a Python class.

::

    from dsl import Input, Reactor, ask, step

    class Briefing(Reactor):
        topic = Input(str)
        optimist = ask("Why is {topic} promising?", model="llama3.2")
        sceptic = ask("Why might {topic} fail?", model="qwen2.5")

        @step
        def brief(optimist: Completion, sceptic: Completion) -> str: ...

A step's parameters are its arguments, bound by name to inputs and other steps (or to
:func:`ref` / :func:`value` sources given as defaults), so the data flow reads off the
signatures. The definition is checked and planned when the class is created; mistakes
raise :class:`DefinitionError` naming the reactor, the step and the argument. Running is
the engine's job: :class:`reactor.Engine`.

Each kind of step has its own file in :mod:`dsl.kinds`, where a kind of your own is
registered the same way.
"""

from dsl._errors import DefinitionError, RecursionLimitError
from dsl._inputs import Input
from dsl._outcomes import Continue, Fail, Halt, Retry, Shortcut, WithSteps
from dsl._reactor import Plan, Reactor, find, locate, plan_steps
from dsl._sources import PathError, Ref, Source, Value, ref, resolve_path, value
from dsl.kinds import (
    AUTO,
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    AgentImpl,
    AroundImpl,
    AskImpl,
    Backoff,
    CollectImpl,
    ComposeImpl,
    ConsensusImpl,
    ConversationImpl,
    DebugImpl,
    FallbackImpl,
    FlunkImpl,
    ForEachImpl,
    FunctionImpl,
    GroupImpl,
    Impl,
    Placement,
    RecurseImpl,
    SelectImpl,
    StepContext,
    StepDef,
    StepKind,
    StepSpec,
    StrategyImpl,
    SwitchImpl,
    TemplateImpl,
    ToolsImpl,
    agent,
    around,
    ask,
    collect,
    compose,
    consensus,
    conversation,
    debug,
    exponential,
    fallback,
    flunk,
    for_each,
    group,
    recurse,
    select,
    step,
    strategy,
    switch,
    template,
    template_fields,
    tools,
)

__all__ = [
    "AUTO",
    "DEFAULT_BACKOFF",
    "DEFAULT_MAX_RETRIES",
    "AgentImpl",
    "AroundImpl",
    "AskImpl",
    "Backoff",
    "CollectImpl",
    "ComposeImpl",
    "ConsensusImpl",
    "Continue",
    "ConversationImpl",
    "DebugImpl",
    "DefinitionError",
    "Fail",
    "FallbackImpl",
    "FlunkImpl",
    "ForEachImpl",
    "FunctionImpl",
    "GroupImpl",
    "Halt",
    "Impl",
    "Input",
    "PathError",
    "Placement",
    "Plan",
    "Reactor",
    "RecurseImpl",
    "RecursionLimitError",
    "Ref",
    "Retry",
    "SelectImpl",
    "Shortcut",
    "Source",
    "StepContext",
    "StepDef",
    "StepKind",
    "StepSpec",
    "StrategyImpl",
    "SwitchImpl",
    "TemplateImpl",
    "ToolsImpl",
    "Value",
    "WithSteps",
    "agent",
    "around",
    "ask",
    "collect",
    "compose",
    "consensus",
    "conversation",
    "debug",
    "exponential",
    "fallback",
    "find",
    "flunk",
    "for_each",
    "group",
    "locate",
    "plan_steps",
    "recurse",
    "ref",
    "resolve_path",
    "select",
    "step",
    "strategy",
    "switch",
    "template",
    "template_fields",
    "tools",
    "value",
]
