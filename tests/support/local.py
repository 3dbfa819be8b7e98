"""A fake server's models behind one host ``local``: the catalog, engine and paths tests share.

The tests of the orchestration actors (fallback, consensus, strategies), their step
kinds and the reasoning sessions all run models on one fake server behind a ModelHost
called ``local`` (:func:`tests.support.hosts.start_host`); these build what sits on top.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from actors import System
from actors.llm import Catalog, Config, HostInventory, ModelConfig, ModelInfo
from actors.testing import FakeServer
from reactor.app import Engine

__all__ = ["asked", "local_catalog", "local_engine", "local_resolver"]


def asked(server: FakeServer) -> list[str]:
    """The models the server was asked to chat, in order."""
    return [c.model or "" for c in server.calls if c.path.endswith("/chat/completions")]


def local_resolver(system: System) -> Callable[[str, str | None], tuple[Any, str]]:
    """``(model, host) -> (host ref, model)`` with every model on ``local`` (or ``host``)."""

    def resolve(model: str, host: str | None) -> tuple[Any, str]:
        return system.lookup(host or "local"), model

    return resolve


def local_catalog(
    server: FakeServer,
    models: Iterable[str],
    *,
    embeddings: Iterable[str] = (),
    declared: Mapping[str, ModelConfig] | None = None,
    size_bytes: int | None = None,
) -> Catalog:
    """The catalog a fleet would build for ``server``: ``models`` resident on ``local``.

    Args:
        server: The fake server.
        models: Its chat models.
        embeddings: Its embedding models.
        declared: What ``[models]`` declares about them (tiers, strengths).
        size_bytes: Each chat model's size (``None``: unknown).
    """
    catalog = Catalog(declared=dict(declared or {}))
    infos = [ModelInfo(id=m, loaded=True, size_bytes=size_bytes) for m in models]
    infos += [ModelInfo(id=m, loaded=True, capabilities=("embeddings",)) for m in embeddings]
    catalog.add_host(
        "local",
        HostInventory(url=server.url, provider="openai", reachable=True, models=tuple(infos)),
    )
    return catalog


def local_engine(
    system: System,
    tmp_path: Path,
    models: Iterable[str],
    *,
    config: Config | None = None,
    catalog: Catalog | None = None,
) -> Engine:
    """An engine (its run store in ``tmp_path``) whose ``models`` are all on ``local``."""
    return Engine(
        system,
        db_path=tmp_path / "runs.db",
        logging=False,
        hosts=dict.fromkeys(models, "local"),
        config=config,
        catalog=catalog,
    )
