"""Render finished spans as indented trees, one per trace (for people, not machines)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from opentelemetry.sdk.trace import ReadableSpan

__all__ = ["span_tree"]


def span_tree(spans: Iterable[ReadableSpan]) -> str:
    """One block per trace: its id, then each span indented under its parent.

    Spans whose parent is not among ``spans`` are shown as roots of their trace.
    """
    by_trace: dict[int, list[ReadableSpan]] = defaultdict(list)
    for span in spans:
        if span.context is not None:
            by_trace[span.context.trace_id].append(span)
    blocks = []
    for trace_id, members in by_trace.items():
        ids = {s.context.span_id for s in members if s.context is not None}
        children: dict[int | None, list[ReadableSpan]] = defaultdict(list)
        for span in sorted(members, key=lambda s: s.start_time or 0):
            parent = span.parent.span_id if span.parent is not None else None
            children[parent if parent in ids else None].append(span)
        lines = [f"trace {trace_id:032x}"]
        _walk(children, None, 1, lines)
        blocks.append("\n".join(lines))
    return "\n".join(blocks)


def _walk(
    children: dict[int | None, list[ReadableSpan]],
    parent: int | None,
    depth: int,
    lines: list[str],
) -> None:
    for span in children.get(parent, []):
        took = ((span.end_time or 0) - (span.start_time or 0)) / 1e6
        status = "" if span.status.is_ok else "  [error]"
        lines.append(f"{'  ' * depth}{span.name}  {took:.2f} ms{status}")
        if span.context is not None:
            _walk(children, span.context.span_id, depth + 1, lines)
