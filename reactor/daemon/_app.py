"""The daemon's ASGI app: REST, SSE, the MCP endpoint and the web page (Starlette).

Every route is declared once with :func:`_endpoint` (method, path, summary, request and
response Structs), which gives both the Starlette route and its entry in
``/openapi.json``. Handlers run on the System's I/O loop: they await actors
(``ask_async``) and hand the Engine's blocking calls to a worker thread, never block.

Auth (:class:`Guard`, pure ASGI in front of everything): a browser ``Origin`` that is
not the daemon's own (or configured) is refused with 403 before anything else; then
every path but ``/health`` needs the token, as ``Authorization: Bearer <token>``, the
``reactor_token`` cookie the page sets, or ``?token=`` on the page's URL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import parse_qs

import msgspec
import structlog
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from actors import AskError
from actors.llm import HostStatsQuery, ResourceQuery
from actors.orchestration import SpendQuery
from reactor.daemon._errors import ApiError, ErrorBody
from reactor.daemon._messages import (
    Agent,
    AgentCreate,
    AgentUpdate,
    Decide,
    Health,
    ReactorInfo,
    ResumeRun,
    RunCreated,
    StartRun,
    TasksRequest,
    TasksResponse,
    WorkflowRequest,
    WorkflowResponse,
    WorkflowStepResult,
)
from reactor.daemon._workflow import parse_steps, workflow_reactor
from reactor.run import (
    STREAM_PREFIX,
    TERMINAL_EVENTS,
    InputError,
    PlanChangedError,
    ResumeError,
    RunError,
    RunExistsError,
    fold,
    read_history,
    run_status,
)

if TYPE_CHECKING:
    from reactor.daemon._daemon import Daemon

__all__ = ["ENDPOINTS", "build_app", "openapi"]

T = TypeVar("T")
_encoder = msgspec.json.Encoder(enc_hook=str)
_PATH_IN_ERROR = re.compile(r"at `\$(.*)`$")
_MISSING_FIELD = re.compile(r"missing required field `([^`]+)`(?: - at `\$(.*)`)?$")
COOKIE = "reactor_token"
_log = structlog.get_logger("reactor.daemon")


def json_response(value: Any, status: int = 200) -> Response:
    """``value`` encoded with msgspec."""
    return Response(_encoder.encode(value), status_code=status, media_type="application/json")


def error_response(error: ApiError, headers: dict[str, str] | None = None) -> Response:
    """The one error shape."""
    return Response(
        _encoder.encode(error.body()),
        status_code=error.status,
        media_type="application/json",
        headers=headers,
    )


_DECODERS: dict[Any, msgspec.json.Decoder[Any]] = {}


def _decoder(kind: type[T]) -> msgspec.json.Decoder[T]:
    """One decoder per body type, made on first use."""
    decoder = _DECODERS.get(kind)
    if decoder is None:
        decoder = _DECODERS[kind] = msgspec.json.Decoder(kind)
    return decoder


async def decode(request: Request, kind: type[T]) -> T:
    """The request's JSON body as ``kind``.

    Raises:
        ApiError: ``bad_request``: not JSON, or a field is wrong (``field`` is its path).
    """
    body = await request.body()
    try:
        return _decoder(kind).decode(body or b"{}")
    except msgspec.ValidationError as exc:
        missing = _MISSING_FIELD.search(str(exc))
        found = _PATH_IN_ERROR.search(str(exc))
        field: str | None
        if missing:
            field = ".".join(
                p for p in ((missing.group(2) or "").lstrip("."), missing.group(1)) if p
            )
        else:
            field = found.group(1).lstrip(".") if found else None
        raise ApiError("bad_request", str(exc), field=field) from None
    except msgspec.DecodeError as exc:
        raise ApiError("bad_request", f"the body is not valid JSON: {exc}") from None


# ---- the route table ---------------------------------------------------------------------

Handler = Callable[[Request, "Daemon"], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One route: what ``/openapi.json`` says about it, and its handler."""

    method: str
    path: str
    summary: str
    handler: Handler
    body: Any = None
    returns: Any = None
    status: int = 200
    stream: bool = False
    tag: str = "api"


ENDPOINTS: list[Endpoint] = []


def _endpoint(
    method: str,
    path: str,
    summary: str,
    *,
    body: Any = None,
    returns: Any = None,
    status: int = 200,
    stream: bool = False,
    tag: str = "api",
) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ENDPOINTS.append(
            Endpoint(method, path, summary, handler, body, returns, status, stream, tag)
        )
        return handler

    return register


# ---- health, agents, tasks, workflows ------------------------------------------------------


