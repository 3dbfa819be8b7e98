"""The reactor DSL: binding, definition errors, plans, step kinds, diagrams, locate/find."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import pytest

from actors.llm import Completion
from dsl import (
    DEFAULT_BACKOFF,
    DEFAULT_MAX_RETRIES,
    AroundImpl,
    AskImpl,
    CollectImpl,
    ComposeImpl,
    DefinitionError,
    ForEachImpl,
    FunctionImpl,
    GroupImpl,
    Input,
    PathError,
    Reactor,
    RecursionLimitError,
    Ref,
    StepContext,
    StepDef,
    SwitchImpl,
    TemplateImpl,
    Value,
    around,
    ask,
    collect,
    compose,
    exponential,
    find,
    for_each,
    group,
    locate,
    plan_steps,
    ref,
    resolve_path,
    step,
    switch,
    template,
    template_fields,
    value,
)
from tests.support.reactors import Count, Echo, Outer, shout

# -- helpers -----------------------------------------------------------------------------


@contextmanager
def fails(
    reactor: str, step: str | None = None, argument: str | None = None, *, problem: str
) -> Iterator[None]:
    """Expect a DefinitionError located at reactor/step/argument whose problem says ``problem``."""
    with pytest.raises(DefinitionError) as info:
        yield
    error = info.value
    assert (error.reactor, error.step, error.argument) == (reactor, step, argument)
    where = [f"reactor '{reactor}'"]
    if step is not None:
        where.append(f"step '{step}'")
    if argument is not None:
        where.append(f"argument '{argument}'")
    assert str(error) == f"{', '.join(where)}: {error.problem}"
    assert problem in error.problem, error.problem


def spec_of(reactor: type[Reactor], name: str) -> Any:
    return reactor.__plan__.steps[name]


def function_impl(reactor: type[Reactor], name: str) -> FunctionImpl:
    impl = spec_of(reactor, name).impl
    assert isinstance(impl, FunctionImpl)
    return impl


# -- binding -----------------------------------------------------------------------------


def test_parameters_bind_by_name_to_inputs_and_steps() -> None:
    """A parameter named like an input or a step takes its value (a Ref to it)."""

    class Briefing(Reactor):
        topic = Input(str)

        @step
        def research(topic: str) -> dict[str, Any]:
            return {"notes": [topic]}

        @step
        def brief(topic: str, research: dict[str, Any]) -> str:
            return topic

    assert spec_of(Briefing, "research").arguments == {"topic": Ref("topic")}
    assert spec_of(Briefing, "brief").arguments == {
        "topic": Ref("topic"),
        "research": Ref("research"),
    }
    assert spec_of(Briefing, "brief").depends_on == {"topic", "research"}


def test_ref_and_value_defaults_are_sources() -> None:
    """``ref(step, *path)`` and ``value(x)`` defaults become the argument's source."""

    class Briefing(Reactor):
        @step
        def research() -> dict[str, Any]:
            return {"notes": ["a"]}

        @step
        def brief(first: str = ref("research", "notes", 0), limit: int = value(3)) -> str:
            return first * limit

    arguments = spec_of(Briefing, "brief").arguments
    assert arguments == {"first": Ref("research", ("notes", 0)), "limit": Value(3)}
    assert spec_of(Briefing, "brief").depends_on == {"research"}


def test_args_mapping_gives_sources_to_a_function_not_written_for_the_dsl() -> None:
    """``args=`` maps a plain function's parameters to sources."""

    class Loud(Reactor):
        topic = Input(str)
        loud = step(shout, args={"text": ref("topic")})

    assert list(Loud.__plan__.steps) == ["loud"]
    assert spec_of(Loud, "loud").arguments == {"text": Ref("topic")}
    assert function_impl(Loud, "loud").fn is shout


def test_args_mapping_overrides_a_parameter_default_and_name() -> None:
    """An ``args=`` source wins over both a same-named input and a default source."""

    class Pick(Reactor):
        text = Input(str)
        other = Input(str)

        @step(args={"text": ref("other")})
        def pick(text: str = value("x")) -> str:
            return text

    assert spec_of(Pick, "pick").arguments == {"text": Ref("other")}


def test_a_plain_default_with_no_matching_name_keeps_its_default() -> None:
    """A parameter with a plain default and no input or step of its name is no argument."""

    class Defaults(Reactor):
        topic = Input(str)

        @step
        def brief(topic: str, limit: int = 3, style: str | None = None) -> str:
            return topic

    assert spec_of(Defaults, "brief").arguments == {"topic": Ref("topic")}


def test_a_plain_default_yields_to_an_input_of_the_same_name() -> None:
    """A parameter with a plain default still binds when an input has its name."""

    class Defaults(Reactor):
        limit = Input(int, default=5)

        @step
        def brief(limit: int = 3) -> int:
            return limit

    assert spec_of(Defaults, "brief").arguments == {"limit": Ref("limit")}


def test_step_context_parameter_is_excluded_from_arguments() -> None:
    """A parameter annotated StepContext is the context, not an argument."""

    class WithContext(Reactor):
        topic = Input(str)

        @step
        def brief(topic: str, ctx: StepContext) -> str:
            return f"{ctx.attempt} {topic}"

    assert spec_of(WithContext, "brief").arguments == {"topic": Ref("topic")}
    assert function_impl(WithContext, "brief").context_param == "ctx"


def test_step_context_is_found_even_when_other_annotations_do_not_resolve() -> None:
    """With an annotation that cannot be evaluated, ``StepContext`` is still recognised."""

    class Local:
        pass

    class WithContext(Reactor):
        topic = Input(str)

        @step
        def brief(topic: Local, ctx: StepContext) -> Local:
            return topic

    assert function_impl(WithContext, "brief").context_param == "ctx"
    assert function_impl(WithContext, "brief").result_type is Any
    assert spec_of(WithContext, "brief").arguments == {"topic": Ref("topic")}


