"""The SessionDirectory: addresses sessions by id, activates and passivates them, searches, audits.

One directory per system (a loop actor named ``sessions``). Every request goes through
it, so it is where the rules that hold for all operations live:

* **Agent names.** Every operation names an agent (``agent_name``); an empty or
  over-long one is refused with ``bad_request`` before anything else.
* **Routing.** A request for a session goes to its active :class:`SessionActor`; if
  none is active, one is started (under the ``reasoning-sessions`` supervisor) and
  reads its stream first. Each activation has a name of its own
  (``reasoning-session:<id>#<n>``), so a new one never waits for an old one's name.
* **Passivation.** A session that has been idle says so (with how many requests it has
  handled); the directory stops it only if it routed no request to it since, so no
  request is ever lost in a stopping actor.
* **Search** runs on the Store's read connection: FTS5 over task descriptions, steps
  and results, joined with the summary table for tags, status and access (owner,
  participant, or open), best match first.
* **Audit.** Every operation, allowed or refused, is one row of ``reasoning_audit``:
  when, which agent, which operation, which session, the outcome, and a line of detail.
  The caller is answered once that row is written, so a process that ends as soon as
  it has its answer (a ``reactor sessions`` command) never loses the row.
"""

from __future__ import annotations

import asyncio
import functools
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from actors import ChildSpec, Deferred, Failure, FailureKind, LoopActor, Ref, Restart
from actors.lowlevel import start_child
from actors.sessions._messages import (
    AddReasoningStep,
    AddSessionParticipants,
    CollaborationEdge,
    Execution,
    GetReasoningSession,
    InitiateReasoningSession,
    OrchestratedDecision,
    OrchestrationCapabilitiesQuery,
    PassivateIdleSessions,
    ReasoningSession,
    ReasoningStep,
    SearchHit,
    SearchReasoningSessions,
    SessionAuditQuery,
    SessionAuditRecord,
    SessionAuditRecords,
    SessionsActivity,
    SessionsActivityQuery,
    SessionSearchResults,
    SessionsStats,
    SessionsStatsQuery,
    SessionStatus,
    WaitForDecision,
)
from actors.sessions._orchestrator import Orchestrator
from actors.sessions._session import (
    PASSIVATE,
    ReasoningIdleCheck,
    ReasoningIdleState,
    ReasoningSessionIdle,
    SessionActor,
    SessionOperation,
)
from actors.store import SqlValue, StoreInsert, StoreQuery, StoreRows

__all__ = ["OPERATIONS", "SessionDirectory"]

OPERATIONS: dict[type, str] = {
    InitiateReasoningSession: "initiate_reasoning_session",
    AddReasoningStep: "add_reasoning_step",
    OrchestratedDecision: "execute_orchestrated_decision",
    GetReasoningSession: "get_reasoning_session",
    SearchReasoningSessions: "search_reasoning_sessions",
    OrchestrationCapabilitiesQuery: "get_orchestration_capabilities",
    AddSessionParticipants: "add_participants",
    WaitForDecision: "wait_for_decision",
}
"""Each request's operation name, as the audit trail (and the MCP tools) call it."""

_SESSION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
_MAX_AGENT = 200
_MAX_LIMIT = 1000
_STORE_TIMEOUT = 30.0
_WORD = re.compile(r"\w+")


@dataclass(slots=True)
class _Activation:
    ref: Ref[Any]
    routed: int = 0


