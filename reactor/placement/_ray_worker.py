"""What runs inside a Ray worker: a step's call, from bytes in to a tagged reply out.

Arguments arrive as the journal's JSON (:func:`~reactor.run.encode_value`) and are
decoded to the function's parameter annotations (a ``Completion`` argument is a
``Completion`` again); the result goes back the same way, so a value that could not be
journaled cannot cross either. The step's trace context arrives as a W3C carrier and
is attached around the call: spans the step makes join the run's trace (exported by
this process's tracer, which is configured from the ``OTEL_*`` variables when they
name an endpoint).

The reply is a pair: ``("value", json)``, ``("outcome", Retry(...))`` for the DSL's
outcomes (they travel as Ray pickles them), or ``("error", (exception, traceback))``.
Nothing here raises to Ray: a task that raised would be retried or wrapped by Ray,
and the engine owns retries.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import pickle
import threading
import traceback
import typing
from collections.abc import Callable, Mapping
from typing import Any

import msgspec
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

from dsl import Continue, Fail, Halt, Retry, Shortcut, WithSteps
from reactor.run import EncodeError, encode_value

__all__ = [
    "CONTROL",
    "AsyncStepHost",
    "Reply",
    "StepRunner",
    "SyncStepHost",
    "run_placed",
    "run_placed_async",
    "runner_message",
]

Reply = tuple[str, Any]
"""``(tag, body)``: ``value`` (JSON bytes), ``outcome`` (a DSL outcome) or ``error``."""

_OUTCOMES = (Continue, Fail, Halt, Retry, Shortcut, WithSteps)

_HINTS: dict[Callable[..., Any], dict[str, Any]] = {}


class RemoteError(Exception):
    """An exception from a step on Ray that could not be sent back as itself."""


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    hints = _HINTS.get(fn)
    if hints is None:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # noqa: BLE001 - annotations that do not resolve: plain values
            hints = {}
        _HINTS[fn] = hints
    return hints


def _convert(value: Any, hint: Any) -> Any:
    if hint is Any or hint is None:
        return value
    validate = getattr(hint, "model_validate", None)
    if isinstance(hint, type) and callable(validate):
        return validate(value)
    try:
        return msgspec.convert(value, type=hint, strict=False)
    except (TypeError, msgspec.ValidationError):
        return value  # an annotation msgspec cannot build: the plain value, as on replay


def decode_arguments(fn: Callable[..., Any], payload: bytes) -> dict[str, Any]:
    """The call's keyword arguments, each decoded to its parameter's annotation."""
    raw: dict[str, Any] = msgspec.json.decode(payload)
    hints = _hints(fn)
    return {name: _convert(value, hints.get(name, Any)) for name, value in raw.items()}


def _portable(error: BaseException) -> tuple[BaseException, str]:
    text = "".join(traceback.format_exception(error))
    try:
        pickle.loads(pickle.dumps(error))  # noqa: S301 - our own bytes, just made
    except Exception:  # noqa: BLE001 - any failure to pickle: send a description
        error = RemoteError(f"{type(error).__qualname__}: {error}")
    return error, f"on Ray (node {_node()}, pid {os.getpid()}):\n{text}"


def _node() -> str:
    try:
        import ray  # noqa: PLC0415 - only ever imported in a Ray worker

        return str(ray.get_runtime_context().get_node_id())[:12]
    except Exception:  # noqa: BLE001 - only for the message
        return "?"


def _reply(step: str, value: Any) -> Reply:
    if isinstance(value, _OUTCOMES):
        return ("outcome", value)
    try:
        return ("value", bytes(encode_value(value)))
    except EncodeError as exc:
        return ("unencodable", f"{exc}")


_tracing_checked = False


def _ensure_tracing() -> None:
    """Export this worker's spans when the ``OTEL_*`` variables name an endpoint."""
    global _tracing_checked  # noqa: PLW0603 - once per worker process
    if _tracing_checked:
        return
    _tracing_checked = True
    named = any(
        os.environ.get(v)
        for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )
    if named and type(trace.get_tracer_provider()).__name__ == "ProxyTracerProvider":
        import otel  # noqa: PLC0415 - only when exporting

        otel.configure_tracing()


def _attach(carrier: Mapping[str, str] | None) -> object | None:
    if not carrier:
        return None
    _ensure_tracing()
    return otel_context.attach(propagate.extract(carrier))


def _prepare(
    fn: Callable[..., Any], step: str, payload: bytes, carrier: Mapping[str, str] | None
) -> tuple[dict[str, Any] | None, Reply | None, object | None]:
    try:
        kwargs = decode_arguments(fn, payload)
    except Exception as exc:  # noqa: BLE001 - reported to the engine as the step's failure
        return None, ("error", _portable(exc)), None
    return kwargs, None, _attach(carrier)


def run_placed(
    fn: Callable[..., Any],
    is_async: bool,
    step: str,
    payload: bytes,
    carrier: Mapping[str, str] | None,
) -> Reply:
    """Call ``fn`` (an ``async def`` on a loop of its own) with the decoded arguments."""
    kwargs, failed, token = _prepare(fn, step, payload, carrier)
    if kwargs is None:
        assert failed is not None
        return failed
    try:
        value = asyncio.run(fn(**kwargs)) if is_async else fn(**kwargs)
    except BaseException as exc:  # noqa: BLE001 - the step's failure, sent back as a value
        return ("error", _portable(exc))
    finally:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
    return _reply(step, value)