def test_return_annotation_becomes_result_type() -> None:
    """A step's return annotation is its result_type; none means Any."""

    class Typed(Reactor):
        topic = Input(str)

        @step
        def typed(topic: str) -> dict[str, int]:
            return {topic: 1}

        @step
        def untyped(topic):  # type: ignore[no-untyped-def]
            return topic

    assert spec_of(Typed, "typed").result_type == dict[str, int]
    assert spec_of(Typed, "untyped").result_type is Any


def test_ask_results_are_completions_and_templates_strings() -> None:
    """An ask step's result_type is Completion, a template's str, a composite's its reactor's."""

    class Kinds(Reactor):
        topic = Input(str)
        answer = ask("{topic}", model="m")
        text = template("{topic}")
        counted = compose(Count, doc=ref("topic"))

    assert spec_of(Kinds, "answer").result_type is Completion
    assert spec_of(Kinds, "text").result_type is str
    assert spec_of(Kinds, "counted").result_type is int  # what Count's return step declares


def test_async_functions_are_detected() -> None:
    """``async def`` steps are marked async; plain ``def`` steps are not."""

    class Mixed(Reactor):
        topic = Input(str)

        @step
        async def fetch(topic: str) -> str:
            return topic

        @step
        def parse(fetch: str) -> str:
            return fetch

    assert function_impl(Mixed, "fetch").is_async is True
    assert function_impl(Mixed, "parse").is_async is False


def test_the_class_attribute_names_a_step_made_from_a_function() -> None:
    """``loud = step(fn)`` is the step ``loud``, so one function can make two steps."""

    class Twice(Reactor):
        first = Input(str)
        second = Input(str)
        loud_first = step(shout, args={"text": ref("first")})
        loud_second = step(shout, args={"text": ref("second")})
        plain = step(lambda first: first)

    assert list(Twice.__plan__.steps) == ["loud_first", "loud_second", "plain"]


def test_name_option_renames_a_step() -> None:
    """``@step(name=...)`` gives the step that name instead of the function's."""

    class Renamed(Reactor):
        topic = Input(str)

        @step(name="summary")
        def make_summary(topic: str) -> str:
            return topic

        @step
        def title(summary: str) -> str:
            return summary

    assert list(Renamed.__plan__.steps) == ["summary", "title"]
    assert spec_of(Renamed, "title").arguments == {"summary": Ref("summary")}


def test_step_names_a_step_of_another_kind() -> None:
    """``step(compose(...), name=...)`` names a composite (how ``WithSteps`` adds one)."""
    made = step(compose(Echo, text=value("hi")), name="echoed", max_retries=1)
    assert (made.name, made.named, made.options["max_retries"]) == ("echoed", True, 1)
    assert made.sources == {"text": value("hi")}
    with pytest.raises(TypeError, match="give a compose/for_each/... step its sources"):
        step(compose(Echo), name="echoed", args={"text": value("hi")})


def test_step_options_are_stored_and_normalised() -> None:
    """Options are kept on the spec; hooks, a number backoff and an int timeout are normalised."""

    def where(arguments: dict[str, Any]) -> bool:
        return True

    def undo(result: Any, arguments: dict[str, Any]) -> None:
        return None

    class Opts(Reactor):
        x = Input(int)

        @step
        def plain(x: int) -> int:
            return x

        @step(
            wait_for="plain",
            where=where,
            undo=undo,
            max_retries=0,
            backoff=2,
            timeout=3,
            description="tuned",
        )
        def tuned(x: int) -> int:
            return x

    plain = spec_of(Opts, "plain")
    assert plain.max_retries == DEFAULT_MAX_RETRIES
    assert plain.backoff is DEFAULT_BACKOFF
    assert plain.timeout is None
    assert plain.where is None
    tuned = spec_of(Opts, "tuned")
    assert tuned.wait_for == ("plain",)
    assert tuned.depends_on == {"x", "plain"}
    # Hooks are adapted to the executor's calling convention, wrapping the user's function.
    assert inspect.unwrap(tuned.where) is where
    assert inspect.unwrap(tuned.undo) is undo
    assert tuned.max_retries == 0
    assert tuned.backoff(1, None) == 2.0
    assert tuned.backoff(5, RuntimeError()) == 2.0
    assert tuned.timeout == 3.0
    assert isinstance(tuned.timeout, float)
    assert tuned.description == "tuned"


def test_exponential_backoff_doubles_up_to_its_cap() -> None:
    """Without jitter exponential() doubles from its base and stops at the cap."""
    delay = exponential(0.1, factor=2.0, cap=0.5, jitter=False)
    assert [delay(n, None) for n in (1, 2, 3, 4, 10)] == pytest.approx([0.1, 0.2, 0.4, 0.5, 0.5])
    jittered = exponential(1.0, jitter=True)
    assert all(1.0 <= jittered(2, None) <= 2.0 for _ in range(50))


def test_ref_rejects_bad_names_and_path_items() -> None:
    """ref() needs a non-empty name, and path items that are str or int (not bool)."""
    with pytest.raises(TypeError, match="needs an input or step name"):
        ref("")
    with pytest.raises(TypeError, match="must be a str or an int"):
        ref("x", cast(Any, 1.5))
    with pytest.raises(TypeError, match="must be a str or an int"):
        ref("x", True)


def test_sources_describe_themselves() -> None:
    """Ref.describe() reads like Python access; Value.describe() shortens long reprs."""
    assert Ref("research", ("notes", 0, "text")).describe() == "research.notes[0].text"
    assert Value(3).describe() == "3"
    assert Value("x" * 40).describe() == "'" + "x" * 20 + "..."


def test_resolve_path_walks_keys_attributes_and_indexes() -> None:
    """resolve_path() walks mappings, attributes and indexes; PathError names the stop."""
    root = {"draft": Completion(content="hi", model="m", provider="ollama"), "items": [10, 20]}
    assert resolve_path(root, ["draft", "content"], what="r") == "hi"
    assert resolve_path(root, ["items", 1], what="r") == 20
    with pytest.raises(PathError, match=r"r\.items has no \[5\] \(it is a list of 2 items\)"):
        resolve_path(root, ["items", 5], what="r")
    with pytest.raises(
        PathError, match=r"r has no \.city \(it is a dict with keys 'draft', 'items'\)"
    ):
        resolve_path(root, ["city"], what="r")
    with pytest.raises(PathError, match=r"r\.draft has no \.nope \(it is a Completion\)"):
        resolve_path(root, ["draft", "nope"], what="r")


