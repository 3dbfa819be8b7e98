"""What the engine hands a run: its options, the engine's services, and how to cancel it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from actors import Ref
from reactor.run._limits import Limits
from reactor.run._middleware import Middleware
from reactor.run._records import Owner

__all__ = [
    "CancelRun",
    "ChildRunner",
    "JournalProof",
    "OnTimeout",
    "Placer",
    "RunOptions",
    "RunServices",
]

OnTimeout = Literal["fail", "halt"]
"""What a run does when its timeout passes (see :attr:`RunOptions.on_timeout`)."""

ChildRunner = Callable[..., Coroutine[Any, Any, Any]]
"""``await run_child(reactor, inputs, suffix)``: run a composed reactor to its result."""


class Placer(Protocol):
    """Where an attempt's user code runs: the seam ``reactor.placement`` plugs into.

    :meth:`~reactor.run.Attempt.call` asks it first. It returns the coroutine that
    runs ``fn(**kwargs)`` elsewhere (a Ray cluster) and yields its
    :class:`~reactor.run.Outcome`, under the step's timeout and trace context; or
    ``None`` when the call stays local (the event loop or the worker pool, as without
    a placer), so that local steps pay nothing for the seam.
    """

    def __call__(
        self, attempt: Any, fn: Callable[..., Any], kwargs: dict[str, Any], is_async: bool
    ) -> Coroutine[Any, Any, Any] | None: ...


@dataclass(frozen=True, slots=True)
class RunOptions:
    """How one run runs.

    Attributes:
        max_concurrency: Steps running at once.
        timeout: Seconds the run may take (from its start or resume).
        concurrency_key: A pool of step slots shared with other runs.
        on_timeout: What the run does once ``timeout`` has passed. ``"fail"``: a hard
            limit; running attempts are cancelled, completed steps undone, and the run
            fails with a ``timeout`` error. ``"halt"``: a soft one, Ash Reactor's; no
            step starts any more, the running attempts finish (their results are
            kept), then the run halts as a step's ``Halt`` halts it, and ``resume``
            continues it (under a fresh timeout, counted from the resume).
        max_iterations: How many times the run's steps may re-emit themselves (loop,
            Ash's ``max_iterations``); one more halts the run, and ``resume`` continues
            it with a fresh count. ``None``: no limit.
        halt_timeout: Seconds a halting run (a step's ``Halt``, ``on_timeout="halt"``,
            ``max_iterations``) waits for its running attempts (Ash's
            ``halt_timeout``); then those of plain steps are cancelled, to run again on
            resume (a composite's child run is waited for: it has limits of its own).
            ``None``: wait for them all.
        idle_timeout: Seconds a running run may go without progress (a step starting,
            finishing, failing, retrying, being compensated or undone, or calling
            ``StepContext.heartbeat()``, or progress in its composed runs); then the
            run is treated as ``on_timeout`` treats its timeout, except that with
            ``"halt"`` the plain steps still running are cancelled at once (they are
            the ones making no progress) and run again on resume. A scheduled retry's
            wait does not count as idle. ``None``: no limit.
    """

    max_concurrency: int = 8
    timeout: float | None = None
    concurrency_key: str | None = None
    on_timeout: OnTimeout = "fail"
    max_iterations: int | None = None
    halt_timeout: float | None = None
    idle_timeout: float | None = None


class JournalProof:
    """Whether a journal append has succeeded yet (shared by an engine's runs).

    A run whose id was just made up may dispatch its first steps before its
    ``RunStarted`` is durable (its stream cannot exist). Until one append has succeeded,
    though, the Store may be unusable (a directory, a read-only or foreign file, a
    newer schema): so until then every run waits for its ``RunStarted``, and a step's
    side effects never happen for a run that could not be recorded.
    """

    __slots__ = ("proven",)

    def __init__(self) -> None:
        self.proven = False


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
        selector: The Selector actor, for ``select`` steps and ``ask(model="auto")``
            (``None``: the engine has none, and such steps fail ``not_found``).
        journal_timeout: Seconds a journal append may wait.
        journal_linger: Seconds a run's journal events may wait to be sent together.
        journal_proof: Whether the journal has been written to yet (see
            :class:`JournalProof`); one instance for all of an engine's runs.
        budget: The Budget actor that admits model calls (``None``: no limits).
        fallback_chain: ``(chain, arguments) -> Ref``: the FallbackChain actor for a
            ``fallback`` step's chain (a configured chain's name, or a chain definition
            whose link templates the arguments fill in).
        lookup: Finds an actor by name (a ``tools`` step's ToolRunner); ``None`` when
            the engine offers none.
        consensus: The Consensus coordinator, for ``consensus`` steps (``None``: the
            engine has none, and such steps fail ``not_found``).
        catalog: The model catalog (a ``strategy`` step's chooser reads what is loaded
            and what fits); ``None``: unknown, everything is taken to fit.
        placer: Where user code runs when not locally (see :class:`Placer`); ``None``:
            always locally.
    """

    store: Ref[Any]
    pool: ThreadPoolExecutor
    limits: Limits
    middleware: tuple[Middleware, ...]
    owner: Owner
    resolve_host: Callable[[str, str | None], tuple[Ref[Any], str]]
    start_child: Callable[..., Coroutine[Any, Any, Any]]
    undo_children: Callable[[str], Coroutine[Any, Any, Any]]
    selector: Ref[Any] | None = None
    journal_timeout: float = 30.0
    journal_linger: float = 0.002
    journal_proof: JournalProof = field(default_factory=JournalProof)
    budget: Ref[Any] | None = None
    fallback_chain: Callable[[Any, Any], Ref[Any]] | None = None
    lookup: Callable[[str], Ref[Any]] | None = None
    consensus: Ref[Any] | None = None
    catalog: Any = None
    placer: Placer | None = None


@dataclass(frozen=True, slots=True)
class CancelRun:
    """Tell a Run to stop: running attempts are cancelled and completed steps undone."""

    reason: str = "cancelled"
