"""The daemon benchmark's load generator: a child process speaking raw HTTP/1.1 on loopback.

It imports nothing but the standard library, so it starts fast and measures the server,
not a client library. Commands arrive as JSON lines on standard input; each answer is
one JSON line on standard output:

* ``{"op": "load", "port", "method", "path", "body", "token", "concurrency", "requests",
  "seconds"}``: ``concurrency`` keep-alive connections send requests back to back until
  ``requests`` were answered or ``seconds`` passed; answers ``{"latencies_ms", "wall_s",
  "errors"}``.
* ``{"op": "sse", "port", "path", "token", "clients"}``: opens that many SSE streams,
  answers ``{"ready": n}``, then reports the arrival time (``time.time()``) of the first
  event on each stream after each ``{"op": "mark"}``: ``{"arrivals": [...]}``.
* ``{"op": "close"}``: closes the streams; ``{"op": "exit"}`` ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from typing import Any


def _request(method: str, path: str, body: bytes, token: str) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    if length:
        await reader.readexactly(length)
    return status


async def _load(cmd: dict[str, Any]) -> dict[str, Any]:
    request = _request(
        cmd["method"],
        cmd["path"],
        json.dumps(cmd.get("body")).encode() if cmd.get("body") else b"",
        cmd["token"],
    )
    latencies: list[float] = []
    errors = 0
    remaining = [cmd["requests"]]
    deadline = time.perf_counter() + cmd["seconds"]

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", cmd["port"])
        try:
            while remaining[0] > 0 and time.perf_counter() < deadline:
                remaining[0] -= 1
                started = time.perf_counter()
                writer.write(request)
                status = await _read_response(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                if status >= 400:
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(cmd["concurrency"])))
    return {"latencies_ms": latencies, "wall_s": time.perf_counter() - started, "errors": errors}


class _Streams:
    def __init__(self) -> None:
        self.writers: list[asyncio.StreamWriter] = []
        self.arrivals: list[float] = []
        self.waiting = 0
        self.done = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []

    async def open(self, cmd: dict[str, Any]) -> int:
        request = _request("GET", cmd["path"], b"", cmd["token"])
        for _ in range(cmd["clients"]):
            reader, writer = await asyncio.open_connection("127.0.0.1", cmd["port"])
            writer.write(request)
            await reader.readuntil(b"\r\n\r\n")  # the response head
            self.writers.append(writer)
            self.tasks.append(asyncio.create_task(self._follow(reader)))
        return len(self.writers)

    async def _follow(self, reader: asyncio.StreamReader) -> None:
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            if b"event: " in chunk and self.waiting:
                self.arrivals.append(time.time())
                self.waiting -= 1
                if not self.waiting:
                    self.done.set()

    async def mark(self, timeout: float = 10.0) -> list[float]:
        self.arrivals, self.waiting = [], len(self.writers)
        self.done.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.done.wait(), timeout)
        return self.arrivals

    def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for writer in self.writers:
            writer.close()
        self.writers, self.tasks = [], []


async def _main() -> None:
    loop = asyncio.get_running_loop()
    streams = _Streams()
    pending_mark: asyncio.Task[list[float]] | None = None
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        cmd = json.loads(line)
        answer: dict[str, Any]
        match cmd["op"]:
            case "load":
                answer = await _load(cmd)
            case "sse":
                answer = {"ready": await streams.open(cmd)}
            case "arm":  # start waiting for the next event on every stream
                pending_mark = asyncio.create_task(streams.mark())
                await asyncio.sleep(0)
                answer = {"armed": True}
            case "collect":
                answer = {"arrivals": await pending_mark if pending_mark else []}
            case "close":
                streams.close()
                answer = {"closed": True}
            case _:
                return
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    asyncio.run(_main())