# -- definition errors -------------------------------------------------------------------


def test_unknown_parameter_name_suggests_the_closest() -> None:
    """A parameter matching no input or step fails, suggesting a close name."""
    with fails("Briefing", "brief", "notes", problem="no input or step named 'notes'"):

        class Briefing(Reactor):
            note = Input(str)

            @step
            def brief(notes: str) -> str:
                return notes

    with fails("Briefing", "brief", "notes", problem="(did you mean 'note'?)"):

        class Briefing(Reactor):  # type: ignore[no-redef]
            note = Input(str)

            @step
            def brief(notes: str) -> str:
                return notes


def test_unknown_ref_fails_naming_the_argument() -> None:
    """``ref('missing')`` fails at the argument that uses it, with a suggestion."""
    with fails(
        "Briefing",
        "brief",
        "first",
        problem="no input or step named 'notes' (did you mean 'note'?)",
    ):

        class Briefing(Reactor):
            note = Input(str)

            @step
            def brief(first: str = ref("notes", 0)) -> str:
                return first


def test_a_cycle_of_two_steps_fails() -> None:
    """Two steps that need each other are a cycle."""
    with fails("Loop", "a", "b", problem="a cycle: a -> b -> a"):

        class Loop(Reactor):
            @step
            def a(b: int) -> int:
                return b

            @step
            def b(a: int) -> int:
                return a


def test_a_cycle_of_three_steps_fails() -> None:
    """A cycle through three steps is reported with its path, in data-flow order."""
    with fails("Loop", "a", "c", problem="a cycle: a -> b -> c -> a"):

        class Loop(Reactor):
            @step
            def a(c: int) -> int:
                return c

            @step
            def b(a: int) -> int:
                return a

            @step
            def c(b: int) -> int:
                return b


def test_a_cycle_through_wait_for_fails() -> None:
    """A wait_for edge can close a cycle too (named as the wait_for argument)."""
    with fails("Loop", "a", "wait_for", problem="a cycle: a -> b -> a"):

        class Loop(Reactor):
            @step(wait_for=["b"])
            def a() -> int:
                return 1

            @step
            def b(a: int) -> int:
                return a


def test_a_step_named_like_an_input_is_a_duplicate() -> None:
    """A step whose name= equals an input's name fails."""
    with fails("Dup", "topic", problem="duplicate name"):

        class Dup(Reactor):
            topic = Input(str)

            @step(name="topic")
            def other() -> str:
                return ""


def test_two_steps_with_one_name_are_duplicates() -> None:
    """A step renamed with name= onto another step's name fails."""
    with fails("Dup", "first", problem="duplicate name"):

        class Dup(Reactor):
            @step
            def first() -> int:
                return 1

            @step(name="first")
            def second() -> int:
                return 2


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"max_retries": -1}, "option 'max_retries' must be an int >= 0, got -1"),
        ({"max_retries": True}, "option 'max_retries' must be an int >= 0, got True"),
        ({"timeout": 0}, "option 'timeout' must be a number of seconds > 0, got 0"),
        ({"timeout": "1"}, "option 'timeout' must be a number of seconds > 0, got '1'"),
        ({"backoff": "x"}, "option 'backoff' must be seconds >= 0 or fn(n, error), got 'x'"),
        ({"backoff": -1}, "option 'backoff' must be seconds >= 0 or fn(n, error), got -1"),
        ({"where": 3}, "option 'where' must be a function, got 3"),
        ({"guard": "no"}, "option 'guard' must be a function, got 'no'"),
        ({"description": 1}, "option 'description' must be a str, got 1"),
    ],
)
def test_a_wrong_option_value_fails(options: dict[str, Any], problem: str) -> None:
    """Each option's value is checked when the reactor is defined."""
    with fails("Tuned", "work", problem=problem):

        class Tuned(Reactor):
            x = Input(int)

            @step(**options)
            def work(x: int) -> int:
                return x


def test_an_unknown_option_suggests_the_closest() -> None:
    """A misspelt option fails, suggesting the option meant."""
    options: dict[str, Any] = {"max_retrys": 3}
    with fails(
        "Tuned", "work", problem="unknown option 'max_retrys' (did you mean 'max_retries'?)"
    ):

        class Tuned(Reactor):
            x = Input(int)

            @step(**options)
            def work(x: int) -> int:
                return x


def test_an_option_of_another_step_kind_is_refused_plainly() -> None:
    """``undo`` on an ask step says it does not apply (not 'did you mean undo')."""
    options: dict[str, Any] = {"undo": lambda result, arguments: None}
    with fails("Asking", "answer", problem="option 'undo' does not apply to this kind of step"):

        class Asking(Reactor):
            topic = Input(str)
            answer = ask("{topic}", model="m", **options)


def test_args_naming_a_parameter_the_function_lacks_fails() -> None:
    """``args=`` for a parameter the function does not take fails."""
    with fails("Loud", "loud", "txt", problem="the function shout() takes no parameter 'txt'"):

        class Loud(Reactor):
            topic = Input(str)
            loud = step(shout, args={"txt": ref("topic")})


def test_args_with_a_plain_value_instead_of_a_source_fails() -> None:
    """``args=`` values must be ref() or value() sources."""
    with fails("Loud", "loud", "text", problem="'hi' is not a source"):

        class Loud(Reactor):
            loud = step(shout, args={"text": "hi"})


@pytest.mark.parametrize("kind", ["args", "kwargs"])
def test_a_step_function_cannot_take_star_args(kind: str) -> None:
    """``*args`` and ``**kwargs`` cannot be bound by name."""

    def star(*values: int) -> int:
        return 0

    def double_star(**values: int) -> int:
        return 0

    fn = star if kind == "args" else double_star
    with fails("Star", "star", "values", problem="cannot take *args or **kwargs"):

        class Star(Reactor):
            star = step(fn)


