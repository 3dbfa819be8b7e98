"""What the engine hands a run: its options, the engine's services, and how to cancel it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from actors import Ref
from reactor.run._limits import Limits
from reactor.run._middleware import Middleware
from reactor.run._records import Owner

__all__ = ["CancelRun", "ChildRunner", "RunOptions", "RunServices"]

ChildRunner = Callable[..., Coroutine[Any, Any, Any]]
"""``await run_child(reactor, inputs, suffix)``: run a composed reactor to its result."""


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How one run runs.

    Attributes:
        max_concurrency: Steps running at once.
        timeout: Seconds the run may take (from its start or resume).
        concurrency_key: A pool of step slots shared with other runs.
    """

    max_concurrency: int = 8
    timeout: float | None = None
    concurrency_key: str | None = None


@dataclass(frozen=True, slots=True)
class RunServices:
    """The engine's services a run uses (one instance shared by all runs).

    Attributes:
        store: The Store actor.
        pool: The worker pool for plain ``def`` steps.
        limits: The concurrency-key pools.
        middleware: Observers of every run.
        owner: This process.
        resolve_host: ``(model, host) -> (Ref, model)``: the ModelHost for an ``ask``
            step, and the model (an empty model means the engine's default one);
            raises ``LookupError`` naming what is available.
        start_child: Starts a composed run; see :class:`ChildRunner`.
        undo_children: Rolls back the completed child runs under a run-id prefix.
        journal_timeout: Seconds a journal append may wait.
        journal_linger: Seconds a run's journal events may wait to be sent together.
        lookup: Finds an actor by name (a ``tools`` step's ToolRunner); ``None`` when
            the engine offers none.
    """

    store: Ref[Any]
    pool: ThreadPoolExecutor
    limits: Limits
    middleware: tuple[Middleware, ...]
    owner: Owner
    resolve_host: Callable[[str, str | None], tuple[Ref[Any], str]]
    start_child: Callable[..., Coroutine[Any, Any, Any]]
    undo_children: Callable[[str], Coroutine[Any, Any, Any]]
    journal_timeout: float = 30.0
    journal_linger: float = 0.002
    lookup: Callable[[str], Ref[Any]] | None = None


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Tell a Run to stop: running attempts are cancelled and completed steps undone."""

    reason: str = "cancelled"
