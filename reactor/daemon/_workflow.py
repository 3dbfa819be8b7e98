"""Workflows: ``name:type:prompt`` steps run as a reactor (journaled, resumable, traced).

A workflow's steps are tasks (:mod:`reactor.daemon._tasks`) whose prompts may name
earlier steps' outputs as ``{{name}}`` or ``{{stepN}}`` (N counts from 1). Those
references are the dependencies: steps that reference nothing run at once, in
parallel; a step runs when the steps it names are done. Substitution is one pass over
the prompt as written: an output that itself contains ``{{x}}`` is pasted as it is.

Each workflow becomes a :class:`~dsl.Reactor` class (shown as ``workflow_<hash>``) whose
qualified name encodes its definition (``wf_<compressed spec>``) in this module:
:func:`dsl.find` rebuilds the same class
from the journal's locator in any process (module ``__getattr__``), so a workflow run
resumes like any other. Its steps run on the daemon's task runner, installed with
:func:`install`; its last step, ``workflow_result``, collects every step's outcome.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import inspect
import json
import re
import types
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dsl import Reactor, step
from reactor.daemon._errors import ApiError
from reactor.daemon._messages import Agent, Task, WorkflowStep

__all__ = ["RESULT_STEP", "WorkflowServices", "install", "parse_steps", "workflow_reactor"]

RESULT_STEP = "workflow_result"
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PREFIX = "wf_"


@dataclass(slots=True)
class WorkflowServices:
    """What workflow steps run on: the task runner and the agents (set by the daemon)."""

    runner: Any = None
    agent: Callable[[str], Agent] | None = None


SERVICES = WorkflowServices()


def install(runner: Any, agent: Callable[[str], Agent]) -> None:
    """Let workflow steps run tasks on ``runner`` for the agents ``agent(id)`` finds."""
    SERVICES.runner = runner
    SERVICES.agent = agent


def parse_steps(raw: Sequence[WorkflowStep | str]) -> list[WorkflowStep]:
    """Steps from objects or ``name:type:prompt`` strings, checked.

    Raises:
        ApiError: ``bad_request`` naming ``steps[i]`` (a bad form, a duplicate or
            invalid name, a reference to a step that is not earlier).
    """
    if not raw:
        raise ApiError("bad_request", "a workflow needs at least one step", field="steps")
    steps: list[WorkflowStep] = []
    for i, given in enumerate(raw):
        if isinstance(given, str):
            name, sep1, rest = given.partition(":")
            kind, sep2, prompt = rest.partition(":")
            if not (sep1 and sep2):
                msg = f"step {given!r} is not 'name:type:prompt'"
                raise ApiError("bad_request", msg, field=f"steps[{i}]")
            given = WorkflowStep(name=name.strip(), type=kind.strip(), input=prompt)  # noqa: PLW2901
        steps.append(given)
    seen: dict[str, int] = {}
    for i, each in enumerate(steps):
        where = f"steps[{i}]"
        if (
            not _NAME.match(each.name)
            or each.name == RESULT_STEP
            or (each.name.startswith("step") and each.name[4:].isdigit())
        ):
            msg = (
                f"step name {each.name!r}: use letters, digits and _, not starting with a "
                f"digit, and neither {RESULT_STEP!r} nor 'stepN'"
            )
            raise ApiError("bad_request", msg, field=f"{where}.name")
        if each.name in seen:
            msg = f"step name {each.name!r} is used by steps[{seen[each.name]}] too"
            raise ApiError("bad_request", msg, field=f"{where}.name")
        seen[each.name] = i
        for ref in _REFERENCE.findall(each.input):
            target = _target(ref, steps)
            if target is None or seen.get(target, i) >= i:
                msg = f"step {each.name!r} references {{{{{ref}}}}}, which is not an earlier step"
                raise ApiError("bad_request", msg, field=f"{where}.input")
    return steps


def _target(ref: str, steps: Sequence[WorkflowStep]) -> str | None:
    """The step name a reference means (``stepN`` counts from 1)."""
    if ref.startswith("step") and ref[4:].isdigit():
        n = int(ref[4:])
        return steps[n - 1].name if 1 <= n <= len(steps) else None
    return ref if any(s.name == ref for s in steps) else None


def render(prompt: str, outputs: dict[str, Any], steps: Sequence[WorkflowStep]) -> str:
    """Substitute every ``{{ref}}`` once, from the prompt as written."""

    def one(match: re.Match[str]) -> str:
        target = _target(match.group(1), steps)
        value = outputs.get(target or "")
        text = value.get("output") if isinstance(value, dict) else value
        return text if isinstance(text, str) else json.dumps(text)

    return _REFERENCE.sub(one, prompt)


def _encode(spec: dict[str, Any]) -> str:
    raw = zlib.compress(json.dumps(spec, separators=(",", ":"), sort_keys=True).encode(), 9)
    return _PREFIX + base64.b32encode(raw).decode().rstrip("=").lower()


def _decode(name: str) -> dict[str, Any]:
    body = name.removeprefix(_PREFIX).upper()
    body += "=" * (-len(body) % 8)
    spec: dict[str, Any] = json.loads(zlib.decompress(base64.b32decode(body)))
    return spec


def workflow_reactor(steps: Sequence[WorkflowStep], agent_id: str | None) -> type[Reactor]:
    """The reactor class that runs ``steps`` (the same class for the same definition)."""
    spec = {
        "agent": agent_id or "",
        "steps": [[s.name, s.type, s.input, s.model_name or ""] for s in steps],
    }
    return _build(_encode(spec))


@functools.lru_cache(maxsize=256)
def _build(name: str) -> type[Reactor]:
    spec = _decode(name)
    steps = [
        WorkflowStep(name=n, type=t, input=p, model_name=m or None) for n, t, p, m in spec["steps"]
    ]
    agent_id: str = spec["agent"]
    body: dict[str, Any] = {"__module__": __name__, "__qualname__": name}
    body["__doc__"] = "A workflow: " + ", ".join(f"{s.name} ({s.type})" for s in steps)
    for each in steps:
        body[each.name] = step(_step_function(each, steps, agent_id), name=each.name)
    body[RESULT_STEP] = step(_collect([s.name for s in steps]), name=RESULT_STEP)

    def fill(ns: dict[str, Any]) -> None:
        ns.update(body)

    # Shown as a short name; found again by the long one (the locator names __qualname__).
    short = "workflow_" + hashlib.sha1(name.encode(), usedforsecurity=False).hexdigest()[:10]
    return types.new_class(short, (Reactor,), {"returns": RESULT_STEP}, fill)


def _step_function(
    each: WorkflowStep, steps: Sequence[WorkflowStep], agent_id: str
) -> Callable[..., Any]:
    deps = sorted({t for r in _REFERENCE.findall(each.input) if (t := _target(r, steps))})

    async def run_step(**outputs: Any) -> dict[str, Any]:
        runner = SERVICES.runner
        if runner is None:
            msg = "workflow steps run in the daemon (reactor serve): no task runner here"
            raise RuntimeError(msg)
        agent = SERVICES.agent(agent_id) if agent_id and SERVICES.agent is not None else None
        prompt = render(each.input, outputs, steps)
        task = Task(type=each.type, input=prompt, model_name=each.model_name)
        result = await runner.run_one(task, agent, task_id=each.name)
        if result.status == "failed":
            msg = f"step {each.name!r} ({each.type}) on {result.model_used or '?'}: {result.error}"
            raise RuntimeError(msg)
        return {
            "name": each.name,
            "type": each.type,
            "input": prompt,
            "output": result.output,
            "model_used": result.model_used,
            "routing": result.routing,
            "tokens": result.metrics.tokens_used,
        }

    run_step.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(d, inspect.Parameter.KEYWORD_ONLY) for d in deps],
        return_annotation=dict[str, Any],
    )
    run_step.__name__ = run_step.__qualname__ = each.name
    return run_step


def _collect(names: list[str]) -> Callable[..., Any]:
    def collect(**outputs: Any) -> list[Any]:
        return [outputs[n] for n in names]

    collect.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in names],
        return_annotation=list[Any],
    )
    return collect


def __getattr__(name: str) -> Any:
    """A workflow reactor by its name (how :func:`dsl.find` reloads one to resume it)."""
    if name.startswith(_PREFIX):
        try:
            return _build(name)
        except (ValueError, zlib.error, KeyError, TypeError) as exc:
            msg = f"{name!r} is not a workflow's name: {exc}"
            raise AttributeError(msg) from None
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
