"""A library prints nothing unless asked: the logging default of a program that embeds it."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.support.proc import run_python

PROGRAM = """
import structlog
from actors import Actor, AskError, System


class Boom(Actor):
    def receive(self, message):
        api_key = "sk-SECRET-123"  # a local variable a rich traceback would show
        raise ValueError("bad request " + str(len(api_key)))


print("program: start")
with System() as system:
    ref = system.spawn(Boom, name="boom")
    try:
        ref.ask("x")
    except AskError as exc:
        print("program: ask failed", exc.failure.kind)
    structlog.get_logger("mine").info("an info line")
    structlog.get_logger("mine").warning("a warning line")
print("program: end")
"""


def test_without_configure_logging_nothing_below_warning_and_only_on_stderr(
    tmp_path: Path,
) -> None:
    """Standard output is the program's own; stderr has warnings and errors, no locals."""
    script = tmp_path / "embed.py"
    script.write_text(textwrap.dedent(PROGRAM))
    result = run_python(str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "program: start",
        "program: ask failed actor_crashed",
        "program: end",
    ]
    assert "actor crashed" in result.stderr  # an error: shown
    assert "a warning line" in result.stderr
    assert "ValueError: bad request 13" in result.stderr  # the traceback, plain
    assert "an info line" not in result.stderr
    assert "system started" not in result.stderr  # the runtime's own info lines
    assert "sk-SECRET-123" not in result.stderr + result.stdout
    assert "locals" not in result.stderr


def test_a_program_that_configured_structlog_first_is_left_alone(tmp_path: Path) -> None:
    """Importing the library does not replace a configuration the program chose."""
    script = tmp_path / "mine.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import structlog
            structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stdout))
            import otel
            structlog.get_logger().info("kept mine")
            otel.configure_logging(level="info", stream=sys.stdout)
            structlog.get_logger().info("configured")
            """
        )
    )
    result = run_python(str(script))
    assert result.returncode == 0, result.stderr
    assert "kept mine" in result.stdout
    assert "configured" in result.stdout


def test_crash_lines_carry_no_locals_even_under_a_renderer_that_draws_them(
    tmp_path: Path,
) -> None:
    """A program whose structlog draws rich tracebacks with locals still sees none of ours."""
    script = tmp_path / "fancy_logs.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys
            import structlog
            structlog.configure(
                processors=[structlog.dev.ConsoleRenderer(
                    colors=False,
                    exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=True),
                )],
                logger_factory=structlog.PrintLoggerFactory(sys.stderr),
            )
            """
        )
        + textwrap.dedent(PROGRAM)
    )
    result = run_python(str(script))
    assert result.returncode == 0, result.stderr
    assert "actor crashed" in result.stderr
    assert "ValueError: bad request 13" in result.stderr
    assert "sk-SECRET-123" not in result.stderr + result.stdout
    assert "locals" not in result.stderr


def test_a_closed_stream_drops_lines_and_a_later_stderr_gets_them() -> None:
    """Lines go to standard error as it is when logged; a closed stream never raises.

    A logger bound while a test (or a program) had redirected standard error used to
    keep that stream, and logging to it after it closed crashed the actor that logged.
    """
    import contextlib
    import io

    import structlog

    from otel import configure_logging, install_quiet_default

    try:
        first = io.StringIO()
        with contextlib.redirect_stderr(first):
            configure_logging(level="info")
            log = structlog.get_logger().bind(actor="a")
        first.close()
        log.info("dropped, not raised")  # the stream it was bound under is closed
        later = io.StringIO()
        with contextlib.redirect_stderr(later):
            log.info("reaches the stderr of now")
        assert "reaches the stderr of now" in later.getvalue()
    finally:
        structlog.reset_defaults()
        install_quiet_default()  # as importing the library left it