async def run_placed_async(
    fn: Callable[..., Any], step: str, payload: bytes, carrier: Mapping[str, str] | None
) -> Reply:
    """Await ``fn`` on the running loop (an async actor's) with the decoded arguments."""
    kwargs, failed, token = _prepare(fn, step, payload, carrier)
    if kwargs is None:
        assert failed is not None
        return failed
    try:
        value = await fn(**kwargs)
    except asyncio.CancelledError:
        raise  # Ray cancelled the call: let Ray see it
    except BaseException as exc:  # noqa: BLE001 - the step's failure, sent back as a value
        return ("error", _portable(exc))
    finally:
        if token is not None:
            otel_context.detach(token)  # type: ignore[arg-type]
    return _reply(step, value)


class _Interruptible:
    """Calls that a second thread of the actor can interrupt (``KeyboardInterrupt``).

    Ray cannot interrupt a running call on an actor that runs sync code (it only
    cancels calls still queued), so a call registers the thread it runs in under the
    engine's token, and :meth:`interrupt` (in the actor's ``control`` concurrency
    group, so it runs while the call does) raises ``KeyboardInterrupt`` in that
    thread, as Ray's ``ray.cancel`` does in a task. Code blocked inside C (a long
    ``time.sleep``, a socket read) sees it when it returns to Python; the engine kills
    the actor when a call outlives the interrupt by its grace period.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, int] = {}
        self._interrupted: set[str] = set()
        self._early: set[str] = set()

    def _guarded(self, token: str, run: Callable[[], Reply]) -> Reply:
        ident = threading.get_ident()
        with self._lock:
            if token in self._early:
                self._early.discard(token)
                return ("error", _portable(KeyboardInterrupt("cancelled before it started")))
            self._running[token] = ident
        try:
            return run()
        except KeyboardInterrupt as exc:  # delivered just outside the step's own code
            return ("error", _portable(exc))
        finally:
            with self._lock:
                del self._running[token]
                if token in self._interrupted:
                    self._interrupted.discard(token)
                    _async_raise(ident, None)  # one not yet delivered is dropped

    def interrupt(self, token: str) -> bool:
        """Interrupt the call ``token`` (or, if it has not started, stop it starting)."""
        with self._lock:
            ident = self._running.get(token)
            if ident is None:
                if len(self._early) > 1024:  # tokens of calls that ended meanwhile
                    self._early.clear()
                self._early.add(token)
                return False
            self._interrupted.add(token)
            _async_raise(ident, KeyboardInterrupt)
            return True


def _async_raise(ident: int, error: type[BaseException] | None) -> None:
    """Raise ``error`` in thread ``ident`` at its next bytecode (``None``: clear that)."""
    exc = None if error is None else ctypes.py_object(error)  # None is passed as NULL
    ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(ident), exc)


CONTROL = {"control": 1}
"""The concurrency group that :meth:`_Interruptible.interrupt` runs in."""


class StepRunner(_Interruptible):
    """A warm Ray actor that runs calls of any step with one shape of resources.

    The engine keeps a few of these per resource shape so that a step's call is one
    actor call (one message each way) rather than a task (a lease from the raylet
    first); each holds the resources one call of that shape holds, as a task would
    while it runs. Functions arrive once per runner and are kept by key.
    """

    def __init__(self) -> None:
        super().__init__()
        self._fns: dict[str, Callable[..., Any]] = {}

    def ready(self) -> bool:
        """Answered once the actor is up."""
        return True

    def call(self, message: bytes, fn: Callable[..., Any] | None = None) -> Reply:
        """One call: ``message`` is :func:`runner_message`'s; ``fn`` comes with a new key."""
        token, key, is_async, step, payload, carrier = msgspec.msgpack.decode(message)
        if fn is not None:
            self._fns[key] = fn
        found = self._fns[key]
        return self._guarded(token, lambda: run_placed(found, is_async, step, payload, carrier))


def runner_message(  # noqa: PLR0917 - the parts of one message
    token: str,
    key: str,
    is_async: bool,
    step: str,
    payload: bytes,
    carrier: Mapping[str, str] | None,
) -> bytes:
    """One call for :meth:`StepRunner.call`, as one argument (Ray handles one faster)."""
    return msgspec.msgpack.encode((token, key, is_async, step, payload, carrier))


class SyncStepHost(_Interruptible):
    """A Ray actor that keeps one step's function (and its process's state) warm."""

    def __init__(self, fn: Callable[..., Any], step: str) -> None:
        super().__init__()
        self.fn = fn
        self.step = step

    def call(self, payload: bytes, carrier: Mapping[str, str] | None, token: str) -> Reply:
        """One call of the step."""
        return self._guarded(token, lambda: run_placed(self.fn, False, self.step, payload, carrier))


class AsyncStepHost:
    """:class:`SyncStepHost` for an ``async def`` step: calls share the actor's loop."""

    def __init__(self, fn: Callable[..., Any], step: str) -> None:
        self.fn = fn
        self.step = step

    async def call(self, payload: bytes, carrier: Mapping[str, str] | None) -> Reply:
        """One call of the step."""
        return await run_placed_async(self.fn, self.step, payload, carrier)
