"""Ray placement: a step's calls run as Ray tasks (or on a pool of Ray actors).

The engine stays where it is: the Run actor dispatches, journals and retries; here a
call is submitted and awaited on the event loop (``await ref``), without a thread.

1. Connect once, in a worker thread (``ray.init`` takes seconds): to the configured
   address, or to a local instance bound to 127.0.0.1 only (:func:`loopback_only`).
2. Encode the arguments as the journal does; one that cannot be encoded fails the
   step with :class:`UnencodableError` naming it (before anything is sent).
3. Submit: a task with the placement's resources and ``max_retries=0`` (the journal
   owns retries), or a call to the least busy actor of the step's pool.
4. Await the reply within the step's timeout. At the timeout, or when the attempt is
   cancelled, ``ray.cancel`` stops the task (a running task gets
   ``KeyboardInterrupt``; a running call on a sync actor runs to its end, as a thread
   in the local pool would).
5. A worker or node that died is :class:`WorkerLostError`, transient: the step's
   retry policy applies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from typing import TYPE_CHECKING, Any

from opentelemetry import propagate

from reactor.placement._errors import (
    PlacementError,
    RayNotInstalledError,
    UnencodableError,
    WorkerLostError,
)
from reactor.placement._placement import PlacedCall
from reactor.run import EncodeError, Err, Ok, Outcome, decode_value, encode_value

if TYPE_CHECKING:
    from actors.llm import RayConfig

__all__ = ["LOOPBACK_ENV", "RayPlacement", "loopback_only"]

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Set to ``0``, every process of a Ray instance started here binds 127.0.0.1 only.

By default Ray binds the machine's network address (and its servers every interface).
With this set to ``0`` Ray takes the loopback address as the node's, and its servers
listen there, as it does by default on macOS and Windows.
"""


def loopback_only() -> None:
    """Make Ray instances started from this process bind 127.0.0.1 only.

    Sets :data:`LOOPBACK_ENV` for the processes Ray starts, and the constant Ray read
    from it at import (when it was imported before).
    """
    os.environ[LOOPBACK_ENV] = "0"
    try:
        from ray._private import ray_constants  # noqa: PLC0415 - Ray is optional
    except ImportError:
        return
    ray_constants.ENABLE_RAY_CLUSTER = False


def _import_ray(where: str) -> Any:
    try:
        import ray  # noqa: PLC0415 - Ray is optional
    except ImportError as exc:
        raise RayNotInstalledError(where) from exc
    return ray


def _key(call: PlacedCall) -> tuple[Any, ...]:
    p = call.placement
    return (call.fn, p.num_cpus, p.num_gpus, p.memory, tuple(sorted(p.resources.items())))


class _Pool:
    """``n`` Ray actors for one step function; each call goes to the least busy."""

    def __init__(self, ray: Any, call: PlacedCall, options: dict[str, Any]) -> None:
        from reactor.placement._ray_worker import AsyncStepHost, SyncStepHost  # noqa: PLC0415

        host = AsyncStepHost if call.is_async else SyncStepHost
        cls = ray.remote(host).options(**options, max_restarts=-1, max_task_retries=0)
        self.actors = [cls.remote(call.fn, call.step) for _ in range(call.placement.actors)]
        self.busy = [0] * len(self.actors)

    def submit(self, payload: bytes, carrier: dict[str, str] | None) -> tuple[Any, int]:
        index = min(range(len(self.busy)), key=self.busy.__getitem__)
        self.busy[index] += 1
        return self.actors[index].call.remote(payload, carrier), index


