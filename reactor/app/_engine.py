"""The Engine: starts, resumes, lists and cancels runs of reactors in an actor system.

One :class:`Engine` per application. It needs a running :class:`~actors.System`; it
starts (or finds) the ``store`` actor that owns the SQLite journal, and a ``runs``
supervisor under which each run is a Run actor of its own. Runs (and the supervisor)
take turns on the I/O loop, with no thread each, and a run starts at once on the
caller's thread (``start_child``): no round trip to the supervisor per run. Sync code calls
:meth:`Engine.run` / :meth:`Engine.start`; asyncio code :meth:`Engine.run_async` /
:meth:`Engine.start_async`. A run's handle waits for its result, cancels it, or names
it (``run_id``) so that it can be resumed later, in this process or another.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import itertools
import os
import random
import time
import weakref
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, cast, get_args

import msgspec

import otel
import reactor.kinds  # noqa: F401 - registers the built-in step kinds' executors
from actors import (
    ActorNotFound,
    ChildSpec,
    DuplicateActorName,
    Ref,
    Restart,
    SupervisorSpec,
    System,
)
from actors.agents import AgentBackend, Agents
from actors.llm import Catalog, Config, Fleet, McpServerConfig, mask_url
from actors.lowlevel import check_may_block, start_child
from actors.orchestration import Budget, Chains, Consensus, Feedback, Selector
from actors.store import Journal, Store
from actors.tools import (
    Approval,
    PendingCall,
    Policy,
    ToolRegistry,
    ToolRunner,
    decide,
    pending_calls,
)
from dsl import DefinitionError, Placement, Reactor, RecursionLimitError, find, locate
from reactor.observe import LoggingMiddleware, TracingMiddleware
from reactor.placement import Placements, StepPlacement
from reactor.run import (
    RUN_EVENT_DECODER,
    STREAM_PREFIX,
    TERMINAL_EVENTS,
    THIS_PROCESS,
    CancelRun,
    EncodeError,
    InputError,
    JournalProof,
    Limits,
    Middleware,
    OnTimeout,
    Owner,
    PlanChangedError,
    ResumeError,
    Run,
    RunDone,
    RunEvent,
    RunExistsError,
    RunFailedError,
    RunOptions,
    RunResumed,
    RunServices,
    RunStarted,
    RunSummary,
    StepCompleted,
    StepError,
    UndoError,
    check_inputs,
    compare_plan,
    decode_plan,
    encode_value,
    engine_owner,
    forget_engine,
    latest_owner,
    list_runs,
    owner_alive,
    read_history,
    run_status,
    stream_of,
    undoability,
)

__all__ = ["DEFAULT_MAX_DEPTH", "Engine", "RunHandle"]

DEFAULT_MAX_DEPTH = 16
"""How deep runs may compose runs (a run and its composed runs, down to the deepest)."""


def _built_in_middleware(*, tracing: bool, logging: bool) -> list[Middleware]:
    built_in: list[Middleware] = []
    if tracing:
        built_in.append(TracingMiddleware())
    if logging:
        built_in.append(LoggingMiddleware())
    return built_in


class RunHandle(RunDone):
    """A started run: wait for its result, or cancel it.

    It is the run's outcome slot too (a :class:`~reactor.run.RunDone`): the Run actor
    sets it when the run ends, so a run costs its caller one object, not two.

    Attributes:
        run_id: The run's id (``reactor runs show RUN_ID``).
        reactor: The reactor's name.
        warnings: What :meth:`Engine.resume` warned about: the reactor's source changed
            since the run started, or the resume was forced although its steps changed.
    """

    __slots__ = ("_ref", "reactor", "run_id", "warnings")

    def __init__(self, run_id: str, reactor: str, ref: Ref[Any] | None = None) -> None:
        super().__init__()
        self.run_id = run_id
        self.reactor = reactor
        self._ref = ref
        self.warnings: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<RunHandle {self.run_id} of {self.reactor}>"

    def result(self, timeout: float | None = None) -> Any:
        """The run's result; raises a :class:`~reactor.RunError` if it did not complete.

        Raises:
            TimeoutError: ``timeout`` seconds passed first (the run goes on).
            BlockingCallError: Called on a running event loop (await
                :meth:`result_async` there); unless the run has ended already.
        """
        if not self.done():
            check_may_block("RunHandle.result()", "`await handle.result_async()`")
        return super().result(timeout)

    async def result_async(self) -> Any:
        """:meth:`result` for asyncio code.

        The run's end wakes the caller's loop through its hand-off queue: many runs
        ending together cost that loop one wake-up, not one each.
        """
        return await self.future()

    def cancel(self, reason: str = "cancelled") -> None:
        """Stop the run: running attempts are cancelled, completed steps undone."""
        if self._ref is not None:
            self._ref.tell_if_alive(CancelRun(reason))


class Engine:
    """Runs reactors: one Run actor per run, journaled in the system's Store.

    Args:
        system: A started actor system.
        db_path: The SQLite file, when the engine starts the Store (``REACTOR_DB`` or
            the user data directory by default); ignored if a ``store`` actor runs.
        middleware: Observers of every run, after the built-in ones.
        tracing: Add the tracing middleware (a span per run and per step attempt).
        logging: Add the logging middleware (a structlog line per event).
        max_concurrency: Steps one run runs at once, unless the reactor or the run
            says otherwise.
        workers: Threads for plain ``def`` steps (default: ``min(32, cpus + 4)``).
        max_depth: How deep runs may compose runs.
        fleet: Model hosts for ``ask`` steps (from :func:`~actors.start_fleet`); its
            catalog says which host serves which model.
        hosts: ``model -> host actor name``: explicit choices that win over the catalog.
        default_model: The model of ``ask`` steps whose model is empty (by default
            the fleet's first chat model).
        catalog: Which model is where (default: the fleet's, else an empty one). A
            model name may be bare (``llama3.2``: the best host that serves it, healthy
            and loaded first), qualified (``ollama/llama3.2``) or an alias.
        selector: The Selector for ``select`` steps and ``ask(model="auto")``: a running
            one's ref, or ``None`` to start one (named ``selector``, unless one runs
            already) over the catalog, with the fleet's ``[selection]`` configuration and
            its history in the store.
        resume_interrupted: At start, resume the runs whose process died.
        store_synchronous: ``"FULL"`` (survives power loss) or ``"NORMAL"`` (survives a
            killed process), when the engine starts the Store.
        config: The configuration whose ``[budgets]`` (with prices) and
            ``[fallback.chains]`` the engine uses: with limits, it starts a ``budget``
            actor (unless one runs) that admits every model call.
        budget: A running Budget actor to use instead.
        placement: Where step work runs when nothing else says (``"local"``, the
            default, or ``"ray"``, or a :class:`~dsl.Placement`); default: the
            configuration's ``[placement] default``.
        placements: ``"Reactor"`` or ``"Reactor.step"`` to a placement, winning over
            the definition (added to the configuration's ``[placement] steps``). See
            :mod:`reactor.placement`.
        placement_targets: Placements of your own by name (``Placement("mine")``
            names one); each implements :class:`~reactor.placement.StepPlacement`.

    Raises:
        RayNotInstalledError: ``placement`` or ``placements`` name Ray, and Ray is
            not installed (``pip install 'reactor-swarm[ray]'``).
        StoreError: The engine starts the Store and its file cannot be used (a
            directory, read-only, not SQLite, a newer schema): checked here, with
            :meth:`~actors.store.Store.check`, before any run.
    """

    def __init__(
        self,
        system: System,
        *,
        db_path: str | os.PathLike[str] | None = None,
        middleware: Sequence[Middleware] = (),
        tracing: bool = True,
        logging: bool = True,
        max_concurrency: int = 8,
        workers: int | None = None,
        max_depth: int = DEFAULT_MAX_DEPTH,
        fleet: Fleet | None = None,
        hosts: Mapping[str, str] | None = None,
        default_model: str | None = None,
        resume_interrupted: bool = False,
        store_synchronous: str = "FULL",
        catalog: Catalog | None = None,
        config: Config | None = None,
        budget: Ref[Any] | None = None,
        selector: Ref[Any] | None = None,
        placement: str | Placement | None = None,
        placements: Mapping[str, str | Placement] | None = None,
        placement_targets: Mapping[str, StepPlacement] | None = None,
    ) -> None:
        if max_concurrency < 1:
            msg = f"Engine(max_concurrency={max_concurrency!r}): must be at least 1"
            raise ValueError(msg)
        self.system = system
        self.max_concurrency = max_concurrency
        self.max_depth = max_depth
        self._db_path = db_path
        self._store_synchronous = store_synchronous
        self._resume_at_open = resume_interrupted
        self._opened = False
        self.owner = self._own()
        """This engine as the owner of the runs it starts and resumes (journaled with
        them): its host, pid and a token of its own, so that another engine, of this
        process too, leaves its runs alone while its system runs (its runs' actors live
        there, even after :meth:`close`)."""
        self.store: Ref[Any]
        """The Store actor that owns the journal (set when the engine opens)."""
        self.journal: Journal
        self._supervisor: Ref[Any]
        self._services: RunServices
        self.middleware: tuple[Middleware, ...] = (
            *_built_in_middleware(tracing=tracing, logging=logging),
            *middleware,
        )
        self.limits = Limits()
        self._pool = ThreadPoolExecutor(
            max_workers=workers or min(32, (os.cpu_count() or 1) + 4),
            thread_name_prefix="reactor-step",
        )
        self._fleet = fleet
        if catalog is None:
            catalog = fleet.catalog if fleet is not None else Catalog()
        self.catalog = catalog
        """Which model is where: how ``ask`` steps find their host."""
        self._hosts: dict[str, str] = dict(hosts or {})
        first = next((model for _, model in fleet.models()), None) if fleet is not None else None
        self.default_model = default_model or first or next(iter(self._hosts), None)
        if config is None and fleet is not None:
            config = fleet.config
        self.config = config
        self.placements = Placements(
            placement or (config.placement.default if config is not None else None),
            {**(config.placement.steps if config is not None else {}), **(placements or {})},
            targets=placement_targets,
            ray=config.ray if config is not None else None,
        )
        """Where each step's work runs (:mod:`reactor.placement`)."""
        self._journal_proof = JournalProof()
        self._given_budget = budget
        self._given_selector = selector
        self.budget: Ref[Any] | None = None
        """The Budget actor that admits model calls (``None``: no limits), once open."""
        self.selector: Ref[Any]
        """The Selector actor (``select`` steps, ``ask(model="auto")``, :meth:`feedback`)."""
        self.chains: Chains
        """The fallback chains (``fallback`` steps): one FallbackChain actor per chain."""
        self.consensus: Ref[Any]
        """The Consensus coordinator (``consensus`` steps)."""
        self.resumed: list[RunHandle] = []
        """The runs ``resume_interrupted=True`` picked up when the engine started."""
        if not _on_event_loop():
            self.open()
        # else: on a running event loop, starting the store would block it; the
        # engine opens on `async with Engine(...)` or its first start_async/run_async.

    # ---- set-up --------------------------------------------------------------------------

    def _own(self) -> Owner:
        """A new owner token for this engine, alive while the engine is (see ``owner``)."""
        engine = weakref.ref(self)
        owner = engine_owner(lambda: _engine_alive(engine))
        weakref.finalize(self, forget_engine, owner)
        _ENGINES[owner.engine] = self
        return owner

    def open(self) -> Engine:
        """Start (or find) the store and the runs supervisor; sync code need not call it.

        The constructor calls it, except on a running event loop, where
        ``async with Engine(...)`` (or :meth:`open_async`) does.

        Raises:
            BlockingCallError: Called on a running event loop.
        """
        if self._opened:
            return self
        check_may_block("Engine.open()", "`async with Engine(...)` or `await engine.open_async()`")
        try:
            store = self.system.lookup("store")
        except ActorNotFound:
            # Opened and checked here first, so an unusable file is one StoreError
            # naming it and the cause, before any run (and not a crashing actor).
            Store.check(self._db_path)
            store = self.system.spawn(self._store_spec())
        try:
            runs = self.system.lookup("runs")
        except ActorNotFound:
            try:
                runs = self.system.spawn(_RUNS_SPEC)
            except DuplicateActorName:
                runs = self.system.lookup("runs")
        self._opened_with(store, runs)
        if self._resume_at_open:
            self.resumed = self.resume_interrupted()
        return self

    async def open_async(self) -> Engine:
        """:meth:`open` for asyncio code (``async with Engine(...)`` calls it)."""
        if self._opened:
            return self
        try:
            store = self.system.lookup("store")
        except ActorNotFound:
            await asyncio.to_thread(Store.check, self._db_path)
            store = await self.system.spawn_async(self._store_spec())
        try:
            runs = self.system.lookup("runs")
        except ActorNotFound:
            try:
                runs = await self.system.spawn_async(_RUNS_SPEC)
            except DuplicateActorName:
                runs = self.system.lookup("runs")
        await asyncio.to_thread(self._opened_with, store, runs)
        if self._resume_at_open:
            self.resumed = await asyncio.to_thread(self.resume_interrupted)
        return self

    def _budget(self, system: System, config: Config | None) -> Ref[Any] | None:
        try:
            return system.lookup("budget")
        except ActorNotFound:
            pass
        if config is None or not config.budgets.limits:
            return None
        try:
            return system.spawn(Budget.from_config(config, store=self.store))
        except DuplicateActorName:
            return system.lookup("budget")

    def _selector(self, system: System, fleet: Fleet | None) -> Ref[Any]:
        try:
            return system.lookup("selector")
        except ActorNotFound:
            config = fleet.config.selection if fleet is not None else None
            kwargs = {"config": config, "store": self.store, "budget": self.budget}
            try:
                return system.spawn(Selector, name="selector", args=(self.catalog,), kwargs=kwargs)
            except DuplicateActorName:
                return system.lookup("selector")

    def _consensus(self, system: System) -> Ref[Any]:
        try:
            return system.lookup("consensus")
        except ActorNotFound:
            kwargs = {"catalog": self.catalog, "selector": self.selector, "budget": self.budget}
            try:
                return system.spawn(
                    Consensus, name="consensus", args=(self._resolve_host,), kwargs=kwargs
                )
            except DuplicateActorName:
                return system.lookup("consensus")

    def _store_spec(self) -> ChildSpec:
        if self._store_synchronous.upper() == "NORMAL":
            return Store.spec(self._db_path, synchronous="NORMAL")
        return Store.spec(self._db_path, synchronous="FULL")

    def _opened_with(self, store: Ref[Any], runs: Ref[Any]) -> None:
        """Wire the engine to its store: the orchestration actors, then the services.

        Spawning the budget and selector may wait for their threads, so asyncio code
        calls this in a worker thread (:meth:`open_async`).
        """
        self.store = store
        self.journal = Journal(store)
        self._supervisor = runs
        system, config = self.system, self.config
        self.budget = (
            self._given_budget if self._given_budget is not None else self._budget(system, config)
        )
        self.selector = self._given_selector or self._selector(system, self._fleet)
        self.chains = Chains(
            system,
            self._resolve_host,
            budget=self.budget,
            configured=config.fallback.chains if config is not None else None,
            catalog=self.catalog,
            selector=self.selector,
        )
        self.consensus = self._consensus(system)
        self._services = self._make_services(self.middleware)
        self._opened = True

    def _require_open(self) -> None:
        if not self._opened:
            msg = (
                "this Engine was created on a running event loop and is not open yet: "
                "use `async with Engine(...) as engine`, or await engine.open_async() "
                "(start_async and run_async open it themselves)"
            )
            raise RuntimeError(msg)

    def _make_services(self, middleware: tuple[Middleware, ...]) -> RunServices:
        return RunServices(
            store=self.store,
            pool=self._pool,
            limits=self.limits,
            middleware=middleware,
            owner=self.owner,
            resolve_host=self._resolve_host,
            start_child=self._start_child,
            undo_children=self._undo_children,
            journal_proof=self._journal_proof,
            budget=self.budget,
            fallback_chain=self.chains.ref,
            selector=self.selector,
            lookup=self.system.lookup,
            consensus=self.consensus,
            catalog=self.catalog,
            placer=self.placements,
        )

    def _services_for(self, extra: Sequence[Middleware]) -> RunServices:
        if not extra:
            return self._services
        return self._make_services((*self.middleware, *extra))

    def close(self) -> None:
        """Stop the worker pool and the placements (the system stops the actors)."""
        self._pool.shutdown(wait=False, cancel_futures=True)
        self.placements.close()

    def __enter__(self) -> Engine:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Engine:
        return await self.open_async()

    async def __aexit__(self, *_exc: object) -> None:
        self.close()

    # ---- model hosts ---------------------------------------------------------------------

    def _resolve_host(self, model: str, host: str | None) -> tuple[Ref[Any], str]:
        if not model:
            model = self.default_model or ""
            if not model:
                raise LookupError(self._no_default_model())
        if host is not None:
            return self.system.lookup(host), model
        name = self._hosts.get(model)
        if name is None:
            found = self.catalog.lookup(model)
            if found:
                entry = found[0]
                return self.system.lookup(entry.host), entry.model
        if name is None and self._fleet is not None and len(self._fleet.hosts) == 1:
            name = next(iter(self._fleet.hosts))
        if name is None:
            raise LookupError(self._unknown_model(model))
        return self.system.lookup(name), model

    def _unknown_model(self, model: str) -> str:
        """Why no host serves ``model``: the known models, and a close name among them.

        The way to give the engine hosts is named only when it knows no model at all: with
        models known, the likelier mistake is the name (``reactor run``'s user cannot pass
        ``Engine(fleet=...)`` anyway).
        """
        import difflib  # noqa: PLC0415 - only on this error

        pairs = sorted(self._hosts.items()) + [(e.model, e.host) for e in self.catalog.entries()]
        known = [f"{m} (on {h})" for m, h in pairs]
        if not known:
            return (
                f"no model host serves {model!r}; known models: none "
                "(pass Engine(fleet=...) or hosts={model: host}, or ask(..., host=...))"
            )
        names = list(dict.fromkeys(m for m, _ in pairs))
        close = difflib.get_close_matches(model, names, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        return f"no model host serves {model!r}{hint}; known models: {', '.join(known)}"

    def _no_default_model(self) -> str:
        """Why an ``ask`` without a model has none: unreachable hosts first, if any."""
        unreachable = [
            f"{name} at {mask_url(inv.url)} ({inv.error or 'no answer'})"
            for name, inv in (self._fleet.inventories.items() if self._fleet else ())
            if not inv.reachable
        ]
        if unreachable:
            return (
                "the ask step names no model, and no model host could say which models it "
                f"has: unreachable when the fleet started: {'; '.join(unreachable)} "
                "(start the server, or name the model: ask(..., model=...))"
            )
        return (
            "the ask step names no model and the engine has no default model "
            "(pass Engine(default_model=...) or a fleet with a chat model)"
        )

    # ---- starting runs -------------------------------------------------------------------

    def _prepare(
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None,
        *,
        run_id: str | None,
        max_concurrency: int | None,
        timeout: float | None,
        concurrency_key: str | None,
        on_timeout: OnTimeout | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> tuple[str, dict[str, Any], msgspec.Raw, RunOptions, str]:
        if not (isinstance(reactor, type) and issubclass(reactor, Reactor)) or reactor is Reactor:
            msg = f"{reactor!r} is not a Reactor subclass"
            raise TypeError(msg)
        plan = reactor.__plan__
        _check_limits(
            plan.reactor,
            max_concurrency,
            timeout,
            on_timeout,
            max_iterations,
            halt_timeout,
            idle_timeout,
        )
        given = dict(inputs or {})
        values = check_inputs(plan, given)
        try:
            raw = encode_value(given)
        except EncodeError as exc:
            raise InputError(
                f"the inputs cannot be journaled: {exc}", reactor=plan.reactor, input="*"
            ) from exc
        try:
            locator = locate(reactor)
        except ValueError:
            locator = ""
        options = _options(
            max_concurrency or plan.max_concurrency or self.max_concurrency,
            timeout if timeout is not None else plan.timeout,
            concurrency_key,
            on_timeout or plan.on_timeout or "fail",
            max_iterations if max_iterations is not None else plan.max_iterations,
            halt_timeout if halt_timeout is not None else plan.halt_timeout,
            idle_timeout if idle_timeout is not None else plan.idle_timeout,
        )
        return run_id or new_run_id(), values, raw, options, locator

    def _spec(
        self,
        reactor: type[Reactor],
        run_id: str,
        done: RunDone,
        services: RunServices,
        **kwargs: Any,
    ) -> ChildSpec:
        return ChildSpec(
            name=f"run:{run_id}",
            actor=Run,
            # One dict, no args tuple: the supervisor keeps the spec while the run lives.
            kwargs={
                "services": services,
                "reactor": reactor,
                "run_id": run_id,
                "done": done,
                **kwargs,
            },
            restart=Restart.TEMPORARY,
            shutdown_timeout=10.0,
        )

    def _spawn(self, spec: ChildSpec, run_id: str, *, new: bool = False) -> Ref[Any]:
        """Start the Run actor now, as a child of the ``runs`` supervisor."""
        try:
            return start_child(self._supervisor, spec)
        except DuplicateActorName:
            if new:
                raise RunExistsError(
                    run_id=run_id, reactor="", detail="it is running in this process"
                ) from None
            msg = f"run {run_id} is already running in this process"
            raise ResumeError(msg, run_id=run_id, reactor="") from None

    def start(
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        concurrency_key: str | None = None,
        middleware: Sequence[Middleware] = (),
        context: Mapping[str, Any] | None = None,
        on_timeout: OnTimeout | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> RunHandle:
        """Start a run; returns at once with its handle.

        Args:
            reactor: The reactor class.
            inputs: Input values by name (strings are converted to the input's type).
            run_id: The run's id (default: a new random one).
            max_concurrency: Steps running at once (default: the reactor's, else the
                engine's).
            timeout: Seconds the whole run may take (default: the reactor's); what
                happens then is ``on_timeout``'s.
            concurrency_key: Share one limit on running steps with every run (and
                composed run) that names the same key.
            middleware: Observers of this run only, after the engine's.
            context: Values every step (``StepContext.context``), ``where`` and
                ``guard`` (their ``context`` parameter) and middleware
                (``RunInfo.context``) can read: a tenant, a user, a request id. JSON
                values: it is journaled with the run, so a resumed run has it again,
                and composed runs share it.
            on_timeout: What the run does once its timeout has passed (default: the
                reactor's, else ``"fail"``). ``"fail"``: running steps are cancelled,
                completed ones undone, and the run fails with a ``timeout`` error.
                ``"halt"`` (Ash Reactor's soft timeout): no step starts any more, the
                running ones finish and keep their results, then the run halts
                (:class:`~reactor.run.RunHaltedError`, with no step and a reason
                that names the timeout); :meth:`resume` continues it, under a fresh
                timeout counted from the resume.
            max_iterations: How many times its steps may re-emit themselves (loop)
                before the run halts (default: the reactor's, else no limit); the
                halted run's :meth:`resume` counts afresh. Ash Reactor's option.
            halt_timeout: Seconds a halting run waits for its running steps (default:
                the reactor's, else for as long as they take); then plain steps still
                running are cancelled, to run again on resume. Ash Reactor's option.
            idle_timeout: Seconds the run may go without progress (default: the
                reactor's, else no limit): a step starting, finishing, failing,
                retrying, being compensated or undone, a step calling
                ``StepContext.heartbeat()``, or progress in a composed run. Then the
                run is treated as at its timeout, per ``on_timeout``: ``"fail"`` fails
                it with a ``timeout`` error naming the steps still running;
                ``"halt"`` halts it, cancelling the plain steps still running (they
                run again on resume, which starts the idle clock afresh). A scheduled
                retry's wait is not idle. LangGraph's idle (heartbeat) timeout.

        Raises:
            InputError: An input is unknown, missing or of the wrong type.
            EncodeError: The context cannot be journaled as JSON.
            ValueError: ``max_concurrency`` is not an int >= 1, ``timeout`` not > 0,
                ``on_timeout`` neither ``"fail"`` nor ``"halt"``, ``max_iterations``
                not an int >= 0, or ``halt_timeout`` or ``idle_timeout`` not > 0.

        A ``run_id`` that names a run already (in the journal, or running here) is
        refused: :class:`~reactor.run.RunExistsError`, raised here when that run is
        running in this process, else by :meth:`RunHandle.result` before any step ran
        (continue such a run with :meth:`resume`).
        """
        self._require_open()
        spec, handle = self._start_spec(
            reactor,
            inputs,
            run_id,
            max_concurrency,
            timeout,
            concurrency_key,
            middleware,
            context,
            on_timeout,
            max_iterations,
            halt_timeout,
            idle_timeout,
        )
        handle._ref = self._spawn(spec, handle.run_id, new=True)
        return handle

    async def start_async(
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None = None,
        *,
        run_id: str | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        concurrency_key: str | None = None,
        middleware: Sequence[Middleware] = (),
        context: Mapping[str, Any] | None = None,
        on_timeout: OnTimeout | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> RunHandle:
        """:meth:`start` for asyncio code (it opens the engine first if need be)."""
        await self.open_async()
        spec, handle = self._start_spec(
            reactor,
            inputs,
            run_id,
            max_concurrency,
            timeout,
            concurrency_key,
            middleware,
            context,
            on_timeout,
            max_iterations,
            halt_timeout,
            idle_timeout,
        )
        handle._ref = self._spawn(spec, handle.run_id, new=True)
        return handle

    def _start_spec(  # noqa: PLR0917 - start()'s arguments, passed on
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None,
        run_id: str | None,
        max_concurrency: int | None,
        timeout: float | None,
        concurrency_key: str | None,
        middleware: Sequence[Middleware],
        context: Mapping[str, Any] | None = None,
        on_timeout: OnTimeout | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> tuple[ChildSpec, RunHandle]:
        """The Run actor's spec for a new top-level run, and its handle (no ref yet)."""
        rid, values, raw, options, locator = self._prepare(
            reactor,
            inputs,
            run_id=run_id,
            max_concurrency=max_concurrency,
            timeout=timeout,
            concurrency_key=concurrency_key,
            on_timeout=on_timeout,
            max_iterations=max_iterations,
            halt_timeout=halt_timeout,
            idle_timeout=idle_timeout,
        )
        handle = RunHandle(rid, reactor.__plan__.reactor)
        spec = self._spec(
            reactor,
            rid,
            handle,
            self._services_for(middleware),
            inputs=values,
            raw_inputs=raw,
            locator=locator,
            options=options,
            carrier=otel.inject(),  # the run's span is a child of the caller's, if any
            fresh=run_id is None,
            refuse_existing=run_id is not None,
            context=run_context(context),
        )
        return spec, handle

    def run(
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """Start a run and wait for its result (:meth:`start`'s options).

        Raises:
            RunFailedError: A step failed for good (after rollback).
            RunHaltedError: A step halted the run, or its timeout did
                (``on_timeout="halt"``).
            RunCancelledError: It was cancelled.
            BlockingCallError: Called on a running event loop (before anything starts).
        """
        check_may_block("Engine.run()", "`await engine.run_async(...)`")
        return self.start(reactor, inputs, **options).result()

    async def run_async(
        self,
        reactor: type[Reactor],
        inputs: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> Any:
        """:meth:`run` for asyncio code."""
        handle = await self.start_async(reactor, inputs, **options)
        # The outcome's future itself, not result_async(): one coroutine fewer per run.
        return await handle.future()

    async def _start_child(
        self,
        reactor: type[Reactor],
        inputs: dict[str, Any],
        *,
        run_id: str,
        parent: str,
        parent_step: str,
        stack: tuple[str, ...],
        concurrency_key: str | None,
        max_concurrency: int,
        carrier: dict[str, str] | None,
        context: Mapping[str, Any] | None = None,
        forced: bool = False,
        beat: Callable[[], object] | None = None,
    ) -> Any:
        plan = reactor.__plan__
        name = plan.reactor
        if name in stack:
            raise RecursionLimitError(
                f"composing {name!r} again would recurse: it is already running",
                reactor=stack[-1],
                step=parent_step,
                stack=(*stack, name),
            )
        if len(stack) >= self.max_depth:
            raise RecursionLimitError(
                f"composition deeper than max_depth={self.max_depth}",
                reactor=stack[-1],
                step=parent_step,
                stack=(*stack, name),
            )
        values = check_inputs(plan, inputs)
        try:
            raw = encode_value(inputs)
        except EncodeError as exc:
            raise InputError(
                f"the inputs cannot be journaled: {exc}", reactor=name, input="*"
            ) from exc
        try:
            locator = locate(reactor)
        except ValueError:
            locator = ""
        done = RunDone()
        spec = self._spec(
            reactor,
            run_id,
            done,
            self._services,
            inputs=values,
            raw_inputs=raw,
            locator=locator,
            options=RunOptions(
                max_concurrency=plan.max_concurrency or max_concurrency,
                timeout=plan.timeout,
                concurrency_key=concurrency_key,
                on_timeout=plan.on_timeout or "fail",
                max_iterations=plan.max_iterations,
                halt_timeout=plan.halt_timeout,
                idle_timeout=plan.idle_timeout,
            ),
            parent=parent,
            stack=(*stack, name),
            carrier=carrier,
            resume_reason="its parent resumed",
            context=context,
            lenient=forced,  # a parent resumed with force continues its children with force
            parent_beat=beat,  # the child's progress is its parent step's (idle_timeout)
        )
        ref = self._spawn(spec, run_id)
        ended = done.future()
        try:
            return await asyncio.shield(ended)
        except asyncio.CancelledError:
            ref.tell_if_alive(CancelRun("its parent step was cancelled"))
            # Wait for the child to roll itself back, so that whoever cancelled the
            # step (a failing sibling in a for_each, a timeout) sees it ended first.
            with contextlib.suppress(BaseException):
                await ended
            raise

    async def _undo_children(self, prefix: str) -> int:
        """Roll back the completed runs a composite step started, newest first.

        ``prefix`` is the step attempt's run id. Returns how many runs were rolled
        back; ``RunFailedError`` says which undos failed.
        """
        errors: list[StepError] = []
        children = await self._completed_children(prefix)
        for started in children:
            try:
                await self._roll_back_run(started, self._load(started))
            except RunFailedError as exc:
                errors.extend(exc.errors)
        if errors:
            raise RunFailedError(run_id=prefix, reactor="", errors=errors)
        return len(children)

    async def _completed_children(self, prefix: str) -> list[RunStarted]:
        """The completed runs a composite step attempt (``prefix``) started, newest first."""
        base = stream_of(prefix)
        infos = await self.journal.streams_async(base)
        # Newest completion first (the stream's last event is its RunCompleted); runs
        # that completed together keep the journal's newest-started-first order.
        infos.sort(key=lambda info: info.updated_at, reverse=True)
        found: list[RunStarted] = []
        for info in infos:
            rest = info.stream_id[len(base) :]
            direct = rest == "" or (rest.startswith("/") and "/" not in rest[1:])
            if not direct or info.last_type != "RunCompleted" or info.first is None:
                continue
            started = RUN_EVENT_DECODER.decode(info.first.data)
            if isinstance(started, RunStarted):
                found.append(started)
        return found

    async def _roll_back_run(self, started: RunStarted, reactor: type[Reactor]) -> None:
        """Undo a completed run with an undo-only Run; ``RunFailedError`` if an undo failed."""
        done = RunDone()
        spec = self._spec(
            reactor,
            started.run_id,
            done,
            self._services,
            inputs=None,
            raw_inputs=None,
            locator=started.locator,
            options=RunOptions(),
            parent=started.parent,
            undo_only=True,
        )
        self._spawn(spec, started.run_id)
        await done.future()

    # ---- undoing a completed run -------------------------------------------------------

    def undo(self, run_id: str, *, timeout: float | None = None) -> None:
        """Roll back a completed run: every step it completed is undone, newest first.

        Like the rollback of a failed run, but asked for later: each completed step's
        ``undo`` runs (newest first), composed runs are rolled back through their own
        steps, and the journal records ``StepUndone`` for each and ends the run with
        ``RunUndone`` (its status becomes ``undone``). The run is checked first, and
        refused before anything is undone, unless it completed and every step that
        completed can be rolled back (see :func:`reactor.run.undoability`).

        Args:
            run_id: A top-level run that completed.
            timeout: Seconds to wait for the rollback (it goes on after a timeout).

        Raises:
            UndoError: The run is unknown, did not complete (or was undone already), was
                composed by another run, or has completed steps without an ``undo``
                (``UndoError.steps`` names them, composed runs' included).
            RunFailedError: An ``undo`` failed for good (the others still ran);
                ``errors`` names each.
        """
        check_may_block("Engine.undo()", "`await engine.undo_async(...)`")
        self.system.bridge.run(self.undo_async(run_id), timeout)

    async def undo_async(self, run_id: str) -> None:
        """:meth:`undo` for asyncio code."""
        await self.open_async()
        started, reactor, events = await self._completed_run(run_id)
        missing = await self._missing_undos(run_id, reactor, events)
        if missing:
            shown = ", ".join(missing)
            msg = (
                f"run {run_id} of {started.reactor!r} cannot be undone: these completed "
                f"steps have no undo: {shown} (nothing was undone)"
            )
            raise UndoError(msg, run_id=run_id, reactor=started.reactor, steps=missing)
        await self._roll_back_run(started, reactor)

    async def _completed_run(self, run_id: str) -> tuple[RunStarted, type[Reactor], list[RunEvent]]:
        entries = await self.journal.read_async(stream_of(run_id))
        events = [RUN_EVENT_DECODER.decode(e.data) for e in entries]
        if not events or not isinstance(events[0], RunStarted):
            msg = f"no run {run_id!r} in the journal ({self._where()})"
            raise UndoError(msg, run_id=run_id, reactor="")
        started = events[0]
        name = started.reactor
        if started.parent is not None:
            msg = (
                f"run {run_id} of {name!r} was composed by run {started.parent}: "
                "undo that run instead"
            )
            raise UndoError(msg, run_id=run_id, reactor=name)
        last = type(events[-1]).__name__
        if last != "RunCompleted":
            status = run_status(last, None)
            why = "was undone already" if last == "RunUndone" else f"has not completed ({status})"
            msg = f"run {run_id} of {name!r} cannot be undone: it {why}"
            raise UndoError(msg, run_id=run_id, reactor=name)
        return started, self._load_for_undo(started), events

    def _load_for_undo(self, started: RunStarted) -> type[Reactor]:
        try:
            return self._load(started)
        except ResumeError as exc:
            raise UndoError(str(exc), run_id=started.run_id, reactor=started.reactor) from exc

    async def _missing_undos(
        self, run_id: str, reactor: type[Reactor], events: list[RunEvent], *, child: bool = False
    ) -> list[str]:
        """The completed steps without an undo, in this run and its composed runs."""
        try:
            needs = undoability(reactor.__plan__, events)
        except (LookupError, ValueError, DefinitionError) as exc:
            msg = f"run {run_id}: the steps it added cannot be rebuilt: {exc}"
            raise UndoError(msg, run_id=run_id, reactor=reactor.__plan__.reactor) from exc
        missing = [f"{run_id}: {name}" if child else name for name in needs.missing]
        for step, attempt in needs.composites:
            for started in await self._completed_children(f"{run_id}/{step}.{attempt}"):
                entries = await self.journal.read_async(stream_of(started.run_id))
                child_events = [RUN_EVENT_DECODER.decode(e.data) for e in entries]
                child_reactor = self._load_for_undo(started)
                missing += await self._missing_undos(
                    started.run_id, child_reactor, child_events, child=True
                )
        return missing

    # ---- resuming -------------------------------------------------------------------------

    def history(self, run_id: str) -> list[RunEvent]:
        """The run's journal, decoded (oldest first); empty for an unknown run."""
        self._require_open()
        return read_history(self.journal, run_id)

    def resume(
        self,
        run_id: str,
        *,
        middleware: Sequence[Middleware] = (),
        reason: str = "resumed",
        force: bool = False,
        reactor: type[Reactor] | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        on_timeout: OnTimeout | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
    ) -> RunHandle:
        """Continue a halted or interrupted run from its journal.

        Completed steps are not run again: their results come from the journal. Steps
        that were running when it stopped run again.

        The reactor's plan is compared with the one the run started with: if a step
        was added, removed or renamed, or its dependencies or kind changed, resuming
        is refused (the journal's results would feed a different graph) unless
        ``force``; if only the source file changed, the run resumes with a warning
        (logged, and in :attr:`RunHandle.warnings`).

        Args:
            run_id: The run.
            middleware: Observers of this run only, after the engine's.
            reason: Why it is resumed (journaled with ``RunResumed``).
            force: Resume although its steps changed: the events of steps the reactor
                no longer has are left out, new steps run.
            reactor: The reactor to continue it with (by default the one its
                journal's locator names): for a reactor whose file moved. Later
                resumes load it from its new place.
            max_concurrency: Steps running at once, from now on (see below).
            timeout: Seconds the run may take from this resume.
            on_timeout: What the run does once that timeout has passed.
            max_iterations: How many more times its steps may loop.
            halt_timeout: Seconds a halting run waits for its running steps.
            idle_timeout: Seconds the run may go without progress (its clock starts
                afresh at the resume).

        The run options may be given anew, as Ash's ``run`` takes them again with a
        halted reactor: a larger ``max_iterations`` for a run that reached its limit, a
        longer ``timeout`` or ``on_timeout="fail"`` for one that soft-timed out. An
        option not given stays as journaled (as the run started, or as a resume since
        gave it). Those given are checked as :meth:`start` checks them and journaled
        with ``RunResumed``, so every later resume keeps them, after a crash too.

        Raises:
            ResumeError: No such run, it already ended, or its reactor cannot be loaded.
            PlanChangedError: Its steps changed since it started (and not ``force``);
                ``changes`` says how.
            JournalCorruptError: A row of its journal cannot be read.
            ValueError: A run option is out of range (as :meth:`start` says).
        """
        self._require_open()
        given = {
            name: value
            for name, value in (
                ("max_concurrency", max_concurrency),
                ("timeout", timeout),
                ("on_timeout", on_timeout),
                ("max_iterations", max_iterations),
                ("halt_timeout", halt_timeout),
                ("idle_timeout", idle_timeout),
            )
            if value is not None
        }
        events = self.history(run_id)
        if not events or not isinstance(events[0], RunStarted):
            msg = f"no run {run_id!r} in the journal ({self._where()})"
            raise ResumeError(msg, run_id=run_id, reactor="")
        started = events[0]
        ended = type(events[-1]).__name__
        if ended in TERMINAL_EVENTS:
            msg = f"run {run_id} of {started.reactor!r} already ended ({ended}); nothing to resume"
            raise ResumeError(msg, run_id=run_id, reactor=started.reactor)
        _check_running_elsewhere(started, events, self.owner, self.system)
        _check_limits(
            started.reactor,
            max_concurrency,
            timeout,
            on_timeout,
            max_iterations,
            halt_timeout,
            idle_timeout,
        )
        locator = _latest_locator(events)
        moved_to = ""
        if reactor is None:
            reactor = self._load(started, locator)
        else:
            try:
                moved_to = locate(reactor)
            except ValueError:
                moved_to = ""
            if moved_to == locator:
                moved_to = ""
        warnings = self._check_plan(started, reactor, force=force)
        if warnings:
            reason = f"{reason} ({'; '.join(warnings)})"
        options = _journaled_options(events, given)
        handle = RunHandle(run_id, started.reactor)
        spec = self._spec(
            reactor,
            run_id,
            handle,
            self._services_for(middleware),
            inputs=None,
            raw_inputs=None,
            locator=started.locator,
            options=options,
            parent=started.parent,
            resume_reason=reason,
            lenient=force,
            resume_locator=moved_to,
            resume_options=given,
            resume_seq=len(events),
        )
        handle._ref = self._spawn(spec, run_id)
        handle.warnings = tuple(warnings)
        return handle

    @staticmethod
    def _check_plan(started: RunStarted, reactor: type[Reactor], *, force: bool) -> list[str]:
        """Refuse a changed plan (unless ``force``); the warnings a resume carries."""
        from reactor.observe import log  # noqa: PLC0415

        check = compare_plan(decode_plan(started.plan), reactor)
        changes = list(check.changes)
        name = reactor.__plan__.reactor
        if name != started.reactor:
            changes.insert(0, f"the reactor is {name!r}, was {started.reactor!r}")
        warnings: list[str] = []
        if changes:
            if not force:
                raise PlanChangedError(
                    run_id=started.run_id, reactor=started.reactor, changes=changes
                )
            warnings.append(f"resumed with force although its steps changed: {'; '.join(changes)}")
        if check.source_changed:
            warnings.append(
                f"the source of reactor {started.reactor!r} ({check.source_file or '?'}) "
                "changed since the run started; completed steps keep the results of the "
                "old code"
            )
        for warning in warnings:
            log.warning("resuming a run whose reactor changed", run_id=started.run_id, why=warning)
        return warnings

    @staticmethod
    def _load(started: RunStarted, locator: str | None = None) -> type[Reactor]:
        locator = locator or started.locator
        if not locator:
            msg = (
                f"run {started.run_id}: reactor {started.reactor!r} was defined where another "
                "process cannot find it (define it at module level, in a file)"
            )
            raise ResumeError(msg, run_id=started.run_id, reactor=started.reactor)
        try:
            reactor = find(locator)
        except (LookupError, ImportError, SyntaxError) as exc:
            msg = (
                f"run {started.run_id}: cannot load reactor {locator!r}: {exc} "
                "(if its file moved, resume it with the reactor from its new place: "
                "`reactor runs resume RUN_ID NEW/PATH.py`, Engine.resume(reactor=...))"
            )
            raise ResumeError(msg, run_id=started.run_id, reactor=started.reactor) from exc
        if not (isinstance(reactor, type) and issubclass(reactor, Reactor)):
            msg = f"run {started.run_id}: {locator!r} is not a Reactor"
            raise ResumeError(msg, run_id=started.run_id, reactor=started.reactor)
        return reactor

    def interrupted(self) -> list[str]:
        """Top-level runs that were running in a process that is gone (not halted ones)."""
        self._require_open()
        found: list[str] = []
        for info in self.journal.streams(
            STREAM_PREFIX, open_only=True, terminal_types=tuple(TERMINAL_EVENTS)
        ):
            if info.first is None or info.last_type == "RunHalted":
                continue
            started = RUN_EVENT_DECODER.decode(info.first.data)
            if not isinstance(started, RunStarted) or started.parent is not None:
                continue
            if owner_alive(latest_owner(self.journal, started, info.last_seq)) is False:
                found.append(started.run_id)
        return found

    def resume_interrupted(self) -> list[RunHandle]:
        """Resume every run whose process died (see :meth:`interrupted`)."""
        handles = []
        for run_id in self.interrupted():
            try:
                handles.append(self.resume(run_id, reason="its process died"))
            except ResumeError as exc:
                from reactor.observe import log  # noqa: PLC0415

                log.warning("cannot resume an interrupted run", run_id=run_id, error=str(exc))
        return handles

    # ---- listing ----------------------------------------------------------------------------

    # ---- feedback --------------------------------------------------------------------------

    def feedback(self, run_id: str, step: str, score: float) -> Feedback:
        """Score the answer a ``select`` step (or ``ask(model="auto")``) got: 0 to 1.

        The selector learns from it: the model that answered gets ``score`` as that
        answer's quality for its task type, in place of the reward counted when the
        answer came (1 for an answer, or the configured scorer's value). The step's
        result in the journal says which model that was, so feedback works for runs of
        earlier processes too.

        Returns:
            The feedback sent to the selector.

        Raises:
            ValueError: ``score`` is not within 0 and 1.
            LookupError: No such run, the step did not complete, or its model was not
                selected.
        """
        if not 0.0 <= score <= 1.0:
            msg = f"feedback score must be within 0 and 1, got {score!r}"
            raise ValueError(msg)
        message = _feedback_for(self.history(run_id), run_id, step, score)
        self.selector.tell(message)
        return message

    def runs(self, *, limit: int | None = 50, include_children: bool = False) -> list[RunSummary]:
        """Runs in the journal, newest first (what ``reactor runs list`` shows)."""
        self._require_open()
        return list_runs(self.journal, limit=limit, include_children=include_children)

    def _where(self) -> str:
        return f"store {self.store.name}"

    # ---- tools ---------------------------------------------------------------------------

    def start_tools(
        self,
        registry: ToolRegistry,
        *,
        policy: Policy | None = None,
        config: Config | None = None,
        mcp: Mapping[str, McpServerConfig] | None = None,
        audit_retention_s: float | None = None,
        max_parallel: int | None = None,
        name: str = "tools",
    ) -> Ref[Any]:
        """Start the ToolRunner that this engine's ``tools`` steps call (audited in its Store).

        Args:
            registry: The tools.
            policy: Who may call what.
            config: A configuration whose ``[tools]`` settings and ``[mcpServers.*]``
                servers apply (the arguments below win over it).
            mcp: MCP servers by name (default: the configuration's).
            audit_retention_s: Prune audit records older than this.
            max_parallel: Tool calls running at once.
            name: The runner's actor name (a step's ``runner=``).
        """
        settings = config.tools if config is not None else None
        if audit_retention_s is None and settings is not None and settings.audit_retention_days:
            audit_retention_s = settings.audit_retention_days * 86_400
        if max_parallel is None:
            max_parallel = settings.max_parallel if settings is not None else 128
        spec = ToolRunner.spec(
            registry,
            name=name,
            policy=policy,
            store=self.store,
            db_path=self.journal.stats().path,
            audit_retention_s=audit_retention_s,
            mcp=mcp if mcp is not None else (config.mcp_servers if config is not None else None),
            max_parallel=max_parallel,
        )
        return self.system.spawn(spec)

    def pending_tool_calls(self, run_id: str) -> list[tuple[str, PendingCall]]:
        """The run's tool calls waiting for a human, as ``(step, call)``."""
        return pending_calls(self.journal, run_id)

    def approve_tool_call(
        self, run_id: str, call_id: str, *, by: str = "", arguments: dict[str, Any] | None = None
    ) -> Approval:
        """Approve a pending call (with ``arguments``: run those instead); resume to apply it.

        Raises:
            actors.tools.ApprovalError: No such call waits for a decision.
        """
        if arguments is not None:
            return decide(self.journal, run_id, call_id, "edit", by=by, arguments=arguments)
        return decide(self.journal, run_id, call_id, "approve", by=by)

    def reject_tool_call(
        self, run_id: str, call_id: str, *, by: str = "", message: str = ""
    ) -> Approval:
        """Reject a pending call; the model is told ``message``. Resume to apply it.

        Raises:
            actors.tools.ApprovalError: No such call waits for a decision.
        """
        return decide(self.journal, run_id, call_id, "reject", by=by, message=message)

    # ---- agents --------------------------------------------------------------------------

    def start_agents(
        self,
        *,
        tools: str | None = None,
        idle_s: float | None = 300.0,
        timeout: float = 120.0,
        name: str = "agents",
    ) -> Agents:
        """Agents and conversations on this engine's services (for ``agent``/``conversation``).

        Agents' model calls go through the same resolver, Selector, fallback chains and
        Budget as the engine's steps; their state lives in the engine's Store.

        Args:
            tools: The name of a ToolRunner (``start_tools``) for agents with tools.
            idle_s: Seconds an agent or conversation stays active without mail.
            timeout: Seconds one model call (or tool loop) may take.
            name: The router's actor name (a step's ``router=``).
        """
        runner = self.system.lookup(tools) if tools is not None else None
        backend = AgentBackend(
            store=self.store,
            resolve=lambda model: self._resolve_host(model, None),
            catalog=self.catalog,
            selector=self.selector,
            chains=self.chains.ref,
            chain_links=lambda name: self.chains.chain(name).links,
            budget=self.budget,
            tools=runner,
            timeout=timeout,
            known_models=tuple(self._hosts),
        )
        return Agents(self.system, backend, idle_s=idle_s, name=name)


@functools.lru_cache(maxsize=64)
def _options(  # noqa: PLR0917 - one per run option, cached positionally
    max_concurrency: int,
    timeout: float | None,
    concurrency_key: str | None,
    on_timeout: OnTimeout = "fail",
    max_iterations: int | None = None,
    halt_timeout: float | None = None,
    idle_timeout: float | None = None,
) -> RunOptions:
    """The (frozen) options of a new run: runs that share their options share one object."""
    return RunOptions(
        max_concurrency=max_concurrency,
        timeout=timeout,
        concurrency_key=concurrency_key,
        on_timeout=on_timeout,
        max_iterations=max_iterations,
        halt_timeout=halt_timeout,
        idle_timeout=idle_timeout,
    )


_RUNS_SPEC = SupervisorSpec(name="runs", max_restarts=1_000_000, within=1.0, on_loop=True)
"""The supervisor every run of the system's engines is a child of."""


def _on_event_loop() -> bool:
    """Whether this thread is running an event loop (where set-up must not wait)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


_ENGINES: weakref.WeakValueDictionary[str, Engine] = weakref.WeakValueDictionary()
"""The engines of this process by owner token (to tell which share an actor system)."""


def _engine_alive(engine: weakref.ref[Engine]) -> bool:
    """Whether an engine still owns its runs: it exists and its system (their home) runs."""
    alive = engine()
    return alive is not None and alive.system.running


def _check_running_elsewhere(
    started: RunStarted, events: Sequence[RunEvent], me: Owner, system: System
) -> None:
    """Refuse to resume a run that another live engine or process on this machine runs.

    The owner of its latest ``RunStarted``/``RunResumed`` decides, unless it halted
    (then nobody runs it). A run of this engine, or of another engine on this one actor
    system, is left to ``_spawn`` (its Run actor is either alive in this system, where
    the name is taken, or stopped and resumable), and so is one journaled by this
    process before owners named their engine. Another engine of this process, on
    another system, is another owner, alive while its system runs; another machine's
    cannot be told.
    """
    owner = started.owner
    for event in events:
        if isinstance(event, RunResumed):
            owner = event.owner
    if type(events[-1]).__name__ == "RunHalted" or owner in (me, THIS_PROCESS):
        return
    other = _ENGINES.get(owner.engine) if owner.engine and owner.pid == me.pid else None
    if other is not None and other.system is system:
        return
    if owner_alive(owner):
        mine = owner.engine and owner.pid == me.pid
        until = "that engine's actor system has stopped" if mine else "that process has stopped"
        msg = (
            f"run {started.run_id} of {started.reactor!r} is still running in "
            f"{owner.describe()}; resume it only once {until}"
        )
        raise ResumeError(msg, run_id=started.run_id, reactor=started.reactor)


def _latest_locator(events: Sequence[RunEvent]) -> str:
    """Where the run's reactor was loaded from last (a resume may have moved it)."""
    for event in reversed(events):
        if isinstance(event, RunResumed) and event.locator:
            return event.locator
    first = events[0]
    return first.locator if isinstance(first, RunStarted) else ""


def _feedback_for(events: Sequence[RunEvent], run_id: str, step: str, score: float) -> Feedback:
    if not events:
        msg = f"no run {run_id!r} in the journal"
        raise LookupError(msg)
    completed = [e for e in events if isinstance(e, StepCompleted) and e.step == step]
    if not completed:
        msg = f"run {run_id}: step {step!r} did not complete (nothing to give feedback on)"
        raise LookupError(msg)
    value = msgspec.json.decode(completed[-1].value)
    extras = value.get("extras") if isinstance(value, dict) else None
    selection = extras.get("selection") if isinstance(extras, dict) else None
    if not isinstance(selection, dict) or "chosen" not in selection:
        msg = f"run {run_id}: step {step!r} did not select its model (no selection recorded)"
        raise LookupError(msg)
    features = selection.get("features") or {}
    counted = selection.get("reward")
    return Feedback(
        model=str(selection["chosen"]),
        task_type=str(features.get("task_type", "general")),
        score=score,
        counted=float(counted) if isinstance(counted, int | float) else None,
    )


def run_context(context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's context as a resumed run will see it: JSON values, through the codec.

    Raises:
        EncodeError: It is not a mapping, or cannot be encoded as JSON.
    """
    if context is None:
        return {}
    if not isinstance(cast(object, context), Mapping):
        msg = f"the run's context must be a mapping, got {context!r}"
        raise EncodeError(msg)
    try:
        decoded = msgspec.json.decode(encode_value(dict(context)))
    except EncodeError as exc:
        msg = f"the run's context cannot be journaled: {exc}"
        raise EncodeError(msg) from exc
    return dict(decoded)


_ids = itertools.count(random.SystemRandom().getrandbits(24))
"""The random part of run ids: a random start, then one more per id (see new_run_id)."""


def new_run_id() -> str:
    """A new run id: time-ordered hex, then six hex digits (``0193f2c4a1b2-5e9d0c``).

    The six digits count up from a random start: two ids made by this process differ
    (a random part drawn per id did collide when thousands of runs started in the same
    millisecond), ids made by two processes in the same millisecond almost surely do,
    and making one costs no system call.
    """
    return f"{int(time.time() * 1000):x}-{next(_ids) & 0xFFFFFF:06x}"


def _check_seconds(reactor: str, option: str, value: Any) -> None:
    """Raises ``ValueError`` unless ``value`` is ``None`` or seconds > 0."""
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not value > 0
    ):
        msg = f"run of {reactor!r}: {option} must be seconds > 0, got {value!r}"
        raise ValueError(msg)


def _journaled_options(events: Sequence[Any], given: Mapping[str, Any]) -> RunOptions:
    """A resumed run's options: ``RunStarted``'s, then each resume's, then ``given``."""
    merged = dict(events[0].options)
    for event in events:
        if isinstance(event, RunResumed):
            merged.update(event.options)
    merged.update(given)
    known = {f.name for f in dataclasses.fields(RunOptions)}
    return RunOptions(**{k: v for k, v in merged.items() if k in known})


def _check_limits(  # noqa: PLR0917 - one per run option
    reactor: str,
    max_concurrency: Any,
    timeout: Any,
    on_timeout: Any,
    max_iterations: Any = None,
    halt_timeout: Any = None,
    idle_timeout: Any = None,
) -> None:
    """A run's own limits, checked as a class's are (a negative limit hung the run).

    Raises:
        ValueError: ``max_concurrency`` is not an int >= 1, ``timeout``,
            ``halt_timeout`` or ``idle_timeout`` not seconds > 0, ``on_timeout`` not
            one of its values, or ``max_iterations`` not an int >= 0.
    """
    _check_seconds(reactor, "halt_timeout", halt_timeout)
    _check_seconds(reactor, "idle_timeout", idle_timeout)
    if max_iterations is not None and (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, int)
        or max_iterations < 0
    ):
        msg = f"run of {reactor!r}: max_iterations must be an int >= 0, got {max_iterations!r}"
        raise ValueError(msg)
    if max_concurrency is not None and (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or max_concurrency < 1
    ):
        msg = f"run of {reactor!r}: max_concurrency must be an int >= 1, got {max_concurrency!r}"
        raise ValueError(msg)
    _check_seconds(reactor, "timeout", timeout)
    allowed = get_args(OnTimeout)
    if on_timeout is not None and on_timeout not in allowed:
        msg = (
            f"run of {reactor!r}: on_timeout must be "
            f"{' or '.join(map(repr, allowed))}, got {on_timeout!r}"
        )
        raise ValueError(msg)
