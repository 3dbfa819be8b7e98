"""An asyncio web service that runs reactors: aiohttp, one System, one Engine, one loop.

Everything is started with ``async with`` / ``await`` on the service's own event loop,
so nothing blocks it: the System (its threads start off the loop), the model hosts
(``start_fleet_async``), the Engine (``async with Engine(...)``), and each request's
run (``await engine.run_async(...)``). Many requests run at once; SIGTERM (or Ctrl-C)
stops taking new connections, lets the requests in flight finish, then stops the
engine, the hosts and the System, in that order, and the process exits 0.

Run it from the repository root (``--offline`` uses the built-in fake LLM servers)::

    .venv/bin/python examples/service/briefing_service.py --port 8000 --offline
    curl -s -X POST http://127.0.0.1:8000/brief -d '{"topic": "tides"}'
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from typing import Any

from aiohttp import web

from actors import System
from actors.llm import Completion, Config, load_config, start_fleet_async
from actors.testing import fake_servers
from dsl import Input, Reactor, ask, step
from reactor import Engine, RunError

ENGINE = web.AppKey("engine", Engine)


class Brief(Reactor, returns="brief"):
    """Two questions to the default model at once, then one step that combines them."""

    topic = Input(str)
    case_for = ask("Give the strongest case for {topic}.")
    case_against = ask("Give the strongest case against {topic}.")

    @step
    def brief(topic: str, case_for: Completion, case_against: Completion) -> dict[str, str]:
        return {"topic": topic, "for": case_for.content, "against": case_against.content}


async def handle_brief(request: web.Request) -> web.Response:
    """``POST /brief {"topic": ...}``: run a Brief; its result as JSON."""
    try:
        body: Any = await request.json()
    except ValueError:
        return web.json_response({"error": "the body must be JSON"}, status=400)
    topic = body.get("topic") if isinstance(body, dict) else None
    if not isinstance(topic, str) or not topic.strip():
        return web.json_response({"error": "give a non-empty 'topic'"}, status=400)
    try:
        result = await request.app[ENGINE].run_async(Brief, {"topic": topic}, timeout=60)
    except RunError as exc:
        return web.json_response({"error": str(exc)}, status=502)
    return web.json_response(result)


async def handle_health(_request: web.Request) -> web.Response:
    """``GET /health``: 200 while the service runs."""
    return web.json_response({"status": "ok"})


async def serve(host: str, port: int, *, offline: bool) -> int:
    """Serve until SIGTERM or SIGINT, then shut everything down in order.

    Returns the exit status: 0, or 2 when the address cannot be listened on (a port in
    use, say), after the same orderly shutdown.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    config = Config.model_validate({"discovery": {"enabled": False}}) if offline else None
    async with System(name="briefing-service") as system:
        fleet = await start_fleet_async(
            system, config or await asyncio.to_thread(load_config), fallback=fake_servers
        )
        try:
            async with Engine(system, fleet=fleet) as engine:
                app = web.Application()
                app[ENGINE] = engine
                app.add_routes(
                    [web.post("/brief", handle_brief), web.get("/health", handle_health)]
                )
                runner = web.AppRunner(app)
                await runner.setup()
                try:
                    await web.TCPSite(runner, host, port).start()
                except OSError as exc:
                    print(f"cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr)
                    await runner.cleanup()
                    return 2
                bound = runner.addresses[0][1]
                print(f"serving on http://{host}:{bound}", flush=True)
                await stop.wait()
                print("stopping: finishing the requests in flight", flush=True)
                await runner.cleanup()  # stops listening, waits for running handlers
        finally:
            await fleet.close_async()
    print("stopped", flush=True)
    return 0


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free one)")
    parser.add_argument("--offline", action="store_true", help="use the built-in fake LLM servers")
    args = parser.parse_args()
    sys.exit(asyncio.run(serve(args.host, args.port, offline=args.offline)))


if __name__ == "__main__":
    main()