class SessionDirectory(LoopActor[Any]):
    """Routes session requests, keeps sessions active while used, searches and audits.

    Args:
        store: The Store actor (its file has the sessions' migration).
        orchestrator: Chooses and runs decisions (given to every session).
        supervisor: The supervisor the sessions are children of.
        idle_s: Seconds without a request before a session is passivated.
    """

    def __init__(
        self,
        *,
        store: Ref[Any],
        orchestrator: Orchestrator,
        supervisor: Ref[Any],
        idle_s: float = 300.0,
    ) -> None:
        super().__init__()
        self._store = store
        self._orchestrator = orchestrator
        self._supervisor = supervisor
        self._idle_s = idle_s
        self._active: dict[str, _Activation] = {}
        self._activations = 0
        self._passivations = 0
        self._audits_sent = 0
        self._audits_done = 0
        self._after_audits: list[tuple[int, Callable[[], object]]] = []

    def receive(self, message: Any) -> object:  # noqa: PLR0911 - one return per message
        match message:
            case (
                InitiateReasoningSession()
                | AddReasoningStep()
                | OrchestratedDecision()
                | WaitForDecision()
                | GetReasoningSession()
                | AddSessionParticipants()
            ):
                self._route(message, self.defer_reply())
                return None
            case SearchReasoningSessions():
                self._search(message, self.defer_reply())
                return None
            case OrchestrationCapabilitiesQuery():
                self._capabilities(message, self.defer_reply())
                return None
            case SessionsStatsQuery():
                reply = self.defer_reply()
                self._when_audited(
                    lambda: self.pipe_to_self(self._stats(), reply.send, name="sessions stats")
                )
                return None
            case SessionAuditQuery():
                reply = self.defer_reply()
                self._when_audited(
                    lambda: self.pipe_to_self(
                        self._audit_records(message), reply.send, name="sessions audit"
                    )
                )
                return None
            case SessionsActivityQuery():
                return self._activity()
            case PassivateIdleSessions():
                self._passivate_idle(self.defer_reply())
                return None
            case ReasoningSessionIdle():
                self._on_idle(message.session_id, message.activation, message.handled)
                return None
            case _:
                self.log.warning("unexpected message", message=type(message).__name__)
                return None

    # ---- checks and the audit trail -------------------------------------------------------

    @staticmethod
    def _check_agent(agent: str, operation: str) -> str | None:
        """Why ``agent`` is not a usable agent name (``None`` when it is)."""
        if not agent.strip():
            return f"{operation}: agent_name is required (every operation names its agent)"
        if len(agent) > _MAX_AGENT:
            return f"{operation}: agent_name is longer than {_MAX_AGENT} characters"
        return None

    def _audit(
        self,
        agent: str,
        operation: str,
        session_id: str,
        answer: object,
        detail: str = "",
        *,
        then: Callable[[], object] | None = None,
    ) -> None:
        """Write the operation's audit record; ``then()`` once it is written (or failed)."""
        if isinstance(answer, Failure):
            outcome, detail = answer.kind.value, answer.message
        else:
            outcome = "ok"
            detail = detail or _detail(answer)
        insert = StoreInsert(
            table="reasoning_audit",
            columns=("at", "agent", "operation", "session_id", "outcome", "detail"),
            rows=((time.time(), agent, operation, session_id, outcome, detail[:500]),),
        )
        self._audits_sent += 1
        self.ask(
            self._store,
            insert,
            lambda written: self._audited(written, then),
            timeout=_STORE_TIMEOUT,
        )

    def _audited(self, answer: object, then: Callable[[], object] | None = None) -> None:
        if isinstance(answer, Failure):
            self.log.error("session audit record not written", error=answer.message)
        if then is not None:
            then()
        self._audits_done += 1  # the Store answers in the order it was asked
        while self._after_audits and self._after_audits[0][0] <= self._audits_done:
            self._after_audits.pop(0)[1]()

    def _when_audited(self, then: Callable[[], object]) -> None:
        """Run ``then`` once every audit record sent so far is written (analytics see them)."""
        if self._audits_done >= self._audits_sent:
            then()
        else:
            self._after_audits.append((self._audits_sent, then))

    def _refuse(
        self, reply: Deferred[Any], agent: str, operation: str, session_id: str, why: str
    ) -> None:
        failure = Failure(
            kind=FailureKind.BAD_REQUEST,
            message=why,
            source=self.name,
            details={"operation": operation},
        )
        self._audit(agent, operation, session_id, failure, then=lambda: reply.send(failure))

    # ---- routing and activation -----------------------------------------------------------

    def _route(self, message: SessionOperation, reply: Deferred[Any]) -> None:
        operation = OPERATIONS[type(message)]
        agent = message.agent_name
        why = self._check_agent(agent, operation)
        session_id = message.session_id
        if why is None and isinstance(message, InitiateReasoningSession):
            if not message.task_description.strip():
                why = f"{operation}: task_description is required"
            elif not session_id:
                session_id = secrets.token_hex(8)
                message = msgspec.structs.replace(message, session_id=session_id)
        if why is None and not _SESSION_ID.fullmatch(session_id):
            why = (
                f"{operation}: session_id {session_id!r} is not a session id "
                "(letters, digits, '.', '_', '-'; at most 100)"
            )
        if (
            why is None
            and isinstance(message, AddReasoningStep)
            and not message.reasoning_text.strip()
        ):
            why = f"{operation}: reasoning_text is required"
        if why is None and isinstance(message, OrchestratedDecision) and not message.prompt.strip():
            why = f"{operation}: prompt is required"
        if why is not None:
            self._refuse(reply, agent, operation, session_id, why)
            return
        activation = self._active.get(session_id)
        if activation is None or not activation.ref.is_alive():
            activation = self._activate(session_id)
        activation.routed += 1

        def answered(answer: Any) -> None:
            self._audit(agent, operation, session_id, answer, then=lambda: reply.send(answer))

        request: Any = message
        self.ask(activation.ref, request, answered)

    def _activate(self, session_id: str) -> _Activation:
        self._activations += 1
        spec = ChildSpec(
            name=f"reasoning-session:{session_id}#{self._activations}",
            actor=SessionActor,
            args=(session_id,),
            kwargs={
                "store": self._store,
                "orchestrator": self._orchestrator,
                "directory": self.self_ref,
                "idle_s": self._idle_s,
            },
            restart=Restart.TEMPORARY,
        )
        activation = _Activation(start_child(self._supervisor, spec))
        self._active[session_id] = activation
        return activation

    def _on_idle(self, session_id: str, activation_name: str, handled: int) -> bool:
        """Stop the activation if nothing was routed to it since it counted ``handled``."""
        activation = self._active.get(session_id)
        if activation is None or activation.ref.name != activation_name:
            return False
        if activation.routed != handled:
            return False  # a request is on its way to it: it stays
        del self._active[session_id]
        self._passivations += 1
        activation.ref.tell(PASSIVATE)
        return True

    def _passivate_idle(self, reply: Deferred[Any]) -> None:
        if not self._active:
            reply.send(self._activity())
            return
        waiting = len(self._active)

        def checked(session_id: str, name: str, answer: ReasoningIdleState | Failure) -> None:
            nonlocal waiting
            if isinstance(answer, ReasoningIdleState) and answer.idle:
                self._on_idle(session_id, name, answer.handled)
            waiting -= 1
            if waiting == 0:
                reply.send(self._activity())

        for session_id, activation in list(self._active.items()):
            self.ask(
                activation.ref,
                ReasoningIdleCheck(),
                functools.partial(checked, session_id, activation.ref.name),
                timeout=_STORE_TIMEOUT,
            )

    def _activity(self) -> SessionsActivity:
        return SessionsActivity(
            active=len(self._active),
            activations=self._activations,
            passivations=self._passivations,
        )

    # ---- capabilities -------------------------------------------------------------------

    def _capabilities(self, message: OrchestrationCapabilitiesQuery, reply: Deferred[Any]) -> None:
        operation = OPERATIONS[OrchestrationCapabilitiesQuery]
        why = self._check_agent(message.agent_name, operation)
        answer: object
        if why is not None:
            answer = Failure(kind=FailureKind.BAD_REQUEST, message=why, source=self.name)
        else:
            try:
                answer = self._orchestrator.capabilities()
            except Exception as exc:  # noqa: BLE001 - a plugged-in orchestrator's failure is an answer
                answer = Failure(
                    kind=FailureKind.INTERNAL,
                    message=f"{operation}: {type(exc).__name__}: {exc}",
                    source=self.name,
                )
        self._audit(message.agent_name, operation, "", answer, then=lambda: reply.send(answer))

    # ---- search ---------------------------------------------------------------------------

    def _search(self, message: SearchReasoningSessions, reply: Deferred[Any]) -> None:
        operation = OPERATIONS[SearchReasoningSessions]
        why = self._check_agent(message.agent_name, operation)
        if why is None and not 1 <= message.limit <= _MAX_LIMIT:
            why = f"{operation}: limit must be between 1 and {_MAX_LIMIT}, not {message.limit}"
        if why is not None:
            self._refuse(reply, message.agent_name, operation, "", why)
            return

        def answered(answer: SessionSearchResults | Failure) -> None:
            detail = ""
            if isinstance(answer, SessionSearchResults):
                detail = f"query {message.query!r}: {len(answer.hits)} hit(s)"
            self._audit(
                message.agent_name, operation, "", answer, detail, then=lambda: reply.send(answer)
            )

        self.pipe_to_self(search(self._store, message), answered, name="sessions search")

    # ---- analytics and the audit trail ----------------------------------------------------

    async def _query(self, sql: str, *params: SqlValue) -> tuple[tuple[SqlValue, ...], ...]:
        rows: StoreRows = await self._store.ask_async(
            StoreQuery(sql=sql, params=params), timeout=_STORE_TIMEOUT
        )
        return rows.rows

    async def _stats(self) -> SessionsStats:
        count, audit, edges, runs, steps, owned = await asyncio.gather(
            self._query("SELECT count(*) FROM reasoning_sessions"),
            self._query(
                "SELECT agent, operation, count(*), sum(outcome = 'permission_denied') "
                "FROM reasoning_audit GROUP BY agent, operation"
            ),
            self._query(
                "SELECT agent, builds_on_agent, count(*) FROM reasoning_steps "
                "WHERE builds_on_agent != '' AND builds_on_agent != agent "
                "GROUP BY agent, builds_on_agent ORDER BY count(*) DESC, agent, builds_on_agent"
            ),
            self._query(
                "SELECT agent, strategy, status, count(*), sum(duration_s), sum(cost_usd) "
                "FROM reasoning_executions GROUP BY agent, strategy, status"
            ),
            self._query("SELECT agent, count(*) FROM reasoning_steps GROUP BY agent"),
            self._query("SELECT owner, count(*) FROM reasoning_sessions GROUP BY owner"),
        )
        interactions: dict[str, dict[str, int]] = {}
        denied: dict[str, int] = {}
        for agent, operation, n, refused in audit:
            interactions.setdefault(str(agent), {})[str(operation)] = int(n or 0)
            if refused:
                denied[str(agent)] = denied.get(str(agent), 0) + int(refused)
        performance: dict[str, dict[str, Any]] = {}

        def record(agent: object) -> dict[str, Any]:
            return performance.setdefault(
                str(agent),
                {
                    "executions": 0,
                    "completed": 0,
                    "failed": 0,
                    "success_rate": None,
                    "mean_duration_s": None,
                    "cost_usd": 0.0,
                    "steps": 0,
                    "sessions_owned": 0,
                    "strategies": {},
                    "_duration": 0.0,
                },
            )

        for agent, strategy, status, n, duration, cost in runs:
            entry = record(agent)
            entry["executions"] += int(n or 0)
            if status == "completed":
                entry["completed"] += int(n or 0)
            elif status == "failed":
                entry["failed"] += int(n or 0)
            entry["_duration"] += float(duration or 0.0)
            entry["cost_usd"] += float(cost or 0.0)
            entry["strategies"][str(strategy)] = entry["strategies"].get(str(strategy), 0) + int(
                n or 0
            )
        for agent, n in steps:
            record(agent)["steps"] = int(n or 0)
        for agent, n in owned:
            record(agent)["sessions_owned"] = int(n or 0)
        for entry in performance.values():
            finished = entry["completed"] + entry["failed"]
            if finished:
                entry["success_rate"] = round(entry["completed"] / finished, 3)
                entry["mean_duration_s"] = round(entry["_duration"] / finished, 3)
            entry["cost_usd"] = round(entry["cost_usd"], 6)
            del entry["_duration"]
        return SessionsStats(
            sessions=int(count[0][0] or 0) if count else 0,
            interactions=interactions,
            denied=denied,
            collaboration=tuple(
                CollaborationEdge(agent=str(a), builds_on=str(b), steps=int(n or 0))
                for a, b, n in edges
            ),
            performance=performance,
        )

    async def _audit_records(self, message: SessionAuditQuery) -> SessionAuditRecords:
        where, params = [], []
        if message.agent is not None:
            where.append("agent = ?")
            params.append(message.agent)
        if message.session_id is not None:
            where.append("session_id = ?")
            params.append(message.session_id)
        clause = f"WHERE {' AND '.join(where)} " if where else ""
        rows = await self._query(
            "SELECT at, agent, operation, session_id, outcome, detail FROM reasoning_audit "  # noqa: S608 - fixed clauses
            f"{clause}ORDER BY id DESC LIMIT ?",
            *params,
            max(1, min(message.limit, 100_000)),
        )
        return SessionAuditRecords(
            records=tuple(
                SessionAuditRecord(
                    at=float(at or 0.0),
                    agent=str(agent),
                    operation=str(operation),
                    session_id=str(session),
                    outcome=str(outcome),
                    detail=str(detail),
                )
                for at, agent, operation, session, outcome, detail in rows
            )
        )


