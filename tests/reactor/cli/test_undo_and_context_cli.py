"""`reactor runs undo RUN_ID` and `reactor run --context KEY=VALUE`."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from actors import System
from reactor.app import Engine
from reactor.cli._parse import CliError, parse_context
from reactor.cli._runs import run_reactor
from reactor.cli._undo import run_undo
from tests.support.acceptance import LOG, Forgetful, Trip


@pytest.fixture(autouse=True)
def _keep_logging() -> Iterator[None]:
    """The command points structlog at its stream; put the suite's set-up back after."""
    saved = structlog.get_config()
    LOG.reset()
    yield
    structlog.configure(**saved)
    LOG.reset()


def test_parse_context_reads_key_value_pairs() -> None:
    """Values are strings; a pair without '=' or a repeated key is a usage error."""
    assert parse_context(["tenant=acme", "note=a=b"]) == {"tenant": "acme", "note": "a=b"}
    with pytest.raises(CliError, match="KEY=VALUE"):
        parse_context(["tenant"])
    with pytest.raises(CliError, match="given twice"):
        parse_context(["a=1", "a=2"])


def test_run_passes_the_context_to_the_run(tmp_path: Path) -> None:
    """`reactor run ... --context tenant=acme`: the steps read it; the result says so."""
    out, err = io.StringIO(), io.StringIO()
    code = run_reactor(
        "tests.support.acceptance:ContextEcho",
        context=["tenant=acme"],
        db=tmp_path / "runs.db",
        progress=False,
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue()) == {"tenant": "acme"}


def test_runs_undo_rolls_back_a_completed_run(system: System, tmp_path: Path) -> None:
    """Exit 0 and the run is undone; a second undo is refused with exit 2."""
    db = tmp_path / "runs.db"
    with Engine(system, db_path=db, logging=False) as engine:
        handle = engine.start(Trip, {"who": "ada"})
        handle.result(10)
        run_id = handle.run_id
    out, err = io.StringIO(), io.StringIO()
    assert run_undo(run_id, db=db, out=out, err=err) == 0, err.getvalue()
    assert out.getvalue() == f"run {run_id} undone\n"
    assert LOG.log[-1] == "undo seat for ada"
    out, err = io.StringIO(), io.StringIO()
    assert run_undo(run_id, db=db, out=out, err=err) == 2
    assert "was undone already" in err.getvalue()


def test_runs_undo_refuses_a_run_with_a_step_without_undo(system: System, tmp_path: Path) -> None:
    """Exit 2, naming the step; nothing is undone."""
    db = tmp_path / "runs.db"
    with Engine(system, db_path=db, logging=False) as engine:
        handle = engine.start(Forgetful)
        handle.result(10)
    err = io.StringIO()
    assert run_undo(handle.run_id, db=db, out=io.StringIO(), err=err) == 2
    assert "plain" in err.getvalue()
    assert LOG.log == []