def test_a_step_cannot_take_its_own_result() -> None:
    """A step referring to itself, by ref() or by parameter name, fails plainly."""
    with fails("Selfish", "again", "previous", problem="a step cannot take its own result"):

        class Selfish(Reactor):
            @step
            def again(previous: int = ref("again")) -> int:
                return previous

    with fails("Selfish", "again", "again", problem="a step cannot take its own result"):

        class Selfish(Reactor):  # type: ignore[no-redef]
            @step
            def again(again: int) -> int:
                return again


def test_returns_must_name_a_step() -> None:
    """``returns=`` naming no step fails."""
    with fails("Wrong", problem="returns='nope' is not a step of this reactor"):

        class Wrong(Reactor, returns="nope"):
            x = Input(int)

            @step
            def work(x: int) -> int:
                return x


def test_returns_cannot_name_an_input() -> None:
    """``returns=`` naming an input fails: only a step's result can be returned."""
    with fails("Wrong", problem="returns='x' is not a step"):

        class Wrong(Reactor, returns="x"):
            x = Input(int)

            @step
            def work(x: int) -> int:
                return x


def test_a_reactor_needs_a_step() -> None:
    """A reactor with inputs and no steps fails."""
    with fails("Empty", problem="a reactor needs at least one step"):

        class Empty(Reactor):
            x = Input(int)


def test_ask_with_an_unknown_placeholder_fails() -> None:
    """A prompt placeholder matching no input or step fails, with a suggestion."""
    with fails(
        "Asking",
        "answer",
        "topik",
        problem="no input or step named 'topik' (did you mean 'topic'?)",
    ):

        class Asking(Reactor):
            topic = Input(str)
            answer = ask("Tell me about {topik}", model="m")


def test_ask_with_an_unknown_system_placeholder_fails() -> None:
    """System prompt placeholders are checked like the prompt's."""
    with fails("Asking", "answer", "persona", problem="no input or step named 'persona'"):

        class Asking(Reactor):
            topic = Input(str)
            answer = ask("{topic}", model="m", system="You are {persona}")


def test_ask_model_must_be_text() -> None:
    """A model that is not a string fails when the class is defined."""
    with fails("Asking", "answer", problem="option 'model' must be a model id (a string), got 3"):

        class Asking(Reactor):
            topic = Input(str)
            answer = ask("{topic}", model=3)  # type: ignore[arg-type]


def test_ask_without_a_model_is_defined() -> None:
    """``ask("...")`` with no model is valid: the engine's default model answers it."""

    class Asking(Reactor):
        topic = Input(str)
        answer = ask("{topic}")

    assert Asking.__plan__.steps["answer"].kind == "ask"


@pytest.mark.parametrize(("prompt", "placeholder"), [("hi {}", ""), ("hi {0}", "0")])
def test_positional_placeholders_fail(prompt: str, placeholder: str) -> None:
    """``{}`` and ``{0}`` cannot be bound by name, so they fail when defined."""
    with fails(
        "Tmpl", "text", placeholder, problem=f"placeholder {{{placeholder}}} must be a name"
    ):

        class Tmpl(Reactor):
            text = template(prompt)


def test_a_malformed_template_fails() -> None:
    """A template str.format cannot parse fails when defined."""
    with fails("Tmpl", "text", problem="bad template 'hi {topic'"):

        class Tmpl(Reactor):
            topic = Input(str)
            text = template("hi {topic")


def test_a_template_source_with_no_placeholder_fails() -> None:
    """A keyword source the template does not use fails."""
    with fails("Tmpl", "text", "extra", problem="the template has no placeholder {extra}"):

        class Tmpl(Reactor):
            topic = Input(str)
            text = template("About {topic}", extra=ref("topic"))


@pytest.mark.parametrize("kind", ["compose", "for_each", "switch", "group", "around"])
def test_a_composite_needs_a_reactor_subclass(kind: str) -> None:
    """compose/for_each/switch/group/around with a non-Reactor fail."""
    bad: Any = dict

    async def wrapper(arguments: dict[str, Any], run: Any) -> Any:
        return await run(arguments)

    makers = {
        "compose": lambda: compose(bad),
        "for_each": lambda: for_each(ref("items"), bad),
        "switch": lambda: switch(ref("items"), [(bool, bad)]),
        "group": lambda: group(bad),
        "around": lambda: around(bad, wrapper),
    }
    with fails("Composite", "sub", problem="<class 'dict'> is not a Reactor subclass"):

        class Composite(Reactor):
            items = Input(list[str])
            sub = makers[kind]()


def test_the_reactor_base_class_is_not_a_sub_reactor() -> None:
    """``compose(Reactor)`` fails: the base class has no plan."""
    with fails("Composite", "sub", problem="is not a Reactor subclass"):

        class Composite(Reactor):
            sub = compose(Reactor)


def test_a_switch_case_must_be_a_predicate_reactor_pair() -> None:
    """A switch case that is not ``(predicate, Reactor)`` fails, numbered."""
    cases: Any = [(bool, Echo), (Echo,)]
    with fails("Switching", "branch", problem="case 2 must be a (predicate, Reactor) pair"):

        class Switching(Reactor):
            text = Input(str)
            branch = switch(ref("text"), cases)


def test_for_each_element_must_be_an_input_of_the_sub_reactor() -> None:
    """``element=`` naming no input of the sub-reactor fails."""
    with fails(
        "Each", "counts", "element", problem="Count has no input 'text' to receive each element"
    ):

        class Each(Reactor):
            docs = Input(list[str])
            counts = for_each(ref("docs"), Count, element="text")


def test_for_each_batch_size_must_be_positive() -> None:
    """``batch_size=0`` fails."""
    with fails("Each", "counts", "batch_size", problem="batch_size must be >= 1, got 0"):

        class Each(Reactor):
            docs = Input(list[str])
            counts = for_each(ref("docs"), Count, batch_size=0)


