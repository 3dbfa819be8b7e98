"""Configuration: model hosts, breakers, prices, the GPU budget and discovery.

Everything has a default, so no configuration is needed at all: with no file, no host
is configured (discovery probes the usual local ports), breakers use the defaults below,
no model has a price, and the GPU budget is the free VRAM.

These sections are also the settings themselves: a :class:`~actors.llm.ModelHost` takes
a :class:`HostConfig` and its breakers a :class:`BreakerConfig`, so every default is
written once, here. The models are frozen: a host's settings never change under it.

A TOML file adds to that. :func:`load_config` finds it (an explicit path, else
``$REACTOR_CONFIG``, else ``config.toml`` in the user's config directory when it exists)
and validates it with pydantic. Unknown keys are errors, so a typo fails at start with
the dotted path of the field and the reason, e.g.::

    /home/ada/.config/reactor-swarm/config.toml: 1 invalid setting
      hosts.local.max_paralel: Extra inputs are not permitted (did you mean max_parallel?)

``REACTOR_*`` environment variables override the file, one field each:
``REACTOR_<SECTION>__<FIELD>[__<SUBFIELD>...]`` with a double underscore between levels,
names case-insensitive (a new host's name is taken in lower case)::

    REACTOR_BREAKER__FAILURE_THRESHOLD=3
    REACTOR_HOSTS__LOCAL__URL=http://127.0.0.1:1234
    REACTOR_RESOURCES__BUDGET_GB=20

A value is read as JSON when it parses as JSON (numbers, ``true``, lists, objects), and
as a plain string otherwise. ``REACTOR_CONFIG`` and ``REACTOR_DB`` are not settings, and
neither is any other ``REACTOR_`` variable without a double underscore, unless its name
is exactly a section (``REACTOR_BREAKER='{"open_s": 2}'`` sets several fields at once).
"""

from __future__ import annotations

import difflib
import json
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, Self
from urllib.parse import urlsplit

import platformdirs
from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from actors import FailureKind

if TYPE_CHECKING:
    import ssl

    from actors.llm._messages import Usage

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_COUNTED",
    "BreakerConfig",
    "BudgetLimitConfig",
    "BudgetsConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "DiscoveryConfig",
    "FallbackAction",
    "FallbackChainConfig",
    "FallbackConfig",
    "FallbackLinkConfig",
    "HostConfig",
    "HostProtocol",
    "ModelConfig",
    "PlacementConfig",
    "PolicyConfig",
    "PriceConfig",
    "RayConfig",
    "ResourcesConfig",
    "SelectionConfig",
    "TaskType",
    "default_config_path",
    "load_config",
    "mask_url",
    "parse_period",
]

CONFIG_ENV_VAR = "REACTOR_CONFIG"
"""The environment variable that names the configuration file."""

_ENV_PREFIX = "REACTOR_"
_NOT_SETTINGS = frozenset({"REACTOR_CONFIG", "REACTOR_DB"})
_GIB = 1024**3

HostProtocol = Literal["openai", "lmstudio", "ollama", "anthropic", "gemini"]
"""The wire protocols a host can be driven with."""

TaskType = Literal["code", "reasoning", "analysis", "creative", "factual", "general"]
"""The task types users name, which selection learns and routes by."""

Capability = Literal["chat", "embeddings", "tools", "vision", "json"]
"""What a model can do beyond plain chat (``json``: a JSON output mode)."""

DEFAULT_COUNTED: frozenset[FailureKind] = frozenset(
    {
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.OVERLOADED,
        FailureKind.CONNECTION,
        FailureKind.INVALID_RESPONSE,
        FailureKind.RATE_LIMITED,
        FailureKind.AUTH,
    }
)
"""The failure kinds that count against a breaker unless configured otherwise."""


