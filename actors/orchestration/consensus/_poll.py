"""One consensus under way: its rounds' member calls, the quorum and the deadlines.

Bookkeeping only, no I/O: the Consensus actor (``_actor``) drives a :class:`Poll`, the
member dispatch (``_members``) fills its :class:`Slot` s. The counts the coordinator
looks at on every answer (how many are still out, the adaptive tally) are kept as the
answers come in, so an answer costs no walk over the round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from opentelemetry import trace

from actors import Deferred, Ref
from actors.llm import ChatRequest
from actors.orchestration.budget import SpendScope
from actors.orchestration.consensus._confidence import adaptive_stop
from actors.orchestration.consensus._messages import (
    ConsensusRequest,
    ConsensusSpec,
    Member,
    MemberAnswer,
)
from actors.orchestration.selection import TaskFeatures, analyse, task_type_of

__all__ = ["GROW_BY", "MARGIN_S", "ROUNDS", "VOTES", "Poll", "Slot"]

VOTES = frozenset({"plurality", "weighted", "cluster", "custom"})
"""Methods whose first round may stop early (a vote)."""
ROUNDS = frozenset({"debate", "synthesis"})
"""Methods of more than one round of calls."""
MARGIN_S = 0.02
"""How long before the request's deadline every call must end, to answer in time."""
GROW_BY = 2
"""Members added at a time when the answers are not decisive (keeps the count odd)."""


@dataclass(slots=True)
class Slot:
    """One member call of a round.

    Attributes:
        member: Who is asked.
        request: What it is asked (its own model, deadline and request id once sent).
        round: The poll's round when it was sent (a later answer to it is stale).
        host: Its host (``None``: it could not be found; ``answer`` says why).
        handle: The budgeted call's I/O handle, cancelled when the round ends.
        sent: When the call was made (``perf_counter``): its latency starts here.
        answer: Its answer or error (``None``: still out).
        label: The member's label (``Member.label``, computed once).
    """

    member: Member
    request: ChatRequest
    round: int
    host: Ref[Any] | None = None
    handle: Any = None
    sent: float = 0.0
    answer: MemberAnswer | None = None
    label: str = ""

    @property
    def qualified(self) -> str:
        """``host/model`` as sent, or the member's label when it was never sent."""
        if self.host is None:
            return self.label or self.member.label
        return f"{self.host.name}/{self.request.model}"


