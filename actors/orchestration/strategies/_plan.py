"""Memory-aware scheduling: which members may run at once, and in which waves the rest run.

The rule (see the reference's "strategy under memory"): members run concurrently only
when every model they need fits at once: the models that are not loaded fit the free
GPU memory (with headroom), and no server is asked to hold more distinct models than it
keeps resident (Ollama 3 by default, a llama.cpp router 4, LM Studio's JIT loading
**one**: it evicts the last JIT model to load the next, so fanning out across two models
there reloads one for every call), unless they are all resident already (explicit
loads are not evicted). Otherwise members run in *waves*: the members of one
model together, each model in one wave only, models already loaded first; so each model
loads at most once. Cloud models (the catalog cannot say whether they are loaded) are
always safe to fan out.

Pure functions over a :class:`~actors.llm.Catalog` snapshot; no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from actors.llm import Catalog, ModelEntry
from actors.orchestration.strategies._spec import Member

__all__ = [
    "DEFAULT_RESIDENT",
    "HEADROOM",
    "Fit",
    "entry_for",
    "fit",
    "plan_waves",
    "resident_limit",
]

DEFAULT_RESIDENT: Mapping[str, int] = {"lmstudio": 1, "ollama": 3}
"""Models a server keeps resident at once, by wire protocol (when its host sets none).

LM Studio's Auto-Evict keeps only the last JIT-loaded model; Ollama's
``OLLAMA_MAX_LOADED_MODELS`` defaults to 3 per GPU (3 on CPU). A llama.cpp router keeps
4 (``--models-max``), but speaks ``openai`` like a cloud API, so give its host a limit
in ``resident_limits``.
"""

HEADROOM = 0.1
"""Share of the free GPU memory kept free when deciding that models fit together."""


def entry_for(catalog: Catalog | None, m: Member) -> ModelEntry | None:
    """The catalog's entry for a member (``None``: no catalog, or it does not know it)."""
    if catalog is None:
        return None
    if m.host is not None:
        return catalog.get(m.host, m.model)
    found = catalog.lookup(m.model)
    return found[0] if found else None


def resident_limit(entry: ModelEntry, limits: Mapping[str, int] | None = None) -> int | None:
    """How many models ``entry``'s host keeps resident (``None``: no limit, e.g. cloud)."""
    if limits and entry.host in limits:
        return limits[entry.host]
    if entry.loaded is None:
        return None  # a cloud API: loading is not ours to worry about
    return DEFAULT_RESIDENT.get(entry.provider)


@dataclass(frozen=True, slots=True)
class Fit:
    """Whether a set of members' models fit at once, and why (or why not).

    Attributes:
        ok: They fit.
        reason: One sentence: what fits, or the first thing that does not.
        need_bytes: GPU memory the models that are not loaded need.
        free_bytes: GPU memory free now (``None``: unknown).
    """

    ok: bool
    reason: str
    need_bytes: int = 0
    free_bytes: int | None = None


def _keys(
    members: Sequence[Member], catalog: Catalog | None
) -> dict[tuple[str, str], tuple[ModelEntry | None, list[int]]]:
    """Members grouped by the model they need (``(host, model)``), in first-use order."""
    groups: dict[tuple[str, str], tuple[ModelEntry | None, list[int]]] = {}
    for index, m in enumerate(members):
        entry = entry_for(catalog, m)
        key = (entry.host, entry.model) if entry is not None else (m.host or "", m.model)
        groups.setdefault(key, (entry, []))[1].append(index)
    return groups


def _check(
    entries: Sequence[ModelEntry | None],
    catalog: Catalog | None,
    limits: Mapping[str, int] | None,
    budget: int | None,
) -> Fit:
    per_host: dict[str, list[ModelEntry]] = {}
    need = 0
    for entry in entries:
        if entry is None:
            continue
        if resident_limit(entry, limits) is not None:
            per_host.setdefault(entry.host, []).append(entry)
        if entry.loaded is False and entry.size_bytes is not None:
            need += entry.size_bytes
    for host, models in per_host.items():
        limit = resident_limit(models[0], limits)
        if limit is None or len(models) <= limit or all(m.loaded for m in models):
            continue  # within the limit, or all resident already (loaded explicitly)
        return Fit(
            ok=False,
            reason=(
                f"host {host!r} ({models[0].provider}) keeps {limit} model(s) resident, "
                f"and {len(models)} are needed: {', '.join(m.model for m in models)}"
            ),
            free_bytes=budget,
        )
    if budget is None or need == 0:
        why = "no model needs loading" if need == 0 else "free GPU memory is unknown"
        return Fit(ok=True, reason=f"they fit at once ({why})", need_bytes=need, free_bytes=budget)
    usable = int(budget * (1.0 - HEADROOM))
    if need > usable:
        return Fit(
            ok=False,
            reason=(
                f"the models to load need {need / 1e9:.1f} GB and "
                f"{usable / 1e9:.1f} GB is free (after {HEADROOM:.0%} headroom)"
            ),
            need_bytes=need,
            free_bytes=budget,
        )
    return Fit(
        ok=True,
        reason=f"they fit at once ({need / 1e9:.1f} GB to load, {usable / 1e9:.1f} GB free)",
        need_bytes=need,
        free_bytes=budget,
    )


def fit(
    members: Sequence[Member],
    catalog: Catalog | None,
    limits: Mapping[str, int] | None = None,
) -> Fit:
    """Whether every member's model fits at once (memory now, and each host's resident limit).

    Without a catalog, or for models it does not know, nothing is known to be in the
    way: they are taken to fit.
    """
    groups = _keys(members, catalog)
    free = catalog.free_bytes if catalog is not None else None
    return _check([entry for entry, _ in groups.values()], catalog, limits, free)


def plan_waves(
    members: Sequence[Member],
    catalog: Catalog | None,
    limits: Mapping[str, int] | None = None,
    *,
    last: Member | None = None,
) -> tuple[tuple[int, ...], ...]:
    """Member indexes in waves: one wave when all fit, else grouped so each model loads once.

    Loaded models come first (nothing to load), then the others in first-use order; the
    model of ``last`` (a coordinator or synthesiser that speaks after the waves) goes
    last, so it is still resident when its turn comes. Waves are packed greedily: as
    many models as fit together share a wave.
    """
    groups = _keys(members, catalog)
    free = catalog.free_bytes if catalog is not None else None
    if _check([e for e, _ in groups.values()], catalog, limits, free).ok:
        return (tuple(range(len(members))),) if members else ()
    last_key: tuple[str, str] | None = None
    if last is not None:
        entry = entry_for(catalog, last)
        last_key = (entry.host, entry.model) if entry is not None else (last.host or "", last.model)

    def rank(item: tuple[int, tuple[str, str]]) -> tuple[int, int, int]:
        position, key = item
        entry = groups[key][0]
        loaded = entry is None or entry.loaded is not False
        return (1 if key == last_key else 0, 0 if loaded else 1, position)

    order = [key for _, key in sorted(enumerate(groups), key=rank)]
    budget = catalog.budget_bytes if catalog is not None else None
    waves: list[list[tuple[str, str]]] = []
    for key in order:
        if waves:
            candidate = [*waves[-1], key]
            room = free if len(waves) == 1 else (budget if budget is not None else free)
            if _check([groups[k][0] for k in candidate], catalog, limits, room).ok:
                waves[-1].append(key)
                continue
        waves.append([key])
    return tuple(tuple(sorted(i for k in wave for i in groups[k][1])) for wave in waves)
