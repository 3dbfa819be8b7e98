"""Micro-benchmarks of the actor runtime, run as ``python -m benchmarks <name>``.

Each benchmark is a module ``benchmarks/<name>.py`` with a ``main(argv) -> int`` that
prints one JSON object on standard output (progress goes to standard error).
"""
