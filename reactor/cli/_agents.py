"""``reactor agents``, ``reactor conversations`` and ``reactor review``.

Listing and showing read the Store only; anything that asks a model starts the
configured fleet (``--config``; ``--simulated`` falls back to the built-in fake servers
when no server is found) and an Engine, whose services the agents use.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

__all__ = [
    "run_agents_ask",
    "run_agents_create",
    "run_agents_list",
    "run_agents_show",
    "run_agents_templates",
    "run_conversations_list",
    "run_conversations_resume",
    "run_conversations_show",
    "run_review",
]


@contextlib.contextmanager
def _agents(
    db: Path | None, *, config: Path | None = None, models: bool = False, simulated: bool = False
) -> Iterator[Any]:
    """An ``Agents`` over the Store (and, with ``models``, the configured fleet and an Engine)."""
    from actors import System  # noqa: PLC0415 - keep `reactor --help` fast
    from actors.agents import AgentBackend, Agents  # noqa: PLC0415
    from actors.store import Store  # noqa: PLC0415

    if models:
        with _fleet_agents(db, config=config, simulated=simulated) as (agents, _):
            yield agents
        return
    with System(name="reactor-agents") as system:
        store: Any = system.spawn(Store.spec(db))
        yield Agents(system, AgentBackend(store=store), idle_s=None)


@contextlib.contextmanager
def _fleet_agents(
    db: Path | None, *, config: Path | None, simulated: bool
) -> Iterator[tuple[Any, bool]]:
    """``Agents`` on the configured fleet and an Engine, and whether the fleet is the fakes."""
    from actors import System  # noqa: PLC0415 - keep `reactor --help` fast
    from actors.llm import load_config, start_fleet  # noqa: PLC0415
    from actors.testing import fake_servers  # noqa: PLC0415
    from reactor.app import Engine  # noqa: PLC0415

    with System(name="reactor-agents") as system:
        settings = load_config(config)
        fleet = start_fleet(system, settings, fallback=fake_servers if simulated else None)
        try:
            with Engine(system, fleet=fleet, db_path=db, config=settings) as engine:
                yield engine.start_agents(), fleet.is_simulated
        finally:
            fleet.close()


def _print_json(data: Any, out: IO[str]) -> None:
    out.write(json.dumps(msgspec.to_builtins(data), indent=2) + "\n")


def run_agents_list(*, db: Path | None, as_json: bool, out: IO[str] | None = None) -> int:
    """Every stored agent: name, role, model, template."""
    out = out or sys.stdout
    with _agents(db) as agents:
        specs = agents.list()
    if as_json:
        _print_json(specs, out)
        return 0
    if not specs:
        out.write("no agents\n")
        return 0
    out.write(f"{'NAME':24} {'ROLE':22} {'MODEL':28} TEMPLATE\n")
    for spec in specs:
        out.write(f"{spec.name:24} {spec.role.name:22} {spec.model_label:28} {spec.template}\n")
    return 0


def run_agents_show(
    name: str,
    *,
    db: Path | None,
    as_json: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """One agent: its definition and history (exit 1 when it is not defined)."""
    from actors.agents import AgentNotFoundError  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    with _agents(db) as agents:
        try:
            state = agents.get(name)
        except AgentNotFoundError as exc:
            err.write(f"{exc}\n")
            return 1
    if as_json:
        _print_json(state, out)
        return 0
    spec = state.spec
    out.write(f"{spec.name}: {spec.role.name}, model {spec.model_label}\n")
    out.write(f"window: {spec.window.kind}; {len(state.turns)} turns")
    out.write(f" ({state.summarised} summarised)\n" if state.summary else "\n")
    for turn in state.turns[-20:]:
        out.write(f"  {turn.sender}: {turn.content[:120]}\n")
    return 0


def run_agents_templates(*, file: Path | None, as_json: bool, out: IO[str] | None = None) -> int:
    """The templates (built-in, or from ``file``) with their parameters' constraints."""
    from actors.agents import BUILT_IN_TEMPLATES, load_templates  # noqa: PLC0415

    out = out or sys.stdout
    templates = load_templates(file) if file is not None else BUILT_IN_TEMPLATES
    if as_json:
        _print_json(templates, out)
        return 0
    for template in templates.values():
        params = ", ".join(f"{n} {p.constraint()}" for n, p in template.parameters.items())
        out.write(f"{template.name}: {template.description} [{', '.join(template.capabilities)}]\n")
        if params:
            out.write(f"    {params}\n")
    return 0


