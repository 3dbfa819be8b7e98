"""A reactor's inputs: ``topic = Input(str)`` in the class body."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Input"]

_MISSING: Any = object()


@dataclass(frozen=True, slots=True)
class Input:
    """A reactor input: ``topic = Input(str)`` in the class body.

    Attributes:
        type: The type the value must have (checked and converted with msgspec when a
            run starts; ``Any`` accepts anything JSON can carry).
        default: The value when the input is not given (none: the input is required).
        transform: Applied to the given value before the type check.
        description: What the input is for (shown by the CLI and in diagrams).
    """

    type: Any = Any
    default: Any = _MISSING
    transform: Callable[[Any], Any] | None = None
    description: str = ""

    @property
    def required(self) -> bool:
        """Whether a run must be given this input."""
        return self.default is _MISSING
