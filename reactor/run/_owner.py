"""Which process runs a run, and whether it is still alive.

Every ``RunStarted`` and ``RunResumed`` records its :class:`~reactor.Owner` (host, pid
and start time), so that a later process can tell a run that is still running
elsewhere from one whose process died (``interrupted``: it can be resumed).
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

from reactor.run._records import Owner

__all__ = ["THIS_PROCESS", "owner_alive"]

THIS_PROCESS = Owner(host=socket.gethostname(), pid=os.getpid(), started_at=time.time())
"""This process, as the owner of the runs it starts or resumes."""


def owner_alive(owner: Owner | None) -> bool | None:
    """Whether the process that ran a run is still alive (``None``: cannot tell).

    Only a process on this machine can be checked. A pid that is alive but started
    after the run's owner did belongs to another process (the pid was reused).
    """
    if owner is None or owner.host != socket.gethostname() or sys.platform == "win32":
        return None
    if owner.pid == THIS_PROCESS.pid:
        return owner.started_at == THIS_PROCESS.started_at  # else an earlier process
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
