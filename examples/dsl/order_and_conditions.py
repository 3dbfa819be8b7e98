"""``wait_for``, ``where``, ``guard`` and ``timeout``: when a step runs, and whether.

* ``wait_for=["step"]``: run after that step without taking its result.
* ``where=fn(arguments)`` (or ``fn(arguments, context)``): run only if it is true;
  otherwise the step is skipped and its result is ``None``.
* ``guard=fn(arguments)``: return ``Shortcut(value)`` to use ``value`` without running
  the step (a cache), or ``None`` to run it.
* ``timeout=seconds``: an attempt that takes longer fails with ``timeout`` (retried
  like any transient failure, up to ``max_retries``).

Run it with ``.venv/bin/python examples/dsl/order_and_conditions.py``.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from actors import System
from dsl import Input, Reactor, Shortcut, step
from reactor import Engine

ORDER: list[str] = []
CACHE = {"tides": "cached forecast for tides"}


def cached(arguments: dict[str, Any]) -> Shortcut | None:
    hit = CACHE.get(arguments["place"])
    return Shortcut(hit) if hit is not None else None


class Forecast(Reactor, returns="report"):
    """Migrate before loading, look up with a cache, alert only when asked.

    A step skipped by ``where`` has no result, so steps that take it are skipped too:
    here nothing takes ``alert``'s.
    """

    place = Input(str)
    alerts = Input(bool, default=False)

    @step
    async def migrate() -> None:
        ORDER.append("migrate")

    @step(wait_for=["migrate"])
    async def load() -> str:
        ORDER.append("load")
        return "data"

    @step(guard=cached, timeout=5.0)
    async def forecast(place: str, load: str) -> str:
        await asyncio.sleep(0)
        return f"fresh forecast for {place} from {load}"

    @step(where=lambda arguments: arguments["alerts"])
    def alert(alerts: bool, forecast: str) -> None:
        ORDER.append(f"alert: {forecast}")

    @step
    def report(forecast: str) -> dict[str, Any]:
        return {"forecast": forecast}


def main() -> None:
    """One run served by the cache, one fresh with an alert."""
    db = Path(os.environ.get("REACTOR_DB") or Path(tempfile.mkdtemp()) / "forecast.db")
    with System() as system, Engine(system, db_path=db, logging=False) as engine:
        print(engine.run(Forecast, {"place": "tides"}))
        print(engine.run(Forecast, {"place": "harbour", "alerts": True}))
    print("order:", ORDER)


if __name__ == "__main__":
    main()