@_endpoint("GET", "/health", "Liveness (no token needed)", returns=Health, tag="daemon")
async def health(request: Request, daemon: Daemon) -> Response:
    """``{"status": "ok"}`` (``draining`` while the daemon stops)."""
    from reactor.daemon._daemon import version  # noqa: PLC0415

    status = "draining" if daemon.draining else "ok"
    return json_response(Health(status=status, version=version(), draining=daemon.draining))


@_endpoint(
    "POST", "/api/orchestration/agents", "Create an agent", body=AgentCreate, returns=Agent,
    status=201, tag="agents",
)  # fmt: skip
async def create_agent(request: Request, daemon: Daemon) -> Response:
    """Store a new agent."""
    agent = await daemon.agents.create(await decode(request, AgentCreate))
    return json_response(agent, 201)


@_endpoint("GET", "/api/orchestration/agents", "List agents", returns=list[Agent], tag="agents")
async def list_agents(request: Request, daemon: Daemon) -> Response:
    """Every agent."""
    return json_response(daemon.agents.list())


@_endpoint("GET", "/api/orchestration/agents/{id}", "Get an agent", returns=Agent, tag="agents")
async def get_agent(request: Request, daemon: Daemon) -> Response:
    """One agent."""
    return json_response(daemon.agents.get(request.path_params["id"]))


@_endpoint(
    "PUT", "/api/orchestration/agents/{id}", "Update an agent", body=AgentUpdate, returns=Agent,
    tag="agents",
)  # fmt: skip
async def update_agent(request: Request, daemon: Daemon) -> Response:
    """Replace the fields given."""
    body = await decode(request, AgentUpdate)
    return json_response(await daemon.agents.update(request.path_params["id"], body))


@_endpoint(
    "DELETE", "/api/orchestration/agents/{id}", "Delete an agent", returns=Agent, tag="agents"
)
async def delete_agent(request: Request, daemon: Daemon) -> Response:
    """Remove an agent; returns what it was."""
    return json_response(await daemon.agents.delete(request.path_params["id"]))


@_endpoint(
    "POST", "/api/orchestration/tasks", "Run tasks (generate, chat, embed, custom)",
    body=TasksRequest, returns=TasksResponse, tag="tasks",
)  # fmt: skip
async def run_tasks(request: Request, daemon: Daemon) -> Response:
    """Route and run each task; one failing does not stop the others."""
    body = await decode(request, TasksRequest)
    agent = _agent(daemon, body.agent_id)
    return json_response(
        await daemon.runner.run_tasks(body.tasks, agent, sequential=body.sequential)
    )


def _agent(daemon: Daemon, agent_id: str | None) -> Agent | None:
    if not agent_id:
        return None
    try:
        return daemon.agents.get(agent_id)
    except ApiError:
        raise ApiError("not_found", f"no agent {agent_id!r}", field="agent_id") from None


@_endpoint(
    "POST", "/api/orchestration/workflows", "Run a workflow of name:type:prompt steps",
    body=WorkflowRequest, returns=WorkflowResponse, tag="tasks",
)  # fmt: skip
async def run_workflow(request: Request, daemon: Daemon) -> Response:
    """Start the workflow's reactor; with ``wait`` (default), answer when it ended."""
    body = await decode(request, WorkflowRequest)
    steps = parse_steps(body.steps)
    known = daemon.runner.known_types()
    for i, each in enumerate(steps):
        if each.type not in known:
            msg = f"step {each.name!r}: unknown task type {each.type!r}; known: {', '.join(known)}"
            raise ApiError("bad_request", msg, field=f"steps[{i}].type")
    _agent(daemon, body.agent_id)
    reactor = workflow_reactor(steps, body.agent_id)
    handle = await daemon.engine.start_async(reactor, {})
    daemon.handles[handle.run_id] = handle
    name = reactor.__plan__.reactor
    if not body.wait:
        return json_response(
            WorkflowResponse(run_id=handle.run_id, reactor=name, status="running"), 202
        )
    with contextlib.suppress(RunError):
        await handle.result_async()
    view = await _view(daemon, handle.run_id)
    results: list[WorkflowStepResult] = []
    for each in steps:
        step = next((s for s in view.steps if s.name == each.name), None)
        value = step.value if step is not None and isinstance(step.value, dict) else {}
        error = step.error.message if step is not None and step.error is not None else None
        done = step is not None and step.status == "done"
        results.append(
            WorkflowStepResult(
                name=each.name,
                type=each.type,
                input=str(value.get("input", "")),
                output=value.get("output"),
                model_used=str(value.get("model_used", "")),
                success=done,
                error=error if not done else None,
            )
        )
    errors = "; ".join(e.message for e in view.errors) or None
    return json_response(
        WorkflowResponse(
            run_id=handle.run_id,
            reactor=name,
            status=view.status,
            success=view.status == "completed",
            steps=results,
            error=errors,
        )
    )


