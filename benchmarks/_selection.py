"""The selection measures of ``python -m benchmarks orchestration``.

Every request is real: a Selector actor over a catalog of ModelHosts, each host a fake
OpenAI-compatible server on loopback HTTP whose behaviour is scripted, so that the truth
is known. Each model has a latency (the server sleeps), a price, a failure rate (an HTTP
500 is injected before a request with that probability), and per task type a rate of
correct answers (the server's responder answers ``correct`` with that probability). The
selector's scoring function gives 1 to ``correct`` and 0 to anything else, and it learns
from nothing else.

* ``selection_regret``: 2,000 requests, a third each of ``code``, ``creative`` and
  ``factual``, over four models, under a quality-first policy (weights 0.8 quality,
  0.1 cost, 0.1 latency). Regret is the expected utility lost against the best fixed
  model per task type, utility computed from the true parameters by the policy's own
  formula (pseudo-regret: expectations, not draws). ``selection_random_regret`` is a
  uniform random router's, in the same units: the baseline to beat;
  ``selection_regret_ratio`` is ours over it.
* ``best_arm_share``: three models with correct rates 0.3 / 0.5 / 0.8 on one task type,
  policy ``best``: the share of the 1,000 pulls that went to the best.
* ``drift_recovery_share``: the same three, 2,000 requests; after 1,000 the best and the
  worst swap. The share of the last 500 that go to the new best.
* ``select_overhead_us``: ``SelectChat`` to the Selector against ``ChatRequest`` straight
  to the host, same model, same run, alternating; the difference of the medians.
  ``select_overhead_loop_cpu_us``: the same difference in CPU time of the I/O loop's
  thread per call (where the calls, the Selector and the host run; the fake server's
  thread is not counted), which a busy machine disturbs far less than wall time.
  ``select_hop_floor_us``, measured after (direct against a :class:`_Relay`, alternating,
  the same way): an actor between caller and host that forwards the request as the
  Selector does, choosing nothing and learning nothing. It is the part of the overhead
  that any router actor costs on this runtime; ``select_own_us`` is the rest, the
  selection's own work (describe, decide, record, learn).
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, replace
from typing import Any

import msgspec

from actors import AskError, LoopActor, Ref, System
from actors.llm import ChatRequest, Completion, Config, Fleet, start_fleet
from actors.orchestration import Policy, SelectChat, Selector, TaskFeatures
from actors.orchestration._early import ask_early
from actors.testing import FakeModel, FakeServer, Fault, Reply
from benchmarks._server import separate_server

__all__ = ["TARGETS", "run_selection"]

TARGETS: dict[str, float] = {
    "best_arm_share_min": 0.9,
    "drift_recovery_share_min": 0.85,
    "select_overhead_us_max": 100.0,
    "selection_regret_ratio_max": 0.5,
}
"""What selection should achieve (see ``targets_met``)."""

TASKS = ("code", "creative", "factual")
OUT_TOKENS = 200
"""``max_tokens`` of every request: what the cost estimate counts."""


@dataclass(frozen=True)
class Arm:
    """One scripted model: its truth."""

    name: str
    correct: dict[str, float]
    input_per_mtok: float
    output_per_mtok: float
    latency_s: float
    failure_rate: float = 0.0

    def cost(self) -> float:
        return (OUT_TOKENS * self.output_per_mtok + 5 * self.input_per_mtok) / 1e6


ARMS = (
    Arm("tiny", {"code": 0.35, "creative": 0.55, "factual": 0.7}, 0.1, 0.2, 0.004),
    Arm("coder", {"code": 0.9, "creative": 0.4, "factual": 0.6}, 1.0, 2.0, 0.008),
    Arm("writer", {"code": 0.4, "creative": 0.9, "factual": 0.6}, 1.0, 2.0, 0.008),
    Arm("premium", {"code": 0.85, "creative": 0.85, "factual": 0.8}, 10.0, 30.0, 0.016, 0.05),
)


def utility(arm: Arm, task: str, policy: Policy, arms: Sequence[Arm]) -> float:
    """The policy's score of ``arm`` with the true parameters (failures score 0)."""
    cheapest = min(a.cost() for a in arms)
    fastest = min(a.latency_s for a in arms)
    quality = arm.correct[task] * (1.0 - arm.failure_rate)
    return (
        policy.quality * quality
        + policy.cost * (cheapest + 1e-7) / (arm.cost() + 1e-7)
        + policy.latency * (fastest + 1e-3) / (arm.latency_s + 1e-3)
    )


