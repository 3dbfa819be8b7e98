"""Talk to an LLM server through a ModelHost: sync, async, tools, failures, statistics.

Runs offline: it starts the built-in fake Ollama server. Point ``url`` at a real
server (and pick one of its models) to talk to it instead; nothing else changes.

    python examples/model_hosts.py
"""

from __future__ import annotations

import asyncio
import queue

import otel
from actors import AskError, System
from actors.llm import (
    BreakerConfig,
    BreakerTransition,
    ChatMessage,
    ChatRequest,
    HostConfig,
    HostStatsQuery,
    ModelHost,
    PriceConfig,
    ToolSpec,
)
from actors.testing import FakeServer, FakeToolCall, Fault, Reply


def main() -> None:
    otel.configure_logging(level="warning")
    with FakeServer("ollama", models=["llama3.2"]) as server, System(name="hosts-demo") as system:
        settings = HostConfig(
            url=server.url,
            protocol="ollama",
            max_parallel=2,
            prices={"llama3.2": PriceConfig(input_per_mtok=0.10, output_per_mtok=0.40)},
            breaker=BreakerConfig(failure_threshold=2, open_s=0.5),
        )
        host = system.spawn(ModelHost, name="local", args=(settings,))

        # 1. A prompt, from sync code: a typed Completion comes back.
        answer = host.ask(ChatRequest.prompt("llama3.2", "Name a blue fruit."))
        tokens = answer.usage.output_tokens
        print(f"sync:  {answer.content!r} ({tokens} tokens, ${answer.cost_usd:.8f})")

        # 2. The same from asyncio code, three at once (the host runs two at a time).
        async def several() -> list[str]:
            answers = await asyncio.gather(
                *(host.ask_async(ChatRequest.prompt("llama3.2", f"Question {i}")) for i in range(3))
            )
            return [a.content for a in answers]

        print("async:", asyncio.run(several()))

        # 3. Tools: the model asks for a call; arguments arrive parsed, with an id.
        weather = ToolSpec(
            name="get_weather",
            description="Current weather in a city",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
        server.script(Reply(tool_calls=(FakeToolCall("get_weather", {"city": "Paris"}),)))
        request = ChatRequest(
            model="llama3.2",
            messages=(ChatMessage.user("Weather in Paris?"),),
            tools=(weather,),
        )
        asked = host.ask(request)
        call = asked.tool_calls[0]
        print(f"tools: {call.name}({call.arguments}) id={call.id} finish={asked.finish_reason}")

        # 4. Failures are typed; two server errors in a row open the model's breaker.
        transitions: queue.Queue[BreakerTransition] = queue.Queue()
        system.bus.subscribe(BreakerTransition, transitions)
        server.inject(Fault(status=500, times=2))
        for _ in range(3):
            try:
                host.ask(ChatRequest.prompt("llama3.2", "Hello?"))
            except AskError as error:
                print(f"error: {error.kind}: {error.failure.message[:70]}")
        opened = transitions.get(timeout=5)
        print(f"breaker: {opened.from_state} -> {opened.to_state} ({opened.reason})")

        # 5. Statistics per model: latency, tokens/s, success rate, cost.
        stats = host.ask(HostStatsQuery())
        for model in stats.models:
            print(
                f"stats: {model.model}: {model.requests} requests, "
                f"success {model.success_rate:.0%}, p95 {model.latency_p95_s:.3f}s, "
                f"cost ${model.cost_usd:.8f}, breaker {model.breaker}"
            )


if __name__ == "__main__":
    main()