# ---- reactors and runs ---------------------------------------------------------------------


def reactor_info(reactor: Any) -> ReactorInfo:
    """What ``GET /api/reactors`` says about a reactor."""
    from dsl import locate  # noqa: PLC0415

    plan = reactor.__plan__
    inputs = [
        {
            "name": name,
            "type": getattr(spec.type, "__name__", str(spec.type)),
            "required": spec.required,
            "description": spec.description,
        }
        for name, spec in plan.inputs.items()
    ]
    try:
        where = locate(reactor)
    except ValueError:
        where = ""
    return ReactorInfo(
        name=plan.reactor,
        locator=where,
        description=plan.description,
        inputs=inputs,
        steps=list(plan.steps),
        mermaid=reactor.to_mermaid(),
    )


@_endpoint(
    "GET", "/api/reactors", "Reactors this daemon serves", returns=list[ReactorInfo], tag="runs"
)
async def list_reactors(request: Request, daemon: Daemon) -> Response:
    """Every served reactor with its inputs, steps and graph."""
    return json_response([reactor_info(r) for _, r in sorted(daemon.reactors.items())])


@_endpoint("GET", "/api/reactors/{name}", "One served reactor", returns=ReactorInfo, tag="runs")
async def get_reactor(request: Request, daemon: Daemon) -> Response:
    """A served reactor."""
    return json_response(reactor_info(daemon.reactor(request.path_params["name"])))


async def start_run(
    daemon: Daemon, body: StartRun, carrier: dict[str, str] | None = None
) -> RunCreated:
    """Start a run of a served reactor (inputs checked first).

    ``carrier``: the caller's W3C trace context (an HTTP request's ``traceparent`` and
    ``tracestate``), so that the run joins the caller's trace.
    """
    reactor = daemon.reactor(body.reactor)
    if body.run_id is not None and (
        body.run_id in daemon.handles
        or await daemon.engine.journal.read_async(f"{STREAM_PREFIX}{body.run_id}", limit=1)
    ):
        msg = f"run {body.run_id} exists already (resume it instead)"
        raise ApiError("conflict", msg, field="run_id")
    import otel  # noqa: PLC0415

    context = dict(body.context)
    try:
        # The run's trace hangs under this span, whose trace id the run keeps in its
        # (journaled) context: the page links it to Jaeger.
        name = reactor.__plan__.reactor
        with otel.tracer().start_as_current_span(
            f"invoke_workflow {name}",
            context=otel.extract(carrier),
            attributes={
                otel.GEN_AI_OPERATION_NAME: "invoke_workflow",
                otel.GEN_AI_WORKFLOW_NAME: name,
            },
        ) as span:
            trace_id = span.get_span_context().trace_id
            if trace_id:
                context.setdefault("trace_id", f"{trace_id:032x}")
            handle = await daemon.engine.start_async(
                reactor,
                body.inputs,
                run_id=body.run_id,
                timeout=body.timeout,
                on_timeout=body.on_timeout,
                max_iterations=body.max_iterations,
                halt_timeout=body.halt_timeout,
                idle_timeout=body.idle_timeout,
                context=context or None,
            )
    except InputError as exc:
        raise ApiError("bad_request", str(exc), field=f"inputs.{exc.input}") from None
    except RunExistsError as exc:
        raise ApiError("conflict", str(exc), field="run_id") from None
    except (ValueError, TypeError) as exc:
        raise ApiError("bad_request", str(exc)) from None
    daemon.handles[handle.run_id] = handle
    return RunCreated(
        run_id=handle.run_id,
        reactor=handle.reactor,
        events=f"/api/runs/{handle.run_id}/events",
    )


@_endpoint(
    "POST", "/api/runs", "Start a run", body=StartRun, returns=RunCreated, status=201, tag="runs"
)
async def create_run(request: Request, daemon: Daemon) -> Response:
    """Start a run; follow it at ``events``."""
    headers = request.headers
    carrier = {key: headers[key] for key in ("traceparent", "tracestate") if key in headers}
    created = await start_run(daemon, await decode(request, StartRun), carrier)
    return json_response(created, 201)


@_endpoint("GET", "/api/runs", "Runs, newest first", returns=list[Any], tag="runs")
async def list_runs(request: Request, daemon: Daemon) -> Response:
    """``?limit=50&all=true`` (composed runs too)."""
    limit = _int_param(request, "limit", 50)
    every = request.query_params.get("all", "") in ("1", "true", "yes")
    rows = await asyncio.to_thread(daemon.engine.runs, limit=limit, include_children=every)
    return json_response(rows)


