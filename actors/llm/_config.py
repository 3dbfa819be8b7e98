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
    from actors.llm._messages import Usage

__all__ = [
    "CONFIG_ENV_VAR",
    "DEFAULT_COUNTED",
    "BreakerConfig",
    "Config",
    "ConfigError",
    "DiscoveryConfig",
    "HostConfig",
    "HostProtocol",
    "PriceConfig",
    "ResourcesConfig",
    "default_config_path",
    "load_config",
    "mask_url",
]

CONFIG_ENV_VAR = "REACTOR_CONFIG"
"""The environment variable that names the configuration file."""

_ENV_PREFIX = "REACTOR_"
_NOT_SETTINGS = frozenset({"REACTOR_CONFIG", "REACTOR_DB"})
_GIB = 1024**3

HostProtocol = Literal["openai", "lmstudio", "ollama", "anthropic", "gemini"]
"""The wire protocols a host can be driven with."""

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


def _check_http_url(value: str) -> str:
    value = value.strip()
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError as exc:
        msg = f"{mask_url(value)!r} is not a valid URL ({exc})"
        raise ValueError(msg) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        msg = f"must be an http:// or https:// URL with a host, not {mask_url(value)!r}"
        raise ValueError(msg)
    if parts.username is not None or parts.password is not None:
        # The HTTP clients refuse credentials in a URL next to their own auth header,
        # with an error that names neither the host nor the fix; and the URL is printed.
        msg = (
            f"{mask_url(value)!r} has credentials in it; put them in headers "
            '(headers = { Authorization = "Basic ..." }) or in api_key_env instead'
        )
        raise ValueError(msg)
    return value


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
    """What a model costs, in US dollars per million tokens."""

    input_per_mtok: float = Field(ge=0.0, strict=True)
    output_per_mtok: float = Field(ge=0.0, strict=True)

    def cost(self, usage: Usage) -> float:
        """The cost in US dollars of one call that used ``usage`` (the one price formula)."""
        return (
            usage.input_tokens * self.input_per_mtok + usage.output_tokens * self.output_per_mtok
        ) / 1e6


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

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)

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


class Config(_Section):
    """The whole configuration.

    Attributes:
        hosts: Model hosts by name (names may not contain ``/`` or spaces).
        breaker: The breaker settings every host uses unless it overrides them.
        prices: Prices keyed by ``model`` or ``host/model`` (see :meth:`host`).
        resources: The GPU budget and the monitor's polling.
        discovery: What discovery probes.
    """

    hosts: dict[str, HostConfig] = Field(default_factory=dict)
    breaker: BreakerConfig = Field(default_factory=BreakerConfig)
    prices: dict[str, PriceConfig] = Field(default_factory=dict)
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)
    discovery: DiscoveryConfig = Field(default_factory=DiscoveryConfig)

    _source: Path | None = PrivateAttr(default=None)

    @field_validator("hosts")
    @classmethod
    def _host_names(cls, value: dict[str, HostConfig]) -> dict[str, HostConfig]:
        for name in value:
            if not name or "/" in name or any(ch.isspace() for ch in name):
                msg = f"host name {name!r} must be non-empty, without '/' or spaces"
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
