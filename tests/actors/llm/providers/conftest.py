"""Fixtures of the provider tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from actors.llm.providers._base import make_client
from tests.support.providers import QUICK


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A shared httpx client with :data:`~tests.support.providers.QUICK` timeouts."""
    http = make_client(timeouts=QUICK)
    yield http
    await http.aclose()
