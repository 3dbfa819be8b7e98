"""A step kind of your own: ``lookup``, a read from a key-value store, offline.

A kind is two halves and one registration:

* the definition (``LookupImpl`` and ``LookupKind``): what a step of the kind holds,
  which common options it takes (``max_retries``, ``timeout``, ...), how its arguments
  bind (here: the ``{placeholders}`` of its key), its shape in a Mermaid diagram, and
  how it is written to the journal when a step adds it while running;
* the executor (``LookupExecutor``): how one attempt runs, here a coroutine on the
  event loop whose result comes back to the run as a message;
* ``reactor.kinds.register(LookupKind(), LookupExecutor())``.

Then ``lookup("prices", "{sku}")`` is a step like any other: retried, journaled,
replayed on resume, drawn in the diagram.

Run it with ``.venv/bin/python examples/custom_kind.py``.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import otel
import reactor.kinds
from actors import System
from dsl import Input, Reactor, Source, StepDef, step
from dsl.kinds import Binder, CommonOptions, StepKind, template_arguments
from reactor.app import Engine
from reactor.run import Attempt, Cancellable, RunFailedError, StepExecutor

STORE: dict[str, dict[str, Any]] = {
    "prices": {"tea-100g": 4.5, "mug": 9.0},
    "settings": {"vat_rate": 0.2},
}
"""A stand-in for your key-value store (Redis, a config service, a SQLite table)."""


# -- the definition: what a lookup step is ----------------------------------------------


@dataclass(frozen=True, slots=True)
class LookupImpl:
    """Read ``key`` (a ``str.format`` template) from ``table``.

    Attributes:
        table: The table to read.
        key: The key; ``{name}`` placeholders are the step's arguments.
        default: The result when the key is missing (unless ``required``).
        required: Whether a missing key fails the step.
    """

    table: str
    key: str
    default: Any = None
    required: bool = True


class LookupKind(StepKind[LookupImpl]):
    """Steps that read one value from the store."""

    name = "lookup"
    impl = LookupImpl
    options = CommonOptions  # max_retries, backoff, timeout, where, guard, ...
    shape = ("[(", ")]")  # a cylinder: a database

    def bind(
        self, impl: LookupImpl, sources: Mapping[str, Any], binder: Binder
    ) -> tuple[LookupImpl, dict[str, Source]]:
        """One argument per placeholder of the key, bound by name like a template's."""
        if impl.table not in STORE:
            binder.fail(f"no table {impl.table!r} (tables: {', '.join(STORE)})")
        return impl, template_arguments(binder, [impl.key], sources)

    def describe(self, impl: LookupImpl) -> dict[str, Any]:
        """Plain data: a lookup added while running can be journaled and replayed."""
        fields = {"table": impl.table, "key": impl.key, "default": impl.default}
        return {"lookup": {**fields, "required": impl.required}}

    def rebuild(self, data: Mapping[str, Any]) -> LookupImpl:
        """What :meth:`describe` wrote."""
        return LookupImpl(**data["lookup"])


def lookup(
    table: str,
    key: str,
    /,
    *,
    default: Any = ...,
    args: Mapping[str, Any] | None = None,
    **options: Unpack[CommonOptions],
) -> Any:
    """A step whose result is ``STORE[table][key]`` (or ``default`` when it is missing)."""
    impl = LookupImpl(table, key, None if default is ... else default, default is ...)
    return StepDef(impl=impl, sources=dict(args or {}), options=dict(options))


# -- the executor: how an attempt runs ----------------------------------------------------


class LookupExecutor(StepExecutor):
    """Reads from the store on the event loop (where a real client's I/O would be)."""

    def start(self, attempt: Attempt[LookupImpl]) -> Cancellable:
        """Start the read; its value (or ``LookupError``) is the attempt's outcome."""
        impl = attempt.impl
        key = impl.key.format_map(attempt.arguments)
        return attempt.run(self._read(impl, key))

    async def _read(self, impl: LookupImpl, key: str) -> Any:
        await asyncio.sleep(0)  # a real store is awaited here
        table = STORE[impl.table]
        if key in table:
            return table[key]
        if impl.required:
            msg = f"{impl.table} has no key {key!r}"
            raise LookupError(msg)
        return impl.default


reactor.kinds.register(LookupKind(), LookupExecutor())


# -- using it -----------------------------------------------------------------------------


class Quote(Reactor):
    """Price a line of an order: two lookups and a step that combines them."""

    sku = Input(str)
    quantity = Input(int, default=1)
    price = lookup("prices", "{sku}", max_retries=2, timeout=1.0)
    vat_rate = lookup("settings", "vat_rate", default=0.0)

    @step
    def total(price: float, vat_rate: float, quantity: int) -> dict[str, float]:
        net = price * quantity
        return {"net": net, "gross": round(net * (1 + vat_rate), 2)}


def main() -> None:
    """Price two lines and one unknown item, against a throwaway SQLite file."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "kind.db")
    otel.configure_logging(level="warning")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        tea = engine.run(Quote, {"sku": "tea-100g", "quantity": 3})
        print("tea:", json.dumps(tea, sort_keys=True))
        try:
            engine.run(Quote, {"sku": "teapot"})
        except RunFailedError as exc:
            print("unknown item:", exc.errors[0].message)
    print(Quote.to_mermaid())


if __name__ == "__main__":
    main()