class RayPlacement:
    """Runs step calls on a Ray cluster.

    Args:
        config: Where the cluster is (``None``: the configuration's ``[ray]`` section,
            which ``REACTOR_RAY__ADDRESS`` sets; without an address, a local instance
            on 127.0.0.1).

    Raises:
        RayNotInstalledError: Ray is not installed (``pip install 'reactor-swarm[ray]'``).
    """

    name = "ray"

    def __init__(self, config: RayConfig | None = None) -> None:
        self._ray = _import_ray("a step")
        self._config = config
        self._lock = threading.Lock()
        self._connected = False
        self._started = False
        self._tasks: dict[Any, Any] = {}
        self._pools: dict[tuple[Any, ...], _Pool] = {}
        self._lost: tuple[type[BaseException], ...] = self._lost_errors()

    def _lost_errors(self) -> tuple[type[BaseException], ...]:
        rx = self._ray.exceptions
        return (
            rx.WorkerCrashedError,
            rx.NodeDiedError,
            rx.RayActorError,
            rx.ObjectLostError,
            rx.LocalRayletDiedError,
            rx.OutOfMemoryError,
        )

    @property
    def started(self) -> bool:
        """Whether this placement started the Ray instance it uses (and shuts it down)."""
        return self._started

    def connect(self) -> None:
        """Join the configured cluster, or start a local one on loopback (blocking, once).

        An already initialised Ray (``ray.init`` called by the application) is used as
        it is.
        """
        with self._lock:
            if self._connected:
                return
            ray = self._ray
            if not ray.is_initialized():
                config = self._config
                if config is None:
                    from actors.llm import load_config  # noqa: PLC0415 - only when needed

                    config = load_config().ray
                options: dict[str, Any] = {
                    "namespace": config.namespace,
                    "include_dashboard": False,
                    "log_to_driver": False,
                }
                if config.address:
                    ray.init(address=config.address, **options)
                else:
                    loopback_only()
                    ray.init(  # "local": a new instance, never one found running
                        address="local",
                        num_cpus=config.num_cpus,
                        num_gpus=config.num_gpus,
                        **options,
                    )
                self._started = True
            self._connected = True

    def place(self, call: PlacedCall) -> Any:
        """The coroutine that runs ``call`` on the cluster and yields its outcome."""
        return self._run(call)

    def _options(self, call: PlacedCall) -> dict[str, Any]:
        p = call.placement
        options: dict[str, Any] = {}
        if p.num_cpus is not None:
            options["num_cpus"] = p.num_cpus
        if p.num_gpus is not None:
            options["num_gpus"] = p.num_gpus
        if p.memory is not None:
            options["memory"] = p.memory
        if p.resources:
            options["resources"] = dict(p.resources)
        return options

    def _task(self, call: PlacedCall) -> Any:
        key = _key(call)
        task = self._tasks.get(key)
        if task is None:
            from reactor.placement._ray_worker import run_placed  # noqa: PLC0415

            fn, is_async, step = call.fn, call.is_async, call.step

            def placed(payload: bytes, carrier: dict[str, str] | None) -> Any:
                return run_placed(fn, is_async, step, payload, carrier)

            placed.__name__ = placed.__qualname__ = getattr(fn, "__name__", step)
            remote = self._ray.remote(max_retries=0, retry_exceptions=False)(placed)
            options = self._options(call)
            task = remote.options(**options) if options else remote
            self._tasks[key] = task
        return task

    def _encode(self, call: PlacedCall) -> bytes:
        try:
            return bytes(encode_value(call.kwargs))
        except EncodeError:
            pass
        for name, value in call.kwargs.items():
            try:
                encode_value(value)
            except EncodeError as exc:
                raise UnencodableError(call.step, f"argument {name!r}", str(exc)) from None
        raise UnencodableError(call.step, "arguments", "msgspec cannot encode them")

    async def _run(self, call: PlacedCall) -> Outcome:
        if not self._connected:
            try:
                await asyncio.to_thread(self.connect)
            except Exception as exc:  # noqa: BLE001 - the step fails, naming the cause
                msg = f"step {call.step!r} is placed on Ray, and Ray could not be reached: {exc}"
                return Err(PlacementError(msg))
        try:
            payload = self._encode(call)
        except UnencodableError as exc:
            return Err(exc)
        carrier: dict[str, str] | None = None
        if call.trace is not None:
            carrier = {}
            propagate.inject(carrier, context=call.trace)
        pool: _Pool | None = None
        index = 0
        try:
            if call.placement.actors:
                pool = self._pool(call)
                ref, index = pool.submit(payload, carrier)
            else:
                ref = self._task(call).remote(payload, carrier)
        except Exception as exc:  # noqa: BLE001 - e.g. a function Ray cannot pickle
            msg = f"step {call.step!r} could not be sent to Ray: {type(exc).__name__}: {exc}"
            return Err(PlacementError(msg))
        try:
            return await self._await(call, ref)
        finally:
            if pool is not None:
                pool.busy[index] -= 1

    def _pool(self, call: PlacedCall) -> _Pool:
        key = (*_key(call), call.placement.actors, call.is_async)
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(self._ray, call, self._options(call))
        return pool

    async def _await(self, call: PlacedCall, ref: Any) -> Outcome:
        ray = self._ray
        try:
            async with asyncio.timeout(call.timeout):
                reply = await ref
        except TimeoutError:
            self._cancel(ref)
            msg = f"step {call.step!r} on Ray took longer than its timeout ({call.timeout} s)"
            return Err(TimeoutError(msg))
        except asyncio.CancelledError:
            self._cancel(ref)
            raise
        except self._lost as exc:
            return Err(WorkerLostError(call.step, f"{type(exc).__name__}: {exc}"))
        except ray.exceptions.TaskCancelledError as exc:
            return Err(PlacementError(f"step {call.step!r}: its Ray task was cancelled: {exc}"))
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            msg = f"step {call.step!r} could not run on Ray: {type(cause).__name__}: {cause}"
            return Err(PlacementError(msg))
        return _outcome(call, reply)

    def _cancel(self, ref: Any) -> None:
        with contextlib.suppress(Exception):
            self._ray.cancel(ref, force=False, recursive=True)

    def close(self) -> None:
        """Kill the step actors; shut Ray down if this placement started it."""
        ray = self._ray
        for pool in self._pools.values():
            for actor in pool.actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor)
        self._pools.clear()
        self._tasks.clear()
        if self._started:
            ray.shutdown()
            self._started = False
        self._connected = False


class RemoteTraceback(Exception):  # noqa: N818 - a traceback, shown as the error's cause
    """The traceback of an exception raised on a Ray worker."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _outcome(call: PlacedCall, reply: tuple[str, Any]) -> Outcome:
    tag, body = reply
    if tag == "value":
        try:
            return Ok(decode_value(body, call.result_type))
        except Exception as exc:  # noqa: BLE001 - a result that does not decode to its type
            return Err(UnencodableError(call.step, "result", str(exc)))
    if tag == "outcome":
        return Ok(body)
    if tag == "unencodable":
        return Err(UnencodableError(call.step, "result", str(body)))
    error, text = body
    try:
        raise error from RemoteTraceback(text)
    except BaseException as raised:  # noqa: BLE001 - the step's failure, as a value
        return Err(raised)
