"""Shared fixtures: a running System that is always stopped, and span capture."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from actors import System
from otel.testing import InMemorySpanExporter, capture_spans


@pytest.fixture
def system() -> Iterator[System]:
    """A started System with a short default deadline; stopped after the test."""
    with System(name="test", default_timeout=5.0) as running:
        yield running


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory, for the duration of the test."""
    with capture_spans() as exporter:
        yield exporter
