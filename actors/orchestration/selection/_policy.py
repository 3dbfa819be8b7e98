"""Selection policies, and the pure function that chooses a model: :func:`decide`.

**What is learnt.** For each task type and model, the quality of its answers is a
Beta distribution: a *prior* from what was declared about the model, plus the
(discounted) scores of its answers so far (:mod:`._history`). A reward is the answer's
quality score when one is known (a user's scoring function, feedback), else 1 for an
answer and 0 for a failure the model is to blame for.

**Priors from tiers.** A model declared tier 1, 2 or 3 starts at a mean quality of
0.3, 0.5 or 0.7 (0.5 undeclared), plus 0.2 for a task type it is declared strong at
(at most 0.95), worth :attr:`Policy.prior_weight` observations (4 by default). Small on
purpose: a new model is tried (a draw from a wide Beta often beats a known model's mean),
but a few poor answers are enough to stop trusting it, and a strong tier does not
outweigh what is actually observed for long.

**Discounted Thompson sampling, per task type.** To choose, draw one quality sample from
each candidate's Beta (Thompson sampling) and combine it with the expected cost and
latency into a score (:attr:`Policy.quality`, :attr:`Policy.cost`, :attr:`Policy.latency`
weights). The model with the best score is chosen. A model with few observations has a
wide Beta, so it sometimes draws high and gets tried; one that is known to be good draws
near its mean and wins most of the time. Exploration therefore fades by itself as
evidence accumulates, with no exploration rate to tune. Because the counts are
discounted per observation (gamma = 0.995: roughly the last two hundred observations of
the type count), the posterior of a model that has degraded widens again and its rivals
get tried: the router recovers from drift. (In simulation, gamma = 0.995 beat 0.99 both
on the best-arm share of well-separated arms, 0.94 against 0.91 over 1,000 pulls, and on
recovery after the best arm swaps, 0.95 against 0.91 of the last 500 of 2,000 pulls.)
Keeping one posterior per task type is the "contextual" part: a model can be best for
code and worst for creative writing.

The cost term is relative to the cheapest candidate (cheapest / this one), and so is the
latency term (fastest / this one); a candidate with no price or no latency yet gets the
median of the others, so that it is neither favoured nor punished for being unknown.
Turning :attr:`Policy.explore` off uses posterior means instead of draws (no learning by
trying; the best-known model always wins).

**Other policies.** ``cheapest`` and ``fastest`` order by expected cost or latency, with
quality as the tie-break; ``best`` scores quality alone; a ``pin`` per task type forces
a model (as echollama's ``routing_preferences``); a user's ``choose`` function sees the
eligible candidates, scored, and may name one (``None``: the policy decides).

**Constraints come first.** A model is a candidate only when it chats, its breaker is not
open, it has every capability the request needs, the prompt plus the output limit fits
its context window, and it is loaded or fits the GPU memory budget (the
ResourceMonitor's last snapshot, through the catalog). Loaded models get a small bonus
(:attr:`Policy.loaded_bonus`), and a model that fits the budget but not the memory free
now (loading it means unloading another) a penalty (:attr:`Policy.evict_penalty`): it is
chosen only when it is better by more than that. A model larger than the whole budget is
rejected. Every rejection is recorded with its reason.

**Budgets.** When a budget applies to the request (a :class:`BudgetCeiling`: what the
tightest account has left, and each model's worst case as the Budget would reserve
it), a model whose worst case is more than that is rejected ("costs up to $X, more than
the $Y the budget has left"), and so is an unpriced one the Budget would refuse: a
cheaper model that fits is chosen instead. The decision says so
(:attr:`Decision.budget_constrained`). A policy with ``downgrade=False`` is not given
the ceiling: it chooses as if unconstrained, and the reservation then fails
``budget_exceeded`` when its choice does not fit.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from actors.llm import BreakerState, Catalog, ModelEntry, TaskType
from actors.orchestration.selection._features import TaskFeatures
from actors.orchestration.selection._history import History

__all__ = [
    "BudgetCeiling",
    "Considered",
    "Decision",
    "EntryCache",
    "Policy",
    "PolicyKind",
    "UserChoice",
    "decide",
    "prior",
    "worst_cost",
]

PolicyKind = Literal["score", "cheapest", "fastest", "best"]

TIER_PRIOR = {1: 0.3, 2: 0.5, 3: 0.7}
"""Prior mean quality per declared tier (0.5 undeclared)."""

STRENGTH_BONUS = 0.2
"""Added to the prior mean for a task type the model is declared strong at."""

DEFAULT_OUTPUT_TOKENS = 256
"""Output tokens assumed for cost when neither ``max_tokens`` nor history says."""


class Considered(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One model the selector looked at, and what it thought of it.

    Attributes:
        model: The model, qualified (``host/model``).
        rejected: Why it could not be chosen (``None``: it was a candidate).
        score: Its score under the policy (candidates only).
        quality: The quality sample (or mean) the score used.
        cost_usd: The expected cost of this request on it (``None``: unpriced).
        latency_s: The latency expected from history (``None``: not yet seen).
        loaded: Whether it is loaded.
        evicts: Whether loading it means unloading another model first (it does not fit
            the memory free now).
    """

    model: str
    rejected: str | None = None
    score: float | None = None
    quality: float | None = None
    cost_usd: float | None = None
    latency_s: float | None = None
    loaded: bool | None = None
    evicts: bool = False


