"""``reactor demo``: a reactor that asks several models at once, end to end.

:class:`Briefing` asks three analysts about a topic in parallel (three ``ask`` steps
with no dependency between them), has an editor combine their notes (a ``select`` step
that needs all three: the Selector chooses the editor's model under the ``best`` policy
among every chat model found, and the report says which and why), and reports. The
historian is a ``fallback`` step: the chosen model, and whatever the Selector picks
if that one fails (the report names the link that answered). The verdict is a
``consensus`` step: three models, chosen for diversity among those found, answer the
same question at once; their answers are clustered and the report gives the
representative answer with its confidence (a statistic of agreement, not a model's
say-so) and who agreed.
``reactor demo`` runs it exactly as
``reactor run reactor.cli._demo:Briefing --input topic=...`` would: on a real LLM server
when discovery finds one on the default local ports (or one is configured), else on the
built-in fake servers, and it says which; then it shows the run as recorded in the
journal (``reactor runs show``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

from actors.llm import Completion
from actors.orchestration import ConsensusResult, FallbackResult
from dsl import Input, Reactor, ask, consensus, fallback, select, step
from reactor.app import new_run_id

__all__ = ["Briefing", "run_demo"]

DEFAULT_TOPIC = "running many small LLMs instead of one large one"


class Briefing(Reactor, returns="report"):
    """Three analysts look at a topic in parallel; an editor combines their notes."""

    topic = Input(str, description="what to brief on")
    model = Input(str, default="", description="the model to ask (default: the first found)")

    @step
    def question(topic: str) -> str:
        return f"Consider {topic}."

    optimist = ask(
        "{question} In two sentences, give the strongest case for it.",
        model="{model}",
        max_tokens=160,
        timeout=120,
    )
    sceptic = ask(
        "{question} In two sentences, give the strongest case against it.",
        model="{model}",
        max_tokens=160,
        timeout=120,
    )
    historian = fallback(
        "{question} In two sentences, name one historical parallel and its lesson.",
        chain=["{model}", "auto"],
        name="historian",
        max_tokens=160,
        timeout=120,
    )
    verdict = consensus(
        "{question} In one sentence: on balance, is it worth doing?",
        output="text",
        count=3,
        threshold=0.3,
        max_tokens=80,
        member_timeout_s=60,
        quorum=2,
        timeout=120,
    )
    editor = select(
        "Write a three-sentence brief on {topic} from these notes.\n"
        "For: {optimist.content}\nAgainst: {sceptic.content}\n"
        "Precedent: {historian.content}",
        policy="best",
        task_type="analysis",
        max_tokens=240,
        timeout=180,
    )

    @step
    def report(
        *,
        topic: str,
        editor: Completion,
        optimist: Completion,
        sceptic: Completion,
        historian: FallbackResult,
        verdict: ConsensusResult,
    ) -> dict[str, Any]:
        notes = (optimist, sceptic, historian.completion, editor)
        return {
            "topic": topic,
            "brief": editor.content,
            "notes": {
                "for": optimist.content,
                "against": sceptic.content,
                "precedent": historian.content,
            },
            "model": editor.model,
            "host": editor.host,
            "editor_chosen_because": editor.extras.get("selection", {}).get("reason", ""),
            "historian_answered_by": historian.link,
            "verdict": {
                "answer": verdict.text,
                "confidence": verdict.confidence,
                "low_consensus": verdict.low_consensus,
                "agreed": [m.member for m in verdict.members if m.agrees],
                "members": [m.member for m in verdict.members],
            },
            "tokens": sum(c.usage.input_tokens + c.usage.output_tokens for c in notes),
        }


def run_demo(
    *,
    db_path: Path | None = None,
    topic: str = DEFAULT_TOPIC,
    progress: bool = True,
    log_level: str = "error",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run :class:`Briefing` with live progress, then show the recorded run."""
    from reactor.cli._runs import run_reactor, run_show  # noqa: PLC0415 - the CLI's machinery

    out, err = out or sys.stdout, err or sys.stderr
    run_id = new_run_id()
    err.write(f"reactor demo: running Briefing (run {run_id})\n")
    status = run_reactor(
        "reactor.cli._demo:Briefing",
        inputs=[f"topic={topic}"],
        db=db_path,
        run_id=run_id,
        progress=progress,
        log_level=log_level,
        out=out,
        err=err,
    )
    if status == 0:
        out.write(f"\nthe run as journaled (reactor runs show {run_id}):\n")
        out.flush()
        run_show(run_id, db=db_path, as_json=False, out=out, err=err)
    return status