class Script:
    """Answers ``correct`` with each model's rate for the task named in the prompt."""

    def __init__(self, arms: Sequence[Arm], seed: int) -> None:
        self.arms = {a.name: a for a in arms}
        self.rng = random.Random(seed)
        self.lock = threading.Lock()

    def swap(self) -> None:
        """The first arm and the last swap their correct rates (the best degrades)."""
        names = list(self.arms)
        first, last = self.arms[names[0]], self.arms[names[-1]]
        with self.lock:
            self.arms[first.name] = replace(first, correct=dict(last.correct))
            self.arms[last.name] = replace(last, correct=dict(first.correct))

    def __call__(self, exchange: Any) -> Reply:
        arm = self.arms[exchange.model]
        task = exchange.prompt_text().split()[0]
        with self.lock:
            right = self.rng.random() < arm.correct[task]
        return Reply(text="correct" if right else "wrong", output_tokens=1)


def scorer(completion: Completion, features: TaskFeatures) -> float:
    """1 for the scripted right answer, else 0."""
    return 1.0 if completion.content.strip() == "correct" else 0.0


@contextmanager
def scripted_fleet(system: System, script: Script) -> Iterator[tuple[Fleet, dict[str, FakeServer]]]:
    """One fake server and host per arm; prices and context from the truth."""
    arms = list(script.arms.values())
    with ExitStack() as stack:
        servers = {
            a.name: stack.enter_context(
                FakeServer(
                    "openai",
                    models=[FakeModel(a.name, context_length=32768)],
                    responder=script,
                    latency=a.latency_s,
                )
            )
            for a in arms
        }
        config = Config.model_validate(
            {
                "discovery": {"enabled": False},
                "resources": {"nvml": False},
                "hosts": {
                    a.name: {
                        "url": servers[a.name].url,
                        "protocol": "openai",
                        "max_parallel": 64,
                        "breaker": {"failure_threshold": 1000, "min_calls": 1000, "window": 1000},
                    }
                    for a in arms
                },
                "prices": {
                    f"{a.name}/{a.name}": {
                        "input_per_mtok": a.input_per_mtok,
                        "output_per_mtok": a.output_per_mtok,
                    }
                    for a in arms
                },
            }
        )
        yield start_fleet(system, config, discovery=False), servers


def _inject_failures(
    servers: dict[str, FakeServer], arms: Sequence[Arm], rng: random.Random
) -> None:
    """Keep one pending 500 per failing server with its failure rate (Bernoulli per request)."""
    for arm in arms:
        if arm.failure_rate <= 0:
            continue
        server = servers[arm.name]
        pending = any(f.times for f in server.faults)
        if not pending and rng.random() < arm.failure_rate:
            server.inject(Fault(status=500, times=1))


async def _pull(selector: Ref[Any], task: str, i: int, policy: str) -> str:
    request = ChatRequest.prompt("", f"{task} question {i}", max_tokens=OUT_TOKENS)
    message = SelectChat(request=request, policy=policy, task_type=task)  # type: ignore[arg-type]
    try:
        answer: Completion = await selector.ask_async(message, timeout=30)
        return answer.model
    except AskError as exc:
        selection = exc.failure.details.get("selection", "")
        named = next((a.name for a in ARMS if f'"model":"{a.name}"' in selection), None)
        return named or f"? {exc.failure.kind}: {exc.failure.message}"


async def _campaign(
    selector: Ref[Any],
    servers: dict[str, FakeServer],
    script: Script,
    tasks: Sequence[str],
    *,
    n: int,
    policy: str,
    seed: int,
    swap_at: int | None = None,
    wave: int = 8,
) -> list[tuple[str, str]]:
    """``n`` requests in waves of ``wave`` concurrent ones; returns (task, model) per request."""
    rng = random.Random(seed)
    pulls: list[tuple[str, str]] = []
    for start in range(0, n, wave):
        if swap_at is not None and start == swap_at:
            script.swap()
        _inject_failures(servers, list(script.arms.values()), rng)
        batch = [tasks[(start + k) % len(tasks)] for k in range(min(wave, n - start))]
        models = await asyncio.gather(
            *(_pull(selector, t, start + k, policy) for k, t in enumerate(batch))
        )
        pulls.extend(zip(batch, models, strict=True))
    return pulls


