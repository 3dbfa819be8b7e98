"""`reactor discover` against running fake servers, and `reactor fake-server` itself.

The fakes are started the way a user would start them (``reactor fake-server`` in a
subprocess) and ``reactor discover`` runs as a command, so the whole path is real.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from actors.llm import probe
from actors.llm._discovery import discover_sync
from actors.testing import FakeModel, FakeServer
from tests.support.proc import ROOT, run_python


@contextmanager
def fake_server_process(protocol: str, models: str) -> Iterator[str]:
    command = ["-m", "reactor", "fake-server", "--protocol", protocol, "--models", models]
    proc = subprocess.Popen(
        [sys.executable, *command],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"fake {protocol} server on http://127.0.0.1:" in line, line
        yield next(part for part in line.split() if part.startswith("http://"))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def test_fake_server_command_serves_the_protocol() -> None:
    with fake_server_process("ollama", "llama3.2,qwen2.5") as url:
        tags = httpx.get(f"{url}/api/tags").json()
        assert [m["name"] for m in tags["models"]] == ["llama3.2", "qwen2.5"]


@pytest.mark.slow
def test_discover_lists_servers_and_models_as_a_table_and_as_json() -> None:
    with (
        fake_server_process("ollama", "llama3.2") as ollama,
        fake_server_process("lmstudio", "qwen2.5-7b,nomic-embed") as lmstudio,
    ):
        table = run_python("-m", "reactor", "discover", ollama, lmstudio, "--timeout", "2")
        assert table.returncode == 0, table.stderr
        assert f"{ollama}  ollama" in table.stdout
        assert f"{lmstudio}  lmstudio" in table.stdout
        assert "llama3.2" in table.stdout
        assert "qwen2.5-7b" in table.stdout
        assert "127.0.0.1:11434" in table.stdout  # the default ports are probed as well

        as_json = run_python(
            "-m", "reactor", "discover", ollama, "--json", "--no-defaults", "--timeout", "2"
        )
        assert as_json.returncode == 0, as_json.stderr
        (found,) = json.loads(as_json.stdout)
        assert found["server"] == "ollama"
        assert found["provider"] == "ollama"
        assert found["reachable"] is True
        assert [m["id"] for m in found["models"]] == ["llama3.2"]


def test_discover_exits_1_when_nothing_answers() -> None:
    result = run_python(
        "-m", "reactor", "discover", "http://127.0.0.1:9", "--no-defaults", "--timeout", "0.5"
    )
    assert result.returncode == 1
    assert "no answer" in result.stdout


def test_discover_says_why_an_endpoint_did_not_answer() -> None:
    """A host name that does not resolve is told apart from a refused connection."""
    unknown = asyncio.run(probe("http://no-such-host.invalid:11434", timeout=5))
    assert (unknown.reachable, unknown.error) == (
        False,
        "no answer (its host name does not resolve)",
    )
    refused = asyncio.run(probe("http://127.0.0.1:9", timeout=5))
    assert (refused.reachable, refused.error) == (False, "no answer (connection refused or failed)")


@pytest.mark.parametrize(
    ("protocol", "server", "provider"),
    [
        ("openai", "openai-compatible", "openai"),
        ("lmstudio", "lmstudio", "lmstudio"),
        ("ollama", "ollama", "ollama"),
        ("anthropic", "anthropic", "anthropic"),
        ("gemini", "gemini", "gemini"),
        ("llamacpp", "llamacpp", "openai"),
        ("llama-cpp-python", "llama-cpp-python", "openai"),
        ("vllm", "vllm", "openai"),
    ],
)
def test_each_server_kind_is_recognised(protocol: str, server: str, provider: str) -> None:
    models = [FakeModel("m1", loaded=True, size_bytes=2_000_000_000, vram_bytes=1_500_000_000)]
    with FakeServer(protocol, models=models) as fake:
        (found,) = discover_sync([fake.url], default_ports=False, timeout=2)
    assert (found.server, found.provider) == (server, provider)
    assert found.error is None, found.error
    assert [m.id for m in found.models] == ["m1"]


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (
            "http://127.0.0.1:99999",
            "'http://127.0.0.1:99999' is not a valid URL (Port out of range",
        ),
        ("http://[::1", "'http://[::1' is not a valid URL (Invalid IPv6 URL)"),
        ("notaurl", "must be an http:// or https:// URL with a host, not 'notaurl' (did you mean"),
        ("http://ada:hunter2@127.0.0.1:9", "'http://ada:***@127.0.0.1:9' has credentials in it"),
    ],
)
def test_discover_rejects_a_bad_url_with_one_line_and_exit_2(argument: str, expected: str) -> None:
    """A URL that cannot be probed is a usage error naming it (a password masked)."""
    result = run_python("-m", "reactor", "discover", argument, "--no-defaults")
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"reactor discover: error: {expected}")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_discover_rejects_a_timeout_of_zero() -> None:
    """`--timeout 0` would report live servers as dead: it is refused."""
    result = run_python("-m", "reactor", "discover", "--timeout", "0", "--no-defaults")
    assert result.returncode == 2
    assert "--timeout 0.0: must be a number of seconds > 0" in result.stderr


def test_discover_exits_1_when_only_an_unknown_server_answers() -> None:
    """Something answered, but not an LLM server discovery knows: no server was found."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Hello(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"hello")

        def log_message(self, *_args: object) -> None:
            pass

    with ThreadingHTTPServer(("127.0.0.1", 0), Hello) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{server.server_address[1]}"
        try:
            result = run_python("-m", "reactor", "discover", url, "--no-defaults", "--timeout", "2")
        finally:
            server.shutdown()
    assert result.returncode == 1, result.stdout + result.stderr
    assert url in result.stdout
