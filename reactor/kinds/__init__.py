"""The executors of the step kinds: what running each kind of step means."""

from reactor.kinds._composites import run_composite

__all__ = ["run_composite"]
