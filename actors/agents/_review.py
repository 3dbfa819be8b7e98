"""PR review: specialist reviewers in parallel, then a summary agent.

The input is what the GitHub CLI prints (``gh pr view N --json
title,body,files,additions,deletions`` and ``gh pr diff N``) or a dict of the same
shape; :func:`pull_request` reads it. :func:`split_diff` cuts a unified diff per file,
and :func:`chunk_diff` packs the files into chunks that fit a model's context (a file
too large for one chunk is cut at its hunks, and a hunk too large at its lines).

:func:`review_pull_request` (and ``_async``), as pseudocode::

    for each reviewer, at once:                        (asyncio.gather)
        chunks = chunk_diff(files, what fits the smallest window of the reviewer's models)
        for each chunk: reply = reviewer.respond(the PR's title, body and the chunk)
        review = the replies (one per chunk)
    while every review does not fit the summarizer's window:
        condense them in groups that fit (one summarizer call a group)
    summary = summarizer.respond(every review, or their condensed groups)
    return ReviewResult(reviews, summary)

:data:`DEFAULT_REVIEWERS` are made from the built-in templates by
:func:`ensure_reviewers` (senior developer, security, performance, UX, and a
summarizer); any agents may review instead.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import msgspec

from actors.agents._agent import prompt_budget
from actors.agents._api import Agents
from actors.agents._errors import AgentError
from actors.agents._roles import AgentSpec, estimate_tokens, system_prompt
from actors.agents._templates import BUILT_IN_TEMPLATES, Template
from actors.lowlevel import check_may_block

__all__ = [
    "DEFAULT_REVIEWERS",
    "DEFAULT_SUMMARIZER",
    "PrFile",
    "PullRequest",
    "Review",
    "ReviewResult",
    "chunk_diff",
    "ensure_reviewers",
    "pull_request",
    "review_prompt",
    "review_pull_request",
    "review_pull_request_async",
    "split_diff",
]

DEFAULT_REVIEWERS: dict[str, str] = {
    "senior-developer": "senior_developer",
    "security-reviewer": "security_reviewer",
    "performance-reviewer": "performance_reviewer",
    "ux-reviewer": "ux_reviewer",
}
"""The default reviewers: agent name → built-in template."""
DEFAULT_SUMMARIZER = "pr-summarizer"
"""The default summary agent (from the ``summarizer`` template)."""

_DEFAULT_CONTEXT = 8192
"""Tokens assumed for a model whose context window the catalog does not know."""
_MARGIN = 16
"""Tokens kept for what the estimate of a chunk's prompt leaves out (its sender's tag, a
longer part number)."""


class PrFile(msgspec.Struct, frozen=True, kw_only=True):
    """A changed file, as ``gh pr view --json files`` lists it."""

    path: str
    additions: int = 0
    deletions: int = 0


class PullRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A pull request to review.

    Attributes:
        title: Its title.
        body: Its description.
        files: The changed files.
        additions: Lines added.
        deletions: Lines deleted.
        diff: The unified diff (``gh pr diff``).
        number: Its number, when known.
    """

    title: str
    body: str = ""
    files: tuple[PrFile, ...] = ()
    additions: int = 0
    deletions: int = 0
    diff: str = ""
    number: int | None = None


class Review(msgspec.Struct, frozen=True, kw_only=True):
    """One reviewer's review: its reply per chunk, joined."""

    reviewer: str
    role: str
    content: str
    chunks: int = 1
    model: str = ""
    cost_usd: float | None = None


class ReviewResult(msgspec.Struct, frozen=True, kw_only=True):
    """Every review and the summary."""

    title: str
    reviews: tuple[Review, ...]
    summary: str
    summarizer: str
    files: int = 0

    def to_text(self) -> str:
        """The result as Markdown."""
        parts = [f"# Review: {self.title}", ""]
        for review in self.reviews:
            parts += [f"## {review.reviewer} ({review.role})", "", review.content.strip(), ""]
        parts += [f"## Summary ({self.summarizer})", "", self.summary.strip(), ""]
        return "\n".join(parts)


def pull_request(
    data: Mapping[str, Any] | str | Path, diff: str | Path | None = None
) -> PullRequest:
    """A :class:`PullRequest` from ``gh pr view --json ...`` output (text, a file or a dict).

    Args:
        data: The JSON (a dict, its text, or a file's path).
        diff: The ``gh pr diff`` output (text or a file's path); or ``data["diff"]``.

    Raises:
        AgentError: The JSON is not a pull request (naming the field).
    """
    if isinstance(data, Path):
        data = data.read_text(encoding="utf-8")
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except json.JSONDecodeError as exc:
            msg = f"pull request JSON: {exc}"
            raise AgentError(msg) from None
    if not isinstance(data, Mapping):
        msg = "pull request JSON: expected an object with title, body, files, ..."
        raise AgentError(msg)
    if isinstance(diff, Path):
        diff = diff.read_text(encoding="utf-8")
    fields = {
        k: data[k] for k in ("title", "body", "additions", "deletions", "number") if k in data
    }
    fields["body"] = fields.get("body") or ""
    fields["files"] = [
        {k: f[k] for k in ("path", "additions", "deletions") if k in f}
        for f in data.get("files") or []
        if isinstance(f, Mapping)
    ]
    fields["diff"] = diff if diff is not None else str(data.get("diff") or "")
    try:
        return msgspec.convert(fields, PullRequest)
    except msgspec.ValidationError as exc:
        msg = f"pull request JSON: {exc}"
        raise AgentError(msg) from None


