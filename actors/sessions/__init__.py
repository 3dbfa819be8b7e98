"""Collaborative reasoning sessions: agents reason together, then let several models decide.

The six operations users call as tools are methods of :class:`Sessions` (each with an
``_async`` twin): :meth:`~Sessions.initiate_reasoning_session`,
:meth:`~Sessions.add_reasoning_step` (analysis, hypothesis, conclusion, critique,
synthesis), :meth:`~Sessions.execute_orchestrated_decision` (one of the nine strategies of
:mod:`actors.orchestration.strategies`, chosen from the reasoning, the task type and
free GPU memory; runs in
the background and answers with a handle at once), :meth:`~Sessions.get_reasoning_session`,
:meth:`~Sessions.search_reasoning_sessions` (FTS5) and
:meth:`~Sessions.get_orchestration_capabilities`.

Every operation names its agent; a session has an owner, participants, or is open;
reads, steps and executions are checked, and every operation is audited. Analytics
(:meth:`Sessions.stats`): interactions per agent, who builds on whose steps, and
performance by agent.

Sessions are virtual actors (:class:`SessionActor`, loop actors): activated from their
journal stream on first use, passivated when idle, addressed by id either way, through
the :class:`SessionDirectory`. Decisions are chosen and run by an :class:`Orchestrator`
(default: :class:`CatalogOrchestrator`, over the model catalog and the hosts).
"""

from actors.sessions._api import DIRECTORY, SUPERVISOR, Sessions
from actors.sessions._directory import OPERATIONS, SessionDirectory
from actors.sessions._messages import (
    AddReasoningStep,
    AddSessionParticipants,
    CollaborationEdge,
    DecisionFinished,
    DecisionStarted,
    Execution,
    ExecutionStatus,
    GetReasoningSession,
    InitiateReasoningSession,
    MemberAnswer,
    ModelCapability,
    OrchestratedDecision,
    OrchestrationCapabilities,
    OrchestrationCapabilitiesQuery,
    PassivateIdleSessions,
    ReasoningSession,
    ReasoningSessionOpened,
    ReasoningStep,
    ReasoningStepRecorded,
    SearchHit,
    SearchReasoningSessions,
    SessionAuditQuery,
    SessionAuditRecord,
    SessionAuditRecords,
    SessionEvent,
    SessionParticipantsChanged,
    SessionsActivity,
    SessionsActivityQuery,
    SessionSearchResults,
    SessionsStats,
    SessionsStatsQuery,
    SessionStatus,
    StepType,
    Strategy,
    TaskType,
    WaitForDecision,
)
from actors.sessions._orchestrator import (
    CatalogOrchestrator,
    DecisionContext,
    DecisionFailed,
    DecisionOutcome,
    Orchestrator,
    Progress,
)
from actors.sessions._policy import (
    Candidate,
    NoModelError,
    StrategyChoice,
    can_manage,
    can_use,
    decision_prompt,
    disagreement,
    usable_models,
)
from actors.sessions._session import STREAM_PREFIX, SessionActor

__all__ = [
    "DIRECTORY",
    "OPERATIONS",
    "STREAM_PREFIX",
    "SUPERVISOR",
    "AddReasoningStep",
    "AddSessionParticipants",
    "Candidate",
    "CatalogOrchestrator",
    "CollaborationEdge",
    "DecisionContext",
    "DecisionFailed",
    "DecisionFinished",
    "DecisionOutcome",
    "DecisionStarted",
    "Execution",
    "ExecutionStatus",
    "GetReasoningSession",
    "InitiateReasoningSession",
    "MemberAnswer",
    "ModelCapability",
    "NoModelError",
    "OrchestratedDecision",
    "OrchestrationCapabilities",
    "OrchestrationCapabilitiesQuery",
    "Orchestrator",
    "PassivateIdleSessions",
    "Progress",
    "ReasoningSession",
    "ReasoningSessionOpened",
    "ReasoningStep",
    "ReasoningStepRecorded",
    "SearchHit",
    "SearchReasoningSessions",
    "SessionActor",
    "SessionAuditQuery",
    "SessionAuditRecord",
    "SessionAuditRecords",
    "SessionDirectory",
    "SessionEvent",
    "SessionParticipantsChanged",
    "SessionSearchResults",
    "SessionStatus",
    "Sessions",
    "SessionsActivity",
    "SessionsActivityQuery",
    "SessionsStats",
    "SessionsStatsQuery",
    "StepType",
    "Strategy",
    "StrategyChoice",
    "TaskType",
    "WaitForDecision",
    "can_manage",
    "can_use",
    "decision_prompt",
    "disagreement",
    "usable_models",
]
