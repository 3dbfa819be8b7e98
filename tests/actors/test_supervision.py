"""Supervision: strategies, restart types, intensity, escalation, ordered start/stop."""

from __future__ import annotations

import operator
import threading
import time
from collections.abc import Callable
from functools import partial

import pytest

from actors import (
    Actor,
    ActorRestarted,
    ChildSpec,
    Event,
    Restart,
    Strategy,
    SupervisorGaveUp,
    SupervisorSpec,
    System,
    SystemNotRunning,
)
from tests.support.actors import Block, Crash, Gated, Note, Ping, Pong


class Life(Actor[Ping | Crash | Note]):
    """Records its starts and stops in a shared list; Note("stop") stops it normally."""

    def __init__(self, log: list[str]) -> None:
        super().__init__()
        self.events = log

    def started(self) -> None:
        """Record the start."""
        self.events.append(f"start {self.name}")

    def stopped(self) -> None:
        """Record the stop."""
        self.events.append(f"stop {self.name}")

    def receive(self, message: Ping | Crash | Note) -> object:
        """Answer, crash, or stop."""
        match message:
            case Ping(n=n):
                return Pong(n=n + 1, by=f"{self.name}#{self.incarnation}")
            case Crash(why=why):
                raise RuntimeError(why)
            case Note():
                self.stop()
                return None


class BadInit(Actor[Ping]):
    """An actor whose constructor always raises."""

    def __init__(self) -> None:
        super().__init__()
        raise ValueError("cannot construct")

    def receive(self, message: Ping) -> object:
        """Never reached."""
        return None


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until ``predicate()`` holds, failing the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(0.01)


def incarnations(system: System, *names: str) -> list[int]:
    """The current incarnation of each named actor, asked from the actor itself."""
    result = []
    for name in names:
        by = system.lookup(name).ask(Ping()).by
        result.append(int(by.rsplit("#", 1)[1]))
    return result


def specs(log: list[str], *names: str, restart: Restart = Restart.PERMANENT) -> list[ChildSpec]:
    """ChildSpecs of Life actors sharing one log."""
    return [ChildSpec(name=n, actor=Life, args=(log,), restart=restart) for n in names]


def tree(log: list[str], strategy: Strategy, max_restarts: int = 5) -> SupervisorSpec:
    """A supervisor with children a, b, c."""
    return SupervisorSpec(
        name="sup",
        children=specs(log, "a", "b", "c"),
        strategy=strategy,
        max_restarts=max_restarts,
    )


def restarted_after(system: System, name: str, incarnation: int) -> Callable[[], bool]:
    """A predicate: the named actor runs a later incarnation than ``incarnation``."""

    def check() -> bool:
        return [i for i in _children(system) if i[0] == name and i[1] > incarnation] != []

    return check


def _children(system: System) -> list[tuple[str, int]]:
    return [(c.name, c.incarnation) for c in system.children() if c.running]


def test_children_start_in_order_and_stop_in_reverse() -> None:
    """A System starts its actors in order and stops them in reverse order."""
    log: list[str] = []
    with System(*specs(log, "a", "b", "c"), name="order"):
        wait_until(lambda: len(log) == 3)
        assert log == ["start a", "start b", "start c"]
    assert log[3:] == ["stop c", "stop b", "stop a"]


def test_one_for_one_restarts_only_the_crashed_child(system: System) -> None:
    """one_for_one: the crashed child restarts, found by the same name; others are untouched."""
    log: list[str] = []
    system.spawn(tree(log, Strategy.ONE_FOR_ONE))
    ref_b = system.lookup("b")
    ref_b.tell(Crash())
    wait_until(lambda: ref_b.is_alive() and log.count("start b") == 2)
    assert incarnations(system, "a", "b", "c") == [1, 2, 1]
    assert system.lookup("b") is ref_b
    assert ref_b.ask(Ping(n=1)) == Pong(n=2, by="b#2")


def test_one_for_all_restarts_every_child_in_order(system: System) -> None:
    """one_for_all: the others stop in reverse order, then all start again in order."""
    log: list[str] = []
    system.spawn(tree(log, Strategy.ONE_FOR_ALL))
    wait_until(lambda: len(log) == 3)
    system.lookup("b").tell(Crash())
    wait_until(lambda: log.count("start c") == 2)
    assert log[3:] == ["stop b", "stop c", "stop a", "start a", "start b", "start c"]
    assert incarnations(system, "a", "b", "c") == [2, 2, 2]


def test_rest_for_one_restarts_the_child_and_those_after_it(system: System) -> None:
    """rest_for_one: the crashed child and later ones restart; earlier ones do not."""
    log: list[str] = []
    system.spawn(tree(log, Strategy.REST_FOR_ONE))
    wait_until(lambda: len(log) == 3)
    system.lookup("b").tell(Crash())
    wait_until(lambda: log.count("start c") == 2)
    assert log[3:] == ["stop b", "stop c", "start b", "start c"]
    assert incarnations(system, "a", "b", "c") == [1, 2, 2]


