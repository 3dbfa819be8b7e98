"""Sessions' pure policy: access rules, the strategy chooser, agreement, the decision prompt."""

from __future__ import annotations

import pytest

from actors.sessions import (
    Candidate,
    NoModelError,
    ReasoningStep,
    StepType,
    Strategy,
    TaskType,
    agreement,
    can_manage,
    can_use,
    choose_strategy,
    decision_prompt,
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


def test_each_rule_picks_its_strategy() -> None:
    """One model: specialized; creative: chain; critique with 3 models: hybrid; else concurrent."""
    one = choose_strategy(TaskType.REASONING, [], THREE[:1], None)
    assert (one.strategy, one.models) == (Strategy.SPECIALIZED, ("h/a",))
    creative = choose_strategy(TaskType.CREATIVE, [], THREE, None)
    assert creative.strategy is Strategy.CHAIN
    assert creative.models == ("h/a", "h/b", "h/c")  # best first: the drafter is the best
    critique = [step(1, "a", StepType.HYPOTHESIS), step(2, "b", StepType.CRITIQUE)]
    hybrid = choose_strategy(TaskType.ANALYSIS, critique, THREE, None)
    assert hybrid.strategy is Strategy.HYBRID
    assert "critique" in hybrid.reason
    two_agents = [step(1, "a", StepType.HYPOTHESIS), step(2, "b", StepType.HYPOTHESIS)]
    assert choose_strategy(TaskType.GENERAL, two_agents, THREE, None).strategy is Strategy.HYBRID
    assert (
        choose_strategy(TaskType.GENERAL, critique, THREE[:2], None).strategy is Strategy.CONCURRENT
    )
    plain = choose_strategy(TaskType.REASONING, [step(1, "a", StepType.ANALYSIS)], THREE, None)
    assert plain.strategy is Strategy.CONCURRENT


def test_code_goes_to_a_code_specialist_when_there_is_one() -> None:
    """A model declared strong at code takes a code task alone, even over a higher tier."""
    models = [*THREE, Candidate("h/coder", loaded=True, tier=1, strengths=("code",))]
    choice = choose_strategy(TaskType.CODE, [], models, None)
    assert (choice.strategy, choice.models) == (Strategy.SPECIALIZED, ("h/coder",))
    assert choose_strategy(TaskType.CODE, [], THREE, None).strategy is Strategy.CONCURRENT


def test_free_memory_decides_which_unloaded_models_take_part() -> None:
    """Unloaded models join while they fit what is free, together; the reason names the rest."""
    models = [
        Candidate("h/loaded", loaded=True, tier=1),
        Candidate("h/big", loaded=False, size_bytes=20 * GIB, tier=3),
        Candidate("h/mid", loaded=False, size_bytes=6 * GIB, tier=2),
        Candidate("h/small", loaded=False, size_bytes=3 * GIB, tier=2),
    ]
    choice = choose_strategy(TaskType.REASONING, [], models, 8 * GIB, max_members=4)
    assert choice.models == ("h/mid", "h/loaded")  # small no longer fits after mid
    assert "h/big (needs 20.0 GiB, 8.0 GiB free)" in choice.reason
    with_room = choose_strategy(TaskType.REASONING, [], models, None, max_members=4)
    assert len(with_room.models) == 4  # unknown free memory: taken on trust


def test_nothing_to_run_says_why() -> None:
    """No usable model raises NoModelError; want of memory is flagged as such."""
    with pytest.raises(NoModelError) as memory:
        choose_strategy(TaskType.GENERAL, [], [Candidate("h/big", loaded=False, size_bytes=GIB)], 0)
    assert memory.value.memory
    with pytest.raises(NoModelError) as broken:
        choose_strategy(TaskType.GENERAL, [], [Candidate("h/x", healthy=False)], None)
    assert not broken.value.memory
    assert "breaker open" in str(broken.value)
    with pytest.raises(NoModelError, match="known chat models: none"):
        choose_strategy(TaskType.GENERAL, [], [], None)


def test_agreement_picks_the_answer_the_others_share_most() -> None:
    """Two similar answers outvote an odd one; one answer is its own winner with confidence 1."""
    answers = [
        "use LRU with a scan filter",
        "the moon is made of cheese",
        "use LRU plus a scan filter",
    ]
    best, confidence = agreement(answers)
    assert best in (0, 2)
    assert 0 < confidence < 1
    assert agreement(["only"]) == (0, 1.0)
    with pytest.raises(ValueError, match="at least one"):
        agreement([])


def test_the_decision_prompt_carries_task_reasoning_and_question() -> None:
    """The prompt has the task, each step with its type and author, and the question last."""
    text = decision_prompt(
        "pick a cache", [step(1, "alice", StepType.HYPOTHESIS, "LRU")], "which one?", TaskType.CODE
    )
    assert text.startswith("Task (code): pick a cache")
    assert "1. [hypothesis] alice: LRU" in text
    assert text.endswith("Decide: which one?")
