"""The ``reactor`` command: run reactors, list and show runs, find LLM servers, demos."""

from reactor.cli._main import main

__all__ = ["main"]
