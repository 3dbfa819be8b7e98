"""Sessions' pure policy: access rules, usable models, disagreement, the decision prompt."""

from __future__ import annotations

from actors.sessions import (
    Candidate,
    ReasoningStep,
    StepType,
    TaskType,
    can_manage,
    can_use,
    decision_prompt,
    disagreement,
    usable_models,
)

GIB = 2**30


def step(seq: int, agent: str, kind: StepType, text: str = "t") -> ReasoningStep:
    return ReasoningStep(seq=seq, agent=agent, step_type=kind, text=text, at=float(seq))


THREE = [
    Candidate("h/a", loaded=True, tier=3),
    Candidate("h/b", loaded=True, tier=2),
    Candidate("h/c", loaded=True),
]


def test_owner_participant_and_open_sessions_grant_use_only_the_owner_manages() -> None:
    """Owner and participants may use a session, anyone may if it is open; the owner manages."""
    assert can_use("alice", "alice", (), is_open=False)
    assert can_use("bob", "alice", ("bob",), is_open=False)
    assert not can_use("eve", "alice", ("bob",), is_open=False)
    assert can_use("eve", "alice", (), is_open=True)
    assert can_manage("alice", "alice")
    assert not can_manage("bob", "alice")


def test_disagreement_is_a_critique_or_hypotheses_from_two_agents() -> None:
    """A critique, or hypotheses from two agents, is disagreement; one agent's are not."""
    critique = [step(1, "a", StepType.HYPOTHESIS), step(2, "b", StepType.CRITIQUE)]
    assert disagreement(critique) == "1 critique step(s)"
    two_agents = [step(1, "a", StepType.HYPOTHESIS), step(2, "b", StepType.HYPOTHESIS)]
    assert disagreement(two_agents) == "hypotheses from 2 agents"
    one_agent = [step(1, "a", StepType.HYPOTHESIS), step(2, "a", StepType.HYPOTHESIS)]
    assert disagreement(one_agent) == ""
    assert disagreement([step(1, "a", StepType.ANALYSIS)]) == ""


def test_models_strong_at_the_task_come_first() -> None:
    """A model declared strong at code leads for a code task, even over a higher tier."""
    models = [*THREE, Candidate("h/coder", loaded=True, tier=1, strengths=("code",))]
    usable, _ = usable_models(models, TaskType.CODE, None)
    assert [c.name for c in usable] == ["h/coder", "h/a", "h/b", "h/c"]
    usable, _ = usable_models(models, TaskType.REASONING, None)
    assert [c.name for c in usable] == ["h/a", "h/b", "h/coder", "h/c"]  # tier 1 over none


def test_free_memory_decides_which_unloaded_models_take_part() -> None:
    """Unloaded models join while they fit what is free, together; the rest say why."""
    models = [
        Candidate("h/loaded", loaded=True, tier=1),
        Candidate("h/big", loaded=False, size_bytes=20 * GIB, tier=3),
        Candidate("h/mid", loaded=False, size_bytes=6 * GIB, tier=2),
        Candidate("h/small", loaded=False, size_bytes=3 * GIB, tier=2),
    ]
    usable, left_out = usable_models(models, TaskType.REASONING, 8 * GIB)
    assert [c.name for c in usable] == ["h/mid", "h/loaded"]  # small no longer fits after mid
    assert "h/big (needs 20.0 GiB, 8.0 GiB free)" in left_out
    with_room, _ = usable_models(models, TaskType.REASONING, None)
    assert len(with_room) == 4  # unknown free memory: taken on trust
    broken, why = usable_models([Candidate("h/x", healthy=False)], TaskType.GENERAL, None)
    assert (broken, why) == ([], ["h/x (breaker open)"])


def test_the_decision_prompt_carries_task_reasoning_and_question() -> None:
    """The prompt has the task, each step with its type and author, and the question last."""
    text = decision_prompt(
        "pick a cache", [step(1, "alice", StepType.HYPOTHESIS, "LRU")], "which one?", TaskType.CODE
    )
    assert text.startswith("Task (code): pick a cache")
    assert "1. [hypothesis] alice: LRU" in text
    assert text.endswith("Decide: which one?")
