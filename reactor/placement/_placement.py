"""The placement interface, the local placement, and the engine's choice per step.

Where a step's work runs is chosen in this order, the first that says wins:

1. the engine's ``placements`` entry for ``"Reactor.step"``;
2. the engine's ``placements`` entry for ``"Reactor"``;
3. the step's ``placement`` option (or, when it sets none, its reactor's ``placement``
   class keyword);
4. the engine's ``placement`` (default ``"local"``).

So an operator moves a reactor, or one of its steps, to a cluster (or back, for
development) from the engine or its configuration, and the reactor's definition does
not change. Only the step's own code moves: the Run actor, its journal, retries,
timeouts and supervision stay with the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from dsl import Placement
from dsl.kinds import LOCAL, RAY, placement_of
from reactor.placement._errors import RayNotInstalledError, UnknownPlacementError
from reactor.run import Attempt, Err, Outcome

if TYPE_CHECKING:
    from actors.llm import RayConfig

__all__ = ["LocalPlacement", "PlacedCall", "Placements", "StepPlacement"]


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """One call of a step's code, as a placement gets it.

    Attributes:
        fn: The step's function.
        kwargs: Its arguments (the :class:`~dsl.StepContext` included, if it takes one).
        is_async: Whether ``fn`` is a coroutine function.
        timeout: Seconds the call may take (``None``: no limit).
        trace: The trace context it runs in (``None``: not traced).
        placement: Where it was placed, with the resources it needs.
        step: The step's name.
        reactor: The reactor's name.
        run_id: The run.
        attempt: The attempt's number, from 1.
        result_type: The type its result decodes to (the step's return annotation).
    """

    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    is_async: bool
    timeout: float | None
    trace: Any
    placement: Placement
    step: str
    reactor: str
    run_id: str
    attempt: int
    result_type: Any = Any


class StepPlacement(Protocol):
    """Somewhere a step's code can run: the engine's process, a Ray cluster, ...

    Attributes:
        name: What ``Placement(where=...)`` names it by.
    """

    name: str

    def place(self, call: PlacedCall) -> Coroutine[Any, Any, Outcome] | None:
        """The coroutine that runs ``call`` there and yields its outcome.

        ``None``: run it in the engine's own process (the event loop or the worker
        pool), as without any placement. The coroutine keeps to ``call.timeout``, and
        when it is cancelled it stops the work it started.
        """
        ...

    def close(self) -> None:
        """Let go of what it holds (a cluster connection it made, its actors)."""
        ...


class LocalPlacement:
    """The engine's process: ``async def`` on the event loop, ``def`` in the worker pool."""

    name = LOCAL

    def place(self, call: PlacedCall) -> None:
        """``None``: the engine runs the call itself."""
        del call

    def close(self) -> None:
        """Nothing to let go of."""


async def _failed(error: BaseException) -> Outcome:
    return Err(error)


class Placements:
    """The engine's placer: picks each step's placement and hands its calls there.

    Args:
        default: Where steps run that nobody placed (``"local"``, ``"ray"``, a
            :class:`~dsl.Placement`).
        overrides: ``"Reactor"`` or ``"Reactor.step"`` to a placement, winning over
            the definition (see the module's docstring for the order).
        targets: Placements of your own (or configured ones) by name; ``"local"`` is
            always there, and ``"ray"`` is made on first use (from ``ray``).
        ray: How to reach Ray when a step is first placed there (``None``: the
            ``[ray]`` section of the configuration, ``REACTOR_RAY__ADDRESS``, ...).

    Raises:
        ValueError: A placement that is not one (naming the entry).
        RayNotInstalledError: The default or an override is Ray, and Ray is missing.
    """

    def __init__(
        self,
        default: str | Placement | None = None,
        overrides: Mapping[str, str | Placement] | None = None,
        *,
        targets: Mapping[str, StepPlacement] | None = None,
        ray: RayConfig | None = None,
    ) -> None:
        self.default = _checked("placement", default) or Placement(LOCAL)
        self.overrides = {
            key: _checked(f"placements[{key!r}]", value) or Placement(LOCAL)
            for key, value in (overrides or {}).items()
        }
        self._targets: dict[str, StepPlacement] = {LOCAL: LocalPlacement()}
        self._targets.update(targets or {})
        self._ray_config = ray
        self._simple = not self.overrides and self.default.where == LOCAL
        named = {"the engine's placement": self.default}
        named.update({f"placements[{k!r}]": v for k, v in self.overrides.items()})
        for where, placement in named.items():
            if placement.where == RAY:
                try:
                    self.target(RAY)
                except RayNotInstalledError:
                    raise RayNotInstalledError(where) from None

    def target(self, name: str) -> StepPlacement:
        """The placement called ``name`` (Ray's is made here on first use).

        Raises:
            UnknownPlacementError: No such placement.
            RayNotInstalledError: ``"ray"``, and Ray is not installed.
        """
        found = self._targets.get(name)
        if found is not None:
            return found
        if name == RAY:
            from reactor.placement._ray import RayPlacement  # noqa: PLC0415 - Ray is optional

            made = RayPlacement(self._ray_config)
            self._targets[RAY] = made
            return made
        known = ", ".join(sorted({*self._targets, RAY}))
        msg = f"no placement named {name!r} (known: {known})"
        raise UnknownPlacementError(msg)

    def resolve(self, reactor: str, step: str, own: Placement | None) -> Placement:
        """Where ``reactor``'s ``step`` runs, given its own (or its reactor's) placement."""
        overrides = self.overrides
        if overrides:
            found = overrides.get(f"{reactor}.{step}") or overrides.get(reactor)
            if found is not None:
                return found
        return own or self.default

    def __call__(
        self, attempt: Attempt[Any], fn: Callable[..., Any], kwargs: dict[str, Any], is_async: bool
    ) -> Coroutine[Any, Any, Outcome] | None:
        """The coroutine that runs the attempt's call where it is placed (``None``: here)."""
        spec = attempt.spec
        own: Placement | None = getattr(spec, "placement", None)
        if own is None and self._simple:
            return None
        placement = self.resolve(attempt.reactor, spec.name, own)
        if placement.where == LOCAL:
            return None
        try:
            target = self.target(placement.where)
        except UnknownPlacementError as exc:
            return _failed(exc)
        except ImportError:
            where = f"step {spec.name!r} of reactor {attempt.reactor!r}"
            return _failed(RayNotInstalledError(where))
        impl = attempt.impl
        result_type = getattr(impl, "result_type", Any) if getattr(impl, "fn", None) is fn else Any
        call = PlacedCall(
            fn=fn,
            kwargs=kwargs,
            is_async=is_async,
            timeout=spec.timeout,
            trace=attempt.trace,
            placement=placement,
            step=spec.name,
            reactor=attempt.reactor,
            run_id=attempt.run_id,
            attempt=attempt.number,
            result_type=result_type,
        )
        return target.place(call)

    def close(self) -> None:
        """Close every placement that was made (a Ray connection this engine started)."""
        for target in self._targets.values():
            target.close()


def _checked(what: str, given: Any) -> Placement | None:
    try:
        return placement_of(given)
    except ValueError as exc:
        msg = f"{what}: {exc}"
        raise ValueError(msg) from exc
