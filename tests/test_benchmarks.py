"""`python -m benchmarks routing --quick` runs and prints one well-formed JSON object.

Only the shape is checked: timings on shared machines are not something to assert.
"""

from __future__ import annotations

import json

import pytest

from tests.support.proc import run_python


def _figures(data: dict[str, object], keys: tuple[str, ...]) -> list[tuple[str, int | float]]:
    """Each named figure with its value (unchanged), once checked to be a number."""
    pairs: list[tuple[str, int | float]] = []
    for key in keys:
        value = data.get(key)
        assert isinstance(value, int | float), f"{key}: {value!r}"
        pairs.append((key, value))
    return pairs


FIGURES = (
    "raw_ask_p50_us",
    "raw_ask_p99_us",
    "ask_1hop_p50_us",
    "ask_1hop_p99_us",
    "ask_3hop_p50_us",
    "ask_3hop_p99_us",
    "ask_1hop_traced_p50_us",
    "raw_tell_per_s",
    "tell_per_s",
    "ask_1hop_ratio",
    "tell_ratio",
)
TARGETS = ("ask_1hop_ratio_max", "ask_3hop_p50_us_max", "tell_ratio_min")


def test_routing_quick_prints_one_json_object_with_every_figure() -> None:
    result = run_python("-m", "benchmarks", "routing", "--quick", timeout=50)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # the whole of stdout is the one object
    assert isinstance(data, dict)

    for key, value in _figures(data, FIGURES):
        assert not isinstance(value, bool), key
        assert value > 0, f"{key}: {value!r}"

    assert set(data["targets"]) == set(TARGETS)
    assert all(isinstance(v, int | float) and v > 0 for v in data["targets"].values())
    assert set(data["targets_met"]) == set(TARGETS)
    assert all(isinstance(v, bool) for v in data["targets_met"].values())

    meta = data["meta"]
    assert meta["python"].count(".") == 2
    assert meta["pykka"]
    assert meta["n"] > 0
    assert meta["cpu_count"] > 0


HOSTS_FIGURES = (
    "raw_wall_s",
    "actors_wall_s",
    "fanout_ratio",
    "default_httpx_wall_s",
    "aiohttp_wall_s",
    "fanout_vs_aiohttp_ratio",
    "stream_tokens_per_s",
    "failfast_p50_us",
    "failfast_p99_us",
    "fetch_p50_us",
    "httpx_path_p50_us",
    "fetch_vs_httpx",
    "fetch_cpu_us",
    "httpx_path_cpu_us",
)


