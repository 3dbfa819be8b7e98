"""Fallback chains: an ordered list of models, walked with failure-kind-aware rules.

A :class:`Chain` of :class:`Link` s says which models to try in which order, what each
failure kind does (retry the link, move on, stop; see :data:`DEFAULT_ACTIONS`), which
chain takes content-policy refusals, whether a broken stream may restart elsewhere,
and a quality check on answers. A :class:`FallbackChain` actor walks it for each
:class:`FallbackRequest`, demotes links that keep failing (:class:`Health`), and answers
a :class:`FallbackResult` naming the link that answered and every attempt on the way.
"""

from actors.orchestration.fallback._actor import FallbackChain, Resolver
from actors.orchestration.fallback._chain import (
    DEFAULT_ACTIONS,
    Chain,
    Link,
    Predicate,
    QualityCheck,
    Transform,
    chain_from_config,
    link,
)
from actors.orchestration.fallback._health import Health, LinkHealth
from actors.orchestration.fallback._messages import (
    FallbackAttempt,
    FallbackRequest,
    FallbackResult,
)
from actors.orchestration.fallback._registry import Chains

__all__ = [
    "DEFAULT_ACTIONS",
    "Chain",
    "Chains",
    "FallbackAttempt",
    "FallbackChain",
    "FallbackRequest",
    "FallbackResult",
    "Health",
    "Link",
    "LinkHealth",
    "Predicate",
    "QualityCheck",
    "Resolver",
    "Transform",
    "chain_from_config",
    "link",
]