def _parameters(pairs: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            msg = f"--param {pair!r}: expected KEY=VALUE"
            raise ValueError(msg)
        try:
            values[key] = json.loads(text)
        except json.JSONDecodeError:
            values[key] = text
    return values


_MODEL_HINT = (
    "give --model NAME, a model one of your servers lists (`reactor models` shows them), "
    "or --model auto to let the Selector choose one at each ask\n"
)
"""Printed under a template's model error: the CLI spelling of ``model=``."""


def run_agents_create(
    name: str,
    *,
    template: str,
    file: Path | None,
    model: str | None,
    params: Sequence[str],
    config: Path | None,
    db: Path | None,
    replace: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Define an agent from a template; exit 2 when its configuration is invalid."""
    from actors.agents import (  # noqa: PLC0415
        BUILT_IN_TEMPLATES,
        AgentError,
        TemplateError,
        load_templates,
    )

    out, err = out or sys.stdout, err or sys.stderr
    try:
        templates = load_templates(file) if file is not None else BUILT_IN_TEMPLATES
        if template not in templates:
            known = ", ".join(sorted(templates))
            err.write(f"no template {template!r} (templates: {known})\n")
            return 2
        values = _parameters(params)
        with _agents(db, config=config, models=True) as agents:
            backend = agents.backend
            spec = templates[template].create(
                name,
                model=model,
                parameters=values,
                catalog=backend.catalog,
                known_models=backend.known_models or None,
            )
            agents.define(spec, replace=replace)
    except TemplateError as exc:
        err.write(f"{exc}\n")
        if exc.field.startswith("model"):
            err.write(_MODEL_HINT)
        return 2
    except (AgentError, ValueError) as exc:
        err.write(f"{exc}\n")
        return 2
    out.write(f"defined {spec.name} ({template}, model {spec.model_label})\n")
    return 0


def run_agents_ask(
    name: str,
    message: str,
    *,
    config: Path | None,
    db: Path | None,
    as_json: bool,
    simulated: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Ask an agent; print its answer (exit 1 when it is not defined or the call failed)."""
    from actors import AskError  # noqa: PLC0415
    from actors.agents import AgentError  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    try:
        with _agents(db, config=config, models=True, simulated=simulated) as agents:
            reply = agents.respond(name, message)
    except (AgentError, AskError) as exc:
        err.write(f"{exc}\n")
        return 1
    if as_json:
        _print_json(reply, out)
    else:
        out.write(reply.content + "\n")
    return 0


def run_conversations_list(
    *, db: Path | None, limit: int, as_json: bool, out: IO[str] | None = None
) -> int:
    """Stored conversations, newest first."""
    from actors.agents import ConversationOrchestrator  # noqa: PLC0415

    out = out or sys.stdout
    with _agents(db) as agents:
        found = ConversationOrchestrator(agents).list(limit=limit)
    if as_json:
        _print_json([c.to_dict() for c in found], out)
        return 0
    if not found:
        out.write("no conversations\n")
        return 0
    out.write(f"{'ID':36} {'EVENTS':>6}  STATE\n")
    for info in found:
        out.write(f"{info.id:36} {info.messages:>6}  {'ended' if info.ended else 'open'}\n")
    return 0


def _show(state: Any, out: IO[str]) -> None:
    out.write(f"{state.id}: {', '.join(state.participants)}; topic: {state.topic or '-'}\n")
    for said in state.messages:
        to = f" -> {said.recipient}" if said.recipient else ""
        out.write(f"  [{said.round}] {said.sender}{to}: {said.content[:160]}\n")
    out.write(f"ended: {state.ended}\n" if state.ended else "open\n")


def run_conversations_show(
    conversation: str,
    *,
    db: Path | None,
    as_json: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """One conversation's messages (exit 1 when it does not exist)."""
    from actors.agents import AgentError, ConversationOrchestrator  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    with _agents(db) as agents:
        try:
            state = ConversationOrchestrator(agents).get(conversation)
        except AgentError as exc:
            err.write(f"{exc}\n")
            return 1
    if as_json:
        _print_json(state, out)
    else:
        _show(state, out)
    return 0


def run_conversations_resume(
    conversation: str,
    *,
    rounds: int,
    pattern: str,
    keyword: str | None,
    config: Path | None,
    db: Path | None,
    as_json: bool,
    simulated: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Run more rounds of a stored conversation."""
    from actors import AskError  # noqa: PLC0415
    from actors.agents import AgentError, ConversationOrchestrator, Termination  # noqa: PLC0415

    out, err = out or sys.stdout, err or sys.stderr
    try:
        with _agents(db, config=config, models=True, simulated=simulated) as agents:
            state = ConversationOrchestrator(agents).resume(
                conversation,
                pattern=pattern,
                termination=Termination(max_rounds=rounds, keyword=keyword),
            )
    except (AgentError, AskError) as exc:
        err.write(f"{exc}\n")
        return 1
    if as_json:
        _print_json(state, out)
    else:
        _show(state, out)
    return 0


def run_review(
    *,
    pr_json: Path,
    diff: Path | None,
    reviewers: Sequence[str],
    model: str | None,
    config: Path | None,
    db: Path | None,
    as_json: bool,
    simulated: bool,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
) -> int:
    """Review a pull request; exit 2 for unreadable input, 1 when a review failed."""
    from actors import AskError  # noqa: PLC0415
    from actors.agents import (  # noqa: PLC0415
        DEFAULT_REVIEWERS,
        AgentError,
        TemplateError,
        ensure_reviewers,
        pull_request,
        review_pull_request,
    )

    out, err = out or sys.stdout, err or sys.stderr
    try:
        pr = pull_request(pr_json, diff)
    except (AgentError, OSError) as exc:
        err.write(f"{exc}\n")
        return 2
    try:
        with _fleet_agents(db, config=config, simulated=simulated) as (agents, fakes):
            # The fakes serve none of the templates' preferred models: the Selector picks.
            ensure_reviewers(agents, model=model or ("auto" if fakes else None))
            result = review_pull_request(
                agents, pr, reviewers=reviewers or tuple(DEFAULT_REVIEWERS)
            )
    except TemplateError as exc:
        err.write(f"{exc}\n")
        if exc.field.startswith("model"):
            err.write(_MODEL_HINT)
        return 2
    except AgentError as exc:
        err.write(f"{exc}\n")
        return 2
    except AskError as exc:
        err.write(f"review failed: {exc}\n")
        return 1
    if as_json:
        _print_json(result, out)
    else:
        out.write(result.to_text())
    return 0