def _detail(answer: object) -> str:
    """A line on what an operation did (the audit trail's ``detail``)."""
    match answer:
        case ReasoningStep():
            return f"step {answer.seq} ({answer.step_type.value})"
        case Execution():
            models = ", ".join(answer.models)
            status = answer.status.value
            return f"{answer.execution_id}: {answer.strategy.value} on {models} ({status})"
        case ReasoningSession():
            steps, runs = len(answer.steps), len(answer.executions)
            return f"{steps} step(s), {runs} execution(s), {answer.status.value}"
        case _:
            return ""


# ---- the search query -------------------------------------------------------------------

_ACCESS = (
    "(s.open = 1 OR s.owner = ? OR EXISTS (SELECT 1 FROM reasoning_session_members AS m "
    "WHERE m.session_id = s.session_id AND m.agent = ?))"
)


def _filters(message: SearchReasoningSessions) -> tuple[str, list[SqlValue]]:
    clauses = [_ACCESS]
    params: list[SqlValue] = [message.agent_name, message.agent_name]
    if message.status is not None:
        clauses.append("s.status = ?")
        params.append(SessionStatus(message.status).value)
    for tag in message.tags:
        clauses.append("EXISTS (SELECT 1 FROM json_each(s.tags) WHERE value = ?)")
        params.append(tag)
    return " AND ".join(clauses), params


