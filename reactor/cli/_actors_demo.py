"""``reactor actors-demo``: start the system, send requests through a few actors, show the traces.

An editor fans a brief out to three researchers, each of which asks a model through a
ModelHost: a real LLM server when discovery finds one on the default local ports (or
one is configured), else the built-in fake servers (and the demo says which). One
researcher crashes on its first request and is restarted by its supervisor; the editor
retries, journals each finding in the SQLite store and answers. The demo asks from sync
and from async code, then prints every trace as a tree.
"""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, TextIO

import otel
from actors import (
    Actor,
    ActorCrashed,
    ActorRestarted,
    ChildSpec,
    Event,
    Failure,
    Message,
    Request,
    SupervisorSpec,
    System,
)
from actors.llm import ChatRequest, Completion, Fleet, start_fleet
from actors.store import Journal, Store
from actors.testing import fake_servers
from otel.testing import InMemorySpanExporter

__all__ = ["run_demo"]


class Finding(Message, frozen=True, kw_only=True):
    """What one researcher found."""

    topic: str
    text: str
    by: str


class Research(Request[Finding], frozen=True, kw_only=True):
    """Research one topic."""

    topic: str


class Report(Message, frozen=True, kw_only=True):
    """The editor's combined answer."""

    brief: str
    findings: list[Finding]
    journal_seqs: list[int]


class Brief(Request[Report], frozen=True, kw_only=True):
    """Research every topic and combine the findings."""

    title: str
    topics: list[str]


class Researcher(Actor[Research]):
    """Answers Research by asking a model; ``flaky`` crashes the first time."""

    crashed_once: ClassVar[set[str]] = set()

    def __init__(self, host: str, model: str, flaky: bool = False) -> None:
        super().__init__()
        self.host = host
        self.model = model
        self.flaky = flaky

    def receive(self, message: Research) -> object:
        """Ask the model host without blocking; answer when the completion comes back."""
        if self.flaky and self.name not in Researcher.crashed_once:
            Researcher.crashed_once.add(self.name)
            msg = f"simulated crash while researching {message.topic!r}"
            raise RuntimeError(msg)
        reply = self.defer_reply()

        def done(answer: Completion | Failure) -> None:
            if isinstance(answer, Failure):
                reply.send(answer)
                return
            text = " ".join(answer.content.split())
            reply.send(Finding(topic=message.topic, text=text[:100], by=self.name))

        prompt = ChatRequest.prompt(
            self.model,
            f"In one short sentence, what is {message.topic} in software?",
            max_tokens=60,
        )
        self.ask(self.runtime.lookup(self.host), prompt, done, timeout=60)
        return None


class Editor(Actor[Brief]):
    """Fans a brief out to the researchers, retries a crashed one, journals the findings."""

    def __init__(self, researchers: list[str]) -> None:
        super().__init__()
        self.researchers = researchers

    def receive(self, message: Brief) -> object:
        """Start one ask per topic; the answer goes out when all have come back."""
        reply = self.defer_reply()
        findings: dict[str, Finding] = {}
        journal = Journal(self.runtime.lookup("store"))
        seqs: list[int] = []

        def finish() -> None:
            ordered = [findings[t] for t in message.topics]
            reply.send(Report(brief=message.title, findings=ordered, journal_seqs=sorted(seqs)))

        def journaled(outcome: Any) -> None:
            if isinstance(outcome, Failure):
                reply.send(outcome)
                return
            seqs.append(outcome.seq)
            if len(seqs) == len(message.topics):
                finish()

        def ask(topic: str, researcher: str, retries: int) -> None:
            def answered(outcome: Finding | Failure) -> None:
                if isinstance(outcome, Failure):
                    if outcome.retryable and retries > 0:
                        # Crashed or restarting: its supervisor brings it back; retry soon.
                        retry = partial(ask, topic, researcher, retries - 1)
                        self.call_later(0.05, retry, name=f"retry {researcher}")
                    else:
                        reply.send(outcome)
                    return
                findings[topic] = outcome
                self.ask(journal.ref, journal.append_message(message.title, outcome), journaled)

            self.ask(self.runtime.lookup(researcher), Research(topic=topic), answered, timeout=5)

        for i, topic in enumerate(message.topics):
            ask(topic, self.researchers[i % len(self.researchers)], retries=1)
        return None


