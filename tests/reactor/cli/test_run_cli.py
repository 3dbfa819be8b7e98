"""`reactor run` and `reactor runs list|show|resume`: inputs, progress, the commands.

The pure parts (input parsing, the progress model) are tested with
hand-made values; ``runs list`` and ``runs show`` read a real SQLite journal written
through a Store; ``reactor run`` itself runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import io
import json
import os
import queue
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

import otel
from actors import System
from actors.store import Journal, Store
from dsl import Input, Reactor, ask, compose, step
from reactor.cli import main
from reactor.cli._parse import (
    EXIT_HALTED,
    CliError,
    has_ask_steps,
    load_reactor,
    parse_inputs,
    require_inputs,
)
from reactor.cli._render import format_json
from reactor.observe._progress import (
    LiveView,
    PlainView,
    ProgressModel,
    QueueMiddleware,
    RunFinishedItem,
    RunStartedItem,
    StepItem,
    format_seconds,
    render,
)
from reactor.run._middleware import RunInfo, RunOutcome, StepEvent, StepEventKind
from reactor.run._records import (
    Owner,
    RunCompleted,
    RunEvent,
    RunFailed,
    RunHalted,
    RunStarted,
    StepCompleted,
    StepFailed,
    StepStarted,
    stream_of,
)
from tests.support.proc import run_python
from tests.support.run_events import raw_json, run_started, step_error


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The commands point structlog at standard error; put the suite's set-up back after."""
    yield
    otel.configure_logging(level="warning")


# ---- reactors used in-process ------------------------------------------------------------


class Greeting(Reactor):
    """Greets someone, a number of times."""

    name = Input(str)
    times = Input(int, default=1)

    @step
    def greet(name: str, times: int) -> str:
        return " ".join([f"hello {name}"] * times)


class Asking(Reactor):
    topic = Input(str)
    answer = ask("Tell me about {topic}", model="fake-small")


class Outer(Reactor):
    topic = Input(str)
    inner = compose(Asking)


# ---- inputs ------------------------------------------------------------------------------


def test_parse_inputs_reads_strings_files_and_json(tmp_path: Path) -> None:
    """key=value: text; key=@file: its text less the last line break; --json-input: JSON."""
    notes = tmp_path / "notes.txt"
    notes.write_text("line one\nline two\n", encoding="utf-8")
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(b"one\r\n\r\n")
    given = parse_inputs(
        ["topic=actors in Python", "words=100", f"notes=@{notes}", f"crlf=@{crlf}", "empty="],
        ['tags=["a", "b"]', 'limits={"n": 3}'],
    )
    assert given == {
        "topic": "actors in Python",
        "words": "100",
        "notes": "line one\nline two",
        "crlf": "one\n",  # read as text: line breaks are \n
        "empty": "",
        "tags": ["a", "b"],
        "limits": {"n": 3},
    }


def test_parse_inputs_keeps_equals_signs_in_values() -> None:
    """Only the first '=' separates the name from the value."""
    assert parse_inputs(["query=a=b"]) == {"query": "a=b"}


@pytest.mark.parametrize(
    ("pairs", "json_pairs", "message"),
    [
        (["topic"], [], "expected KEY=VALUE"),
        (["=x"], [], "expected KEY=VALUE"),
        (["not-a-name=1"], [], "is not an input name"),
        (["a=1", "a=2"], [], "given twice"),
        (["a=1"], ["a=2"], "given twice"),
        ([], ["a={oops"], "not valid JSON"),
        ([], ["a"], "expected KEY=JSON"),
    ],
)
def test_parse_inputs_rejects_malformed_pairs(
    pairs: list[str], json_pairs: list[str], message: str
) -> None:
    """A malformed --input or --json-input is a CliError saying what is wrong."""
    with pytest.raises(CliError, match=message) as caught:
        parse_inputs(pairs, json_pairs)
    assert caught.value.code == 2


