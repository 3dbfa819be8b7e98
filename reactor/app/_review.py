"""PR review as a reactor a user can extend: reviewers per diff chunk, then a summary agent.

:func:`review_reactor` builds it from agent names (the defaults are
:data:`actors.agents.DEFAULT_REVIEWERS` and the ``pr-summarizer``)::

    pr, diff, chunk_tokens                     inputs (gh pr view --json ... as a dict)
    chunks      = the PR's prompt per diff chunk (split per file, then packed)
    per_chunk   = for_each(chunks, ReviewChunk)   # ReviewChunk: one agent step per reviewer
    joined      = every reviewer's replies, joined per reviewer
    summary     = agent(summarizer, joined)
    result      = ReviewResult(reviews, summary)

A user extends it with more steps (``steps=``: post the result, gate a merge, ...)
and other reviewers (any agents).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from actors.agents import (
    DEFAULT_REVIEWERS,
    DEFAULT_SUMMARIZER,
    AgentReply,
    Review,
    ReviewResult,
    chunk_diff,
    pull_request,
    review_prompt,
    split_diff,
)
from dsl import Input, Reactor, agent, collect, for_each, ref, step

__all__ = ["review_reactor"]


def _ident(name: str) -> str:
    ident = re.sub(r"\W", "_", name)
    return f"r_{ident}" if not ident.isidentifier() or ident[0].isdigit() else ident


def review_reactor(
    reviewers: Sequence[str] = tuple(DEFAULT_REVIEWERS),
    summarizer: str = DEFAULT_SUMMARIZER,
    *,
    name: str = "PullRequestReview",
    steps: Mapping[str, Any] | None = None,
    returns: str = "result",
) -> type[Reactor]:
    """A reactor that reviews a pull request with ``reviewers``, summed up by ``summarizer``.

    Its inputs: ``pr`` (the ``gh pr view --json title,body,files,additions,deletions``
    dict), ``diff`` (``gh pr diff``), ``chunk_tokens`` (the diff per message, default
    6000). Its result is an :class:`~actors.agents.ReviewResult`. The agents must be
    defined on the engine (``engine.start_agents()`` and
    :func:`actors.agents.ensure_reviewers` for the defaults).

    Args:
        reviewers: The reviewing agents.
        summarizer: The agent that sums the reviews up.
        name: The reactor's name.
        steps: More steps, by name, added to the reactor (they may use ``result``,
            ``summary``, ``per_chunk``, ... as arguments): how a user extends it.
        returns: The step whose result is the reactor's (default ``result``).
    """
    names = list(reviewers)
    if not names:
        msg = "review_reactor: at least one reviewer"
        raise ValueError(msg)
    idents = {r: _ident(r) for r in names}
    chunk_ns: dict[str, Any] = {"prompt": Input(str)}
    for reviewer, ident in idents.items():
        chunk_ns[ident] = agent("{prompt}", agent=reviewer)
    chunk_ns["replies"] = collect(**{ident: ref(ident) for ident in idents.values()})
    chunk_reactor = type(f"{name}Chunk", (Reactor,), chunk_ns, returns="replies")

    def chunks(pr: dict[str, Any], diff: str, chunk_tokens: int) -> list[str]:
        request = pull_request(pr, diff)
        parts = chunk_diff(split_diff(request.diff), chunk_tokens) or [""]
        return [review_prompt(request, part, i, len(parts)) for i, part in enumerate(parts)]

    def joined(per_chunk: list[dict[str, AgentReply]]) -> str:
        return "\n\n".join(
            f"### {reviewer}\n" + "\n\n".join(r[idents[reviewer]].content for r in per_chunk)
            for reviewer in names
        )

    def result(
        pr: dict[str, Any], per_chunk: list[dict[str, AgentReply]], summary: AgentReply
    ) -> ReviewResult:
        reviews = tuple(
            Review(
                reviewer=reviewer,
                role=reviewer,
                content="\n\n".join(r[idents[reviewer]].content for r in per_chunk),
                chunks=len(per_chunk),
                model=per_chunk[-1][idents[reviewer]].model if per_chunk else "",
            )
            for reviewer in names
        )
        return ReviewResult(
            title=str(pr.get("title", "")),
            reviews=reviews,
            summary=summary.content,
            summarizer=summarizer,
            files=len(pr.get("files") or []),
        )

    ns: dict[str, Any] = {
        "pr": Input(dict),
        "diff": Input(str),
        "chunk_tokens": Input(int, default=6000),
        "chunks": step(chunks),
        "per_chunk": for_each(ref("chunks"), chunk_reactor),
        "joined": step(joined),
        "summary": agent(
            "Summarise these reviews of a pull request: the most important findings first, "
            "then agreements and disagreements.\n\n{joined}",
            agent=summarizer,
        ),
        "result": step(result),
    }
    ns.update(steps or {})
    return type(name, (Reactor,), ns, returns=returns)
