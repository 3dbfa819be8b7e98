"""Draw a :class:`~dsl.Plan` as a Mermaid flowchart.

Inputs are rounded; each step is drawn in its kind's shape and label
(:class:`dsl.kinds.StepKind`: function steps are boxes, LLM steps hexagons, composites
subroutine boxes); an edge carries the argument it feeds, a dotted edge is a
``wait_for``, and the returned step is drawn with a double border.
"""

from __future__ import annotations

from dsl._reactor import Plan
from dsl._sources import Ref
from dsl.kinds import kind_of

__all__ = ["to_mermaid"]


def _label(text: str) -> str:
    return '"' + text.replace('"', "#quot;") + '"'


def to_mermaid(plan: Plan) -> str:
    """The plan as Mermaid ``flowchart TD`` source."""
    lines = ["flowchart TD"]
    lines.extend(f"    {name}([{_label(name)}])" for name in plan.inputs)
    for spec in plan.steps.values():
        kind = kind_of(spec.impl)
        opening, closing = kind.shape
        title = kind.label(spec)
        if spec.name == plan.returns:
            lines.append(f"    {spec.name}((({_label(title)})))")
        else:
            lines.append(f"    {spec.name}{opening}{_label(title)}{closing}")
    for spec in plan.steps.values():
        for argument, source in spec.arguments.items():
            if isinstance(source, Ref):
                shown = argument.strip("_")
                if source.path or shown != source.name:
                    text = f"{shown} = {source.describe()}" if source.path else shown
                    lines.append(f"    {source.name} -->|{_label(text)}| {spec.name}")
                else:
                    lines.append(f"    {source.name} --> {spec.name}")
        lines.extend(f"    {other} -.-> {spec.name}" for other in spec.wait_for)
    return "\n".join(lines) + "\n"