def _quoted(query: str) -> str:
    """Every word of ``query`` as an FTS5 string: what a query that is not FTS5 syntax means."""
    return " ".join(f'"{w}"' for w in _WORD.findall(query))


async def search(
    store: Ref[Any], message: SearchReasoningSessions
) -> SessionSearchResults | Failure:
    """Run a search on the Store's read connection (see :class:`SearchReasoningSessions`).

    With a query: the best-ranked matching sessions the agent may read, then the
    snippets of their best matches only (by rowid, without ranking again). A query that
    is not FTS5 syntax is searched for as its words.

    Ranking every match of a common word, then joining all of them, costs most of a
    search; so the best ``depth`` matches are taken first (FTS5 sorts them with a bounded
    sorter), then filtered for access, tags and status. That is exact: a session left
    out ranks below all of them. When fewer than ``limit`` sessions pass the filters and
    there were more matches, the depth grows eightfold, up to all of them.
    """
    where, params = _filters(message)
    columns = "s.session_id, s.task_description, s.owner, s.tags, s.status, s.updated_at, s.steps"
    query = message.query.strip()
    snippets: dict[str, str] = {}
    if not query:
        sql = (
            f"SELECT {columns}, 0.0 FROM reasoning_sessions AS s WHERE {where} "  # noqa: S608 - fixed clauses
            "ORDER BY s.updated_at DESC LIMIT ?"
        )
        answer = await _ask_rows(store, sql, (*params, message.limit))
    else:
        answer = await _ranked(store, query, columns, where, params, message.limit)
        if isinstance(answer, Failure) and "fts5" in answer.message.lower():
            query = _quoted(query)
            if not query:
                return Failure(
                    kind=FailureKind.BAD_REQUEST,
                    message=f"search_reasoning_sessions: query {message.query!r} has no words",
                    source="sessions",
                )
            answer = await _ranked(store, query, columns, where, params, message.limit)
        if not isinstance(answer, Failure) and answer.rows:
            snippets = await _snippets(store, query, [int(row[8] or 0) for row in answer.rows])
    if isinstance(answer, Failure):
        return answer
    return SessionSearchResults(
        hits=tuple(
            SearchHit(
                session_id=str(row[0]),
                task_description=str(row[1]),
                owner=str(row[2]),
                tags=tuple(msgspec.json.decode(str(row[3]), type=list[str])),
                status=SessionStatus(str(row[4])),
                updated_at=float(row[5] or 0.0),
                steps=int(row[6] or 0),
                snippet=snippets.get(str(row[0]), ""),
                rank=float(row[7] or 0.0),
            )
            for row in answer.rows
        )
    )


