"""``reactor runs undo RUN_ID``: roll back a completed run (see ``Engine.undo``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from reactor.cli._parse import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from reactor.cli._runs import _configure_logging, usable_store

__all__ = ["run_undo"]


def run_undo(
    run_id: str,
    *,
    db: Path | None = None,
    log_level: str = "error",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Undo a completed run: 0 undone, 1 an undo failed, 2 refused (nothing undone)."""
    out, err = out or sys.stdout, err or sys.stderr
    from actors import System  # noqa: PLC0415 - keep the command's start fast
    from actors.store import Store  # noqa: PLC0415
    from reactor.app import Engine  # noqa: PLC0415
    from reactor.run import RunFailedError, UndoError  # noqa: PLC0415

    try:
        _configure_logging(log_level)
        path = usable_store(db, create=False)
        with System(Store.spec(path), name="reactor") as system, Engine(system) as engine:
            engine.undo(run_id)
    except (CliError, UndoError) as exc:
        err.write(f"reactor runs undo: error: {exc}\n")
        return exc.code if isinstance(exc, CliError) else EXIT_USAGE
    except RunFailedError as exc:
        err.write(f"reactor runs undo: {len(exc.errors)} undo(s) failed:\n")
        for error in exc.errors:
            err.write(f"  {error.step}: {error.message}\n")
        return EXIT_FAILED
    out.write(f"run {run_id} undone\n")
    return EXIT_OK