class ConfigError(ValueError):
    """The configuration is invalid: the message names the file and every bad field.

    Attributes:
        path: The file (``None`` when the error came from defaults and the environment).
        problems: ``(dotted field path, reason)`` pairs, one per bad field.
    """

    def __init__(
        self,
        message: str,
        *,
        path: Path | None = None,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.path = path
        self.problems = list(problems or ())


class _Section(BaseModel):
    """A section: unknown keys are errors naming the field, and it is frozen.

    Frozen, because a section is also the settings handed to a host or breaker, which
    must not change under it.
    """

    # hide_input_in_errors: a rejected value may be a key or a URL with a password in it.
    model_config = ConfigDict(
        extra="forbid", validate_default=True, frozen=True, hide_input_in_errors=True
    )


def mask_url(url: str) -> str:
    """``url`` with any password in it replaced by ``***``, for printing.

    ``http://ada:hunter2@gpu:8080/v1`` becomes ``http://ada:***@gpu:8080/v1``; a URL
    without credentials (or one that does not parse) comes back unchanged.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user, colon, _password = userinfo.partition(":")
    masked = f"{user}:***" if colon else "***"
    return parts._replace(netloc=f"{masked}@{hostport}").geturl()


def _check_http_url(value: str, *, what: str = "URL", credentials: bool = False) -> str:
    """``value`` stripped, if an http(s) URL with a host (credentials only if allowed)."""
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        msg = f"{mask_url(value)!r} is not a valid URL ({exc})"
        raise ValueError(msg) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"must be an http:// or https:// {what} with a host, not {mask_url(value)!r}"
        raise ValueError(msg)
    if not credentials and (parts.username is not None or parts.password is not None):
        # The HTTP clients refuse credentials in a URL next to their own auth header,
        # with an error that names neither the host nor the fix; and the URL is printed.
        msg = (
            f"{mask_url(value)!r} has credentials in it; put them in headers "
            '(headers = { Authorization = "Basic ..." }) or in api_key_env instead'
        )
        raise ValueError(msg)
    return value


def _existing_file(value: str | None, what: str = "") -> str | None:
    """``value`` with ``~`` expanded, if it names a file (``what`` describes it in the error)."""
    if value is None:
        return None
    path = Path(value).expanduser()
    if not path.is_file():
        msg = f"no file {value!r}{what}"
        raise ValueError(msg)
    return str(path)


class BreakerConfig(_Section):
    """Circuit breaker settings (one breaker per model, on each host).

    Defaults are drawn from pybreaker, LiteLLM and Envoy.

    Attributes:
        failure_threshold: Consecutive counted failures that open the breaker.
        failure_rate: Failure fraction over the window that opens it (0 < x <= 1) ...
        window: ... computed over the last ``window`` calls ...
        min_calls: ... once at least ``min_calls`` of them are in the window.
        open_s: How long it stays open the first time before a probe.
        max_open_s: The longest it stays open, however often probes fail.
        backoff: The open time is multiplied by this after each failed probe (>= 1).
        half_open_probes: Requests let through while half-open.
        counted: The failure kinds that count; others (``bad_request``, ...) never open it.
    """

    failure_threshold: int = Field(default=5, ge=1, strict=True)
    failure_rate: float = Field(default=0.5, gt=0.0, le=1.0, strict=True)
    window: int = Field(default=20, ge=1, strict=True)
    min_calls: int = Field(default=10, ge=1, strict=True)
    open_s: float = Field(default=5.0, gt=0.0, strict=True)
    max_open_s: float = Field(default=120.0, gt=0.0, strict=True)
    backoff: float = Field(default=2.0, ge=1.0, strict=True)
    half_open_probes: int = Field(default=1, ge=1, strict=True)
    counted: frozenset[FailureKind] = DEFAULT_COUNTED

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.min_calls > self.window:
            msg = f"min_calls ({self.min_calls}) must not exceed window ({self.window})"
            raise ValueError(msg)
        if self.max_open_s < self.open_s:
            msg = f"max_open_s ({self.max_open_s}) must be at least open_s ({self.open_s})"
            raise ValueError(msg)
        return self


class PriceConfig(_Section):
    """What a model costs: US dollars per million tokens, and/or per GPU-second.

    A local model costs something too (power, the GPU's time): give it a price per
    token, or ``per_gpu_second`` (charged for the call's wall time), or write ``0``
    on purpose. At least one of the three must be given, so that no model is ever
    priced at a silent $0.

    Attributes:
        input_per_mtok: Dollars per million input (prompt) tokens.
        output_per_mtok: Dollars per million output tokens.
        per_gpu_second: Dollars per second of a call's wall time.
    """

    input_per_mtok: float = Field(default=0.0, ge=0.0, strict=True)
    output_per_mtok: float = Field(default=0.0, ge=0.0, strict=True)
    per_gpu_second: float = Field(default=0.0, ge=0.0, strict=True)

    @model_validator(mode="after")
    def _some_price(self) -> Self:
        if not self.model_fields_set & {"input_per_mtok", "output_per_mtok", "per_gpu_second"}:
            msg = "give input_per_mtok and output_per_mtok, or per_gpu_second (0 is a price)"
            raise ValueError(msg)
        return self

    def cost(self, usage: Usage, seconds: float = 0.0) -> float:
        """The cost in US dollars of one call that used ``usage`` and took ``seconds``.

        The one price formula: tokens at their prices, plus the wall time at
        ``per_gpu_second``.
        """
        tokens = (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        )
        return tokens / 1e6 + seconds * self.per_gpu_second

    def worst_case(self, prompt_tokens: int, max_tokens: int, seconds: float) -> float:
        """The most one call can cost: every output token used, the whole deadline taken."""
        tokens = prompt_tokens * self.input_per_mtok + max_tokens * self.output_per_mtok
        return tokens / 1e6 + seconds * self.per_gpu_second


class HostConfig(_Section):
    """One model host: an LLM server endpoint.

    Attributes:
        url: Base URL, ``http://`` or ``https://``.
        protocol: The wire protocol; ``None`` lets discovery find out.
        api_key: The key, written in the file (prefer ``api_key_env``); printed as
            ``**********`` (``repr``, ``str``, ``model_dump``).
        api_key_env: The name of an environment variable that holds the key.
        max_parallel: Requests in flight at once on this host.
        queue_limit: Requests waiting beyond those; more are refused (``overloaded``).
        timeout_s: Longest wait for the server between bytes of an answer (a request's
            own deadline, enforced by the host, bounds the whole call).
        connect_timeout_s: Time allowed to open a connection.
        stream_idle_timeout_s: Longest silence allowed inside a stream.
        headers: Extra HTTP headers sent with every request. Their values are
            secrets (an ``Authorization`` header, say): printing the settings shows
            ``**********``; :meth:`header_values` gives them to the HTTP client.
        breaker: Breaker settings for this host; the fields given here override the
            global ``[breaker]`` section (see :meth:`Config.host`). ``None``: the
            defaults of :class:`BreakerConfig`.
        models: When not empty, the only models this host serves; a request for any
            other is refused ``not_found`` without reaching the server.
        prices: Price per model id on this host (see also the global ``[prices]``); a
            model without one has ``cost_usd`` ``None``.
        transport: ``"aiohttp"`` (the default, fast under concurrency) or ``"httpx"``.
        server: Which server speaks the protocol (``llamacpp``, ``llama-cpp-python``,
            ``vllm``, ...): some accept only some forms of a request field (llama.cpp's
            ``llama-server`` takes ``tool_choice`` only as a string). Discovery fills it
            in; ``None`` lets the host learn it from the server's model list.
        aliases: Model names requests may use, each mapped to a model the server lists
            (``{"gpt-4o" = "qwen2.5-7b-instruct"}``). Once the host's inventory is
            known, a request for a model the server does not list (and no alias names)
            is refused ``not_found`` rather than silently served by another model.
        context_windows: Context window per model id, for servers that do not report
            one (llama-cpp-python): what a stream that ends empty is judged against.
        num_ctx: Ollama only: the context every model on this host is served with.
            Chat and embed requests carry it as ``options.num_ctx`` (unless their own
            options set one), and the catalog reports it as each model's context (at
            most the length the model was trained for, where ``/api/show`` said).
            ``None``: requests carry none, and a model not loaded is assumed to be
            served with Ollama's smallest default, 4096 tokens (a server picks more
            from ``OLLAMA_CONTEXT_LENGTH`` or, since 0.15.5, from its VRAM: set this
            to that figure, so that requests carry it and the catalog says it).
        ca_file: A PEM file of CA certificates this host's TLS certificate is checked
            against, beside the usual ones (a server behind a company's own CA).
        verify_tls: Check the host's TLS certificate (``false``: anything is accepted,
            for a development server with a self-signed certificate; logged).
        client_cert: A PEM file with the client certificate this host asks for (mutual
            TLS), and its private key unless ``client_key`` names another file.
        client_key: The PEM file of ``client_cert``'s private key, when apart.
        proxy: An HTTP proxy every request to this host goes through
            (``http://proxy.example:3128``; credentials in it are kept secret). No
            proxy otherwise: ``HTTP_PROXY`` and ``HTTPS_PROXY`` are not read, so a
            proxy meant for the internet never sits between us and a local server.
    """

    url: str
    protocol: HostProtocol | None = None
    api_key: SecretStr | None = None
    api_key_env: str | None = None
    max_parallel: int = Field(default=4, ge=1, strict=True)
    queue_limit: int = Field(default=1000, ge=0, strict=True)
    timeout_s: float = Field(default=120.0, gt=0.0, strict=True)
    connect_timeout_s: float = Field(default=5.0, gt=0.0, strict=True)
    stream_idle_timeout_s: float = Field(default=60.0, gt=0.0, strict=True)
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    breaker: BreakerConfig | None = None
    models: tuple[str, ...] = ()
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    transport: Literal["aiohttp", "httpx"] = "aiohttp"
    server: str | None = None
    aliases: dict[str, str] = Field(default_factory=dict)
    context_windows: dict[str, Annotated[int, Field(gt=0, strict=True)]] = Field(
        default_factory=dict
    )
    num_ctx: int | None = Field(default=None, ge=1, strict=True)
    ca_file: str | None = None
    verify_tls: bool = Field(default=True, strict=True)
    client_cert: str | None = None
    client_key: str | None = None
    proxy: SecretStr | None = None

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("ca_file")
    @classmethod
    def _ca_file(cls, value: str | None) -> str | None:
        path = _existing_file(value, " (a PEM file of CA certificates)")
        if path is None:
            return None
        import ssl  # noqa: PLC0415 - only a configuration that names a CA file needs it

        try:
            ssl.create_default_context().load_verify_locations(cafile=path)
        except (ssl.SSLError, OSError) as exc:
            msg = f"{value!r} is not a PEM file of CA certificates ({exc})"
            raise ValueError(msg) from None
        return path

    @field_validator("proxy")
    @classmethod
    def _proxy(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        raw = value.get_secret_value()
        return SecretStr(_check_http_url(raw, what="proxy URL", credentials=True))

    @field_validator("client_cert", "client_key")
    @classmethod
    def _pem_file(cls, value: str | None) -> str | None:
        return _existing_file(value)

    @model_validator(mode="after")
    def _num_ctx(self) -> Self:
        if self.num_ctx is not None and self.protocol not in (None, "ollama"):
            msg = (
                f"num_ctx is an Ollama setting; this host's protocol is {self.protocol!r} "
                "(its server sets the context itself)"
            )
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _tls(self) -> Self:
        if self.ca_file is not None and not self.verify_tls:
            msg = "ca_file is given but verify_tls is false: no certificate would be checked"
            raise ValueError(msg)
        if self.client_key is not None and self.client_cert is None:
            msg = "client_key is given without client_cert (the certificate it belongs to)"
            raise ValueError(msg)
        if self.client_cert is not None:
            import ssl  # noqa: PLC0415 - only a configuration that names a certificate needs it

            try:
                ssl.create_default_context().load_cert_chain(self.client_cert, self.client_key)
            except (ssl.SSLError, OSError) as exc:
                msg = (
                    f"client_cert {self.client_cert!r} (key: "
                    f"{self.client_key or 'in the same file'}) cannot be loaded: {exc}"
                )
                raise ValueError(msg) from None
        return self

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and (not value or "=" in value or "\0" in value):
            msg = f"{value!r} is not an environment variable name"
            raise ValueError(msg)
        return value

    def header_values(self) -> dict[str, str]:
        """The extra headers as the HTTP client sends them (the secrets revealed)."""
        return {name: value.get_secret_value() for name, value in self.headers.items()}

    def tls_context(self) -> ssl.SSLContext:
        """What this host's TLS certificate is checked against (``ca_file``, ``verify_tls``)."""
        from actors.llm.providers import tls_context  # noqa: PLC0415 - providers import this

        return tls_context(
            self.ca_file,
            verify=self.verify_tls,
            client_cert=self.client_cert,
            client_key=self.client_key,
        )

    def proxy_url(self) -> str | None:
        """The proxy as the HTTP client uses it (its credentials revealed), or ``None``."""
        return None if self.proxy is None else self.proxy.get_secret_value()

    def missing_api_key_env(self, env: Mapping[str, str] | None = None) -> str | None:
        """The ``api_key_env`` variable when it is named but not set (and no ``api_key``)."""
        if self.api_key is not None or not self.api_key_env:
            return None
        if (os.environ if env is None else env).get(self.api_key_env):
            return None
        return self.api_key_env

    def resolved_api_key(self, env: Mapping[str, str] | None = None) -> str | None:
        """The API key: ``api_key``, else the variable named by ``api_key_env``, else None.

        Args:
            env: Where to look up ``api_key_env`` (``os.environ`` by default).
        """
        if self.api_key is not None:
            return self.api_key.get_secret_value()
        if self.api_key_env:
            value = (os.environ if env is None else env).get(self.api_key_env)
            return value or None
        return None


class ModelConfig(_Section):
    """What is declared about one model (``[models."llama3.2"]`` or ``[models."ollama/llama3.2"]``).

    Servers say little about their models; what they do not say is declared here, and
    a declaration wins over what a server reports.

    Attributes:
        tier: The declared quality tier, 1 (small, cheap) to 3 (the strongest). Selection
            starts from it as a prior, so a new model is tried but not trusted blindly.
        strengths: Task types the model is declared good at (a higher prior for them).
        context_length: The context window, when the server does not report it.
        capabilities: What it can do, replacing what the server reports.
    """

    tier: int | None = Field(default=None, ge=1, le=3)
    strengths: tuple[TaskType, ...] = ()
    context_length: int | None = Field(default=None, ge=1)
    capabilities: tuple[Capability, ...] | None = None


class PolicyConfig(_Section):
    """A selection policy (``[selection.policies.NAME]``); see ``actors.orchestration.Policy``.

    Attributes:
        kind: ``score`` (weighted quality, cost and latency), ``cheapest``, ``fastest`` or
            ``best`` (quality alone).
        quality: Weight of quality in a ``score`` policy.
        cost: Weight of cheapness.
        latency: Weight of speed.
        models: The candidates (names, ``host/model`` or aliases); empty: every chat model.
        pin: A model to use per task type, whatever the scores (when it is eligible).
        explore: Learn by trying (Thompson draws), rather than always taking the best known.
        prior_weight: How many observations a declared tier is worth.
        loaded_bonus: Score added for a model loaded now (prefer it over one that must load).
        evict_penalty: Score taken from a model that would unload another to fit.
        downgrade: Under a budget, choose a cheaper model that fits what is left rather
            than fail; ``false``: fail ``budget_exceeded`` when the choice does not fit.
    """

    kind: Literal["score", "cheapest", "fastest", "best"] = "score"
    quality: float = Field(default=0.6, ge=0.0)
    cost: float = Field(default=0.2, ge=0.0)
    latency: float = Field(default=0.2, ge=0.0)
    models: tuple[str, ...] = ()
    pin: dict[TaskType, str] = Field(default_factory=dict)
    explore: bool = True
    prior_weight: float = Field(default=4.0, ge=0.0)
    loaded_bonus: float = Field(default=0.02, ge=0.0)
    evict_penalty: float = Field(default=0.1, ge=0.0)
    downgrade: bool = True


class SelectionConfig(_Section):
    """Adaptive model selection (``[selection]``).

    Attributes:
        default_policy: The policy of requests that name none: a built-in one
            (``balanced``, ``cheapest``, ``fastest``, ``best``) or one in ``policies``.
        policies: Policies by name.
        discount: gamma: each observation of a task type multiplies the older ones' weight
            by this (0 < gamma <= 1; 1 never forgets), so that drift is noticed.
        half_life_s: Persisted history loses half its weight per this many seconds.
        persist_s: How often the history is written to the store when it changed.
    """

    default_policy: str = "balanced"
    policies: dict[str, PolicyConfig] = Field(default_factory=dict)
    discount: float = Field(default=0.995, gt=0.0, le=1.0)
    half_life_s: float = Field(default=7 * 86400.0, gt=0.0)
    persist_s: float = Field(default=300.0, gt=0.0)

    @model_validator(mode="after")
    def _known_default(self) -> Self:
        known = {"balanced", "cheapest", "fastest", "best", *self.policies}
        if self.default_policy not in known:
            msg = (
                f"default_policy {self.default_policy!r} is not a policy "
                f"(known: {', '.join(sorted(known))})"
            )
            raise ValueError(msg)
        return self


class ResourcesConfig(_Section):
    """The GPU memory budget for models and how the ResourceMonitor reads it.

    Attributes:
        budget_bytes: The budget in bytes ...
        budget_gb: ... or in GiB (2**30 bytes, as GPU memory is quoted); at most one.
            With neither, the budget is the free VRAM plus what loaded models take.
        poll_s: How often the monitor polls the GPUs and the hosts.
        nvml: Whether to read GPUs through NVML at all.
    """

    budget_bytes: int | None = Field(default=None, gt=0, strict=True)
    budget_gb: float | None = Field(default=None, gt=0.0, strict=True)
    poll_s: float = Field(default=5.0, gt=0.0, strict=True)
    nvml: bool = True

    @model_validator(mode="after")
    def _one_budget(self) -> Self:
        if self.budget_bytes is not None and self.budget_gb is not None:
            msg = "set budget_bytes or budget_gb, not both"
            raise ValueError(msg)
        return self

    def budget(self) -> int | None:
        """The configured budget in bytes, or ``None`` (use the free VRAM)."""
        if self.budget_bytes is not None:
            return self.budget_bytes
        if self.budget_gb is not None:
            return int(self.budget_gb * _GIB)
        return None


class DiscoveryConfig(_Section):
    """Which endpoints discovery probes.

    Attributes:
        enabled: Whether to probe at all.
        default_ports: Probe the usual local ports (LM Studio 1234, Ollama 11434,
            llama.cpp 8080, vLLM 8000).
        urls: More base URLs to probe.
        timeout_s: How long one probe may take.
    """

    enabled: bool = True
    default_ports: bool = True
    urls: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=0.5, gt=0.0, strict=True)

    @field_validator("urls")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [_check_http_url(url) for url in value]


_PERIOD_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0}


