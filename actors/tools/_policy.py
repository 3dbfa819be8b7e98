"""Permissions: who may call which tool, with which arguments, how often, and with whose approval.

A :class:`Policy` is an ordered set of :class:`Rule` s. A rule applies to a call when its
scope (``reactor``, ``step``, ``identity``: ``fnmatch`` globs, ``*`` by default) matches
the caller's :class:`Scope`. Over the rules that apply, in this order:

1. **deny** wins: a tool any applying rule denies (by name, glob or ``tag:x``) is denied;
2. **allow** lists: if any applying rule has one, the tool must be on at least one;
3. **constraints**: every applying constraint for the tool must accept the arguments
   (a predicate returning ``True``/``None`` to accept, ``False`` or a reason to refuse,
   or a pydantic model the arguments must validate against);
4. **approval**: the tool is marked ``needs_approval``, or an applying rule lists it
   under ``approve``;
5. **rate limits**: at most ``calls`` per ``per_s`` seconds per tool (and rule), in a
   sliding window; the call that would exceed it is refused as ``rate_limited`` (the
   model may try later), without spending the window.

No rules at all allows everything: a policy restricts, it does not have to be written
to start. Decisions are pure given the clock; the rate windows are the only state, and
the :class:`~actors.tools.ToolRunner` consults them one call at a time.
"""

from __future__ import annotations

import collections
import enum
import fnmatch
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pydantic

from actors.tools._registry import Tool, matches

__all__ = ["Decision", "Policy", "RateLimit", "Rule", "Scope", "Verdict"]

