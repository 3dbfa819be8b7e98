"""The circuit breaker's state machine, on a clock the tests move by hand."""

from __future__ import annotations

import pytest

from actors import FailureKind
from actors.llm import BreakerConfig
from actors.llm._breaker import Breaker
from actors.llm._messages import BreakerState

CLOSED, OPEN, HALF = BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(**settings: object) -> tuple[Breaker, Clock]:
    clock = Clock()
    return Breaker(BreakerConfig.model_validate(settings), clock), clock


def fail(breaker: Breaker, kind: FailureKind = FailureKind.SERVER_ERROR, n: int = 1) -> None:
    for _ in range(n):
        allowed, _ = breaker.acquire()
        assert allowed
        breaker.failure(kind)


def test_opens_after_consecutive_failures_and_a_success_resets_the_count() -> None:
    breaker, _ = make(failure_threshold=3, min_calls=100, window=100)
    fail(breaker, n=2)
    breaker.success()
    fail(breaker, n=2)
    assert breaker.state is CLOSED
    breaker.acquire()
    transition = breaker.failure(FailureKind.TIMEOUT)
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (CLOSED, OPEN)
    assert "3 consecutive failures" in transition.reason
    assert transition.open_for_s == 5.0
    assert breaker.rejects()
    assert breaker.acquire() == (False, None)


def test_opens_on_failure_rate_only_with_enough_calls() -> None:
    breaker, _ = make(failure_threshold=100, failure_rate=0.5, window=10, min_calls=6)
    for _ in range(2):
        fail(breaker)
        breaker.acquire()
        breaker.success()
    assert breaker.state is CLOSED  # 2 of 4: under min_calls
    breaker.acquire()
    breaker.success()
    breaker.acquire()
    transition = breaker.failure(FailureKind.OVERLOADED)
    assert breaker.state is OPEN
    assert transition is not None
    assert "failure rate 3/6" in transition.reason


def test_bad_requests_and_uncounted_kinds_do_not_move_it() -> None:
    breaker, _ = make(failure_threshold=2)
    for kind in (
        FailureKind.BAD_REQUEST,
        FailureKind.CONTEXT_WINDOW_EXCEEDED,
        FailureKind.CONTENT_POLICY,
        FailureKind.NOT_FOUND,
    ):
        fail(breaker, kind, n=3)
    assert breaker.state is CLOSED


def test_which_kinds_count_is_configurable() -> None:
    breaker, _ = make(failure_threshold=2, counted=frozenset({FailureKind.BAD_REQUEST}))
    fail(breaker, FailureKind.SERVER_ERROR, n=5)
    assert breaker.state is CLOSED
    fail(breaker, FailureKind.BAD_REQUEST, n=2)
    assert breaker.state is OPEN


def test_half_open_admits_limited_probes_and_closes_after_they_succeed() -> None:
    breaker, clock = make(failure_threshold=1, open_s=5, half_open_probes=2)
    fail(breaker)
    assert breaker.retry_in() == pytest.approx(5.0)
    clock.now += 5
    allowed, transition = breaker.acquire()
    assert allowed
    assert transition is not None
    assert transition.to_state is HALF
    assert breaker.acquire() == (True, None)
    assert breaker.acquire() == (False, None)  # both probe slots taken
    assert breaker.rejects()
    assert breaker.success() is None
    closing = breaker.success()
    assert closing is not None
    assert closing.to_state is CLOSED
    assert not breaker.rejects()


def test_a_call_sent_before_it_opened_frees_no_probe_slot() -> None:
    """Two probes in flight; an older call's success counts, but a third probe waits."""
    breaker, clock = make(failure_threshold=1, open_s=5, half_open_probes=2)
    fail(breaker)
    clock.now += 5
    assert breaker.acquire()[0]
    assert breaker.acquire()[0]
    assert breaker.success(probe=False) is None  # sent while closed, answered now
    assert breaker.acquire() == (False, None)  # still two probes in flight
    closing = breaker.success()
    assert closing is not None
    assert closing.to_state is CLOSED


def test_expire_half_opens_only_once_the_open_time_is_over() -> None:
    """The owner's timer half-opens the breaker without a call; probes are then admitted."""
    breaker, clock = make(failure_threshold=1, open_s=5, half_open_probes=1)
    fail(breaker)
    clock.now += 4.9
    assert breaker.expire() is None
    assert breaker.state is OPEN
    clock.now += 0.1
    transition = breaker.expire()
    assert transition is not None
    assert (transition.from_state, transition.to_state) == (OPEN, HALF)
    assert breaker.expire() is None  # already half-open
    assert breaker.acquire() == (True, None)
    assert breaker.acquire() == (False, None)  # the one probe slot is taken


def test_open_time_grows_while_probes_keep_failing_up_to_the_cap() -> None:
    breaker, clock = make(failure_threshold=1, open_s=1, backoff=2, max_open_s=5)
    fail(breaker)
    seen = []
    for _ in range(4):
        clock.now += breaker.retry_in()
        allowed, _ = breaker.acquire()
        assert allowed
        transition = breaker.failure(FailureKind.CONNECTION)
        assert transition is not None
        assert transition.to_state is OPEN
        seen.append(transition.open_for_s)
    assert seen == [2.0, 4.0, 5.0, 5.0]
    clock.now += breaker.retry_in()
    breaker.acquire()
    breaker.success()
    fail(breaker)
    assert breaker.retry_in() == pytest.approx(1.0)  # closing forgot the backoff


def test_retry_after_stretches_the_open_time() -> None:
    breaker, _ = make(failure_threshold=1, open_s=1)
    breaker.acquire()
    transition = breaker.failure(FailureKind.RATE_LIMITED, retry_after=30)
    assert transition is not None
    assert transition.open_for_s == 30


def test_an_uncounted_probe_outcome_frees_its_slot_and_a_cancel_releases_it() -> None:
    breaker, clock = make(failure_threshold=1, open_s=1)
    fail(breaker)
    clock.now += 1
    assert breaker.acquire()[0]
    assert breaker.failure(FailureKind.BAD_REQUEST) is None
    assert breaker.state is HALF
    assert breaker.acquire()[0]
    breaker.release()
    assert breaker.acquire()[0]


def test_invalid_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="failure_rate"):
        BreakerConfig(failure_rate=1.5)
    with pytest.raises(ValueError, match="half_open_probes"):
        BreakerConfig(half_open_probes=0)