_INT_PARAM_MAX = 1_000_000


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError("bad_request", f"{name}={raw!r} is not a whole number", field=name) from None
    if value < 1:
        raise ApiError("bad_request", f"{name} must be at least 1", field=name)
    if value > _INT_PARAM_MAX:
        raise ApiError("bad_request", f"{name} must be at most {_INT_PARAM_MAX}", field=name)
    return value


async def _view(daemon: Daemon, run_id: str) -> Any:
    return (await _view_and_trace(daemon, run_id))[0]


async def _view_and_trace(daemon: Daemon, run_id: str) -> tuple[Any, str]:
    """The run folded from its journal, and its trace id (from its context; "" if none)."""
    events = await asyncio.to_thread(read_history, daemon.engine.journal, run_id)
    if not events:
        raise ApiError("not_found", f"no run {run_id!r}", field="run_id")
    view = fold(events)
    view.status = run_status(view.last_event, view.owner)
    context = getattr(events[0], "context", None) or {}
    return view, str(context.get("trace_id", ""))


@_endpoint("GET", "/api/runs/{run_id}", "One run: inputs, outcome, steps", returns=Any, tag="runs")
async def get_run(request: Request, daemon: Daemon) -> Response:
    """The run, folded from its journal (as ``reactor runs show --json``)."""
    view, trace_id = await _view_and_trace(daemon, request.path_params["run_id"])
    data = msgspec.to_builtins(view, enc_hook=str)
    for step, built in zip(view.steps, data["steps"], strict=True):
        built["duration"] = step.duration
    data["trace_id"] = trace_id
    jaeger = daemon.jaeger_url
    data["trace_url"] = f"{jaeger.rstrip('/')}/trace/{trace_id}" if jaeger and trace_id else None
    return json_response(data)


@_endpoint(
    "POST",
    "/api/runs/{run_id}/cancel",
    "Cancel a running run",
    returns=RunCreated,
    status=202,
    tag="runs",
)
async def cancel_run(request: Request, daemon: Daemon) -> Response:
    """Cancel: running attempts stop, completed steps are undone."""
    run_id = request.path_params["run_id"]
    handle = daemon.handles.get(run_id)
    if handle is None or handle.done():
        view = await _view(daemon, run_id)
        msg = f"run {run_id} is not running in this daemon (it is {view.status})"
        raise ApiError("conflict", msg, field="run_id")
    reason = request.query_params.get("reason") or "cancelled over the API"
    handle.cancel(reason)
    return json_response(
        RunCreated(run_id=run_id, reactor=handle.reactor, status="cancelling"), 202
    )


async def resume_run(
    daemon: Daemon, run_id: str, *, force: bool = False, body: ResumeRun | None = None
) -> RunCreated:
    """Resume a halted or interrupted run (``body``: run options given anew)."""
    given = {} if body is None else msgspec.structs.asdict(body)
    options = {k: v for k, v in given.items() if v is not None}
    try:
        handle = await asyncio.to_thread(
            functools.partial(daemon.engine.resume, run_id, force=force, **options)
        )
    except PlanChangedError as exc:
        raise ApiError("conflict", str(exc), field="force") from None
    except ValueError as exc:  # a run option out of range (the body's types are checked)
        raise ApiError("bad_request", str(exc)) from None
    except ResumeError as exc:
        code = "not_found" if "no run" in str(exc) else "conflict"
        raise ApiError(code, str(exc), field="run_id") from None
    daemon.handles[run_id] = handle
    return RunCreated(
        run_id=run_id,
        reactor=handle.reactor,
        events=f"/api/runs/{run_id}/events",
        warnings=list(handle.warnings),
    )


@_endpoint(
    "POST",
    "/api/runs/{run_id}/resume",
    "Resume a halted or interrupted run",
    body=ResumeRun,
    returns=RunCreated,
    status=202,
    tag="runs",
)
async def resume(request: Request, daemon: Daemon) -> Response:
    """``?force=true`` resumes although its steps changed; the body may give run options."""
    force = request.query_params.get("force", "") in ("1", "true", "yes")
    body = await decode(request, ResumeRun)
    created = await resume_run(daemon, request.path_params["run_id"], force=force, body=body)
    return json_response(created, 202)


@_endpoint(
    "GET",
    "/api/runs/{run_id}/tool-calls",
    "Tool calls awaiting approval",
    returns=list[Any],
    tag="runs",
)
async def pending(request: Request, daemon: Daemon) -> Response:
    """The run's pending tool calls, with the step that made each."""
    run_id = request.path_params["run_id"]
    calls = await asyncio.to_thread(daemon.engine.pending_tool_calls, run_id)
    return json_response([{"step": step, **msgspec.to_builtins(call)} for step, call in calls])


