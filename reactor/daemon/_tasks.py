"""Tasks: one prompt each, routed to a model and run on its host.

A task's type says what is asked: ``generate`` (one prompt, one completion), ``chat``
(``parameters.messages`` as the history, then ``input`` from the user), ``embed`` (the
input's vector), or a custom type whose handler was registered with
:func:`register_task_handler`. Routing, first that applies:

1. the task's ``model_name``;
2. the agent's ``routing_preferences[type]``;
3. the agent's ``default_model``;
4. for ``embed``, the first model in the catalog that makes embeddings;
5. the Selector, choosing among the agent's ``models`` (or every chat model).

Each result says which rule chose the model (``routing``), how long the task took, its
tokens, and its status; a failed task is a result with ``error`` and its failure kind,
never an exception that stops the others.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, cast

from actors import ActorNotFound, AskError, System
from actors.llm import Catalog, ChatMessage, ChatRequest, EmbedRequest
from actors.orchestration import SelectModel
from reactor.daemon._errors import ApiError
from reactor.daemon._messages import Agent, Task, TaskMetrics, TaskResult, TasksResponse

__all__ = ["BUILT_IN_TYPES", "TaskHandler", "TaskRunner", "register_task_handler"]

BUILT_IN_TYPES = ("generate", "chat", "embed")

# A response's id: this process's random prefix and a counter (no system call per request).
_ID_PREFIX = secrets.token_hex(3)
_ids = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Routed:
    """Where a task goes: the host actor's name, the model id, and which rule chose it."""

    host: str
    model: str
    routing: str


TaskHandler = Callable[[Task, "TaskRunner", Agent | None], Awaitable[Any]]
"""A custom task type: ``async (task, runner, agent) -> output`` (JSON-encodable).

It may call ``runner.complete(...)`` to ask a model routed like a ``generate`` task.
"""

_HANDLERS: dict[str, TaskHandler] = {}


def register_task_handler(task_type: str, handler: TaskHandler) -> None:
    """Make ``task_type`` a task type that ``handler`` runs (replacing an earlier one).

    Raises:
        ValueError: ``task_type`` is a built-in type or empty.
    """
    if not task_type or task_type in BUILT_IN_TYPES:
        msg = f"task type {task_type!r}: choose a name other than {', '.join(BUILT_IN_TYPES)}"
        raise ValueError(msg)
    _HANDLERS[task_type] = handler


def task_types() -> list[str]:
    """Every task type, built-in first."""
    return [*BUILT_IN_TYPES, *sorted(_HANDLERS)]