class _Watcher(Actor[Event]):
    """Prints crash and restart events as they happen."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out

    def receive(self, message: Event) -> object:
        """Say what the supervisor did."""
        match message:
            case ActorCrashed(name=name, error=error, failed_asks=failed):
                print(
                    f"  event: {name} crashed ({error}); {failed} pending ask(s) failed",
                    file=self.out,
                )
            case ActorRestarted(name=name, supervisor=sup):
                print(f"  event: {sup} restarted {name}", file=self.out)
            case _:
                pass
        return None


def run_demo(
    db_path: Path | None = None, out: TextIO = sys.stdout, log_level: str = "critical"
) -> int:
    """Run the demo and print what happened; returns the process exit status."""
    spans = InMemorySpanExporter()
    # The demo narrates crashes itself; --log-level error shows the logged tracebacks.
    otel.configure_logging(format="console", level=log_level, stream=sys.stderr)
    # Spans always go to memory for the printout; OTEL_* variables add an exporter. This
    # demo is about the runtime, so each actor message is a span too (the opt-in mode).
    otel.configure_tracing(span_exporter=spans, trace_actors=True)
    names = ["researcher-1", "researcher-2", "researcher-3"]
    store = Store.spec(path=db_path)
    print("Reactor Swarm demo: an editor, three researchers under a supervisor, a store", file=out)
    fleet: Fleet | None = None
    try:
        with System(store, name="demo") as system:
            system.bus.subscribe(Event, system.spawn(_Watcher, name="watcher", args=(out,)))
            print(f"  store: {Store.path_of(db_path)}", file=out)
            fleet = start_fleet(system, fallback=fake_servers)
            host, model = _pick_model(fleet, out)
            system.spawn(
                SupervisorSpec(
                    name="researchers",
                    children=[
                        ChildSpec(
                            name=n,
                            actor=Researcher,
                            args=(host, model),
                            kwargs={"flaky": n == "researcher-2"},
                        )
                        for n in names
                    ],
                )
            )
            system.spawn(Editor, name="editor", args=(names,))
            brief = Brief(title="actors", topics=["pykka", "supervision", "tracing"])
            with otel.tracer().start_as_current_span("demo: sync ask"):
                report = system.lookup("editor").ask(brief)
            _print_report("sync ask", report, out)
            report = asyncio.run(_async_part(system))
            _print_report("async ask", report, out)
            print(f"  dead letters: {system.dead_letters.count}", file=out)
    finally:
        if fleet is not None:
            fleet.close()
        otel.shutdown_tracing()
    print("\nTraces (every handled message is a span; children are indented):", file=out)
    print(otel.span_tree(s for s in spans.get_finished_spans() if _interesting(s.name)), file=out)
    return 0


def _pick_model(fleet: Fleet, out: TextIO) -> tuple[str, str]:
    """A loaded chat model if there is one, else the first chat model; say which."""
    if fleet.is_simulated:
        print(
            "  LLM servers: none found on the default local ports or in the configuration;"
            " using the built-in fake servers (simulated answers)",
            file=out,
        )
    candidates = [
        (host, info)
        for host, inventory in fleet.inventories.items()
        for info in inventory.models
        if "chat" in info.capabilities
    ]
    if not candidates:
        msg = "no chat model on any LLM server found; load one, or stop the servers to use fakes"
        raise SystemExit(msg)
    candidates.sort(key=lambda pair: pair[1].loaded is not True)
    host, info = candidates[0]
    if not fleet.is_simulated:
        url = fleet.inventories[host].url
        print(f"  LLM server: {fleet.inventories[host].server} at {url}, model {info.id}", file=out)
    return host, info.id


async def _async_part(system: System) -> Report:
    with otel.tracer().start_as_current_span("demo: async ask"):
        editor = system.lookup("editor")
        return await editor.ask_async(Brief(title="asyncio", topics=["loops", "futures"]))


def _print_report(how: str, report: Report, out: TextIO) -> None:
    print(f"\n{how}: report {report.brief!r}", file=out)
    for finding in report.findings:
        print(f"  {finding.topic:12} {finding.text!r} (by {finding.by})", file=out)
    print(f"  journaled as seqs {report.journal_seqs}", file=out)


def _interesting(name: str) -> bool:
    # The supervisors' bookkeeping, the resource monitor's polls and the hosts' inventory
    # are spans too, but not what the demo is about.
    boring = ("demo.root", "researchers ", "resources ", "io store open", "store io store open")
    noise = ("watcher", "InventoryQuery", "list models", "ResourceSnapshot", "RegisterHost")
    return not name.startswith(boring) and not any(n in name for n in noise)
