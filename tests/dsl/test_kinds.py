"""The step-kind registry, definition side: registering, duplicates, drawing, journaling."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from dsl import DefinitionError, Input, Reactor, Source, StepDef, WithSteps, for_each, ref, step
from dsl.kinds import (
    AskKind,
    Binder,
    CommonOptions,
    FunctionKind,
    FunctionOptions,
    KindError,
    StepKind,
    UndoableOptions,
    describe_steps,
    kind_named,
    kind_of,
    kinds,
    rebuild_steps,
    register,
    template_arguments,
    unregister,
)
from tests.support.reactors import Echo


@dataclass(frozen=True, slots=True)
class ShelfImpl:
    """Read ``key`` from a shelf (a test kind)."""

    key: str


class ShelfKind(StepKind[ShelfImpl]):
    name = "shelf"
    impl = ShelfImpl
    options = CommonOptions
    shape = ("[(", ")]")

    def bind(
        self, impl: ShelfImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[ShelfImpl, dict[str, Source]]:
        return impl, template_arguments(binder, [impl.key], sources)

    def describe(self, impl: ShelfImpl) -> dict[str, Any]:
        return {"shelf": {"key": impl.key}}

    def rebuild(self, data: Mapping[str, Any]) -> ShelfImpl:
        return ShelfImpl(**data["shelf"])


class OtherShelfKind(ShelfKind):
    """Another class claiming the same name."""

    impl = ShelfImpl


def shelf(key: str, /, **options: Any) -> Any:
    return StepDef(impl=ShelfImpl(key), options=options)


@pytest.fixture
def registered() -> Iterator[ShelfKind]:
    kind = ShelfKind()
    register(kind)
    yield kind
    unregister("shelf")


def test_built_in_kinds_are_registered() -> None:
    """Every built-in kind is registered under its name, in one file each."""
    names = {k.name for k in kinds()}
    assert names >= {
        "function",
        "ask",
        "template",
        "collect",
        "compose",
        "for_each",
        "switch",
        "group",
        "around",
        "recurse",
        "flunk",
        "debug",
    }
    assert isinstance(kind_named("ask"), AskKind)
    assert kind_named("function").__module__ == "dsl.kinds._function"


def test_a_registered_kind_binds_and_is_drawn_in_its_shape(registered: ShelfKind) -> None:
    """A registered kind's steps bind (placeholders by name) and Mermaid uses its shape."""

    class Pantry(Reactor):
        item = Input(str)
        found = shelf("jar:{item}", max_retries=1)

    spec = Pantry.__plan__.steps["found"]
    assert spec.kind == "shelf"
    assert kind_of(spec.impl) is registered
    assert spec.arguments == {"item": ref("item")}
    assert spec.max_retries == 1
    assert '    found((("found: shelf")))' in Pantry.to_mermaid()  # the returned step


def test_mermaid_uses_the_kind_shape_for_a_step_that_is_not_returned(
    registered: ShelfKind,
) -> None:
    """The shape comes from the kind, not from a table of built-in kinds."""
    assert registered.shape == ("[(", ")]")

    class Pantry(Reactor, returns="label"):
        item = Input(str)
        found = shelf("{item}")

        @step
        def label(found: str) -> str:
            return found

    assert '    found[("found: shelf")]' in Pantry.to_mermaid()


def test_a_duplicate_name_is_a_clear_error(registered: ShelfKind) -> None:
    """A second kind class under a taken name is refused, naming the first."""
    with pytest.raises(KindError, match=r"a step kind named 'shelf' is already registered"):
        register(OtherShelfKind())
    with pytest.raises(KindError, match="already registered"):
        register(type("Function", (FunctionKind,), {})())
    assert kind_named("shelf") is registered


def test_registering_the_same_kind_class_again_keeps_the_first(registered: ShelfKind) -> None:
    """A module imported twice (as a script, then by path) registers again harmlessly."""
    assert register(ShelfKind()) is registered


def test_an_unregistered_definition_is_a_definition_error() -> None:
    """A step whose definition belongs to no registered kind fails when the class is made."""
    with pytest.raises(DefinitionError, match="not the definition of a registered step kind"):

        class Orphan(Reactor):
            found = StepDef(impl=ShelfImpl("x"))

    with pytest.raises(KindError, match="no step kind named 'shelf'"):
        kind_named("shelf")


def test_options_are_declared_once_and_checked_per_kind(registered: ShelfKind) -> None:
    """A kind takes the options of its TypedDict; one it lacks does not apply."""
    assert "undo" not in registered.option_table()
    assert set(FunctionKind().option_table()) == set(FunctionOptions.__annotations__)
    assert set(FunctionOptions.__annotations__) == {*UndoableOptions.__annotations__, "placement"}
    assert registered.option_table()["max_retries"][1].default == 3
    with pytest.raises(DefinitionError, match="option 'undo' does not apply"):

        class Undoing(Reactor):
            found = shelf("k", undo=lambda value, arguments: None)

    with pytest.raises(DefinitionError, match="must be an int >= 0"):

        class Negative(Reactor):
            found = shelf("k", max_retries=-1)


def test_a_custom_kind_has_a_journal_form(registered: ShelfKind) -> None:
    """A step of a registered kind is described as data and rebuilt from it."""
    described = describe_steps([StepDef(ShelfImpl("jar"), name="found", options={"timeout": 2})])
    assert described == (
        {
            "name": "found",
            "kind": "shelf",
            "shelf": {"key": "jar"},
            "args": {},
            "options": {"timeout": 2},
        },
    )
    rebuilt = rebuild_steps(described)["found"]
    assert rebuilt.impl == ShelfImpl("jar")
    assert rebuilt.options == {"timeout": 2}


def test_a_kind_that_cannot_be_journaled_says_so() -> None:
    """The default journal form refuses, naming the step and the kind."""
    definition = for_each(ref("docs"), Echo)
    each = StepDef(definition.impl, definition.sources, name="each")
    with pytest.raises(ValueError, match="step 'each': a for_each step cannot be added"):
        describe_steps([each])


def test_journal_names_an_unknown_kind() -> None:
    """Rebuilding a step of a kind no longer registered names the kind."""
    with pytest.raises(ValueError, match="unknown kind 'shelf'"):
        rebuild_steps([{"name": "found", "kind": "shelf", "shelf": {"key": "k"}}])


def test_a_step_annotated_with_steps_decodes_its_result_as_any() -> None:
    """``-> WithSteps``: the journaled result is the value inside, of no declared type."""

    class Growing(Reactor):
        @step
        def seed() -> WithSteps:
            return WithSteps(1)

        @step
        def maybe(seed: int) -> int | WithSteps:
            return seed

    assert Growing.__plan__.steps["seed"].result_type is Any
    assert Growing.__plan__.steps["maybe"].result_type is Any