def test_a_composite_whose_required_input_cannot_be_bound_fails() -> None:
    """A sub-reactor's required input with no source here fails at that input."""
    with fails(
        "Composing", "counted", "doc", problem="the input 'doc' of Count has no input or step"
    ):

        class Composing(Reactor):
            docs = Input(str)
            counted = compose(Count)

    with fails("Composing", "counted", "doc", problem="(did you mean 'docs'?)"):

        class Composing(Reactor):  # type: ignore[no-redef]
            docs = Input(str)
            counted = compose(Count)


def test_a_composite_source_for_no_input_of_the_sub_reactor_fails() -> None:
    """A keyword source naming no input of the sub-reactor fails."""
    with fails("Composing", "counted", "words", problem="Count has no input 'words'"):

        class Composing(Reactor):
            doc = Input(str)
            counted = compose(Count, words=ref("doc"))


def test_collect_needs_sources() -> None:
    """collect() with no arguments, or with a plain value, fails."""
    with fails("Collecting", "both", problem="collect() needs at least one argument"):

        class Collecting(Reactor):
            both = collect()

    with fails("Collecting", "both", "a", problem="1 is not a source"):

        class Collecting(Reactor):  # type: ignore[no-redef]
            both = collect(a=1)


def test_wait_for_an_unknown_step_fails() -> None:
    """``wait_for`` naming no step fails at the wait_for argument, with a suggestion."""
    with fails(
        "Waiting",
        "second",
        "wait_for",
        problem="no input or step named 'frist' (did you mean 'first'?)",
    ):

        class Waiting(Reactor):
            @step
            def first() -> int:
                return 1

            @step(wait_for=["frist"])
            def second() -> int:
                return 2


@pytest.mark.parametrize(
    ("keywords", "problem"),
    [
        ({"max_concurrency": 0}, "max_concurrency must be an int >= 1, got 0"),
        ({"max_concurrency": 1.5}, "max_concurrency must be an int >= 1, got 1.5"),
        ({"timeout": 0}, "timeout must be seconds > 0, got 0"),
        ({"timeout": "5"}, "timeout must be seconds > 0, got '5'"),
        ({"on_timeout": "soft"}, "on_timeout must be 'fail' or 'halt', got 'soft'"),
    ],
)
def test_wrong_class_keywords_fail(keywords: dict[str, Any], problem: str) -> None:
    """The class keywords max_concurrency, timeout and on_timeout are checked."""
    with fails("Limited", problem=problem):

        class Limited(Reactor, **keywords):
            x = Input(int)

            @step
            def work(x: int) -> int:
                return x


def test_wrong_inputs_fail() -> None:
    """An input's transform must be callable, and its default must not be a source."""
    transform: Any = "upper"
    with fails("Inputs", "topic", problem="transform must be a function, got 'upper'"):

        class Inputs(Reactor):
            topic = Input(str, transform=transform)

            @step
            def work(topic: str) -> str:
                return topic

    with fails("Inputs", "topic", problem="an input's default is a plain value, not a source"):

        class Inputs(Reactor):  # type: ignore[no-redef]
            other = Input(str)
            topic = Input(str, default=ref("other"))

            @step
            def work(topic: str) -> str:
                return topic


def test_recursion_limit_error_names_the_stack() -> None:
    """RecursionLimitError is a DefinitionError whose message shows the stack."""
    error = RecursionLimitError("too deep", reactor="B", step="again", stack=("A", "B", "A"))
    assert isinstance(error, DefinitionError)
    assert (error.reactor, error.step, error.argument) == ("B", "again", None)
    assert str(error) == "reactor 'B', step 'again': too deep (stack: A -> B -> A)"


def test_step_needs_a_function() -> None:
    """@step applied to something that is not a function raises TypeError at once."""
    not_a_function: Any = 3
    with pytest.raises(TypeError, match="@step needs a function, got 3"):
        step(not_a_function)


# -- plans -------------------------------------------------------------------------------


class Pipeline(Reactor):
    """Fetch, parse and summarise.

    Second paragraph.
    """

    url = Input(str)
    limit = Input(int, default=3, description="at most this many")

    @step
    def summary(parsed: list[str], limit: int) -> str:
        return " ".join(parsed[:limit])

    @step
    def parsed(fetched: str) -> list[str]:
        return fetched.split()

    @step
    def fetched(url: str) -> str:
        return url

    @step
    def audit(url: str) -> str:
        return url


def test_plan_order_is_topological() -> None:
    """Each step comes after every step it depends on, whatever the definition order."""
    order = Pipeline.__plan__.order
    assert sorted(order) == ["audit", "fetched", "parsed", "summary"]
    assert order.index("fetched") < order.index("parsed") < order.index("summary")
    for name, spec in Pipeline.__plan__.steps.items():
        for dependency in spec.depends_on & set(Pipeline.__plan__.steps):
            assert order.index(dependency) < order.index(name)


def test_plan_dependents_map_each_name_to_the_steps_needing_it() -> None:
    """Plan.dependents lists, for every input and step, the steps that use it."""
    assert dict(Pipeline.__plan__.dependents) == {
        "url": ("fetched", "audit"),
        "limit": ("summary",),
        "summary": (),
        "parsed": ("summary",),
        "fetched": ("parsed",),
        "audit": (),
    }


def test_plan_returns_the_last_step_by_default() -> None:
    """Without ``returns=`` the last step written is returned; with it, the one named."""
    assert Pipeline.__plan__.returns == "audit"

    class Chosen(Reactor, returns="first"):
        @step
        def first() -> int:
            return 1

        @step
        def second(first: int) -> int:
            return first

    assert Chosen.__plan__.returns == "first"


def test_plan_description_is_the_docstring() -> None:
    """Plan.description is the class docstring, stripped; none gives ''."""
    assert Pipeline.__plan__.description.startswith("Fetch, parse and summarise.")
    assert Pipeline.__plan__.description.endswith("Second paragraph.")

    class Bare(Reactor):
        @step
        def only() -> int:
            return 1

    assert Bare.__plan__.description == ""


