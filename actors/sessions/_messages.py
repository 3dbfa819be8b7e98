"""Reasoning sessions' protocol: the six operations, what they answer, what the journal keeps.

Requests and replies are tagged :class:`~actors.Message` s (the same structs serve the
Python API, the journal, and the daemon's REST and MCP tools); the values nested in
them are plain frozen structs. Every request names the agent that makes it
(``agent_name``): access is checked, and the audit trail records, per agent.

A session's journal stream (``reasoning-session:<id>``) holds its events
(:data:`SessionEvent`): it is what a session is activated from.
"""

from __future__ import annotations

import enum
from typing import Any

import msgspec

from actors import Message, Request

__all__ = [
    "AddReasoningStep",
    "AddSessionParticipants",
    "CollaborationEdge",
    "DecisionFinished",
    "DecisionStarted",
    "Execution",
    "ExecutionStatus",
    "GetReasoningSession",
    "InitiateReasoningSession",
    "MemberAnswer",
    "ModelCapability",
    "OrchestratedDecision",
    "OrchestrationCapabilities",
    "OrchestrationCapabilitiesQuery",
    "PassivateIdleSessions",
    "ReasoningSession",
    "ReasoningSessionOpened",
    "ReasoningStep",
    "ReasoningStepRecorded",
    "SearchHit",
    "SearchReasoningSessions",
    "SessionAuditQuery",
    "SessionAuditRecord",
    "SessionAuditRecords",
    "SessionEvent",
    "SessionParticipantsChanged",
    "SessionSearchResults",
    "SessionStatus",
    "SessionsActivity",
    "SessionsActivityQuery",
    "SessionsStats",
    "SessionsStatsQuery",
    "StepType",
    "Strategy",
    "TaskType",
    "WaitForDecision",
]


class StepType(enum.StrEnum):
    """What a reasoning step is."""

    ANALYSIS = "analysis"
    HYPOTHESIS = "hypothesis"
    CONCLUSION = "conclusion"
    CRITIQUE = "critique"
    SYNTHESIS = "synthesis"


class TaskType(enum.StrEnum):
    """What an orchestrated decision is for (it steers the strategy and the models)."""

    CODE = "code"
    REASONING = "reasoning"
    ANALYSIS = "analysis"
    GENERAL = "general"
    CREATIVE = "creative"


class Strategy(enum.StrEnum):
    """How several models work on one decision (one value per strategies' ``StrategyKind``).

    * ``concurrent``: every member at once; the first good answer wins;
    * ``chain``: one drafts, each next one refines the previous answer;
    * ``specialized``: the one model best suited to the task answers;
    * ``hybrid``: the members answer, then the best model synthesises;
    * ``parallel``: every member's answer, labelled;
    * ``consensus``: the members vote (answers extracted), with a confidence;
    * ``hierarchical``: workers answer, a coordinator decides;
    * ``semantic``: answers clustered by embeddings; the largest cluster wins;
    * ``combinatorial``: every pair of answers judged; the most wins is the decision.
    """

    CONCURRENT = "concurrent"
    CHAIN = "chain"
    SPECIALIZED = "specialized"
    HYBRID = "hybrid"
    PARALLEL = "parallel"
    CONSENSUS = "consensus"
    HIERARCHICAL = "hierarchical"
    SEMANTIC = "semantic"
    COMBINATORIAL = "combinatorial"


class SessionStatus(enum.StrEnum):
    """Where a session stands: taking steps, executing a decision, or decided."""

    ACTIVE = "active"
    EXECUTING = "executing"
    DECIDED = "decided"


class ExecutionStatus(enum.StrEnum):
    """Where one orchestrated decision stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


class _Value(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Values nested inside messages."""


class ReasoningStep(_Value, frozen=True, kw_only=True):
    """One step of a session's reasoning.

    Attributes:
        seq: Its number in the session (from 1).
        agent: Who added it.
        step_type: What it is.
        text: The reasoning.
        at: When it was added (``time.time()`` seconds).
        builds_on: The step it builds on (``0``: none; by default the latest step).
        builds_on_agent: That step's author ("" for none).
    """

    seq: int
    agent: str
    step_type: StepType
    text: str
    at: float
    builds_on: int = 0
    builds_on_agent: str = ""


