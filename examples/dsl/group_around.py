"""``group`` and ``around``: code that runs before, after or around a reactor's steps.

``group(Sub, before=fn, after=fn)`` calls ``before(args)`` first, then runs ``Sub``'s
steps, then ``after(args, result)`` whether they succeeded or not (``result`` is
``None`` when they failed), like ``try``/``finally``.

``around(Sub, wrapper)`` hands the steps to ``wrapper``, which must ``await run(args)``
exactly where they should run (inside a transaction, a lock, a temporary folder)::

    async def wrapper(args: dict[str, Any], run: Callable[[dict[str, Any]], Awaitable[Any]]) -> Any:
        ...  # set up
        result = await run(args)  # Sub's steps run here; args may be changed first
        ...  # tear down
        return result  # the step's result

Both take arguments for ``Sub`` as keywords, as ``compose`` does.

Run it with ``.venv/bin/python examples/dsl/group_around.py``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from actors import System
from dsl import Input, Reactor, around, group, ref, step
from reactor import Engine

EVENTS: list[str] = []


class Transfer(Reactor, returns="moved"):
    """The steps to wrap: one that 'moves' an amount."""

    amount = Input(int)

    @step
    def moved(amount: int) -> str:
        EVENTS.append(f"move {amount}")
        return f"moved {amount}"


def open_books(args: dict[str, Any]) -> None:
    EVENTS.append(f"before (amount {args['amount']})")


def close_books(args: dict[str, Any], result: Any) -> None:
    EVENTS.append(f"after: {result}")


async def in_transaction(
    args: dict[str, Any], run: Callable[[dict[str, Any]], Awaitable[Any]]
) -> Any:
    EVENTS.append("begin")
    try:
        result = await run({**args, "amount": args["amount"] * 100})  # in cents
    except BaseException:
        EVENTS.append("rollback")
        raise
    EVENTS.append("commit")
    return {"result": result, "committed": True}


class Ledger(Reactor, returns="report"):
    """One group and one around, each given its arguments explicitly."""

    euros = Input(int)

    booked = group(Transfer, before=open_books, after=close_books, amount=ref("euros"))
    cents = around(Transfer, in_transaction, amount=ref("euros"))

    @step
    def report(booked: str, cents: dict[str, Any]) -> dict[str, Any]:
        return {"booked": booked, "cents": cents}


def main() -> None:
    """Run Ledger and print its result and the order things happened in."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "group.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print(engine.run(Ledger, {"euros": 3}, max_concurrency=1))
    print("events:", sorted(EVENTS))


if __name__ == "__main__":
    main()
