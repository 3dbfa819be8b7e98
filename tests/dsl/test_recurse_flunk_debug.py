"""``recurse``, ``flunk`` and ``debug`` as written: binding, definition-time checks, journaling."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypedDict

import msgspec
import pytest

from dsl import (
    DebugImpl,
    DefinitionError,
    FlunkImpl,
    Input,
    Reactor,
    RecurseImpl,
    StepDef,
    WithSteps,
    collect,
    debug,
    flunk,
    recurse,
    ref,
    step,
    template,
    value,
)
from dsl.kinds import FlowOptions, describe_steps, kind_named, rebuild_steps

# -- reactors to recurse ----------------------------------------------------------------------


class Counter(Reactor):
    """Its result (a collect) gives back both inputs."""

    n = Input(int)
    total = Input(int, default=0)

    @step
    def nxt(n: int) -> int:
        return n - 1

    @step
    def acc(n: int, total: int) -> int:
        return total + n

    out = collect(n=ref("nxt"), total=ref("acc"))


class State(TypedDict):
    n: int
    total: int


class Typed(Reactor):
    n = Input(int)
    total = Input(int)

    @step
    def out(n: int, total: int) -> State:
        return {"n": n - 1, "total": total + n}


@dataclass
class Half:
    n: int


class DataOut(Reactor):
    n = Input(int)
    total = Input(int)

    @step
    def out(n: int) -> Half:
        return Half(n)


class StructOut(Reactor):
    n = Input(int)

    class Box(msgspec.Struct):
        """The result."""

        n: int

    @step
    def out(n: int) -> StructOut.Box:
        return StructOut.Box(n)


class Scalar(Reactor):
    n = Input(int)

    @step
    def out(n: int) -> int:
        return n - 1


class Text(Reactor):
    n = Input(int)
    out = template("{n}")


class Untyped(Reactor):
    n = Input(int)

    @step
    def out(n: int) -> dict[str, Any]:
        return {"n": n}


class Grows(Reactor):
    """Its returned step may add steps: the value inside is the result, of no known type."""

    n = Input(int)

    @step
    def out(n: int) -> WithSteps:
        return WithSteps({"n": n}, [])


def _done(result: Any) -> bool:
    return bool(result)


# -- recurse ----------------------------------------------------------------------------------


def test_recurse_binds_its_first_inputs_like_compose_and_is_drawn_as_a_subroutine() -> None:
    """Inputs by name or by source; the kind, its reactor and its options are on the spec."""

    class Loop(Reactor):
        n = Input(int)
        down = recurse(Counter, max_iterations=5, exit_condition=_done, total=value(10))

    spec = Loop.__plan__.steps["down"]
    assert spec.kind == "recurse"
    assert spec.impl == RecurseImpl(Counter, 5, _done)
    assert spec.arguments == {"n": ref("n"), "total": value(10)}
    assert spec.sub_reactors == (Counter,)
    assert '    down((("down: recurse Counter")))' in Loop.to_mermaid()


@pytest.mark.parametrize("most", [0, -1, True, 2.5, "3"])
def test_max_iterations_must_be_an_int_of_at_least_one(most: Any) -> None:
    """Named: the reactor, the step and the option."""
    with pytest.raises(DefinitionError) as caught:

        class Loop(Reactor):
            n = Input(int)
            down = recurse(Counter, max_iterations=most)

    assert str(caught.value) == (
        f"reactor 'Loop', step 'down', argument 'max_iterations': "
        f"max_iterations must be an int >= 1, got {most!r}"
    )


def test_recurse_without_a_way_to_stop_is_refused() -> None:
    """Neither max_iterations nor exit_condition: it would never stop."""
    with pytest.raises(DefinitionError, match="needs max_iterations or exit_condition"):

        class Loop(Reactor):
            n = Input(int)
            down = recurse(Counter)


def test_an_exit_condition_must_be_a_function() -> None:
    with pytest.raises(DefinitionError, match="argument 'exit_condition': exit_condition must"):

        class Loop(Reactor):
            n = Input(int)
            down = recurse(Counter, exit_condition=True)  # type: ignore[arg-type]


def test_a_result_that_cannot_give_the_required_inputs_is_refused_at_definition() -> None:
    """A collect, a TypedDict or a dataclass missing a required input; a scalar or a str."""
    with pytest.raises(DefinitionError) as caught:

        class FromData(Reactor):
            n = Input(int)
            down = recurse(DataOut, max_iterations=3, total=value(0))

    assert str(caught.value) == (
        "reactor 'FromData', step 'down', argument 'reactor': DataOut cannot be recursed: "
        "its result (step 'out', returning Half) does not give its required input 'total', "
        "and each iteration's result is the next iteration's inputs"
    )
    with pytest.raises(DefinitionError, match=r"Scalar cannot be recursed: its result \(step "):

        class FromScalar(Reactor):
            n = Input(int)
            down = recurse(Scalar, max_iterations=3)

    with pytest.raises(DefinitionError, match="returning str\\) is not a mapping of its inputs"):

        class FromText(Reactor):
            n = Input(int)
            down = recurse(Text, max_iterations=3)

    class Missing(Reactor):
        n = Input(int)

        @step
        def m(n: int) -> int:
            return n

        out = collect(m=ref("m"))

    with pytest.raises(DefinitionError, match=r"a collect of m\) does not give its required"):

        class FromCollect(Reactor):
            n = Input(int)
            down = recurse(Missing, max_iterations=3)


def test_results_that_give_the_inputs_or_whose_type_is_unknown_are_accepted() -> None:
    """Collect, TypedDict, Struct: checked; dict[str, Any], WithSteps: after each iteration."""

    class Loops(Reactor):
        n = Input(int)
        a = recurse(Counter, max_iterations=2)  # total has a default: not needed
        b = recurse(Typed, max_iterations=2, total=value(0))
        c = recurse(StructOut, max_iterations=2)
        d = recurse(Untyped, max_iterations=2)
        e = recurse(Grows, max_iterations=2)

    assert [s.kind for s in Loops.__plan__.steps.values()] == ["recurse"] * 5


def test_recurse_is_journaled_by_locators_and_rebuilt() -> None:
    """A recurse step added while running is written as data and read back."""
    definition = recurse(Counter, max_iterations=4, exit_condition=_done)
    [described] = describe_steps([StepDef(definition.impl, definition.sources, name="loop")])
    assert described["kind"] == "recurse"
    assert described["max_iterations"] == 4
    assert described["exit_condition"].endswith(":_done")
    rebuilt = rebuild_steps([described])["loop"]
    assert rebuilt.impl == RecurseImpl(Counter, 4, _done)


# -- flunk ------------------------------------------------------------------------------------


def test_flunk_binds_its_placeholders_and_carries_other_arguments() -> None:
    """Placeholders by name; ``args`` gives others; it takes only the flow options."""

    class Check(Reactor):
        amount = Input(int)
        limit = Input(int)
        no = flunk(
            "{amount} over {cap}",
            args={"cap": ref("limit"), "why": value("policy")},
            where=lambda a: a["amount"] > a["cap"],
            description="refuse big amounts",
        )

    spec = Check.__plan__.steps["no"]
    assert spec.kind == "flunk"
    assert spec.impl == FlunkImpl("{amount} over {cap}")
    assert spec.arguments == {"amount": ref("amount"), "cap": ref("limit"), "why": value("policy")}
    assert spec.where is not None
    assert spec.description == "refuse big amounts"
    assert set(kind_named("flunk").option_table()) == set(FlowOptions.__annotations__)
    assert '    no((("no: flunk")))' in Check.to_mermaid()


def test_flunk_mistakes_are_definition_errors() -> None:
    """An unknown placeholder, a retry option, a message that is no template."""
    with pytest.raises(DefinitionError, match="argument 'amout': no input or step named 'amout'"):

        class Typo(Reactor):
            amount = Input(int)
            no = flunk("{amout} is too much")

    with pytest.raises(DefinitionError, match="option 'max_retries' does not apply"):

        class Retried(Reactor):
            amount = Input(int)
            no = flunk("no", max_retries=2)  # type: ignore[call-arg]

    with pytest.raises(DefinitionError, match="argument 'message': bad message template"):

        class Broken(Reactor):
            amount = Input(int)
            no = flunk("{amount")


# -- debug ------------------------------------------------------------------------------------


def test_debug_binds_names_and_sources_and_checks_its_level() -> None:
    class Look(Reactor):
        a = Input(int)

        @step
        def b(a: int) -> int:
            return a

        seen = debug("a", "b", level="info", args={"first": ref("b", transform=str)})

    spec = Look.__plan__.steps["seen"]
    assert spec.kind == "debug"
    assert spec.impl == DebugImpl(("a", "b"), "info")
    assert list(spec.arguments) == ["a", "b", "first"]

    with pytest.raises(DefinitionError, match="argument 'level': level must be one of debug"):

        class Loud(Reactor):
            a = Input(int)
            seen = debug("a", level="verbose")

    with pytest.raises(DefinitionError, match=r"no input or step named 'aa' \(did you mean 'a'"):

        class Typo(Reactor):
            a = Input(int)
            seen = debug("aa")

    with pytest.raises(DefinitionError, match="argument 'a': given both by name and as a source"):

        class Twice(Reactor):
            a = Input(int)
            seen = debug("a", args={"a": value(1)})


def test_flunk_and_debug_are_journaled_and_rebuilt() -> None:
    definitions = [
        StepDef(FlunkImpl("no {a}"), name="no"),
        StepDef(DebugImpl(("a",), "warning"), name="seen", options={"wait_for": ["no"]}),
    ]
    rebuilt = rebuild_steps(describe_steps(definitions))
    assert rebuilt["no"].impl == FlunkImpl("no {a}")
    assert rebuilt["seen"].impl == DebugImpl(("a",), "warning")
    assert rebuilt["seen"].options == {"wait_for": ["no"]}