def parse_period(text: str) -> tuple[float, str]:
    """``"1d"`` → ``(86400.0, "d")``; ``"1mo"`` is a calendar month (``(n, "mo")``).

    Raises:
        ValueError: Not ``<number><unit>`` with a unit of s, m, h, d, w or mo.
    """
    raw = text.strip().lower()
    if raw.endswith("mo"):
        number, unit = raw[:-2], "mo"
    else:
        number, unit = raw[:-1], raw[-1:]
    try:
        count = float(number)
    except ValueError:
        count = -1.0
    if unit not in (*_PERIOD_UNITS, "mo") or count <= 0 or (unit == "mo" and count != int(count)):
        msg = (
            f"{text!r} is not a period: write a number and a unit (s, m, h, d, w or mo), e.g. '1d'"
        )
        raise ValueError(msg)
    return (count if unit == "mo" else count * _PERIOD_UNITS[unit]), unit


class BudgetLimitConfig(_Section):
    """One spending limit.

    Attributes:
        scope: What it caps: ``global`` (everything), ``run`` (each run, its composed
            runs included), ``reactor`` or ``agent`` (by name).
        usd: The cap, in US dollars.
        period: The window it applies to (``"1h"``, ``"1d"``, ``"7d"``, ``"1mo"``;
            UTC-aligned); ``None``: for ever (the usual choice for ``run``).
        name: For ``reactor`` and ``agent``: the one it caps; ``None``: each one
            separately.
    """

    scope: Literal["global", "run", "reactor", "agent"]
    usd: float = Field(gt=0.0)
    period: str | None = None
    name: str | None = None

    @field_validator("period")
    @classmethod
    def _period(cls, value: str | None) -> str | None:
        if value is not None:
            parse_period(value)
        return value

    @model_validator(mode="after")
    def _name_fits(self) -> Self:
        if self.name is not None and self.scope in ("global", "run"):
            msg = f"name is only for the reactor and agent scopes, not {self.scope!r}"
            raise ValueError(msg)
        return self


