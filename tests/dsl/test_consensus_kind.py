"""The ``consensus`` kind on the definition side: binding, checking, the journal form."""

from __future__ import annotations

import json

import pytest

from actors.orchestration.consensus import ConsensusSpec, Member, Quorum
from dsl import DefinitionError, Input, Reactor, consensus
from dsl.kinds import ConsensusImpl, kind_named


def test_placeholders_bind_to_inputs_and_steps() -> None:
    """``{claim}`` in the prompt and ``{tone}`` in the system prompt become arguments."""

    class Check(Reactor):
        claim = Input(str)
        tone = Input(str)
        verdict = consensus("Is {claim} true?", members=["a", "b", "c"], system="Be {tone}.")

    spec = Check.__plan__.steps["verdict"]
    assert spec.kind == "consensus"
    assert set(spec.arguments) == {"claim", "tone"}


def test_an_unknown_placeholder_is_named() -> None:
    """A placeholder that is no input or step fails at definition."""
    with pytest.raises(DefinitionError, match="nope"):

        class Broken(Reactor):
            verdict = consensus("Is {nope} true?", members=["a"])


def test_the_journal_form_round_trips() -> None:
    """A spec without functions is written as JSON and read back equal."""
    impl = ConsensusImpl(
        prompt="Is {claim} true?",
        spec=ConsensusSpec(
            members=(Member(model="a", seed=1), Member(model="b", host="cloud")),
            choices=("yes", "no"),
            quorum=Quorum(min_answers=2, wait_s=5.0, on_short="fallback", fallback="c"),
            threshold=0.4,
            on_low="halt",
        ),
    )
    kind = kind_named("consensus")
    data = json.loads(json.dumps(kind.describe(impl)))
    assert kind.rebuild(data) == impl


def test_a_spec_with_a_function_cannot_be_journaled() -> None:
    """A custom aggregator is Python: describing the step says so."""
    impl = ConsensusImpl(prompt="x", spec=ConsensusSpec(aggregator=max))
    with pytest.raises(ValueError, match="custom aggregator"):
        kind_named("consensus").describe(impl)