_FILE_HEADER = re.compile(r"^diff --git a/(.+?) b/(.+)$", re.MULTILINE)


def split_diff(diff: str) -> dict[str, str]:
    """A unified diff cut per file: path → that file's part (its header included)."""
    starts = list(_FILE_HEADER.finditer(diff))
    if not starts:
        return {"(diff)": diff} if diff.strip() else {}
    parts: dict[str, str] = {}
    for index, match in enumerate(starts):
        end = starts[index + 1].start() if index + 1 < len(starts) else len(diff)
        parts[match.group(2)] = diff[match.start() : end]
    return parts


def _pieces(text: str, limit: int) -> list[str]:
    """``text`` cut at hunks (``@@``), then at lines, into pieces of at most ``limit`` tokens."""
    if estimate_tokens(text) <= limit:
        return [text]
    hunks = [h for h in re.split(r"(?m)^(?=@@ )", text) if h]
    if len(hunks) > 1:
        return [piece for hunk in hunks for piece in _pieces(hunk, limit)]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        cost = estimate_tokens(line)
        if current and size + cost > limit:
            pieces.append("".join(current))
            current, size = [], 0
        current.append(line[: limit * 4])
        size += cost
    if current:
        pieces.append("".join(current))
    return pieces


def chunk_diff(files: Mapping[str, str], limit_tokens: int) -> list[str]:
    """The files' diffs packed into chunks of at most ``limit_tokens`` tokens each, in order."""
    limit = max(limit_tokens, 64)
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for path, text in files.items():
        for part in _pieces(text, limit):
            piece = part
            if part is not text and not part.startswith("diff --git"):
                piece = f"(continued: {path})\n{part}"
            cost = estimate_tokens(piece)
            if current and size + cost > limit:
                chunks.append("".join(current))
                current, size = [], 0
            current.append(piece)
            size += cost
    if current:
        chunks.append("".join(current))
    return chunks


def _chunk_budget(agents: Agents, spec: AgentSpec, pr: PullRequest) -> int:
    """The diff's tokens per message for ``spec``: its prompt budget less what goes with them.

    The budget is the agent's own (:func:`prompt_budget` of the smallest known window of
    its models, a chain's included); what goes with a chunk is its system prompt and the
    review prompt's text (title, description, files).
    """
    context = agents.backend.context_tokens(spec) or _DEFAULT_CONTEXT
    around = estimate_tokens(system_prompt(spec)) + estimate_tokens(review_prompt(pr, "", 0, 2))
    return prompt_budget(context, spec.max_tokens) - around - _MARGIN


def _text_budget(agents: Agents, spec: AgentSpec) -> int:
    """The tokens one message to ``spec`` may take: its prompt budget less its system prompt."""
    context = agents.backend.context_tokens(spec) or _DEFAULT_CONTEXT
    return prompt_budget(context, spec.max_tokens) - estimate_tokens(system_prompt(spec)) - _MARGIN


_CONDENSE_ROUNDS = 3
"""Rounds of condensing before the reviews are cut to fit instead."""