class BudgetsConfig(_Section):
    """Spending limits, checked before each model call (see ``actors.orchestration``).

    Attributes:
        limits: The caps; a call must fit in every one that applies to it.
        reserve_max_tokens: The output tokens reserved (and then sent as
            ``max_tokens``) for a request that sets no ``max_tokens``, so that the
            reservation is a true worst case.
        reserve_seconds: The wall time reserved for a model priced per GPU-second when
            the request has no deadline (at most the system's default ask timeout, which
            bounds such a call anyway); the call is then held to it.
        unpriced: What a call to a model without a price does while a limit applies:
            ``refuse`` (fail ``budget_exceeded`` before sending it) or ``free`` (count
            it as $0, flagged ``priced=false`` in the spend records).
        prompt_tokens: How a reservation counts the prompt: ``estimate`` (a cheap
            upper estimate, microseconds: the default) or ``exact`` (the server's own
            count, one round trip to its token-count route, where the host has one:
            Anthropic, Gemini, llama.cpp, vLLM; the estimate elsewhere). A call may
            ask for either itself (``Reserve.exact``).
        count_timeout_s: How long an exact count may take before the estimate is used.
    """

    limits: list[BudgetLimitConfig] = Field(default_factory=list)
    reserve_max_tokens: int = Field(default=4096, ge=1)
    reserve_seconds: float = Field(default=120.0, gt=0.0)
    unpriced: Literal["refuse", "free"] = "refuse"
    prompt_tokens: Literal["estimate", "exact"] = "estimate"
    count_timeout_s: float = Field(default=2.0, gt=0.0)


