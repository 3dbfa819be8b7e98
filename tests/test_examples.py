"""Every example in examples/ runs, and so does `reactor demo`."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.proc import ROOT, run_python

EXAMPLES = sorted([*(ROOT / "examples").glob("*.py"), *(ROOT / "examples" / "dsl").glob("*.py")])
DSL_OUTPUT = {
    "compose.py": "['Hello, Ada.', 'Hello, Grace!']",
    "group_around.py": "{'booked': 'moved 3', 'cents': {'result': 'moved 300', 'committed': True}}",
    "collect_template.py": "'title': 'tides: 2 facts, first: the moon pulls (the desk)'",
    "with_steps.py": "fetch_2 completed",
    "loop.py": "job done after 5 checks",
    "compensate_undo.py": "log: ['reserve lamp', 'reserve desk', 'release desk#1']",
    "halt_resume.py": "draft ran 1 time(s)",
    "ask.py": "'model': 'fake-large'",
    "order_and_conditions.py": "{'forecast': 'cached forecast for tides'}",
    "recurse_flunk_debug.py": "failed: too_long: forced_failure: 27 took 50 steps, over the limit",
}
"""A line each example in examples/dsl/ prints when it works (one per feature family)."""


def run(*args: str, env_db: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run a Python command from the repository root, with its own database file."""
    return run_python(*args, env={"REACTOR_DB": str(env_db)} if env_db is not None else None)


def test_there_are_examples() -> None:
    """The examples folder is not empty (so the next test is not vacuous)."""
    assert {p.name for p in EXAMPLES} >= {"quickstart.py", "supervision.py"}


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path, tmp_path: Path) -> None:
    """The example exits 0 and prints something (a DSL example: what shows it worked)."""
    result = run(str(path), env_db=tmp_path / "example.db")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    if path.parent.name == "dsl":
        assert DSL_OUTPUT[path.name] in result.stdout


def test_every_dsl_feature_family_has_an_example() -> None:
    """compose, group, around, collect, template, WithSteps, compensate, Halt, ask, wait_for."""
    sources = "\n".join(p.read_text() for p in (ROOT / "examples" / "dsl").glob("*.py"))
    for feature in (
        "compose(",
        "group(",
        "around(",
        "collect(",
        "template(",
        "WithSteps(",
        "compensate=",
        "undo=",
        "Halt(",
        "engine.resume(",
        "ask(",
        "wait_for=",
        "where=",
        "guard=",
        "recurse(",
        "flunk(",
        "debug(",
    ):
        assert feature in sources, feature
    assert set(DSL_OUTPUT) == {p.name for p in (ROOT / "examples" / "dsl").glob("*.py")}


def test_quickstart_shows_replies_and_nested_spans(tmp_path: Path) -> None:
    """The quickstart's output has both replies and the I/O span under the handler."""
    result = run(str(ROOT / "examples" / "quickstart.py"), env_db=tmp_path / "q.db")
    assert "sync:  Hello, Alan!" in result.stdout
    assert "async: Hello, Dr. Ada! / Hello, Grace!" in result.stdout
    assert "    Greeter Greet" in result.stdout
    assert "      io look_up_title" in result.stdout


def test_reactor_demo_runs_the_briefing_reactor(tmp_path: Path) -> None:
    """`reactor demo` runs parallel ask steps and a combining one, says which servers, records."""
    db = tmp_path / "demo.db"
    result = run("-m", "reactor", "demo", "--db", str(db), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert (
        "no LLM server found: using the built-in fake servers" in result.stderr
        or "LLM server " in result.stderr
    )
    report = json.loads(result.stdout[: result.stdout.index("\nthe run as journaled")])
    assert report["topic"]
    assert report["brief"]
    assert set(report["notes"]) == {"for", "against", "precedent"}
    assert report["tokens"] > 0
    assert report["editor_chosen_because"]  # the editor is a select step
    assert len(report["verdict"]["members"]) == 3  # a consensus step
    assert report["verdict"]["answer"]
    for name in ("question", "optimist", "sceptic", "historian", "verdict", "editor", "report"):
        assert f"{name} " in result.stdout  # the journaled steps table
    assert "completed" in result.stdout
    assert db.exists()


def test_actors_demo_runs_end_to_end(tmp_path: Path) -> None:
    """`reactor actors-demo` answers from sync and async code, survives a crash, traces."""
    db = tmp_path / "demo.db"
    result = run("-m", "reactor", "actors-demo", "--db", str(db))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "researchers restarted researcher-2" in out
    assert "sync ask: report 'actors'" in out
    assert "async ask: report 'asyncio'" in out
    assert "journaled as seqs [1, 2, 3]" in out
    assert "Editor timer retry researcher-2" in out
    # Without an LLM server on the default ports, the fakes answer, and the demo says so.
    assert "using the built-in fake servers" in out or "LLM server:" in out
    assert "ChatRequest" in out
    assert "chat fake-small" in out or "LLM server:" in out
    assert db.exists()


def test_asyncio_service_serves_concurrent_requests_and_stops_on_sigterm(tmp_path: Path) -> None:
    """The aiohttp example answers 12 requests at once, then exits 0 on SIGTERM."""
    import asyncio
    import os
    import signal
    import sys

    import httpx

    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["REACTOR_DB"] = str(tmp_path / "service.db")
    service = ROOT / "examples" / "service" / "briefing_service.py"
    proc = subprocess.Popen(
        [sys.executable, str(service), "--port", "0", "--offline"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("serving on http://127.0.0.1:"), first
        url = first.split()[-1]

        async def ask_all() -> list[httpx.Response]:
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                bad = await client.post("/brief", json={"topic": ""})
                assert bad.status_code == 400
                return await asyncio.gather(
                    *(client.post("/brief", json={"topic": f"topic {i}"}) for i in range(12))
                )

        answers = asyncio.run(ask_all())
        for i, answer in enumerate(answers):
            assert answer.status_code == 200, answer.text
            body = answer.json()
            assert body["topic"] == f"topic {i}"
            assert f"topic {i}" in body["for"]
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "stopping" in out
    assert out.rstrip().endswith("stopped")
    assert "Traceback" not in err


def test_asyncio_service_on_a_port_in_use_says_so_and_exits_2(tmp_path: Path) -> None:
    """A port already taken: one line naming the address, exit status 2, no traceback."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        service = ROOT / "examples" / "service" / "briefing_service.py"
        result = run(str(service), "--port", str(port), "--offline", env_db=tmp_path / "s.db")
    assert result.returncode == 2, result.stderr
    assert f"cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "Traceback" not in result.stderr
