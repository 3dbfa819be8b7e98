"""Shared fixtures: a running System that is always stopped, and span capture."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

import otel
from actors import System
from otel.testing import InMemorySpanExporter, capture_spans


@pytest.fixture(autouse=True, scope="session")
def quiet_logs() -> None:
    """Runtime log lines at warning and above, on standard error (captured per test)."""
    otel.configure_logging(level="warning")


@pytest.fixture(autouse=True, scope="session")
def interruptible() -> None:
    """Ctrl-C reaches this process and the ones it starts, however pytest was started.

    A shell starts a background job (``make test &``, ``nohup``) with SIGINT ignored,
    and children inherit that: the tests that interrupt a ``reactor run`` or a Ray task
    (both by SIGINT) would then wait for an interrupt that never comes. Python's own
    handler here means the default disposition in every child it starts.
    """
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def system() -> Iterator[System]:
    """A started System (asks wait 20 s at most: a bound for a loaded machine); stopped after."""
    with System(name="test", default_timeout=20.0) as running:
        yield running


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for the duration of the test."""
    with capture_spans() as exporter:
        yield exporter
