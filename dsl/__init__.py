"""The reactor DSL: what users write (reactors, steps, arguments), planned into a DAG.

The DSL arrives with the executor; this package holds its place in the layout.
"""

__all__: list[str] = []