def test_plan_inputs_keep_order_required_and_defaults() -> None:
    """Inputs are in definition order; an input with a default is not required."""
    inputs = Pipeline.__plan__.inputs
    assert list(inputs) == ["url", "limit"]
    assert inputs["url"].required is True
    assert inputs["limit"].required is False
    assert inputs["limit"].default == 3
    assert inputs["limit"].description == "at most this many"
    assert inputs["url"].type is str


def test_plan_keeps_class_keywords_and_is_read_only() -> None:
    """max_concurrency and timeout are kept; the plan's mappings cannot be changed."""

    class Limited(Reactor, max_concurrency=2, timeout=1.5):
        @step
        def only() -> int:
            return 1

    plan = Limited.__plan__
    assert (plan.reactor, plan.max_concurrency, plan.timeout) == ("Limited", 2, 1.5)
    assert Pipeline.__plan__.max_concurrency is None
    assert Pipeline.__plan__.timeout is None
    steps: Any = plan.steps
    with pytest.raises(TypeError):
        steps["other"] = None


# -- ask and template --------------------------------------------------------------------


def test_template_fields_are_placeholder_roots() -> None:
    """template_fields() gives each placeholder's root once, ignoring escaped braces."""
    text = "{draft.content} {items[0]} {items[1]!r} {n:>3} {{literal}} {draft}"
    assert template_fields(text) == ["draft", "items", "n"]


def test_ask_placeholders_become_arguments() -> None:
    """Prompt and system placeholders, including sub-paths, bind by their roots."""

    class Asking(Reactor):
        items = Input(list[str])
        persona = Input(str)
        draft = ask("Draft about {items[0]}", model="m")
        review = ask(
            "Review {draft.content} against {items[0]} and {items[1]}",
            model="qwen",
            host="local",
            system="You are {persona}.",
            temperature=0.2,
            max_tokens=100,
            options={"seed": 1},
        )

    review = spec_of(Asking, "review")
    assert review.arguments == {
        "draft": Ref("draft"),
        "items": Ref("items"),
        "persona": Ref("persona"),
    }
    assert review.kind == "ask"
    assert review.impl == AskImpl(
        prompt="Review {draft.content} against {items[0]} and {items[1]}",
        model="qwen",
        host="local",
        system="You are {persona}.",
        temperature=0.2,
        max_tokens=100,
        options={"seed": 1},
    )


def test_ask_args_give_a_placeholder_another_source() -> None:
    """``args=`` binds a placeholder to a ref() or value() instead of by name."""

    class Asking(Reactor):
        topic = Input(str)
        answer = ask(
            "{subject} in {n} words", model="m", args={"subject": ref("topic"), "n": value(5)}
        )

    assert spec_of(Asking, "answer").arguments == {"subject": Ref("topic"), "n": Value(5)}


def test_template_placeholders_bind_by_name_or_keyword() -> None:
    """A template's placeholders bind by name, or to keyword sources."""

    class Templating(Reactor):
        topic = Input(str)
        text = template("{topic}: {subject.title} x{count}", subject=ref("topic"), count=value(2))

    text = spec_of(Templating, "text")
    assert text.impl == TemplateImpl("{topic}: {subject.title} x{count}")
    assert text.arguments == {"topic": Ref("topic"), "subject": Ref("topic"), "count": Value(2)}
    assert text.kind == "template"


# -- composites --------------------------------------------------------------------------


def test_compose_binds_sub_reactor_inputs_by_name() -> None:
    """compose() binds each sub-reactor input to the outer input or step of that name."""

    class Composing(Reactor):
        doc = Input(str)
        lang = Input(str)
        counted = compose(Count)

    counted = spec_of(Composing, "counted")
    assert counted.impl == ComposeImpl(Count)
    assert counted.arguments == {"doc": Ref("doc"), "lang": Ref("lang")}
    assert counted.sub_reactors == (Count,)
    assert counted.kind == "compose"


def test_compose_binds_keyword_sources_and_leaves_optional_inputs_unbound() -> None:
    """Keyword sources bind sub-reactor inputs; an optional input with no match is omitted."""

    class Composing(Reactor):
        text = Input(str)
        counted = compose(Count, doc=ref("text"))

    assert spec_of(Composing, "counted").arguments == {"doc": Ref("text")}


def test_for_each_element_defaults_to_the_first_input() -> None:
    """for_each() feeds each element to the sub-reactor's first input unless told."""

    class Each(Reactor):
        docs = Input(list[str])
        lang = Input(str)
        counts = for_each(ref("docs"), Count)
        by_lang = for_each(
            ref("docs"), Count, element="lang", batch_size=5, ordered=False, doc=ref("lang")
        )

    counts = spec_of(Each, "counts")
    assert counts.impl == ForEachImpl(Count, over="__over__", element="doc")
    assert counts.arguments == {"__over__": Ref("docs"), "lang": Ref("lang")}
    assert counts.kind == "for_each"
    by_lang = spec_of(Each, "by_lang")
    assert by_lang.impl == ForEachImpl(
        Count, over="__over__", element="lang", batch_size=5, ordered=False
    )
    with fails("Each2", "counts", "doc", problem="the input 'doc' of Count"):

        class Each2(Reactor):
            langs = Input(list[str])
            counts = for_each(ref("langs"), Count, element="lang")


def test_switch_keeps_cases_and_default_and_binds_every_branch() -> None:
    """switch() keeps its cases and default; inputs of every branch bind."""

    def short(text: str) -> bool:
        return len(text) < 5

    class Switching(Reactor):
        text = Input(str)
        doc = Input(str)
        branch = switch(ref("text"), [(short, Echo)], default=Count)
        bare = switch(ref("text"), [(short, Echo)])

    branch = spec_of(Switching, "branch")
    assert branch.impl == SwitchImpl(on="__on__", cases=((short, Echo),), default=Count)
    assert branch.arguments == {"__on__": Ref("text"), "text": Ref("text"), "doc": Ref("doc")}
    assert branch.sub_reactors == (Echo, Count)
    assert branch.kind == "switch"
    assert spec_of(Switching, "bare").sub_reactors == (Echo,)
    assert spec_of(Switching, "bare").impl.default is None


