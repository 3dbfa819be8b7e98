r"""Consensus: several models asked one question, one answer, and how sure it is.

* pure functions, tested alone: answer extraction (:func:`extract`, ``\boxed{}``, the
  last number, the first line, a choice, JSON), the aggregators (:func:`plurality`,
  :func:`weighted_vote` with log-odds weights, :func:`aggregate_numeric` with median,
  trimmed mean or MAD outlier rejection, :func:`fieldwise` for JSON, :func:`cluster` for
  free text), the confidence statistics (:func:`wilson_lower`,
  :func:`semantic_entropy`, :func:`numeric_spread`), adaptive stopping
  (:func:`adaptive_stop`, :func:`member_count`) and member choice for diversity
  (:func:`choose_diverse`); :func:`aggregate` and :func:`assess` apply a
  :class:`ConsensusSpec` to answers;
* the :class:`Consensus` coordinator actor: fan-out with a deadline per member, a
  :class:`Quorum`, synthesis (Mixture-of-Agents) and debate rounds, adaptive member
  counts, and a :class:`ConsensusResult` with every member's answer or error;
  :class:`LowConsensus` is published when the confidence is under the threshold.
"""

from actors.orchestration.consensus._actor import Consensus
from actors.orchestration.consensus._aggregate import (
    MAD_CUTOFF,
    MEANAD_SCALE,
    Verdict,
    aggregate_numeric,
    cluster,
    cosine_matrix,
    custom,
    fieldwise,
    lexical_matrix,
    lexical_similarity,
    log_odds_weight,
    mad_scores,
    plurality,
    schema_errors,
    trimmed_mean,
    vote,
    weighted_vote,
)
from actors.orchestration.consensus._conclude import (
    Assessment,
    aggregate,
    assess,
    choose_diverse,
    family_of,
)
from actors.orchestration.consensus._confidence import (
    Z_95,
    adaptive_stop,
    member_count,
    numeric_spread,
    semantic_entropy,
    wilson_lower,
)
from actors.orchestration.consensus._extract import (
    EXTRACTORS,
    Extractor,
    OutputType,
    default_extractor,
    extract,
    extract_answer_line,
    extract_boxed,
    extract_choice,
    extract_json,
    extract_number,
    first_line,
    normalise,
    stated_confidence,
)
from actors.orchestration.consensus._members import Resolver
from actors.orchestration.consensus._messages import (
    AGGREGATORS,
    DEFAULT_AGGREGATOR,
    Aggregator,
    ConsensusRequest,
    ConsensusResult,
    ConsensusSpec,
    LowConsensus,
    Member,
    MemberAnswer,
    OnLow,
    OnShort,
    Quorum,
    spec_problems,
)
from actors.orchestration.consensus._prompts import (
    DEBATE_PROMPT,
    SYNTHESIS_PROMPT,
    debate_request,
    synthesis_request,
)
from actors.orchestration.consensus._review import REVIEW_STREAM, HumanAnswer, review_stream

__all__ = [
    "AGGREGATORS",
    "DEBATE_PROMPT",
    "DEFAULT_AGGREGATOR",
    "EXTRACTORS",
    "MAD_CUTOFF",
    "MEANAD_SCALE",
    "REVIEW_STREAM",
    "SYNTHESIS_PROMPT",
    "Z_95",
    "Aggregator",
    "Assessment",
    "Consensus",
    "ConsensusRequest",
    "ConsensusResult",
    "ConsensusSpec",
    "Extractor",
    "HumanAnswer",
    "LowConsensus",
    "Member",
    "MemberAnswer",
    "OnLow",
    "OnShort",
    "OutputType",
    "Quorum",
    "Resolver",
    "Verdict",
    "adaptive_stop",
    "aggregate",
    "aggregate_numeric",
    "assess",
    "choose_diverse",
    "cluster",
    "cosine_matrix",
    "custom",
    "debate_request",
    "default_extractor",
    "extract",
    "extract_answer_line",
    "extract_boxed",
    "extract_choice",
    "extract_json",
    "extract_number",
    "family_of",
    "fieldwise",
    "first_line",
    "lexical_matrix",
    "lexical_similarity",
    "log_odds_weight",
    "mad_scores",
    "member_count",
    "normalise",
    "numeric_spread",
    "plurality",
    "review_stream",
    "schema_errors",
    "semantic_entropy",
    "spec_problems",
    "stated_confidence",
    "synthesis_request",
    "trimmed_mean",
    "vote",
    "weighted_vote",
    "wilson_lower",
]
