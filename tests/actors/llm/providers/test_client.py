"""The providers' HTTP client: the direct aiohttp path and httpx's send and map alike.

``make_client()`` answers whole-body requests through ``AioClient.fetch`` (straight to
aiohttp); a plain httpx client (``make_client(aiohttp=False)``, a caller's own) goes
through httpx. Every test runs on both, against a real aiohttp server on loopback whose
handlers do what real servers do (compress, set cookies, send ``NaN``, refuse).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from actors._messages import FailureKind
from actors.llm.providers._aio import AioClient, transport
from actors.llm.providers._base import ProviderError, StreamProgress, Timeouts, make_client
from actors.llm.providers._openai import OpenAIProvider

QUICK = Timeouts(connect=2.0, read=5.0, stream_idle=2.0)


async def _echo(request: web.Request) -> web.Response:
    """What arrived: the headers (names lower-cased, every value) and the raw body."""
    headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        headers.setdefault(name.lower(), []).append(value)
    body = await request.read()
    return web.json_response(
        {"headers": headers, "body": body.decode(), "query": dict(request.query)}
    )


async def _gzipped(_: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b'{"packed": true}'),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )


async def _nan(_: web.Request) -> web.Response:
    return web.Response(body=b'{"score": NaN}', content_type="application/json")


async def _garbage(_: web.Request) -> web.Response:
    return web.Response(body=b"<html>not json</html>", content_type="text/html")


async def _limited(_: web.Request) -> web.Response:
    body = {"error": {"message": "slow down", "type": "rate_limit_error"}}
    return web.json_response(body, status=429, headers={"Retry-After": "7"})


async def _events(request: web.Request) -> web.StreamResponse:
    """Three server-sent events, each written (and flushed) on its own."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for number in range(3):
        await response.write(f"event: n\ndata: {number}\n\n".encode())
    await response.write_eof()
    return response


async def _cookie(_: web.Request) -> web.Response:
    response = web.json_response({"set": True})
    response.set_cookie("affinity", "node-3")
    return response


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/echo", _echo)
    app.router.add_get("/echo", _echo)
    app.router.add_get("/gzip", _gzipped)
    app.router.add_get("/nan", _nan)
    app.router.add_get("/garbage", _garbage)
    app.router.add_post("/limited", _limited)
    app.router.add_get("/cookie", _cookie)
    app.router.add_post("/events", _events)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture(params=["aiohttp", "httpx"])
async def client(request: pytest.FixtureRequest) -> AsyncIterator[httpx.AsyncClient]:
    http = make_client(timeouts=QUICK, aiohttp=request.param == "aiohttp")
    assert isinstance(http, AioClient) is (request.param == "aiohttp")
    yield http
    await http.aclose()