@dataclass(slots=True)
class Poll:
    """One consensus under way: its request, its rounds, its timers and its reply."""

    message: ConsensusRequest
    spec: ConsensusSpec
    reply: Deferred[Any]
    started: float
    deadline: float
    span: trace.Span | None
    ids: str = ""
    """The prefix of its member calls' request ids (unique per poll)."""
    members: list[Member] = field(default_factory=list)
    spare: list[Member] = field(default_factory=list)
    slots: list[Slot] = field(default_factory=list)
    history: list[MemberAnswer] = field(default_factory=list)
    round: int = 1
    timer: Any = None
    end_timer: Any = None
    done: bool = False
    stopped_early: bool = False
    added: int = 0
    asked: int = 0
    fallback: str = ""
    note: str = ""
    out: int = 0
    """Slots of this round still without an answer."""
    tally: dict[bytes, int] = field(default_factory=dict)
    """Adaptive stopping: the first round's usable answers, counted by value."""
    unusable: int = 0
    """Adaptive stopping: the first round's answers without a usable value."""

    extractor: Callable[[str], Any] | None = None
    """How its members' answers are read (the Members' for its spec, found once)."""

    _features: TaskFeatures | None = None
    _task_type: str = ""
    _scope: SpendScope | None = None
    _plain: ChatRequest | None = None

    def plain_request(self) -> ChatRequest:
        """The request as a member of no seed and no temperature of its own is asked it.

        :func:`~._members.member_request` without the call's address (model, deadline,
        request id), made once per poll.
        """
        plain = self._plain
        if plain is None:
            base = self.message.request
            spec = self.spec
            plain = self._plain = msgspec.structs.replace(
                base,
                temperature=spec.temperature if spec.temperature is not None else base.temperature,
                max_tokens=spec.max_tokens if spec.max_tokens is not None else base.max_tokens,
                trace=None,
                deadline=None,
            )
        return plain

    @property
    def features(self) -> TaskFeatures:
        """The request's task features (computed when first needed: off the fast path)."""
        if self._features is None:
            request = self.message.request
            self._features = analyse(request.messages, task_type=self.spec.task_type)
        return self._features

    @property
    def task_type(self) -> str:
        """The request's task type (the spec's, when it names one: nothing to infer)."""
        given = self.spec.task_type
        if given is not None:
            return given
        if not self._task_type:
            features = self._features
            self._task_type = (
                features.task_type
                if features is not None
                else task_type_of(self.message.request.messages)
            )
        return self._task_type

    @property
    def scope(self) -> SpendScope:
        """Whom the members' calls are charged to."""
        if self._scope is None:
            m = self.message
            run_id = m.run_id.split("/", 1)[0]
            self._scope = SpendScope(run_id=run_id, reactor=m.reactor, agent=m.agent)
        return self._scope

    # ---- rounds and answers ----------------------------------------------------------------

    def next_round(self) -> None:
        """Start a new round: the current one's answers join the history."""
        self.history += [s.answer for s in self.slots if s.answer is not None]
        self.round += 1
        self.clear_round()

    def clear_round(self) -> None:
        """Forget the current round's slots and counts (its answers are kept elsewhere)."""
        self.slots = []
        self.out = 0
        self.tally = {}
        self.unusable = 0

    def add(self, slot: Slot) -> None:
        """A call of this round: out until :meth:`settle` (or already answered)."""
        self.slots.append(slot)
        self.asked += 1
        if slot.answer is None:
            self.out += 1
        elif self.spec.adaptive:
            self._count(slot.answer)

    def settle(self, slot: Slot, answer: MemberAnswer) -> None:
        """``slot``'s answer (or error) is in."""
        slot.answer = answer
        self.out -= 1
        if self.spec.adaptive:
            self._count(answer)

    def _count(self, answer: MemberAnswer) -> None:
        spec = self.spec
        if not spec.adaptive or self.round != 1 or spec.method not in VOTES:
            return
        if answer.value is None:
            self.unusable += 1
            return
        key = msgspec.json.encode(answer.value)
        self.tally[key] = self.tally.get(key, 0) + 1

    def decided(self) -> bool:
        """Adaptive stopping: the leading answer can no longer be overtaken this round."""
        spec = self.spec
        if not spec.adaptive or self.round != 1 or spec.method not in VOTES:
            return False
        return adaptive_stop(list(self.tally.values()), len(self.slots) - self.unusable)

    def usable(self) -> list[tuple[Slot, MemberAnswer]]:
        """This round's answers with a value, with their slots, in the order asked."""
        return [
            (s, s.answer)
            for s in self.slots
            if s.answer is not None and s.answer.ok and s.answer.value is not None
        ]

    def finished(self) -> list[MemberAnswer]:
        """Every answer and error so far, all rounds, in the order asked."""
        return [*self.history, *[s.answer for s in self.slots if s.answer is not None]]

    # ---- the quorum and the deadlines ------------------------------------------------------

    def needed(self) -> int:
        """The answers the quorum needs (a majority of this round's calls by default)."""
        asked = len(self.slots)
        needed = self.spec.quorum.min_answers or (asked // 2 + 1)
        return min(needed, max(1, asked))

    def time_left(self, wanted: float) -> float:
        """``wanted`` seconds, or what is left before the request's deadline (less a margin)."""
        return max(0.001, min(wanted, self.deadline - time.time() - MARGIN_S))

    def stop_timers(self) -> None:
        """Cancel the quorum and the deadline timers."""
        for timer in (self.timer, self.end_timer):
            if timer is not None:
                timer.cancel()
        self.timer = self.end_timer = None
