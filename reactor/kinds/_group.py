"""Running a ``group`` step: ``before``, the child run, then ``after`` (like ``finally``)."""

from __future__ import annotations

from typing import Any

from dsl import GroupImpl
from reactor.kinds._composite import CompositeExecutor, inputs_of, maybe_await
from reactor.run import ChildRunner

__all__ = ["GroupExecutor"]


class GroupExecutor(CompositeExecutor[GroupImpl]):
    """Runs the reactor between ``before`` and ``after``."""

    async def body(self, impl: GroupImpl, arguments: dict[str, Any], child: ChildRunner) -> Any:
        """``after`` gets ``None`` as the result when the child run failed."""
        if impl.before is not None:
            await maybe_await(impl.before(dict(arguments)))
        try:
            result = await child(impl.reactor, inputs_of(impl.reactor, arguments))
        except BaseException:
            if impl.after is not None:
                await maybe_await(impl.after(dict(arguments), None))
            raise
        if impl.after is not None:
            await maybe_await(impl.after(dict(arguments), result))
        return result
