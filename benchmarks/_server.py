"""A fake LLM server in a child process, for the benchmarks that time calls to one.

A real LLM server is another process. A :class:`~actors.testing.FakeServer` on a
thread of the measuring process would share its interpreter lock: the server's own
request handling would run on the interpreter the measured calls use, and be timed
with them (on a two-core machine, by a lot and unevenly). The overhead figures
(selection, fallback, consensus, the hosts' fan-out) are taken against this server.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence

__all__ = ["separate_server"]


@contextlib.contextmanager
def separate_server(
    models: Sequence[str], *, latency: float = 0.0, words: int = 0, pin: bool = False
) -> Iterator[str]:
    """Run ``reactor fake-server`` (OpenAI protocol) serving ``models``; yield its URL.

    Args:
        models: The model ids it serves (all loaded).
        latency: Seconds before every response.
        words: Words in every reply (0: the fake's default replies).
        pin: Keep the server on the last CPU, away from the measured process.
    """
    command = [sys.executable, "-m", "reactor", "fake-server", "--protocol", "openai"]
    command += ["--models", ",".join(models), "--latency", str(latency)]
    if words:
        command += ["--reply-words", str(words)]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=_last_cpu if pin else None,  # noqa: PLW1509 - only sets the affinity
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # the banner, once the port is bound
        url = next((part for part in line.split() if part.startswith("http://")), None)
        if url is None:
            msg = f"reactor fake-server did not start (it printed {line!r})"
            raise RuntimeError(msg)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def _last_cpu() -> None:
    """Run on the last CPU only (when there is more than one)."""
    count = os.cpu_count() or 1
    if count > 1:
        os.sched_setaffinity(0, {count - 1})
