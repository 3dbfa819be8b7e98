"""The providers' HTTP client: httpx on aiohttp, with a direct path for providers.

:func:`~actors.llm.providers.make_client` builds an :class:`AioClient`. It is an
``httpx.AsyncClient`` on the aiohttp transport (discovery and any caller that wants
httpx use it as such), plus :meth:`AioClient.fetch` (one request whose whole body is
wanted) and :meth:`AioClient.open` (a streamed one): a provider's requests, sent on the
transport's own aiohttp session without httpx's request and response models around
them. On a loopback server those models cost more than the HTTP exchange itself: per
request httpx parses the URL again, builds and merges its header objects, converts
them for aiohttp and back, and copies every response's cookies through ``urllib`` and
``email`` compatibility objects.

Both methods send the same headers (the client's defaults, the request's, the trace
context) under the same timeouts, and raise the same httpx exceptions for transport
failures, so a provider maps their outcome exactly as it maps an httpx response's.
``python -m benchmarks hosts`` measures the difference (``fetch_vs_httpx``;
``stream_tokens_per_s`` for streams).

Cookies live in one jar, the aiohttp session's, for both paths: what a server sets is
sent back on later requests, to a host named by its IP address too (as httpx's jar did).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions

import otel

__all__ = ["AioClient", "Answer", "transport"]

_URLS_KEPT = 512
"""Parsed URLs an :class:`AioClient` keeps (a provider uses a few paths per model)."""


def transport(
    limits: httpx.Limits, *, tls: ssl.SSLContext | None = None, proxy: str | None = None
) -> AiohttpTransport:
    """The aiohttp transport of an :class:`AioClient`, its session made on first use.

    The session is the transport's own (a connector of ``limits``, its TLS context:
    ``tls``, else httpx's default), with a cookie jar that also keeps cookies of hosts
    named by IP address (a local server's). With ``proxy`` every request of both paths
    goes through that HTTP proxy.
    """
    made = AiohttpTransport(
        limits=limits,
        trust_env=False,
        verify=tls if tls is not None else True,
        proxy=httpx.Proxy(proxy) if proxy else None,
    )

    def session() -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=made.ssl_context,
        )
        return aiohttp.ClientSession(
            connector=connector, cookie_jar=aiohttp.CookieJar(unsafe=True), proxy=proxy
        )

    made.client = session  # what its ``client`` argument takes: called on first use
    return made


class _NoJar(httpx.Cookies):
    """httpx's cookie jar, left empty: the session's jar keeps them (see the module)."""

    def extract_cookies(self, response: httpx.Response) -> None:
        """Nothing: aiohttp has read the response's cookies already."""


class AioClient(httpx.AsyncClient):
    """An httpx client on ``transport`` whose :meth:`fetch` and :meth:`open` skip httpx's models.

    Args:
        transport: The aiohttp transport (see :func:`transport`); its session is
            shared by both paths.
        **kwargs: As for ``httpx.AsyncClient`` (timeout, event hooks, ...).
    """

    def __init__(self, *, transport: AiohttpTransport, **kwargs: Any) -> None:
        super().__init__(transport=transport, **kwargs)
        self._cookies = _NoJar()  # httpx reads it per response (through urllib and email)
        self._aio = transport
        self._urls: dict[str, yarl.URL] = {}
        timeout = self.timeout
        # What the transport derives from httpx's timeout, once for every request.
        self._aio_timeout = aiohttp.ClientTimeout(
            sock_connect=timeout.connect, sock_read=timeout.read, connect=timeout.pool
        )
        # user-agent, accept, accept-encoding, connection: lower-case names, as httpx keeps
        self._defaults = {name.lower(): value for name, value in self.headers.items()}

    async def fetch(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request and read its whole body: ``(status, headers, body)``.

        The headers sent are the client's defaults, then ``headers``, then the current
        trace context (what the client's request hook adds on the httpx path).

        Raises:
            httpx.HTTPError: the transport failed (the aiohttp error mapped as the
                transport maps it: ``ConnectError``, ``ReadTimeout``, ...).
            TimeoutError: the caller's own deadline (a surrounding ``asyncio.timeout``).
        """
        async with self.open(method, url, content=content, headers=headers, params=params) as (
            response
        ):
            return response.status, response.headers, await response.read()

    @asynccontextmanager
    async def open(
        self,
        method: str,
        url: str,
        *,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> AsyncIterator[Answer]:
        """Send one request and yield its :class:`Answer` once the headers are in.

        Sent and failing as :meth:`fetch`; the connection goes back to the pool (or is
        closed, if the body was not read to its end) when the block ends.
        """
        sent = self._defaults.copy()
        if headers:
            for name, value in headers.items():  # names are case-insensitive: one of each
                sent[name.lower()] = value
        if otel.enabled():
            carrier = otel.inject()
            if carrier:
                sent.update(carrier)
        if content is not None:
            sent["content-type"] = "application/json"
        target = self._urls.get(url)
        if target is None:
            if len(self._urls) >= _URLS_KEPT:
                self._urls.clear()
            target = self._urls[url] = yarl.URL(url)
        transport = self._aio
        session = transport.client
        if not isinstance(session, aiohttp.ClientSession):
            session = transport.client = transport.get_client()  # as the transport does
        with map_aiohttp_exceptions():
            response = await session.request(
                method,
                target,
                data=content,
                headers=sent,
                params=params,
                allow_redirects=False,
                timeout=self._aio_timeout,
            )
        try:
            yield Answer(response)
        finally:
            response.release()


class Answer:
    """A response whose headers are in: its status, headers and body (read or streamed).

    Transport failures while the body is read raise httpx's exceptions, as on the
    transport's own path.
    """

    __slots__ = ("_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The whole body."""
        with map_aiohttp_exceptions():
            return await self._response.read()

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        """The body as it arrives, chunk by chunk (what ``httpx.Response`` offers)."""
        content = self._response.content
        while True:
            with map_aiohttp_exceptions():
                chunk = await content.readany()
            if not chunk:
                return
            yield chunk
