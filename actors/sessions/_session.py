"""One reasoning session as a virtual actor: activated from its stream, passivated when idle.

A :class:`SessionActor` is a loop actor (no thread of its own): ten thousand active
sessions cost memory, not threads. The :class:`~actors.sessions.SessionDirectory`
starts one when a request for its session arrives and none is active, and stops it
when it has been idle. Its life, in order:

1. **Activation.** ``started()`` reads the session's stream
   (``reasoning-session:<id>``) on the Store's read connection; requests that arrive
   meanwhile wait, in order. The events are folded into the state. A decision that was
   running when its process died (started, never finished) is finished as failed
   (``interrupted``), in the journal too.
2. **Serving.** One request at a time, in arrival order: access is checked, the event
   is appended to the stream (``expected_seq``: a second writer of the same session,
   e.g. another process, is refused rather than forking the stream), then the index
   tables (summary, members, steps, executions, FTS5) are written, then the request is
   answered. A request waits while a write is in flight, so reads see every write
   answered before them.
3. **Decisions.** ``execute_orchestrated_decision`` chooses a strategy on the turn, journals
   the start and answers with the running execution (or waits up to ``wait_s`` for its
   result); the strategy runs on the I/O loop; progress comes back as messages
   (``get_reasoning_session`` shows it); the outcome is journaled and indexed.
4. **Passivation.** After ``idle_s`` without a request, with nothing in flight, the
   session tells the directory it is idle; the directory stops it if no request was
   routed to it since (``handled`` counts them), and routes the next request to a new
   activation.
"""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable
from typing import Any

import msgspec

from actors import Deferred, Failure, FailureKind, LoopActor, Message, Ref, Request
from actors.lowlevel import TimerHandle
from actors.sessions._messages import (
    AddReasoningStep,
    AddSessionParticipants,
    DecisionFinished,
    DecisionStarted,
    Execution,
    ExecutionStatus,
    GetReasoningSession,
    InitiateReasoningSession,
    OrchestratedDecision,
    ReasoningSession,
    ReasoningSessionOpened,
    ReasoningStep,
    ReasoningStepRecorded,
    SessionEvent,
    SessionParticipantsChanged,
    SessionStatus,
    WaitForDecision,
)
from actors.sessions._orchestrator import (
    DecisionContext,
    DecisionFailed,
    DecisionOutcome,
    Orchestrator,
)
from actors.sessions._policy import NoModelError, can_manage, can_use
from actors.store import (
    JournalAppend,
    JournalAppended,
    JournalEntries,
    JournalRead,
    StoreInsert,
)

__all__ = [
    "STREAM_PREFIX",
    "ReasoningIdleCheck",
    "ReasoningIdleState",
    "ReasoningSessionIdle",
    "SessionActor",
    "SessionOperation",
]

STREAM_PREFIX = "reasoning-session:"
"""A session's journal stream is this followed by its id."""

_EVENTS: msgspec.json.Decoder[SessionEvent] = msgspec.json.Decoder(SessionEvent)
_STORE_TIMEOUT = 30.0

SessionOperation = (
    InitiateReasoningSession
    | AddReasoningStep
    | OrchestratedDecision
    | WaitForDecision
    | GetReasoningSession
    | AddSessionParticipants
)
"""The requests a session actor serves (the directory routes them by ``session_id``)."""


class ReasoningIdleState(Message, frozen=True, kw_only=True):
    """A session's answer to :class:`ReasoningIdleCheck`."""

    handled: int
    idle: bool


class ReasoningIdleCheck(Request[ReasoningIdleState], frozen=True, kw_only=True):
    """The directory asks whether the session could be passivated now."""


class ReasoningSessionIdle(Message, frozen=True, kw_only=True):
    """A session tells the directory it has been idle (``handled`` requests so far)."""

    session_id: str
    activation: str
    handled: int


class _Progress:
    """A running decision's progress line (from the I/O loop to the session's turn)."""

    __slots__ = ("execution_id", "text")

    def __init__(self, execution_id: str, text: str) -> None:
        self.execution_id = execution_id
        self.text = text


