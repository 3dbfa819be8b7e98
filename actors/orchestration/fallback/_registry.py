"""Where each chain's FallbackChain actor is found (or started, the first time it is used)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from actors import (
    ActorNotFound,
    ChildSpec,
    DuplicateActorName,
    Ref,
    Restart,
    SupervisorSpec,
    System,
)
from actors.llm import Catalog, FallbackChainConfig
from actors.lowlevel import start_child
from actors.orchestration.fallback._actor import FallbackChain, Resolver
from actors.orchestration.fallback._chain import Chain, chain_from_config

__all__ = ["Chains"]

_SUPERVISOR = "fallback"


class Chains:
    """The engine's fallback chains: one FallbackChain actor per chain, started on first use.

    A configured chain is named (``chain="cloud"``); a chain written in a reactor is its
    :class:`Chain` object, which lives as long as the reactor class, so every run of the
    step shares one actor and one health record.

    Args:
        system: The actor system.
        resolve: Finds a link's host.
        budget: The Budget actor every link's call is admitted by.
        configured: ``[fallback.chains]``.
        catalog: The model catalog (context windows of links that do not give theirs).
        selector: The Selector that ``auto`` links ask.
    """

    def __init__(
        self,
        system: System,
        resolve: Resolver,
        *,
        budget: Ref[Any] | None = None,
        configured: Mapping[str, FallbackChainConfig] | None = None,
        catalog: Catalog | None = None,
        selector: Ref[Any] | None = None,
    ) -> None:
        self.system = system
        self.resolve = resolve
        self.budget = budget
        self.catalog = catalog
        self.selector = selector
        self.configured = dict(configured or {})
        self._lock = threading.Lock()
        self._refs: dict[int, tuple[Chain, Ref[Any]]] = {}
        self._named: dict[str, Chain] = {}
        self._rendered: dict[Any, Chain] = {}
        self._supervisor: Ref[Any] | None = None
        self._parent()  # now, on the caller's thread: the first use may be on the I/O loop

    def chain(self, name: str) -> Chain:
        """The configured chain ``name``.

        Raises:
            LookupError: No chain has that name (the message lists those that do).
        """
        with self._lock:
            found = self._named.get(name)
            if found is None:
                if name not in self.configured:
                    known = ", ".join(sorted(self.configured)) or "none"
                    msg = f"no fallback chain {name!r} is configured (chains: {known})"
                    raise LookupError(msg)
                found = self._named[name] = chain_from_config(name, self.configured)
            return found

    def ref(self, chain: Chain | str, values: Mapping[str, Any] | None = None) -> Ref[Any]:
        """The FallbackChain actor for ``chain`` (a configured name, or a definition).

        A chain whose links are templates (``"{model}"``) is filled in from ``values``
        (the step's arguments); each distinct filling is a chain of its own, with its
        own actor and health record.

        Raises:
            LookupError: No configured chain has that name.
            KeyError: A template names a value that is not given.
        """
        definition = self.chain(chain) if isinstance(chain, str) else chain
        key: Any = id(definition)
        if definition.templated:
            filled = definition.render(values or {})
            key = (key, tuple(x.label for x in filled.links))
            with self._lock:
                known_filled = self._rendered.get(key)
                if known_filled is None:
                    self._rendered[key] = filled
                else:
                    filled = known_filled
            definition = filled
            key = id(definition)
        with self._lock:
            known = self._refs.get(key)
            if known is not None and known[1].is_alive():
                return known[1]
            spec = ChildSpec(
                name=f"fallback:{definition.name or id(definition)}:{len(self._refs)}",
                actor=FallbackChain,
                args=(definition, self.resolve),
                kwargs={"budget": self.budget, "catalog": self.catalog, "selector": self.selector},
                restart=Restart.PERMANENT,
            )
            ref = start_child(self._parent(), spec)
            self._refs[id(definition)] = (definition, ref)
            return ref

    def _parent(self) -> Ref[Any]:
        if self._supervisor is None:
            try:
                self._supervisor = self.system.lookup(_SUPERVISOR)
            except ActorNotFound:
                spec = SupervisorSpec(name=_SUPERVISOR, max_restarts=100, within=1.0, on_loop=True)
                try:
                    self._supervisor = self.system.spawn(spec)
                except DuplicateActorName:
                    self._supervisor = self.system.lookup(_SUPERVISOR)
        return self._supervisor
