"""Agent configurations, persisted in the Store's ``daemon_agents`` table.

Each change is a new revision row (insert-only, like the rest of the Store): the
newest revision per id is the agent, and a deletion is a revision marked ``deleted``.
The daemon keeps the current agents in memory (read once at start), so listing them
costs no query; every change is committed before the request is answered.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import msgspec

from actors.store import Journal, StoreInsert
from reactor.daemon._errors import ApiError
from reactor.daemon._messages import Agent, AgentConfig, AgentCreate, AgentUpdate

__all__ = ["AgentBook", "check_agent"]

_TABLE = "daemon_agents"
_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Agent).decode


def check_agent(name: str, config: AgentConfig) -> None:
    """Refuse an agent whose settings cannot work, naming the field.

    Raises:
        ApiError: ``bad_request`` with the field's path.
    """
    if not name.strip():
        raise ApiError("bad_request", "an agent needs a non-empty name", field="name")
    if config.max_concurrent_tasks < 1:
        msg = f"max_concurrent_tasks must be at least 1, got {config.max_concurrent_tasks}"
        raise ApiError("bad_request", msg, field="config.max_concurrent_tasks")
    if not config.timeout_seconds > 0:
        msg = f"timeout_seconds must be greater than 0, got {config.timeout_seconds}"
        raise ApiError("bad_request", msg, field="config.timeout_seconds")
    for task_type, model in config.routing_preferences.items():
        if not model.strip():
            msg = f"routing preference for {task_type!r} names no model"
            raise ApiError("bad_request", msg, field=f"config.routing_preferences.{task_type}")


class AgentBook:
    """The agents: in memory, with every change committed to the Store first."""

    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._agents: dict[str, Agent] = {}
        self._revs: dict[str, int] = {}
        self._lock = asyncio.Lock()

    async def load(self) -> None:
        """Read the newest revision of every agent."""
        rows = await self._journal.query_async(
            f"SELECT id, rev, deleted, data FROM {_TABLE} ORDER BY id, rev"  # noqa: S608 - a constant
        )
        for agent_id, rev, deleted, data in rows:
            self._revs[str(agent_id)] = int(rev or 0)
            if deleted:
                self._agents.pop(str(agent_id), None)
            else:
                self._agents[str(agent_id)] = _decode(str(data))

    def list(self) -> list[Agent]:
        """Every agent, oldest first."""
        return sorted(self._agents.values(), key=lambda a: (a.created_at, a.id))

    def get(self, agent_id: str) -> Agent:
        """The agent.

        Raises:
            ApiError: ``not_found``.
        """
        agent = self._agents.get(agent_id)
        if agent is None:
            raise ApiError("not_found", f"no agent {agent_id!r}", field="id")
        return agent

    async def create(self, body: AgentCreate) -> Agent:
        """Store a new agent; its id is new."""
        check_agent(body.name, body.config)
        now = time.time()
        agent = Agent(
            id=uuid.uuid4().hex[:12],
            name=body.name,
            description=body.description,
            models=list(body.models),
            type=body.type,
            tools=list(body.tools),
            config=body.config,
            created_at=now,
            updated_at=now,
        )
        await self._save(agent)
        return agent

    async def update(self, agent_id: str, body: AgentUpdate) -> Agent:
        """Replace the fields ``body`` gives."""
        current = self.get(agent_id)
        changes: dict[str, Any] = {
            f: getattr(body, f) for f in body.__struct_fields__ if getattr(body, f) is not None
        }
        agent = msgspec.structs.replace(current, **changes, updated_at=time.time())
        check_agent(agent.name, agent.config)
        await self._save(agent)
        return agent

    async def delete(self, agent_id: str) -> Agent:
        """Remove the agent (a revision marked deleted)."""
        agent = self.get(agent_id)
        await self._save(agent, deleted=True)
        return agent

    async def _save(self, agent: Agent, *, deleted: bool = False) -> None:
        async with self._lock:
            rev = self._revs.get(agent.id, 0) + 1
            row = (agent.id, rev, time.time(), int(deleted), _encode(agent).decode())
            await self._journal.ref.ask_async(
                StoreInsert(
                    table=_TABLE, columns=("id", "rev", "at", "deleted", "data"), rows=(row,)
                )
            )
            self._revs[agent.id] = rev
            if deleted:
                self._agents.pop(agent.id, None)
            else:
                self._agents[agent.id] = agent