async def _decide(request: Request, daemon: Daemon, decision: str) -> Response:
    from actors.tools import ApprovalError  # noqa: PLC0415

    run_id, call_id = request.path_params["run_id"], request.path_params["call_id"]
    body = await decode(request, Decide)
    engine = daemon.engine
    try:
        if decision == "approve":
            approval = await asyncio.to_thread(
                engine.approve_tool_call, run_id, call_id, by=body.by, arguments=body.arguments
            )
        else:
            approval = await asyncio.to_thread(
                engine.reject_tool_call, run_id, call_id, by=body.by, message=body.message
            )
    except ApprovalError as exc:
        raise ApiError("not_found", str(exc), field="call_id") from None
    resumed: RunCreated | None = None
    resume_error: str | None = None
    if body.resume:
        try:
            resumed = await resume_run(daemon, run_id)
        except ApiError as exc:  # decided all the same: say why the run did not go on
            resume_error = exc.message
    return json_response(
        {
            "approval": msgspec.to_builtins(approval),
            "resumed": resumed,
            "resume_error": resume_error,
        }
    )


@_endpoint(
    "POST",
    "/api/runs/{run_id}/tool-calls/{call_id}/approve",
    "Approve a pending tool call",
    body=Decide,
    returns=Any,
    tag="runs",
)
async def approve(request: Request, daemon: Daemon) -> Response:
    """Approve (``arguments``: run those instead); resumes the run unless ``resume`` is false."""
    return await _decide(request, daemon, "approve")


@_endpoint(
    "POST",
    "/api/runs/{run_id}/tool-calls/{call_id}/reject",
    "Reject a pending tool call",
    body=Decide,
    returns=Any,
    tag="runs",
)
async def reject(request: Request, daemon: Daemon) -> Response:
    """Reject (the model is told ``message``); resumes the run unless ``resume`` is false."""
    return await _decide(request, daemon, "reject")


# ---- server-sent events ------------------------------------------------------------------------


KEEPALIVE_S = 15.0
"""An event stream quiet this long sends a ``:`` comment (proxies drop idle connections)."""


def sse_frame(event_id: int, name: str, data: bytes) -> bytes:
    """One SSE event (``data`` is one line of JSON)."""
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (event_id, name.encode(), data)


def _last_event_id(request: Request) -> int:
    raw = request.headers.get("last-event-id") or request.query_params.get("after") or "0"
    try:
        return max(0, int(raw))
    except ValueError:
        raise ApiError(
            "bad_request", f"Last-Event-ID {raw!r} is not a number", field="Last-Event-ID"
        ) from None


