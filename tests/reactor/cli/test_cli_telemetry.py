"""``reactor run`` and telemetry: SIGTERM flushes like Ctrl-C; a dead collector costs little.

Both run the command as a subprocess, as a user does, with the standard ``OTEL_*``
variables pointing at a loopback OTLP receiver (or at a port nobody listens on).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.otlp import OtlpReceiver, attributes
from tests.support.proc import ROOT, run_python

FLOW = """
import time
from dsl import Input, Reactor, step

class Nap(Reactor):
    seconds = Input(float)

    @step
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

class Quick(Reactor):
    x = Input(int)

    @step
    def double(x: int) -> int:
        return 2 * x
"""


def _flow(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(textwrap.dedent(FLOW), encoding="utf-8")
    return path


def _env(endpoint: str, db: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {
        **clean,
        "REACTOR_DB": str(db),
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": "60000",  # nothing leaves before the shutdown flush
    }


@pytest.mark.slow
def test_sigterm_cancels_the_run_and_flushes_its_spans(tmp_path: Path) -> None:
    """SIGTERM while a step runs: exit 130 like Ctrl-C, and the run's spans reach the collector."""
    flow = _flow(tmp_path)
    with OtlpReceiver() as receiver:
        proc = subprocess.Popen(
            [sys.executable, "-m", "reactor", "run", f"{flow}:Nap", "-i", "seconds=30"],
            cwd=ROOT,
            env=_env(receiver.endpoint, tmp_path / "runs.db"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "nap: running" in line:
                    break
            proc.send_signal(signal.SIGTERM)
            _out, err = proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == 130, err
        names = receiver.span_names()
    assert "reactor.run Nap" in names
    assert "reactor.step nap" in names
    run = next(s for s in receiver.received.spans if s.name == "reactor.run Nap")
    assert attributes(run.attributes)["reactor.status"] == "cancelled"


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.slow
def test_an_unreachable_collector_costs_one_warning_line(tmp_path: Path) -> None:
    """Spans for a collector nobody runs: the run succeeds and stderr has one warning line."""
    flow = _flow(tmp_path)
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    done = run_python(
        "-m", "reactor", "run", f"{flow}:Quick", "-i", "x=21", "--no-progress",
        env={k: v for k, v in _env(endpoint, tmp_path / "runs.db").items()
             if k.startswith(("OTEL_", "REACTOR_"))},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "42"
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    noise = [line for line in lines if not line.startswith("run ")]  # "run ... completed"
    assert len(noise) == 1, done.stderr
    assert noise[0].startswith("warning: exporting telemetry"), noise[0]