async def _condensed(  # noqa: PLR0917 - the review's parts, passed on
    agents: Agents,
    summarizer: str,
    pr: PullRequest,
    sections: list[str],
    room: int,
    run_id: str,
) -> list[str]:
    """``sections`` (one per review) made to fit ``room`` tokens together.

    While they do not, they are packed into groups that each fit, and the summarizer
    condenses each group (keeping every finding with its file and severity). A section
    too long for a group on its own is cut first, marked; after
    :data:`_CONDENSE_ROUNDS` rounds what is left is cut to fit.
    """

    def size(parts: list[str]) -> int:
        return estimate_tokens("\n\n".join(parts))

    ask = (
        f"Condense these reviews of the pull request '{pr.title}' for a later summary: "
        "keep every finding with its file, line and severity, drop the rest.\n\n"
    )
    group_room = room - estimate_tokens(ask)
    for _ in range(_CONDENSE_ROUNDS):
        if size(sections) <= room or group_room <= 0:
            break
        groups: list[list[str]] = [[]]
        for section in (_cut(s, group_room) for s in sections):
            if groups[-1] and size([*groups[-1], section]) > group_room:
                groups.append([])
            groups[-1].append(section)
        condensed = []
        for number, group in enumerate(groups, 1):
            reply = await agents.respond_async(
                summarizer, ask + "\n\n".join(group), sender="pull-request", run_id=run_id
            )
            condensed.append(f"### Condensed reviews, part {number}\n{reply.content}")
        sections = condensed
    if size(sections) > room:  # still too long: an equal share of the room each
        share = max(room // max(len(sections), 1) - 2, 1)
        sections = [_cut(s, share) for s in sections]
    return sections


def _cut(text: str, tokens: int) -> str:
    """``text`` cut to about ``tokens`` tokens, marked where it was cut."""
    if estimate_tokens(text) <= tokens:
        return text
    mark = "\n[... cut to fit the summarizer's context window]"
    keep = max((tokens - estimate_tokens(mark) - 1) * 4, 0)
    return text[:keep] + mark


def review_prompt(pr: PullRequest, chunk: str, index: int, total: int) -> str:
    """What a reviewer is sent for one chunk of the diff (part ``index`` of ``total``)."""
    files = ", ".join(f.path for f in pr.files) or "see the diff"
    part = f" (part {index + 1} of {total})" if total > 1 else ""
    body = pr.body.strip() or "(no description)"
    return (
        f"Review this pull request{part} from your role's point of view. List concrete "
        f"findings (file, line, severity, fix); say 'no findings' if there are none.\n\n"
        f"Title: {pr.title}\nDescription: {body}\nFiles: {files} "
        f"(+{pr.additions} -{pr.deletions})\n\nDiff:\n{chunk}"
    )


def ensure_reviewers(
    agents: Agents,
    *,
    model: str | Sequence[str] | None = None,
    templates: Mapping[str, Template] | None = None,
) -> list[str]:
    """Define the default reviewers and summarizer that are not defined yet; their names.

    Args:
        agents: Where to define them.
        model: Their model (default: each template's first preferred model the catalog
            knows, checked like any template's).
        templates: Templates by name (default: the built-in ones).
    """
    found = templates or BUILT_IN_TEMPLATES
    wanted = {**DEFAULT_REVIEWERS, DEFAULT_SUMMARIZER: "summarizer"}
    known = set(agents.names())
    for name, template in wanted.items():
        if name in known:
            continue
        backend = agents.backend
        spec = found[template].create(
            name,
            model=model,
            catalog=backend.catalog,
            known_models=backend.known_models if backend.known_models else None,
        )
        agents.define(spec)
    return list(DEFAULT_REVIEWERS)


async def review_pull_request_async(
    agents: Agents,
    pr: PullRequest,
    *,
    reviewers: Sequence[str] = tuple(DEFAULT_REVIEWERS),
    summarizer: str = DEFAULT_SUMMARIZER,
    run_id: str = "",
) -> ReviewResult:
    """Review ``pr`` with ``reviewers`` in parallel, then have ``summarizer`` sum up.

    Raises:
        AgentNotFoundError: A reviewer or the summarizer is not defined.
        AskError: A model call failed.
    """
    if not reviewers:
        msg = "a review needs at least one reviewer"
        raise AgentError(msg)
    states = {name: await agents.get_async(name) for name in (*reviewers, summarizer)}
    files = split_diff(pr.diff)

    async def review(name: str) -> Review:
        spec = states[name].spec
        chunks = chunk_diff(files, _chunk_budget(agents, spec, pr)) or [""]
        replies = []
        for index, chunk in enumerate(chunks):
            reply = await agents.respond_async(
                name,
                review_prompt(pr, chunk, index, len(chunks)),
                sender="pull-request",
                run_id=run_id,
            )
            replies.append(reply)
        content = "\n\n".join(
            (f"Part {i + 1}:\n" if len(replies) > 1 else "") + r.content
            for i, r in enumerate(replies)
        )
        costs = [r.cost_usd for r in replies]
        return Review(
            reviewer=name,
            role=spec.role.name,
            content=content,
            chunks=len(chunks),
            model=replies[-1].model,
            cost_usd=None if None in costs else sum(c or 0.0 for c in costs),
        )

    reviews = await asyncio.gather(*(review(name) for name in reviewers))
    sections = [f"### {r.reviewer} ({r.role})\n{r.content}" for r in reviews]
    ask = (
        f"Summarise these reviews of the pull request '{pr.title}': the most important "
        "findings first, then agreements and disagreements.\n\n"
    )
    budget = _text_budget(agents, states[summarizer].spec)
    sections = await _condensed(
        agents, summarizer, pr, sections, budget - estimate_tokens(ask), run_id
    )
    summary = await agents.respond_async(
        summarizer, ask + "\n\n".join(sections), sender="pull-request", run_id=run_id
    )
    return ReviewResult(
        title=pr.title,
        reviews=tuple(reviews),
        summary=summary.content,
        summarizer=summarizer,
        files=len(files),
    )


def review_pull_request(
    agents: Agents,
    pr: PullRequest,
    *,
    reviewers: Sequence[str] = tuple(DEFAULT_REVIEWERS),
    summarizer: str = DEFAULT_SUMMARIZER,
    run_id: str = "",
) -> ReviewResult:
    """:func:`review_pull_request_async` for plain threads."""
    check_may_block("review_pull_request()", "`await review_pull_request_async(...)`")
    work = review_pull_request_async(
        agents, pr, reviewers=reviewers, summarizer=summarizer, run_id=run_id
    )
    result: ReviewResult = agents.system.bridge.run(work)
    return result
