"""Shared fixtures: a running System that is always stopped, and span capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import otel
from actors import System
from otel.testing import InMemorySpanExporter, capture_spans


@pytest.fixture(autouse=True, scope="session")
def quiet_logs() -> None:
    """Runtime log lines at warning and above, on standard error (captured per test)."""
    otel.configure_logging(level="warning")


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
