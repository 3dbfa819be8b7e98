"""A reactor's plan and source, fingerprinted at a run's start, compared when it resumes.

Resuming replays completed steps' results into the reactor as it is *now*. If its steps
changed since the run started (one added, removed or renamed, a dependency, a kind or a
result type changed), the old results would feed a different graph, and a renamed
step's result would be looked up under a name the reactor no longer has. So a run's
``RunStarted`` carries a :class:`PlanPrint`: per step its kind, what it depends on, the
reactors it composes and its result type, the step the run returns, and a hash of the
source file the reactor was loaded from. :func:`compare_plan` says, in words, what
changed; the engine refuses to resume a run whose plan changed (unless forced) and
warns when only the source changed (a changed function body is the user's call: its
completed results are kept).

A print is made once per reactor class (cached, weakly) and kept encoded, so starting
a run costs a lookup, not a hash of the file.
"""

from __future__ import annotations

import hashlib
import inspect
import re
import weakref
from typing import Any

import msgspec

__all__ = [
    "PlanCheck",
    "PlanPrint",
    "StepPrint",
    "compare_plan",
    "decode_plan",
    "plan_print",
    "plan_print_raw",
]


class StepPrint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """What about a step a resumed run depends on.

    Attributes:
        kind: The step kind (``function``, ``ask``, ``compose``, ...).
        needs: The inputs and steps it depends on, sorted.
        reactors: The reactors it composes (``compose``, ``for_each``, ...), by name.
        result: The type its journaled result is decoded to on replay, written
            without module paths (``list[Report]``); empty when untyped.
    """

    kind: str
    needs: tuple[str, ...] = ()
    reactors: tuple[str, ...] = ()
    result: str = ""


class PlanPrint(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A reactor's plan as a run saw it when it started.

    Attributes:
        steps: Each step's print, by name, in definition order.
        returns: The step whose result is the run's.
        source: ``sha256:<hex>`` of the file the reactor was defined in (empty when
            there is none, e.g. a reactor typed into a REPL).
        source_file: That file.
    """

    steps: dict[str, StepPrint]
    returns: str
    source: str = ""
    source_file: str = ""


class PlanCheck(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`compare_plan` found.

    Attributes:
        changes: How the steps changed, one phrase each; empty when they did not.
        source_changed: Whether the source file's hash differs (or the file moved).
        source_file: The file the reactor is loaded from now.
    """

    changes: tuple[str, ...] = ()
    source_changed: bool = False
    source_file: str = ""


_prints: weakref.WeakKeyDictionary[type[Any], tuple[PlanPrint, msgspec.Raw]] = (
    weakref.WeakKeyDictionary()
)


def plan_print(reactor: type[Any]) -> PlanPrint:
    """The reactor's :class:`PlanPrint` (made once per class)."""
    return _cached(reactor)[0]


def plan_print_raw(reactor: type[Any]) -> msgspec.Raw:
    """:func:`plan_print`, JSON-encoded (what ``RunStarted.plan`` holds)."""
    return _cached(reactor)[1]


def _cached(reactor: type[Any]) -> tuple[PlanPrint, msgspec.Raw]:
    found = _prints.get(reactor)
    if found is None:
        made = _make(reactor)
        found = _prints[reactor] = (made, msgspec.Raw(msgspec.json.encode(made)))
    return found


def _make(reactor: type[Any]) -> PlanPrint:
    plan = reactor.__plan__
    steps = {
        name: StepPrint(
            kind=spec.kind,
            needs=tuple(sorted(spec.depends_on)),
            reactors=tuple(sub.__plan__.reactor for sub in spec.sub_reactors),
            result=_type_name(spec.result_type),
        )
        for name, spec in plan.steps.items()
    }
    source_file, digest = _source(reactor)
    return PlanPrint(steps=steps, returns=plan.returns, source=digest, source_file=source_file)


def _type_name(kind: Any) -> str:
    """A type as written, without module paths (a moved file renames its module)."""
    if kind is Any or kind is None:
        return ""
    text = kind.__qualname__ if isinstance(kind, type) else repr(kind)
    return _MODULE_PATH.sub(r"\1", text)


_MODULE_PATH = re.compile(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)")
"""``some.module.Name`` → ``Name``."""


def _source(reactor: type[Any]) -> tuple[str, str]:
    """The reactor's source file and ``sha256:<hex>`` of its bytes (empty: unknown)."""
    try:
        file = inspect.getsourcefile(reactor)
    except (TypeError, OSError):
        return "", ""
    if not file:
        return "", ""
    try:
        with open(file, "rb") as handle:
            data = handle.read()
    except OSError:
        return file, ""
    return file, "sha256:" + hashlib.sha256(data).hexdigest()


def decode_plan(raw: msgspec.Raw) -> PlanPrint | None:
    """The print a ``RunStarted`` carries (``None``: written before prints existed)."""
    if bytes(raw) in (b"", b"null"):
        return None
    try:
        return msgspec.json.decode(raw, type=PlanPrint)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def compare_plan(before: PlanPrint | None, reactor: type[Any]) -> PlanCheck:
    """What changed between the plan a run started with and ``reactor`` now.

    A run journaled before plans were fingerprinted (``before`` is ``None``) shows no
    change: there is nothing to compare.
    """
    now = plan_print(reactor)
    if before is None:
        return PlanCheck(source_file=now.source_file)
    changes = _step_changes(before.steps, now.steps)
    if before.returns != now.returns and before.returns in now.steps:
        changes.append(f"it returns step {now.returns!r}, not {before.returns!r}")
    moved = bool(before.source_file) and before.source_file != now.source_file
    differs = bool(before.source) and before.source != now.source
    return PlanCheck(
        changes=tuple(changes), source_changed=differs or moved, source_file=now.source_file
    )


def _step_changes(before: dict[str, StepPrint], now: dict[str, StepPrint]) -> list[str]:
    removed = [name for name in before if name not in now]
    added = [name for name in now if name not in before]
    changes: list[str] = []
    renamed: dict[str, str] = {}
    for old in list(removed):  # a removed step whose print an added one has: renamed
        twin = next((new for new in added if _same(before[old], now[new])), None)
        if twin is not None:
            removed.remove(old)
            added.remove(twin)
            renamed[old] = twin
            changes.append(f"step {old!r} was renamed to {twin!r}")
    changes += [f"step {name!r} was removed" for name in removed]
    changes += [f"step {name!r} was added" for name in added]
    for name, old_print in before.items():
        new_print = now.get(renamed.get(name, name))
        if new_print is None:
            continue
        if old_print.kind != new_print.kind:
            changes.append(f"step {name!r} is a {new_print.kind} step, was {old_print.kind}")
        needed = tuple(sorted(renamed.get(n, n) for n in old_print.needs))
        if needed != new_print.needs:
            changes.append(
                f"step {name!r} depends on {_names(new_print.needs)}, was {_names(old_print.needs)}"
            )
        if old_print.result != new_print.result:
            changes.append(
                f"step {name!r} returns {new_print.result or 'anything'}, "
                f"was {old_print.result or 'anything'}"
            )
        if old_print.reactors != new_print.reactors:
            changes.append(
                f"step {name!r} composes {_names(new_print.reactors)}, "
                f"was {_names(old_print.reactors)}"
            )
    return changes


def _same(old: StepPrint, new: StepPrint) -> bool:
    return (old.kind, old.needs, old.reactors, old.result) == (
        new.kind,
        new.needs,
        new.reactors,
        new.result,
    )


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(repr(n) for n in names) if names else "nothing"