_FIRST_DEPTH = 64
_MAX_DEPTH = 100_000


async def _ranked(  # noqa: PLR0917 - the search's parts, computed once by the caller
    store: Ref[Any],
    query: str,
    columns: str,
    where: str,
    params: list[SqlValue],
    limit: int,
) -> StoreRows | Failure:
    """The best-ranked sessions matching ``query`` that pass ``where`` (see :func:`search`)."""
    sql = (
        "WITH hits AS MATERIALIZED (SELECT rowid AS id, session_id, rank AS r FROM reasoning_fts "  # noqa: S608 - fixed clauses
        "WHERE reasoning_fts MATCH ? ORDER BY rank LIMIT ?) "
        # h.id is the best-ranked row's (SQLite takes a bare column from the min's row)
        f"SELECT {columns}, min(h.r), h.id, (SELECT count(*) FROM hits) FROM hits AS h "
        f"JOIN reasoning_sessions AS s ON s.session_id = h.session_id WHERE {where} "
        "GROUP BY s.session_id ORDER BY min(h.r), s.updated_at DESC LIMIT ?"
    )
    depth = max(_FIRST_DEPTH, 8 * limit)
    while True:
        answer = await _ask_rows(store, sql, (query, depth, *params, limit))
        if isinstance(answer, Failure) or depth < 0 or len(answer.rows) >= limit:
            return answer
        if answer.rows and int(answer.rows[0][-1] or 0) < depth:
            return answer  # every match was ranked: there are no more
        depth = depth * 8 if depth * 8 <= _MAX_DEPTH else -1  # -1: no limit


async def _snippets(store: Ref[Any], query: str, rowids: list[int]) -> dict[str, str]:
    """The snippet of each session's best-ranked match (by its FTS rowid: no ranking again)."""
    marks = ", ".join("?" * len(rowids))
    sql = (
        "SELECT session_id, snippet(reasoning_fts, 2, '[', ']', '...', 12) FROM reasoning_fts "  # noqa: S608 - placeholders only
        f"WHERE reasoning_fts MATCH ? AND rowid IN ({marks})"
    )
    answer = await _ask_rows(store, sql, (query, *rowids))
    if isinstance(answer, Failure):
        return {}
    return {str(session_id): str(snippet or "") for session_id, snippet in answer.rows}


async def _ask_rows(store: Ref[Any], sql: str, params: tuple[SqlValue, ...]) -> StoreRows | Failure:
    from actors import AskError  # noqa: PLC0415 - only here

    try:
        rows: StoreRows = await store.ask_async(
            StoreQuery(sql=sql, params=params), timeout=_STORE_TIMEOUT
        )
    except AskError as exc:
        return exc.failure
    return rows
