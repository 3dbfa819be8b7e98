"""Model hosts: what the actor path costs over raw asyncio + httpx, on the same transport.

One fake OpenAI-compatible server runs in a subprocess (``reactor fake-server``) and
answers every request after ``--latency`` (20 ms by default). Against it, in the same
run:

* ``raw``: ``--requests`` chat completions sent with plain asyncio + httpx on the aiohttp
  transport, at most ``--concurrency`` at a time (a semaphore), each answer parsed;
* ``actors``: the same requests fanned out through ``--hosts`` ModelHost actors whose
  ``max_parallel`` add up to the same concurrency, asked from asyncio code with
  ``Ref.ask_async``; each answer is a typed Completion;
* ``aiohttp``: the raw run on a plain aiohttp session, the transport under both (the
  hosts' requests go to it directly); ``fanout_vs_aiohttp_ratio`` is actors over it;
* ``default_httpx``: the raw run again on httpx's default transport, for the record.

Raw, actor and aiohttp runs alternate over ``--rounds`` rounds (after a warm-up); the
figures are medians over rounds. Then:

* ``stream_tokens_per_s``: streamed answers of ``--stream-words`` words each, through a
  ModelHost with ``stream=True``, all tokens counted over the wall time;
* ``failfast_p99_us``: with a model's breaker open, the round trip of a sync ask that is
  refused ``circuit_open`` (what a fail-fast costs the caller);
* ``fetch_p50_us`` / ``httpx_path_p50_us``: one chat completion at a time through the
  provider (``request_json``) on the default client, whose whole-answer requests go
  straight to aiohttp (``AioClient.fetch``), against the same calls through httpx's
  models on the same aiohttp transport (what every call cost before), alternating, with
  the server answering at once; ``fetch_vs_httpx`` is their ratio (lower: the direct
  path is cheaper), and the ``*_cpu_us`` figures the process's CPU time per call.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import httpx

import otel
from actors import AskError, FailureKind, System
from actors.llm import BreakerConfig, ChatRequest, Completion, HostConfig, ModelHost
from actors.llm.providers import Timeouts, make_client
from benchmarks._server import separate_server

__all__ = ["TARGETS", "main"]

TARGETS = {"fanout_ratio_max": 1.15, "failfast_p99_us_max": 1000.0}


@contextmanager
def fake_server(latency: float, words: int = 0) -> Iterator[str]:
    """``reactor fake-server`` serving ``bench`` in a subprocess, on the last CPU; its URL."""
    with separate_server(["bench"], latency=latency, words=words, pin=True) as url:
        yield url


def body(i: int) -> dict[str, Any]:
    return {"model": "bench", "messages": [{"role": "user", "content": f"question {i}"}]}


def _httpx_on_aiohttp(connections: int, timeouts: Timeouts) -> httpx.AsyncClient:
    """A plain httpx client on the aiohttp transport: the hosts' client before ``fetch``."""
    from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415 - imports aiohttp

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.AsyncClient(
        transport=AiohttpTransport(limits=limits, trust_env=False),
        timeout=httpx.Timeout(timeouts.read, connect=timeouts.connect, pool=None),
        trust_env=False,
    )


async def raw_run(url: str, n: int, concurrency: int, *, via: str = "aiohttp") -> float:
    """``n`` requests, ``concurrency`` at a time, ``via`` aiohttp, httpx_aiohttp or httpx."""
    import aiohttp  # noqa: PLC0415

    limit = asyncio.Semaphore(concurrency)
    target = f"{url}/v1/chat/completions"
    session = client = None
    if via == "aiohttp":
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    elif via == "httpx_aiohttp":
        client = _httpx_on_aiohttp(concurrency, Timeouts(read=60))
    else:
        client = make_client(max_connections=concurrency, timeouts=Timeouts(read=60), aiohttp=False)

    async def one(i: int) -> None:
        async with limit:
            if session is not None:
                async with session.post(target, json=body(i)) as answer:
                    data = await answer.json()
            else:
                assert client is not None
                data = (await client.post(target, json=body(i))).json()
            assert data["choices"][0]["message"]["content"]

    try:
        await one(-1)  # connect before the clock starts, as the actors' warm-up does
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(n)))
        return time.perf_counter() - started
    finally:
        if session is not None:
            await session.close()
        if client is not None:
            await client.aclose()