def _provider(url: str, client: httpx.AsyncClient, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider(url, client=client, timeouts=QUICK, api_key="sk-test", **kw)


async def test_the_same_headers_and_body_are_sent(server: str, client: httpx.AsyncClient) -> None:
    provider = _provider(server, client, headers={"User-Agent": "mine/1", "X-Team": "blue"})
    echoed = await provider.request_json("POST", "/echo", {"text": "café", "n": [1, 2.5]})
    headers = echoed["headers"]
    assert headers["authorization"] == ["Bearer sk-test"]
    assert headers["user-agent"] == ["mine/1"]  # the configured one replaces the default
    assert headers["x-team"] == ["blue"]
    assert headers["content-type"] == ["application/json"]
    assert headers["accept"] == ["*/*"]
    assert "gzip" in headers["accept-encoding"][0]
    assert echoed["body"] == '{"text":"café","n":[1,2.5]}'  # compact UTF-8, as httpx's json=


async def test_a_request_without_a_body_has_no_content_type(
    server: str, client: httpx.AsyncClient
) -> None:
    echoed = await _provider(server, client).request_json("GET", "/echo", params={"limit": "5"})
    assert "content-type" not in echoed["headers"]
    assert echoed["headers"]["user-agent"] == [f"python-httpx/{httpx.__version__}"]
    assert echoed["query"] == {"limit": "5"}


async def test_a_compressed_answer_is_read(server: str, client: httpx.AsyncClient) -> None:
    assert await _provider(server, client).request_json("GET", "/gzip") == {"packed": True}


async def test_nan_is_read_as_the_standard_library_reads_it(
    server: str, client: httpx.AsyncClient
) -> None:
    answer = await _provider(server, client).request_json("GET", "/nan")
    assert json.dumps(answer) == '{"score": NaN}'


async def test_a_body_that_is_not_json_is_an_invalid_response(
    server: str, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await _provider(server, client).request_json("GET", "/garbage", model="m")
    assert caught.value.failure.kind is FailureKind.INVALID_RESPONSE
    assert "GET /garbage answered with malformed JSON" in caught.value.failure.message


async def test_an_http_error_is_mapped_with_its_retry_after(
    server: str, client: httpx.AsyncClient
) -> None:
    with pytest.raises(ProviderError) as caught:
        await _provider(server, client).request_json("POST", "/limited", {}, model="m")
    failure = caught.value.failure
    assert failure.kind is FailureKind.RATE_LIMITED
    assert failure.retry_after == 7.0
    assert "HTTP 429" in failure.message
    assert "slow down" in failure.message


async def test_a_server_cookie_is_sent_back(server: str, client: httpx.AsyncClient) -> None:
    provider = _provider(server, client)
    await provider.request_json("GET", "/cookie")
    echoed = await provider.request_json("GET", "/echo")
    assert echoed["headers"]["cookie"] == ["affinity=node-3"]
    # httpx's own requests on the same client (streams) carry it once, from one jar
    through_httpx = (await client.get(f"{server}/echo")).json()
    assert through_httpx["headers"]["cookie"] == ["affinity=node-3"]


async def test_a_refused_connection_is_a_connection_failure(client: httpx.AsyncClient) -> None:
    with pytest.raises(ProviderError) as caught:
        await _provider("http://127.0.0.1:9", client).request_json("GET", "/echo", model="m")
    assert caught.value.failure.kind is FailureKind.CONNECTION
    assert caught.value.failure.details["model"] == "m"


async def test_a_stream_arrives_event_by_event(server: str, client: httpx.AsyncClient) -> None:
    provider = _provider(server, client)
    progress = StreamProgress()
    async with provider.open_stream("/events", {"stream": True}, model="m") as body:
        events = [(e.event, e.data) async for e in provider.iter_sse(body, progress, "m")]
    assert events == [("n", "0"), ("n", "1"), ("n", "2")]
    assert progress.events == 3


async def test_a_refused_stream_is_mapped_as_a_whole_answer_is(
    server: str, client: httpx.AsyncClient
) -> None:
    provider = _provider(server, client)
    with pytest.raises(ProviderError) as caught:
        async with provider.open_stream("/limited", {"stream": True}, model="m"):
            pytest.fail("a refused stream yields no body")
    assert caught.value.failure.kind is FailureKind.RATE_LIMITED
    assert caught.value.failure.retry_after == 7.0


async def test_the_default_client_sends_a_providers_requests_on_the_direct_path(
    server: str,
) -> None:
    """Whole answers through ``fetch``, streams through ``open``; httpx's path unused."""
    used: list[str] = []

    class Counting(AioClient):
        async def fetch(self, *args: Any, **kwargs: Any) -> tuple[int, Any, bytes]:
            used.append("fetch")
            return await super().fetch(*args, **kwargs)

        def open(self, *args: Any, **kwargs: Any) -> Any:
            used.append("open")
            return super().open(*args, **kwargs)

        async def send(self, *args: Any, **kwargs: Any) -> httpx.Response:
            used.append("httpx")
            return await super().send(*args, **kwargs)

    http = Counting(transport=transport(httpx.Limits(max_connections=4)))
    try:
        provider = _provider(server, http)
        await provider.request_json("GET", "/echo")
        async with provider.open_stream("/events", {}, model="m") as body:
            assert [e.data async for e in provider.iter_sse(body, StreamProgress(), "m")]
    finally:
        await http.aclose()
    assert used == ["fetch", "open", "open"]  # fetch opens the request itself
