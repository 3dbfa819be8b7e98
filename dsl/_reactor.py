"""The :class:`Reactor` base class and the planner that checks a definition once.

Subclassing :class:`Reactor` is defining one: the class body's :class:`~dsl.Input`
attributes are its inputs and its step attributes (``@step`` functions, ``ask(...)``,
``compose(...)``, ...) its steps, in the order written. When the class statement ends,
the planner binds every step's arguments, rejects what cannot run (an unknown
reference, a duplicate name, a cycle, a wrong option, a parameter that gets no value),
and stores the immutable :class:`Plan` as ``__plan__``. Nothing about a run lives on
the class: runs belong to the executor (``reactor``).
"""

from __future__ import annotations

import dataclasses
import graphlib
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType, ModuleType
from typing import Any, ClassVar, Literal

from dsl._errors import DefinitionError
from dsl._inputs import Input
from dsl._sources import Ref, Value
from dsl.kinds import Placement, StepDef, StepSpec, bind, kind_of, placement_of

__all__ = ["Plan", "Reactor", "find", "locate", "plan_steps"]


@dataclass(frozen=True, slots=True)
class Plan:
    """A validated reactor: inputs, steps and the graph between them.

    Attributes:
        reactor: The reactor's name.
        description: Its docstring.
        inputs: Input name to its declaration, in definition order.
        steps: Step name to its spec, in definition order.
        returns: The step whose result is the run's result.
        order: The steps in a dependency order (each after what it depends on).
        dependents: Step or input name to the steps that depend on it.
        max_concurrency: The default limit on steps running at once (``None``: the
            engine's default).
        timeout: The default limit on a whole run, in seconds.
        on_timeout: What a run does when its timeout passes, by default: ``"fail"``
            (roll back and fail) or ``"halt"`` (let running steps finish, then halt,
            to be resumed); ``None``: the engine's default, ``"fail"``.
        max_iterations: The default limit on how many times a run's steps may re-emit
            themselves (loop) before the run halts (``None``: no limit).
        halt_timeout: The default seconds a halting run waits for its running steps
            (``None``: as long as they take).
        idle_timeout: The default seconds a running run may go without progress before
            it is treated as its timeout treats it (``None``: no limit).
        placement: Where its steps' work runs unless a step says (``None``: the
            engine's placement); already applied to the steps that take one.
    """

    reactor: str
    description: str
    inputs: Mapping[str, Input]
    steps: Mapping[str, StepSpec]
    returns: str
    order: tuple[str, ...]
    dependents: Mapping[str, tuple[str, ...]]
    max_concurrency: int | None = None
    timeout: float | None = None
    placement: Placement | None = None
    on_timeout: Literal["fail", "halt"] | None = None
    max_iterations: int | None = None
    halt_timeout: float | None = None
    idle_timeout: float | None = None