FallbackAction = Literal["retry", "next", "stop"]
"""What a fallback chain does after a failure: try the same link again, move on, or stop."""


class FallbackLinkConfig(_Section):
    """One link of a fallback chain.

    Attributes:
        model: The model (``host/model`` names the host too).
        host: The host, when ``model`` does not name it.
        context_length: Its context window, when the catalog does not know it.
    """

    model: str = Field(min_length=1)
    host: str | None = None
    context_length: int | None = Field(default=None, ge=1)


class FallbackChainConfig(_Section):
    """A named fallback chain: ``[fallback.chains.<name>]``.

    Attributes:
        links: The models in order (a ``"host/model"`` string or a table).
        on: Per failure kind, ``retry``, ``next`` or ``stop`` (over the defaults).
        retries: How often ``retry`` tries the same link again.
        backoff_s: The first retry's wait (doubled each time, drawn from the upper half
            of that for jitter; a ``retry_after`` the server sent is honoured when longer).
        content_policy_chain: A chain to take after a ``content_policy`` refusal;
            without one a refusal stops (it never falls through to the general chain).
        restart_streams: Fall back even after a streamed answer produced tokens (the
            result then says the stream restarted).
        eject_after: Consecutive failures that eject a link (it is tried last).
        eject_base_s: The first ejection's length; the n-th lasts n times as long ...
        eject_max_s: ... up to this.
        max_ejected_percent: The share of links that may be ejected at once (never
            all of them).
    """

    links: list[str | FallbackLinkConfig] = Field(min_length=1)
    on: dict[FailureKind, FallbackAction] = Field(default_factory=dict)
    retries: int = Field(default=1, ge=0)
    backoff_s: float = Field(default=0.25, ge=0.0)
    content_policy_chain: str | None = None
    restart_streams: bool = False
    eject_after: int = Field(default=3, ge=1)
    eject_base_s: float = Field(default=30.0, gt=0.0)
    eject_max_s: float = Field(default=300.0, gt=0.0)
    max_ejected_percent: float = Field(default=50.0, ge=0.0, le=100.0)


