"""Each package's __all__ is exactly its public surface."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = [
    "actors",
    "actors.store",
    "actors.llm",
    "actors.llm.providers",
    "actors.llm.resources",
    "otel",
    "dsl",
    "reactor",
    "reactor.run",
    "reactor.kinds",
    "reactor.observe",
    "reactor.app",
    "reactor.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_exist_and_nothing_public_is_missing(name: str) -> None:
    """Every name in __all__ exists, and every public non-module attribute is in __all__."""
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert len(exported) == len(module.__all__), "no duplicates"
    for attr in exported:
        assert hasattr(module, attr), f"{name}.__all__ lists {attr!r}, which does not exist"
    public = {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and not inspect.ismodule(value)
    }
    assert public - exported == set(), f"{name} has public names missing from __all__"


@pytest.mark.parametrize("name", PACKAGES)
def test_implementation_modules_are_private(name: str) -> None:
    """Implementation lives in _private modules; public modules are few and deliberate."""
    import pkgutil

    module = importlib.import_module(name)
    public = [m.name for m in pkgutil.iter_modules(module.__path__) if not m.name.startswith("_")]
    allowed = {
        "otel": {"testing"},
        "actors": {"testing", "lowlevel", "store", "llm"},
        "actors.llm": {"providers", "resources"},
        "dsl": {"kinds"},
        "reactor": {"run", "kinds", "observe", "app", "cli"},
    }
    assert set(public) <= allowed.get(name, set())
