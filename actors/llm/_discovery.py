"""Find LLM servers: probe endpoints, say which server each is, and list its models.

Every URL is probed concurrently with a short timeout, so a closed port costs one
refused connection. What identifies each server:

============  ===============================================================
LM Studio     ``GET /api/v0/models`` answers a list whose entries have ``state``
Ollama        ``GET /api/version`` answers ``{"version": ...}`` and ``/api/tags`` works
llama.cpp     ``GET /props`` answers ``default_generation_settings``, or ``/v1/models``
              entries are ``owned_by: llamacpp``
llama-cpp-    ``/v1/models`` entries are ``owned_by: me`` (``python -m llama_cpp.server``)
python
vLLM          ``GET /metrics`` carries ``vllm:`` series (``/version`` gives the version)
Gemini        ``GET /v1beta/models`` answers ``models`` (or a Google ``error.status``)
Anthropic     ``GET /v1/models`` answers ``has_more`` / ``type: model``, or an Anthropic
              ``{"type": "error"}`` body
OpenAI-like   ``GET /v1/models`` answers ``{"object": "list", "data": [...]}``
============  ===============================================================

The model inventory then comes from the matching provider's ``list_models`` (loaded
state, context length, size or VRAM, capabilities), so discovery and the ModelHost see
the same thing.
"""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

import httpx

from actors.llm._messages import HostInventory
from actors.llm.providers import ProviderError, Timeouts, provider_class, tls_context

__all__ = ["DEFAULT_ENDPOINTS", "SERVER_PROTOCOL", "discover", "discover_sync", "probe"]

DEFAULT_ENDPOINTS: tuple[str, ...] = (
    "http://127.0.0.1:1234",  # LM Studio
    "http://127.0.0.1:11434",  # Ollama
    "http://127.0.0.1:8080",  # llama.cpp server
    "http://127.0.0.1:8000",  # vLLM
)
"""The local servers' default ports, probed unless told otherwise."""

SERVER_PROTOCOL = {
    "lmstudio": "lmstudio",
    "ollama": "ollama",
    "llamacpp": "openai",
    "llama-cpp-python": "openai",
    "vllm": "openai",
    "openai": "openai",
    "openai-compatible": "openai",
    "anthropic": "anthropic",
    "gemini": "gemini",
}
"""Server kind -> the protocol a ModelHost drives it with."""


async def _get(client: httpx.AsyncClient, url: str) -> tuple[int, bytes] | None:
    answer = await _attempt(client, url)
    return None if isinstance(answer, Exception) else answer


async def _attempt(client: httpx.AsyncClient, url: str) -> tuple[int, bytes] | Exception:
    """The status and body of ``GET url``, or the exception that stopped it."""
    try:
        response = await client.get(url)
        return response.status_code, await response.aread()
    except (httpx.HTTPError, OSError) as exc:
        return exc


