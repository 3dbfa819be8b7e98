"""A daemon served in-process over loopback, with a fake OpenAI-compatible server behind it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import otel
from actors.llm import load_config
from actors.testing import FakeModel, FakeServer
from reactor.daemon import Daemon

SUPPORT = Path(__file__).resolve().parents[2] / "support" / "daemon_reactors.py"
TOKEN = "test-token-0123456789"
REACTORS = [f"{SUPPORT}:{name}" for name in ("Greet", "Gate", "Asker", "Approval")]


def write_config(folder: Path, fake_url: str) -> Path:
    """A configuration naming only the fake server (no discovery)."""
    path = folder / "config.toml"
    path.write_text(
        f'[hosts.fake]\nurl = "{fake_url}"\nprotocol = "openai"\n\n'
        "[discovery]\ndefault_ports = false\n"
    )
    return path


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer]:
    """A fake LLM server with two chat models and an embedding model."""
    models: list[str | FakeModel] = [
        "fake-small",
        "fake-large",
        FakeModel("fake-embed", embeddings=True),
    ]
    with FakeServer("openai", models=models) as server:
        yield server


@pytest.fixture(scope="module")
def daemon(fake: FakeServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Daemon]:
    """A started daemon on 127.0.0.1, a free port, a known token; stopped afterwards.

    Logging is pointed at the real standard error first: a CLI test run before may have
    left structlog writing to a captured stream that pytest has closed since.
    """
    otel.configure_logging(format="console", level="warning", stream=sys.__stderr__)
    folder = tmp_path_factory.mktemp("daemon")
    config = load_config(write_config(folder, fake.url), env={})
    served = Daemon(
        config,
        db_path=folder / "daemon.db",
        port=0,
        token=TOKEN,
        discovery=False,
        reactors=REACTORS,
        grace_s=2.0,
    )
    served.start()
    try:
        yield served
    finally:
        served.stop()


@pytest.fixture
def client(daemon: Daemon) -> Iterator[httpx.Client]:
    """An HTTP client with the token."""
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=daemon.url, headers=headers, timeout=30.0) as http:
        yield http
