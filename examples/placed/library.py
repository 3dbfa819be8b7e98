"""The reactor of ``examples/placement.py``, in a module the Ray workers can import.

``Score`` says nothing about where it runs; the engine that runs ``Library`` decides
(``Engine(placements={"Score": "ray"})``), or a step can ask itself:
``@step(placement=Placement("ray", num_cpus=1, num_gpus=1))``.
"""

from __future__ import annotations

import os

import msgspec

from dsl import Input, Reactor, for_each, ref, step


class Doc(msgspec.Struct, frozen=True):
    """A document (it crosses to the worker as JSON and is a Doc again there)."""

    title: str
    text: str


class Scored(msgspec.Struct, frozen=True):
    """A document's score, and the process that computed it."""

    title: str
    score: float
    pid: int


def score(doc: Doc) -> Scored:
    """Stand-in for real work: parsing, retrieval, a scoring model."""
    words = doc.text.split()
    return Scored(title=doc.title, score=len(set(words)) / len(words), pid=os.getpid())


class Score(Reactor):
    """One document."""

    doc = Input(Doc)
    scored = step(score)


class Library(Reactor):
    """Every document scored (at most two at a time), then the best one."""

    docs = Input(list[Doc])
    scores = for_each(ref("docs"), Score, element="doc", batch_size=2)

    @step
    def best(scores: list[Scored]) -> str:
        return max(scores, key=lambda s: s.score).title

    @step
    def report(scores: list[Scored], best: str) -> dict[str, object]:
        return {"scores": scores, "best": best}
