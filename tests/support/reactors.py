"""Small reactors that definition tests share (compose targets, locate/find round trips)."""

from __future__ import annotations

from dsl import Input, Reactor, step


def shout(text: str) -> str:
    """A plain function, for ``args=`` bindings and :func:`dsl.locate`."""
    return text.upper()


class Count(Reactor):
    """Counts the words of one document."""

    doc = Input(str)
    lang = Input(str, default="en")

    @step
    def words(doc: str, lang: str) -> int:
        return len(doc.split())


class Echo(Reactor):
    """Returns its text, shouted."""

    text = Input(str)

    @step
    def loud(text: str) -> str:
        return shout(text)


class Outer:
    """A namespace, so that a nested reactor's qualified name has a dot."""

    class Inner(Reactor):
        """A reactor nested in a class."""

        text = Input(str)

        @step
        def same(text: str) -> str:
            return text
