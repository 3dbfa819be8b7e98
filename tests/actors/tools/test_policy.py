"""Policies: deny wins, allow lists, argument constraints, approvals, rate limits."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import pytest
from pydantic import BaseModel, field_validator

from actors.tools import Decision, Policy, RateLimit, Rule, Scope, tool


@tool(tags={"files"})
def write_file(path: str, text: str) -> None:
    """Write a file."""


@tool(tags={"files"}, read_only=True)
def read_file(path: str) -> str:
    """Read a file."""
    return ""


@tool(needs_approval=True)
def deploy(env: str) -> None:
    """Deploy."""


HERE = Scope(reactor="Build", step="agent", identity="bot")


def test_no_rules_allow_everything_but_approval_marked_tools() -> None:
    """An empty policy restricts nothing, except tools marked needs_approval."""
    policy = Policy()
    assert policy.check(write_file, {"path": "a", "text": ""}, HERE).decision is Decision.ALLOW
    assert policy.check(deploy, {"env": "prod"}, HERE).decision is Decision.APPROVAL


def test_deny_wins_over_allow_and_names_the_rule() -> None:
    """A tool denied by one rule is denied even when another allows it."""
    policy = Policy([Rule(allow=["tag:files"]), Rule(deny=["write_*"], name="no writes")])
    verdict = policy.check(write_file, {}, HERE)
    assert verdict.decision is Decision.DENY
    assert "'no writes'" in verdict.reason
    assert policy.check(read_file, {}, HERE).decision is Decision.ALLOW


def test_allow_lists_restrict_and_scopes_select_rules() -> None:
    """With an allow list in force, other tools are denied; others' rules do not apply."""
    policy = Policy(
        [Rule(allow=["read_file"], identity="bot"), Rule(deny=["read_file"], identity="guest")]
    )
    assert policy.check(write_file, {}, HERE).decision is Decision.DENY
    assert policy.check(read_file, {}, HERE).decision is Decision.ALLOW
    guest = Scope(reactor="Build", step="agent", identity="guest")
    assert policy.check(read_file, {}, guest).decision is Decision.DENY
    assert policy.check(write_file, {}, guest).decision is Decision.ALLOW


def test_predicate_constraint_keeps_paths_under_a_folder() -> None:
    """A predicate returning a reason refuses the call with that reason."""

    def under_workspace(arguments: Mapping[str, Any]) -> str | None:
        path = PurePosixPath(arguments["path"])
        if path.is_absolute() or ".." in path.parts:
            return f"path {arguments['path']!r} is outside the workspace"
        return None

    policy = Policy([Rule(constraints={"tag:files": under_workspace})])
    assert policy.check(read_file, {"path": "docs/a.md"}, HERE).decision is Decision.ALLOW
    verdict = policy.check(read_file, {"path": "../etc/passwd"}, HERE)
    assert verdict.decision is Decision.DENY
    assert "outside the workspace" in verdict.reason


def test_pydantic_constraint_names_the_argument() -> None:
    """A pydantic model as a constraint: its validation error names the argument."""

    class SmallWrites(BaseModel):
        path: str
        text: str

        @field_validator("text")
        @classmethod
        def short(cls, value: str) -> str:
            if len(value) > 5:
                raise ValueError("at most 5 characters")
            return value

    policy = Policy([Rule(constraints={"write_file": SmallWrites})])
    assert policy.check(write_file, {"path": "a", "text": "ok"}, HERE).decision is Decision.ALLOW
    verdict = policy.check(write_file, {"path": "a", "text": "far too long"}, HERE)
    assert verdict.decision is Decision.DENY
    assert "'text'" in verdict.reason


def test_rules_can_require_approval() -> None:
    """A rule's approve list makes a tool need a human for that scope only."""
    policy = Policy([Rule(approve=["write_file"], step="agent")])
    assert policy.check(write_file, {}, HERE).decision is Decision.APPROVAL
    other = Scope(reactor="Build", step="other", identity="bot")
    assert policy.check(write_file, {}, other).decision is Decision.ALLOW


def test_rate_limit_is_a_sliding_window() -> None:
    """Two calls per 10 s: the third is refused until the first leaves the window."""
    now = [100.0]
    policy = Policy(
        [Rule(rate_limits={"read_file": RateLimit(calls=2, per_s=10)})], clock=lambda: now[0]
    )
    assert policy.check(read_file, {}, HERE).decision is Decision.ALLOW
    now[0] = 104.0
    assert policy.check(read_file, {}, HERE).decision is Decision.ALLOW
    refused = policy.check(read_file, {}, HERE)
    assert refused.decision is Decision.RATE_LIMITED
    assert "try again in 6.0 s" in refused.reason
    now[0] = 110.5
    assert policy.check(read_file, {}, HERE).decision is Decision.ALLOW


def test_bad_rate_limit_is_refused() -> None:
    """A rate limit must allow something."""
    with pytest.raises(ValueError, match="positive"):
        RateLimit(calls=0, per_s=1)


def test_an_approved_call_still_meets_the_other_rules() -> None:
    """Approval skips only the approval step: denials and rate limits still apply."""
    now = [0.0]
    limit = {"deploy": RateLimit(calls=1, per_s=60)}
    policy = Policy([Rule(rate_limits=limit)], clock=lambda: now[0])
    assert policy.check(deploy, {}, HERE, approved=True).decision is Decision.ALLOW
    assert policy.check(deploy, {}, HERE, approved=True).decision is Decision.RATE_LIMITED
    denying = Policy([Rule(deny=["deploy"])])
    assert denying.check(deploy, {}, HERE, approved=True).decision is Decision.DENY
    assert Policy().check(deploy, {}, HERE, approved=True).decision is Decision.ALLOW
