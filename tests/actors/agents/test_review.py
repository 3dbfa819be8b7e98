"""PR review: the GitHub CLI's JSON shapes, per-file splitting, parallel reviewers, the summary."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actors.agents import (
    DEFAULT_REVIEWERS,
    AgentError,
    ReviewResult,
    chunk_diff,
    ensure_reviewers,
    estimate_tokens,
    pull_request,
    review_pull_request,
    split_diff,
)
from dsl import step
from reactor.app import review_reactor
from reactor.cli import main
from tests.actors.agents.conftest import World, peer
from tests.support.pr import PR_DIFF, PR_JSON


def test_the_gh_pr_view_json_and_diff_make_a_pull_request(tmp_path: Path) -> None:
    """Title, body, files with their counts, and the diff; from text, a file or a dict."""
    pr = pull_request(json.dumps(PR_JSON), PR_DIFF)
    assert pr.title == "Add a login rate limit"
    assert [(f.path, f.additions) for f in pr.files] == [
        ("app/auth.py", 12),
        ("docs/security.md", 2),
    ]
    assert (pr.additions, pr.deletions) == (14, 2)
    (tmp_path / "pr.json").write_text(json.dumps({**PR_JSON, "body": None}))
    (tmp_path / "pr.diff").write_text(PR_DIFF)
    from_files = pull_request(tmp_path / "pr.json", tmp_path / "pr.diff")
    assert from_files.body == ""
    assert from_files.diff == PR_DIFF
    with pytest.raises(AgentError, match="title"):
        pull_request({"body": "no title"})
    with pytest.raises(AgentError, match="JSON"):
        pull_request("{not json")


def test_a_diff_is_split_per_file_and_packed_to_fit_a_context() -> None:
    """Each file is its own part; a file too large is cut at hunks, then lines."""
    parts = split_diff(PR_DIFF)
    assert list(parts) == ["app/auth.py", "docs/security.md"]
    assert all(p.startswith("diff --git") for p in parts.values())
    assert chunk_diff(parts, 10_000) == ["".join(parts.values())]
    big = {
        "big.py": "diff --git a/big.py b/big.py\n"
        + "".join(f"@@ -{i},1 +{i},1 @@\n" + "+line of code here\n" * 40 for i in range(6))
    }
    chunks = chunk_diff(big, 300)
    assert len(chunks) > 2
    assert all(len(c) // 4 + 1 <= 300 + 20 for c in chunks)
    assert "".join(chunks).count("+line of code here") == 240
    assert chunks[1].startswith("(continued: big.py)")


def test_reviewers_review_in_parallel_and_a_summary_follows(world: World) -> None:
    """Four specialists review (each with its role), then the summarizer sees every review."""
    names = ensure_reviewers(world.agents, model="llama3.2")
    assert names == list(DEFAULT_REVIEWERS)
    result = review_pull_request(world.agents, pull_request(PR_JSON, PR_DIFF))
    assert [r.reviewer for r in result.reviews] == list(DEFAULT_REVIEWERS)
    assert [r.role for r in result.reviews] == [
        "senior developer",
        "security reviewer",
        "performance reviewer",
        "UX reviewer",
    ]
    assert all(r.chunks == 1 and r.model == "local/llama3.2" for r in result.reviews)
    prompts = [c.body["messages"] for c in world.server.calls if c.path.endswith("/completions")]
    review_prompts = [p for p in prompts if "Review this pull request" in p[-1]["content"]]
    assert len(review_prompts) == 4
    assert all("app/auth.py" in p[-1]["content"] for p in review_prompts)
    summary_prompt = prompts[-1][-1]["content"]
    assert all(f"### {name}" in summary_prompt for name in DEFAULT_REVIEWERS)
    assert result.summary
    assert "## Summary (pr-summarizer)" in result.to_text()


def test_a_small_context_splits_the_diff_for_that_reviewer_only(world: World) -> None:
    """qwen2.5 has a 2048-token window: its reviewer gets more, smaller parts."""
    world.agents.define(peer("small", model="qwen2.5"))
    world.agents.define(peer("large", model="llama3.2"))
    world.agents.define(peer("sum"))
    huge = PR_DIFF + "".join(
        f"diff --git a/f{i}.py b/f{i}.py\n@@ -1 +1,80 @@\n" + "+x = 1  # a line\n" * 80
        for i in range(6)
    )
    result = review_pull_request(
        world.agents, pull_request(PR_JSON, huge), reviewers=["small", "large"], summarizer="sum"
    )
    chunks = {r.reviewer: r.chunks for r in result.reviews}
    assert chunks["small"] > chunks["large"] >= 1


def test_the_review_reactor_runs_on_the_engine_and_can_be_extended(world: World) -> None:
    """The reactor gives the same result shape; a subclass adds a step."""
    ensure_reviewers(world.agents, model="llama3.2")

    def verdict(result: ReviewResult) -> dict[str, object]:
        return {"reviews": [r.reviewer for r in result.reviews], "chunks": result.reviews[0].chunks}

    extended = review_reactor(
        reviewers=["senior-developer", "security-reviewer"],
        steps={"verdict": step(verdict)},
        returns="verdict",
    )
    out = world.engine.run(extended, {"pr": PR_JSON, "diff": PR_DIFF, "chunk_tokens": 80})
    assert out["reviews"] == ["senior-developer", "security-reviewer"]
    assert out["chunks"] >= 2
    assert "verdict" in extended.to_mermaid()
    plain = world.engine.run(review_reactor(), {"pr": PR_JSON, "diff": PR_DIFF})
    assert [r.reviewer for r in plain.reviews] == list(DEFAULT_REVIEWERS)


def test_reactor_review_prints_every_review_and_the_summary(
    world: World, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``reactor review --pr-json FILE --diff FILE`` on the configured fake server."""
    (tmp_path / "pr.json").write_text(json.dumps(PR_JSON))
    (tmp_path / "pr.diff").write_text(PR_DIFF)
    db = tmp_path / "cli.db"
    argv = ["review", "--pr-json", str(tmp_path / "pr.json"), "--diff", str(tmp_path / "pr.diff")]
    argv += ["--config", str(world.config), "--db", str(db), "--model", "llama3.2"]
    assert main([*argv, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [r["reviewer"] for r in data["reviews"]] == list(DEFAULT_REVIEWERS)
    assert data["summarizer"] == "pr-summarizer"
    assert main(argv) == 0
    assert "## security-reviewer (security reviewer)" in capsys.readouterr().out
    (tmp_path / "bad.json").write_text("[1, 2]")
    assert main(["review", "--pr-json", str(tmp_path / "bad.json"), "--db", str(db)]) == 2


def test_every_review_request_fits_the_reviewers_context_window(world: World) -> None:
    """Chunks leave room for the prompt and the answer, in every model of a chain.

    The agent's own rule (80% of the smallest known window, less the answer's tokens)
    bounds each request: a chain with qwen2.5 (2048) is chunked for 2048, not for the
    8192 assumed of an unknown model, and a llama3.2 reviewer's chunks leave room for
    its system prompt, the PR's title, description and file list.
    """
    world.agents.define(peer("chained", model=("qwen2.5", "llama3.2")))
    world.agents.define(peer("large", model="llama3.2"))
    world.agents.define(peer("sum"))
    huge = PR_DIFF + "".join(
        f"diff --git a/f{i}.py b/f{i}.py\n@@ -1 +1,400 @@\n" + "+x = 1  # a line\n" * 400
        for i in range(8)
    )
    data = {**PR_JSON, "body": "Why: " + "the limiter protects the login. " * 60}
    result = review_pull_request(
        world.agents, pull_request(data, huge), reviewers=["chained", "large"], summarizer="sum"
    )
    assert {r.reviewer: r.chunks > 1 for r in result.reviews} == {"chained": True, "large": True}
    limits = {"chained": int(2048 * 0.8) - 512, "large": int(8192 * 0.8) - 512}
    calls = [c.body["messages"] for c in world.server.calls if c.path.endswith("/completions")]
    checked = 0
    for messages in calls:
        if not messages[-1]["content"].startswith("[pull-request] Review this"):
            continue
        name = messages[0]["content"].removeprefix("You are ").rstrip(".")
        assert sum(estimate_tokens(m["content"]) for m in messages) <= limits[name], name
        checked += 1
    assert checked == sum(r.chunks for r in result.reviews)


def test_reviews_too_long_for_the_summarizer_are_condensed_in_parts_that_fit(
    world: World,
) -> None:
    """qwen2.5 (2048 tokens) sums up three long reviews: condensed first, every call fits."""
    for name in ("r1", "r2", "r3"):
        world.agents.define(peer(name))
    world.agents.define(peer("brief", model="qwen2.5"))
    world.server.script(*[f"finding {i}: " + "z" * 3000 for i in range(3)])
    world.server.script("C1", "C2", "C3", "the summary")
    result = review_pull_request(
        world.agents,
        pull_request(PR_JSON, PR_DIFF),
        reviewers=["r1", "r2", "r3"],
        summarizer="brief",
    )
    assert result.summary == "the summary"
    calls = [c.body["messages"] for c in world.server.calls if c.path.endswith("/completions")]
    mine = [m for m in calls if m[0]["content"] == "You are brief."]
    assert len(mine) == 4  # three groups condensed, then the summary
    for messages in mine:
        assert sum(estimate_tokens(m["content"]) for m in messages) <= int(2048 * 0.8) - 512
    assert "Condensed reviews, part 3" in mine[-1][-1]["content"]