def test_group_around_and_collect_are_kept() -> None:
    """group() keeps before/after, around() its wrapper, collect() its sources."""

    def before(arguments: dict[str, Any]) -> None:
        return None

    def after(arguments: dict[str, Any], result: Any) -> None:
        return None

    async def wrapper(arguments: dict[str, Any], run: Any) -> Any:
        return await run(arguments)

    class Composite(Reactor):
        text = Input(str)
        grouped = group(Echo, before=before, after=after)
        wrapped = around(Echo, wrapper, text=ref("grouped"))
        both = collect(first=ref("grouped"), second=ref("wrapped"), n=value(1))

    grouped = spec_of(Composite, "grouped")
    assert grouped.impl == GroupImpl(Echo, before, after)
    assert grouped.arguments == {"text": Ref("text")}
    assert grouped.kind == "group"
    wrapped = spec_of(Composite, "wrapped")
    assert wrapped.impl == AroundImpl(Echo, wrapper)
    assert wrapped.arguments == {"text": Ref("grouped")}
    assert wrapped.kind == "around"
    both = spec_of(Composite, "both")
    assert both.impl == CollectImpl()
    assert both.arguments == {"first": Ref("grouped"), "second": Ref("wrapped"), "n": Value(1)}
    assert both.kind == "collect"
    assert both.sub_reactors == ()
    assert Composite.__plan__.order == ("grouped", "wrapped", "both")


# -- mermaid -----------------------------------------------------------------------------


class Drawn(Reactor, returns="brief"):
    """A reactor drawn in the diagram tests."""

    topic = Input(str)
    docs = Input(list[str], default=[])
    draft = ask("About {topic}", model="m")
    counts = for_each(ref("docs"), Count)

    @step(wait_for=["counts"])
    def brief(draft: Completion, first: str = ref("docs", 0), n: int = value(2)) -> str:
        return first * n

    shown = template("{brief}")


def test_mermaid_draws_inputs_steps_and_edges() -> None:
    """Every input, step and data edge is drawn; sub-path and renamed edges are labelled."""
    chart = Drawn.to_mermaid()
    assert chart.startswith("flowchart TD\n")
    assert '    topic(["topic"])' in chart
    assert '    docs(["docs"])' in chart
    assert '    draft{{"draft: ask"}}' in chart
    assert '    counts[["counts: for_each Count"]]' in chart
    assert '    shown[/"shown: template"/]' in chart
    assert "    topic --> draft\n" in chart
    assert '    docs -->|"over"| counts\n' in chart
    assert '    docs -->|"first = docs[0]"| brief\n' in chart
    assert "    draft --> brief\n" in chart


def test_mermaid_draws_wait_for_dotted_and_the_returned_step_doubled() -> None:
    """A wait_for is a dotted edge; the returned step has a double-circle shape."""
    chart = Drawn.to_mermaid()
    assert "    counts -.-> brief\n" in chart
    assert '    brief((("brief")))' in chart
    assert "brief[" not in chart


def test_mermaid_snapshot_of_a_small_reactor() -> None:
    """A small reactor's whole diagram, exactly."""

    class Small(Reactor):
        topic = Input(str)
        draft = ask("About {topic}", model="m")

        @step(wait_for=["draft"])
        def title(topic: str, head: str = ref("draft", "content")) -> str:
            return head

        counted = compose(Count, doc=ref("title"))

    assert Small.to_mermaid() == textwrap.dedent(
        """\
        flowchart TD
            topic(["topic"])
            draft{{"draft: ask"}}
            title["title"]
            counted((("counted: compose Count")))
            topic --> draft
            topic --> title
            draft -->|"head = draft.content"| title
            draft -.-> title
            title -->|"doc"| counted
        """
    )


def test_mermaid_quotes_labels() -> None:
    """A double quote in a label is escaped for Mermaid."""

    class Quoted(Reactor):
        data = Input(dict[str, str])

        @step
        def pick(x: str = ref("data", 'say "hi"')) -> str:
            return x

    assert '    data -->|"x = data.say #quot;hi#quot;"| pick\n' in Quoted.to_mermaid()


# -- locate and find ---------------------------------------------------------------------


@pytest.fixture
def user_files() -> Iterator[None]:
    """Modules that find() loads from files are forgotten after the test."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("reactor_user_file_"):
            del sys.modules[name]


def test_locate_and_find_round_trip_a_module_level_reactor() -> None:
    """locate() gives module:Qualname; find() gives the same class back."""
    assert locate(Count) == "tests.support.reactors:Count"
    assert find("tests.support.reactors:Count") is Count
    assert locate(Outer.Inner) == "tests.support.reactors:Outer.Inner"
    assert find(locate(Outer.Inner)) is Outer.Inner
    assert find(locate(shout)) is shout


@pytest.mark.usefixtures("user_files")
def test_find_loads_a_reactor_file_and_locate_gives_its_path(tmp_path: Path) -> None:
    """find('path.py:Name') loads the file; locate() of that class gives the path back."""
    path = tmp_path / "flows.py"
    path.write_text(
        textwrap.dedent(
            """\
            from dsl import Input, Reactor, step

            class FromFile(Reactor):
                x = Input(int)

                @step
                def double(x: int) -> int:
                    return 2 * x
            """
        )
    )
    loaded = find(f"{path}:FromFile")
    assert loaded.__plan__.reactor == "FromFile"
    assert list(loaded.__plan__.steps) == ["double"]
    assert locate(loaded) == f"{path.resolve()}:FromFile"
    assert find(locate(loaded)) is loaded


@pytest.mark.usefixtures("user_files")
def test_find_resolves_a_relative_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A relative 'file.py:Name' is found from the working directory."""
    (tmp_path / "rel.py").write_text("VALUE = 42\n")
    monkeypatch.chdir(tmp_path)
    assert find("rel.py:VALUE") == 42