def regret(args: Any) -> dict[str, Any]:
    """Cumulative pseudo-regret of the selector against the best fixed model per task type."""
    policy = Policy(name="quality-first", quality=0.8, cost=0.1, latency=0.1)
    arms = list(ARMS)
    script = Script(arms, args.seed)
    with (
        System(name="bench-selection") as system,
        scripted_fleet(system, script) as (
            fleet,
            servers,
        ),
    ):
        selector = system.spawn(
            Selector,
            name="selector",
            args=(fleet.catalog,),
            kwargs={"policies": {policy.name: policy}, "scorer": scorer, "seed": args.seed},
        )
        started = time.perf_counter()
        pulls = system.bridge.run(
            _campaign(
                selector,
                servers,
                script,
                TASKS,
                n=args.requests,
                policy=policy.name,
                seed=args.seed,
            ),
            timeout=600,
        )
        wall = time.perf_counter() - started
    unrouted = [m for _, m in pulls if m.startswith("?")]
    pulls = [(t, m) for t, m in pulls if not m.startswith("?")]
    table = {(a.name, t): utility(a, t, policy, arms) for a in arms for t in TASKS}
    best = {t: max(table[(a.name, t)] for a in arms) for t in TASKS}
    ours = sum(best[t] - table[(m, t)] for t, m in pulls if (m, t) in table)
    random_router = sum(
        statistics.mean(best[t] - table[(a.name, t)] for a in arms) for t, _ in pulls
    )
    best_share = {
        t: sum(1 for tt, m in pulls if tt == t and table[(m, t)] == best[t])
        / max(1, sum(1 for tt, _ in pulls if tt == t))
        for t in TASKS
    }
    return {
        "selection_requests": len(pulls),
        "selection_unrouted": len(unrouted),
        "selection_unrouted_examples": sorted(set(unrouted))[:3],
        "selection_regret": round(ours, 2),
        "selection_regret_per_request": round(ours / max(1, len(pulls)), 4),
        "selection_random_regret": round(random_router, 2),
        "selection_regret_ratio": round(ours / random_router, 3) if random_router else 0.0,
        "selection_best_share_by_task": {t: round(v, 3) for t, v in best_share.items()},
        "selection_wall_s": round(wall, 2),
    }


