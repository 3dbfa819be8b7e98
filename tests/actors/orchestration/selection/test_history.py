"""Performance history: discounted per observation of a task type, faded by age when loaded."""

from __future__ import annotations

import msgspec
import pytest

from actors.orchestration.selection import History, HistorySnapshot


def test_rewards_in_a_task_type_discount_every_model_of_that_type_only() -> None:
    """An observation of 'code' shrinks every code cell by gamma, not the creative ones."""
    history = History(discount=0.5)
    history.reward("a", "code", 1.0)
    history.reward("b", "creative", 1.0)
    history.reward("b", "code", 0.0)
    assert history.counts("a", "code") == (0.5, 0.0)
    assert history.counts("b", "code") == (0.0, 1.0)
    assert history.counts("b", "creative") == (1.0, 0.0)


def test_without_discount_nothing_is_forgotten() -> None:
    """A discount of 1 keeps every observation at full weight."""
    history = History(discount=1.0)
    for _ in range(10):
        history.reward("a", "code", 1.0)
    assert history.counts("a", "code") == (10.0, 0.0)


def test_a_correction_moves_mass_without_counting_the_answer_twice() -> None:
    """Feedback of 0.25 for an answer counted as 1 moves 0.75 from wins to losses."""
    history = History(discount=1.0)
    history.reward("a", "code", 1.0)
    history.correct("a", "code", 0.25 - 1.0)
    assert history.counts("a", "code") == (0.25, 0.75)


def test_statistics_summarise_latency_cost_failures_and_quality() -> None:
    """The summary weighs each task type's record; failures are kept per kind."""
    history = History()
    history.record("a", "code", ok=True, latency_s=1.0, cost_usd=0.01, quality=0.5)
    history.record("a", "factual", ok=True, latency_s=3.0, cost_usd=0.03, quality=1.0)
    history.record("a", "code", ok=False, kind="timeout")
    summary = history.summary("a")
    assert summary.calls == 3
    assert summary.success_rate == pytest.approx(2 / 3)
    assert summary.latency_s == pytest.approx(2.0)
    assert summary.quality == pytest.approx(0.75)
    assert summary.failures == {"timeout": 1.0}


def test_a_task_type_not_done_yet_expects_the_models_own_latency() -> None:
    """The fallback latency is the model's over its own task types, kept right by pruning."""
    history = History()
    history.record("a", "code", ok=True, latency_s=1.0, now=1.0)
    history.record("a", "factual", ok=True, latency_s=3.0, now=1000.0)
    history.record("b", "code", ok=True, latency_s=9.0, now=1000.0)
    assert history.latency("a", "creative") == pytest.approx(2.0)  # not b's 9 s
    assert history.latency("a", "code") == 1.0  # its own record first
    assert history.prune(1000.0, half_life_s=1.0) == 1  # a/code fades away
    assert history.latency("a", "creative") == pytest.approx(3.0)
    assert history.summary("a").by_task == {"factual": 1.0}
    history.record("a", "code", ok=True, latency_s=5.0, now=1001.0)  # comes back
    assert history.latency("a", "creative") == pytest.approx(4.0)


def test_a_snapshot_round_trips_through_json_and_fades_with_age() -> None:
    """Loaded one half-life later, every count weighs half; running means are kept."""
    history = History(discount=1.0)
    history.reward("a", "code", 1.0)
    history.record("a", "code", ok=True, latency_s=2.0)
    data = msgspec.json.encode(history.snapshot(now=1000.0))
    loaded = msgspec.json.decode(data, type=HistorySnapshot)
    fresh = History(discount=1.0)
    fresh.restore(loaded, now=1000.0 + 3600.0, half_life_s=3600.0)
    assert fresh.counts("a", "code") == pytest.approx((0.5, 0.0))
    cell = fresh.cell("a", "code")
    assert cell is not None
    assert cell.calls == pytest.approx(0.5)
    assert cell.latency_s == 2.0


def test_a_bad_discount_is_refused() -> None:
    """The discount must be in (0, 1]."""
    with pytest.raises(ValueError, match="discount"):
        History(discount=0.0)


def test_answered_is_record_then_reward_in_one_step() -> None:
    """The Selector's one-step learning leaves every cell as ``record`` + ``reward`` would."""
    stepwise, fused = History(discount=0.9), History(discount=0.9)
    calls = [
        ("a", "code", 0.5, 0.1, 40.0, 0.002, 120, None, 1.0),
        ("b", "code", 0.7, None, None, None, None, 0.8, 0.8),  # discounts a's code cell
        ("a", "creative", 0.2, None, 55.0, None, 30, None, None),  # recorded, not scored
        ("a", "code", 0.9, 0.3, None, 0.004, 80, 0.6, 0.6),
    ]
    for n, (model, task, latency, ttft, speed, cost, tokens, quality, reward) in enumerate(calls):
        now = 1000.0 + n
        stepwise.record(
            model,
            task,
            ok=True,
            latency_s=latency,
            ttft_s=ttft,
            tokens_per_s=speed,
            cost_usd=cost,
            output_tokens=tokens,
            quality=quality,
            now=now,
        )
        if reward is not None:
            stepwise.reward(model, task, reward)
        fused.answered(model, task, latency, ttft, speed, cost, tokens, quality, reward, now)
    assert fused.clocks == stepwise.clocks
    assert fused.cells.keys() == stepwise.cells.keys()
    for key, cell in stepwise.cells.items():
        expected = msgspec.to_builtins(cell)
        got = msgspec.to_builtins(fused.cells[key])
        assert got.keys() == expected.keys(), key
        for field, value in expected.items():
            assert got[field] == pytest.approx(value), (key, field)