class MemberAnswer(_Value, frozen=True, kw_only=True):
    """What one model answered in an execution (or why it did not).

    Attributes:
        model: ``host/model``.
        role: Its part: ``member``, ``draft``, ``refine``, ``synthesis``, ``specialist``.
        text: Its answer ("" when it failed).
        error: Why it failed ("" when it answered).
        latency_s: How long it took.
        cost_usd: What it cost, when priced.
        input_tokens: Prompt tokens.
        output_tokens: Answer tokens.
        not_applied: Request fields its model refused, so it answered without them
            (``temperature`` on a reasoning model, say).
    """

    model: str
    role: str
    text: str = ""
    error: str = ""
    latency_s: float = 0.0
    cost_usd: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    not_applied: tuple[str, ...] = ()


class Execution(_Value, frozen=True, kw_only=True):
    """One orchestrated decision: its strategy, progress and, once finished, its result.

    Attributes:
        execution_id: Its id within the session.
        agent: Who asked for it.
        prompt: What was asked.
        task_type: The task type given.
        strategy: The strategy chosen.
        reason: Why that strategy and those models.
        models: The models taking part (``host/model``).
        status: running, completed or failed.
        progress: What has happened so far (e.g. ``"2/3 members answered"``).
        started_at: When it started.
        finished_at: When it finished (``None`` while running).
        result: The decision's text (when completed).
        answers: Each model's part.
        error: Why it failed (when failed).
        cost_usd: What its model calls cost, where priced.
        confidence: How much the members agreed, 0 to 1 (concurrent and hybrid).
    """

    execution_id: str
    agent: str
    prompt: str
    task_type: TaskType
    strategy: Strategy
    reason: str
    models: tuple[str, ...]
    status: ExecutionStatus
    started_at: float
    progress: str = ""
    finished_at: float | None = None
    result: str = ""
    answers: tuple[MemberAnswer, ...] = ()
    error: str = ""
    cost_usd: float = 0.0
    confidence: float | None = None

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to finish (``None`` while running)."""
        return None if self.finished_at is None else self.finished_at - self.started_at


class ReasoningSession(Message, frozen=True, kw_only=True):
    """A session as ``get_reasoning_session`` shows it.

    Attributes:
        session_id: Its id.
        task_description: The task it reasons about.
        owner: The agent that initiated it.
        participants: Agents the owner let in (besides the owner).
        open: Whether every agent may read, add steps and execute.
        tags: Its tags.
        status: active, executing or decided.
        created_at: When it was initiated.
        updated_at: When it last changed.
        steps: Its reasoning, in order.
        executions: Its orchestrated decisions, oldest first (running ones with progress).
    """

    session_id: str
    task_description: str
    owner: str
    participants: tuple[str, ...] = ()
    open: bool = False
    tags: tuple[str, ...] = ()
    status: SessionStatus = SessionStatus.ACTIVE
    created_at: float = 0.0
    updated_at: float = 0.0
    steps: tuple[ReasoningStep, ...] = ()
    executions: tuple[Execution, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (what the CLI's ``--json`` prints)."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


# ---- the operations -----------------------------------------------------------------------


class InitiateReasoningSession(Request[ReasoningSession], frozen=True, kw_only=True):
    """Start a session; ``agent_name`` owns it.

    Attributes:
        task_description: What the session reasons about (searchable).
        agent_name: The initiating agent (the owner).
        tags: Labels to search by.
        participants: Other agents allowed in from the start.
        open: Let every agent in.
        session_id: Its id ("" for a new random one).
    """

    task_description: str
    agent_name: str
    tags: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    open: bool = False
    session_id: str = ""


class AddReasoningStep(Request[ReasoningStep], frozen=True, kw_only=True):
    """Add a step to a session (the owner, a participant, or anyone if it is open).

    Attributes:
        session_id: The session.
        agent_name: Who adds it.
        reasoning_text: The reasoning.
        step_type: analysis, hypothesis, conclusion, critique or synthesis.
        builds_on: The step it builds on (``None``: the latest one; ``0``: none).
    """

    session_id: str
    agent_name: str
    reasoning_text: str
    step_type: StepType = StepType.ANALYSIS
    builds_on: int | None = None


class OrchestratedDecision(Request[Execution], frozen=True, kw_only=True):
    """Choose a strategy from the reasoning, the task and free memory; run it; store the result.

    Answered with the execution as soon as it started (status ``running``: a handle
    to poll with ``get_reasoning_session``), or with its result if it finished within
    ``wait_s`` seconds.

    Attributes:
        session_id: The session.
        agent_name: Who asks (checked like adding a step).
        prompt: The question to decide.
        task_type: code, reasoning, analysis, general or creative.
        wait_s: How long to wait for the result before answering with the handle.
    """

    session_id: str
    agent_name: str
    prompt: str
    task_type: TaskType = TaskType.GENERAL
    wait_s: float = 0.0


class WaitForDecision(Request[Execution], frozen=True, kw_only=True):
    """Wait (up to ``wait_s``) for an execution to finish; answered with it as it is then."""

    session_id: str
    agent_name: str
    execution_id: str
    wait_s: float = 30.0


class GetReasoningSession(Request[ReasoningSession], frozen=True, kw_only=True):
    """A session with its steps and executions (running ones show their progress)."""

    session_id: str
    agent_name: str


class AddSessionParticipants(Request[ReasoningSession], frozen=True, kw_only=True):
    """The owner lets agents in (``participants``) or opens/closes the session (``open``)."""

    session_id: str
    agent_name: str
    participants: tuple[str, ...] = ()
    open: bool | None = None


class SearchHit(_Value, frozen=True, kw_only=True):
    """One session a search found.

    Attributes:
        session_id: The session.
        task_description: Its task.
        owner: Its owner.
        tags: Its tags.
        status: Its status.
        updated_at: When it last changed.
        steps: How many steps it has.
        snippet: Where the query matched, the match in ``[...]`` ("" without a query).
        rank: The FTS5 rank (lower is better; 0 without a query).
    """

    session_id: str
    task_description: str
    owner: str
    tags: tuple[str, ...] = ()
    status: SessionStatus = SessionStatus.ACTIVE
    updated_at: float = 0.0
    steps: int = 0
    snippet: str = ""
    rank: float = 0.0


class SessionSearchResults(Message, frozen=True, kw_only=True):
    """The answer to :class:`SearchReasoningSessions`: best match first."""

    hits: tuple[SearchHit, ...] = ()


class SearchReasoningSessions(Request[SessionSearchResults], frozen=True, kw_only=True):
    """Full-text search (FTS5) over task descriptions, steps and results.

    Only among the sessions ``agent_name`` may read.

    Attributes:
        agent_name: Who searches (only sessions they own, take part in, or open ones).
        query: Words to find (FTS5 syntax: ``cache AND eviction``, ``"exact phrase"``,
            ``evict*``); "" lists the newest.
        tags: Only sessions with every one of these tags.
        status: Only sessions with this status.
        limit: At most this many.
    """

    agent_name: str
    query: str = ""
    tags: tuple[str, ...] = ()
    status: SessionStatus | None = None
    limit: int = 10


class ModelCapability(_Value, frozen=True, kw_only=True):
    """A model an orchestrated decision may use.

    Attributes:
        model: ``host/model``.
        loaded: Whether it is resident (``None``: the server cannot say).
        fits_memory: Whether it can run without evicting anything.
        context_length: Its window, when known.
        tier: Its declared tier, when declared.
        strengths: Task types it is declared good at.
        healthy: Whether its breaker lets requests through.
    """

    model: str
    loaded: bool | None = None
    fits_memory: bool = True
    context_length: int | None = None
    tier: int | None = None
    strengths: tuple[str, ...] = ()
    healthy: bool = True


class OrchestrationCapabilities(Message, frozen=True, kw_only=True):
    """The answer to :class:`OrchestrationCapabilitiesQuery`: models, strategies and resources.

    Attributes:
        models: The chat models, best first.
        strategies: The strategies the orchestrator runs.
        task_types: The task types it accepts.
        free_bytes: GPU memory free for models (``None``: unknown, e.g. no NVML).
        budget_bytes: GPU memory budget for models (``None``: unknown).
        max_members: The most models one decision uses.
    """

    models: tuple[ModelCapability, ...] = ()
    strategies: tuple[Strategy, ...] = ()
    task_types: tuple[TaskType, ...] = ()
    free_bytes: int | None = None
    budget_bytes: int | None = None
    max_members: int = 0


class OrchestrationCapabilitiesQuery(Request[OrchestrationCapabilities], frozen=True, kw_only=True):
    """``get_orchestration_capabilities(agent_name)``."""

    agent_name: str


class SessionAuditRecord(_Value, frozen=True, kw_only=True):
    """One operation, as the audit trail keeps it.

    Attributes:
        at: When it was answered.
        agent: Who made it.
        operation: Its name (``initiate_reasoning_session``, ``add_reasoning_step``, ...).
        session_id: The session ("" for search and capabilities).
        outcome: ``ok``, or the failure's kind (``permission_denied``, ``not_found``, ...).
        detail: A line on what happened (the step type, the strategy, the denial's reason).
    """

    at: float
    agent: str
    operation: str
    session_id: str = ""
    outcome: str = "ok"
    detail: str = ""


class SessionAuditRecords(Message, frozen=True, kw_only=True):
    """The answer to :class:`SessionAuditQuery`: newest first."""

    records: tuple[SessionAuditRecord, ...] = ()


class SessionAuditQuery(Request[SessionAuditRecords], frozen=True, kw_only=True):
    """Read the audit trail (filters are optional)."""

    agent: str | None = None
    session_id: str | None = None
    limit: int = 100


class CollaborationEdge(_Value, frozen=True, kw_only=True):
    """``agent`` added ``steps`` steps that build on ``builds_on``'s steps."""

    agent: str
    builds_on: str
    steps: int


class SessionsStats(Message, frozen=True, kw_only=True):
    """Analytics over every session (``reactor sessions stats``).

    Attributes:
        sessions: Sessions stored.
        interactions: Per agent, per operation: how many (allowed or not).
        denied: Per agent: operations refused by access control.
        collaboration: Who builds on whose steps, most first.
        performance: Per agent: ``executions``, ``completed``, ``failed``,
            ``success_rate``, ``mean_duration_s``, ``cost_usd``, ``steps``,
            ``sessions_owned``, and ``strategies`` (executions per strategy).
    """

    sessions: int = 0
    interactions: dict[str, dict[str, int]] = msgspec.field(default_factory=dict)
    denied: dict[str, int] = msgspec.field(default_factory=dict)
    collaboration: tuple[CollaborationEdge, ...] = ()
    performance: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class SessionsStatsQuery(Request[SessionsStats], frozen=True, kw_only=True):
    """Ask for :class:`SessionsStats`."""


# ---- the journal: what a session is activated from ----------------------------------------


class ReasoningSessionOpened(Message, frozen=True, kw_only=True):
    """The first event of a session's stream."""

    session_id: str
    task_description: str
    owner: str
    tags: tuple[str, ...] = ()
    participants: tuple[str, ...] = ()
    open: bool = False
    at: float = 0.0


class SessionParticipantsChanged(Message, frozen=True, kw_only=True):
    """The owner let agents in, or opened or closed the session."""

    participants: tuple[str, ...] = ()
    open: bool = False
    at: float = 0.0


class ReasoningStepRecorded(Message, frozen=True, kw_only=True):
    """A step was added."""

    step: ReasoningStep


class DecisionStarted(Message, frozen=True, kw_only=True):
    """An orchestrated decision started (the execution, status running)."""

    execution: Execution


class DecisionFinished(Message, frozen=True, kw_only=True):
    """An orchestrated decision finished (the execution, completed or failed)."""

    execution: Execution


SessionEvent = (
    ReasoningSessionOpened
    | SessionParticipantsChanged
    | ReasoningStepRecorded
    | DecisionStarted
    | DecisionFinished
)
"""Every event of a session's journal stream."""


# ---- activation ----------------------------------------------------------------------------


class SessionsActivity(Message, frozen=True, kw_only=True):
    """How many sessions are active (in memory) now, and have been activated and passivated.

    Attributes:
        active: Sessions in memory now.
        activations: Activations so far (a session passivated and used again counts twice).
        passivations: Passivations so far.
    """

    active: int = 0
    activations: int = 0
    passivations: int = 0


class PassivateIdleSessions(Request[SessionsActivity], frozen=True, kw_only=True):
    """Passivate every active session that is idle now (no write or decision in flight).

    Sessions passivate themselves after ``idle_s`` without a request; this does it at
    once (before a backup, in tests, in benchmarks). Answered once they have stopped.
    """


class SessionsActivityQuery(Request[SessionsActivity], frozen=True, kw_only=True):
    """Ask for :class:`SessionsActivity`."""
