"""Exact prompt counts for reservations: the hosts' token-count routes, over loopback HTTP.

Fake servers speaking Anthropic (``count_tokens``), Gemini (``countTokens``), llama.cpp
(``/apply-template`` + ``/tokenize``) and vLLM (``/tokenize``) behind real ModelHosts; a
real Budget reserving on their counts when asked to, and on the cheap estimate by
default or where a host has no count route.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from actors import AskError, FailureKind, System
from actors.llm import (
    BudgetLimitConfig,
    BudgetsConfig,
    ChatRequest,
    Completion,
    Config,
    CountTokens,
    HostConfig,
    PriceConfig,
    TokenCount,
    start_fleet_async,
)
from actors.orchestration import (
    Budget,
    SelectChat,
    Selector,
    SpendQuery,
    budgeted_chat,
    estimate_prompt_tokens,
)
from actors.orchestration.budget import Reservation, Reserve, SpendScope
from actors.testing import FakeServer, Reply
from actors.testing._openai import chat_template  # the fake's template, to check its count
from tests.support.hosts import start_host_async

PRICE = PriceConfig(input_per_mtok=1_000.0, output_per_mtok=2_000.0)
PROMPT = "Count me, exactly, with your own tokenizer please."
REQUEST = ChatRequest.prompt("", PROMPT, system="Be brief.", max_tokens=8)

KEY = "sk-test"


def fake_tokens(text: str) -> int:
    """How the fake servers count: one token per 4 characters, at least 1."""
    return max(1, (len(text) + 3) // 4)


@pytest.fixture
def servers() -> Iterator[dict[str, FakeServer]]:
    reply = Reply(text="fine", input_tokens=12, output_tokens=2)
    with (
        FakeServer("anthropic", models=["claude"], api_key=KEY, responder=lambda _: reply) as a,
        FakeServer("gemini", models=["gem"], api_key=KEY, responder=lambda _: reply) as g,
        FakeServer("llamacpp", models=["llama.gguf"], responder=lambda _: reply) as lc,
        FakeServer("vllm", models=["qwen"], responder=lambda _: reply) as v,
        FakeServer("openai", models=["gpt"], responder=lambda _: reply) as o,
    ):
        yield {"anthropic": a, "gemini": g, "llamacpp": lc, "vllm": v, "openai": o}


SETTINGS = {
    "anthropic": ("anthropic", None, "claude"),
    "gemini": ("gemini", None, "gem"),
    "llamacpp": ("openai", "llamacpp", "llama.gguf"),
    "vllm": ("openai", "vllm", "qwen"),
    "openai": ("openai", None, "gpt"),
}


async def host_of(system: System, servers: dict[str, FakeServer], kind: str) -> Any:
    protocol, server, _ = SETTINGS[kind]
    settings = HostConfig.model_validate(
        {
            "url": servers[kind].url,
            "protocol": protocol,
            "server": server,
            "api_key": KEY if protocol in ("anthropic", "gemini") else None,
        }
    )
    return await start_host_async(system, settings, name=kind)


def paths(server: FakeServer) -> list[str]:
    return [call.path for call in server.calls if call.method == "POST"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kind", "endpoint"),
    [
        ("anthropic", "/v1/messages/count_tokens"),
        ("gemini", "/v1beta/models/gem:countTokens"),
        ("llamacpp", "/tokenize"),
        ("vllm", "/tokenize"),
    ],
)
async def test_a_host_counts_with_its_servers_route(
    system: System, servers: dict[str, FakeServer], kind: str, endpoint: str
) -> None:
    """CountTokens asks the server's own route and sends no chat request."""
    host = await host_of(system, servers, kind)
    model = SETTINGS[kind][2]
    count: TokenCount = await host.ask_async(
        CountTokens(request=ChatRequest.prompt(model, PROMPT, system="Be brief."))
    )
    assert (count.model, count.host, count.endpoint) == (model, kind, endpoint)
    assert count.input_tokens > 0
    sent = paths(servers[kind])
    assert not [p for p in sent if "chat" in p or p.endswith(("/messages", "generateContent"))]
    if kind == "llamacpp":
        assert sent == ["/apply-template", "/tokenize"]
        wire = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": PROMPT}]
        assert count.input_tokens == 1 + fake_tokens(chat_template(wire))  # BOS + pieces
    if kind == "anthropic":
        (call,) = servers[kind].calls
        assert call.body["system"] == "Be brief."
        assert "max_tokens" not in call.body


@pytest.mark.asyncio
async def test_a_host_without_a_count_route_says_so(
    system: System, servers: dict[str, FakeServer]
) -> None:
    """A plain OpenAI-compatible server has none: bad_request, nothing sent."""
    host = await host_of(system, servers, "openai")
    with pytest.raises(AskError) as caught:
        await host.ask_async(CountTokens(request=ChatRequest.prompt("gpt", PROMPT)))
    assert caught.value.failure.kind is FailureKind.BAD_REQUEST
    assert "no token-count endpoint" in caught.value.failure.message
    assert paths(servers["openai"]) == []


