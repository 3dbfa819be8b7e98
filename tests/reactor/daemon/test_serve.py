"""`reactor serve` as a subprocess: the CLI as its client, --check, and SIGTERM drain mid-run."""

from __future__ import annotations

import contextlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest

from actors.testing import FakeServer
from reactor.cli import main
from tests.reactor.daemon.conftest import REACTORS, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

REACTOR = str(Path(sys.executable).parent / "reactor")


class Served:
    """A `reactor serve` child process and how to reach it."""

    def __init__(self, process: subprocess.Popen[str], url: str, token_file: Path) -> None:
        self.process = process
        self.url = url
        self.token_file = token_file

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    def http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=30.0
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run a `reactor` client command against this daemon (in this process: faster)."""
        out, err = io.StringIO(), io.StringIO()
        argv = [*args, "--server", self.url, "--token-file", str(self.token_file)]
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
        return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _serve(folder: Path, fake: FakeServer) -> Served:
    config = write_config(folder, fake.url)
    args = [
        REACTOR, "serve", "--port", "0", "--config", str(config), "--db", str(folder / "d.db"),
        "--token-file", str(folder / "token"), "--grace", "2", "--log-level", "warning",
    ]  # fmt: skip
    for locator in REACTORS:
        args += ["--reactor", locator]
    process = subprocess.Popen(
        args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=folder
    )
    assert process.stderr is not None
    urls: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_drain, args=(process.stderr, urls), daemon=True).start()
    url = urls.get(timeout=120)
    assert url, "the daemon exited before it listened"
    return Served(process, url, folder / "token")


def _drain(stderr: IO[str], urls: queue.Queue[str]) -> None:
    """Read the daemon's standard error to its end (so it never blocks on a full pipe)."""
    with stderr:
        for line in stderr:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                urls.put(found.group(1))
    urls.put("")


def _stop(served: Served) -> int:
    served.process.send_signal(signal.SIGTERM)
    return served.process.wait(30)


@pytest.fixture
def served(fake: FakeServer, tmp_path: Path) -> Iterator[Served]:
    """A daemon in a child process; stopped with SIGTERM afterwards."""
    child = _serve(tmp_path, fake)
    try:
        yield child
    finally:
        if child.process.poll() is None:
            _stop(child)