class Reactor:
    r"""Subclass to define a reactor; the class is checked and planned when defined.

    Example::

        class Briefing(Reactor):
            '''Two models answer; a step combines them.'''

            topic = Input(str)
            optimist = ask("Why is {topic} promising?", model="llama3.2")
            sceptic = ask("Why might {topic} fail?", model="qwen2.5")

            @step
            def brief(optimist: Completion, sceptic: Completion) -> str:
                return f"For: {optimist.content}\\nAgainst: {sceptic.content}"

    Class keywords: ``returns`` (the step whose result the run returns; default the
    last step), ``max_concurrency``, ``timeout`` and ``on_timeout`` (``"fail"`` or
    ``"halt"``: what a run does when its timeout passes), ``max_iterations`` (how many
    times its steps may re-emit themselves before the run halts), ``halt_timeout``
    (seconds a halting run waits for its running steps), ``idle_timeout`` (seconds a
    run may go without progress before ``on_timeout`` applies) (defaults for each run), and
    ``placement`` (where the work of its steps runs when a step does not say:
    ``"local"``, ``"ray"`` or a :class:`~dsl.Placement`).

    Attributes:
        __plan__: The validated :class:`Plan`.
    """

    __plan__: ClassVar[Plan]

    def __init_subclass__(
        cls,
        *,
        returns: str | None = None,
        max_concurrency: int | None = None,
        timeout: float | None = None,
        placement: str | Placement | None = None,
        on_timeout: Literal["fail", "halt"] | None = None,
        max_iterations: int | None = None,
        halt_timeout: float | None = None,
        idle_timeout: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__name__
        inputs: dict[str, Input] = {}
        defs: dict[str, StepDef] = {}
        for attr, member in vars(cls).items():
            if isinstance(member, Input):
                inputs[attr] = member
            elif isinstance(member, StepDef):
                step_name = member.name if member.named and member.name else attr
                if step_name in defs or step_name in inputs:
                    raise DefinitionError("duplicate name", reactor=name, step=step_name)
                defs[step_name] = member
        if not defs:
            raise DefinitionError("a reactor needs at least one step", reactor=name)
        _check_run_options(
            name, max_concurrency, timeout, on_timeout, max_iterations, halt_timeout, idle_timeout
        )
        try:
            default_placement = placement_of(placement)
        except ValueError as exc:
            raise DefinitionError(str(exc), reactor=name) from None
        for input_name, spec in inputs.items():
            _check_input(name, input_name, spec)
        steps = plan_steps(name, inputs, defs)
        if default_placement is not None:
            steps = {n: _placed(s, default_placement) for n, s in steps.items()}
        returning = returns if returns is not None else list(steps)[-1]
        if returning not in steps:
            raise DefinitionError(
                f"returns={returning!r} is not a step of this reactor", reactor=name
            )
        cls.__plan__ = _plan(
            name,
            description=(cls.__doc__ or "").strip(),
            inputs=inputs,
            steps=steps,
            returns=returning,
            max_concurrency=max_concurrency,
            timeout=timeout,
            placement=default_placement,
            on_timeout=on_timeout,
            max_iterations=max_iterations,
            halt_timeout=halt_timeout,
            idle_timeout=idle_timeout,
        )

    @classmethod
    def to_mermaid(cls) -> str:
        """The graph as a Mermaid flowchart (inputs, steps, and what flows between)."""
        from dsl._mermaid import to_mermaid  # noqa: PLC0415 - keeps class creation light

        return to_mermaid(cls.__plan__)


def plan_steps(
    reactor: str,
    inputs: Mapping[str, Input],
    defs: Mapping[str, StepDef],
    existing: Mapping[str, StepSpec] | None = None,
    *,
    again: str | None = None,
) -> dict[str, StepSpec]:
    """Bind new steps among ``inputs`` and ``existing`` steps; returns their specs.

    The whole graph is checked for cycles.
    This is how a class is planned, and how steps added while a run runs are checked.
    ``again`` names an existing step that ``defs`` defines anew (a step re-emitting
    itself to loop): its new definition replaces the old one, and may refer to its own
    name, which stands for the previous iteration's result (not a cycle).
    """
    existing = existing or {}
    names: dict[str, str] = dict.fromkeys(inputs, "input")
    names.update(dict.fromkeys(existing, "step"))
    for step_name in defs:
        if not step_name.isidentifier():
            raise DefinitionError(
                "a step name must be a Python identifier", reactor=reactor, step=step_name
            )
        if step_name in names and step_name != again:
            raise DefinitionError("duplicate name", reactor=reactor, step=step_name)
        names[step_name] = "step"
    specs = {n: bind(d, n, reactor, names, again=n == again) for n, d in defs.items()}
    _check_cycles(reactor, {**existing, **specs}, again=again)
    return specs


def _check_cycles(reactor: str, steps: Mapping[str, StepSpec], *, again: str | None = None) -> None:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for spec in steps.values():
        name = spec.name
        sorter.add(name, *(d for d in spec.depends_on if d in steps and not (d == name == again)))
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])  # each node is a dependency of the next
        first, closing = steps[cycle[0]], cycle[-2]
        argument = next(
            (a for a, s in first.arguments.items() if isinstance(s, Ref) and s.name == closing),
            "wait_for",
        )
        raise DefinitionError(
            f"a cycle: {' -> '.join(cycle)}", reactor=reactor, step=first.name, argument=argument
        ) from None


