"""Actors on the I/O loop: the Actor's guarantees without a thread each."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any, cast

import pytest

from actors import (
    Actor,
    AskError,
    BlockingCallError,
    ChildSpec,
    DuplicateActorName,
    Failure,
    FailureKind,
    LoopActor,
    Message,
    Ref,
    Request,
    Restart,
    SupervisorSpec,
    System,
    SystemNotRunning,
)
from actors._loop import PASS, LoopScheduler, Mailbox
from actors._reply import AsyncReply, SyncReply
from actors._supervisor import Shutdown, WhichChildren
from actors.lowlevel import StartChild, start_child
from tests.support.actors import Crash, Echo, Hang, Note, Ping, Pong, Sleep


class Where(Request[str], frozen=True, kw_only=True):
    """Answered with the name of the thread that handled it."""


class Seq(Message, frozen=True, kw_only=True):
    """One of a numbered series of tells from one sender."""

    sender: int
    n: int


class Count(Request[int], frozen=True, kw_only=True):
    """Answered with how many Seq messages were handled."""


class Buckets(Request[list[int]], frozen=True, kw_only=True):
    """Answered with the delays (ms) of the loop timer buckets that are kept."""


class Report(Request[tuple[int, dict[int, list[int]]]], frozen=True, kw_only=True):
    """Answered with (overlapping handlers seen, the Seq numbers by sender)."""


class Tick(Request[list[str]], frozen=True, kw_only=True):
    """Schedule a timer callback and a timed message; answer once both have run."""


Asked = Seq | Count | Where | Ping | Crash | Note | Tick | Report


class Recorder(LoopActor[Asked]):
    """Records what it handles, and whether two handlers ever overlapped."""

    def __init__(self, events: list[str] | None = None) -> None:
        super().__init__()
        self.inside = 0
        self.overlaps = 0
        self.seen: dict[int, list[int]] = {}
        self.handled = 0
        self.events = events if events is not None else []
        self.ticks: list[str] = []
        self.tick_reply: Any = None

    def started(self) -> None:
        """Record the start (and the thread it ran on)."""
        self.events.append(f"start {self.incarnation} {threading.current_thread().name}")

    def stopped(self) -> None:
        """Record the stop."""
        self.events.append(f"stop {self.incarnation}")

    def receive(self, message: Asked) -> object:
        """Handle one test message, noticing any overlap with another handler."""
        self.inside += 1
        try:
            if self.inside > 1:
                self.overlaps += 1
            return self._handle(message)
        finally:
            self.inside -= 1

    def _handle(self, message: Asked) -> object:
        match message:
            case Report():
                return (self.overlaps, self.seen)
            case Seq(sender=sender, n=n):
                self.seen.setdefault(sender, []).append(n)
                self.handled += 1
            case Count():
                return self.handled
            case Where():
                return threading.current_thread().name
            case Ping(n=n):
                return Pong(n=n + 1, by=f"{self.name}#{self.incarnation}")
            case Crash(why=why):
                raise RuntimeError(why)
            case Note(text="stop"):
                self.stop()
            case Note(text=text):
                self.ticks.append(text)
                self._tick_done()
            case Tick():
                self.tick_reply = self.defer_reply()
                cancelled = self.call_later(0.01, lambda: self.ticks.append("cancelled"))
                cancelled.cancel()
                self.call_later(0.01, self._on_timer, name="tick")
                self.schedule(0.02, Note(text="scheduled"))
        return None

    def _on_timer(self) -> None:
        self.ticks.append(f"timer on {threading.current_thread().name}")
        self._tick_done()

    def _tick_done(self) -> None:
        if len(self.ticks) == 2 and self.tick_reply is not None:
            self.tick_reply.send(list(self.ticks))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.01)


@pytest.fixture
def loop_name(system: System) -> str:
    """The I/O loop thread's name."""
    return system.bridge.thread.name


@pytest.fixture
def runs(system: System) -> Ref[Any]:
    """A supervisor on the loop, for children started with start_child."""
    return system.spawn(SupervisorSpec(name="loop-sup", max_restarts=100, on_loop=True))