def test_cli_client_commands(served: Served) -> None:
    """Echollama's commands and `runs --server` talk to the daemon with the token file."""
    assert os.stat(served.token_file).st_mode & 0o077 == 0
    created = served.cli(
        "create-agent", "helper", "--models", "fake-small,fake-large",
        "--description", "helps", "--prefer", "generate=fake-large", "--json",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    agent = json.loads(created.stdout)
    assert agent["models"] == ["fake-small", "fake-large"]
    listed = served.cli("list-agents")
    assert "helper" in listed.stdout
    assert "generate=fake-large" in listed.stdout
    shown = served.cli("agents", "show", agent["id"], "--json")  # `agents ... --server`
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["name"] == "helper"
    updated = served.cli("agents", "update", agent["id"], "--description", "helps more")
    assert updated.returncode == 0, updated.stderr
    assert "helper" in served.cli("agents", "list").stdout

    tasks = served.cli(
        "run-tasks", agent["id"], "--tasks", "generate:hello", "chat:hi", "--sequential"
    )
    assert tasks.returncode == 0, tasks.stderr
    assert "task-1 [generate] completed on fake/fake-large" in tasks.stdout
    assert "status: completed" in tasks.stdout

    workflow = served.cli(
        "run-workflow",
        agent["id"],
        "--steps",
        "draft:generate:write",
        "edit:generate:improve {{draft}}",
        "--json",
    )
    assert workflow.returncode == 0, workflow.stderr
    answer = json.loads(workflow.stdout)
    assert answer["success"] is True
    assert answer["steps"][1]["input"].startswith("improve [fake-large]")

    started = served.cli("runs", "start", "Greet", "--input", "name=cli", "--json")
    run_id = json.loads(started.stdout)["run_id"]
    with served.http() as http, http.stream("GET", f"/api/runs/{run_id}/events") as stream:
        for _ in stream.iter_lines():
            pass
    shown = served.cli("runs", "show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert "completed" in shown.stdout
    assert "HELLO CLI!" in shown.stdout
    assert run_id in served.cli("runs", "list").stdout

    deleted = served.cli("delete-agent", agent["id"])
    assert f"deleted agent {agent['id']}" in deleted.stdout
    missing = served.cli("delete-agent", agent["id"])
    assert missing.returncode == 2
    assert "no agent" in missing.stderr


def test_cli_reports_a_wrong_token(served: Served, tmp_path: Path) -> None:
    """A wrong token is one error line naming what is missing."""
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    result = subprocess.run(
        [REACTOR, "list-agents", "--server", served.url, "--token-file", str(wrong)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "REACTOR_TOKEN": ""},
    )  # fmt: skip
    assert result.returncode == 1
    assert "wrong token" in result.stderr


def test_sigterm_drains_and_the_run_resumes(fake: FakeServer, tmp_path: Path) -> None:
    """SIGTERM mid-run: the daemon exits 0 leaving the run resumable; the next start resumes it."""
    gate = tmp_path / "gate"
    first = _serve(tmp_path, fake)
    with first.http() as http:
        run_id = http.post(
            "/api/runs", json={"reactor": "Gate", "inputs": {"gate": str(gate)}}
        ).json()["run_id"]
        with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
            for line in stream.iter_lines():
                if line == "event: StepCompleted":
                    break
    assert _stop(first) == 0

    second = _serve(tmp_path, fake)
    try:
        with second.http() as http:
            run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
            assert run["resumed"] == 1
            gate.write_text("opened after the restart")
            with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
                for _ in stream.iter_lines():
                    pass
            run = http.get(f"/api/runs/{run_id}").json()
            assert run["status"] == "completed"
            assert run["result"] == "opened after the restart"
    finally:
        _stop(second)


def test_a_workflow_interrupted_by_sigterm_resumes_at_the_next_start(
    fake: FakeServer, tmp_path: Path
) -> None:
    """A REST workflow stopped mid-run by SIGTERM goes on when the daemon starts again."""
    gate = tmp_path / "workflow-gate"
    first = _serve(tmp_path, fake)
    steps = [
        "draft:generate:write a line",
        f"hold:wait_file:{gate}",
        "final:generate:{{draft}} / {{hold}}",
    ]
    with first.http() as http:
        started = http.post("/api/orchestration/workflows", json={"steps": steps, "wait": False})
        assert started.status_code == 202, started.text
        run_id = started.json()["run_id"]
        with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
            event = ""
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif event == "StepStarted" and '"step":"hold"' in line:
                    break  # the draft is done; hold waits for the gate
    assert _stop(first) == 0

    second = _serve(tmp_path, fake)
    try:
        with second.http() as http:
            run: dict[str, Any] = http.get(f"/api/runs/{run_id}").json()
            assert run["resumed"] == 1
            assert run["status"] == "running"
            gate.write_text("held until the restart")
            with http.stream("GET", f"/api/runs/{run_id}/events") as stream:
                for _ in stream.iter_lines():
                    pass
            run = http.get(f"/api/runs/{run_id}").json()
            assert run["status"] == "completed", run["errors"]
            draft, hold, final = run["result"]
            assert hold["output"] == "held until the restart"
            assert "held until the restart" in final["input"]
            assert draft["output"] in final["input"]
    finally:
        _stop(second)


def test_serve_check(tmp_path: Path, fake: FakeServer, capsys: pytest.CaptureFixture[str]) -> None:
    """--check validates and exits: 0 when fine, 2 naming a reactor that cannot load."""
    config = write_config(tmp_path, fake.url)
    common = ["serve", "--check", "--config", str(config), "--token-file", str(tmp_path / "t")]
    assert main([*common, "--reactor", REACTORS[0]]) == 0
    out = capsys.readouterr().out
    assert "configuration OK" in out
    assert "Greet" in out
    assert main([*common, "--reactor", "no/such/file.py:Thing"]) == 2
    assert "no/such/file.py:Thing" in capsys.readouterr().err
    assert main([*common, "--host", "0.0.0.0"]) == 0
    assert "reachable from other machines" in capsys.readouterr().err