def _placed(spec: StepSpec, placement: Placement) -> StepSpec:
    """``spec`` placed by its reactor, unless it says where itself or runs no code."""
    if spec.placement is not None or "placement" not in kind_of(spec.impl).option_table():
        return spec
    return dataclasses.replace(spec, placement=placement)


def _plan(
    name: str,
    *,
    description: str,
    inputs: dict[str, Input],
    steps: dict[str, StepSpec],
    returns: str,
    max_concurrency: int | None,
    timeout: float | None,
    placement: Placement | None = None,
    on_timeout: Literal["fail", "halt"] | None = None,
    max_iterations: int | None = None,
    halt_timeout: float | None = None,
    idle_timeout: float | None = None,
) -> Plan:
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    dependents: dict[str, list[str]] = {n: [] for n in (*inputs, *steps)}
    for spec in steps.values():
        sorter.add(spec.name, *(d for d in spec.depends_on if d in steps))
        for dependency in sorted(spec.depends_on):
            dependents[dependency].append(spec.name)
    return Plan(
        reactor=name,
        description=description,
        inputs=MappingProxyType(inputs),
        steps=MappingProxyType(steps),
        returns=returns,
        order=tuple(sorter.static_order()),
        dependents=MappingProxyType({k: tuple(v) for k, v in dependents.items()}),
        max_concurrency=max_concurrency,
        timeout=timeout,
        placement=placement,
        on_timeout=on_timeout,
        max_iterations=max_iterations,
        halt_timeout=halt_timeout,
        idle_timeout=idle_timeout,
    )


def _check_run_options(  # noqa: PLR0917 - one per run option
    name: str,
    max_concurrency: int | None,
    timeout: float | None,
    on_timeout: object,
    max_iterations: object = None,
    halt_timeout: object = None,
    idle_timeout: object = None,
) -> None:
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise DefinitionError(
            f"max_concurrency must be an int >= 1, got {max_concurrency!r}", reactor=name
        )
    if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
        raise DefinitionError(f"timeout must be seconds > 0, got {timeout!r}", reactor=name)
    if on_timeout is not None and on_timeout not in {"fail", "halt"}:
        raise DefinitionError(
            f"on_timeout must be 'fail' or 'halt', got {on_timeout!r}", reactor=name
        )
    if max_iterations is not None and (
        isinstance(max_iterations, bool)
        or not isinstance(max_iterations, int)
        or max_iterations < 0
    ):
        raise DefinitionError(
            f"max_iterations must be an int >= 0, got {max_iterations!r}", reactor=name
        )
    for option, seconds in (("halt_timeout", halt_timeout), ("idle_timeout", idle_timeout)):
        if seconds is not None and (
            isinstance(seconds, bool) or not isinstance(seconds, int | float) or not seconds > 0
        ):
            raise DefinitionError(f"{option} must be seconds > 0, got {seconds!r}", reactor=name)


def _check_input(reactor: str, name: str, spec: Input) -> None:
    if spec.transform is not None and not callable(spec.transform):
        raise DefinitionError(
            f"transform must be a function, got {spec.transform!r}",
            reactor=reactor,
            step=name,
        )
    if isinstance(spec.default, Ref | Value):
        raise DefinitionError(
            "an input's default is a plain value, not a source", reactor=reactor, step=name
        )


def locate(obj: Any) -> str:
    """Where another process finds ``obj`` (a reactor class or a function).

    ``module:Qualname`` when its module can be imported by name; for a class defined in
    a script (``__main__``), ``/path/to/script.py:Qualname``. Raises ``ValueError`` for
    what cannot be found again (a lambda, a function defined inside another).
    """
    qualname = getattr(obj, "__qualname__", "")
    module = getattr(obj, "__module__", "")
    if not qualname or "<" in qualname:
        msg = f"{obj!r} cannot be found by another process: define it at module level"
        raise ValueError(msg)
    if module == "__main__" or module.startswith("reactor_user_file_"):
        path = getattr(sys.modules.get(module), "__file__", None)
        if not path:
            msg = f"{qualname} is defined in an interactive session and cannot be reloaded"
            raise ValueError(msg)
        return f"{path}:{qualname}"
    return f"{module}:{qualname}"


