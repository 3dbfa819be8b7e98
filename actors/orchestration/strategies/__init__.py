"""Strategies for a reasoning task: how several models work on one prompt, chosen to fit memory.

* :class:`Strategy` and :class:`Member` say what runs; :func:`check` validates the
  constraints before anything does (``consensus`` >= 3 members, ``hierarchical`` a
  coordinator, ``semantic`` an embedding model, ``combinatorial`` 2 to 16 agents) and
  raises :class:`StrategyError` naming the strategy and the constraint;
* :func:`choose_strategy` picks one from the task's features
  (:func:`~actors.orchestration.analyse`) and the catalog (what is loaded, model sizes,
  free GPU memory, each server's resident-model limit), and schedules the members: at
  once only when all fit, else in waves that load each model once
  (:func:`fit`, :func:`plan_waves`); temperature and tokens come from the task type
  (:data:`PROFILES`);
* :func:`run_strategy` runs a :class:`StrategyChoice` through a :data:`MemberCall`
  (:func:`host_caller`: the model hosts, under the Budget) and returns a
  :class:`StrategyResult` with every call's provenance;
* the ``consensus`` and ``semantic`` strategies decide through an :class:`Aggregator`
  ((answers, members) -> :class:`Agreement`): by default :func:`plurality` (the consensus
  package's extraction, vote and Wilson confidence) and :class:`Resonance` (its
  clustering over embeddings; :func:`lexical` when embedding fails), any other injected;
  ``hybrid`` and ``hierarchical`` synthesise with its Mixture-of-Agents prompt.

* :func:`observations`: what a result says about each model, for the Selector's
  performance history (a vote's agreement as quality, as the Consensus actor reports);
  the ``strategy`` step tells the engine's Selector.

* :func:`orchestrate` does all three in one call (a prompt, its task type and the
  reasoning so far in; the result out), for callers that are not reactors.

The ``strategy`` step kind (:func:`dsl.strategy`) is the reactor author's way in.
"""

from actors.orchestration.strategies._aggregate import (
    Aggregator,
    Agreement,
    Embed,
    Resonance,
    lexical,
    plurality,
    resonate,
)
from actors.orchestration.strategies._chooser import (
    AUTO,
    StrategyChoice,
    check_catalog,
    choose_strategy,
    specialists,
)
from actors.orchestration.strategies._orchestrate import orchestrate
from actors.orchestration.strategies._plan import (
    DEFAULT_RESIDENT,
    HEADROOM,
    Fit,
    fit,
    plan_waves,
    resident_limit,
)
from actors.orchestration.strategies._runner import (
    MemberCall,
    MemberOutcome,
    Resolve,
    StrategyFailed,
    StrategyResult,
    embedder,
    host_caller,
    observations,
    run_strategy,
)
from actors.orchestration.strategies._spec import (
    COORDINATOR,
    JUDGE,
    KINDS,
    MAX_COMBINATORIAL,
    PROFILES,
    Member,
    Profile,
    Strategy,
    StrategyError,
    StrategyKind,
    check,
    member,
    member_temperatures,
    profile_for,
)

__all__ = [
    "AUTO",
    "COORDINATOR",
    "DEFAULT_RESIDENT",
    "HEADROOM",
    "JUDGE",
    "KINDS",
    "MAX_COMBINATORIAL",
    "PROFILES",
    "Aggregator",
    "Agreement",
    "Embed",
    "Fit",
    "Member",
    "MemberCall",
    "MemberOutcome",
    "Profile",
    "Resolve",
    "Resonance",
    "Strategy",
    "StrategyChoice",
    "StrategyError",
    "StrategyFailed",
    "StrategyKind",
    "StrategyResult",
    "check",
    "check_catalog",
    "choose_strategy",
    "embedder",
    "fit",
    "host_caller",
    "lexical",
    "member",
    "member_temperatures",
    "observations",
    "orchestrate",
    "plan_waves",
    "plurality",
    "profile_for",
    "resident_limit",
    "resonate",
    "run_strategy",
    "specialists",
]
