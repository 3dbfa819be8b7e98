"""What the command line gives: a reactor loaded by its locator, its inputs and context.

``-i``/``--input key=value`` (or ``key=@file``), ``--json-input key=JSON`` and
``--context key=value`` are parsed here and checked against the reactor's plan before
anything starts, so a mistake is reported as one line and exit status 2
(:class:`CliError`), never as a failed run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from reactor.run import InputError, check_inputs

if TYPE_CHECKING:
    from dsl import Reactor

__all__ = [
    "EXIT_FAILED",
    "EXIT_HALTED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "given_run_options",
    "has_ask_steps",
    "load_reactor",
    "parse_context",
    "parse_inputs",
    "require_inputs",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_HALTED = 3
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A mistake the user can fix (a bad locator, an unknown input, an unknown run).

    The command prints the message on one line and exits with ``code`` (2).
    """

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.code = code


# ---- loading a reactor and its inputs ----------------------------------------------------


def load_reactor(locator: str) -> type[Reactor]:
    """The reactor class ``locator`` names (``path/file.py:Name`` or ``module:Name``).

    Raises:
        CliError: The file, module or name does not exist, loading it failed (a
            definition error included), or it is not a Reactor subclass.
    """
    import dsl  # noqa: PLC0415 - only commands that load reactors need it

    try:
        found = dsl.find(locator)
    except LookupError as exc:
        raise CliError(str(exc)) from None
    except dsl.DefinitionError as exc:
        raise CliError(f"{locator}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - the user's file raised: say what and where
        raise CliError(f"{locator}: loading it raised {type(exc).__name__}: {exc}") from None
    if not (isinstance(found, type) and issubclass(found, dsl.Reactor)) or found is dsl.Reactor:
        what = found.__name__ if isinstance(found, type) else type(found).__name__
        raise CliError(f"{locator} is not a Reactor subclass (it is {what!r})")
    return found


def _split(raw: str, option: str, hint: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    key = key.strip()
    if not sep or not key:
        raise CliError(f"{option} {raw!r}: expected {hint}")
    if not key.isidentifier():
        raise CliError(f"{option} {raw!r}: {key!r} is not an input name")
    return key, value


def parse_inputs(pairs: Sequence[str] = (), json_pairs: Sequence[str] = ()) -> dict[str, Any]:
    """The inputs given on the command line.

    ``key=value`` gives a string (the engine converts it to the input's type),
    ``key=@path`` the text of a file without its last line break (as a shell's
    ``$(cat path)`` gives it: an editor ends a file with one, a prompt should not),
    and ``--json-input key=JSON`` a decoded JSON value.

    Raises:
        CliError: A pair without ``=``, a file that cannot be read, invalid JSON, or an
            input given twice.
    """
    given: dict[str, Any] = {}

    def put(option: str, key: str, value: Any) -> None:
        if key in given:
            raise CliError(f"{option} {key}: the input {key!r} is given twice")
        given[key] = value

    for raw in pairs:
        key, value = _split(raw, "--input", "KEY=VALUE or KEY=@FILE")
        if value.startswith("@"):
            path = Path(value[1:]).expanduser()
            try:
                value = path.read_text(encoding="utf-8")
                value = value.removesuffix("\n")  # read_text made any \r\n a \n
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise CliError(f"--input {key}=@{path}: cannot read the file ({reason})") from None
        put("--input", key, value)
    for raw in json_pairs:
        key, text = _split(raw, "--json-input", "KEY=JSON")
        try:
            value = msgspec.json.decode(text)
        except msgspec.DecodeError as exc:
            raise CliError(f"--json-input {key}: not valid JSON ({exc})") from None
        put("--json-input", key, value)
    return given


def parse_context(pairs: Sequence[str] = ()) -> dict[str, str]:
    """The run's context from ``--context key=value`` pairs (string values).

    Raises:
        CliError: A pair without ``=``, or a key given twice.
    """
    context: dict[str, str] = {}
    for raw in pairs:
        key, value = _split(raw, "--context", "KEY=VALUE")
        if key in context:
            raise CliError(f"--context {key}: given twice")
        context[key] = value
    return context


def require_inputs(reactor: type[Reactor], given: Mapping[str, Any]) -> None:
    """Check the command line's inputs with the engine's own checker, before starting.

    Raises:
        CliError: An input the reactor does not have, a required one not given (with
            the options that would give it), or one that does not convert.
    """
    try:
        check_inputs(reactor.__plan__, given)
    except InputError as exc:
        hint = " ".join(f"--input {name}=..." for name in exc.missing)
        raise CliError(f"{exc}; pass {hint}" if hint else str(exc)) from None


MODEL_KINDS = frozenset({"ask", "select", "fallback"})
"""Step kinds that need model hosts."""


def has_ask_steps(reactor: type[Reactor], _seen: set[type[Reactor]] | None = None) -> bool:
    """Whether the reactor, or one it composes (at any depth), has a step that asks a model."""
    seen = _seen if _seen is not None else {reactor}
    for spec in reactor.__plan__.steps.values():
        if spec.kind in MODEL_KINDS:
            return True
        for sub in spec.sub_reactors:
            if sub not in seen:
                seen.add(sub)
                if has_ask_steps(sub, seen):
                    return True
    return False


def given_run_options(args: Any) -> dict[str, Any]:
    """The run options given on a command line (only those given), by their Python names."""
    names = (
        "max_concurrency",
        "timeout",
        "on_timeout",
        "max_iterations",
        "halt_timeout",
        "idle_timeout",
    )
    return {name: getattr(args, name) for name in names if getattr(args, name, None) is not None}
