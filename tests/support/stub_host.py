"""A stand-in ModelHost for ResourceMonitor tests: inventory and unloading, no HTTP."""

from __future__ import annotations

import msgspec

from actors import Actor, Failure, FailureKind
from actors.llm._messages import HostInventory, InventoryQuery, LoadedModel, ModelInfo, UnloadModel

GIB = 1024**3


def model(
    name: str,
    *,
    loaded: bool | None = True,
    vram_gb: float | None = None,
    size_gb: float | None = None,
    last_used: float | None = None,
    in_flight: int = 0,
) -> ModelInfo:
    """A ModelInfo with sizes in GiB."""
    return ModelInfo(
        id=name,
        loaded=loaded,
        vram_bytes=int(vram_gb * GIB) if vram_gb is not None else None,
        size_bytes=int(size_gb * GIB) if size_gb is not None else None,
        last_used=last_used,
        in_flight=in_flight,
    )


class StubHost(Actor[InventoryQuery | UnloadModel]):
    """Answers InventoryQuery from ``models`` and UnloadModel by marking a model unloaded.

    Args:
        host: Its host name.
        models: Its models by id; the test may change them between polls.
        unloads: Every UnloadModel it receives, in order (model ids).
        fail_unload: Models whose unloading fails with ``server_error``.
        silent: Never answer InventoryQuery (a host that hangs).
        queries: The ``refresh`` flag of every InventoryQuery, in order.
    """

    def __init__(
        self,
        host: str,
        models: dict[str, ModelInfo],
        unloads: list[str] | None = None,
        fail_unload: frozenset[str] = frozenset(),
        *,
        silent: bool = False,
        queries: list[bool] | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.models = models
        self.unloads = unloads if unloads is not None else []
        self.fail_unload = fail_unload
        self.silent = silent
        self.queries = queries if queries is not None else []

    def receive(self, message: InventoryQuery | UnloadModel) -> object:
        """Answer from the shared model table."""
        match message:
            case InventoryQuery(refresh=refresh):
                self.queries.append(refresh)
                if self.silent:
                    self.defer_reply()
                    return None
                return HostInventory(
                    url="http://127.0.0.1:9",
                    server="stub",
                    provider="ollama",
                    reachable=True,
                    host=self.host,
                    models=tuple(self.models.values()),
                )
            case UnloadModel(model=name):
                self.unloads.append(name)
                if name in self.fail_unload:
                    return Failure(
                        kind=FailureKind.SERVER_ERROR,
                        message=f"server refused to unload {name}",
                        source=self.host,
                    )
                current = self.models.get(name)
                if current is not None:
                    self.models[name] = msgspec.structs.replace(
                        current, loaded=False, vram_bytes=None
                    )
                return LoadedModel(host=self.host, model=name, loaded=False)