def test_parse_inputs_names_a_missing_file(tmp_path: Path) -> None:
    """key=@file with a file that does not exist names the input and the file."""
    missing = tmp_path / "nope.txt"
    with pytest.raises(CliError, match=r"--input notes=@.*nope\.txt: cannot read the file"):
        parse_inputs([f"notes=@{missing}"])


def test_require_inputs_names_the_reactor_and_the_input() -> None:
    """Unknown, missing and ill-typed inputs are reported by the engine's own checker."""
    require_inputs(Greeting, {"name": "Ada"})  # times has a default
    with pytest.raises(CliError, match=r"'Greeting', input 'nmae': no such input \(did you mean"):
        require_inputs(Greeting, {"nmae": "Ada"})
    with pytest.raises(CliError, match=r"input 'name': is required; pass --input name=\.\.\."):
        require_inputs(Greeting, {"times": "2"})
    with pytest.raises(CliError, match=r"input 'times': 'often' is not a valid int"):
        require_inputs(Greeting, {"name": "Ada", "times": "often"})


def test_has_ask_steps_looks_through_composed_reactors() -> None:
    """An ask step is found in the reactor itself and in the reactors it composes."""
    assert not has_ask_steps(Greeting)
    assert has_ask_steps(Asking)
    assert has_ask_steps(Outer)


def test_format_json_indents_and_falls_back_to_str() -> None:
    """The result is indented JSON; what msgspec cannot encode is written as str()."""

    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    assert json.loads(format_json({"a": [1, 2], "b": Opaque()})) == {"a": [1, 2], "b": "opaque!"}
    assert format_json({"a": 1}) == '{\n  "a": 1\n}'


# ---- loading reactors --------------------------------------------------------------------


def _write(tmp_path: Path, name: str, source: str) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(source), encoding="utf-8")
    return path


def test_load_reactor_reports_each_kind_of_bad_locator(tmp_path: Path) -> None:
    """A bad locator, a missing file or name, a broken file or a non-reactor is a CliError."""
    good = _write(
        tmp_path,
        "good.py",
        """
        from dsl import Reactor, step

        def helper() -> int:
            return 1

        class Fine(Reactor):
            @step
            def one() -> int:
                return 1
        """,
    )
    broken = _write(tmp_path, "broken.py", "raise RuntimeError('boom at import')\n")
    bad_definition = _write(
        tmp_path,
        "baddef.py",
        """
        from dsl import Reactor, step

        class Bad(Reactor):
            @step
            def one(missing: int) -> int:
                return missing
        """,
    )
    assert load_reactor(f"{good}:Fine").__plan__.reactor == "Fine"
    cases = {
        "no-colon": "is not 'module:Name'",
        f"{tmp_path}/absent.py:X": "no file",
        f"{good}:Nope": "has no 'Nope'",
        f"{good}:helper": "is not a Reactor subclass",
        f"{broken}:X": "RuntimeError: boom at import",
        f"{bad_definition}:Bad": "missing",
        "no_such_module_xyz:X": "cannot import",
    }
    for locator, message in cases.items():
        with pytest.raises(CliError, match=message):
            load_reactor(locator)


