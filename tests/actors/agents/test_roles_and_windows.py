"""Roles, agent definitions and history windowing (pure functions)."""

from __future__ import annotations

import pytest

from actors.agents import AgentError, AgentSpec, Role, Turn, Window, window_messages
from actors.agents._roles import needs_summary, system_prompt


def turns(n: int) -> list[Turn]:
    return [
        Turn(
            role="user" if i % 2 == 0 else "assistant",
            content=f"turn {i} " + "x" * 40,
            sender="bob" if i % 2 == 0 else "me",
        )
        for i in range(n)
    ]


def test_the_system_prompt_carries_the_roles_context_and_constraints() -> None:
    """Context entries and constraints become lines after the role's prompt."""
    role = Role(
        name="reviewer",
        system_prompt="You review code.",
        context={"specialties": ["security", "Python"], "experience": "10 years"},
        constraints=("Cite lines.",),
    )
    text = system_prompt(AgentSpec(name="r", role=role))
    assert text.startswith("You review code.")
    assert "- specialties: security, Python" in text
    assert "- experience: 10 years" in text
    assert "Constraints:\n- Cite lines." in text


def test_last_n_keeps_the_system_prompt_and_the_newest_turns() -> None:
    """``last`` keeps exactly N turns after the system prompt; senders prefix others' turns."""
    messages = window_messages("SYS", turns(10), Window.last(3), agent="me")
    assert [m.role for m in messages] == ["system", "assistant", "user", "assistant"]
    assert messages[0].content == "SYS"
    assert len(messages) == 4
    assert messages[-1].content.startswith("turn 9")
    assert messages[2].content.startswith("[bob] turn 8")


def test_a_token_limit_keeps_the_most_recent_turns_that_fit() -> None:
    """``tokens`` drops the oldest turns first; the newest always stays."""
    history = turns(20)
    messages = window_messages("SYS", history, Window.token_limit(60), agent="me")
    kept = [m.content for m in messages[1:]]
    assert messages[0].content == "SYS"
    assert 1 <= len(kept) < 20
    assert kept[-1].startswith("turn 19")
    assert sum(len(c) // 4 + 1 for c in kept) <= 60
    tiny = window_messages("SYS", history, Window.token_limit(1), agent="me")
    assert len(tiny) == 2  # the newest turn even when nothing fits


def test_a_summary_window_puts_the_summary_before_the_unsummarised_turns() -> None:
    """``summary`` sends the summary of the first turns, then the rest."""
    history = turns(6)
    window = Window.summary(after=3, keep=2)
    assert needs_summary(history, window, 0)
    assert not needs_summary(history, window, 4)
    messages = window_messages("SYS", history, window, agent="me", summary="S!", summarised=4)
    assert messages[1].content == "Summary of the earlier conversation: S!"
    assert [m.content[:6] for m in messages[2:]] == ["[bob] ", "turn 5"]


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"name": "bad name!"}, "agent name"),
        ({"model": ()}, "empty fallback chain"),
        ({"model": ""}, "model must not be empty"),
        ({"window": Window(kind="last", turns=0)}, "window"),
    ],
)
def test_an_invalid_agent_is_rejected_when_it_is_defined(
    fields: dict[str, object], fragment: str
) -> None:
    """Names, models and windows are checked before anything runs."""
    base: dict[str, object] = {"name": "ok", "role": Role(name="r", system_prompt="p")}
    with pytest.raises(AgentError, match=fragment):
        AgentSpec(**{**base, **fields}).check()  # type: ignore[arg-type]