@pytest.mark.parametrize(
    ("restart", "after_crash", "after_normal_stop"),
    [
        (Restart.PERMANENT, True, True),
        (Restart.TRANSIENT, True, False),
        (Restart.TEMPORARY, False, False),
    ],
)
def test_restart_types(
    system: System, restart: Restart, after_crash: bool, after_normal_stop: bool
) -> None:
    """Permanent always restarts, transient only after a crash, temporary never."""
    log: list[str] = []
    for name, message in (("crasher", Crash()), ("quitter", Note(text="stop"))):
        ref = system.spawn(Life, name=name, args=(log,), restart=restart)
        ref.tell(message)
        wait_until(partial(operator.contains, log, f"stop {name}"))
    time.sleep(0.2)  # give a (wrong) restart the chance to happen
    running = {c.name for c in system.children() if c.running}
    assert ("crasher" in running) is after_crash
    assert ("quitter" in running) is after_normal_stop


def test_intensity_exceeded_escalates_to_the_parent_supervisor(system: System) -> None:
    """A supervisor past its restart intensity stops its children and escalates."""
    log: list[str] = []
    events: list[Event] = []
    got = threading.Event()

    class Collector(Actor[Event]):
        def receive(self, message: Event) -> object:
            events.append(message)
            if isinstance(message, SupervisorGaveUp):
                got.set()
            return None

    system.bus.subscribe(Event, system.spawn(Collector, name="collector"))
    inner = SupervisorSpec(name="inner", children=specs(log, "w", "x"), max_restarts=1, within=10.0)
    system.spawn(SupervisorSpec(name="outer", children=[inner], max_restarts=5))
    system.lookup("w").tell(Crash(why="first"))
    wait_until(lambda: log.count("start w") == 2)
    system.lookup("w").tell(Crash(why="second"))
    assert got.wait(5), "the inner supervisor gave up"
    # The outer supervisor restarted "inner", which started its children afresh.
    wait_until(lambda: log.count("start w") == 3 and log.count("start x") == 2)
    gave_up = [e for e in events if isinstance(e, SupervisorGaveUp)]
    assert [g.name for g in gave_up] == ["inner"]
    assert "second" in gave_up[0].last_error
    assert "stop x" in log  # the sibling was stopped before escalating
    # Events reach the collector asynchronously; the restart event follows shortly.
    wait_until(lambda: any(isinstance(e, ActorRestarted) and e.name == "inner" for e in events))
    assert system.lookup("w").ask(Ping()) == Pong(n=1, by="w#1")


def test_root_supervisor_giving_up_marks_the_system_failed() -> None:
    """When the root supervisor gives up, System.failure says why."""
    log: list[str] = []
    with System(*specs(log, "fragile"), name="fragile", max_restarts=1, within=10.0) as system:
        for _ in range(2):
            system.lookup("fragile").tell(Crash(why="again"))
            wait_until(lambda: log.count("stop fragile") >= 1)
            time.sleep(0.05)
        wait_until(lambda: system.failure is not None)
        assert system.failure is not None
        assert "fragile" in system.failure
        assert "again" in system.failure
        with pytest.raises(SystemNotRunning, match="has failed"):
            system.spawn(Life, name="late", args=(log,))


def test_constructor_failures_count_towards_intensity(system: System) -> None:
    """An actor that can't be constructed is a crash; intensity stops the loop."""
    got = threading.Event()

    class Watch(Actor[SupervisorGaveUp]):
        def receive(self, message: SupervisorGaveUp) -> object:
            got.set()
            return None

    system.bus.subscribe(SupervisorGaveUp, system.spawn(Watch, name="watch"))
    system.spawn(
        SupervisorSpec(
            name="bad-sup",
            children=[ChildSpec(name="bad", actor=BadInit)],
            max_restarts=3,
            within=10.0,
            restart=Restart.TEMPORARY,
        )
    )
    assert got.wait(5)
    wait_until(lambda: "bad-sup" not in {c.name for c in system.children()})


def test_a_child_that_does_not_stop_in_time_is_passed_over() -> None:
    """Shutdown moves on after a child's shutdown_timeout instead of hanging."""
    gate = threading.Event()
    spec = ChildSpec(name="stuck", actor=Gated, args=(gate, []), shutdown_timeout=0.2)
    system = System(spec, name="stuck").start()
    system.lookup("stuck").tell(Block())
    started = time.monotonic()
    system.stop(timeout=5)
    assert time.monotonic() - started < 3
    gate.set()


def test_specs_reject_bad_options_with_the_name() -> None:
    """Bad supervision options are errors that name the spec and the option."""
    with pytest.raises(ValueError, match="'s'.*max_restarts=-1"):
        SupervisorSpec(name="s", max_restarts=-1)
    with pytest.raises(ValueError, match="'s'.*within=0"):
        SupervisorSpec(name="s", within=0)
    with pytest.raises(ValueError, match="'dup' is used twice"):
        SupervisorSpec(
            name="s",
            children=[ChildSpec(name="dup", actor=Life), ChildSpec(name="dup", actor=Life)],
        )
    with pytest.raises(TypeError, match="'w'.*not an Actor subclass"):
        ChildSpec(name="w", actor=int)  # type: ignore[arg-type]