async def actors_run(system: System, names: Sequence[str], n: int) -> float:
    refs = [system.lookup(name) for name in names]
    requests = [ChatRequest.prompt("bench", f"question {i}") for i in range(n)]
    started = time.perf_counter()
    answers = await asyncio.gather(
        *(refs[i % len(refs)].ask_async(r, timeout=60) for i, r in enumerate(requests))
    )
    elapsed = time.perf_counter() - started
    assert all(isinstance(a, Completion) and a.content for a in answers)
    return elapsed


def fanout(args: argparse.Namespace) -> dict[str, Any]:
    per_host = max(1, args.concurrency // args.hosts)
    walls: dict[str, list[float]] = {"raw": [], "actors": [], "aiohttp": []}
    with fake_server(args.latency) as url, System(name="bench-hosts", default_timeout=60) as system:
        names = [f"host{i}" for i in range(args.hosts)]
        for name in names:
            settings = HostConfig(url=url, protocol="openai", max_parallel=per_host)
            system.spawn(ModelHost, name=name, args=(settings,))
        # Warm-up: connections, code paths.
        asyncio.run(raw_run(url, min(200, args.requests), args.concurrency, via="httpx_aiohttp"))
        asyncio.run(raw_run(url, min(200, args.requests), args.concurrency))
        asyncio.run(actors_run(system, names, min(200, args.requests)))
        sides = ["raw", "actors", "aiohttp"]
        for round_no in range(args.rounds):
            turn = round_no % len(sides)
            for side in sides[turn:] + sides[:turn]:
                if side == "actors":
                    wall = asyncio.run(actors_run(system, names, args.requests))
                else:
                    via = "httpx_aiohttp" if side == "raw" else "aiohttp"
                    wall = asyncio.run(raw_run(url, args.requests, args.concurrency, via=via))
                walls[side].append(wall)
        default = asyncio.run(raw_run(url, args.requests, args.concurrency, via="httpx"))
    raw_s, actors_s = statistics.median(walls["raw"]), statistics.median(walls["actors"])
    aiohttp_s = statistics.median(walls["aiohttp"])
    return {
        "raw_wall_s": round(raw_s, 4),
        "actors_wall_s": round(actors_s, 4),
        "fanout_ratio": round(actors_s / raw_s, 3),
        "aiohttp_wall_s": round(aiohttp_s, 4),
        "fanout_vs_aiohttp_ratio": round(actors_s / aiohttp_s, 3),
        "default_httpx_wall_s": round(default, 4),
        "default_httpx_ratio": round(default / raw_s, 2),
        "per_round": {f"{side}_wall_s": values for side, values in walls.items()},
    }


def streaming(args: argparse.Namespace) -> dict[str, Any]:
    with fake_server(0.0, words=args.stream_words) as url, System(name="bench-stream") as system:
        settings = HostConfig(url=url, protocol="openai", max_parallel=16)
        ref = system.spawn(ModelHost, name="s", args=(settings,))

        async def go(n: int) -> tuple[int, float]:
            started = time.perf_counter()
            answers = await asyncio.gather(
                *(
                    ref.ask_async(ChatRequest.prompt("bench", f"q{i}", stream=True), timeout=60)
                    for i in range(n)
                )
            )
            return sum(a.usage.output_tokens for a in answers), time.perf_counter() - started

        asyncio.run(go(4))
        tokens, wall = asyncio.run(go(args.stream_requests))
    return {"stream_tokens_per_s": round(tokens / wall, 1), "stream_tokens": tokens}


def failfast(args: argparse.Namespace) -> dict[str, Any]:
    import socket  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with System(name="bench-failfast", default_timeout=10) as system:
        breaker = BreakerConfig(failure_threshold=1, open_s=3600, max_open_s=3600)
        settings = HostConfig(url=f"http://127.0.0.1:{port}", protocol="openai", breaker=breaker)
        ref = system.spawn(ModelHost, name="down", args=(settings,))
        request = ChatRequest.prompt("bench", "x")
        kinds: list[FailureKind] = []
        try:
            ref.ask(request)
        except AskError as exc:  # the connection failure that opens the breaker
            kinds.append(exc.kind)
        samples = []
        for _ in range(args.failfast_n):
            started = time.perf_counter_ns()
            try:
                ref.ask(request)
            except AskError as exc:
                samples.append(time.perf_counter_ns() - started)
                kinds.append(exc.kind)
    if kinds[0] is not FailureKind.CONNECTION or set(kinds[1:]) != {FailureKind.CIRCUIT_OPEN}:
        msg = f"expected one connection failure, then only circuit_open; got {set(kinds)}"
        raise RuntimeError(msg)
    samples.sort()
    return {
        "failfast_p50_us": round(samples[len(samples) // 2] / 1000, 1),
        "failfast_p99_us": round(samples[int(len(samples) * 0.99)] / 1000, 1),
    }


async def _paths(url: str, n: int) -> dict[str, list[tuple[float, float]]]:
    """Wall and CPU time (us) per ``request_json``, on the direct and the httpx path."""
    from actors.llm.providers import provider_class  # noqa: PLC0415

    timeouts = Timeouts(read=60)
    direct = make_client(max_connections=8, timeouts=timeouts)
    through = _httpx_on_aiohttp(8, timeouts)
    cls = provider_class("openai")
    sides = {"fetch": cls(url, client=direct), "httpx": cls(url, client=through)}
    out: dict[str, list[tuple[float, float]]] = {"fetch": [], "httpx": []}
    try:
        for i in range(n + 50):  # the first 50 of each side warm up, uncounted
            order = ("fetch", "httpx") if i % 2 == 0 else ("httpx", "fetch")
            for side in order:
                cpu, wall = time.process_time_ns(), time.perf_counter_ns()
                answer = await sides[side].request_json(
                    "POST", "/v1/chat/completions", body(i), model="bench"
                )
                wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
                assert answer["choices"][0]["message"]["content"]
                if i >= 50:
                    out[side].append((wall / 1000, cpu / 1000))
    finally:
        await direct.aclose()
        await through.aclose()
    return out


def client_paths(args: argparse.Namespace) -> dict[str, Any]:
    """The direct aiohttp path of whole answers against httpx's, same run (see above)."""
    with fake_server(0.0) as url:
        samples = asyncio.run(_paths(url, args.paths_n))
    fetch_wall = statistics.median(w for w, _ in samples["fetch"])
    httpx_wall = statistics.median(w for w, _ in samples["httpx"])
    return {
        "fetch_p50_us": round(fetch_wall, 1),
        "httpx_path_p50_us": round(httpx_wall, 1),
        "fetch_vs_httpx": round(fetch_wall / httpx_wall, 3),
        "fetch_cpu_us": round(statistics.median(c for _, c in samples["fetch"]), 1),
        "httpx_path_cpu_us": round(statistics.median(c for _, c in samples["httpx"]), 1),
        "paths_calls": args.paths_n,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks hosts", description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--latency", type=float, default=0.02)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--stream-words", type=int, default=256)
    parser.add_argument("--stream-requests", type=int, default=32)
    parser.add_argument("--failfast-n", type=int, default=2000)
    parser.add_argument("--paths-n", type=int, default=1000, help="calls per side, client paths")
    parser.add_argument("--quick", action="store_true", help="small counts, for the tests")
    args = parser.parse_args(argv)
    otel.configure_logging(level="warning")
    if args.quick:
        args.requests, args.rounds, args.stream_requests, args.failfast_n = 100, 1, 4, 200
        args.paths_n = 50
    result: dict[str, Any] = {"requests": args.requests}
    result.update(fanout(args))
    result.update(streaming(args))
    result.update(failfast(args))
    result.update(client_paths(args))
    result["targets"] = TARGETS
    result["targets_met"] = {
        "fanout_ratio_max": result["fanout_ratio"] <= TARGETS["fanout_ratio_max"],
        "failfast_p99_us_max": result["failfast_p99_us"] < TARGETS["failfast_p99_us_max"],
    }
    result["meta"] = {
        "python": platform.python_version(),
        "httpx": importlib.metadata.version("httpx"),
        "httpx_aiohttp": importlib.metadata.version("httpx-aiohttp"),
        "cpu_count": os.cpu_count(),
        "latency_s": args.latency,
        "concurrency": args.concurrency,
        "hosts": args.hosts,
        "rounds": args.rounds,
    }
    print(json.dumps(result, indent=2))
    return 0