class _Passivate:
    """The directory's word to stop (it routes nothing more to this activation)."""

    __slots__ = ()


PASSIVATE = _Passivate()


def _denied(agent: str, what: str, session: str, owner: str) -> tuple[FailureKind, str]:
    return (
        FailureKind.PERMISSION_DENIED,
        f"agent {agent!r} may not {what} reasoning session {session!r}: it is not the "
        f"owner ({owner!r}) or a participant, and the session is not open",
    )


class SessionActor(LoopActor[Any]):
    """One reasoning session (see the module docstring for its life).

    Args:
        session_id: Its id.
        store: The Store actor.
        orchestrator: Chooses and runs decisions.
        directory: The directory to tell when idle.
        idle_s: Seconds without a request before it offers to passivate.
    """

    def __init__(
        self,
        session_id: str,
        *,
        store: Ref[Any],
        orchestrator: Orchestrator,
        directory: Ref[Any],
        idle_s: float,
    ) -> None:
        super().__init__()
        self.session_id = session_id
        self._stream = STREAM_PREFIX + session_id
        self._store = store
        self._orchestrator = orchestrator
        self._directory = directory
        self._idle_s = idle_s
        self._opened: ReasoningSessionOpened | None = None
        self._participants: tuple[str, ...] = ()
        self._open = False
        self._steps: list[ReasoningStep] = []
        self._executions: dict[str, Execution] = {}
        self._running: set[str] = set()
        self._waiters: dict[str, list[Deferred[Any]]] = {}
        self._updated = 0.0
        self._seq = 0
        self._busy = True  # until the stream is read
        self._queue: collections.deque[Callable[[], None]] = collections.deque()
        self._handled = 0
        self._last = time.monotonic()
        self._idle_timer: TimerHandle | None = None

    # ---- activation ---------------------------------------------------------------------

    def started(self) -> None:
        self.ask(
            self._store,
            JournalRead(stream_id=self._stream),
            self._loaded,
            timeout=_STORE_TIMEOUT,
        )
        self._idle_timer = self.call_later(self._idle_s, self._check_idle, name="session idle")

    def stopped(self) -> None:
        # A passivated session's timer must not keep it in memory until it fires.
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _loaded(self, answer: JournalEntries | Failure) -> None:
        if isinstance(answer, Failure):
            self._fail_all(answer)
            self.stop()
            return
        for entry in answer.entries:
            self._apply(_EVENTS.decode(entry.data))
            self._seq = entry.seq
        self._busy = False
        for execution_id in [
            i for i, e in self._executions.items() if e.status is ExecutionStatus.RUNNING
        ]:
            interrupted = DecisionFailed(
                "interrupted: the process running it stopped before it finished"
            )
            self._queue.appendleft(functools.partial(self._finish, execution_id, interrupted))
        self._pump()

    def _fail_all(self, failure: Failure) -> None:
        while self._queue:
            item = self._queue.popleft()
            args: tuple[Any, ...] = getattr(item, "args", ())
            reply = args[-1] if args else None
            if isinstance(reply, Deferred):  # a request's: _serve(message, reply)
                reply.send(failure)
        for waiters in self._waiters.values():
            for reply in waiters:
                reply.send(failure)

    def _apply(self, event: SessionEvent) -> None:
        """Fold one event into the state (activation and every write use this)."""
        match event:
            case ReasoningSessionOpened():
                self._opened = event
                self._participants = event.participants
                self._open = event.open
                self._updated = event.at
            case SessionParticipantsChanged():
                self._participants = event.participants
                self._open = event.open
                self._updated = event.at
            case ReasoningStepRecorded():
                self._steps.append(event.step)
                self._updated = event.step.at
            case DecisionStarted():
                self._executions[event.execution.execution_id] = event.execution
                self._updated = event.execution.started_at
            case DecisionFinished():
                execution = event.execution
                self._executions[execution.execution_id] = execution
                self._updated = execution.finished_at or self._updated

    # ---- the mailbox --------------------------------------------------------------------

    def receive(self, message: Any) -> object:
        match message:
            case _Progress():
                execution = self._executions.get(message.execution_id)
                if execution is not None and execution.status is ExecutionStatus.RUNNING:
                    self._executions[message.execution_id] = msgspec.structs.replace(
                        execution, progress=message.text
                    )
                return None
            case ReasoningIdleCheck():
                return ReasoningIdleState(handled=self._handled, idle=self._idle())
            case _Passivate():
                self.stop()
                return None
            case (
                InitiateReasoningSession()
                | AddReasoningStep()
                | OrchestratedDecision()
                | WaitForDecision()
                | GetReasoningSession()
                | AddSessionParticipants()
            ):
                self._handled += 1
                self._last = time.monotonic()
                reply = self.defer_reply()
                self._queue.append(functools.partial(self._serve, message, reply))
                self._pump()
                return None
            case _:
                self.log.warning("unexpected message", message=type(message).__name__)
                return None

    def _pump(self) -> None:
        while not self._busy and self._queue:
            self._queue.popleft()()

    def _idle(self) -> bool:
        return not (self._busy or self._queue or self._running)

    def _check_idle(self) -> None:
        quiet = time.monotonic() - self._last
        if quiet >= self._idle_s and self._idle():
            self._directory.tell(
                ReasoningSessionIdle(
                    session_id=self.session_id, activation=self.name, handled=self._handled
                )
            )
            delay = self._idle_s
        else:
            delay = max(self._idle_s - quiet, 0.05)
        self._idle_timer = self.call_later(delay, self._check_idle, name="session idle")

    # ---- serving ------------------------------------------------------------------------

    def _serve(self, message: SessionOperation, reply: Deferred[Any]) -> None:
        opened = self._opened
        if isinstance(message, InitiateReasoningSession):
            if opened is not None:
                reply.fail(
                    FailureKind.BAD_REQUEST,
                    f"reasoning session {self.session_id!r} exists already",
                    session_id=self.session_id,
                )
                return
            self._initiate(message, reply)
            return
        if opened is None:
            reply.fail(
                FailureKind.NOT_FOUND,
                f"no reasoning session {self.session_id!r}",
                session_id=self.session_id,
            )
            return
        agent = message.agent_name
        if isinstance(message, AddSessionParticipants):
            if not can_manage(agent, opened.owner):
                kind, text = (
                    FailureKind.PERMISSION_DENIED,
                    f"agent {agent!r} may not change who takes part in reasoning session "
                    f"{self.session_id!r}: only its owner ({opened.owner!r}) may",
                )
                reply.fail(kind, text, session_id=self.session_id, agent=agent)
                return
            self._change_participants(message, reply)
            return
        if not can_use(agent, opened.owner, self._participants, is_open=self._open):
            what = {
                AddReasoningStep: "add steps to",
                OrchestratedDecision: "execute decisions in",
            }.get(type(message), "read")
            kind, text = _denied(agent, what, self.session_id, opened.owner)
            reply.fail(kind, text, session_id=self.session_id, agent=agent)
            return
        match message:
            case GetReasoningSession():
                reply.send(self.view())
            case AddReasoningStep():
                self._add_step(message, reply)
            case OrchestratedDecision():
                self._execute(message, reply)
            case WaitForDecision():
                self._wait(message, reply)

    def view(self) -> ReasoningSession:
        """The session as ``get_reasoning_session`` shows it."""
        opened = self._opened
        assert opened is not None
        return ReasoningSession(
            session_id=self.session_id,
            task_description=opened.task_description,
            owner=opened.owner,
            participants=self._participants,
            open=self._open,
            tags=opened.tags,
            status=self._status(),
            created_at=opened.at,
            updated_at=self._updated,
            steps=tuple(self._steps),
            executions=tuple(self._executions.values()),
        )

    def _status(self) -> SessionStatus:
        if any(e.status is ExecutionStatus.RUNNING for e in self._executions.values()):
            return SessionStatus.EXECUTING
        last_step = self._steps[-1].at if self._steps else 0.0
        decided = any(
            e.status is ExecutionStatus.COMPLETED and (e.finished_at or 0.0) >= last_step
            for e in self._executions.values()
        )
        return SessionStatus.DECIDED if decided else SessionStatus.ACTIVE

    def _initiate(self, message: InitiateReasoningSession, reply: Deferred[Any]) -> None:
        participants = tuple(
            dict.fromkeys(p for p in message.participants if p != message.agent_name)
        )
        event = ReasoningSessionOpened(
            session_id=self.session_id,
            task_description=message.task_description,
            owner=message.agent_name,
            tags=tuple(dict.fromkeys(message.tags)),
            participants=participants,
            open=message.open,
            at=time.time(),
        )

        def rows() -> list[StoreInsert]:
            return [
                self._summary(),
                *self._members(participants),
                self._fts("task", message.task_description),
            ]

        self._write(event, rows, lambda failure: self._answer(reply, failure or self.view()))

    @staticmethod
    def _answer(reply: Deferred[Any], answer: object) -> None:
        reply.send(answer)

    def _change_participants(self, message: AddSessionParticipants, reply: Deferred[Any]) -> None:
        opened = self._opened
        assert opened is not None
        added = tuple(p for p in dict.fromkeys(message.participants) if p != opened.owner)
        event = SessionParticipantsChanged(
            participants=tuple(dict.fromkeys((*self._participants, *added))),
            open=self._open if message.open is None else message.open,
            at=time.time(),
        )
        self._write(
            event,
            lambda: [self._summary(), *self._members(added)],
            lambda failure: self._answer(reply, failure or self.view()),
        )

    def _add_step(self, message: AddReasoningStep, reply: Deferred[Any]) -> None:
        builds_on = len(self._steps) if message.builds_on is None else message.builds_on
        if not 0 <= builds_on <= len(self._steps):
            reply.fail(
                FailureKind.BAD_REQUEST,
                f"add_reasoning_step: builds_on={builds_on} names no step of reasoning session "
                f"{self.session_id!r} (it has {len(self._steps)})",
                session_id=self.session_id,
                field="builds_on",
            )
            return
        step = ReasoningStep(
            seq=len(self._steps) + 1,
            agent=message.agent_name,
            step_type=message.step_type,
            text=message.reasoning_text,
            at=time.time(),
            builds_on=builds_on,
            builds_on_agent=self._steps[builds_on - 1].agent if builds_on else "",
        )

        def rows() -> list[StoreInsert]:
            return [
                StoreInsert(
                    table="reasoning_steps",
                    columns=("session_id", "seq", "agent", "step_type", "builds_on_agent", "at"),
                    rows=(
                        (
                            self.session_id,
                            step.seq,
                            step.agent,
                            step.step_type.value,
                            step.builds_on_agent,
                            step.at,
                        ),
                    ),
                ),
                self._fts(f"step {step.seq}", step.text),
                self._summary(),
            ]

        self._write(
            ReasoningStepRecorded(step=step),
            rows,
            lambda failure: self._answer(reply, failure or step),
        )

    # ---- decisions ----------------------------------------------------------------------

    def _execute(self, message: OrchestratedDecision, reply: Deferred[Any]) -> None:
        opened = self._opened
        assert opened is not None
        context = DecisionContext(
            session_id=self.session_id,
            agent=message.agent_name,
            prompt=message.prompt,
            task_type=message.task_type,
            task_description=opened.task_description,
            steps=tuple(self._steps),
        )
        try:
            choice = self._orchestrator.choose(context)
        except NoModelError as exc:
            kind = FailureKind.INSUFFICIENT_MEMORY if exc.memory else FailureKind.NOT_FOUND
            reply.fail(kind, f"execute_orchestrated_decision: {exc}", session_id=self.session_id)
            return
        except LookupError as exc:
            reply.fail(
                FailureKind.NOT_FOUND,
                f"execute_orchestrated_decision: {exc}",
                session_id=self.session_id,
            )
            return
        execution = Execution(
            execution_id=f"d{len(self._executions) + 1}",
            agent=message.agent_name,
            prompt=message.prompt,
            task_type=message.task_type,
            strategy=choice.strategy,
            reason=choice.reason,
            models=choice.models,
            status=ExecutionStatus.RUNNING,
            started_at=time.time(),
            progress="starting",
        )
        execution_id = execution.execution_id

        def started(failure: Failure | None) -> None:
            if failure is not None:
                reply.send(failure)
                return
            self._running.add(execution_id)
            self._waiters[execution_id] = []
            if message.wait_s > 0:
                self._wait_for(execution_id, reply, message.wait_s)
            else:
                reply.send(self._executions[execution_id])
            ref = self.self_ref

            def progress(text: str) -> None:
                ref.tell(_Progress(execution_id, text))

            self.pipe_to_self(
                _guarded(self._orchestrator, choice, context, progress),
                functools.partial(self._decided, execution_id),
                name=f"decision {self.session_id}/{execution_id}",
            )

        self._write(DecisionStarted(execution=execution), lambda: [self._summary()], started)

    def _wait(self, message: WaitForDecision, reply: Deferred[Any]) -> None:
        execution = self._executions.get(message.execution_id)
        if execution is None:
            reply.fail(
                FailureKind.NOT_FOUND,
                f"reasoning session {self.session_id!r} has no execution {message.execution_id!r}",
                session_id=self.session_id,
            )
            return
        if execution.status is not ExecutionStatus.RUNNING or message.wait_s <= 0:
            reply.send(execution)
            return
        self._wait_for(message.execution_id, reply, message.wait_s)

    def _wait_for(self, execution_id: str, reply: Deferred[Any], wait_s: float) -> None:
        """Answer ``reply`` when the execution finishes, or as it is after ``wait_s``."""
        self._waiters.setdefault(execution_id, []).append(reply)

        def timed_out() -> None:
            current = self._executions.get(execution_id)
            if current is not None:
                reply.send(current)

        self.call_later(wait_s, timed_out, name="decision wait")

    def _decided(
        self, execution_id: str, outcome: DecisionOutcome | DecisionFailed | Failure
    ) -> None:
        if isinstance(outcome, Failure):  # cancelled, or the guard itself failed
            outcome = DecisionFailed(f"{outcome.kind.value}: {outcome.message}")
        self._queue.append(functools.partial(self._finish, execution_id, outcome))
        self._pump()

    def _finish(self, execution_id: str, outcome: DecisionOutcome | DecisionFailed) -> None:
        execution = self._executions[execution_id]
        if isinstance(outcome, DecisionOutcome):
            final = msgspec.structs.replace(
                execution,
                status=ExecutionStatus.COMPLETED,
                progress="done",
                finished_at=time.time(),
                result=outcome.result,
                answers=outcome.answers,
                cost_usd=outcome.cost_usd,
                confidence=outcome.confidence,
            )
        else:
            final = msgspec.structs.replace(
                execution,
                status=ExecutionStatus.FAILED,
                progress="failed",
                finished_at=time.time(),
                error=str(outcome),
                answers=outcome.answers,
                cost_usd=sum(a.cost_usd or 0.0 for a in outcome.answers),
            )

        def rows() -> list[StoreInsert]:
            inserts = [
                self._summary(),
                StoreInsert(
                    table="reasoning_executions",
                    columns=(
                        "session_id",
                        "execution_id",
                        "agent",
                        "task_type",
                        "strategy",
                        "status",
                        "started_at",
                        "duration_s",
                        "models",
                        "cost_usd",
                    ),
                    rows=(
                        (
                            self.session_id,
                            final.execution_id,
                            final.agent,
                            final.task_type.value,
                            final.strategy.value,
                            final.status.value,
                            final.started_at,
                            final.duration_s,
                            len(final.models),
                            final.cost_usd,
                        ),
                    ),
                ),
            ]
            if final.result:
                inserts.append(self._fts(f"result {final.execution_id}", final.result))
            return inserts

        def written(failure: Failure | None) -> None:
            self._running.discard(execution_id)
            answer: Execution | Failure = failure or self._executions[execution_id]
            for reply in self._waiters.pop(execution_id, ()):
                reply.send(answer)

        self._write(DecisionFinished(execution=final), rows, written)

    # ---- writing ------------------------------------------------------------------------

    def _write(
        self,
        event: SessionEvent,
        rows: Callable[[], list[StoreInsert]],
        then: Callable[[Failure | None], None],
    ) -> None:
        """Append ``event``; once durable, apply it, write the index ``rows()``, call ``then``.

        Nothing else is served meanwhile. If the append fails, the event is not applied
        and no row is written.
        """
        self._busy = True
        append = JournalAppend(
            stream_id=self._stream,
            event_type=type(event).__name__,
            data=msgspec.json.encode(event),
            expected_seq=self._seq,
        )

        def done(failure: Failure | None) -> None:
            self._busy = False
            then(failure)
            self._pump()

        def appended(answer: JournalAppended | Failure) -> None:
            if isinstance(answer, Failure):
                # Perhaps another writer (process) got there first: what it wrote is read
                # before the next request (the Store refuses a stale expected_seq, or its
                # commit fails on the stream's unique sequence numbers).
                self._catch_up(functools.partial(done, answer))
                return
            self._seq = answer.seq
            self._apply(event)
            inserts = rows()
            outstanding = len(inserts)
            first_failure: list[Failure] = []

            def inserted(result: object) -> None:
                nonlocal outstanding
                outstanding -= 1
                if isinstance(result, Failure) and not first_failure:
                    first_failure.append(result)
                if outstanding == 0:
                    if first_failure:
                        self.log.error(
                            "session index not written",
                            session_id=self.session_id,
                            error=first_failure[0].message,
                        )
                    done(None)  # the journal has it: the session is right, the index lags

            for insert in inserts:
                self.ask(self._store, insert, inserted, timeout=_STORE_TIMEOUT)

        self.ask(self._store, append, appended, timeout=_STORE_TIMEOUT)

    def _catch_up(self, then: Callable[[], None]) -> None:
        """Read the events another writer appended, apply them, then ``then()``."""

        def read(answer: JournalEntries | Failure) -> None:
            if not isinstance(answer, Failure):
                for entry in answer.entries:
                    self._apply(_EVENTS.decode(entry.data))
                    self._seq = entry.seq
            then()

        self.ask(
            self._store,
            JournalRead(stream_id=self._stream, after_seq=self._seq),
            read,
            timeout=_STORE_TIMEOUT,
        )

    def _summary(self) -> StoreInsert:
        opened = self._opened
        assert opened is not None
        return StoreInsert(
            table="reasoning_sessions",
            columns=(
                "session_id",
                "task_description",
                "owner",
                "open",
                "status",
                "tags",
                "created_at",
                "updated_at",
                "steps",
                "executions",
            ),
            rows=(
                (
                    self.session_id,
                    opened.task_description,
                    opened.owner,
                    int(self._open),
                    self._status().value,
                    msgspec.json.encode(opened.tags).decode(),
                    opened.at,
                    self._updated,
                    len(self._steps),
                    len(self._executions),
                ),
            ),
        )

    def _members(self, agents: tuple[str, ...]) -> list[StoreInsert]:
        if not agents:
            return []
        return [
            StoreInsert(
                table="reasoning_session_members",
                columns=("session_id", "agent"),
                rows=tuple((self.session_id, a) for a in agents),
            )
        ]

    def _fts(self, kind: str, body: str) -> StoreInsert:
        return StoreInsert(
            table="reasoning_fts",
            columns=("session_id", "kind", "body"),
            rows=((self.session_id, kind, body),),
        )


async def _guarded(
    orchestrator: Orchestrator,
    choice: Any,
    context: DecisionContext,
    progress: Callable[[str], None],
) -> DecisionOutcome | DecisionFailed:
    """Run the strategy; whatever it raises becomes the execution's failure."""
    try:
        return await orchestrator.run(choice, context, progress)
    except DecisionFailed as exc:
        return exc
    except Exception as exc:  # noqa: BLE001 - an orchestrator's bug fails its decision only
        return DecisionFailed(f"{type(exc).__name__}: {exc}")