def _sse(body: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@_endpoint(
    "GET",
    "/api/runs/{run_id}/events",
    "A run's journal as SSE (id: its seq)",
    stream=True,
    tag="runs",
)
async def run_events(request: Request, daemon: Daemon) -> Response:
    """Each journal event as ``id: seq``, ``event: type``; ``Last-Event-ID`` resumes after it.

    The stream ends after the run's last event (completed, failed, cancelled, halted);
    resuming after the last event of a run that ended for good is a 204. A ``:``
    comment goes out when nothing was sent for :data:`KEEPALIVE_S` seconds.
    """
    run_id = request.path_params["run_id"]
    after = _last_event_id(request)
    if run_id not in daemon.handles:  # one just started here may not be journaled yet
        await _view(daemon, run_id)  # 404 for an unknown run
    journal, hub = daemon.engine.journal, daemon.hub
    stream = f"{STREAM_PREFIX}{run_id}"
    ends = {*TERMINAL_EVENTS, "RunHalted"}

    if after > 0:
        # A client that saw the run's last event (an EventSource reconnects when a stream
        # ends) is told there is nothing more: 204 stops it reconnecting.
        last = await journal.read_async(stream, after_seq=after - 1, limit=2)
        if len(last) == 1 and last[0].seq == after and last[0].event_type in TERMINAL_EVENTS:
            return Response(status_code=204)

    async def body() -> AsyncIterator[bytes]:
        seq = after
        yield b"retry: 1000\n\n"
        quiet_since = time.monotonic()
        while not hub.closed:
            for entry in await journal.read_async(stream, after_seq=seq):
                seq = entry.seq
                quiet_since = time.monotonic()
                yield sse_frame(entry.seq, entry.event_type, bytes(entry.data))
                if entry.event_type in ends:
                    return
            await hub.wait_run(run_id, 0.5)
            if time.monotonic() - quiet_since >= KEEPALIVE_S:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"

    return _sse(body())


@_endpoint(
    "GET",
    "/api/events",
    "The bus as SSE: runs, steps, breakers, model loads, resources",
    stream=True,
    tag="daemon",
)
async def bus_events(request: Request, daemon: Daemon) -> Response:
    """Every bus event (``event:`` its type); ``Last-Event-ID`` replays the ones kept since.

    ``?types=a,b`` keeps only those types. A ``:`` comment goes out when nothing was
    sent for :data:`KEEPALIVE_S` seconds, however many events the filter dropped.
    """
    after = _last_event_id(request)
    hub = daemon.hub
    if after == 0 or after > hub.last_id:
        # No id, or one this process never gave (numbered by a daemon since restarted):
        # from now on, rather than waiting for the numbers to catch up.
        after = hub.last_id
    wanted = set(filter(None, request.query_params.get("types", "").split(",")))

    async def body() -> AsyncIterator[bytes]:
        seen = after
        yield b"retry: 1000\n\n"
        sent_at = time.monotonic()  # the last frame out: events the filter drops do not count
        while not hub.closed:
            for event_id, name, data in list(hub.since(seen)):
                seen = event_id
                if not wanted or name in wanted:
                    sent_at = time.monotonic()
                    yield sse_frame(event_id, name, data)
            await hub.wait(max(KEEPALIVE_S - (time.monotonic() - sent_at), 0.0))
            if time.monotonic() - sent_at >= KEEPALIVE_S:
                sent_at = time.monotonic()
                yield b": keep-alive\n\n"

    return _sse(body())


# ---- hosts, models, resources, spend, audit ---------------------------------------------------


@_endpoint(
    "GET",
    "/api/hosts",
    "Model hosts: health, in flight, per-model stats",
    returns=list[Any],
    tag="fleet",
)
async def hosts(request: Request, daemon: Daemon) -> Response:
    """Each host's inventory (as found at start) and its live statistics."""
    from actors.llm import mask_url  # noqa: PLC0415

    fleet = daemon.fleet
    rows: list[dict[str, Any]] = []
    for name, ref in fleet.hosts.items() if fleet is not None else ():
        inventory = fleet.inventories.get(name) if fleet is not None else None
        row: dict[str, Any] = {
            "name": name,
            "url": mask_url(inventory.url) if inventory is not None else "",
            "server": inventory.server if inventory is not None else "",
            "reachable": inventory.reachable if inventory is not None else None,
        }
        try:
            stats = await ref.ask_async(HostStatsQuery(), timeout=2.0)
            row["stats"] = msgspec.to_builtins(stats)
        except AskError as exc:
            row["error"] = str(exc)
        rows.append(row)
    return json_response(rows)


@_endpoint("GET", "/api/models", "The model catalog", returns=list[Any], tag="fleet")
async def models(request: Request, daemon: Daemon) -> Response:
    """Every model on every host: loaded, context, price, breaker, tier."""
    return json_response([entry.to_dict() for entry in daemon.engine.catalog.entries()])


@_endpoint("GET", "/api/resources", "GPUs and loaded models", returns=Any, tag="fleet")
async def resources(request: Request, daemon: Daemon) -> Response:
    """The resource monitor's latest snapshot."""
    monitor = daemon.lookup("resources")
    if monitor is None:
        raise ApiError("unavailable", "no resource monitor runs")
    try:
        snapshot = await monitor.ask_async(ResourceQuery(), timeout=5.0)
    except AskError as exc:
        raise ApiError("unavailable", f"resource monitor: {exc}") from None
    return json_response(snapshot)


@_endpoint("GET", "/api/spend", "Spend per model and budgets", returns=Any, tag="fleet")
async def spend(request: Request, daemon: Daemon) -> Response:
    """``?since_hours=24``: totals per model and, with budgets, each budget's state."""
    raw = request.query_params.get("since_hours", "24")
    try:
        hours = float(raw)
    except ValueError:
        hours = math.nan
    if not math.isfinite(hours):
        raise ApiError("bad_request", f"since_hours={raw!r} is not a number", field="since_hours")
    since = time.time() - hours * 3600
    rows = await daemon.engine.journal.query_async(
        "SELECT model, count(*), sum(cost_usd), sum(input_tokens), sum(output_tokens) "
        "FROM spend WHERE at >= ? GROUP BY model ORDER BY sum(cost_usd) DESC",
        since,
    )
    per_model = [
        {
            "model": m,
            "calls": n,
            "cost_usd": c or 0.0,
            "input_tokens": i or 0,
            "output_tokens": o or 0,
        }
        for m, n, c, i, o in rows
    ]
    budgets: Any = None
    if daemon.engine.budget is not None:
        try:
            budgets = await daemon.engine.budget.ask_async(SpendQuery(since=since), timeout=5.0)
        except AskError as exc:
            budgets = {"error": str(exc)}
    total = sum(float(r["cost_usd"]) for r in per_model)
    return json_response(
        {"since": since, "total_usd": total, "models": per_model, "budgets": budgets}
    )


@_endpoint(
    "GET", "/api/tools/audit", "Tool audit records, newest first", returns=list[Any], tag="fleet"
)
async def audit(request: Request, daemon: Daemon) -> Response:
    """``?run=&tool=&limit=100`` (the tool runner's records so far are committed first)."""
    from actors.tools import FlushAudit, query_audit  # noqa: PLC0415

    runner = daemon.lookup("tools")
    if runner is not None:
        with contextlib.suppress(AskError):
            await runner.ask_async(FlushAudit(), timeout=5.0)
    path = (await daemon.engine.journal.stats_async()).path
    records = await asyncio.to_thread(
        query_audit,
        path,
        run_id=request.query_params.get("run"),
        tool=request.query_params.get("tool"),
        limit=_int_param(request, "limit", 100),
    )
    return json_response(records)


@_endpoint(
    "GET",
    "/api/actors",
    "The supervision tree: parents, restarts, mailbox depth",
    returns=Any,
    tag="daemon",
)
async def actors_tree(request: Request, daemon: Daemon) -> Response:
    """``?max_children=100``: every actor under the root, nested as supervised.

    Each node: ``name``, ``parent``, ``supervisor``, ``running``, ``restarts``,
    ``mailbox`` (messages waiting), ``on_loop``, ``restart``, ``children``, ``more``
    (children not listed) and ``error`` (a supervisor that did not answer).
    """
    system = daemon.system
    if system is None:
        raise ApiError("unavailable", "the actor system is not running")
    limit = _int_param(request, "max_children", 100)
    tree = await system.tree_async(max_children=limit, timeout=2.0)
    return json_response(tree.to_dict())


# ---- the app -----------------------------------------------------------------------------------


@functools.cache
def openapi(daemon_url: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document for :data:`ENDPOINTS` (built once per URL)."""
    from reactor.daemon._daemon import version  # noqa: PLC0415

    types: list[Any] = [ErrorBody]
    types.extend(
        kind
        for each in ENDPOINTS
        for kind in (each.body, each.returns)
        if kind is not None and kind is not Any
    )
    schemas, components = msgspec.json.schema_components(
        types, ref_template="#/components/schemas/{name}"
    )
    schema_of = dict(zip(map(id, types), schemas, strict=True))
    error = {"application/json": {"schema": schema_of[id(ErrorBody)]}}
    paths: dict[str, dict[str, Any]] = {}
    for each in ENDPOINTS:
        op: dict[str, Any] = {
            "summary": each.summary,
            "description": (each.handler.__doc__ or "").strip(),
            "tags": [each.tag],
            "operationId": each.handler.__name__,
        }
        params = re.findall(r"\{(\w+)\}", each.path)
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if each.body is not None:
            op["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": schema_of[id(each.body)]}},
            }
        if each.stream:
            ok: dict[str, Any] = {
                "description": "Server-sent events",
                "content": {"text/event-stream": {}},
            }
        elif each.returns is not None and each.returns is not Any:
            ok = {
                "description": "OK",
                "content": {"application/json": {"schema": schema_of[id(each.returns)]}},
            }
        else:
            ok = {"description": "OK", "content": {"application/json": {"schema": {}}}}
        op["responses"] = {
            str(each.status): ok,
            "default": {"description": "Error", "content": error},
        }
        if each.path != "/health":
            op["security"] = [{"bearer": []}]
        paths.setdefault(each.path, {})[each.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "Reactor Swarm daemon", "version": version()},
        "servers": [{"url": daemon_url}] if daemon_url else [],
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _endpoint_function(daemon: Daemon, each: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    handler = each.handler

    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request, daemon)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:  # noqa: BLE001 - unforeseen: still the one error shape
            _log.exception("request failed", method=request.method, path=request.url.path)
            message = f"{request.method} {request.url.path}: {type(exc).__name__}: {exc}"
            return error_response(ApiError("internal", message))

    return endpoint


def _route(daemon: Daemon, each: Endpoint) -> Route:
    endpoint = _endpoint_function(daemon, each)
    return Route(each.path, endpoint, methods=[each.method], name=each.handler.__name__)


def build_app(daemon: Daemon) -> ASGIApp:
    """The daemon's ASGI app: routes, the MCP endpoint, the page, behind the guard."""
    from reactor.daemon._mcp import build_mcp  # noqa: PLC0415
    from reactor.daemon._web import web_routes  # noqa: PLC0415

    routes: list[BaseRoute] = [_route(daemon, each) for each in ENDPOINTS]

    async def openapi_json(request: Request) -> Response:
        return json_response(openapi(daemon.url))

    routes.append(Route("/openapi.json", openapi_json, methods=["GET"]))
    routes.extend(web_routes(daemon))
    mcp = build_mcp(daemon)
    mcp_app = mcp.streamable_http_app(
        streamable_http_path="/mcp",
        transport_security=_mcp_security(daemon),
        host=daemon.host,
    )
    routes.extend(mcp_app.routes)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with mcp.session_manager.run():
            yield

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        code = {404: "not_found", 405: "method_not_allowed"}.get(
            status, "bad_request" if status < 500 else "internal"
        )
        message = exc.detail if isinstance(exc, HTTPException) else "internal error"
        headers = None
        if status == 405:  # RFC 9110: say which methods the path has (over all its routes)
            headers = {"Allow": ", ".join(_allowed(routes, request.url.path))}
        error = ApiError(code, f"{request.method} {request.url.path}: {message}")
        return error_response(error, headers)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={404: not_found, 405: not_found},
    )
    # Routes without path parameters are found by one dict lookup, past Starlette's
    # middleware and route scan (what they would do for them: nothing).
    exact = {
        (each.method, each.path): _endpoint_function(daemon, each)
        for each in ENDPOINTS
        if "{" not in each.path and not each.stream
    }
    return Guard(app, daemon, exact)


def _allowed(routes: list[BaseRoute], path: str) -> list[str]:
    """The methods of every route whose path matches ``path``."""
    methods: set[str] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def _mcp_security(daemon: Daemon) -> Any:
    """The SDK's DNS-rebinding check (``Host``, then ``Origin``) for ``/mcp``.

    Bound to loopback, only local ``Host`` names are served (421 otherwise). Bound to
    another address, the daemon is meant to be reached from other machines under names
    it cannot know: ``Host`` is not checked (the token is still required, and
    :class:`Guard` has checked the ``Origin``).
    """
    from mcp.server.transport_security import TransportSecuritySettings  # noqa: PLC0415

    from reactor.daemon._daemon import is_loopback  # noqa: PLC0415

    if not is_loopback(daemon.host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1:*", "localhost:*", "[::1]:*", f"{daemon.host}:*"]
    origins = [
        "http://127.0.0.1:*",
        "http://localhost:*",
        "http://[::1]:*",
        *daemon.allowed_origins,
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True, allowed_hosts=hosts, allowed_origins=origins
    )


class Guard:
    """Origin check, then the token (see the module docstring); pure ASGI, so cheap."""

    def __init__(
        self,
        app: ASGIApp,
        daemon: Daemon,
        exact: dict[tuple[str, str], Callable[[Request], Awaitable[Response]]] | None = None,
    ) -> None:
        self.app = app
        self.daemon = daemon
        self._token = daemon.token.encode()
        self._exact = exact or {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin")
        if origin is not None and not self._origin_ok(origin.decode("latin-1"), scope):
            error = ApiError(
                "forbidden", f"origin {origin.decode('latin-1')!r} is not allowed", field="Origin"
            )
            await error_response(error)(scope, receive, send)
            return
        path: str = scope["path"]
        if path == "/health" or self._authorised(headers, scope):
            endpoint = self._exact.get((scope["method"], path))
            if endpoint is None:
                await self.app(scope, receive, send)
                return
            scope["app"] = self.app
            response = await endpoint(Request(scope, receive, send))
            await response(scope, receive, send)
            return
        given = b"authorization" in headers or b"cookie" in headers
        message = (
            "wrong token"
            if given
            else "this needs the daemon's token: Authorization: Bearer <token>"
        )
        error = ApiError("unauthorized", message, field="Authorization")
        await error_response(error, {"WWW-Authenticate": 'Bearer realm="reactor"'})(
            scope, receive, send
        )

    def _authorised(self, headers: dict[bytes, bytes], scope: Scope) -> bool:
        auth = headers.get(b"authorization", b"")
        if auth[:7].lower() == b"bearer " and secrets.compare_digest(auth[7:].strip(), self._token):
            return True
        cookie = headers.get(b"cookie")
        if cookie is not None:
            jar: SimpleCookie = SimpleCookie()
            with contextlib.suppress(Exception):
                jar.load(cookie.decode("latin-1"))
            morsel = jar.get(COOKIE)
            if morsel is not None and secrets.compare_digest(morsel.value.encode(), self._token):
                return True
        if scope["path"] == "/" and scope.get("query_string"):
            query = parse_qs(scope["query_string"].decode("latin-1"))
            given = (query.get("token") or [""])[0].encode()
            return secrets.compare_digest(given, self._token)
        return False

    def _origin_ok(self, origin: str, scope: Scope) -> bool:
        if origin in self.daemon.allowed_origins:
            return True
        port = self.daemon.port
        own = {f"http://127.0.0.1:{port}", f"http://localhost:{port}", f"http://[::1]:{port}"}
        own.add(f"http://{self.daemon.host}:{port}")
        return origin in own


from reactor.daemon import _sessions  # noqa: E402, F401 - registers its routes
