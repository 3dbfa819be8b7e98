"""Module-level reactors for the composite tests.

Steps added while a run runs are journaled by locator, so a reactor that a dynamic
``compose`` step names must be found again by :func:`dsl.locate`: it lives here. The
reactors that compose themselves do so through such a step, since a class cannot name
itself in its own body.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dsl import Input, Reactor, StepDef, WithSteps, compose, ref, step


def named(definition: Any, name: str) -> StepDef:
    """``definition`` (a ``compose(...)`` step) with a name, for ``WithSteps``."""
    assert isinstance(definition, StepDef)
    return dataclasses.replace(definition, name=name)


class Again(Reactor):
    """Composes itself, through a step it adds while running."""

    n = Input(int)

    @step
    def grow(n: int) -> Any:
        return WithSteps(n, [named(compose(Again, n=ref("n")), "again")])


class Pong(Reactor):
    """Composes :class:`Ping` (which composes this) through a step it adds while running."""

    n = Input(int)

    @step
    def back(n: int) -> Any:
        return WithSteps(n, [named(compose(Ping, n=ref("n")), "ping")])


class Ping(Reactor):
    """Composes :class:`Pong`, which composes this again."""

    n = Input(int)
    pong = compose(Pong)


class DepthC(Reactor):
    """The innermost of a chain of three."""

    n = Input(int)

    @step
    def leaf(n: int) -> int:
        return n + 1


class DepthB(Reactor):
    """Composes :class:`DepthC`."""

    n = Input(int)
    c = compose(DepthC)


class DepthA(Reactor):
    """Composes :class:`DepthB` (which composes :class:`DepthC`)."""

    n = Input(int)
    b = compose(DepthB)