def _main(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_with_a_bad_locator_or_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reactor run` rejects a bad locator or input before starting anything: exit 2."""
    path = _write(
        tmp_path,
        "hello.py",
        """
        from dsl import Input, Reactor, step

        class Hello(Reactor):
            name = Input(str)

            @step
            def greet(name: str) -> str:
                return f"hello {name}"
        """,
    )
    code, out, err = _main(["run", f"{tmp_path}/missing.py:Hello"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("reactor run: error: ")
    assert "no file" in err
    assert err.count("\n") == 1
    code, out, err = _main(["run", f"{path}:Hello", "--input", "nam=x"], capsys)
    assert (code, out) == (2, "")
    assert "reactor 'Hello', input 'nam': no such input" in err
    code, out, err = _main(["run", f"{path}:Hello"], capsys)
    assert code == 2
    assert "reactor 'Hello', input 'name': is required; pass --input name=..." in err


def test_run_mermaid_prints_the_graph_without_running(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reactor run --mermaid` prints the flowchart and exits 0 (no inputs needed)."""
    path = _write(
        tmp_path,
        "two.py",
        """
        from dsl import Input, Reactor, step

        class Two(Reactor):
            n = Input(int)

            @step
            def double(n: int) -> int:
                return 2 * n

            @step
            def show(double: int) -> str:
                return str(double)
        """,
    )
    code, out, err = _main(["run", f"{path}:Two", "--mermaid"], capsys)
    assert code == 0, err
    assert out.startswith("flowchart")
    assert "double" in out
    assert "show" in out


# ---- progress ----------------------------------------------------------------------------


def _info(run_id: str = "r1", parent: str | None = None) -> RunInfo:
    stack = ("Demo",) if parent is None else ("Demo", "Child")
    return RunInfo(
        run_id=run_id, reactor=stack[-1], parent=parent, stack=stack, steps=("a", "b", "c")
    )


def _progress_items() -> list[Any]:
    root, child = _info(), _info("r1/b.1", parent="r1")
    now = time.time()
    return [
        RunStartedItem(root),
        StepItem(root, StepEvent(kind=StepEventKind.START, step="a", attempt=1, at=now)),
        StepItem(
            root,
            StepEvent(
                kind=StepEventKind.ERROR,
                step="a",
                attempt=1,
                at=now + 0.1,
                duration=0.1,
                error=step_error("a", "flaky"),
            ),
        ),
        StepItem(root, StepEvent(kind=StepEventKind.RETRY, step="a", attempt=1, delay=0.05)),
        StepItem(root, StepEvent(kind=StepEventKind.START, step="a", attempt=2, at=now + 0.2)),
        StepItem(
            root,
            StepEvent(kind=StepEventKind.COMPLETE, step="a", attempt=2, at=now + 0.3, duration=0.1),
        ),
        StepItem(root, StepEvent(kind=StepEventKind.START, step="b", attempt=1, at=now + 0.3)),
        RunStartedItem(child),
        StepItem(child, StepEvent(kind=StepEventKind.START, step="inner", attempt=1, at=now)),
        RunFinishedItem(child, RunOutcome(status="completed", duration=0.2)),
        StepItem(root, StepEvent(kind=StepEventKind.SKIP, step="c", detail="where was false")),
        StepItem(root, StepEvent(kind=StepEventKind.ADDED, step="d", detail="by b")),
    ]


def test_progress_model_follows_the_outermost_run_and_counts_sub_runs() -> None:
    """Rows are the outer run's steps; a composed run is counted, not listed."""
    model = ProgressModel()
    for item in _progress_items():
        model.apply(item)
    assert (model.reactor, model.run_id) == ("Demo", "r1")
    rows = {name: (row.status, row.attempt) for name, row in model.rows.items()}
    assert rows == {
        "a": ("done", 2),
        "b": ("running", 1),
        "c": ("skipped", 0),
        "d": ("pending", 0),
    }
    assert model.rows["d"].detail == "added by b"
    assert model.sub_runs == {"r1/b.1": "completed"}
    assert model.rows["b"].elapsed(time.time() + 5) is not None


def test_plain_view_writes_one_line_per_event() -> None:
    """Without a terminal, each event is one line: time, (sub-run,) step and what happened."""
    stream = io.StringIO()
    view = PlainView(ProgressModel(), stream)
    for item in _progress_items():
        view.feed(item)
    lines = stream.getvalue().splitlines()
    assert len(lines) == len(_progress_items())
    assert lines[0].endswith("run r1 started")
    assert lines[2].endswith("a: error in 0.10s: error (ValueError): flaky")
    assert lines[3].endswith("a: retrying in 0.05s")
    assert lines[5].endswith("a: done in 0.10s (attempt 2)")
    assert lines[8].endswith("Demo > Child: inner: running")
    assert lines[-1].endswith("d: added by b")


def test_live_view_renders_a_table_of_steps() -> None:
    """The live table shows a row per step with its status and attempt."""
    from rich.console import Console

    model = ProgressModel()
    console = Console(file=io.StringIO(), width=120, force_terminal=False)
    with LiveView(model, console) as view:
        for item in _progress_items():
            view.feed(item)
        view.tick()
    console.print(render(model))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "STEP" in text
    assert "STATUS" in text
    for expected in ("done", "running", "skipped", "added by b", "sub-runs: 0 running, 1 ended"):
        assert expected in text


def test_progress_shows_brackets_in_names_and_errors_as_written() -> None:
    """An error holding "[/INST]" (a chat template's tag) is shown, not read as rich markup."""
    from rich.console import Console

    model = ProgressModel()
    info = _info()
    model.apply(RunStartedItem(info))
    error = step_error("gen[1]", "the model echoed [/INST] and [bold]")
    model.apply(StepItem(info, StepEvent(kind=StepEventKind.START, step="gen[1]", attempt=1)))
    model.apply(StepItem(info, StepEvent(kind=StepEventKind.ERROR, step="gen[1]", error=error)))
    console = Console(file=io.StringIO(), width=200)  # markup on, as a user's console may be
    console.print(render(model))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "gen[1]" in text
    assert "[/INST] and [bold]" in text


def test_runs_list_shows_brackets_as_written(tmp_path: Path) -> None:
    """``runs list`` prints a last event with brackets as it is (no markup, no error)."""
    from reactor.cli._render import write_runs
    from reactor.run import RunSummary

    row = RunSummary(
        run_id="r[1]",
        reactor="Chat",
        locator="x.py:Chat",
        status="failed",
        created_at=0.0,
        updated_at=1.0,
        last_event="StepFailed: [/INST]",
        events=3,
    )
    out = io.StringIO()
    write_runs(out, [row], as_json=False)
    assert "r[1]" in out.getvalue()
    assert "StepFailed: [/INST]" in out.getvalue()


def test_queue_middleware_only_queues() -> None:
    """The middleware hooks put items on the queue (they never block the Run actor)."""
    events: queue.Queue[Any] = queue.Queue()
    middleware = QueueMiddleware(events)
    info = _info()
    middleware.run_started(info)
    middleware.step_event(info, StepEvent(kind=StepEventKind.START, step="a"))
    middleware.run_finished(info, RunOutcome(status="completed"))
    kinds = [type(events.get_nowait()).__name__ for _ in range(3)]
    assert kinds == ["RunStartedItem", "StepItem", "RunFinishedItem"]


def test_format_seconds() -> None:
    """Durations read naturally at every scale."""
    assert [format_seconds(s) for s in (None, 0.123, 12.34, 65, 3725)] == [
        "-",
        "0.12s",
        "12.3s",
        "1m 05s",
        "1h 02m",
    ]


# ---- runs list / show against a real journal ---------------------------------------------


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_runs(path: Path, runs: dict[str, Sequence[RunEvent]]) -> None:
    """Append each run's events to its stream, through a real Store."""
    with System(Store.spec(path), name="writer") as system:
        journal = Journal(system.lookup("store"))
        for run_id, events in runs.items():
            for event in events:
                journal.append(stream_of(run_id), type(event).__name__, event)


@pytest.fixture
def journal_db(tmp_path: Path) -> Path:
    """A journal with a completed, a failed, a halted and an interrupted run (oldest first)."""
    path = tmp_path / "runs.db"
    now = time.time()
    dead = Owner(host=socket.gethostname(), pid=_dead_pid(), started_at=now - 100)
    _write_runs(
        path,
        {
            "done-1": [
                run_started("done-1", "Summary", at=now - 50),
                StepStarted(step="fetch", attempt=1, at=now - 49.9),
                StepCompleted(
                    step="fetch", attempt=1, value=raw_json("x"), started_at=now - 49.9, at=now - 49
                ),
                RunCompleted(run_id="done-1", value=raw_json({"words": 100}), at=now - 48),
            ],
            "fail-2": [
                run_started("fail-2", "Payment", at=now - 40),
                StepStarted(step="pay", attempt=1, at=now - 39),
                StepFailed(
                    step="pay",
                    attempt=1,
                    error=step_error("pay", "card declined"),
                    will_retry=False,
                    started_at=now - 39,
                    at=now - 38,
                ),
                RunFailed(
                    run_id="fail-2", errors=(step_error("pay", "card declined"),), at=now - 38
                ),
            ],
            "halt-3": [
                run_started("halt-3", "Review", at=now - 30),
                RunHalted(run_id="halt-3", step="approve", reason="needs a human", at=now - 29),
            ],
            "lost-4": [
                RunStarted(
                    run_id="lost-4",
                    reactor="Crawler",
                    locator="/tmp/crawl.py:Crawler",
                    inputs=raw_json({}),
                    owner=dead,
                    at=now - 20,
                ),
                StepStarted(step="crawl", attempt=1, at=now - 19),
            ],
        },
    )
    return path


def test_runs_list_as_json_newest_first_with_statuses(
    journal_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs list --json`: newest first, with status, reactor and last event per run."""
    code, out, err = _main(["runs", "list", "--db", str(journal_db), "--json"], capsys)
    assert code == 0, err
    rows = json.loads(out)
    assert [(r["run_id"], r["reactor"], r["status"], r["last_event"]) for r in rows] == [
        ("lost-4", "Crawler", "interrupted", "StepStarted"),
        ("halt-3", "Review", "halted", "RunHalted"),
        ("fail-2", "Payment", "failed", "RunFailed"),
        ("done-1", "Summary", "completed", "RunCompleted"),
    ]
    code, out, _ = _main(
        ["runs", "list", "--db", str(journal_db), "--json", "--limit", "2"], capsys
    )
    assert [r["run_id"] for r in json.loads(out)] == ["lost-4", "halt-3"]


def test_runs_list_as_a_table(journal_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs list` prints one table row per run."""
    code, out, err = _main(["runs", "list", "--db", str(journal_db)], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == [
        "RUN",
        "ID",
        "REACTOR",
        "STATUS",
        "STARTED",
        "DURATION",
        "LAST",
        "EVENT",
    ]
    assert lines[1].split()[:3] == ["lost-4", "Crawler", "interrupted"]
    assert lines[4].split()[:3] == ["done-1", "Summary", "completed"]
    assert lines[1].rstrip().endswith("StepStarted")


def test_runs_list_without_a_database_creates_none(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Listing a database that does not exist says so and does not create the file."""
    path = tmp_path / "absent.db"
    code, out, _ = _main(["runs", "list", "--db", str(path)], capsys)
    assert code == 0
    assert "no runs yet" in out
    code, out, _ = _main(["runs", "list", "--db", str(path), "--json"], capsys)
    assert (code, json.loads(out)) == (0, [])
    assert not path.exists()


def test_runs_show_a_failed_run(journal_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs show` prints the header (inputs, errors) and a table of the steps."""
    code, out, err = _main(["runs", "show", "fail-2", "--db", str(journal_db)], capsys)
    assert code == 0, err
    assert "Payment" in out
    assert "failed" in out
    assert '"topic": "actors"' in out
    assert "step pay: error (ValueError): card declined" in out
    step_rows = [line.split() for line in out.splitlines() if line.startswith("pay ")]
    assert step_rows
    assert step_rows[0][:4] == ["pay", "failed", "1", "+1.00s"]


def test_runs_show_a_halted_run_says_how_to_resume(
    journal_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A halted run shows the step, the reason and the resume command."""
    code, out, _ = _main(["runs", "show", "halt-3", "--db", str(journal_db)], capsys)
    assert code == 0
    assert "at step approve: needs a human" in out
    assert "reactor runs resume halt-3" in out


def test_runs_show_a_run_its_timeout_halted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run halted by its timeout (on_timeout="halt") names no step, only the timeout."""
    path = tmp_path / "runs.db"
    now = time.time()
    reason = "the run's timeout of 5.0 s passed"
    _write_runs(
        path,
        {
            "late-5": [
                run_started("late-5", "Review", at=now - 10),
                StepStarted(step="fetch", attempt=1, at=now - 9),
                StepCompleted(
                    step="fetch", attempt=1, value=raw_json(1), started_at=now - 9, at=now - 3
                ),
                RunHalted(run_id="late-5", step="", reason=reason, at=now - 3),
            ]
        },
    )
    code, out, err = _main(["runs", "show", "late-5", "--db", str(path)], capsys)
    assert code == 0, err
    assert reason in out
    assert "at step" not in out
    assert "reactor runs resume late-5" in out
    code, out, err = _main(["runs", "show", "late-5", "--db", str(path), "--json"], capsys)
    view = json.loads(out)
    assert (view["status"], view["halted_step"], view["reason"]) == ("halted", None, reason)
    assert [(s["name"], s["status"]) for s in view["steps"]] == [("fetch", "done")]


def test_run_refuses_an_unknown_on_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--on-timeout` takes fail or halt; anything else is a usage error (exit 2)."""
    with pytest.raises(SystemExit) as caught:
        main(["run", "x.py:R", "--on-timeout", "soft", "--db", str(tmp_path / "runs.db")])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "--on-timeout" in err
    assert "'fail'" in err
    assert "'halt'" in err
    assert not (tmp_path / "runs.db").exists()


def test_runs_show_as_json(journal_db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`runs show --json` is the folded view, with each step's duration."""
    code, out, err = _main(["runs", "show", "done-1", "--db", str(journal_db), "--json"], capsys)
    assert code == 0, err
    view = json.loads(out)
    assert (view["status"], view["result"], view["inputs"]) == (
        "completed",
        {"words": 100},
        {"topic": "actors"},
    )
    assert view["steps"][0]["name"] == "fetch"
    assert view["steps"][0]["duration"] == pytest.approx(0.9, abs=0.01)
    code, out, _ = _main(["runs", "show", "lost-4", "--db", str(journal_db), "--json"], capsys)
    assert json.loads(out)["status"] == "interrupted"


def test_runs_show_an_unknown_run_exits_2(
    journal_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unknown run id, or a database that does not exist, is a one-line error: exit 2."""
    code, out, err = _main(["runs", "show", "nope", "--db", str(journal_db)], capsys)
    assert (code, out) == (2, "")
    assert err == "reactor runs show: error: no run 'nope' in the journal\n"
    code, _, err = _main(["runs", "show", "nope", "--db", str(tmp_path / "x.db")], capsys)
    assert code == 2
    assert "no database at" in err


def test_runs_resume_refuses_a_finished_or_unknown_run(
    journal_db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Resuming a completed or an unknown run is a one-line error: exit 2."""
    code, _, err = _main(["runs", "resume", "done-1", "--db", str(journal_db)], capsys)
    assert code == 2
    assert "run done-1 is completed: there is nothing to resume" in err
    code, _, err = _main(["runs", "resume", "nope", "--db", str(journal_db)], capsys)
    assert code == 2
    assert "no run 'nope'" in err


# ---- end to end: `reactor run` as a subprocess -------------------------------------------

FLOW = """
import time
from dsl import Halt, Input, Reactor, Retry, StepContext, step

class Words(Reactor):
    '''Counts words; fails on request, or halts until resumed.'''

    text = Input(str)
    repeat = Input(int, default=1)
    mode = Input(str, default="ok")

    @step
    def words(text: str, repeat: int) -> list[str]:
        return text.split() * repeat

    @step(max_retries=1, backoff=0.01)
    def check(words: list[str], mode: str, ctx: StepContext) -> int:
        if mode == "fail" and ctx.attempt == 1:
            return Retry("try once more")
        if mode == "fail":
            raise ValueError("told to fail")
        return len(words)

    @step
    def gate(check: int, mode: str) -> int:
        if mode == "halt":
            import os
            marker = os.environ["GATE_MARKER"]
            if not os.path.exists(marker):
                return Halt("waiting for the marker file")
        return check

    @step
    def report(gate: int, words: list[str]) -> dict:
        return {"count": gate, "first": words[0]}

class Slow(Reactor):
    seconds = Input(float)

    @step
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds
"""


def _engine_ready() -> bool:
    return (Path(__file__).resolve().parents[3] / "reactor" / "app" / "_engine.py").is_file()


needs_engine = pytest.mark.skipif(
    not _engine_ready(), reason="reactor.app._engine is not there yet"
)


def _reactor(*args: str, db: Path, env: dict[str, str] | None = None) -> Any:
    return run_python("-m", "reactor", *args, env={"REACTOR_DB": str(db), **(env or {})})


@needs_engine
@pytest.mark.slow
def test_run_end_to_end_completed_failed_halted_then_resumed(tmp_path: Path) -> None:
    """`reactor run` prints JSON and exits 0/1/3; `runs show` and `runs resume` follow up."""
    flow = _write(tmp_path, "flow.py", FLOW)
    db = tmp_path / "e2e.db"
    done = _reactor("run", f"{flow}:Words", "--input", "text=a b c", "--input", "repeat=2", db=db)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": 6, "first": "a"}
    assert "report: done" in done.stderr  # plain progress lines: stderr is not a terminal
    run_id = done.stderr.strip().splitlines()[-1].split()[1]
    assert done.stderr.strip().endswith(f"run {run_id} completed")

    shown = _reactor("runs", "show", run_id, "--json", db=db)
    assert shown.returncode == 0, shown.stderr
    view = json.loads(shown.stdout)
    assert (view["status"], view["reactor"], view["result"]) == (
        "completed",
        "Words",
        {"count": 6, "first": "a"},
    )
    assert [s["name"] for s in view["steps"]] == ["words", "check", "gate", "report"]

    failed = _reactor(
        "run", f"{flow}:Words", "-i", "text=x", "-i", "mode=fail", "--no-progress", db=db
    )
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout == ""
    assert "step check: error (ValueError): told to fail" in failed.stderr
    failed_id = failed.stderr.split("run ", 1)[1].split()[0]
    shown = _reactor("runs", "show", failed_id, "--json", db=db)
    check = next(s for s in json.loads(shown.stdout)["steps"] if s["name"] == "check")
    assert (check["status"], check["attempts"]) == ("failed", 2)

    marker = tmp_path / "marker"
    env = {"GATE_MARKER": str(marker)}
    halted = _reactor(
        "run", f"{flow}:Words", "-i", "text=p q", "-i", "mode=halt", "--run-id", "h-1",
        db=db, env=env,
    )  # fmt: skip
    assert halted.returncode == 3, halted.stderr
    assert "run h-1 halted at step gate: waiting for the marker file" in halted.stderr
    assert "reactor runs resume h-1" in halted.stderr
    listed = json.loads(_reactor("runs", "list", "--json", db=db).stdout)
    assert (listed[0]["run_id"], listed[0]["status"]) == ("h-1", "halted")

    marker.write_text("go")
    resumed = _reactor("runs", "resume", "h-1", db=db, env=env)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout) == {"count": 2, "first": "p"}
    view = json.loads(_reactor("runs", "show", "h-1", "--json", db=db).stdout)
    assert (view["status"], view["resumed"]) == ("completed", 1)


@needs_engine
@pytest.mark.slow
def test_run_converts_text_inputs_and_reports_bad_ones(tmp_path: Path) -> None:
    """`--input n=3` reaches an int input as 3; --json-input gives structured values."""
    flow = _write(tmp_path, "flow.py", FLOW)
    db = tmp_path / "inputs.db"
    words = tmp_path / "words.txt"
    words.write_text("one two three four")
    done = _reactor(
        "run", f"{flow}:Words", "-i", f"text=@{words}", "-j", "repeat=3", "--no-progress", db=db
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"count": 12, "first": "one"}
    bad = _reactor("run", f"{flow}:Words", "-i", "text=x", "-i", "repeat=many", db=db)
    assert bad.returncode in (1, 2), bad.stderr
    assert "repeat" in bad.stderr
    assert bad.stdout == ""


@needs_engine
@pytest.mark.slow
def test_ctrl_c_cancels_the_run_and_exits_130(tmp_path: Path) -> None:
    """SIGINT while a step runs cancels the run: exit 130, and the journal says cancelled."""
    import signal

    flow = _write(tmp_path, "flow.py", FLOW)
    db = tmp_path / "cancel.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactor", "run", f"{flow}:Slow", "-i", "seconds=30"],
        cwd=Path(__file__).resolve().parents[3],
        env={**env, "REACTOR_DB": str(db), "PYTHONFAULTHANDLER": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        for line in proc.stderr:
            if "nap: running" in line:
                break
        proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)  # faulthandler prints every thread's stack
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"no exit within 30 s of SIGINT; its threads then:\n{err}")
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 130, err
    assert out == ""
    listed = json.loads(_reactor("runs", "list", "--json", db=db).stdout)
    assert listed[0]["status"] == "cancelled"


def test_run_max_iterations_halts_a_loop_and_refuses_a_negative(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--max-iterations N` halts a looping run (exit 3 with the reason); -1 is exit 2."""
    db = str(tmp_path / "runs.db")
    locator = "tests.support.acceptance:Counter"
    code, out, err = _main(
        ["run", locator, "-i", "start=1", "-i", "limit=4", "--max-iterations", "1", "--db", db],
        capsys,
    )
    assert code == EXIT_HALTED, (out, err)
    assert "the run reached max_iterations=1" in out + err
    code, out, err = _main(
        ["run", locator, "-i", "start=1", "-i", "limit=4", "--max-iterations", "-1", "--db", db],
        capsys,
    )
    assert code == 2
    assert "--max-iterations must be at least 0" in out + err


def test_run_idle_timeout_is_journaled_shown_and_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--idle-timeout S` goes with the run (shown by `runs show`); 0 is exit 2, naming it."""
    db = str(tmp_path / "runs.db")
    locator = "tests.support.acceptance:Counter"
    argv = ["run", locator, "-i", "start=1", "-i", "limit=4", "--max-iterations", "0"]
    code, out, err = _main([*argv, "--idle-timeout", "0", "--db", db], capsys)
    assert code == 2
    assert "--idle-timeout must be a number of seconds > 0" in out + err
    code, out, err = _main([*argv, "--idle-timeout", "60", "--run-id", "idle", "--db", db], capsys)
    assert code == EXIT_HALTED, (out, err)
    code, out, err = _main(["runs", "show", "idle", "--db", db], capsys)
    assert "on_timeout=fail  max_iterations=0  idle_timeout=60.0" in out
    code, out, err = _main(["runs", "resume", "idle", "--idle-timeout", "0", "--db", db], capsys)
    assert code == 2
    assert "idle_timeout must be seconds > 0, got 0" in out + err


def test_runs_resume_takes_run_options_anew(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`reactor runs resume ID --max-iterations N`: the run goes on under the new limit."""
    db = str(tmp_path / "runs.db")
    locator = "tests.support.acceptance:Counter"
    argv = ["run", locator, "-i", "start=1", "-i", "limit=4", "--max-iterations", "0"]
    code, out, err = _main([*argv, "--run-id", "looping", "--db", db], capsys)
    assert code == EXIT_HALTED, (out, err)
    code, out, err = _main(["runs", "resume", "looping", "--timeout", "0", "--db", db], capsys)
    assert code == 2
    assert "timeout must be seconds > 0, got 0" in out + err
    code, out, err = _main(
        ["runs", "resume", "looping", "--max-iterations", "5", "--timeout", "60", "--db", db],
        capsys,
    )
    assert code == 0, (out, err)
    assert "reached 4" in out
    code, out, err = _main(["runs", "show", "looping", "--json", "--db", db], capsys)
    options = json.loads(out)["options"]
    assert (options["max_iterations"], options["timeout"]) == (5, 60.0)
    code, out, err = _main(["runs", "show", "looping", "--db", db], capsys)
    assert "timeout=60.0  on_timeout=fail  max_iterations=5" in out
