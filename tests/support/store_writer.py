"""Append to a Store until killed, printing every acknowledged append (the SIGKILL test).

Run as ``python -m tests.support.store_writer DB_PATH`` from the repository root. Each
acknowledged append is printed, flushed, as one line ``ack STREAM SEQ ID``; other
lines (logs) never start with ``ack``. Several appends are in flight at any time, so
the process is usually killed in the middle of a group commit. It stops on its own after
``--seconds``, so a test that dies cannot leave it running for long.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from actors import AskError, System
from actors.store import Journal, Store


async def write(path: str, *, streams: int, in_flight: int, seconds: float) -> None:
    """Append ``{"n": n}`` to ``streams`` streams in turn, ``in_flight`` at a time."""
    async with System(Store.spec(path), name="writer", default_timeout=30.0) as system:
        journal = Journal(system.lookup("store"))
        window = asyncio.Semaphore(in_flight)
        running: set[asyncio.Task[None]] = set()

        async def append(stream: str, n: int) -> None:
            try:
                ack = await journal.append_async(stream, "Tick", {"n": n})
            except AskError as exc:
                print(f"error {exc}", file=sys.stderr, flush=True)
                return
            finally:
                window.release()
            print(f"ack {ack.stream_id} {ack.seq} {ack.id}", flush=True)

        loop = asyncio.get_running_loop()
        stop_at = loop.time() + seconds
        n = 0
        while loop.time() < stop_at:
            await window.acquire()
            n += 1
            task = asyncio.create_task(append(f"stream-{n % streams}", n))
            running.add(task)
            task.add_done_callback(running.discard)
        await asyncio.gather(*running)


def main(argv: list[str] | None = None) -> None:
    """Parse the arguments and write until killed (or until ``--seconds`` pass)."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", help="the database file")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args(argv)
    asyncio.run(
        write(args.path, streams=args.streams, in_flight=args.in_flight, seconds=args.seconds)
    )


if __name__ == "__main__":
    main()