def _no_answer(exc: Exception) -> str:
    """Why an endpoint did not answer, in words: a name, a refusal, a timeout."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and seen not in chain:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    if any(isinstance(e, socket.gaierror) for e in chain):
        return "no answer (its host name does not resolve)"
    if any(isinstance(e, (httpx.TimeoutException, TimeoutError)) for e in chain):
        return "no answer (timed out)"
    return "no answer (connection refused or failed)"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


Answer = tuple[int, bytes] | None
Found = tuple[str, str | None]


def _ok_json(answer: Answer) -> Any:
    """The JSON body of a 200 answer, else None."""
    return _json(answer[1]) if answer is not None and answer[0] == 200 else None


def _lmstudio(ans: dict[str, Answer]) -> Found | None:
    data = _ok_json(ans["/api/v0/models"])
    entries = data.get("data", []) if isinstance(data, dict) else []
    return (
        ("lmstudio", None) if any(isinstance(m, dict) and "state" in m for m in entries) else None
    )


def _ollama(ans: dict[str, Answer]) -> Found | None:
    data = _ok_json(ans["/api/version"])
    return (
        ("ollama", str(data["version"])) if isinstance(data, dict) and "version" in data else None
    )


def _llamacpp(ans: dict[str, Answer]) -> Found | None:
    data = _ok_json(ans["/props"])
    if isinstance(data, dict) and ("default_generation_settings" in data or "build_info" in data):
        build = data.get("build_info")
        return "llamacpp", str(build) if build else None
    models = _ok_json(ans["/v1/models"])
    entries = models.get("data") if isinstance(models, dict) else None
    if isinstance(entries, list) and any(
        isinstance(m, dict) and m.get("owned_by") == "llamacpp" for m in entries
    ):
        return "llamacpp", None
    return None


def _llama_cpp_python(ans: dict[str, Answer]) -> Found | None:
    models = _ok_json(ans["/v1/models"])
    entries = models.get("data") if isinstance(models, dict) else None
    if isinstance(entries, list) and any(
        isinstance(m, dict) and m.get("owned_by") == "me" for m in entries
    ):
        return "llama-cpp-python", None
    return None


def _vllm(ans: dict[str, Answer]) -> Found | None:
    metrics = ans["/metrics"]
    if metrics is None or metrics[0] != 200 or b"vllm:" not in metrics[1]:
        return None
    data = _ok_json(ans["/version"])
    return "vllm", str(data["version"]) if isinstance(data, dict) and "version" in data else None


def _gemini(ans: dict[str, Answer]) -> Found | None:
    answer = ans["/v1beta/models"]
    data = _json(answer[1]) if answer is not None else None
    if not isinstance(data, dict):
        return None
    error = data.get("error")
    google_error = isinstance(error, dict) and "status" in error
    return ("gemini", None) if "models" in data or google_error else None


def _anthropic(ans: dict[str, Answer]) -> Found | None:
    answer = ans["/v1/models"]
    data = _json(answer[1]) if answer is not None else None
    if isinstance(data, dict) and (data.get("type") == "error" or "has_more" in data):
        return "anthropic", None
    return None


def _openai(ans: dict[str, Answer]) -> Found | None:
    data = _ok_json(ans["/v1/models"])
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return "openai-compatible", None
    return None


_DETECTORS = (
    _lmstudio,
    _ollama,
    _llamacpp,
    _llama_cpp_python,
    _vllm,
    _gemini,
    _anthropic,
    _openai,
)
"""Most specific first: LM Studio and llama.cpp also answer ``/v1/models``."""
_PATHS = (
    "/v1/models",
    "/api/v0/models",
    "/api/version",
    "/props",
    "/metrics",
    "/v1beta/models",
    "/version",
)


async def _identify(client: httpx.AsyncClient, base: str) -> Found | str:
    """(server kind, version), or an error text when nothing recognisable answered."""
    attempt = await _attempt(client, f"{base}/v1/models")
    if isinstance(attempt, Exception) and await _get(client, f"{base}/api/version") is None:
        return _no_answer(attempt)
    first = None if isinstance(attempt, Exception) else attempt
    rest = await asyncio.gather(*(_get(client, f"{base}{path}") for path in _PATHS[1:]))
    answers = dict(zip(_PATHS, (first, *rest), strict=True))
    for detect in _DETECTORS:
        found = detect(answers)
        if found is not None:
            return found
    status = "no answer" if first is None else f"HTTP {first[0]}"
    return f"unrecognised server (GET /v1/models: {status})"


async def probe(
    url: str,
    *,
    client: httpx.AsyncClient | None = None,
    timeout: float = 0.5,
    api_key: str | None = None,
    tls: ssl.SSLContext | None = None,
    proxy: str | None = None,
) -> HostInventory:
    """Probe one endpoint: which server it is, and its models.

    Without ``client`` one is made for the probe: ``tls`` checks the server's
    certificate (default: :func:`~actors.llm.providers.tls_context`'s, the usual CA
    certificates), ``proxy`` is the HTTP proxy the requests go through (default: none).
    """
    base = url.rstrip("/")
    own = client is None
    http = client or httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        trust_env=False,
        verify=tls or tls_context(),
        proxy=proxy,
    )
    try:
        found = await _identify(http, base)
        if isinstance(found, str):
            return HostInventory(url=base, reachable="no answer" not in found, error=found)
        server, version = found
        protocol = SERVER_PROTOCOL[server]
        provider = provider_class(protocol)(
            base,
            client=http,
            api_key=api_key,
            timeouts=Timeouts(connect=timeout, read=max(timeout, 5.0)),
        )
        try:
            models = await provider.list_models()
        except ProviderError as exc:
            return HostInventory(
                url=base,
                server=server,
                provider=protocol,
                reachable=True,
                version=version,
                error=exc.failure.message,
            )
        return HostInventory(
            url=base,
            server=server,
            provider=protocol,
            reachable=True,
            version=version,
            models=tuple(models),
        )
    finally:
        if own:
            await http.aclose()


async def discover(
    urls: Iterable[str] = (),
    *,
    default_ports: bool = True,
    timeout: float = 0.5,
    reachable_only: bool = False,
) -> list[HostInventory]:
    """Probe the given URLs and (unless ``default_ports`` is off) the default local ports.

    Returns one inventory per distinct URL, in the order given (the defaults last).
    """
    ordered: list[str] = []
    for url in [*urls, *(DEFAULT_ENDPOINTS if default_ports else ())]:
        base = url.rstrip("/")
        if base not in ordered:
            ordered.append(base)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), trust_env=False, verify=tls_context()
    ) as client:
        found = await asyncio.gather(*(probe(u, client=client, timeout=timeout) for u in ordered))
    return [f for f in found if f.reachable] if reachable_only else list(found)


def discover_sync(
    urls: Sequence[str] = (), *, default_ports: bool = True, timeout: float = 0.5
) -> list[HostInventory]:
    """:func:`discover` for code that is not async (the CLI, scripts)."""
    return asyncio.run(discover(urls, default_ports=default_ports, timeout=timeout))
