"""The one input checker the engine and the command both use."""

from __future__ import annotations

import pytest

from dsl import Input, Reactor, step
from reactor.run import InputError, check_inputs


class Trio(Reactor):
    """Three inputs, two of them required."""

    a = Input(int)
    b = Input(str)
    c = Input(float, default=0.5)

    @step
    def show(a: int, b: str, c: float) -> str:
        return f"{a} {b} {c}"


def test_strings_convert_and_defaults_fill_in() -> None:
    """Inputs typed on a command line are strings: they convert to each input's type."""
    assert check_inputs(Trio.__plan__, {"a": "2", "b": "x"}) == {"a": 2, "b": "x", "c": 0.5}


def test_every_missing_input_is_named() -> None:
    """The error names the first missing input, and ``missing`` lists them all."""
    with pytest.raises(InputError) as caught:
        check_inputs(Trio.__plan__, {"c": 1.0})
    assert caught.value.input == "a"
    assert caught.value.missing == ("a", "b")
    assert "is required (so is 'b')" in str(caught.value)


def test_other_problems_have_nothing_missing() -> None:
    """An unknown input is not a missing one."""
    with pytest.raises(InputError) as caught:
        check_inputs(Trio.__plan__, {"a": 1, "b": "x", "d": 1})
    assert caught.value.missing == ()
    assert "no such input" in str(caught.value)
