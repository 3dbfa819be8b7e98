"""Which process (and which engine of it) runs a run, and whether it is still alive.

Every ``RunStarted`` and ``RunResumed`` records its :class:`~reactor.Owner` (host, pid,
start time and engine), so that a later process can tell a run that is still running
elsewhere from one whose process died (``interrupted``: it can be resumed).

Within one process, each :class:`~reactor.app.Engine` is an owner of its own
(:func:`engine_owner`): two engines on one journal (each on its own actor system, say)
would otherwise both take a run of the other's for their own. An engine's runs are
alive while the engine is (while its actor system, where its runs' actors live, runs;
until it is collected). An owner without an engine token, from an older journal, stands for its
whole process, as it did then.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from reactor.run._records import Owner

__all__ = ["THIS_PROCESS", "engine_owner", "forget_engine", "owner_alive"]

THIS_PROCESS = Owner(host=socket.gethostname(), pid=os.getpid(), started_at=time.time())
"""This process, as a whole (each engine owns its runs as :func:`engine_owner`)."""

_ENGINES: dict[str, Callable[[], bool]] = {}
"""The engines of this process by token: whether each is still alive."""
_engines_lock = threading.Lock()
_numbers = itertools.count(1)


def engine_owner(alive: Callable[[], bool]) -> Owner:
    """A new owner for one engine of this process; ``alive()`` says whether it still is.

    The token is the engine's number in this process and a random part (a pid and a
    start time are reused across processes; the random part tells two processes'
    first engines apart in messages).
    """
    token = f"{next(_numbers)}-{secrets.token_hex(3)}"
    with _engines_lock:
        _ENGINES[token] = alive
    return Owner(
        host=THIS_PROCESS.host,
        pid=THIS_PROCESS.pid,
        started_at=THIS_PROCESS.started_at,
        engine=token,
    )


def forget_engine(owner: Owner) -> None:
    """The engine of ``owner`` closed: its runs are no longer alive (resumable here)."""
    with _engines_lock:
        _ENGINES.pop(owner.engine, None)


def _here_alive(owner: Owner) -> bool:
    """Whether an owner with this process's pid is alive: this process, and its engine."""
    if owner.started_at != THIS_PROCESS.started_at:
        return False  # an earlier process with the same pid
    if not owner.engine:
        return True  # journaled before owners named their engine: the process owns it
    with _engines_lock:
        alive = _ENGINES.get(owner.engine)
    return alive is not None and alive()


def owner_alive(owner: Owner | None) -> bool | None:
    """Whether the process that ran a run is still alive (``None``: cannot tell).

    Only a process on this machine can be checked. A pid that is alive but started
    after the run's owner did belongs to another process (the pid was reused). An
    owner in this process is alive while its engine is (one without an engine token,
    from an older journal, while the process is: always).
    """
    if owner is None or owner.host != socket.gethostname() or sys.platform == "win32":
        return None
    if owner.pid == THIS_PROCESS.pid:
        return _here_alive(owner)
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    except OSError:
        return None
    state, started = _process_state(owner.pid)
    if state in ("Z", "X"):
        return False  # it died; its parent has not reaped it yet
    return started is None or started <= owner.started_at + 2.0


def _process_state(pid: int) -> tuple[str | None, float | None]:
    """A process's state letter and when it started (``time.time()``), from ``/proc``.

    ``(None, None)`` where there is no ``/proc`` (not Linux) or it cannot be read.
    """
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        btime = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return fields[0], btime + float(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None, None
