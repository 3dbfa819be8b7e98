"""A human's answer to a low-consensus step that halted its run for review.

A ``consensus`` step with ``on_low="halt"`` halts the run when the members do not agree
enough. A person then writes their answer to the step's review stream in the journal
(:class:`HumanAnswer`, ``Engine.journal.append(review_stream(run_id, step), ...)``, or
``reactor.kinds.answer_review``) and resumes the run: the step runs again, finds the
answer, and returns it as the consensus (``method="human"``, confidence 1).
"""

from __future__ import annotations

from typing import Any

import msgspec

__all__ = ["REVIEW_STREAM", "HumanAnswer", "review_stream"]

REVIEW_STREAM = "consensus:review"
"""The prefix of the journal streams holding human answers."""


class HumanAnswer(msgspec.Struct, frozen=True, kw_only=True, tag=True):
    """A person's answer to a step's question, replacing a low consensus.

    Attributes:
        answer: The answer (a category, number, object or text).
        reviewer: Who answered.
        note: Why, if they said.
    """

    answer: Any
    reviewer: str = ""
    note: str = ""


def review_stream(run_id: str, step: str) -> str:
    """The journal stream of a step's human answers: ``consensus:review:<run>/<step>``."""
    return f"{REVIEW_STREAM}:{run_id}/{step}"
