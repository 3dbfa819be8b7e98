"""The JSON bodies of the daemon's API, as msgspec Structs.

The same Structs decode requests (unknown fields are errors, with the path of the one at
fault), encode responses, and give the OpenAPI document its schemas. Agents, tasks and
workflows follow echollama's orchestration API (``/api/orchestration/...``): an agent
has ``models``, ``tools`` and a ``config`` with ``max_concurrent_tasks``,
``default_model``, ``timeout_seconds`` and ``routing_preferences`` by task type; a task
result carries ``metrics.duration`` in nanoseconds, as Ollama and echollama do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

__all__ = [
    "Agent",
    "AgentConfig",
    "AgentCreate",
    "AgentUpdate",
    "Decide",
    "Health",
    "ReactorInfo",
    "RunCreated",
    "StartRun",
    "Task",
    "TaskMetrics",
    "TaskResult",
    "TasksRequest",
    "TasksResponse",
    "WorkflowRequest",
    "WorkflowResponse",
    "WorkflowStep",
    "WorkflowStepResult",
]


class _Body(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A request body: unknown fields are errors."""


class AgentConfig(_Body, frozen=True, kw_only=True):
    """How an agent's tasks run.

    Attributes:
        max_concurrent_tasks: Tasks of one request that run at once.
        default_model: The model for a task its type's preference does not name.
        timeout_seconds: Seconds one task may take.
        routing_preferences: Task type (``generate``, ``chat``, ``embed``, ``code``,
            ...) -> model; a task goes to its type's model first.
    """

    max_concurrent_tasks: int = 4
    default_model: str = ""
    timeout_seconds: float = 120.0
    routing_preferences: dict[str, str] = msgspec.field(default_factory=dict)


class AgentCreate(_Body, frozen=True, kw_only=True):
    """``POST /api/orchestration/agents``."""

    name: str
    description: str = ""
    models: list[str] = msgspec.field(default_factory=list)
    type: str = "general"
    tools: list[str] = msgspec.field(default_factory=list)
    config: AgentConfig = AgentConfig()


class AgentUpdate(_Body, frozen=True, kw_only=True):
    """``PUT /api/orchestration/agents/{id}``: the fields given replace the agent's."""

    name: str | None = None
    description: str | None = None
    models: list[str] | None = None
    type: str | None = None
    tools: list[str] | None = None
    config: AgentConfig | None = None


class Agent(msgspec.Struct, frozen=True, kw_only=True):
    """An agent, as stored and returned."""

    id: str
    name: str
    description: str = ""
    models: list[str] = msgspec.field(default_factory=list)
    type: str = "general"
    tools: list[str] = msgspec.field(default_factory=list)
    config: AgentConfig = AgentConfig()
    created_at: float = 0.0
    updated_at: float = 0.0


class Task(_Body, frozen=True, kw_only=True):
    """One task: ``type`` is generate, chat, embed, or a registered custom type."""

    type: str
    input: str
    model_name: str | None = None
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)


class TasksRequest(_Body, frozen=True, kw_only=True):
    """``POST /api/orchestration/tasks``: run tasks, in parallel unless ``sequential``."""

    tasks: list[Task]
    agent_id: str | None = None
    sequential: bool = False


class TaskMetrics(msgspec.Struct, frozen=True, kw_only=True):
    """What one task took: ``duration`` in nanoseconds (and ``duration_ms``), tokens."""

    duration: int = 0
    duration_ms: float = 0.0
    tokens_used: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0


class TaskResult(msgspec.Struct, frozen=True, kw_only=True):
    """One task's outcome: completed with ``output``, or failed with ``error``."""

    task_id: str
    type: str
    status: Literal["completed", "failed"]
    output: Any = None
    model_used: str = ""
    routing: str = ""
    metrics: TaskMetrics = TaskMetrics()
    error: str | None = None
    error_kind: str | None = None


class TasksResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to :class:`TasksRequest`; ``status`` is ``partial`` when some failed."""

    id: str
    status: Literal["completed", "partial", "failed"]
    agent_id: str | None = None
    sequential: bool = False
    results: list[TaskResult] = msgspec.field(default_factory=list)
    error: str | None = None


class WorkflowStep(_Body, frozen=True, kw_only=True):
    """One workflow step; ``input`` may say ``{{name}}`` or ``{{stepN}}`` (from 1)."""

    name: str
    type: str
    input: str
    model_name: str | None = None


class WorkflowRequest(_Body, frozen=True, kw_only=True):
    """``POST /api/orchestration/workflows``: steps as objects or ``name:type:prompt``."""

    steps: list[WorkflowStep | str]
    agent_id: str | None = None
    wait: bool = True


class WorkflowStepResult(msgspec.Struct, frozen=True, kw_only=True):
    """A workflow step's outcome."""

    name: str
    type: str
    input: str = ""
    output: Any = None
    model_used: str = ""
    success: bool = False
    error: str | None = None


class WorkflowResponse(msgspec.Struct, frozen=True, kw_only=True):
    """The answer to :class:`WorkflowRequest`: the run, and each step when it waited."""

    run_id: str
    reactor: str
    status: str
    success: bool = False
    steps: list[WorkflowStepResult] = msgspec.field(default_factory=list)
    error: str | None = None


class ReactorInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A reactor the daemon can run: its inputs, steps and Mermaid graph."""

    name: str
    locator: str
    description: str = ""
    inputs: list[dict[str, Any]] = msgspec.field(default_factory=list)
    steps: list[str] = msgspec.field(default_factory=list)
    mermaid: str = ""


class StartRun(_Body, frozen=True, kw_only=True):
    """``POST /api/runs``: start a run of a registered reactor."""

    reactor: str
    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    run_id: str | None = None
    timeout: float | None = None
    context: dict[str, Any] = msgspec.field(default_factory=dict)
    on_timeout: Literal["fail", "halt"] | None = None
    max_iterations: Annotated[int, msgspec.Meta(ge=0)] | None = None
    halt_timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    idle_timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None


class ResumeRun(_Body, frozen=True, kw_only=True):
    """``POST /api/runs/{run_id}/resume``: run options given anew (none: as journaled)."""

    timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    on_timeout: Literal["fail", "halt"] | None = None
    max_iterations: Annotated[int, msgspec.Meta(ge=0)] | None = None
    halt_timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    idle_timeout: Annotated[float, msgspec.Meta(gt=0)] | None = None
    max_concurrency: Annotated[int, msgspec.Meta(ge=1)] | None = None


class RunCreated(msgspec.Struct, frozen=True, kw_only=True):
    """A run was started or resumed: where to follow it."""

    run_id: str
    reactor: str
    status: str = "running"
    events: str = ""
    warnings: list[str] = msgspec.field(default_factory=list)


class Decide(_Body, frozen=True, kw_only=True):
    """Approve or reject a pending tool call (``arguments``: run those instead)."""

    by: str = ""
    message: str = ""
    arguments: dict[str, Any] | None = None
    resume: bool = True


class Health(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /health``: unauthenticated liveness."""

    status: str
    version: str
    draining: bool = False
