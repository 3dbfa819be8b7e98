"""Retries, ``compensate`` and ``undo``: what happens when a step fails.

* A step is retried (up to ``max_retries``, with ``backoff``) when it returns
  ``Retry(reason)`` or fails transiently.
* ``compensate=fn(error, arguments)`` decides for other errors: ``Continue(value)``
  (carry on with that result), ``Retry()`` or ``Fail()``.
* When a step fails for good, every completed step with an ``undo=fn(value, arguments)``
  is undone, newest first, and the run fails with every error.

Run it with ``.venv/bin/python examples/dsl/compensate_undo.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from actors import System
from dsl import Continue, Fail, Input, Reactor, Retry, StepContext, step
from reactor import Engine, RunFailedError

LOG: list[str] = []


def quote_fallback(error: Exception, arguments: dict[str, Any]) -> Continue | Fail:
    """The price service failed: carry on with a list price, unless the item is unknown."""
    if isinstance(error, KeyError):
        return Fail()
    return Continue(100)


class Order(Reactor, returns="receipt"):
    """Reserve, price (compensated), charge (retried, and failing on request)."""

    item = Input(str)
    card_ok = Input(bool, default=True)

    @step(undo=lambda seat, arguments: LOG.append(f"release {seat}"))
    def reserve(item: str) -> str:
        LOG.append(f"reserve {item}")
        return f"{item}#1"

    @step(compensate=quote_fallback, max_retries=0)
    def price(item: str) -> int:
        msg = "the price service answered garbage"
        raise RuntimeError(msg)

    @step(max_retries=2, backoff=0.01)
    def charge(reserve: str, price: int, card_ok: bool, ctx: StepContext) -> str:
        if ctx.attempt == 1:
            return Retry("card terminal warming up")  # type: ignore[return-value]
        if not card_ok:
            msg = "card declined"
            raise ValueError(msg)
        return f"charged {price} for {reserve} on attempt {ctx.attempt}"

    @step
    def receipt(charge: str) -> str:
        return charge


def main() -> None:
    """One order that goes through, one whose card is declined (and is rolled back)."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "order.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print(engine.run(Order, {"item": "lamp"}))
        try:
            engine.run(Order, {"item": "desk", "card_ok": False})
        except RunFailedError as exc:
            print("failed:", [f"{e.step}: {e.message}" for e in exc.errors])
    print("log:", LOG)


if __name__ == "__main__":
    main()