@pytest.mark.slow
def test_hosts_quick_prints_one_json_object_with_every_figure() -> None:
    result = run_python("-m", "benchmarks", "hosts", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["requests"] == 100
    for key, value in _figures(data, HOSTS_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert set(data["targets"]) == {"fanout_ratio_max", "failfast_p99_us_max"}
    assert all(isinstance(v, bool) for v in data["targets_met"].values())


REACTOR_FIGURES = (
    "chain_plain_us",
    "chain_engine_us",
    "fanout_plain_us",
    "fanout_engine_us",
    "chain_engine_traced_us",
    "chain_plain_normal_us",
    "chain_engine_normal_us",
    "chain_engine_traced_normal_us",
    "chain_engine_traced_batched_normal_us",
    "chain_ratio",
    "fanout_ratio",
)
REACTOR_BURST = (
    "burst_runs",
    "burst_plain_wall_s",
    "burst_wall_s",
    "burst_peak_rss_mb",
    "burst_peak_threads",
    "burst_runs_completed",
    "burst_gc_tuned_wall_s",
    "burst_gc_tuned_peak_rss_mb",
    "barrier_wall_s",
    "barrier_runs_arrived",
    "barrier_runs_completed",
    "barrier_peak_rss_mb",
    "barrier_peak_threads",
)
REACTOR_OVERHEADS = (
    "chain_step_overhead_us",
    "fanout_step_overhead_us",
    "chain_step_overhead_traced_us",
    "chain_step_overhead_normal_us",
)


@pytest.mark.slow
def test_reactor_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks reactor --quick` prints one JSON object with every figure."""
    result = run_python("-m", "benchmarks", "reactor", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    for key, value in _figures(data, REACTOR_FIGURES):
        assert not isinstance(value, bool), key
        assert value > 0, f"{key}: {value!r}"
    for key in REACTOR_OVERHEADS:  # a difference of two timings: any sign, but a number
        assert isinstance(data.get(key), int | float), f"{key}: {data.get(key)!r}"
    for key, value in _figures(data, REACTOR_BURST):
        assert value > 0, f"{key}: {value!r}"
    # Every run of the burst, and of the burst held alive at the barrier, completed.
    runs = data["burst_runs"]
    assert data["burst_runs_completed"] == data["barrier_runs_completed"] == runs
    # The traced variant really made spans: the run's and one per step, nothing else.
    assert data["spans_per_chain_run"] == 1 + 10
    assert isinstance(data["traced_overhead_ratio"], float | int)
    assert isinstance(data["traced_batched_overhead_ratio"], float | int)
    assert set(data["targets"]) == {
        "chain_step_overhead_us_max",
        "fanout_step_overhead_us_max",
        "burst_wall_s_max",
        "burst_peak_rss_mb_max",
        "traced_overhead_ratio_max",
    }
    assert set(data["targets_met"]) == set(data["targets"])
    assert all(isinstance(v, bool) for v in data["targets_met"].values())
    meta = data["meta"]
    assert (meta["chain_steps"], meta["fanout_steps"]) == (10, 101)
    assert meta["fanout_max_concurrency"] >= 100
    assert meta["rounds"] == 2


ORCHESTRATION_FIGURES = (
    "selection_regret",
    "selection_random_regret",
    "selection_regret_ratio",
    "best_arm_share",
    "drift_recovery_share",
    "direct_ask_p50_us",
    "select_ask_p50_us",
    "budget_calls",
    "budget_admitted",
    "budget_requests_sent",
    "fallback_overhead_calls",
    "fallback_p50_ms",
    "fallback_direct_p50_ms",
    "fallback_with_health_p50_ms",
)


def test_orchestration_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks orchestration --quick`: selection, fallback and budget figures.

    Budget figures are exact (admitted == calls == requests sent, no overspend); timings
    are only checked to be numbers.
    """
    result = run_python("-m", "benchmarks", "orchestration", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, ORCHESTRATION_FIGURES):
        assert not isinstance(value, bool), key
    assert isinstance(data["select_overhead_us"], int | float)  # may be < 0 when noisy
    assert isinstance(data["fallback_overhead_us"], float)
    assert data["selection_requests"] > 0
    assert set(data["selection_targets"]) == set(data["selection_targets_met"])
    assert all(isinstance(v, bool) for v in data["selection_targets_met"].values())
    assert data["budget_admitted"] == data["budget_calls"] == data["budget_requests_sent"]
    assert data["budget_overspend_usd"] == 0.0


TOOLS_FIGURES = (
    "direct_call_us",
    "caller_overhead_us",
    "tool_call_overhead_us",
    "bare_loop_ask_us",
    "tool_call_overhead_traced_us",
    "parallel_100_ratio",
    "parallel_100_sync_ratio",
    "audit_records_per_s",
)


def test_tools_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks tools --quick`: the three issue-15 figures and their targets."""
    result = run_python("-m", "benchmarks", "tools", "--quick", timeout=50)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, TOOLS_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert set(data["targets"]) == set(data["targets_met"])
    assert all(isinstance(v, bool) for v in data["targets_met"].values())


CONSENSUS_FIGURES = (
    "majority_accuracy_5_at_0_6",
    "weighted_accuracy",
    "plain_vote_accuracy",
    "correlated_gain",
    "numeric_mad_error",
    "early_stop_savings",
    "consensus_overhead_us",
    "member_failure_latency",
    "actor_matches_direct",
)


def test_consensus_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks consensus --quick`: the issue-14 figures, expected values, targets.

    The accuracy figures are deterministic (stratified question sets), so they are
    checked against the binomial formulas here; timings are only checked for shape.
    """
    result = run_python("-m", "benchmarks", "consensus", "--quick", timeout=120)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, CONSENSUS_FIGURES):
        assert not isinstance(value, bool), key
    for key in ("majority_accuracy_5_at_0_6", "weighted_accuracy", "plain_vote_accuracy"):
        assert data["within_1_5_points"][key], (key, data[key], data["expected"][key])
    assert data["weighted_accuracy"] > data["plain_vote_accuracy"]
    assert data["early_stop_accuracy_lost"] == 0.0
    assert data["actor_matches_direct"] == 1.0
    assert set(data["targets"]) == set(data["targets_met"])


def test_strategies_quick_prints_loads_and_overheads() -> None:
    """`python -m benchmarks strategies --quick`: grouped waves load each model once."""
    result = run_python("-m", "benchmarks", "strategies", "--quick", timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["loads_grouped"] == 3
    assert data["loads_sequential"] == 6
    assert data["loads_interleaved"] >= data["loads_grouped"]
    for key in ("choose_us", "analyse_choose_us", "runner_overhead_us"):
        assert isinstance(data[key], int | float), key
    assert set(data["targets"]) == set(data["targets_met"])


PLACEMENT_FIGURES = (
    "local_wall_s",
    "ray_wall_s",
    "speedup",
    "element_ms",
    "local_step_ms",
    "ray_step_ms",
    "ray_raw_task_ms",
)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_placement_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks placement --quick`: local and two-node Ray figures, one object."""
    pytest.importorskip("ray")
    result = run_python("-m", "benchmarks", "placement", "--quick", timeout=180)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, PLACEMENT_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert isinstance(data["ray_task_overhead_ms"], int | float)
    assert data["ray_sched_overhead_ms"] >= 0
    assert data["cpus"] >= 1
    assert set(data["targets"]) == set(data["targets_met"]) == {"ray_task_overhead_ms_max"}


SESSIONS_FIGURES = (
    "activation_p50_ms",
    "activation_p99_ms",
    "active_get_p50_ms",
    "sessions_peak_threads",
    "threads_before",
    "fts_p50_ms",
    "fts_p99_ms",
    "list_p50_ms",
    "seed_sessions_per_s",
)


def test_sessions_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks sessions --quick`: the issue-16 session figures and their targets."""
    result = run_python("-m", "benchmarks", "sessions", "--quick", timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, SESSIONS_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert data["active_peak"] == data["sessions"]  # every stored session was active at once
    assert data["fts_sample_hits"] > 0
    assert set(data["targets"]) == set(data["targets_met"])
    assert all(isinstance(v, bool) for v in data["targets_met"].values())


AGENTS_FIGURES = (
    "route_p50_ms",
    "direct_ask_p50_ms",
    "route_over_direct",
    "exchange3_p50_ms",
    "register10_ms",
)


def test_agents_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks agents --quick`: routing, a 3-message exchange, registration."""
    result = run_python("-m", "benchmarks", "agents", "--quick", timeout=60)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, AGENTS_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert data["exchange3_p50_ms"] > data["route_p50_ms"]
    assert set(data["targets"]) == set(data["targets_met"])


DAEMON_FIGURES = (
    "health_rps",
    "health_p99_ms",
    "health_c1_p50_ms",
    "agents_c10_rps",
    "tasks_c100_p99_ms",
    "direct_ask_p50_ms",
    "sse_fanout_100_ms",
)


def test_daemon_quick_prints_one_json_object_with_every_figure() -> None:
    """`python -m benchmarks daemon --quick`: throughput, task overhead, SSE fan-out, memory."""
    result = run_python("-m", "benchmarks", "daemon", "--quick", timeout=150)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    for key, value in _figures(data, DAEMON_FIGURES):
        assert value > 0, f"{key}: {value!r}"
    assert isinstance(data["task_overhead_ms"], int | float)  # a difference: any sign
    assert isinstance(data["idle_sse_1000_rss_mb"], int | float)
    assert data["idle_sse_clients"] == 200
    assert data["errors"] == 0
    assert set(data["targets_met"]) == {"health_rps_min", "task_overhead_ms_max"}