def find(locator: str) -> Any:
    """The object a :func:`locate` string names, importing its module or file.

    A file is loaded with its own folder first on ``sys.path`` (for that load only),
    so it can import the modules beside it.

    Raises:
        LookupError: The module, file or name does not exist, saying which.
    """
    import hashlib  # noqa: PLC0415 - only when loading
    import importlib  # noqa: PLC0415
    import importlib.util  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    where, sep, qualname = locator.rpartition(":")
    if not sep or not where or not qualname:
        msg = f"{locator!r} is not 'module:Name' or 'path/to/file.py:Name'"
        raise LookupError(msg)
    if where.endswith(".py") or "/" in where or "\\" in where:
        path = Path(where).resolve()
        if not path.is_file():
            msg = f"{locator!r}: no file {str(path)!r}"
            raise LookupError(msg)
        digest = hashlib.sha1(str(path).encode(), usedforsecurity=False).hexdigest()[:12]
        module_name = f"reactor_user_file_{digest}"
        module = sys.modules.get(module_name) or _running(path)
        if module is None:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                msg = f"{locator!r}: cannot load {str(path)!r} as Python"
                raise LookupError(msg)
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            # The file's folder is on the import path while it loads, so that it can
            # import a module beside it (`from helpers import clean`), as `python file.py`
            # would let it.
            folder = str(path.parent)
            sys.path.insert(0, folder)
            try:
                spec.loader.exec_module(module)
            except BaseException:
                del sys.modules[module_name]
                raise
            finally:
                sys.path.remove(folder)
    else:
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            msg = f"{locator!r}: cannot import {where!r} ({exc})"
            raise LookupError(msg) from exc
    found: Any = module
    for part in qualname.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise LookupError(_missing_name(locator, where, qualname, module)) from None
    return found


def _running(path: Any) -> Any:
    """The module already running ``path`` in this process (the script itself, often).

    A run started by ``python flows.py`` records its reactor as ``flows.py:Name``. When
    the same process resumes it, loading the file again would run the script a second
    time, top to bottom, and give the run a copy of the class whose module-level state
    (the flag a step reads, the list it appends to) is not the script's. The module
    that is running the file is used instead: ``__main__`` first, then any other.
    """
    main = sys.modules.get("__main__")
    candidates = [main] if main is not None else []
    candidates.extend(m for m in list(sys.modules.values()) if m is not main)
    for module in candidates:
        where = getattr(module, "__file__", None)
        if not isinstance(where, str) or os.path.basename(where) != path.name:
            continue
        try:
            if os.path.samefile(where, path):
                return module
        except OSError:
            continue
    return None


_LISTED = 30
"""How many of a module's names a missing-name error lists."""


def _missing_name(locator: str, where: str, qualname: str, module: Any) -> str:
    """Why ``qualname`` is not in ``module``: a close name, and what the module defines.

    The names listed are those the module defines itself (its classes and functions,
    then its other public values), not what it imported, so that a reactor file's
    reactors are not lost among ``Input``, ``os`` and ``Path``.
    """
    import difflib  # noqa: PLC0415 - only on this error

    def own(value: Any) -> bool:
        owner = getattr(value, "__module__", None)
        return owner is None or owner == module.__name__

    public = {n: v for n, v in vars(module).items() if not n.startswith("_")}
    names = sorted(
        n for n, v in public.items() if not isinstance(v, ModuleType) and (own(v) or n.isupper())
    )
    close = difflib.get_close_matches(qualname, names or list(public), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    listed = ", ".join(names[:_LISTED]) or "nothing public"
    if len(names) > _LISTED:
        listed += f", ... ({len(names) - _LISTED} more)"
    return f"{locator!r}: {where} has no {qualname!r}{hint}; it defines: {listed}"