def test_a_loop_actor_runs_on_the_loop_thread_and_answers_asks(
    system: System, loop_name: str
) -> None:
    """started() and every handler run on the I/O loop thread; asks get their answers."""
    events: list[str] = []
    ref = system.spawn(Recorder, name="rec", args=(events,))
    assert ref.ask(Where()) == loop_name
    assert ref.ask(Ping(n=1)) == Pong(n=2, by="rec#1")
    assert events == [f"start 1 {loop_name}"]


async def test_a_loop_actor_answers_ask_async() -> None:
    """ask_async from asyncio code on another loop gets the handler's answer."""
    async with System(name="async-loop") as system:
        ref = await system.spawn_async(Recorder, name="rec")
        assert await ref.ask_async(Ping(n=41)) == Pong(n=42, by="rec#1")


async def test_an_answer_on_the_askers_own_loop_sets_its_future_at_once() -> None:
    """On the asker's loop thread the future is set at once; from another thread, handed over."""
    loop = asyncio.get_running_loop()
    here = AsyncReply(loop)
    assert here.resolve("now")
    assert here._future.done()  # no pass of the loop in between (a loop actor answering)
    there = AsyncReply(loop)
    thread = threading.Thread(target=there.resolve, args=("later",))
    thread.start()
    thread.join()
    assert not there._future.done()  # queued for the loop, which sets it on its next pass
    assert await there.arm(5.0, None) == "later"
    assert await here.arm(5.0, None) == "now"
    there.disarm()
    here.disarm()


def test_spec_on_loop_moves_a_plain_actor_onto_the_loop(system: System, loop_name: str) -> None:
    """ChildSpec(on_loop=True) runs any Actor on the loop; I/O outcomes come back there."""
    ref: Ref[Any] = system.spawn(ChildSpec(name="echo", actor=Echo, on_loop=True))
    assert ref.ask(Sleep(seconds=0.01, n=7)) == Pong(n=7)
    assert ref.ask(Ping(n=1)) == Pong(n=2, by="echo")
    where: list[str] = []

    class Probe(Actor[Where]):
        def receive(self, message: Where) -> object:
            reply = self.defer_reply()

            async def nothing() -> None:
                return None

            def then(_: object) -> None:
                where.append(threading.current_thread().name)
                reply.send(threading.current_thread().name)

            self.pipe_to_self(nothing(), then)
            return None

    probe: Ref[Any] = system.spawn(ChildSpec(name="probe", actor=Probe, on_loop=True))
    assert probe.ask(Where()) == loop_name
    assert where == [loop_name]


