"""REST routes for reasoning sessions and conversations (registered in the route table).

Sessions (``/api/sessions``): the six operations, sharing, waiting for a decision, the
analytics and the audit trail, each naming the calling agent (``agent_name`` in a body,
``?agent=`` on a GET) as :class:`actors.sessions.Sessions` requires. Conversations
(``/api/conversations``): list, show, start (optionally running a team pattern), send
one message, and resume a team pattern. Refusals keep the one error shape:
``forbidden`` (an agent not allowed in a session), ``not_found``, ``bad_request`` with
the field at fault.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from actors import ActorError, AskError, FailureKind
from actors.agents import ConversationError as _ConversationError
from actors.agents import ConversationState, Said, Termination
from actors.sessions import (
    Execution,
    OrchestrationCapabilities,
    ReasoningSession,
    ReasoningStep,
    SearchHit,
    SessionAuditRecord,
    SessionsStats,
)
from reactor.daemon._app import _endpoint, _int_param, decode, json_response
from reactor.daemon._errors import ApiError
from reactor.daemon._hub import ConversationActivity, SessionActivity

if TYPE_CHECKING:
    from reactor.daemon._daemon import Daemon

__all__ = [
    "ConversationCreate",
    "ConversationInfoView",
    "ConversationResume",
    "ConversationSay",
    "DecisionCreate",
    "SessionCreate",
    "SessionOverview",
    "SessionShare",
    "StepCreate",
    "announce_conversation",
    "announce_decision",
    "announce_session",
]


class SessionCreate(msgspec.Struct, frozen=True, kw_only=True):
    """``initiate_reasoning_session``: the task, the owner, tags and who may join."""

    task_description: str
    agent_name: str
    tags: list[str] = msgspec.field(default_factory=list)
    participants: list[str] = msgspec.field(default_factory=list)
    open: bool = False
    session_id: str = ""


class StepCreate(msgspec.Struct, frozen=True, kw_only=True):
    """``add_reasoning_step``: who reasons, what, of which type, building on which step."""

    agent_name: str
    reasoning_text: str
    step_type: str = "analysis"
    builds_on: int | None = None


class DecisionCreate(msgspec.Struct, frozen=True, kw_only=True):
    """``execute_orchestrated_decision``; ``wait_s``: seconds to wait for the result."""

    agent_name: str
    prompt: str
    task_type: str = "general"
    wait_s: float = 0.0


class SessionShare(msgspec.Struct, frozen=True, kw_only=True):
    """The owner lets agents in, or opens (``open``) or closes the session."""

    agent_name: str
    participants: list[str] = msgspec.field(default_factory=list)
    open: bool | None = None


class ConversationCreate(msgspec.Struct, frozen=True, kw_only=True):
    """Start a conversation between registered agents; with ``pattern``, run a team."""

    participants: list[str]
    topic: str = ""
    initial: str = ""
    sender: str = "user"
    moderator: str = ""
    id: str | None = None
    pattern: str | None = None
    max_rounds: int = 3
    keyword: str | None = None


class ConversationSay(msgspec.Struct, frozen=True, kw_only=True):
    """``sender`` tells ``recipient`` something; the answer comes back."""

    sender: str
    recipient: str
    content: str


class ConversationResume(msgspec.Struct, frozen=True, kw_only=True):
    """Continue a stored conversation with another team pattern run."""

    pattern: str = "round_robin"
    max_rounds: int = 3
    keyword: str | None = None


class ConversationInfoView(msgspec.Struct, frozen=True, kw_only=True):
    """A stored conversation in a listing."""

    id: str
    created_at: float
    updated_at: float
    messages: int
    ended: bool


class SessionOverview(msgspec.Struct, frozen=True, kw_only=True):
    """A session as the daemon's operator sees it (the page's sessions panel)."""

    session_id: str
    task_description: str
    owner: str
    status: str
    tags: list[str]
    steps: int
    decisions: int
    updated_at: float


# ---- the live feed ---------------------------------------------------------------------------

_FOLLOWING: set[Any] = set()


def announce_session(
    daemon: Daemon, session_id: str, agent: str, operation: str, status: str = ""
) -> None:
    """Publish a :class:`SessionActivity` on the bus (the page's SSE feed)."""
    import time  # noqa: PLC0415

    if daemon.system is not None:
        daemon.system.bus.publish(
            SessionActivity(
                session_id=session_id, agent=agent, operation=operation, status=status,
                at=time.time(),
            )
        )  # fmt: skip


def announce_decision(daemon: Daemon, session_id: str, agent: str, execution: Execution) -> None:
    """Announce a decision; one still running is announced again when it finishes."""
    import asyncio  # noqa: PLC0415

    status = execution.status.value
    announce_session(daemon, session_id, agent, "execute_orchestrated_decision", status)
    if status != "running":
        return

    async def follow() -> None:
        try:
            final = await daemon.sessions.wait_for_decision_async(
                session_id, agent, execution.execution_id, timeout=3600.0
            )
        except ActorError:
            return
        announce_session(daemon, session_id, agent, "decision_finished", final.status.value)

    task = asyncio.get_running_loop().create_task(follow(), name=f"follow-{execution.execution_id}")
    _FOLLOWING.add(task)
    task.add_done_callback(_FOLLOWING.discard)


def announce_conversation(daemon: Daemon, conversation_id: str, operation: str) -> None:
    """Publish a :class:`ConversationActivity` on the bus."""
    import time  # noqa: PLC0415

    if daemon.system is not None:
        daemon.system.bus.publish(
            ConversationActivity(
                conversation_id=conversation_id, operation=operation, at=time.time()
            )
        )


_CODES = {
    FailureKind.PERMISSION_DENIED: "forbidden",
    FailureKind.NOT_FOUND: "not_found",
    FailureKind.BAD_REQUEST: "bad_request",
}


def _sessions(daemon: Daemon) -> Any:
    if daemon.sessions is None:
        raise ApiError("unavailable", "reasoning sessions are not running")
    return daemon.sessions


async def _call(coro: Any, *, field: str | None = None) -> Any:
    """Await an operation; its refusal becomes the one error shape."""
    try:
        return await coro
    except AskError as exc:
        code = _CODES.get(exc.kind, "unavailable")
        raise ApiError(code, exc.failure.message) from None
    except _ConversationError as exc:
        code = "not_found" if "no conversation" in str(exc) else "bad_request"
        raise ApiError(code, str(exc), field=field) from None
    except (ValueError, TypeError) as exc:
        raise ApiError("bad_request", str(exc), field=field) from None
    except ActorError as exc:
        raise ApiError("unavailable", str(exc)) from None


def _agent_param(request: Request) -> str:
    agent = request.query_params.get("agent", "")
    if not agent.strip():
        raise ApiError(
            "bad_request", "?agent= (the calling agent's name) is required", field="agent"
        )
    return agent


# ---- sessions -------------------------------------------------------------------------------


@_endpoint(
    "POST", "/api/sessions", "Start a reasoning session (initiate_reasoning_session)",
    body=SessionCreate, returns=ReasoningSession, status=201, tag="sessions",
)  # fmt: skip
async def create_session(request: Request, daemon: Daemon) -> Response:
    """The new session, owned by ``agent_name``."""
    body = await decode(request, SessionCreate)
    sessions = _sessions(daemon)
    session_id = await _call(
        sessions.initiate_reasoning_session_async(
            body.task_description,
            body.agent_name,
            body.tags,
            participants=body.participants,
            open=body.open,
            session_id=body.session_id,
        )
    )
    session = await _call(sessions.get_reasoning_session_async(session_id, body.agent_name))
    announce_session(daemon, session_id, body.agent_name, "initiate_reasoning_session")
    return json_response(session, 201)


@_endpoint(
    "GET", "/api/sessions", "Search reasoning sessions (search_reasoning_sessions)",
    returns=list[SearchHit], tag="sessions",
)  # fmt: skip
async def search_sessions(request: Request, daemon: Daemon) -> Response:
    """``?agent=&query=&tags=a,b&status=&limit=20``: the sessions the agent may read."""
    params = request.query_params
    tags = [t for t in params.get("tags", "").split(",") if t]
    hits = await _call(
        _sessions(daemon).search_reasoning_sessions_async(
            _agent_param(request),
            params.get("query", ""),
            tags,
            params.get("status") or None,
            _int_param(request, "limit", 20),
        ),
        field="status",
    )
    return json_response(hits)


@_endpoint(
    "GET", "/api/sessions/capabilities",
    "Models, strategies and GPU memory (get_orchestration_capabilities)",
    returns=OrchestrationCapabilities, tag="sessions",
)  # fmt: skip
async def session_capabilities(request: Request, daemon: Daemon) -> Response:
    """``?agent=``: what decisions can use now."""
    agent = _agent_param(request)
    return json_response(await _call(_sessions(daemon).get_orchestration_capabilities_async(agent)))


@_endpoint(
    "GET", "/api/sessions/stats", "Sessions analytics: interactions, collaboration, performance",
    returns=SessionsStats, tag="sessions",
)  # fmt: skip
async def session_stats(request: Request, daemon: Daemon) -> Response:
    """Interactions per agent, who builds on whose steps, performance by agent."""
    return json_response(await _call(_sessions(daemon).stats_async()))


@_endpoint(
    "GET", "/api/sessions/audit", "The sessions audit trail, newest first",
    returns=list[SessionAuditRecord], tag="sessions",
)  # fmt: skip
async def session_audit(request: Request, daemon: Daemon) -> Response:
    """``?agent=&session=&limit=100``."""
    params = request.query_params
    records = await _call(
        _sessions(daemon).audit_async(
            agent=params.get("agent") or None,
            session_id=params.get("session") or None,
            limit=_int_param(request, "limit", 100),
        )
    )
    return json_response(records)


@_endpoint(
    "GET", "/api/sessions/overview",
    "Sessions newest first: those an agent may read, or every one (the operator's view)",
    returns=list[SessionOverview], tag="sessions",
)  # fmt: skip
async def sessions_overview(request: Request, daemon: Daemon) -> Response:
    """``?agent=&limit=50``: status, steps and decisions of each session the agent may read.

    The same rule as every other sessions read: the owner, the participants, and every
    agent when the session is open (the agent's search decides, and is audited).
    ``?all=true`` instead of ``?agent=`` is the operator's view of every session (the
    web page's).
    """
    import json  # noqa: PLC0415

    sessions = _sessions(daemon)
    params = request.query_params
    limit = _int_param(request, "limit", 50)
    agent = params.get("agent", "").strip()
    if agent:
        hits = await _call(sessions.search_reasoning_sessions_async(agent, "", (), None, limit))
        ids = [hit.session_id for hit in hits]
        if not ids:
            return json_response([])
        where = f"WHERE session_id IN ({', '.join('?' * len(ids))}) "
        args: list[Any] = [*ids, limit]
    elif params.get("all", "") in ("1", "true", "yes"):
        where, args = "", [limit]
    else:
        msg = (
            "?agent= (the calling agent's name) is required, or ?all=true for the "
            "operator's view of every session"
        )
        raise ApiError("bad_request", msg, field="agent")
    rows = await daemon.engine.journal.query_async(
        "SELECT session_id, task_description, owner, status, tags, steps, executions, "  # noqa: S608 - placeholders only
        f"updated_at FROM reasoning_sessions {where}ORDER BY updated_at DESC LIMIT ?",
        *args,
    )
    return json_response(
        [
            SessionOverview(
                session_id=str(sid), task_description=str(task), owner=str(owner),
                status=str(status), tags=list(json.loads(str(tags) or "[]")),
                steps=int(steps or 0), decisions=int(executions or 0),
                updated_at=float(updated or 0.0),
            )
            for sid, task, owner, status, tags, steps, executions, updated in rows
        ]
    )  # fmt: skip


@_endpoint(
    "GET", "/api/sessions/{id}", "A reasoning session (get_reasoning_session)",
    returns=ReasoningSession, tag="sessions",
)  # fmt: skip
async def get_session(request: Request, daemon: Daemon) -> Response:
    """``?agent=``: its steps and decisions (running ones with their progress)."""
    agent = _agent_param(request)
    session_id = request.path_params["id"]
    return json_response(
        await _call(_sessions(daemon).get_reasoning_session_async(session_id, agent))
    )


@_endpoint(
    "POST", "/api/sessions/{id}/steps", "Add a reasoning step (add_reasoning_step)",
    body=StepCreate, returns=ReasoningStep, status=201, tag="sessions",
)  # fmt: skip
async def add_step(request: Request, daemon: Daemon) -> Response:
    """Step types: analysis, hypothesis, conclusion, critique, synthesis."""
    body = await decode(request, StepCreate)
    step = await _call(
        _sessions(daemon).add_reasoning_step_async(
            request.path_params["id"],
            body.agent_name,
            body.reasoning_text,
            body.step_type,
            builds_on=body.builds_on,
        ),
        field="step_type",
    )
    announce_session(daemon, request.path_params["id"], body.agent_name, "add_reasoning_step")
    return json_response(step, 201)


@_endpoint(
    "POST", "/api/sessions/{id}/decisions",
    "Run an orchestrated decision (execute_orchestrated_decision)",
    body=DecisionCreate, returns=Execution, tag="sessions",
)  # fmt: skip
async def create_decision(request: Request, daemon: Daemon) -> Response:
    """The execution: finished within ``wait_s``, else running (poll it or the session)."""
    body = await decode(request, DecisionCreate)
    if body.wait_s < 0:
        msg = f"wait_s must not be negative, not {body.wait_s!r}"
        raise ApiError("bad_request", msg, field="wait_s")
    execution = await _call(
        _sessions(daemon).execute_orchestrated_decision_async(
            request.path_params["id"], body.agent_name, body.prompt, body.task_type,
            wait_s=body.wait_s,
        ),
        field="task_type",
    )  # fmt: skip
    announce_decision(daemon, request.path_params["id"], body.agent_name, execution)
    return json_response(execution)


@_endpoint(
    "GET", "/api/sessions/{id}/decisions/{execution_id}", "A decision, waiting for it to finish",
    returns=Execution, tag="sessions",
)  # fmt: skip
async def get_decision(request: Request, daemon: Daemon) -> Response:
    """``?agent=&wait=30``: the execution once finished, or as it is after ``wait`` s."""
    raw = request.query_params.get("wait", "30")
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError("bad_request", f"wait={raw!r} is not a number", field="wait") from None
    execution = await _call(
        _sessions(daemon).wait_for_decision_async(
            request.path_params["id"],
            _agent_param(request),
            request.path_params["execution_id"],
            timeout=wait,
        )
    )
    return json_response(execution)


@_endpoint(
    "POST", "/api/sessions/{id}/participants", "Share a session: add participants, open it",
    body=SessionShare, returns=ReasoningSession, tag="sessions",
)  # fmt: skip
async def share_session(request: Request, daemon: Daemon) -> Response:
    """Only the owner may share."""
    body = await decode(request, SessionShare)
    session = await _call(
        _sessions(daemon).add_participants_async(
            request.path_params["id"], body.agent_name, body.participants, open=body.open
        )
    )
    announce_session(daemon, session.session_id, body.agent_name, "add_participants")
    return json_response(session)


# ---- conversations ---------------------------------------------------------------------------


def _conversations(daemon: Daemon) -> Any:
    if daemon.conversations is None:
        raise ApiError("unavailable", "conversations are not running")
    return daemon.conversations


@_endpoint(
    "GET", "/api/conversations", "Stored conversations, newest first",
    returns=list[ConversationInfoView], tag="conversations",
)  # fmt: skip
async def list_conversations(request: Request, daemon: Daemon) -> Response:
    """``?limit=50``."""
    import asyncio  # noqa: PLC0415

    limit = _int_param(request, "limit", 50)
    infos = await asyncio.to_thread(_conversations(daemon).list, limit=limit)
    return json_response(
        [
            ConversationInfoView(
                id=i.id,
                created_at=i.created_at,
                updated_at=i.updated_at,
                messages=i.messages,
                ended=i.ended,
            )
            for i in infos
        ]
    )


@_endpoint(
    "GET", "/api/conversations/{id}", "A conversation: participants, messages, ended",
    returns=ConversationState, tag="conversations",
)  # fmt: skip
async def get_conversation(request: Request, daemon: Daemon) -> Response:
    """Everything said so far."""
    conversation_id = request.path_params["id"]
    await _known_conversation(daemon, conversation_id)
    return json_response(await _call(_conversations(daemon).get_async(conversation_id)))


async def _known_conversation(daemon: Daemon, conversation_id: str) -> None:
    import asyncio  # noqa: PLC0415

    known = await asyncio.to_thread(_conversations(daemon).list)
    if not any(i.id == conversation_id for i in known):
        raise ApiError("not_found", f"no conversation {conversation_id!r}")


@_endpoint(
    "POST", "/api/conversations", "Start a conversation (and run a team pattern)",
    body=ConversationCreate, returns=ConversationState, status=201, tag="conversations",
)  # fmt: skip
async def start_conversation(request: Request, daemon: Daemon) -> Response:
    """Participants must be registered agents; ``pattern`` runs round_robin or selector."""
    body = await decode(request, ConversationCreate)
    conversations = _conversations(daemon)
    conversation_id = await _call(
        conversations.start_async(
            body.participants,
            topic=body.topic,
            initial=body.initial,
            sender=body.sender,
            moderator=body.moderator,
            conversation=body.id,
        ),
        field="participants",
    )
    announce_conversation(daemon, conversation_id, "started")
    if body.pattern is not None:
        state = await _call(
            conversations.run_team_async(
                conversation_id,
                pattern=body.pattern,
                termination=_announcing(daemon, conversation_id, body.max_rounds, body.keyword),
            ),
            field="pattern",
        )
        announce_conversation(daemon, conversation_id, "ended")
    else:
        state = await _call(conversations.get_async(conversation_id))
    return json_response(state, 201)


def _announcing(
    daemon: Daemon, conversation_id: str, max_rounds: int, keyword: str | None
) -> Termination:
    """The team's termination, announcing each message on the bus as it is said.

    A team runs for minutes; the page follows it message by message. The predicate is
    the conversation's hook after each message (it never ends the team itself).
    """

    def said(_: object) -> bool:
        announce_conversation(daemon, conversation_id, "said")
        return False

    return Termination(max_rounds=max_rounds, keyword=keyword, predicate=said)


@_endpoint(
    "POST", "/api/conversations/{id}/messages", "Send one message; the recipient's answer",
    body=ConversationSay, returns=Said, tag="conversations",
)  # fmt: skip
async def send_conversation(request: Request, daemon: Daemon) -> Response:
    """``sender`` tells ``recipient`` (a participant) something."""
    body = await decode(request, ConversationSay)
    conversation_id = request.path_params["id"]
    await _known_conversation(daemon, conversation_id)
    said = await _call(
        _conversations(daemon).send_async(
            conversation_id, body.sender, body.recipient, body.content
        ),
        field="recipient",
    )
    announce_conversation(daemon, conversation_id, "said")
    return json_response(said)


@_endpoint(
    "POST", "/api/conversations/{id}/resume", "Continue a conversation with a team pattern",
    body=ConversationResume, returns=ConversationState, tag="conversations",
)  # fmt: skip
async def resume_conversation(request: Request, daemon: Daemon) -> Response:
    """Runs the pattern again from where it stopped (it may have ended)."""
    body = await decode(request, ConversationResume)
    conversation_id = request.path_params["id"]
    await _known_conversation(daemon, conversation_id)
    state = await _call(
        _conversations(daemon).resume_async(
            conversation_id,
            pattern=body.pattern,
            termination=_announcing(daemon, conversation_id, body.max_rounds, body.keyword),
        ),
        field="pattern",
    )
    announce_conversation(daemon, conversation_id, "resumed")
    return json_response(state)
