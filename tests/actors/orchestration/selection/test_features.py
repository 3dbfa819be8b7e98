"""Task features: deterministic, cheap, and the caller's word wins over the analyser's."""

from __future__ import annotations

import pytest

from actors.llm import ChatMessage
from actors.orchestration.selection import LONG_CONTEXT_TOKENS, TaskFeatures, analyse, task_type_of


@pytest.mark.parametrize(
    ("prompt", "task_type"),
    [
        ("Fix this Python function: ```def f(x): return x +``` it raises an exception", "code"),
        ("Prove that the square root of 2 is irrational, step by step", "reasoning"),
        ("Compare the trade-offs of these two designs and evaluate the metrics", "analysis"),
        ("Write a poem about the sea in the style of a sailor's story", "creative"),
        ("What is the capital of France?", "factual"),
        ("hello there", "general"),
    ],
)
def test_the_category_is_read_from_the_prompt(prompt: str, task_type: str) -> None:
    """Each task type users name is recognised from typical wording."""
    assert analyse(prompt).task_type == task_type
    assert task_type_of(prompt) == task_type
    assert task_type_of([ChatMessage.user(prompt), ChatMessage.assistant("2 + 2 = 4")]) == task_type


def test_task_type_of_reads_the_last_user_turn_as_analyse_does() -> None:
    """The category alone (for learning after a call) is the one analyse infers."""
    turns = [
        ChatMessage.user("Write a poem about autumn"),
        ChatMessage.assistant("Leaves fall..."),
        ChatMessage.user("Now debug this python traceback for me"),
    ]
    assert task_type_of(turns) == analyse(turns).task_type == "code"
    assert task_type_of([ChatMessage.system("You write code.")]) == "general"


def test_a_given_task_type_wins_and_is_not_marked_inferred() -> None:
    """task_type= is taken as given; only what was not given is inferred."""
    features = analyse("Write a poem", task_type="code")
    assert (features.task_type, features.inferred) == ("code", False)
    assert analyse("Write a poem").inferred


def test_the_last_user_turn_decides_and_every_turn_counts_for_size() -> None:
    """The category follows the latest question; the token estimate covers the conversation."""
    turns = [
        ChatMessage.system("x" * 400),
        ChatMessage.user("Write a poem about autumn"),
        ChatMessage.assistant("Leaves fall..."),
        ChatMessage.user("Now debug this python traceback for me"),
    ]
    features = analyse(turns)
    assert features.task_type == "code"
    assert features.prompt_tokens >= 100


def test_needs_come_from_the_request_and_a_long_prompt() -> None:
    """Tools, JSON and vision as asked; long_context from the size alone."""
    assert analyse("hi", tools=True, json=True, vision=True).needs == ("json", "tools", "vision")
    assert analyse("mention JSON in passing").needs == ()
    long = analyse("word " * (LONG_CONTEXT_TOKENS * 4 // 5 + 10))
    assert "long_context" in long.needs


def test_complexity_grows_with_parts_and_rigour() -> None:
    """A multi-part, rigorous request scores higher than a one-line question."""
    simple = analyse("What time is it?").complexity
    hard = analyse(
        "Design the architecture step by step and prove it handles edge cases:\n"
        "1. concurrency\n2. failures\n3. optimise the cost\n4. formal model\n" * 3
    ).complexity
    assert 0.0 <= simple < hard <= 1.0


def test_the_same_text_gives_the_same_features() -> None:
    """Deterministic: no sampling, no model call."""
    text = "Analyse the data trends and summarise them"
    assert analyse(text) == analyse(text)
    assert isinstance(analyse(text), TaskFeatures)


@pytest.mark.parametrize(
    "text",
    [
        "What time is it?",
        "Prove it, formally: (rigorous) design, edge-free",
        "knowledge of hedges is not an edge; redesign is not design",
        "1. optimise\n2. OPTIMIZE the architecture\n- concurrency? complexity?",
        "multi-step tradeoffs, prove. prove! prove?",
    ],
)
def test_a_given_task_type_changes_nothing_else(text: str) -> None:
    """Naming the task type skips its inference only: the complexity is the analyser's own."""
    inferred = analyse(text)
    given = analyse(text, task_type="creative")
    assert given.task_type == "creative"
    assert not given.inferred
    assert (given.complexity, given.prompt_tokens, given.needs) == (
        inferred.complexity,
        inferred.prompt_tokens,
        inferred.needs,
    )