class FallbackConfig(_Section):
    """Named fallback chains, usable as ``fallback(..., chain="name")``."""

    chains: dict[str, FallbackChainConfig] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_chains(self) -> Self:
        for name, chain in self.chains.items():
            target = chain.content_policy_chain
            if target is not None and target not in self.chains:
                known = ", ".join(sorted(self.chains))
                msg = (
                    f"chains.{name}.content_policy_chain names {target!r}, "
                    f"which is not a chain (chains: {known})"
                )
                raise ValueError(msg)
        return self


class McpServerConfig(_Section):
    """One MCP server, in the shape of an LM Studio ``mcp.json`` entry (plus our options).

    Either ``command`` (with ``args`` and ``env``: a server started as a child process,
    spoken to over stdio) or ``url`` (with ``headers``: Streamable HTTP).

    Attributes:
        command: The program to start (stdio).
        args: Its arguments.
        env: Environment variables it gets (besides HOME, PATH and the like).
        url: The server's endpoint (Streamable HTTP).
        headers: HTTP headers sent with every request (an ``Authorization``, say);
            secrets, masked when the configuration is printed (``header_values()``).
        allowed_tools: Only these of its tools join the registry (``None``: all).
        needs_approval: Every call of its tools needs a human's approval.
        tags: Tags its tools get (besides ``mcp`` and ``mcp:<name>``).
        timeout_s: Seconds a call of its tools may take.
        trusted: Whether its tool annotations are believed; an untrusted server's
            tools are treated as destructive and open-world whatever they say.
    """

    command: str | None = None
    args: list[str] = Field(default_factory=list)
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    allowed_tools: list[str] | None = None
    needs_approval: bool = False
    tags: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=60.0, gt=0)
    trusted: bool = True

    def header_values(self) -> dict[str, str]:
        """The headers as the HTTP client sends them (the secrets revealed)."""
        return {name: value.get_secret_value() for name, value in self.headers.items()}

    @model_validator(mode="after")
    def _one_transport(self) -> Self:
        if (self.command is None) == (self.url is None):
            msg = "give either 'command' (stdio) or 'url' (Streamable HTTP), not both or neither"
            raise ValueError(msg)
        if self.url is not None:
            _check_http_url(self.url)
        return self


class ToolsConfig(_Section):
    """The tool runner's settings.

    Attributes:
        audit_retention_days: Audit records older than this are pruned (``None``: kept).
        max_parallel: Tool calls running at once.
    """

    audit_retention_days: float | None = Field(default=None, gt=0)
    max_parallel: int = Field(default=128, ge=1)


class RayConfig(_Section):
    """How the engine reaches Ray when a step is placed there (``reactor.placement``).

    Attributes:
        address: ``None``: start a local Ray instance bound to 127.0.0.1 only (for
            development); ``"auto"``, ``"host:port"`` or ``"ray://host:port"``: join
            that cluster (``REACTOR_RAY__ADDRESS``).
        namespace: The Ray namespace of the engine's jobs and actors.
        num_cpus: CPUs of a local instance (``None``: the machine's).
        num_gpus: GPUs of a local instance (``None``: those Ray finds).
        warm_actors: Warm Ray actors kept per resource shape for steps placed as
            tasks (``0``: every call is a Ray task). A call that finds one idle is one
            actor call instead of a task (about 1 ms less per step); each holds the
            resources of one call while it lives, and is given back when a task of
            this engine waits or after ``warm_idle_s`` without a call.
        warm_idle_s: Seconds a warm actor stays idle before it is given back.
        cancel_grace_s: Seconds a cancelled or timed-out call may take to stop after
            its interrupt; then its Ray worker is killed (a task's with
            ``ray.cancel(force=True)``, an actor with ``ray.kill``).
        check_resources: Fail at once a step whose resources no node of the cluster
            has (``64`` GPUs, a custom resource nobody offers), rather than wait for
            them until its timeout. Turn it off for an autoscaling cluster, which adds
            the nodes it is asked for.
    """

    address: str | None = None
    namespace: str = "reactor-swarm"
    num_cpus: int | None = Field(default=None, ge=1)
    num_gpus: int | None = Field(default=None, ge=0)
    warm_actors: int = Field(default=1, ge=0)
    warm_idle_s: float = Field(default=2.0, gt=0)
    cancel_grace_s: float = Field(default=5.0, ge=0)
    check_resources: bool = True


class PlacementConfig(_Section):
    """Where step work runs when the definition does not decide (``reactor.placement``).

    Attributes:
        default: ``"local"`` (the engine's event loop and worker pool) or ``"ray"``.
        steps: ``"Reactor"`` or ``"Reactor.step"`` to ``"local"`` or ``"ray"``,
            winning over what the reactor says.
    """

    default: str = "local"
    steps: dict[str, str] = Field(default_factory=dict)


