"""More than one machine: the same reactor, its step work placed locally or on Ray.

Run it with ``.venv/bin/python examples/placement.py`` (Ray comes with
``pip install 'reactor-swarm[ray]'``). Without ``REACTOR_RAY__ADDRESS`` the engine
starts a local Ray instance bound to 127.0.0.1 only; with it (``auto``, ``host:port``
or ``ray://host:10001``) the engine joins that cluster. The steps must be importable
there (a module of your package, not ``__main__``): this example imports its reactor
from ``examples/placed/library.py``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from actors import System
from actors.llm import Config, RayConfig
from examples.placed.library import Doc, Library
from reactor.app import Engine
from reactor.placement import RayNotInstalledError

DOCS = [
    Doc(title="tides", text="the moon pulls the sea twice a day"),
    Doc(title="orbits", text="planets fall around the sun forever"),
    Doc(title="comets", text="ice and dust with a tail that points away from the sun"),
]


def main() -> None:
    """Run the reactor locally, then with its scoring on Ray: same definition, same result."""
    config = Config(ray=RayConfig(num_cpus=2))
    with tempfile.TemporaryDirectory() as tmp, System(name="placement") as system:
        with Engine(system, db_path=Path(tmp) / "local.db", logging=False) as engine:
            local = engine.run(Library, {"docs": DOCS}, timeout=60)
        print("local:", [(s.title, s.score) for s in local["scores"]])
        try:
            ray_engine = Engine(
                system,
                db_path=Path(tmp) / "ray.db",
                config=config,
                placements={"Score": "ray"},  # the reactor itself does not change
                logging=False,
            )
        except RayNotInstalledError as exc:
            print(f"ray: not installed ({exc})")
            return
        with ray_engine:
            placed = ray_engine.run(Library, {"docs": DOCS}, timeout=120)
        print("ray:  ", [(s.title, s.score) for s in placed["scores"]])
        print("same result:", placed["best"] == local["best"], "| best:", placed["best"])
        print("scored in another process:", all(s.pid != os.getpid() for s in placed["scores"]))


if __name__ == "__main__":
    main()