Constraint = Callable[[Mapping[str, Any]], bool | str | None] | type[pydantic.BaseModel]
"""A check of a call's arguments: a predicate, or a pydantic model they must fit."""


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``calls`` calls per ``per_s`` seconds."""

    calls: int
    per_s: float

    def __post_init__(self) -> None:
        if self.calls < 1 or not self.per_s > 0:
            msg = f"RateLimit(calls={self.calls!r}, per_s={self.per_s!r}): both must be positive"
            raise ValueError(msg)


def _glob(value: str, pattern: str) -> bool:
    """``fnmatch``, with the common ``*`` decided without it (it is on every call's path)."""
    return pattern in ("*", value) or fnmatch.fnmatchcase(value, pattern)


@dataclass(frozen=True, slots=True)
class Scope:
    """Who is calling: the reactor, the step, and an identity (an agent, a user)."""

    reactor: str = ""
    step: str = ""
    identity: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """One rule of a :class:`Policy` (see the module docstring for how rules combine).

    Attributes:
        allow: Tools allowed (names, globs, ``tag:x``); empty: this rule allows nothing
            in particular (it restricts nothing).
        deny: Tools denied.
        approve: Tools whose calls a human must approve.
        reactor: The reactors it applies to (a glob).
        step: The steps it applies to (a glob).
        identity: The identities it applies to (a glob).
        constraints: Tool pattern to argument check.
        rate_limits: Tool pattern to rate limit.
        name: What denials cite (defaults to the rule's position).
    """

    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    approve: Sequence[str] = ()
    reactor: str = "*"
    step: str = "*"
    identity: str = "*"
    constraints: Mapping[str, Constraint] = field(default_factory=dict)
    rate_limits: Mapping[str, RateLimit] = field(default_factory=dict)
    name: str = ""

    def applies(self, scope: Scope) -> bool:
        """Whether the rule's scope covers the caller."""
        return (
            _glob(scope.reactor, self.reactor)
            and _glob(scope.step, self.step)
            and _glob(scope.identity, self.identity)
        )


class Decision(enum.StrEnum):
    """What a policy says about one call."""

    ALLOW = "allow"
    DENY = "deny"
    APPROVAL = "approval"
    RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A decision and why (the reason is what the model and the audit log see)."""

    decision: Decision
    reason: str = ""


_ALLOW = Verdict(Decision.ALLOW)


class Policy:
    """Rules over tool calls, and the rate windows they keep (see the module docstring).

    Args:
        rules: The rules, in order (the order names them in denials).
        clock: Seconds, monotonic (a test passes a manual clock).
    """

    def __init__(
        self, rules: Sequence[Rule] = (), *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rules = tuple(rules)
        self._clock = clock
        self._windows: dict[tuple[int, str, str], collections.deque[float]] = {}

    def _label(self, index: int) -> str:
        rule = self.rules[index]
        return f"rule {rule.name!r}" if rule.name else f"rule #{index + 1}"

    def check(
        self,
        tool: Tool,
        arguments: Mapping[str, Any],
        scope: Scope,
        *,
        count: bool = True,
        approved: bool = False,
    ) -> Verdict:
        """The verdict on calling ``tool`` with ``arguments`` as ``scope``.

        Args:
            tool: The tool.
            arguments: The validated arguments.
            scope: Who is calling.
            count: Spend the rate window when the call is allowed (``False``: only look).
            approved: A human approved this call: skip step 4, keep the others (a call
                approved yesterday is still denied by today's rules and rate limits).
        """
        if not self.rules:
            if tool.meta.needs_approval and not approved:
                return Verdict(Decision.APPROVAL, "the tool needs approval")
            return _ALLOW
        applying = [(i, r) for i, r in enumerate(self.rules) if r.applies(scope)]
        refusal = self._refusal(tool, arguments, applying)
        if refusal is not None:
            return Verdict(Decision.DENY, refusal)
        if not approved and (
            tool.meta.needs_approval
            or any(matches(tool, p) for _, r in applying for p in r.approve)
        ):
            return Verdict(Decision.APPROVAL, "the call needs a human's approval")
        return self._rate(tool, scope, applying, count=count)

    def _refusal(
        self, tool: Tool, arguments: Mapping[str, Any], applying: list[tuple[int, Rule]]
    ) -> str | None:
        """Why steps 1 to 3 deny the call, or ``None``."""
        for i, rule in applying:
            if any(matches(tool, p) for p in rule.deny):
                return f"{self._label(i)} denies {tool.name!r}"
        allow_lists = [(i, r) for i, r in applying if r.allow]
        if allow_lists and not any(any(matches(tool, p) for p in r.allow) for _, r in allow_lists):
            who = ", ".join(self._label(i) for i, _ in allow_lists)
            return f"{tool.name!r} is not on the allow list ({who})"
        for i, rule in applying:
            for pattern, constraint in rule.constraints.items():
                if matches(tool, pattern):
                    problem = _constraint_problem(constraint, arguments)
                    if problem is not None:
                        return f"{self._label(i)}: {problem}"
        return None

    def _rate(
        self, tool: Tool, scope: Scope, applying: list[tuple[int, Rule]], *, count: bool
    ) -> Verdict:
        now = self._clock()
        spend: list[collections.deque[float]] = []
        for i, rule in applying:
            for pattern, limit in rule.rate_limits.items():
                if not matches(tool, pattern):
                    continue
                window = self._windows.setdefault((i, pattern, tool.name), collections.deque())
                while window and window[0] <= now - limit.per_s:
                    window.popleft()
                if len(window) >= limit.calls:
                    wait = window[0] + limit.per_s - now
                    return Verdict(
                        Decision.RATE_LIMITED,
                        f"{self._label(i)} allows {tool.name!r} {limit.calls} time(s) per "
                        f"{limit.per_s:g} s; try again in {wait:.1f} s",
                    )
                spend.append(window)
        if count:
            for window in spend:
                window.append(now)
        return _ALLOW


def _constraint_problem(constraint: Constraint, arguments: Mapping[str, Any]) -> str | None:
    """``None`` when the arguments pass, else why not."""
    if isinstance(constraint, type) and issubclass(constraint, pydantic.BaseModel):
        try:
            constraint.model_validate(dict(arguments))
        except pydantic.ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"]) or "(arguments)"
            return f"argument {where!r} is not allowed: {first['msg']}"
        return None
    check: Callable[[Mapping[str, Any]], bool | str | None] = constraint  # type: ignore[assignment]
    try:
        verdict = check(arguments)
    except Exception as exc:  # noqa: BLE001 - a failing check refuses, it does not crash
        return f"the argument check failed: {type(exc).__name__}: {exc}"
    if verdict is True or verdict is None:
        return None
    if verdict is False:
        name = getattr(constraint, "__name__", "an argument constraint")
        return f"the arguments break {name}"
    return str(verdict)