@pytest.mark.usefixtures("user_files")
def test_find_forgets_a_file_that_fails_to_load(tmp_path: Path) -> None:
    """A file that raises while loading is not left half-loaded in sys.modules."""
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('broken on purpose')\n")
    before = set(sys.modules)
    with pytest.raises(RuntimeError, match="broken on purpose"):
        find(f"{path}:Anything")
    assert set(sys.modules) == before
    path.write_text("FIXED = True\n")
    assert find(f"{path}:FIXED") is True


def test_find_gives_the_running_script_s_own_class_back(tmp_path: Path) -> None:
    """A script that resumes its own halted run is not loaded a second time.

    ``python flows.py`` records its reactor as ``flows.py:Name``; resuming in the same
    process must use the script's class (and its module-level state), not run the file
    again from the top under another name.
    """
    script = tmp_path / "flows.py"
    script.write_text(
        textwrap.dedent(
            f"""\
            from actors import System
            from dsl import Halt, Reactor, find, locate, step
            from reactor import Engine, RunHaltedError

            print("script body ran")
            APPROVED = []

            class Approve(Reactor, returns="done"):
                @step
                def done() -> str:
                    return "approved" if APPROVED else Halt("waiting for a human")

            assert find(locate(Approve)) is Approve
            with System() as system, Engine(system, db_path={str(tmp_path / "runs.db")!r},
                                            logging=False) as engine:
                try:
                    engine.run(Approve, {{}})
                except RunHaltedError as halted:
                    APPROVED.append(True)
                    print(engine.resume(halted.run_id).result())
            """
        )
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["script body ran", "approved"]


def test_find_reports_a_missing_file(tmp_path: Path) -> None:
    """A file that does not exist is a LookupError naming it."""
    path = tmp_path / "nowhere.py"
    with pytest.raises(LookupError, match=r"no file '.*nowhere\.py'"):
        find(f"{path}:Name")


def test_find_reports_a_missing_name() -> None:
    """A name the module lacks is a LookupError listing what it has."""
    with pytest.raises(LookupError) as info:
        find("tests.support.reactors:Nope")
    message = str(info.value)
    assert "tests.support.reactors has no 'Nope'" in message
    assert "Count" in message
    assert "Echo" in message
    with pytest.raises(LookupError, match="has no 'Outer.Missing'"):
        find("tests.support.reactors:Outer.Missing")


def test_find_suggests_a_close_name_and_lists_what_the_file_defines(tmp_path: Path) -> None:
    """A misspelt reactor: the close name is suggested; imported names are not listed."""
    path = tmp_path / "flows.py"
    path.write_text(
        "import os\n"
        "from pathlib import Path\n"
        "from dsl import Input, Reactor, template\n\n"
        "LIMIT = 3\n\n"
        "class Briefing(Reactor):\n"
        "    topic = Input(str)\n"
        "    title = template('On {topic}')\n"
    )
    with pytest.raises(LookupError) as info:
        find(f"{path}:Briefng")
    message = str(info.value)
    assert "has no 'Briefng' (did you mean 'Briefing'?); it defines: Briefing, LIMIT" in message
    for imported in ("Path", "Input", "Reactor", "template", "os"):
        assert imported not in message.split("it defines:")[1]


def test_find_reports_a_missing_module_and_a_bad_locator() -> None:
    """An unimportable module and a string without ':' are LookupErrors."""
    with pytest.raises(LookupError, match="cannot import 'tests.support.nope'"):
        find("tests.support.nope:Name")
    with pytest.raises(LookupError, match="is not 'module:Name'"):
        find("no_colon_here")


def test_locate_refuses_what_cannot_be_found_again() -> None:
    """A lambda, a nested function and a class defined in a function cannot be located."""

    def nested() -> None:
        return None

    class Local(Reactor):
        @step
        def only() -> int:
            return 1

    for obj in (lambda: None, nested, Local):
        with pytest.raises(ValueError, match="define it at module level"):
            locate(obj)


# -- steps added while running -----------------------------------------------------------


def _shout_step(**sources: Any) -> StepDef:
    made: StepDef = step(shout, args=sources)
    return made


def test_plan_steps_adds_steps_that_refer_to_existing_ones() -> None:
    """New steps may use existing inputs and steps, and each other."""
    plan = Echo.__plan__

    def join(loud: str, extra: str) -> str:
        return loud + extra

    new = plan_steps(
        "Echo",
        plan.inputs,
        {
            "extra": step(shout, args={"text": ref("loud")}),
            "joined": step(join),
        },
        existing=plan.steps,
    )
    assert list(new) == ["extra", "joined"]
    assert new["extra"].arguments == {"text": Ref("loud")}
    assert new["joined"].arguments == {"loud": Ref("loud"), "extra": Ref("extra")}
    assert list(plan.steps) == ["loud"]


def test_plan_steps_rejects_an_unknown_reference() -> None:
    """A new step referring to no input or step fails."""
    plan = Echo.__plan__
    with fails("Echo", "extra", "text", problem="no input or step named 'lout'"):
        plan_steps(
            "Echo", plan.inputs, {"extra": _shout_step(text=ref("lout"))}, existing=plan.steps
        )


@pytest.mark.parametrize("name", ["loud", "text"])
def test_plan_steps_rejects_a_duplicate_name(name: str) -> None:
    """A new step named like an existing step or input fails."""
    plan = Echo.__plan__
    with fails("Echo", name, problem="duplicate name"):
        plan_steps("Echo", plan.inputs, {name: _shout_step(text=ref("text"))}, existing=plan.steps)


def test_plan_steps_rejects_a_cycle_among_new_steps() -> None:
    """New steps that need each other fail as a cycle."""
    plan = Echo.__plan__
    with fails("Echo", "a", "text", problem="a cycle: a -> b -> a"):
        plan_steps(
            "Echo",
            plan.inputs,
            {"a": _shout_step(text=ref("b")), "b": _shout_step(text=ref("a"))},
            existing=plan.steps,
        )