class Decision(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Which model was chosen for a request, and why: what the step result, journal and span carry.

    Attributes:
        host: The chosen model's host ("" when nothing could be chosen).
        model: The chosen model's id.
        policy: The policy's name.
        reason: Why this one, in a phrase.
        features: What the request was taken to be.
        considered: Every model looked at: candidates scored, the others with the reason.
        explored: Whether the choice differs from the best-known (posterior mean) one.
        budget_left_usd: What the budget had left for this request, when one applied.
        budget_account: The account with that least headroom (``run:<id>``, ...).
        budget_constrained: The budget ruled out models the policy could otherwise
            have chosen (or, for a policy that does not downgrade, refused its choice).
    """

    host: str
    model: str
    policy: str
    reason: str
    features: TaskFeatures
    considered: tuple[Considered, ...] = ()
    explored: bool = False
    budget_left_usd: float | None = None
    budget_account: str = ""
    budget_constrained: bool = False

    @property
    def qualified(self) -> str:
        """``host/model`` of the chosen model."""
        return f"{self.host}/{self.model}"


@dataclass(frozen=True, slots=True)
class BudgetCeiling:
    """What a budget allows one request: the least headroom, and each model's worst case.

    Attributes:
        left_usd: What the tightest account that applies has left.
        account: That account.
        worst_usd: The worst case per ``host/model``, as the Budget reserves it
            (``None``: the Budget refuses the model, having no price for it); a model
            not listed is costed with :func:`worst_cost`.
        max_tokens: The output limit those worst cases assumed.
    """

    left_usd: float
    account: str = ""
    worst_usd: Mapping[str, float | None] = field(default_factory=dict)
    max_tokens: int | None = None

    def rejects(
        self, entry: ModelEntry, prompt_tokens: int, seconds: float | None = None
    ) -> str | None:
        """Why the budget rules ``entry`` out (``None``: it fits)."""
        name = entry.qualified
        if name in self.worst_usd:
            worst = self.worst_usd[name]
            if worst is None:
                return f"unpriced, and the budget ({self.account}) refuses unpriced models"
        else:
            worst = worst_cost(entry, prompt_tokens, self.max_tokens, seconds)
            if worst is None:
                return None
        if worst > self.left_usd + 1e-12:
            return (
                f"costs up to ${worst:.6f}, more than the ${self.left_usd:.6f} the budget "
                f"({self.account}) has left"
            )
        return None


UserChoice = Callable[[Sequence[Considered], TaskFeatures], str | None]
"""A user's policy: given the scored candidates and the features, name one (or ``None``)."""


@dataclass(frozen=True, slots=True)
class Policy:
    """How to choose among the eligible models.

    Attributes:
        name: What decisions and configuration call it.
        kind: ``score`` (weighted quality, cost, latency), ``cheapest``, ``fastest`` or
            ``best`` (quality alone).
        quality: Weight of quality in a ``score`` policy.
        cost: Weight of cheapness.
        latency: Weight of speed.
        models: The candidates (names, qualified names or aliases); empty: every chat
            model in the catalog.
        pin: A model to use per task type, whatever the scores (if it is eligible).
        choose: A user's function that may pick among the scored candidates.
        explore: Thompson draws (learning by trying) rather than posterior means.
        prior_weight: How many observations a declared tier is worth.
        loaded_bonus: Score added for a model that is loaded now.
        evict_penalty: Score taken from a model that does not fit the free memory, so
            that loading it means unloading another.
        downgrade: When a budget applies, choose only among the models whose worst case
            fits what it has left (a cheaper model rather than a refusal); ``False``:
            choose regardless, and fail ``budget_exceeded`` when the choice does not fit.
    """

    name: str = "balanced"
    kind: PolicyKind = "score"
    quality: float = 0.6
    cost: float = 0.2
    latency: float = 0.2
    models: tuple[str, ...] = ()
    pin: Mapping[str, str] = field(default_factory=dict)
    choose: UserChoice | None = None
    explore: bool = True
    prior_weight: float = 4.0
    loaded_bonus: float = 0.02
    evict_penalty: float = 0.1
    downgrade: bool = True

    def __post_init__(self) -> None:
        weights = ("quality", "cost", "latency", "prior_weight", "loaded_bonus", "evict_penalty")
        for weight in weights:
            if getattr(self, weight) < 0:
                msg = f"Policy({self.name!r}).{weight} must not be negative"
                raise ValueError(msg)
        if self.kind not in ("score", "cheapest", "fastest", "best"):
            msg = f"Policy({self.name!r}).kind: unknown policy kind {self.kind!r}"
            raise ValueError(msg)


def prior(entry: ModelEntry, task_type: str) -> float:
    """The prior mean quality of ``entry`` for ``task_type``, from its declared tier."""
    mean = TIER_PRIOR.get(entry.tier or 0, 0.5)
    if task_type in entry.strengths:
        mean += STRENGTH_BONUS
    return min(mean, 0.95)


def worst_cost(
    entry: ModelEntry, prompt_tokens: int, max_tokens: int | None, seconds: float | None = None
) -> float | None:
    """The most a request can cost on ``entry``: its prompt, and all the output allowed.

    For a model priced per GPU-second, the whole ``seconds`` the call may take as well.
    ``None`` when the model has no price. Without ``max_tokens``,
    :data:`DEFAULT_OUTPUT_TOKENS` stands in for the output. A model priced per
    GPU-second with no ``seconds`` to bound the call has no finite worst case (``inf``),
    never a silent $0.
    """
    price = entry.price
    if price is None:
        return None
    out = max_tokens or DEFAULT_OUTPUT_TOKENS
    tokens = (prompt_tokens * price.input_per_mtok + out * price.output_per_mtok) / 1e6
    if not price.per_gpu_second:
        return tokens
    if seconds is None:
        return math.inf
    return tokens + seconds * price.per_gpu_second


def _eligible(  # noqa: PLR0911, PLR0917 - one return per constraint; the hot path
    entry: ModelEntry,
    features: TaskFeatures,
    max_tokens: int | None,
    catalog: Catalog,
    max_cost_usd: float | None,
    seconds: float | None = None,
) -> str | None:
    """Why ``entry`` cannot take the request (``None``: it can)."""
    capabilities = entry.capabilities
    if "chat" not in capabilities:
        return "not a chat model"
    if entry.breaker is BreakerState.OPEN:
        return "circuit breaker open"
    needs = features.needs
    if needs:
        missing = [n for n in needs if n != "long_context" and n not in capabilities]
        if missing:
            return f"lacks {', '.join(missing)}"
    window = entry.context_length
    if window is not None:
        needed = features.prompt_tokens + (max_tokens or 0)
        if needed > window:
            return f"context {window} < {needed} tokens needed"
    if entry.loaded is False and entry.size_bytes is not None and not catalog.could_fit(entry):
        budget = catalog.budget_bytes or 0
        return f"not loaded and needs {entry.size_bytes} bytes, more than the {budget} budget"
    if max_cost_usd is not None:
        worst = worst_cost(entry, features.prompt_tokens, max_tokens, seconds)
        if worst is not None and worst > max_cost_usd:
            return f"costs up to ${worst:.6f}, more than the ${max_cost_usd:.6f} allowed"
    return None


def _relative(values: Sequence[float | None], floor: float) -> list[float]:
    """best/value per entry (1 for the best), with the median standing in for unknowns.

    ``floor`` keeps a free (0) or instant value from making every other one worth 0.
    """
    known = sorted(v for v in values if v is not None)
    if not known:
        return [1.0] * len(values)
    half = len(known) // 2
    middle = known[half] if len(known) % 2 else (known[half - 1] + known[half]) / 2
    best = known[0] + floor
    return [best / ((middle if v is None else v) + floor) for v in values]


@dataclass(slots=True)
class _Scored:
    entry: ModelEntry
    name: str
    draw: float
    mean: float
    a: float
    b: float
    cost: float | None
    latency: float | None
    evicts: bool = False
    score: float = 0.0
    best_known: float = 0.0


def decide(
    policy: Policy,
    features: TaskFeatures,
    catalog: Catalog,
    history: History,
    *,
    max_tokens: int | None = None,
    candidates: Sequence[str] = (),
    rng: random.Random | None = None,
    max_cost_usd: float | None = None,
    budget: BudgetCeiling | None = None,
    entries: Sequence[ModelEntry] | None = None,
    seconds: float | None = None,
) -> Decision:
    """Choose a model for a request: filter by constraints, score, pick (pure but for ``rng``).

    Args:
        policy: How to choose.
        features: What the request is.
        catalog: Which models exist and their state now.
        history: What each has done.
        max_tokens: The request's output limit (counts against context windows).
        candidates: Names to choose among (default: the policy's ``models``, else every
            chat model in the catalog).
        rng: The random source for Thompson draws (seed it for reproducible runs).
        max_cost_usd: The most this request may cost (what a budget has left, say):
            a model whose worst case (:func:`worst_cost`) is more is rejected. A model
            with no price is not (price it to have it counted).
        budget: What a budget allows the request: models whose worst case is more are
            rejected (see the module docstring).
        entries: The catalog entries ``candidates`` stand for, when the caller has them
            already (a Selector caches them per catalog version: :class:`EntryCache`).
        seconds: The longest the call may take: what a model priced per GPU-second may
            cost at worst (``None``: unbounded, so such a model's worst case is ``inf``).

    Returns:
        The decision; its ``host`` is ``""`` when no model is eligible (every
        :class:`Considered` then says why).
    """
    draw = (rng or random).betavariate
    if entries is None:
        entries = _entries(catalog, tuple(candidates) or policy.models)
    considered: list[Considered] = []
    scored: list[_Scored] = []
    task = features.task_type
    over_budget = 0
    out_tokens = float(max_tokens or DEFAULT_OUTPUT_TOKENS)
    for entry in entries:
        why = _eligible(entry, features, max_tokens, catalog, max_cost_usd, seconds)
        if why is None and budget is not None:
            why = budget.rejects(entry, features.prompt_tokens, seconds)
            over_budget += why is not None
        if why is not None:
            considered.append(Considered(model=entry.qualified, rejected=why, loaded=entry.loaded))
            continue
        scored.append(
            _score_inputs(entry, task, catalog, features, history, max_tokens, out_tokens, policy)
        )
    if len(scored) > 1 and policy.explore:
        # Thompson draws only where there is a choice to make: a lone candidate is
        # chosen whatever it draws (its recorded quality is then its posterior mean).
        for s in scored:
            s.draw = draw(s.a, s.b)
    if not scored:
        return Decision(
            host="",
            model="",
            policy=policy.name,
            reason="no eligible model",
            features=features,
            considered=tuple(considered),
            budget_left_usd=None if budget is None else budget.left_usd,
            budget_account="" if budget is None else budget.account,
            budget_constrained=over_budget > 0,
        )
    _score(policy, scored)
    chosen, reason = _choose(policy, task, scored, features, considered)
    if over_budget and budget is not None:
        reason = (
            f"{reason}; the budget ({budget.account}) had ${budget.left_usd:.6f} left, "
            f"which ruled out {over_budget} pricier model{'s' if over_budget > 1 else ''}"
        )
    best_known = scored[0]
    for s in scored:
        if s.best_known > best_known.best_known:
            best_known = s
    floor = math.floor  # to 4 places, half up (what a decision record shows)
    for s in scored:
        latency = s.latency
        considered.append(
            Considered(
                model=s.name,
                score=floor(s.score * 10_000 + 0.5) / 10_000,
                quality=floor(s.draw * 10_000 + 0.5) / 10_000,
                cost_usd=s.cost,
                latency_s=None if latency is None else floor(latency * 10_000 + 0.5) / 10_000,
                loaded=s.entry.loaded,
                evicts=s.evicts,
            )
        )
    return Decision(
        host=chosen.entry.host,
        model=chosen.entry.model,
        policy=policy.name,
        reason=reason,
        features=features,
        considered=tuple(considered),
        explored=chosen is not best_known and policy.explore,
        budget_left_usd=None if budget is None else budget.left_usd,
        budget_account="" if budget is None else budget.account,
        budget_constrained=over_budget > 0,
    )


def _entries(catalog: Catalog, names: Sequence[str]) -> list[ModelEntry]:
    if not names:
        return [e for e in catalog.entries() if "chat" in e.capabilities]
    seen: dict[str, ModelEntry] = {}
    for name in names:
        found = catalog.lookup(name)
        if not found:
            raise LookupError(catalog.unknown(name))
        for entry in found:
            seen.setdefault(entry.qualified, entry)
    return list(seen.values())


class EntryCache:
    """The catalog entries each candidate list stands for, kept per catalog version.

    A Selector resolves the same few candidate lists (a policy's models, a step's
    candidates, every chat model) on every request; the catalog changes far more
    rarely (a host added, a model loaded, a breaker opening), and every change bumps
    its :attr:`~actors.llm.Catalog.version`, which empties this cache. Unknown names
    are not cached: they raise ``LookupError`` each time, naming what exists.
    """

    __slots__ = ("_catalog", "_lists", "_version")

    LIMIT = 1024
    """Candidate lists kept at most (the cache is emptied beyond: callers may vary)."""

    def __init__(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self._version = -1
        self._lists: dict[tuple[str, ...], tuple[ModelEntry, ...]] = {}

    def entries(self, names: Sequence[str]) -> tuple[ModelEntry, ...]:
        """The entries ``names`` stand for (every chat model when empty), best first."""
        catalog = self._catalog
        version = catalog.version
        lists = self._lists
        if version != self._version or len(lists) >= self.LIMIT:
            lists.clear()
            self._version = version
        key = names if type(names) is tuple else tuple(names)
        found = lists.get(key)
        if found is None:
            found = lists[key] = tuple(_entries(catalog, key))
            if catalog.version != version:  # changed while we read: do not keep it
                del lists[key]
        return found


def _score_inputs(  # noqa: PLR0917 - the hot path: positional on purpose
    entry: ModelEntry,
    task: TaskType,
    catalog: Catalog,
    features: TaskFeatures,
    history: History,
    max_tokens: int | None,
    out_tokens: float,
    policy: Policy,
) -> _Scored:
    name = entry.qualified
    mean0 = TIER_PRIOR.get(entry.tier or 0, 0.5)
    if entry.strengths and task in entry.strengths:
        mean0 = min(mean0 + STRENGTH_BONUS, 0.95)
    weight = policy.prior_weight
    a = mean0 * weight + 1e-6
    b = (1.0 - mean0) * weight + 1e-6
    cell = history.cells.get((name, task))
    latency: float | None = None
    if cell is not None:
        # history.counts(name, task), without looking the cell up again
        lag = history.clocks.get(task, 0) - cell.stamp
        if lag <= 0 or history.discount == 1.0:
            a += cell.wins
            b += cell.losses
        else:
            factor = history.discount**lag
            a += cell.wins * factor
            b += cell.losses * factor
        if cell.output_tokens is not None and not max_tokens:
            out_tokens = cell.output_tokens
        latency = cell.latency_s
    if latency is None:
        latency = history.latency(name, task)
    mean = a / (a + b)
    price = entry.price
    cost = (
        None
        if price is None
        else (features.prompt_tokens * price.input_per_mtok + out_tokens * price.output_per_mtok)
        / 1e6
    )
    if cost is not None and price is not None and price.per_gpu_second:
        # Priced by the second: the expected cost needs its expected latency; until one
        # is known the cost is unknown (the median of the others), never $0.
        cost = None if latency is None else cost + latency * price.per_gpu_second
    evicts = (
        entry.loaded is False and entry.size_bytes is not None and not catalog.fits_memory(entry)
    )
    return _Scored(entry, name, mean, mean, a, b, cost, latency, evicts)


def _score(policy: Policy, scored: list[_Scored]) -> None:
    cheap: Sequence[float]
    fast: Sequence[float]
    if len(scored) == 1:
        _score_alone(policy, scored[0])
        return
    cheap = _relative([s.cost for s in scored], 1e-7)
    fast = _relative([s.latency for s in scored], 1e-3)
    wq, wc, wl = policy.quality, policy.cost, policy.latency
    if policy.kind == "best":
        wq, wc, wl = 1.0, 0.0, 0.0
    for s, c, f in zip(scored, cheap, fast, strict=True):
        bonus = policy.loaded_bonus if s.entry.loaded else 0.0
        if s.evicts:
            bonus -= policy.evict_penalty
        s.score = wq * s.draw + wc * c + wl * f + bonus
        s.best_known = wq * s.mean + wc * c + wl * f + bonus
        if policy.kind == "cheapest":
            s.score = c + 1e-3 * s.draw
            s.best_known = c + 1e-3 * s.mean
        elif policy.kind == "fastest":
            s.score = f + 1e-3 * s.draw
            s.best_known = f + 1e-3 * s.mean


def _score_alone(policy: Policy, s: _Scored) -> None:
    """:func:`_score` of a lone candidate: the cheapest and the fastest, so both terms are 1."""
    bonus = policy.loaded_bonus if s.entry.loaded else 0.0
    if s.evicts:
        bonus -= policy.evict_penalty
    kind = policy.kind
    if kind == "score":
        rest = policy.cost + policy.latency + bonus
        s.score = policy.quality * s.draw + rest
        s.best_known = policy.quality * s.mean + rest
    elif kind == "best":
        s.score = s.draw + bonus
        s.best_known = s.mean + bonus
    else:  # cheapest, fastest: 1 plus the quality tie-break
        s.score = 1.0 + 1e-3 * s.draw
        s.best_known = 1.0 + 1e-3 * s.mean


def _choose(
    policy: Policy,
    task: str,
    scored: list[_Scored],
    features: TaskFeatures,
    considered: list[Considered],
) -> tuple[_Scored, str]:
    pinned = policy.pin.get(task)
    if pinned is not None:
        for s in scored:
            if pinned in (s.entry.qualified, s.entry.model):
                return s, f"pinned for {task}"
        rejected = next((c.rejected for c in considered if pinned in c.model), "not a candidate")
        note = f"pinned {pinned} unavailable ({rejected}); "
    else:
        note = ""
    if policy.choose is not None:
        views = [
            Considered(
                model=s.entry.qualified,
                score=s.score,
                quality=s.draw,
                cost_usd=s.cost,
                latency_s=s.latency,
                loaded=s.entry.loaded,
            )
            for s in scored
        ]
        named = policy.choose(views, features)
        if named is not None:
            for s in scored:
                if named in (s.entry.qualified, s.entry.model):
                    return s, f"{note}chosen by {policy.name}'s function"
            msg = f"policy {policy.name!r}: its function chose {named!r}, not a candidate"
            raise LookupError(msg)
    best = scored[0]
    for s in scored:
        if s.score > best.score:
            best = s
    return best, f"{note}{_LABELS[policy.kind]} ({best.score:.3f})"


_LABELS = {
    "score": "highest score",
    "cheapest": "cheapest",
    "fastest": "fastest",
    "best": "best quality",
}
"""The reason a policy kind gives for its choice."""
