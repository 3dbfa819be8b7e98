"""Errors in reactor definitions.

The tree::

    DefinitionError          a reactor definition is wrong (raised when the class is defined)
    └── RecursionLimitError  composition went too deep, or re-entered a reactor on its stack

Every error names where it is: the reactor, the step and the argument (whichever apply),
so ``str(error)`` reads like ``reactor 'Briefing', step 'brief', argument 'notes': no
input or step named 'notes' (did you mean 'note'?)``.
"""

from __future__ import annotations

__all__ = ["DefinitionError", "RecursionLimitError"]


class DefinitionError(Exception):
    """A reactor definition is wrong: raised when the class (or a dynamic step) is built.

    Attributes:
        reactor: The reactor's name.
        step: The step (or input) concerned, if any.
        argument: The argument concerned, if any.
        problem: What is wrong, in words.
    """

    def __init__(
        self, problem: str, *, reactor: str, step: str | None = None, argument: str | None = None
    ) -> None:
        self.reactor = reactor
        self.step = step
        self.argument = argument
        self.problem = problem
        super().__init__(f"{where(reactor, step, argument)}: {problem}")


class RecursionLimitError(DefinitionError):
    """Composition went deeper than the limit, or re-entered a reactor already running.

    Attributes:
        stack: The reactors from the outermost run to the one refused.
    """

    def __init__(self, problem: str, *, reactor: str, step: str, stack: tuple[str, ...]) -> None:
        self.stack = stack
        super().__init__(f"{problem} (stack: {' -> '.join(stack)})", reactor=reactor, step=step)


def where(reactor: str, step: str | None = None, argument: str | None = None) -> str:
    """``reactor 'R', step 's', argument 'a'``: the location prefix every error uses."""
    parts = [f"reactor {reactor!r}"]
    if step is not None:
        parts.append(f"step {step!r}")
    if argument is not None:
        parts.append(f"argument {argument!r}")
    return ", ".join(parts)
