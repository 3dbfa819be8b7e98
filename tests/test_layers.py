"""The packages import each other in DESIGN.md's order, and only through facades.

The check reads every ``import`` and ``from ... import`` in the source with :mod:`ast`
(those inside functions and under ``if TYPE_CHECKING:`` included), so it needs no
import to succeed and sees the imports a test run would never reach. Two rules:

1. **Order.** A package imports only packages above it in :data:`LAYERS` (or its own
   layer). A nested package that is not a layer of its own (``actors.llm.providers``,
   ``dsl.kinds``) belongs to the layer of its nearest listed ancestor; a package's own
   ``__init__`` may import its subpackages, since gathering them is its job.
2. **Facades.** Another package's private ``_module`` is never imported: its facade is
   the way in. A nested package may import its ancestors' private modules, because
   the ancestor's facade imports it and they change together.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

PACKAGES = ("otel", "actors", "dsl", "reactor")
"""The top-level packages checked (the project's own code)."""

LAYERS = (
    "otel",
    "actors",
    "actors.store",
    "actors.llm",
    "actors.orchestration",
    "actors.tools",
    "actors.agents",
    "actors.sessions",
    "actors.testing",
    "dsl",
    "reactor.run",
    "reactor.kinds",
    "reactor.placement",
    "reactor.observe",
    "reactor.app",
    "reactor.daemon",
    "reactor.cli",
    # The ``reactor`` package's own modules (its facade and ``__main__``) gather the
    # layers above; nothing above may import them.
    "reactor",
)
"""DESIGN.md's layout list, top to bottom: each may import only those before it."""

ALLOWED: frozenset[tuple[str, str]] = frozenset()
"""Known violations, as (file, imported module), each with the issue that removes it."""


@dataclass(frozen=True, slots=True)
class Violation:
    """One import that breaks a rule."""

    path: str
    line: int
    target: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.target}: {self.why}"


def layer_of(name: str, layers: tuple[str, ...] = LAYERS) -> int | None:
    """The index of the layer that holds the package or module ``name`` (longest prefix)."""
    best: int | None = None
    best_len = -1
    for index, layer in enumerate(layers):
        if (name == layer or name.startswith(layer + ".")) and len(layer) > best_len:
            best, best_len = index, len(layer)
    return best


def _owner_of_private(target: str) -> str | None:
    """The package a private module belongs to (``a.b._c.d`` -> ``a.b``), else None."""
    parts = target.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.startswith("__"):
            return ".".join(parts[:i])
    return None


def _is_module(root: Path, dotted: str) -> bool:
    base = root.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _targets(root: Path, node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The modules an import statement names (``from a import b`` is ``a.b`` if b is one)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        parts = package.split(".")
        parts = parts[: len(parts) - (node.level - 1)]
        base = ".".join([*parts, node.module] if node.module else parts)
    else:
        base = node.module or ""
    found = []
    for alias in node.names:
        sub = f"{base}.{alias.name}"
        if _is_module(root, sub):
            found.append(sub)
        elif alias.name.startswith("_") and alias.name != "*":
            found.append(sub)  # a private name: judged like a private module
        else:
            found.append(base)
    return found


def check(
    root: Path,
    packages: tuple[str, ...] = PACKAGES,
    layers: tuple[str, ...] = LAYERS,
) -> list[Violation]:
    """Every import under ``root``'s ``packages`` that breaks the order or a facade."""
    found: list[Violation] = []
    for top in packages:
        for path in sorted((root / top).rglob("*.py")):
            rel = path.relative_to(root)
            dotted = ".".join(rel.with_suffix("").parts)
            is_init = path.name == "__init__.py"
            package = dotted.removesuffix(".__init__") if is_init else dotted.rpartition(".")[0]
            mine = layer_of(package, layers)
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(rel))
            for node in ast.walk(tree):
                if not isinstance(node, ast.Import | ast.ImportFrom):
                    continue
                for target in dict.fromkeys(_targets(root, node, package)):
                    if target.split(".")[0] not in packages:
                        continue
                    why = _judge(package, is_init, mine, target, layers)
                    if why is not None:
                        found.append(Violation(rel.as_posix(), node.lineno, target, why))
    return found


def _judge(
    package: str, is_init: bool, mine: int | None, target: str, layers: tuple[str, ...]
) -> str | None:
    """Why importing ``target`` from ``package`` is wrong, or None when it is fine."""
    owner = _owner_of_private(target)
    if owner is not None and owner != package and not package.startswith(owner + "."):
        return f"a private module of {owner} (import its facade, {owner})"
    if is_init and target.startswith(package + "."):
        return None  # a facade gathers its own subpackages
    theirs = layer_of(target, layers)
    if mine is None or theirs is None:
        return f"{package} or {target} is in no layer (add it to LAYERS, in DESIGN.md's order)"
    if theirs > mine:
        return f"{layers[theirs]} is below {layers[mine]} in DESIGN.md's order"
    return None


def test_the_packages_import_only_upwards_and_through_facades() -> None:
    """No package imports one below it, or another package's private module."""
    violations = [v for v in check(ROOT) if (v.path, v.target) not in ALLOWED]
    assert not violations, "\n".join(map(str, violations))


def test_the_allowlist_has_no_stale_entries() -> None:
    """Each allowed violation still exists (delete the entry once it is fixed)."""
    present = {(v.path, v.target) for v in check(ROOT)}
    assert present >= ALLOWED, f"fixed, remove from ALLOWED: {sorted(ALLOWED - present)}"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def test_the_checker_finds_each_kind_of_violation(tmp_path: Path) -> None:
    """Upward, private and nested imports pass; downward and foreign-private ones are named."""
    _write(
        tmp_path,
        {
            "low/__init__.py": "from low._impl import thing\nfrom low.sub import other\n",
            "low/_impl.py": "thing = 1\n",
            "low/sub/__init__.py": "from low.sub._deep import other\n",
            "low/sub/_deep.py": "from low._impl import thing  # an ancestor's: fine\nother = 2\n",
            "high/__init__.py": "",
            "high/a/__init__.py": "from high.a._mod import f\n",
            "high/a/_mod.py": (
                "from typing import TYPE_CHECKING\n"
                "import low\n"  # upward: fine
                "from low import _impl\n"  # line 3: a private module by name
                "if TYPE_CHECKING:\n"
                "    from high.b import g\n"  # line 5: below
                "def f():\n"
                "    from low.sub._deep import other\n"  # line 7: another package's private
                "    from . import _mod\n"  # its own: fine
            ),
            "high/b/__init__.py": "from high.a import f\nfrom ..a._mod import f as h\n",
        },
    )
    layers = ("low", "high.a", "high.b", "high")
    found = {(v.path, v.line, v.target) for v in check(tmp_path, ("low", "high"), layers)}
    assert found == {
        ("high/a/_mod.py", 3, "low._impl"),
        ("high/a/_mod.py", 5, "high.b"),
        ("high/a/_mod.py", 7, "low.sub._deep"),
        ("high/b/__init__.py", 2, "high.a._mod"),
    }


@pytest.mark.parametrize(
    ("name", "layer"),
    [
        ("actors.llm.providers", "actors.llm"),
        ("actors.lowlevel", "actors"),
        ("dsl.kinds.ask", "dsl"),
        ("reactor.run._run", "reactor.run"),
        ("reactor", "reactor"),
    ],
)
def test_nested_packages_belong_to_their_nearest_listed_ancestor(name: str, layer: str) -> None:
    """A package that is not a layer of its own sits in its ancestor's layer."""
    index = layer_of(name)
    assert index is not None
    assert LAYERS[index] == layer