class DaemonConfig(_Section):
    """``reactor serve``: where the daemon listens and who may call it.

    Attributes:
        host: The address to bind (loopback by default; another one is a deliberate
            choice that the daemon warns about).
        port: The TCP port.
        token: The bearer token every request but ``/health`` must carry; when unset,
            one is generated on first start into ``token_file``.
        token_file: Where the generated token is kept (owner-only permissions); by
            default ``daemon.token`` in the user's data directory.
        grace_s: Seconds running requests get to finish when the daemon stops.
        reactors: Reactors it can run, as ``module:Name`` or ``path/file.py:Name``.
        jaeger_url: The Jaeger UI, to link each run on the web page to its trace.
        allowed_origins: Browser origins allowed besides the daemon's own.
        tools: Tools its reactors' ``tools`` steps (and agents) may call, as
            ``module:name`` or ``path/file.py:name``: a ``@tool``, a plain function, or a
            ``ToolRegistry`` (all of its tools). ``[mcpServers.*]`` add theirs.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: SecretStr | None = None
    token_file: Path | None = None
    grace_s: float = Field(default=10.0, ge=0)
    reactors: tuple[str, ...] = ()
    jaeger_url: str | None = None
    allowed_origins: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()


class Config(_Section):
    """The whole configuration.

    Attributes:
        hosts: Model hosts by name (names may not contain ``/`` or spaces).
        breaker: The breaker settings every host uses unless it overrides them.
        prices: Prices keyed by ``model`` or ``host/model`` (see :meth:`host`).
        resources: The GPU budget and the monitor's polling.
        discovery: What discovery probes.
        budgets: Spending limits, checked before each model call.
        fallback: Named fallback chains.
        models: Declarations per model, keyed by ``model`` or ``host/model`` (the
            qualified key wins).
        selection: Adaptive model selection: policies and how history is kept.
        aliases: Names that stand for models: ``fast = "ollama/llama3.2"``, or a list
            (``coder = ["lmstudio/qwen2.5-coder", "qwen2.5-coder"]``: every model named).
        tools: The tool runner's settings.
        mcp_servers: MCP servers by name (the TOML table ``[mcpServers.<name>]``, as in
            LM Studio's ``mcp.json``; ``mcp_servers`` is accepted too).
        ray: How to reach a Ray cluster, for steps placed there.
        placement: Where step work runs by default, and per reactor or step.
        daemon: ``reactor serve``'s settings.
    """

    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)
    budgets: BudgetsConfig = Field(default_factory=BudgetsConfig)
    fallback: FallbackConfig = Field(default_factory=FallbackConfig)
    models: dict[str, ModelConfig] = Field(default_factory=dict)
    aliases: dict[str, str | tuple[str, ...]] = Field(default_factory=dict)
    selection: SelectionConfig = Field(default_factory=SelectionConfig)
    tools: ToolsConfig = Field(default_factory=ToolsConfig)
    mcp_servers: dict[str, McpServerConfig] = Field(
        default_factory=dict, validation_alias=AliasChoices("mcpServers", "mcp_servers")
    )
    ray: RayConfig = Field(default_factory=RayConfig)
    placement: PlacementConfig = Field(default_factory=PlacementConfig)
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, HostConfig]) -> dict[str, HostConfig]:
        for name in value:
            if not name or "/" in name or any(ch.isspace() for ch in name):
                msg = f"host name {name!r} must be non-empty, without '/' or spaces"
                raise ValueError(msg)
        return value

    @field_validator("aliases")
    @classmethod
    def _alias_names(
        cls, value: dict[str, str | tuple[str, ...]]
    ) -> dict[str, str | tuple[str, ...]]:
        for name, target in value.items():
            if not name or "/" in name or any(ch.isspace() for ch in name):
                msg = f"alias {name!r} must be non-empty, without '/' or spaces"
                raise ValueError(msg)
            targets = (target,) if isinstance(target, str) else target
            if not targets or not all(targets):
                msg = f"alias {name!r} must name at least one model, got {target!r}"
                raise ValueError(msg)
        return value

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from (``None``: defaults only)."""
        return self._source

    def host(self, name: str, host: HostConfig | None = None, **update: Any) -> HostConfig:
        """The settings a ModelHost called ``name`` runs with: its section, completed.

        ``host`` is the section (default: ``hosts[name]``). Its breaker is the global
        ``[breaker]`` with the host's own fields over it; its prices are the global
        ``[prices]`` for ``model``, then ``name/model``, then the host's own ``prices``
        (each wins over the one before). ``update`` sets more fields (a ``protocol``
        found by discovery, say).

        Raises:
            KeyError: No ``host`` is given and no host ``name`` is configured.
        """
        section = self.hosts[name] if host is None else host
        prices: dict[str, PriceConfig] = {}
        mine = f"{name}/"
        for key, price in self.prices.items():
            if key.startswith(mine):
                prices[key.removeprefix(mine)] = price  # "host/model" wins over "model"
            elif key.partition("/")[0] not in self.hosts:  # not another host's
                prices.setdefault(key, price)  # model ids may hold a "/" themselves
        prices.update(section.prices)
        breaker = self.breaker
        if section.breaker is not None:
            merged = self.breaker.model_dump()
            merged.update(section.breaker.model_dump(include=section.breaker.model_fields_set))
            breaker = BreakerConfig.model_validate(merged)
        return section.model_copy(update={"breaker": breaker, "prices": prices, **update})


# ---- loading --------------------------------------------------------------------------


def default_config_path() -> Path:
    """``config.toml`` in the user's configuration directory for reactor-swarm."""
    return Path(platformdirs.user_config_dir("reactor-swarm", appauthor=False)) / "config.toml"


def load_config(path: Path | str | None = None, *, env: Mapping[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration.

    Args:
        path: The TOML file. Without one: ``$REACTOR_CONFIG``, else
            :func:`default_config_path` when that file exists, else no file (defaults).
        env: The environment to read ``REACTOR_*`` overrides from (``os.environ``).

    Raises:
        ConfigError: The file is missing (when named), unreadable, not valid TOML, or
            has invalid settings; or an override is invalid. The message names the file,
            each bad field as a dotted path with the reason, and the variable of a bad
            override.
    """
    environ: Mapping[str, str] = os.environ if env is None else env
    source = _find_file(path, environ)
    raw: dict[str, Any] = _read_toml(source) if source is not None else {}
    overrides = _apply_env(raw, environ)
    config = _validate(raw, source, overrides)
    config._source = source
    return config


def _find_file(path: Path | str | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        named, why = Path(path).expanduser(), "given"
    elif env.get(CONFIG_ENV_VAR):
        named, why = Path(env[CONFIG_ENV_VAR]).expanduser(), f"named by ${CONFIG_ENV_VAR}"
    else:
        default = default_config_path()
        return default if default.is_file() else None
    if not named.is_file():
        msg = f"{named}: configuration file not found (the path was {why})"
        raise ConfigError(msg, path=named)
    return named


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        msg = f"{path}: not valid TOML: {exc}"
        raise ConfigError(msg, path=path, problems=[("", str(exc))]) from exc
    except OSError as exc:
        msg = f"{path}: cannot read the configuration file: {exc}"
        raise ConfigError(msg, path=path) from exc


class _Override:
    __slots__ = ("parsed", "path", "raw", "var")

    def __init__(self, var: str, path: tuple[str, ...], raw: str, parsed: object) -> None:
        self.var = var
        self.path = path
        self.raw = raw
        self.parsed = parsed


def _apply_env(raw: dict[str, Any], env: Mapping[str, str]) -> list[_Override]:
    """Merge every ``REACTOR_*`` override into ``raw``; return what was applied."""
    sections = list(Config.model_fields)
    applied: list[_Override] = []
    for var in sorted(env):
        if not var.upper().startswith(_ENV_PREFIX) or var.upper() in _NOT_SETTINGS:
            continue
        parts = var[len(_ENV_PREFIX) :].split("__")
        if len(parts) == 1 and parts[0].lower() not in sections:
            continue  # some other REACTOR_ variable, not a setting
        if any(not part for part in parts):
            msg = f"{var}: empty name between double underscores"
            raise ConfigError(msg, problems=[(var, "empty name")])
        if parts[0].lower() not in sections:
            msg = (
                f"{var}: unknown configuration section {parts[0].lower()!r} "
                f"(sections: {', '.join(sections)})"
            )
            raise ConfigError(msg, problems=[(var, "unknown section")])
        value = env[var]
        try:
            parsed: object = json.loads(value)
        except ValueError:
            parsed = value
        path = _set_path(raw, parts, parsed, var)
        applied.append(_Override(var, path, value, parsed))
    return applied


def _set_path(raw: dict[str, Any], parts: list[str], value: object, var: str) -> tuple[str, ...]:
    node = raw
    path: list[str] = []
    for depth, part in enumerate(parts):
        # Match an existing key whatever its case (host and model names keep theirs).
        key = next((k for k in node if k.lower() == part.lower()), part.lower())
        path.append(key)
        if depth == len(parts) - 1:
            if isinstance(node.get(key), dict) and isinstance(value, dict):
                node[key] = {**node[key], **value}
            else:
                node[key] = value
            break
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            msg = f"{var}: {'.'.join(path)} is not a table, so it has no field {parts[depth + 1]!r}"
            raise ConfigError(msg, problems=[(".".join(path), "not a table")])
        node = child
    return tuple(path)


def _validate(raw: dict[str, Any], source: Path | None, overrides: list[_Override]) -> Config:
    # An override read as JSON may be meant as text (an API key of digits): retry as text.
    for _ in range(len(overrides) + 1):
        try:
            return Config.model_validate(raw)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            retry = [
                o
                for o in overrides
                if not isinstance(o.parsed, str | dict | list)
                and any(_under(tuple(map(str, e["loc"])), o.path) for e in errors)
            ]
            if not retry:
                raise _config_error(errors, source, overrides) from None
            for o in retry:
                _set_path(raw, list(o.path), o.raw, o.var)
                o.parsed = o.raw
    msg = "configuration did not settle"  # unreachable: each retry turns one value to text
    raise ConfigError(msg, path=source)


def _under(loc: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return loc[: len(path)] == path


def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


def _config_error(
    errors: list[Any], source: Path | None, overrides: list[_Override]
) -> ConfigError:
    problems: list[tuple[str, str]] = []
    lines: list[str] = []
    for error in errors:
        loc: tuple[int | str, ...] = tuple(error["loc"])
        where = _dotted(loc)
        reason = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            hint = _suggest(loc)
            if hint:
                reason += f" (did you mean {hint}?)"
        str_loc = tuple(map(str, loc))
        for o in overrides:
            if _under(str_loc, o.path):
                reason += f" (from environment variable {o.var})"
                reason += _json_hint(error["type"], o)
            elif _under(o.path, str_loc):
                reason += f" (involves environment variable {o.var})"
        problems.append((where, reason))
        lines.append(f"  {where}: {reason}")
    origin = str(source) if source is not None else "configuration (defaults and environment)"
    count = f"{len(problems)} invalid setting{'s' if len(problems) != 1 else ''}"
    return ConfigError(f"{origin}: {count}\n" + "\n".join(lines), path=source, problems=problems)


_JSON_SHAPES = {
    "list_type": ("a JSON list", '["http://127.0.0.1:8080"]'),
    "set_type": ("a JSON list", '["timeout"]'),
    "frozen_set_type": ("a JSON list", '["timeout"]'),
    "dict_type": ("a JSON object", '{"X-Team": "blue"}'),
    "model_type": ("a JSON object", '{"field": 1}'),
}


def _json_hint(error_type: str, override: _Override) -> str:
    """For a variable whose text is not the list or table its field needs: say so."""
    shape = _JSON_SHAPES.get(error_type)
    if shape is None or not isinstance(override.parsed, str):
        return ""
    what, example = shape
    return f"; {what} is expected, e.g. {override.var}='{example}'"


def _suggest(loc: tuple[int | str, ...]) -> str | None:
    """The closest valid field name to an unknown key, from the models along ``loc``."""
    model = _model_at(loc[:-1])
    if model is None:
        return None
    matches = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1)
    return matches[0] if matches else None


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    current: Any = Config
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            field = current.model_fields.get(str(part))
            if field is None:
                return None
            current = _inner(field.annotation)
        elif typing.get_origin(current) in (dict, list):
            current = _inner(typing.get_args(current)[-1])
        else:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _inner(annotation: Any) -> Any:
    """Strip ``X | None`` down to ``X``."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation
