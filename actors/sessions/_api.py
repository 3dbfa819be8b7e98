"""``Sessions``: the Python API over the directory, in sync and async forms.

Each operation is a method named as the tool users call (``initiate_reasoning_session``,
...) and an ``_async`` twin for asyncio code. Arguments are checked here first (a step
or task type that does not exist is a ``ValueError`` naming the allowed ones); access
and everything else is checked by the directory and the session, whose refusals raise
:class:`~actors.AskError` with a typed failure (``permission_denied``, ``not_found``,
``bad_request``, ...).
"""

from __future__ import annotations

import enum
import os
from collections.abc import Sequence
from typing import Any, TypeVar

from actors import ActorNotFound, ChildSpec, DuplicateActorName, Ref, SupervisorSpec, System
from actors.llm import Catalog
from actors.lowlevel import check_may_block
from actors.sessions._directory import SessionDirectory
from actors.sessions._messages import (
    AddReasoningStep,
    AddSessionParticipants,
    Execution,
    GetReasoningSession,
    InitiateReasoningSession,
    OrchestratedDecision,
    OrchestrationCapabilities,
    OrchestrationCapabilitiesQuery,
    PassivateIdleSessions,
    ReasoningSession,
    ReasoningStep,
    SearchHit,
    SearchReasoningSessions,
    SessionAuditQuery,
    SessionAuditRecord,
    SessionsActivity,
    SessionsActivityQuery,
    SessionsStats,
    SessionsStatsQuery,
    SessionStatus,
    StepType,
    TaskType,
    WaitForDecision,
)
from actors.sessions._orchestrator import CatalogOrchestrator, Orchestrator
from actors.store import Store

__all__ = ["DIRECTORY", "SUPERVISOR", "Sessions"]

DIRECTORY = "sessions"
"""The directory actor's name."""
SUPERVISOR = "reasoning-sessions"
"""The supervisor the session actors are children of."""

E = TypeVar("E", bound=enum.Enum)


def _enum(kind: type[E], value: object, operation: str, field: str) -> E:
    try:
        return kind(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in kind)
        msg = f"{operation}: {field} {value!r} is not one of {allowed}"
        raise ValueError(msg) from None


def _tags(tags: Sequence[str] | str, operation: str) -> tuple[str, ...]:
    if isinstance(tags, str):
        msg = f"{operation}: tags must be a list of strings, not the string {tags!r}"
        raise TypeError(msg)
    return tuple(str(t) for t in tags)


class Sessions:
    """Collaborative reasoning sessions: the six operations, access control, search, analytics.

    Sessions are virtual actors: addressed by id, activated from the Store on first
    use, passivated after ``idle_s`` idle seconds. One ``Sessions`` per system starts the
    directory (named ``sessions``); a second one finds it.

    Args:
        system: A started actor system.
        store: The Store actor (default: the system's ``store``; else one is started on
            ``db_path``).
        db_path: The SQLite file, when a Store is started here (``REACTOR_DB`` or the
            user data directory by default).
        catalog: Which models exist (the default orchestrator's source); ignored when
            ``orchestrator`` is given.
        orchestrator: Chooses and runs decisions (default:
            :class:`~actors.sessions.CatalogOrchestrator` over ``catalog``).
        idle_s: Seconds without a request before a session is passivated.
        timeout: Deadline of each request (an execution's ``wait_s`` is added to it).
    """

    def __init__(
        self,
        system: System,
        *,
        store: Ref[Any] | None = None,
        db_path: str | os.PathLike[str] | None = None,
        catalog: Catalog | None = None,
        orchestrator: Orchestrator | None = None,
        idle_s: float = 300.0,
        timeout: float = 30.0,
    ) -> None:
        if idle_s <= 0:
            msg = f"Sessions(idle_s={idle_s!r}): must be positive"
            raise ValueError(msg)
        self.system = system
        self.timeout = timeout
        self.orchestrator: Orchestrator = orchestrator or CatalogOrchestrator(
            system, catalog if catalog is not None else Catalog()
        )
        self._store = store
        self._db_path = db_path
        self._idle_s = idle_s
        self.directory: Ref[Any]
        """The directory actor every request goes to (set when open)."""
        self._opened = False

    # ---- set-up ---------------------------------------------------------------------------

    def _specs(self, store: Ref[Any], supervisor: Ref[Any]) -> ChildSpec:
        return ChildSpec(
            name=DIRECTORY,
            actor=SessionDirectory,
            kwargs={
                "store": store,
                "orchestrator": self.orchestrator,
                "supervisor": supervisor,
                "idle_s": self._idle_s,
            },
        )

    def open(self) -> Sessions:
        """Start (or find) the store, the sessions' supervisor and the directory."""
        if self._opened:
            return self
        check_may_block("Sessions.open()", "`await sessions.open_async()`")
        store = self._store
        if store is None:
            try:
                store = self.system.lookup("store")
            except ActorNotFound:
                Store.check(self._db_path)
                store = self.system.spawn(Store.spec(self._db_path))
        supervisor = self._find_or_spawn(SUPERVISOR, lambda: self.system.spawn(_SUPERVISOR_SPEC))
        self.directory = self._find_or_spawn(
            DIRECTORY, lambda: self.system.spawn(self._specs(store, supervisor))
        )
        self._opened = True
        return self

    async def open_async(self) -> Sessions:
        """:meth:`open` for asyncio code."""
        if self._opened:
            return self
        store = self._store
        if store is None:
            try:
                store = self.system.lookup("store")
            except ActorNotFound:
                import asyncio  # noqa: PLC0415

                await asyncio.to_thread(Store.check, self._db_path)
                store = await self.system.spawn_async(Store.spec(self._db_path))
        try:
            supervisor = self.system.lookup(SUPERVISOR)
        except ActorNotFound:
            supervisor = await self.system.spawn_async(_SUPERVISOR_SPEC)
        try:
            self.directory = self.system.lookup(DIRECTORY)
        except ActorNotFound:
            self.directory = await self.system.spawn_async(self._specs(store, supervisor))
        self._opened = True
        return self

    def _find_or_spawn(self, name: str, spawn: Any) -> Ref[Any]:
        try:
            return self.system.lookup(name)
        except ActorNotFound:
            try:
                ref: Ref[Any] = spawn()
            except DuplicateActorName:
                return self.system.lookup(name)
            return ref

    def __enter__(self) -> Sessions:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        return None

    async def __aenter__(self) -> Sessions:
        return await self.open_async()

    async def __aexit__(self, *_exc: object) -> None:
        return None

    def _ask(self, message: Any, extra: float = 0.0) -> Any:
        self.open()
        return self.directory.ask(message, timeout=self.timeout + extra)

    async def _ask_async(self, message: Any, extra: float = 0.0) -> Any:
        await self.open_async()
        return await self.directory.ask_async(message, timeout=self.timeout + extra)

    # ---- the operations: messages ---------------------------------------------------------

    @staticmethod
    def _initiate(  # noqa: PLR0917 - the operation's arguments, passed on
        task_description: str,
        agent_name: str,
        tags: Sequence[str],
        participants: Sequence[str],
        is_open: bool,
        session_id: str,
    ) -> InitiateReasoningSession:
        operation = "initiate_reasoning_session"
        return InitiateReasoningSession(
            task_description=task_description,
            agent_name=agent_name,
            tags=_tags(tags, operation),
            participants=_tags(participants, operation),
            open=is_open,
            session_id=session_id,
        )

    @staticmethod
    def _step(
        session_id: str,
        agent_name: str,
        reasoning_text: str,
        step_type: StepType | str,
        builds_on: int | None,
    ) -> AddReasoningStep:
        return AddReasoningStep(
            session_id=session_id,
            agent_name=agent_name,
            reasoning_text=reasoning_text,
            step_type=_enum(StepType, step_type, "add_reasoning_step", "step_type"),
            builds_on=builds_on,
        )

    @staticmethod
    def _decision(
        session_id: str, agent_name: str, prompt: str, task_type: TaskType | str, wait_s: float
    ) -> OrchestratedDecision:
        operation = "execute_orchestrated_decision"
        if wait_s < 0:
            msg = f"{operation}: wait_s must not be negative, not {wait_s!r}"
            raise ValueError(msg)
        return OrchestratedDecision(
            session_id=session_id,
            agent_name=agent_name,
            prompt=prompt,
            task_type=_enum(TaskType, task_type, operation, "task_type"),
            wait_s=wait_s,
        )

    @staticmethod
    def _search(
        agent_name: str,
        query: str,
        tags: Sequence[str],
        status: SessionStatus | str | None,
        limit: int,
    ) -> SearchReasoningSessions:
        operation = "search_reasoning_sessions"
        return SearchReasoningSessions(
            agent_name=agent_name,
            query=query,
            tags=_tags(tags, operation),
            status=None if status is None else _enum(SessionStatus, status, operation, "status"),
            limit=limit,
        )

    # ---- sync -----------------------------------------------------------------------------

    def initiate_reasoning_session(
        self,
        task_description: str,
        agent_name: str,
        tags: Sequence[str] = (),
        *,
        participants: Sequence[str] = (),
        open: bool = False,
        session_id: str = "",
    ) -> str:
        """Start a session owned by ``agent_name``; returns its id."""
        message = self._initiate(task_description, agent_name, tags, participants, open, session_id)
        session: ReasoningSession = self._ask(message)
        return session.session_id

    def add_reasoning_step(
        self,
        session_id: str,
        agent_name: str,
        reasoning_text: str,
        step_type: StepType | str = StepType.ANALYSIS,
        *,
        builds_on: int | None = None,
    ) -> ReasoningStep:
        """Add a step (analysis, hypothesis, conclusion, critique, synthesis).

        ``builds_on`` names the step it builds on (default: the latest; ``0``: none):
        the collaboration analytics count who builds on whose steps from it.
        """
        step: ReasoningStep = self._ask(
            self._step(session_id, agent_name, reasoning_text, step_type, builds_on)
        )
        return step

    def execute_orchestrated_decision(
        self,
        session_id: str,
        agent_name: str,
        prompt: str,
        task_type: TaskType | str = TaskType.GENERAL,
        *,
        wait_s: float = 0.0,
    ) -> Execution:
        """Choose a strategy, run it in the background, store its result.

        Returns the execution at once (status ``running``: poll
        :meth:`get_reasoning_session` or :meth:`wait_for_decision`), or its result if it
        finished within ``wait_s`` seconds.
        """
        execution: Execution = self._ask(
            self._decision(session_id, agent_name, prompt, task_type, wait_s), wait_s
        )
        return execution

    def wait_for_decision(
        self, session_id: str, agent_name: str, execution_id: str, *, timeout: float = 60.0
    ) -> Execution:
        """The execution once it finished, or as it is after ``timeout`` seconds."""
        message = WaitForDecision(
            session_id=session_id, agent_name=agent_name, execution_id=execution_id, wait_s=timeout
        )
        execution: Execution = self._ask(message, timeout)
        return execution

    def get_reasoning_session(self, session_id: str, agent_name: str) -> ReasoningSession:
        """The session: its steps and executions (running ones with their progress)."""
        session: ReasoningSession = self._ask(
            GetReasoningSession(session_id=session_id, agent_name=agent_name)
        )
        return session

    def search_reasoning_sessions(
        self,
        agent_name: str,
        query: str = "",
        tags: Sequence[str] = (),
        status: SessionStatus | str | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """Full-text search among the sessions ``agent_name`` may read, best first."""
        results = self._ask(self._search(agent_name, query, tags, status, limit))
        return list(results.hits)

    def get_orchestration_capabilities(self, agent_name: str) -> OrchestrationCapabilities:
        """The models, strategies and GPU memory decisions can use."""
        answer: OrchestrationCapabilities = self._ask(
            OrchestrationCapabilitiesQuery(agent_name=agent_name)
        )
        return answer

    def add_participants(
        self,
        session_id: str,
        agent_name: str,
        participants: Sequence[str] = (),
        *,
        open: bool | None = None,
    ) -> ReasoningSession:
        """The owner lets agents in, or opens (``open=True``) or closes the session."""
        message = AddSessionParticipants(
            session_id=session_id,
            agent_name=agent_name,
            participants=_tags(participants, "add_participants"),
            open=open,
        )
        session: ReasoningSession = self._ask(message)
        return session

    def stats(self) -> SessionsStats:
        """Interactions per agent, collaboration patterns, performance by agent."""
        answer: SessionsStats = self._ask(SessionsStatsQuery())
        return answer

    def audit(
        self, *, agent: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[SessionAuditRecord]:
        """The audit trail, newest first."""
        answer = self._ask(SessionAuditQuery(agent=agent, session_id=session_id, limit=limit))
        return list(answer.records)

    def activity(self) -> SessionsActivity:
        """How many sessions are active, activated and passivated."""
        answer: SessionsActivity = self._ask(SessionsActivityQuery())
        return answer

    def passivate_idle(self) -> SessionsActivity:
        """Passivate every idle active session now."""
        answer: SessionsActivity = self._ask(PassivateIdleSessions())
        return answer

    # ---- async ----------------------------------------------------------------------------

    async def initiate_reasoning_session_async(
        self,
        task_description: str,
        agent_name: str,
        tags: Sequence[str] = (),
        *,
        participants: Sequence[str] = (),
        open: bool = False,
        session_id: str = "",
    ) -> str:
        """:meth:`initiate_reasoning_session` for asyncio code."""
        message = self._initiate(task_description, agent_name, tags, participants, open, session_id)
        session: ReasoningSession = await self._ask_async(message)
        return session.session_id

    async def add_reasoning_step_async(
        self,
        session_id: str,
        agent_name: str,
        reasoning_text: str,
        step_type: StepType | str = StepType.ANALYSIS,
        *,
        builds_on: int | None = None,
    ) -> ReasoningStep:
        """:meth:`add_reasoning_step` for asyncio code."""
        step: ReasoningStep = await self._ask_async(
            self._step(session_id, agent_name, reasoning_text, step_type, builds_on)
        )
        return step

    async def execute_orchestrated_decision_async(
        self,
        session_id: str,
        agent_name: str,
        prompt: str,
        task_type: TaskType | str = TaskType.GENERAL,
        *,
        wait_s: float = 0.0,
    ) -> Execution:
        """:meth:`execute_orchestrated_decision` for asyncio code."""
        execution: Execution = await self._ask_async(
            self._decision(session_id, agent_name, prompt, task_type, wait_s), wait_s
        )
        return execution

    async def wait_for_decision_async(
        self, session_id: str, agent_name: str, execution_id: str, *, timeout: float = 60.0
    ) -> Execution:
        """:meth:`wait_for_decision` for asyncio code."""
        message = WaitForDecision(
            session_id=session_id, agent_name=agent_name, execution_id=execution_id, wait_s=timeout
        )
        execution: Execution = await self._ask_async(message, timeout)
        return execution

    async def get_reasoning_session_async(
        self, session_id: str, agent_name: str
    ) -> ReasoningSession:
        """:meth:`get_reasoning_session` for asyncio code."""
        session: ReasoningSession = await self._ask_async(
            GetReasoningSession(session_id=session_id, agent_name=agent_name)
        )
        return session

    async def search_reasoning_sessions_async(
        self,
        agent_name: str,
        query: str = "",
        tags: Sequence[str] = (),
        status: SessionStatus | str | None = None,
        limit: int = 10,
    ) -> list[SearchHit]:
        """:meth:`search_reasoning_sessions` for asyncio code."""
        results = await self._ask_async(self._search(agent_name, query, tags, status, limit))
        return list(results.hits)

    async def get_orchestration_capabilities_async(
        self, agent_name: str
    ) -> OrchestrationCapabilities:
        """:meth:`get_orchestration_capabilities` for asyncio code."""
        answer: OrchestrationCapabilities = await self._ask_async(
            OrchestrationCapabilitiesQuery(agent_name=agent_name)
        )
        return answer

    async def add_participants_async(
        self,
        session_id: str,
        agent_name: str,
        participants: Sequence[str] = (),
        *,
        open: bool | None = None,
    ) -> ReasoningSession:
        """:meth:`add_participants` for asyncio code."""
        message = AddSessionParticipants(
            session_id=session_id,
            agent_name=agent_name,
            participants=_tags(participants, "add_participants"),
            open=open,
        )
        session: ReasoningSession = await self._ask_async(message)
        return session

    async def stats_async(self) -> SessionsStats:
        """:meth:`stats` for asyncio code."""
        answer: SessionsStats = await self._ask_async(SessionsStatsQuery())
        return answer

    async def audit_async(
        self, *, agent: str | None = None, session_id: str | None = None, limit: int = 100
    ) -> list[SessionAuditRecord]:
        """:meth:`audit` for asyncio code."""
        answer = await self._ask_async(
            SessionAuditQuery(agent=agent, session_id=session_id, limit=limit)
        )
        return list(answer.records)

    async def activity_async(self) -> SessionsActivity:
        """:meth:`activity` for asyncio code."""
        answer: SessionsActivity = await self._ask_async(SessionsActivityQuery())
        return answer

    async def passivate_idle_async(self) -> SessionsActivity:
        """:meth:`passivate_idle` for asyncio code."""
        answer: SessionsActivity = await self._ask_async(PassivateIdleSessions())
        return answer


_SUPERVISOR_SPEC = SupervisorSpec(name=SUPERVISOR, max_restarts=1_000_000, within=1.0, on_loop=True)
"""The supervisor every session actor is a child of (each is temporary: never restarted)."""