def bandit(args: Any) -> dict[str, Any]:
    """best_arm_share and drift_recovery_share on three arms of one task type."""
    rates = (0.3, 0.5, 0.8)

    def arms() -> list[Arm]:
        return [Arm(f"arm{i}", {"code": r}, 1.0, 1.0, 0.0) for i, r in enumerate(rates)]

    best_policy = Policy(name="best", kind="best")
    out: dict[str, Any] = {}
    for label, n, swap in (
        ("best_arm", args.trials, None),
        ("drift", 2 * args.trials, args.trials),
    ):
        script = Script(arms(), args.seed)
        with (
            System(name=f"bench-{label}") as system,
            scripted_fleet(system, script) as (
                fleet,
                servers,
            ),
        ):
            selector = system.spawn(
                Selector,
                name="selector",
                args=(fleet.catalog,),
                kwargs={"policies": {"best": best_policy}, "scorer": scorer, "seed": args.seed},
            )
            pulls = system.bridge.run(
                _campaign(
                    selector,
                    servers,
                    script,
                    ("code",),
                    n=n,
                    policy="best",
                    seed=args.seed,
                    swap_at=swap,
                    wave=1,
                ),
                timeout=600,
            )
        if swap is None:
            out["best_arm_share"] = round(sum(1 for _, m in pulls if m == "arm2") / n, 3)
        else:
            tail = pulls[-min(500, n // 4) :]
            out["drift_recovery_share"] = round(
                sum(1 for _, m in tail if m == "arm0") / len(tail), 3
            )
            out["drift_recovery_window"] = len(tail)
    return out


async def _overhead_rounds(
    selector: Ref[Any], host: Ref[Any], model: str, n: int
) -> tuple[list[float], list[float], list[float], list[float]]:
    """Wall and loop-thread CPU time (µs) per call, direct and selected, alternating.

    The calls are made on the system's I/O loop, where the Selector and the host run,
    so the thread's CPU time over a call is what the loop spent on it (the fake
    server's thread excluded): a figure a busy machine disturbs far less than wall time.
    """
    direct: list[float] = []
    selected: list[float] = []
    direct_cpu: list[float] = []
    selected_cpu: list[float] = []
    for i in range(n):
        for side in (0, 1) if i % 2 == 0 else (1, 0):
            request = ChatRequest.prompt(model if side == 0 else "", "code question", max_tokens=16)
            cpu = time.thread_time_ns()
            started = time.perf_counter_ns()
            if side == 0:
                await host.ask_async(request, timeout=10)
                direct.append((time.perf_counter_ns() - started) / 1000)
                direct_cpu.append((time.thread_time_ns() - cpu) / 1000)
            else:
                await selector.ask_async(
                    SelectChat(request=request, task_type="code", candidates=(f"h/{model}",)),
                    timeout=10,
                )
                selected.append((time.perf_counter_ns() - started) / 1000)
                selected_cpu.append((time.thread_time_ns() - cpu) / 1000)
    return direct, selected, direct_cpu, selected_cpu


def overhead(args: Any) -> dict[str, Any]:
    """Added time of a selected call over a direct one (medians, same run, alternating).

    Both sides call a fake server in a child process (:mod:`benchmarks._server`).
    """
    with (
        separate_server(["m1", "m2", "m3", "m4"]) as url,
        System(name="bench-overhead") as system,
    ):
        config = Config.model_validate(
            {
                "discovery": {"enabled": False},
                "resources": {"nvml": False},
                "hosts": {"h": {"url": url, "protocol": "openai"}},
            }
        )
        fleet = start_fleet(system, config, discovery=False)
        selector = system.spawn(Selector, name="selector", args=(fleet.catalog,))
        host = fleet.hosts["h"]
        system.bridge.run(_overhead_rounds(selector, host, "m1", 50), timeout=120)  # warm-up
        direct, selected, direct_cpu, selected_cpu = system.bridge.run(
            _overhead_rounds(selector, host, "m1", args.overhead_n), timeout=600
        )
        # The floor, after (a third side in the same rounds would make every side colder).
        relay = system.spawn(_Relay, name="relay", args=(host, "m1"))
        system.bridge.run(_overhead_rounds(relay, host, "m1", 50), timeout=120)
        direct2, relayed, _, _ = system.bridge.run(
            _overhead_rounds(relay, host, "m1", args.overhead_n), timeout=600
        )
    d50, s50 = statistics.median(direct), statistics.median(selected)
    dc50, sc50 = statistics.median(direct_cpu), statistics.median(selected_cpu)
    floor = statistics.median(relayed) - statistics.median(direct2)
    return {
        "direct_ask_p50_us": round(d50, 1),
        "select_ask_p50_us": round(s50, 1),
        "select_overhead_us": round(s50 - d50, 1),
        "select_overhead_loop_cpu_us": round(sc50 - dc50, 1),
        "select_hop_floor_us": round(floor, 1),
        "select_own_us": round(s50 - d50 - floor, 1),
    }


class _Relay(LoopActor[Any]):
    """A router that routes nothing: the Selector's forwarding, without the selection.

    Answers a :class:`SelectChat` by sending its request to one model the way the
    Selector sends its choice (:func:`~actors.orchestration._early.ask_early`, the
    caller's deadline), and the answer back: the cost of an actor between caller and
    host, the floor under ``select_overhead_us``.
    """

    def __init__(self, host: Ref[Any], model: str) -> None:
        super().__init__()
        self._host = host
        self._model = model

    def receive(self, message: Any) -> object:
        reply = self.defer_reply()
        now = time.time()
        deadline = message.deadline if message.deadline is not None else now + 10.0
        chat = msgspec.structs.replace(
            message.request, model=self._model, deadline=deadline, trace=None
        )
        ask_early(self.runtime, self._host, chat, reply.send, timeout=max(deadline - now, 0.0))
        return None


def run_selection(args: Any) -> dict[str, Any]:
    """Every selection measure, and whether each target is met."""
    result: dict[str, Any] = {}
    result.update(regret(args))
    result.update(bandit(args))
    result.update(overhead(args))
    result["selection_targets"] = TARGETS
    result["selection_targets_met"] = {
        "best_arm_share_min": result["best_arm_share"] >= TARGETS["best_arm_share_min"],
        "drift_recovery_share_min": result["drift_recovery_share"]
        >= TARGETS["drift_recovery_share_min"],
        "select_overhead_us_max": result["select_overhead_us"] <= TARGETS["select_overhead_us_max"],
        "selection_regret_ratio_max": result["selection_regret_ratio"]
        <= TARGETS["selection_regret_ratio_max"],
    }
    return result