def test_tells_from_many_threads_are_handled_one_at_a_time_in_each_senders_order(
    system: System,
) -> None:
    """Eight threads telling at once: no two handlers overlap, each sender's order holds."""
    ref = system.spawn(Recorder, name="rec")
    senders, each = 8, 500
    start = threading.Barrier(senders)

    def send(sender: int) -> None:
        start.wait()
        for n in range(each):
            ref.tell(Seq(sender=sender, n=n))

    threads = [threading.Thread(target=send, args=(i,)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wait_until(lambda: ref.ask(Count()) == senders * each)
    overlaps, seen = ref.ask(Report())
    assert overlaps == 0
    assert all(seen[i] == list(range(each)) for i in range(senders))


def test_a_loop_actor_telling_another_is_handled_on_the_loop(system: System) -> None:
    """A tell between loop actors is delivered (no thread is involved)."""
    events: list[str] = []
    target = system.spawn(Recorder, name="target", args=(events,))

    class Relay(LoopActor[Note]):
        def receive(self, message: Note) -> object:
            for n in range(3):
                target.tell(Seq(sender=0, n=n))
            return None

    system.spawn(Relay, name="relay").tell(Note(text="go"))
    wait_until(lambda: target.ask(Count()) == 3)
    assert target.ask(Report()) == (0, {0: [0, 1, 2]})


def test_an_unanswered_ask_to_a_loop_actor_times_out(system: System) -> None:
    """Every ask is answered by its deadline, on the loop as on a thread."""
    ref: Ref[Any] = system.spawn(ChildSpec(name="echo", actor=Echo, on_loop=True))
    with pytest.raises(AskError) as caught:
        ref.ask(Hang(), timeout=0.2)
    assert caught.value.kind is FailureKind.TIMEOUT


def test_a_loop_actors_ask_times_out_into_its_callback(system: System) -> None:
    """A loop actor asking a silent actor gets a timeout failure by the deadline."""
    silent = system.spawn(Echo, name="silent")

    class Asker(LoopActor[Ping]):
        def receive(self, message: Ping) -> object:
            self.ask(silent, Hang(), self.defer_reply().send, timeout=0.2)
            return None

    with pytest.raises(AskError) as caught:
        system.spawn(Asker, name="asker").ask(Ping(), timeout=5)
    assert caught.value.kind is FailureKind.TIMEOUT


def test_ask_async_on_the_systems_loop_times_out_and_a_cancelled_one_is_dropped(
    system: System,
) -> None:
    """Asked from the system's own I/O loop, the deadline is a loop timer: it still fires.

    A cancelled ask claims its slot (a late answer is dropped) and cancels its timer.
    """
    silent = system.spawn(Echo, name="silent")
    echo: Ref[Any] = system.spawn(ChildSpec(name="echo", actor=Echo, on_loop=True))

    async def timed_out() -> FailureKind:
        try:
            await silent.ask_async(Hang(), timeout=0.2)
        except AskError as exc:
            return exc.kind
        return FailureKind.INTERNAL

    async def cancelled() -> tuple[bool, Pong]:
        task = asyncio.ensure_future(silent.ask_async(Hang(), timeout=30))
        await asyncio.sleep(0)  # one pass: the ask is sent and waits
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        answered = await echo.ask_async(Ping(n=1), timeout=30)
        return task.cancelled(), answered

    assert system.bridge.run(timed_out(), timeout=30) is FailureKind.TIMEOUT
    assert system.bridge.run(cancelled(), timeout=30) == (True, Pong(n=2, by="echo"))


def test_a_crash_answers_every_pending_ask_and_cancels_io(system: System) -> None:
    """A raising handler fails the current, deferred, in-flight and queued asks."""
    ref: Ref[Any] = system.spawn(
        ChildSpec(name="echo", actor=Echo, on_loop=True, restart=Restart.TEMPORARY)
    )
    deadline = time.time() + 10
    deferred, io = SyncReply(), SyncReply()
    # Sent without waiting, so both are handled (one deferred, one waiting on I/O)
    # before the Crash queued behind them.
    ref.send_request(Hang(deadline=deadline), deferred)
    ref.send_request(Sleep(seconds=5.0, deadline=deadline), io)
    with pytest.raises(AskError) as caught:
        ref.ask(Crash(why="kaput"))
    assert caught.value.kind is FailureKind.ACTOR_CRASHED
    assert "kaput" in caught.value.failure.message
    for reply in (deferred, io):
        answer = reply.wait(10, lambda: pytest.fail("never answered"))
        assert isinstance(answer, Failure)
        assert answer.kind is FailureKind.ACTOR_CRASHED
    assert not ref.is_alive()
    with pytest.raises(AskError) as after:
        ref.ask(Ping())
    assert after.value.kind is FailureKind.ACTOR_STOPPED


def test_system_exit_in_a_handler_crashes_that_actor_only(system: System) -> None:
    """A BaseException from a handler crashes its actor; the loop and the others go on."""

    class Quitter(LoopActor[Ping]):
        def receive(self, message: Ping) -> object:
            raise SystemExit(3)

    quitter = system.spawn(Quitter, name="quitter", restart=Restart.TEMPORARY)
    other = system.spawn(Recorder, name="other")
    with pytest.raises(AskError) as caught:
        quitter.ask(Ping())
    assert caught.value.kind is FailureKind.ACTOR_CRASHED
    assert "SystemExit" in caught.value.failure.message
    assert other.ask(Ping(n=1)).n == 2


def test_a_crashed_loop_actor_is_restarted_by_its_supervisor(system: System) -> None:
    """A permanent loop child comes back as a new incarnation behind the same Ref."""
    events: list[str] = []
    ref = system.spawn(Recorder, name="rec", args=(events,))
    with pytest.raises(AskError):
        ref.ask(Crash())
    wait_until(lambda: ref.is_alive() and ref.ask(Ping()).by == "rec#2")
    assert [e.split(" ")[:2] for e in events] == [["start", "1"], ["stop", "1"], ["start", "2"]]


def test_stop_runs_stopped_and_a_transient_child_is_not_restarted(system: System) -> None:
    """stop() handles what is queued, runs stopped(), and exits normally."""
    events: list[str] = []
    ref: Ref[Any] = system.spawn(
        ChildSpec(name="rec", actor=Recorder, args=(events,), restart=Restart.TRANSIENT)
    )
    ref.tell(Seq(sender=0, n=0))
    ref.tell(Note(text="stop"))
    wait_until(lambda: not ref.is_alive())
    assert _stopped_events(events) == ["stop 1"]
    assert "rec" not in [c.name for c in system.children()]
    with pytest.raises(AskError) as caught:
        ref.ask(Ping())
    assert caught.value.kind is FailureKind.ACTOR_STOPPED


def test_timers_of_a_loop_actor_fire_on_the_loop_and_can_be_cancelled(
    system: System, loop_name: str
) -> None:
    """call_later and schedule reach the actor; a cancelled timer never fires."""
    ref = system.spawn(Recorder, name="rec")
    assert sorted(ref.ask(Tick())) == ["scheduled", f"timer on {loop_name}"]


def test_a_blocking_ask_inside_a_loop_handler_is_refused(system: System) -> None:
    """The loop thread may not block: Ref.ask in a handler raises BlockingCallError."""
    seen: list[str] = []
    echo = system.spawn(Echo, name="echo")

    class Blocker(LoopActor[Ping]):
        def receive(self, message: Ping) -> object:
            try:
                echo.ask(Ping())
            except BlockingCallError as exc:
                seen.append(str(exc))
            return Pong(n=0)

    assert system.spawn(Blocker, name="blocker").ask(Ping()) == Pong(n=0)
    assert len(seen) == 1
    assert "would block" in seen[0]


def test_start_child_starts_at_once_and_the_supervisor_adopts_it(
    system: System, runs: Ref[Any]
) -> None:
    """start_child needs no answer from the supervisor, which then lists the child."""
    events: list[str] = []
    spec = ChildSpec(name="kid", actor=Recorder, args=(events,), restart=Restart.TEMPORARY)
    ref = start_child(runs, spec)
    assert ref.ask(Ping(n=1)) == Pong(n=2, by="kid#1")
    assert system.lookup("kid") is ref
    assert [c.name for c in runs.ask(WhichChildren())] == ["kid"]
    with pytest.raises(DuplicateActorName):
        start_child(runs, spec)


def test_children_started_together_cost_their_supervisor_one_message(
    system: System, runs: Ref[Any]
) -> None:
    """Children started while the supervisor waits for its turn are adopted by one message."""
    held, release = threading.Event(), threading.Event()

    def hold_the_loop() -> None:
        held.set()
        release.wait(10)

    system.bridge.loop.call_soon_threadsafe(hold_the_loop)
    assert held.wait(10)
    target = runs._target
    assert target is not None
    try:
        refs = [
            start_child(
                runs,
                ChildSpec(name=f"kid{i}", actor=Recorder, args=([],), restart=Restart.TEMPORARY),
            )
            for i in range(20)
        ]
        queued = len(cast("Mailbox", target.actor_inbox))  # the loop is held
    finally:
        release.set()
    assert queued == 1
    assert sorted(c.name for c in runs.ask(WhichChildren())) == sorted(f"kid{i}" for i in range(20))
    assert all(ref.ask(Ping(n=1)) == Pong(n=2, by=f"kid{i}#1") for i, ref in enumerate(refs))


def test_a_transient_adopted_child_is_restarted_after_a_crash(
    system: System, runs: Ref[Any]
) -> None:
    """Adopted children follow their restart type like any other child."""
    spec = ChildSpec(name="kid", actor=Recorder, restart=Restart.TRANSIENT)
    ref = start_child(runs, spec)
    with pytest.raises(AskError):
        ref.ask(Crash())
    wait_until(lambda: ref.is_alive() and ref.ask(Ping()).by == "kid#2")


def test_a_failing_constructor_raises_to_start_child(system: System, runs: Ref[Any]) -> None:
    """start_child raises what the constructor raised, and the name stays free."""

    class Bad(LoopActor[Ping]):
        def __init__(self) -> None:
            super().__init__()
            raise ValueError("no")

        def receive(self, message: Ping) -> object:
            return None

    with pytest.raises(ValueError, match="no"):
        start_child(runs, ChildSpec(name="bad", actor=Bad))
    assert "bad" not in system.runtime.names()


def test_start_child_to_a_stopped_supervisor_is_refused(system: System) -> None:
    """Starting a child under a supervisor that is gone raises SystemNotRunning."""
    sup: Ref[Any] = system.spawn(
        SupervisorSpec(name="gone", on_loop=True, restart=Restart.TEMPORARY)
    )
    sup.ask(Shutdown())
    wait_until(lambda: not sup.is_alive())
    with pytest.raises(SystemNotRunning):
        start_child(sup, ChildSpec(name="orphan", actor=Recorder))
    assert "orphan" not in system.runtime.names()


def test_a_supervisor_shutdown_stops_its_adopted_children(system: System, runs: Ref[Any]) -> None:
    """Shutdown stops adopted children too (each runs stopped())."""
    events: list[str] = []
    for n in range(5):
        start_child(
            runs,
            ChildSpec(name=f"kid{n}", actor=Recorder, args=(events,), restart=Restart.TEMPORARY),
        )
    runs.ask(Shutdown())
    assert _stopped_events(events) == ["stop 1"] * 5
    assert not any(name.startswith("kid") for name in system.runtime.names())


def test_ten_thousand_loop_actors_live_with_a_bounded_thread_count(
    system: System, runs: Ref[Any]
) -> None:
    """10,000 loop actors alive at once cost no thread each, and all of them answer."""
    threads_before = threading.active_count()
    refs = [
        start_child(runs, ChildSpec(name=f"n{i}", actor=Recorder, restart=Restart.TEMPORARY))
        for i in range(10_000)
    ]
    assert threading.active_count() <= threads_before + 2

    async def ask_all() -> list[Pong]:
        return await asyncio.gather(*(ref.ask_async(Ping(n=i)) for i, ref in enumerate(refs)))

    answers = asyncio.run(ask_all())
    assert [a.n for a in answers] == [i + 1 for i in range(10_000)]
    assert all(ref.is_alive() for ref in refs)
    assert threading.active_count() <= threads_before + 2


def test_start_child_and_start_child_message_agree_on_where_children_run(
    system: System, runs: Ref[Any], loop_name: str
) -> None:
    """A LoopActor started through StartChild runs on the loop too."""
    ref = runs.ask(StartChild(ChildSpec(name="via-ask", actor=Recorder)))
    assert ref.ask(Where()) == loop_name


def test_failure_values_pass_through_pipe_to_self_on_the_loop(system: System) -> None:
    """A coroutine that raises gives its then-callback an internal Failure."""

    class Failing(LoopActor[Ping]):
        def receive(self, message: Ping) -> object:
            reply = self.defer_reply()

            async def broken() -> int:
                raise KeyError("missing")

            def then(outcome: int | Failure) -> None:
                assert isinstance(outcome, Failure)
                reply.send(Pong(n=0, by=outcome.kind.value))

            self.pipe_to_self(broken(), then)
            return None

    assert system.spawn(Failing, name="failing").ask(Ping()) == Pong(n=0, by="internal")


def _stopped_events(events: list[str]) -> list[str]:
    return [e for e in events if e.startswith("stop")]


class Timed(Request[list[str]], frozen=True, kw_only=True):
    """Set timers of several delays (and cancel many); answer in the order they fired."""


class Timekeeper(LoopActor[Timed | Buckets]):
    """Sets timers as a run does (many set, most cancelled) and records which fired."""

    def __init__(self) -> None:
        super().__init__()
        self.fired: list[str] = []
        self.reply: Any = None

    def receive(self, message: Timed | Buckets) -> object:
        match message:
            case Timed():
                self.reply = self.defer_reply()
                doomed = [self.call_later(30.0, lambda: self.fired.append("doomed"))]
                doomed += [self.call_later(0.01, lambda: self.fired.append("x")) for _ in range(50)]
                for handle in doomed:
                    handle.cancel()
                self.call_later(0.05, lambda: self._fire("late"))
                self.call_later(0.01, lambda: self._fire("early"))
            case Buckets():
                return sorted(self.runtime.loop_timers._buckets)
        return None

    def _fire(self, label: str) -> None:
        self.fired.append(label)
        if len(self.fired) == 2:
            self.reply.send(list(self.fired))


def test_loop_timers_fire_by_due_time_and_cancelled_ones_leave_nothing_armed(
    system: System,
) -> None:
    """Shorter delays fire first whatever the order set; cancelled buckets are dropped.

    A bucket of many timers, mostly cancelled, drops them; one of a few keeps its loop
    timer until due (asks answered one after another reuse it), then retires.
    """
    ref: Ref[Any] = system.spawn(Timekeeper, name="keeper")
    assert ref.ask(Timed()) == ["early", "late"]
    # The 10 and 50 ms buckets fired and retired (the 50 cancelled 10 ms timers were
    # dropped on the way); the 30 s one (1 cancelled timer) waits to be due.
    assert ref.ask(Buckets()) == [30_000]


class _Turned:
    """A stand-in mailbox that records its turn (and may schedule a loop callback)."""

    def __init__(self, name: str, record: list[str], then: Callable[[], object] | None) -> None:
        self.name = name
        self.record = record
        self.then = then

    def turn(self) -> None:
        self.record.append(self.name)
        if self.then is not None:
            self.then()


class _LoopOnly:
    """What a LoopScheduler needs of its bridge: the loop, and whether we are on it."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop

    def on_loop_thread(self) -> bool:
        return True


def test_a_pass_of_the_run_queue_lets_loop_callbacks_run_before_more_turns() -> None:
    """With more than PASS mailboxes ready, what the first turns scheduled runs before the rest.

    Thousands of ready loop actors must not hold up the tasks and answers their turns
    started until every one of them has had its turn.
    """
    loop = asyncio.new_event_loop()
    try:
        record: list[str] = []
        scheduler = LoopScheduler(_LoopOnly(loop))  # type: ignore[arg-type]

        def started_work() -> None:
            loop.call_soon(record.append, "callback")

        mailboxes = [
            _Turned(f"m{i}", record, started_work if i == 0 else None) for i in range(PASS + 1)
        ]
        for mailbox in mailboxes:
            scheduler.ready(mailbox)  # type: ignore[arg-type]
        loop.call_soon(loop.stop)
        loop.run_forever()  # the first pass, the callback, then the stop
        loop.run_until_complete(asyncio.sleep(0))  # the second pass
    finally:
        loop.close()
    assert record.index("callback") == PASS
    assert record[PASS + 1 :] == [f"m{PASS}"]


class _Later(LoopActor[Any]):
    """Answers an ask, then leaves work for ``call_soon``; records the order of events."""

    def __init__(self, events: list[str]) -> None:
        super().__init__()
        self.events = events

    def receive(self, message: Any) -> object:
        if isinstance(message, Ping):
            self.call_soon(lambda: self.events.append(f"soon {message.n} {self.name}"))
            self.events.append(f"answer {message.n}")
            return Pong(n=message.n, by=self.name)
        return None


def test_call_soon_runs_in_a_turn_after_the_asker_on_the_loop_goes_on(system: System) -> None:
    """The asker this turn answered resumes first; then the work runs, in the actor's turn."""
    events: list[str] = []
    ref = system.spawn(_Later, name="later", args=(events,))

    async def ask_twice() -> None:  # on the system's loop, as a loop actor's asker is
        await ref.ask_async(Ping(n=1))
        events.append("asker resumed 1")
        await ref.ask_async(Ping(n=2))
        events.append("asker resumed 2")

    system.bridge.run(ask_twice())
    wait_until(lambda: len(events) == 6)
    assert events == [
        "answer 1",
        "asker resumed 1",
        "soon 1 later",
        "answer 2",
        "asker resumed 2",
        "soon 2 later",
    ]


def test_call_soon_from_a_thread_actor_joins_its_mailbox(system: System) -> None:
    """On an actor with a thread the work is queued behind the mail already there."""
    events: list[str] = []

    class Threaded(Actor[Any]):
        def receive(self, message: Any) -> object:
            if isinstance(message, Ping):
                self.call_soon(lambda: events.append(f"soon {message.n}"))
                events.append(f"answer {message.n}")
                return Pong(n=message.n, by=self.name)
            return None

    ref = system.spawn(Threaded, name="threaded")
    assert ref.ask(Ping(n=1)) == Pong(n=1, by="threaded")
    wait_until(lambda: len(events) == 2)
    assert events == ["answer 1", "soon 1"]
