"""Hook signatures are checked when a reactor is defined; ``ref(..., transform=fn)``.

``undo`` and ``compensate`` take their two arguments positionally or by keyword;
``where`` and ``guard`` take the arguments, and optionally the run's context. A hook that
fits none of these is a :class:`~dsl.DefinitionError` naming the reactor, the step and
the option, raised by the class statement rather than in the middle of a rollback.
"""

from __future__ import annotations

from typing import Any

import pytest

from dsl import DefinitionError, Input, Reactor, Ref, Shortcut, ref, step
from dsl.kinds._hooks import adapt_hook


def undo_positional(v: Any, args: dict[str, Any]) -> Any:
    return ("undo", v, args)


def undo_keyword(*, arguments: dict[str, Any], value: Any) -> Any:
    return ("undo", value, arguments)


async def undo_async(v: Any, args: dict[str, Any]) -> Any:
    return ("async undo", v, args)


async def where_async(arguments: dict[str, Any]) -> bool:
    return False


@pytest.mark.parametrize("fn", [undo_positional, undo_keyword], ids=["positional", "keyword"])
def test_undo_is_called_the_same_way_whatever_its_signature(fn: Any) -> None:
    """The adapted undo is called with value= and arguments= and passes them on."""
    adapted = adapt_hook("undo", fn)
    assert adapted(value=1, arguments={"a": 2}) == ("undo", 1, {"a": 2})


async def test_an_async_undo_stays_a_coroutine_function() -> None:
    """An ``async def`` hook is still one once adapted, so it runs on the event loop."""
    import inspect

    adapted = adapt_hook("undo", undo_async)
    assert inspect.iscoroutinefunction(adapted)
    assert await adapted(value=1, arguments={}) == ("async undo", 1, {})


@pytest.mark.parametrize(
    ("fn", "expected"),
    [
        (lambda arguments: ("one", arguments), ("one", {"x": 1})),
        (lambda arguments, ctx: ("two", arguments, ctx), ("two", {"x": 1}, {"t": "a"})),
        (
            lambda arguments, *, context: ("kw", arguments, context),
            ("kw", {"x": 1}, {"t": "a"}),
        ),
        (
            lambda arguments, context=None: ("default", arguments, context),
            ("default", {"x": 1}, {"t": "a"}),
        ),
    ],
    ids=["arguments", "positional-context", "keyword-context", "optional-context"],
)
def test_where_and_guard_may_take_the_context(fn: Any, expected: Any) -> None:
    """Predicates are called as fn(arguments, context), passing the context if they take it."""
    for option in ("where", "guard"):
        assert adapt_hook(option, fn)({"x": 1}, {"t": "a"}) == expected


@pytest.mark.parametrize(
    ("option", "fn", "words"),
    [
        ("undo", lambda: None, "must take (value, arguments)"),
        ("undo", lambda value: None, "takes (value)"),
        ("compensate", lambda a, b, c: None, "must take (error, arguments)"),
        ("where", lambda: True, "must take (arguments) or (arguments, context)"),
        ("guard", lambda a, b, c: None, "takes (a, b, c)"),
        # Called when the step is dispatched: a coroutine would be read as "true".
        ("where", where_async, "must be a plain function, not async def"),
        ("guard", where_async, "must be a plain function, not async def"),
    ],
    ids=[
        "undo-none",
        "undo-one",
        "compensate-three",
        "where-none",
        "guard-three",
        "where-async",
        "guard-async",
    ],
)
def test_a_hook_that_fits_no_convention_is_a_definition_error(
    option: str, fn: Any, words: str
) -> None:
    """The class statement raises, naming the reactor, the step and the option."""
    with pytest.raises(DefinitionError) as caught:

        class Wrong(Reactor):
            @step(**{option: fn})
            def work() -> int:
                return 1

    error = caught.value
    assert error.reactor == "Wrong"
    assert error.step == "work"
    assert f"option {option!r}" in str(error)
    assert words in str(error)


def test_hooks_of_each_convention_are_accepted_when_defined() -> None:
    """Positional, keyword-only and context-taking hooks all define a reactor."""

    class Fine(Reactor):
        x = Input(int)

        @step(
            undo=undo_keyword,
            compensate=lambda e, a: None,
            where=lambda arguments, context: True,
            guard=lambda arguments: Shortcut(1),
        )
        def work(x: int) -> int:
            return x

    assert Fine.__plan__.steps["work"].undo is not None


# -- ref(..., transform=fn) ----------------------------------------------------------------------


def test_ref_takes_a_transform() -> None:
    """The transform is kept on the Ref, shown as a call in errors and diagrams."""
    source = ref("user", "name", transform=str.title)
    assert source == Ref("user", ("name",), str.title)
    assert source.describe() == "title(user.name)"
    assert Ref("user", ("name",)).describe() == "user.name"


def test_ref_refuses_a_transform_that_is_not_a_function() -> None:
    """``transform=3`` is a TypeError at once, naming the ref."""
    with pytest.raises(TypeError, match=r"ref\('user', \.\.\.\): transform must be a function"):
        ref("user", transform=3)  # type: ignore[arg-type]


def test_ref_refuses_an_async_transform() -> None:
    """Its coroutine, not a value, would reach the step: a TypeError at once."""
    with pytest.raises(TypeError, match=r"transform must be a plain function, not async def"):
        ref("user", transform=where_async)


def test_a_transformed_argument_binds_like_any_ref_and_shows_in_the_diagram() -> None:
    """A transformed ref depends on its step; the Mermaid edge shows the call."""

    def shout(text: str) -> str:
        return text.upper()

    class Loud(Reactor):
        name = Input(str)

        @step
        def greet(text: str = ref("name", transform=shout)) -> str:
            return f"hello {text}"

    spec = Loud.__plan__.steps["greet"]
    assert spec.arguments == {"text": Ref("name", (), shout)}
    assert spec.depends_on == {"name"}
    assert 'name -->|"text = shout(name)"| greet' in Loud.to_mermaid()