class TaskRunner:
    """Routes and runs tasks on the fleet's hosts (on the I/O loop)."""

    def __init__(self, system: System, catalog: Catalog, selector: Any) -> None:
        self.system = system
        self.catalog = catalog
        self.selector = selector

    @staticmethod
    def known_types() -> list[str]:
        """Every task type, built-in first."""
        return task_types()

    def check(self, tasks: Sequence[Task]) -> None:
        """Refuse unknown task types before any task runs.

        Raises:
            ApiError: ``bad_request`` naming ``tasks[i].type``.
        """
        if not tasks:
            raise ApiError("bad_request", "no tasks given", field="tasks")
        known = task_types()
        for i, task in enumerate(tasks):
            if task.type not in known:
                msg = f"unknown task type {task.type!r}; known: {', '.join(known)}"
                raise ApiError("bad_request", msg, field=f"tasks[{i}].type")

    async def run_tasks(
        self, tasks: Sequence[Task], agent: Agent | None, *, sequential: bool
    ) -> TasksResponse:
        """Run the tasks (each its own result, in the order given)."""
        self.check(tasks)
        if sequential or len(tasks) == 1:  # one task needs no gate and no task of its own
            results = [
                await self.run_one(t, agent, task_id=f"task-{i + 1}") for i, t in enumerate(tasks)
            ]
        else:
            limit = agent.config.max_concurrent_tasks if agent is not None else 8
            gate = asyncio.Semaphore(limit)

            async def one(i: int, task: Task) -> TaskResult:
                async with gate:
                    return await self.run_one(task, agent, task_id=f"task-{i + 1}")

            results = list(await asyncio.gather(*(one(i, t) for i, t in enumerate(tasks))))
        failed = sum(r.status == "failed" for r in results)
        status: Literal["completed", "partial", "failed"] = "completed"
        if failed:
            status = "failed" if failed == len(results) else "partial"
        return TasksResponse(
            id=f"{_ID_PREFIX}{next(_ids):06x}",
            status=status,
            agent_id=agent.id if agent is not None else None,
            sequential=sequential,
            results=results,
            error=f"{failed} of {len(results)} tasks failed" if failed else None,
        )

    async def run_one(  # noqa: PLR0911 - one return per way a task ends
        self, task: Task, agent: Agent | None, *, task_id: str
    ) -> TaskResult:
        """Run one task; a failure is a result, not an exception."""
        started = time.perf_counter()
        timeout = agent.config.timeout_seconds if agent is not None else 120.0
        routed: Routed | None = None
        try:
            handler = _HANDLERS.get(task.type)
            if handler is not None:
                output = await asyncio.wait_for(handler(task, self, agent), timeout)
                return _done(task_id, task, started, output=output, routing="handler")
            routed = await self.route(task, agent)
            if task.type == "embed":
                vectors = await self._host(routed).ask_async(
                    EmbedRequest(model=routed.model, inputs=(task.input,)), timeout=timeout
                )
                usage = vectors.usage
                output = [list(v) for v in vectors.vectors]
                return _done(task_id, task, started, output=output, routed=routed, usage=usage)
            completion = await self._host(routed).ask_async(
                _chat_request(task, routed.model), timeout=timeout
            )
            return _done(
                task_id,
                task,
                started,
                output=completion.content,
                routed=routed,
                usage=completion.usage,
            )
        except AskError as exc:
            return _failed(task_id, task, started, routed, str(exc.failure.message), exc.kind.value)
        except (LookupError, ValueError, TypeError) as exc:
            return _failed(task_id, task, started, routed, str(exc), "bad_request")
        except TimeoutError:
            return _failed(
                task_id, task, started, routed, f"timed out after {timeout} s", "timeout"
            )
        except Exception as exc:  # noqa: BLE001 - a custom handler's failure is its task's
            return _failed(task_id, task, started, routed, f"{type(exc).__name__}: {exc}", "error")

    async def complete(
        self, prompt: str, agent: Agent | None = None, model: str | None = None
    ) -> str:
        """Ask a model (routed as a ``generate`` task) and return its text (for handlers).

        Raises:
            RuntimeError: The task failed; the message says why.
        """
        result = await self.run_one(
            Task(type="generate", input=prompt, model_name=model), agent, task_id="handler"
        )
        if result.status == "failed":
            raise RuntimeError(result.error or "the model call failed")
        return cast("str", result.output)

    async def route(self, task: Task, agent: Agent | None) -> Routed:
        """Which model runs ``task``, and why (the module docstring's order).

        Raises:
            LookupError: Nothing can serve it (the message lists what is known).
        """
        config = agent.config if agent is not None else None
        if task.model_name:
            return self._resolve(task.model_name, "model_name")
        if config is not None and task.type in config.routing_preferences:
            return self._resolve(config.routing_preferences[task.type], f"preference:{task.type}")
        if config is not None and config.default_model:
            return self._resolve(config.default_model, "default_model")
        if task.type == "embed":
            for entry in self.catalog.entries():
                if "embeddings" in entry.capabilities:
                    return Routed(entry.host, entry.model, "catalog:embeddings")
            msg = "no model in the catalog makes embeddings; name one with model_name"
            raise LookupError(msg)
        request = _chat_request(task, "")
        candidates = tuple(agent.models) if agent is not None else ()
        choice = await self.selector.ask_async(
            SelectModel(request=request, candidates=candidates), timeout=10.0
        )
        decision = choice.decision
        if not decision.host:
            raise LookupError(f"the selector chose no model: {decision.reason}")
        return Routed(
            decision.host, decision.model, f"selector:{decision.policy}: {decision.reason}"
        )

    def _resolve(self, name: str, why: str) -> Routed:
        entry = self.catalog.resolve(name)
        return Routed(entry.host, entry.model, why)

    def _host(self, routed: Routed) -> Any:
        try:
            return self.system.lookup(routed.host)
        except ActorNotFound:
            msg = f"model host {routed.host!r} (for {routed.model!r}) is not running"
            raise LookupError(msg) from None


def _chat_request(task: Task, model: str) -> ChatRequest:
    params = task.parameters
    messages: list[ChatMessage] = []
    system = params.get("system")
    if isinstance(system, str) and system:
        messages.append(ChatMessage(role="system", content=system))
    if task.type == "chat":
        messages.extend(
            ChatMessage(role=each.get("role", "user"), content=str(each.get("content", "")))
            for each in params.get("messages") or ()
            if isinstance(each, dict)
        )
    messages.append(ChatMessage(role="user", content=task.input))
    temperature = params.get("temperature")
    max_tokens = params.get("max_tokens")
    return ChatRequest(
        model=model,
        messages=tuple(messages),
        temperature=float(temperature) if isinstance(temperature, int | float) else None,
        max_tokens=int(max_tokens) if isinstance(max_tokens, int) else None,
    )


def _metrics(started: float, usage: Any = None) -> TaskMetrics:
    took = time.perf_counter() - started
    prompt = int(getattr(usage, "input_tokens", 0) or 0)
    output = int(getattr(usage, "output_tokens", 0) or 0)
    return TaskMetrics(
        duration=int(took * 1e9),
        duration_ms=round(took * 1000, 3),
        tokens_used=prompt + output,
        prompt_tokens=prompt,
        output_tokens=output,
    )


def _done(
    task_id: str,
    task: Task,
    started: float,
    *,
    output: Any,
    routed: Routed | None = None,
    routing: str = "",
    usage: Any = None,
) -> TaskResult:
    return TaskResult(
        task_id=task_id,
        type=task.type,
        status="completed",
        output=output,
        model_used=f"{routed.host}/{routed.model}" if routed is not None else "",
        routing=routed.routing if routed is not None else routing,
        metrics=_metrics(started, usage),
    )


def _failed(  # noqa: PLR0917 - the parts of one result
    task_id: str, task: Task, started: float, routed: Routed | None, error: str, kind: str
) -> TaskResult:
    return TaskResult(
        task_id=task_id,
        type=task.type,
        status="failed",
        model_used=f"{routed.host}/{routed.model}" if routed is not None else "",
        routing=routed.routing if routed is not None else "",
        metrics=_metrics(started),
        error=error,
        error_kind=kind,
    )