def budget_of(prices: dict[str, PriceConfig], **settings: Any) -> Any:
    limits = [BudgetLimitConfig(scope="global", usd=100.0)]
    return Budget.spec(BudgetsConfig(limits=limits, **settings), prices)


@pytest.mark.asyncio
async def test_an_exact_reservation_holds_the_servers_count(
    system: System, servers: dict[str, FakeServer]
) -> None:
    """exact=True: the prompt is what count_tokens said, not the estimate; it says where from."""
    await host_of(system, servers, "anthropic")
    budget: Any = await system.spawn_async(budget_of({"anthropic/claude": PRICE}))
    request = ChatRequest.prompt("claude", PROMPT, system="Be brief.", max_tokens=8)
    exact: Reservation = await budget.ask_async(
        Reserve(
            host="anthropic",
            model="claude",
            prompt_tokens=999,
            max_tokens=8,
            request=request,
            exact=True,
        )
    )
    counted = fake_tokens("Be brief.\n" + PROMPT)
    assert (exact.prompt_tokens, exact.prompt_counted) == (counted, "/v1/messages/count_tokens")
    assert exact.amount_usd == pytest.approx(PRICE.worst_case(counted, 8, 0.0))
    default: Reservation = await budget.ask_async(
        Reserve(host="anthropic", model="claude", prompt_tokens=999, request=request)
    )
    assert (default.prompt_tokens, default.prompt_counted) == (999, "")  # the estimate
    assert paths(servers["anthropic"]) == ["/v1/messages/count_tokens"]


@pytest.mark.asyncio
async def test_configured_exact_counting_falls_back_where_there_is_no_route(
    system: System, servers: dict[str, FakeServer]
) -> None:
    """prompt_tokens = "exact": Gemini counts; the OpenAI host has no route, so the estimate."""
    await host_of(system, servers, "gemini")
    await host_of(system, servers, "openai")
    prices = {"gemini/gem": PRICE, "openai/gpt": PRICE}
    budget: Any = await system.spawn_async(budget_of(prices, prompt_tokens="exact"))
    gem: Reservation = await budget.ask_async(
        Reserve(host="gemini", model="gem", prompt_tokens=999, request=REQUEST)
    )
    assert gem.prompt_counted == "/v1beta/models/gem:countTokens"
    assert gem.prompt_tokens != 999
    gpt: Reservation = await budget.ask_async(
        Reserve(host="openai", model="gpt", prompt_tokens=999, request=REQUEST)
    )
    assert (gpt.prompt_tokens, gpt.prompt_counted) == (999, "")
    opted_out: Reservation = await budget.ask_async(
        Reserve(host="gemini", model="gem", prompt_tokens=999, request=REQUEST, exact=False)
    )
    assert opted_out.prompt_counted == ""


@pytest.mark.asyncio
async def test_budgeted_chat_counts_then_calls(
    system: System, servers: dict[str, FakeServer]
) -> None:
    """budgeted_chat(exact_tokens=True) on llama.cpp: template, tokenize, then the chat."""
    host = await host_of(system, servers, "llamacpp")
    budget: Any = await system.spawn_async(budget_of({"llamacpp/llama.gguf": PRICE}))
    request = ChatRequest.prompt("llama.gguf", PROMPT, max_tokens=8)
    answer = await budgeted_chat(
        host, request, budget=budget, scope=SpendScope(run_id="r"), exact_tokens=True
    )
    assert isinstance(answer, Completion)
    assert paths(servers["llamacpp"]) == ["/apply-template", "/tokenize", "/v1/chat/completions"]
    report = await budget.ask_async(SpendQuery())
    while report.calls < 1:  # the settle follows the answer
        await asyncio.sleep(0.001)
        report = await budget.ask_async(SpendQuery())
    assert report.budgets[0].reserved_usd == 0.0


@pytest.mark.asyncio
async def test_the_selector_reserves_on_an_exact_count_when_asked(
    system: System, servers: dict[str, FakeServer]
) -> None:
    """SelectChat(exact_tokens=True): the chosen vLLM model counts the prompt before the call."""
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {
                "v": {"url": servers["vllm"].url, "protocol": "openai", "server": "vllm"},
            },
        }
    )
    fleet = await start_fleet_async(system, config)
    budget: Any = await system.spawn_async(budget_of({"v/qwen": PRICE}))
    selector: Any = await system.spawn_async(
        Selector, name="selector", args=(fleet.catalog,), kwargs={"budget": budget}
    )
    chat = SelectChat(request=ChatRequest.prompt("", PROMPT, max_tokens=8), exact_tokens=True)
    answer: Completion = await selector.ask_async(chat)
    assert answer.model == "qwen"
    assert paths(servers["vllm"]) == ["/tokenize", "/v1/chat/completions"]
    tokenize = next(c for c in servers["vllm"].calls if c.path == "/tokenize")
    assert tokenize.body["messages"] == [{"role": "user", "content": PROMPT}]
    assert estimate_prompt_tokens(chat.request) > 0
    await fleet.close_async()
