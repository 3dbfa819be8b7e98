"""Configuration: defaults, the TOML file, errors that name the field, env overrides."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from pydantic import AliasChoices, BaseModel, ValidationError

from actors import FailureKind
from actors.llm import Usage
from actors.llm._config import (
    BreakerConfig,
    Config,
    ConfigError,
    HostConfig,
    PriceConfig,
    default_config_path,
    load_config,
)
from tests.support.proc import ROOT

GIB = 1024**3


def write(tmp_path: Path, text: str, name: str = "reactor.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def failing(path: Path | str | None = None, env: dict[str, str] | None = None) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        load_config(path, env=env or {})
    return caught.value


@pytest.fixture(autouse=True)
def no_user_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Point the user config directory somewhere empty, whatever the machine has."""
    monkeypatch.setattr(
        "actors.llm._config.default_config_path", lambda: tmp_path / "no-such-dir" / "config.toml"
    )


# ---- defaults -------------------------------------------------------------------------


def test_no_file_and_no_environment_gives_the_defaults() -> None:
    """Nothing configured is a valid configuration."""
    config = load_config(env={})
    assert config.source is None
    assert config.hosts == {}
    assert config.prices == {}
    assert config.breaker == BreakerConfig()
    assert config.breaker.failure_threshold == 5
    assert config.breaker.counted == {
        FailureKind.TIMEOUT,
        FailureKind.SERVER_ERROR,
        FailureKind.OVERLOADED,
        FailureKind.CONNECTION,
        FailureKind.INVALID_RESPONSE,
        FailureKind.RATE_LIMITED,
        FailureKind.AUTH,
    }
    assert FailureKind.BAD_REQUEST not in config.breaker.counted
    assert config.resources.budget() is None
    assert config.resources.poll_s == 5.0
    assert config.resources.nvml
    assert config.discovery.enabled
    assert config.discovery.default_ports
    assert config.discovery.timeout_s == 0.5


def test_default_path_is_used_when_it_exists(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Without a path or $REACTOR_CONFIG, the user config file is read if present."""
    path = write(tmp_path, "[resources]\npoll_s = 2.5\n", "config.toml")
    monkeypatch.setattr("actors.llm._config.default_config_path", lambda: path)
    config = load_config(env={})
    assert config.source == path
    assert config.resources.poll_s == 2.5


def test_default_config_path_is_in_the_user_config_dir() -> None:
    """The real default (imported before the fixture patched the module) is per user."""
    import platformdirs

    expected = Path(platformdirs.user_config_dir("reactor-swarm", appauthor=False))
    assert default_config_path() == expected / "config.toml"


# ---- a valid file ---------------------------------------------------------------------


def test_valid_file_is_read(tmp_path: Path) -> None:
    """Hosts, per-host breaker overrides, prices, resources and discovery."""
    path = write(
        tmp_path,
        """
[hosts.local]
url = "http://127.0.0.1:1234"
protocol = "lmstudio"
max_parallel = 2
headers = { "x-team" = "a" }
models = ["m1"]

[hosts.local.breaker]
failure_threshold = 2

[hosts.cloud]
url = "https://api.example.com/v1"
api_key = "sk-secret"

[breaker]
open_s = 1.5
counted = ["timeout", "connection"]

[prices.m1]
input_per_mtok = 1.0
output_per_mtok = 2.0

[resources]
budget_gb = 1.5

[discovery]
urls = ["http://10.0.0.2:11434"]
""",
    )
    config = load_config(path, env={})
    assert config.source == path
    local = config.hosts["local"]
    assert (local.url, local.protocol, local.max_parallel) == (
        "http://127.0.0.1:1234",
        "lmstudio",
        2,
    )
    assert local.header_values() == {"x-team": "a"}
    assert local.models == ("m1",)
    assert (local.queue_limit, local.timeout_s, local.connect_timeout_s) == (1000, 120.0, 5.0)
    assert local.stream_idle_timeout_s == 60.0
    assert config.hosts["cloud"].protocol is None
    assert config.hosts["cloud"].resolved_api_key(env={}) == "sk-secret"
    assert "sk-secret" not in repr(config)
    assert config.breaker.counted == {FailureKind.TIMEOUT, FailureKind.CONNECTION}
    # The host's breaker overrides only the fields it sets.
    merged = config.host("local").breaker
    assert merged is not None
    assert (merged.failure_threshold, merged.open_s) == (2, 1.5)
    assert merged.counted == {FailureKind.TIMEOUT, FailureKind.CONNECTION}
    assert config.host("cloud").breaker == config.breaker
    found = HostConfig(url="http://127.0.0.1:9")  # discovered: not in the file
    assert config.host("unknown", found).breaker == config.breaker
    assert config.resources.budget() == int(1.5 * GIB)
    assert config.discovery.urls == ["http://10.0.0.2:11434"]


def test_example_file_loads() -> None:
    """examples/reactor.toml is valid and shows every section."""
    config = load_config(ROOT / "examples" / "reactor.toml", env={})
    assert set(config.hosts) == {"local", "ollama", "llama", "claude"}
    assert config.hosts["claude"].api_key_env == "ANTHROPIC_API_KEY"
    llama = config.hosts["llama"]
    assert llama.server == "llama-cpp-python"
    assert llama.aliases == {"gpt-4o": "qwen2.5-7b-instruct.gguf"}
    assert llama.context_windows == {"qwen2.5-7b-instruct.gguf": 4096}
    ollama = config.host("ollama")
    assert ollama.num_ctx == 16384
    assert ollama.breaker is not None
    assert ollama.breaker.failure_threshold == 3
    assert "claude-sonnet-4-5" in config.host("claude").prices
    assert config.resources.budget() == 20 * GIB
    assert config.discovery.urls
    assert config.tools.audit_retention_days == 90
    assert config.mcp_servers["files"].command == "npx"
    assert config.mcp_servers["tickets"].needs_approval
    assert config.models["qwen2.5-7b-instruct"].strengths == ("code",)
    assert config.aliases["coder"] == "local/qwen2.5-7b-instruct"
    assert config.selection.policies["careful"].pin == {"code": "coder"}
    assert [limit.scope for limit in config.budgets.limits] == ["global", "run", "reactor"]
    assert config.prices["ollama/llama3.2"].per_gpu_second == 0.0002
    assert config.fallback.chains["local-first"].content_policy_chain == "moderated"


def test_example_file_names_every_field() -> None:
    """The README says examples/reactor.toml documents every field: each one is in it."""
    text = (ROOT / "examples" / "reactor.toml").read_text(encoding="utf-8")
    seen: set[type[BaseModel]] = set()
    missing: list[str] = []

    def walk(section: type[BaseModel], where: str) -> None:
        if section in seen:
            return
        seen.add(section)
        for name, field in section.model_fields.items():
            alias = field.validation_alias
            spellings = {name, *(alias.choices if isinstance(alias, AliasChoices) else ())}
            if not any(re.search(rf"\b{re.escape(str(s))}\b", text) for s in spellings):
                missing.append(f"{where}{name}")
            for inner in _section_types(field.annotation):
                walk(inner, f"{where}{name}.")

    walk(Config, "")
    assert missing == []


def _section_types(annotation: object) -> list[type[BaseModel]]:
    """The configuration sections an annotation holds (``X``, ``X | None``, ``dict[str, X]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [inner for arg in typing.get_args(annotation) for inner in _section_types(arg)]


def test_a_content_policy_chain_must_name_a_chain(tmp_path: Path) -> None:
    """A chain's content_policy_chain that names no chain is an error naming both."""
    path = write(
        tmp_path,
        "[fallback.chains.main]\nlinks = ['a']\ncontent_policy_chain = 'safe'\n",
    )
    with pytest.raises(ConfigError, match="names 'safe', which is not a chain"):
        load_config(path, env={})
    path = write(tmp_path, "[fallback.chains.main]\nlinks = []\non = {timeout = 'panic'}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert [p for p, _ in caught.value.problems] == [
        "fallback.chains.main.links",
        "fallback.chains.main.on.timeout",
    ]


def test_reactor_config_variable_names_the_file(tmp_path: Path) -> None:
    """$REACTOR_CONFIG is used when no path is given."""
    path = write(tmp_path, "[breaker]\nwindow = 30\n")
    config = load_config(env={"REACTOR_CONFIG": str(path)})
    assert config.breaker.window == 30
    assert config.source == path


# ---- errors ---------------------------------------------------------------------------


def test_missing_named_file_is_an_error(tmp_path: Path) -> None:
    """A path that was asked for and is not there fails, naming it."""
    missing = tmp_path / "nope.toml"
    error = failing(missing)
    assert str(missing) in str(error)
    assert "not found" in str(error)
    error = failing(env={"REACTOR_CONFIG": str(missing)})
    assert "REACTOR_CONFIG" in str(error)


def test_toml_syntax_error_names_the_file_and_line(tmp_path: Path) -> None:
    """Broken TOML is a ConfigError (a ValueError) naming the file and where."""
    path = write(tmp_path, '[hosts.local]\nurl = "http://x\n')
    error = failing(path)
    assert isinstance(error, ValueError)
    assert str(path) in str(error)
    assert "not valid TOML" in str(error)
    assert "line 2" in str(error)
    assert error.path == path


def test_every_bad_field_is_named_with_its_reason(tmp_path: Path) -> None:
    """Range, type, URL, literal, enum and cross-field errors, all at once."""
    path = write(
        tmp_path,
        """
[hosts.local]
url = "ftp://127.0.0.1"
max_parallel = 0
protocol = "grpc"
timeout_s = "soon"

[breaker]
failure_rate = 1.5
counted = ["timeout", "bogus"]

[prices.m]
input_per_mtok = -1
output_per_mtok = 0

[resources]
budget_bytes = 100
budget_gb = 1
""",
    )
    error = failing(path)
    text = str(error)
    assert text.startswith(f"{path}: 8 invalid settings")
    problems = dict(error.problems)
    assert problems["hosts.local.max_parallel"] == "Input should be greater than or equal to 1"
    assert "http:// or https://" in problems["hosts.local.url"]
    assert "'openai'" in problems["hosts.local.protocol"]
    assert "hosts.local.timeout_s" in problems
    assert "less than or equal to 1" in problems["breaker.failure_rate"]
    assert "'server_error'" in problems["breaker.counted[1]"]  # lists the valid kinds
    assert "prices.m.input_per_mtok" in problems
    assert problems["resources"] == "set budget_bytes or budget_gb, not both"
    assert "hosts.local.max_parallel: Input should be greater than or equal to 1" in text


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    """extra="forbid" everywhere: a typo names the field and the likely intent."""
    path = write(
        tmp_path,
        '[hosts.local]\nurl = "http://h:1"\nmax_paralel = 3\n'
        "[hosts.local.breaker]\nopen_secs = 1\n[breakr]\nwindow = 1\n",
    )
    problems = dict(failing(path).problems)
    assert problems["hosts.local.max_paralel"] == (
        "Extra inputs are not permitted (did you mean max_parallel?)"
    )
    assert "did you mean open_s?" in problems["hosts.local.breaker.open_secs"]
    assert "did you mean breaker?" in problems["breakr"]


def test_required_and_cross_field_errors(tmp_path: Path) -> None:
    """A host without a URL; a breaker whose min_calls exceeds its window."""
    path = write(tmp_path, "[hosts.a]\nprotocol = 'ollama'\n[breaker]\nwindow = 5\nmin_calls = 6\n")
    problems = dict(failing(path).problems)
    assert problems["hosts.a.url"] == "Field required"
    assert "min_calls (6) must not exceed window (5)" in problems["breaker"]


def test_bad_host_name_is_an_error(tmp_path: Path) -> None:
    """Host names may not contain '/' (prices use host/model)."""
    path = write(tmp_path, '[hosts."a/b"]\nurl = "http://x:1"\n')
    assert "'a/b'" in dict(failing(path).problems)["hosts"]


# ---- environment overrides ------------------------------------------------------------


def test_env_overrides_the_file_including_nested_host_fields(tmp_path: Path) -> None:
    """REACTOR_<SECTION>__<FIELD>[__<SUBFIELD>] with JSON or text values."""
    path = write(tmp_path, '[hosts.Local]\nurl = "http://127.0.0.1:1"\n[breaker]\nwindow = 30\n')
    env = {
        "REACTOR_BREAKER__FAILURE_THRESHOLD": "3",
        "reactor_breaker__counted": '["timeout"]',
        "REACTOR_HOSTS__LOCAL__MAX_PARALLEL": "8",  # matches [hosts.Local] whatever the case
        "REACTOR_HOSTS__LOCAL__BREAKER__OPEN_S": "0.5",
        "REACTOR_HOSTS__NEW__URL": "http://127.0.0.1:1234",
        "REACTOR_RESOURCES__BUDGET_GB": "20",
        "REACTOR_RESOURCES__NVML": "false",
        "REACTOR_DISCOVERY": '{"enabled": false}',
        "REACTOR_DB": "/tmp/x.db",  # not a setting
        "REACTOR_LOG_LEVEL": "debug",  # not a setting either (no double underscore)
        "OTHER__THING": "1",
    }
    config = load_config(path, env=env)
    assert config.breaker.failure_threshold == 3
    assert config.breaker.window == 30  # the file's value stays
    assert config.breaker.counted == {FailureKind.TIMEOUT}
    assert config.hosts["Local"].max_parallel == 8
    assert config.host("Local").breaker == config.breaker.model_copy(update={"open_s": 0.5})
    assert config.hosts["new"].url == "http://127.0.0.1:1234"
    assert config.resources.budget() == 20 * GIB
    assert config.resources.nvml is False
    assert config.discovery.enabled is False


def test_env_override_without_a_file() -> None:
    """Overrides apply to the defaults too."""
    config = load_config(env={"REACTOR_HOSTS__LOCAL__URL": "http://127.0.0.1:1234"})
    assert config.hosts["local"].url == "http://127.0.0.1:1234"
    assert config.source is None


def test_env_text_that_looks_like_a_number_stays_text() -> None:
    """A numeric API key is kept exactly as written."""
    env = {
        "REACTOR_HOSTS__H__URL": "http://h:1",
        "REACTOR_HOSTS__H__API_KEY": "1.50",
        "REACTOR_HOSTS__H__MODELS": '["a", "b"]',
    }
    host = load_config(env=env).hosts["h"]
    assert host.resolved_api_key(env={}) == "1.50"
    assert host.models == ("a", "b")


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    """An invalid override is a ConfigError naming the field and the variable."""
    path = write(tmp_path, '[hosts.local]\nurl = "http://h:1"\n')
    error = failing(path, env={"REACTOR_HOSTS__LOCAL__MAX_PARALLEL": "lots"})
    assert str(path) in str(error)
    reason = dict(error.problems)["hosts.local.max_parallel"]
    assert "REACTOR_HOSTS__LOCAL__MAX_PARALLEL" in reason
    error = failing(env={"REACTOR_BREAKER__FAILURE_THRESHOLD": "0"})
    assert "REACTOR_BREAKER__FAILURE_THRESHOLD" in str(error)
    assert "defaults and environment" in str(error)
    error = failing(env={"REACTOR_BREAKER__OPENS": "1"})
    assert "did you mean open_s?" in str(error)
    assert "REACTOR_BREAKER__OPENS" in str(error)


def test_bad_env_names_are_errors(tmp_path: Path) -> None:
    """An unknown section, an empty level, or a field under a value are errors."""
    error = failing(env={"REACTOR_BREAKR__WINDOW": "3"})
    assert "REACTOR_BREAKR__WINDOW" in str(error)
    assert "unknown configuration section 'breakr'" in str(error)
    assert "REACTOR_BREAKER____WINDOW" in str(failing(env={"REACTOR_BREAKER____WINDOW": "3"}))
    error = failing(env={"REACTOR_RESOURCES__POLL_S__X": "3", "REACTOR_RESOURCES__POLL_S": "1"})
    assert "not a table" in str(error)


# ---- prices and keys ------------------------------------------------------------------


def test_a_hosts_prices_are_its_own_then_host_model_then_model() -> None:
    """The host's own prices win over host/model, which wins over model; unpriced is absent."""
    url = "http://127.0.0.1:9"
    config = Config.model_validate(
        {
            "hosts": {
                "local": {"url": url},
                "cloud": {"url": url},
                "own": {"url": url, "prices": {"m": {"input_per_mtok": 9, "output_per_mtok": 9}}},
            },
            "prices": {
                "m": {"input_per_mtok": 1.0, "output_per_mtok": 2.0},
                "local/m": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
                "local/n": {"input_per_mtok": 0.1, "output_per_mtok": 0.2},
                "qwen/qwen3-8b": {"input_per_mtok": 0.5, "output_per_mtok": 0.5},
                "lms/org/model": {"input_per_mtok": 0.3, "output_per_mtok": 0.3},
            },
        }
    )
    local = config.host("local").prices
    assert local["m"] == PriceConfig(input_per_mtok=0.1, output_per_mtok=0.2)
    cloud = config.host("cloud").prices
    assert cloud["m"] == PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)
    assert "other" not in cloud
    assert "local/n" not in cloud  # another host's price
    assert config.host("own").prices["m"].input_per_mtok == 9
    # Model ids may contain '/' themselves (LM Studio, vLLM).
    lms = config.host("lms", HostConfig(url=url)).prices
    assert {"qwen/qwen3-8b", "org/model"} <= set(lms)


def test_the_one_price_formula_is_per_million_tokens() -> None:
    """Input and output tokens at their own prices, per million."""
    price = PriceConfig(input_per_mtok=1.0, output_per_mtok=2.0)
    usage = Usage(input_tokens=1_000_000, output_tokens=500_000)
    assert price.cost(usage) == pytest.approx(2.0)


def test_sections_are_frozen() -> None:
    """Settings handed to a host never change under it."""
    host = HostConfig(url="http://127.0.0.1:9")
    with pytest.raises(ValidationError):
        host.max_parallel = 9


def test_api_key_env_is_resolved_from_the_environment() -> None:
    """api_key wins; else the variable named by api_key_env; else None."""
    config = Config.model_validate(
        {
            "hosts": {
                "a": {"url": "https://a", "api_key_env": "A_KEY"},
                "b": {"url": "https://b", "api_key": "direct", "api_key_env": "A_KEY"},
                "c": {"url": "https://c"},
            }
        }
    )
    env = {"A_KEY": "from-env"}
    assert config.hosts["a"].resolved_api_key(env) == "from-env"
    assert config.hosts["a"].resolved_api_key({}) is None
    assert config.hosts["b"].resolved_api_key(env) == "direct"
    assert config.hosts["c"].resolved_api_key(env) is None


def test_api_key_env_reads_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without an explicit mapping, the process environment is used."""
    monkeypatch.setenv("REACTOR_TEST_KEY_XYZ", "k")
    config = Config.model_validate(
        {"hosts": {"a": {"url": "https://a", "api_key_env": "REACTOR_TEST_KEY_XYZ"}}}
    )
    assert config.hosts["a"].resolved_api_key() == "k"


# ---- secrets and strictness -------------------------------------------------------------


def test_printing_settings_masks_the_key_and_header_values() -> None:
    """repr, str and model_dump (both modes) never show api_key or a header's value."""
    host = HostConfig.model_validate(
        {
            "url": "https://api.example",
            "api_key": "sk-live-123",
            "headers": {"Authorization": "Bearer tok-9"},
        }
    )
    config = Config(hosts={"cloud": host})
    for shown in (
        repr(host),
        str(host),
        str(host.model_dump()),
        str(host.model_dump(mode="json")),
        host.model_dump_json(),
        repr(config),
        str(config.model_dump()),
        config.model_dump_json(),
    ):
        assert "sk-live-123" not in shown
        assert "tok-9" not in shown
        assert "**********" in shown
    # The code that uses them still gets them.
    assert host.resolved_api_key() == "sk-live-123"
    assert host.header_values() == {"Authorization": "Bearer tok-9"}
    assert config.host("cloud").header_values() == {"Authorization": "Bearer tok-9"}


def test_credentials_in_a_url_are_refused_with_the_password_masked(tmp_path: Path) -> None:
    """http://user:pass@host is a clear configuration error that never shows the password."""
    path = write(tmp_path, '[hosts.gpu]\nurl = "http://ada:hunter2@gpu-box:8080"\n')
    error = failing(path)
    assert "hosts.gpu.url: 'http://ada:***@gpu-box:8080' has credentials in it" in str(error)
    assert "hunter2" not in str(error)
    with pytest.raises(ValidationError) as caught:
        HostConfig(url="http://ada:hunter2@gpu-box:8080")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("hosts.local", "max_parallel"),
        ("hosts.local", "queue_limit"),
        ("hosts.local", "timeout_s"),
        ("breaker", "failure_threshold"),
        ("breaker", "open_s"),
        ("resources", "budget_bytes"),
        ("discovery", "timeout_s"),
    ],
)
def test_true_is_not_a_number(tmp_path: Path, section: str, field: str) -> None:
    """`max_parallel = true` is an error, not 1 (numbers are strict)."""
    url = 'url = "http://127.0.0.1:1"\n' if section.startswith("hosts") else ""
    path = write(tmp_path, f"[{section}]\n{url}{field} = true\n")
    assert f"{section}.{field}: Input should be a valid" in str(failing(path))
    env_var = "REACTOR_" + "__".join(part.upper() for part in [*section.split("."), field])
    env = {env_var: "true"}
    if section.startswith("hosts"):
        env["REACTOR_HOSTS__LOCAL__URL"] = "http://127.0.0.1:1"
    assert f"{section}.{field}" in str(failing(None, env))


def test_a_list_variable_that_is_not_json_says_a_json_list_is_expected() -> None:
    """REACTOR_DISCOVERY__URLS=http://x names the variable and the JSON form it needs."""
    message = str(failing(None, {"REACTOR_DISCOVERY__URLS": "http://x"}))
    assert "discovery.urls" in message
    assert "REACTOR_DISCOVERY__URLS" in message
    assert "a JSON list is expected, e.g. REACTOR_DISCOVERY__URLS='[" in message
    config = load_config(env={"REACTOR_DISCOVERY__URLS": '["http://x"]'})
    assert config.discovery.urls == ["http://x"]


def test_mask_url_hides_only_the_password() -> None:
    """For printing a URL: the password (or a lone user token) becomes ***."""
    from actors.llm import mask_url

    assert mask_url("http://ada:hunter2@gpu:8080/v1") == "http://ada:***@gpu:8080/v1"
    assert mask_url("https://token@api.example") == "https://***@api.example"
    assert mask_url("http://127.0.0.1:1234") == "http://127.0.0.1:1234"
    assert mask_url("http://[::1") == "http://[::1"


def test_num_ctx_is_an_ollama_setting(tmp_path: Path) -> None:
    """num_ctx: a positive whole number, on a host that speaks Ollama (or not yet known)."""
    ok = write(
        tmp_path,
        '[hosts.a]\nurl = "http://127.0.0.1:11434"\nprotocol = "ollama"\nnum_ctx = 8192\n'
        '[hosts.b]\nurl = "http://127.0.0.1:11435"\nnum_ctx = 2048\n',
    )
    config = load_config(ok, env={})
    assert (config.hosts["a"].num_ctx, config.hosts["b"].num_ctx) == (8192, 2048)
    bad = write(
        tmp_path,
        '[hosts.a]\nurl = "http://127.0.0.1:1234"\nprotocol = "openai"\nnum_ctx = 8192\n'
        '[hosts.b]\nurl = "http://127.0.0.1:11434"\nprotocol = "ollama"\nnum_ctx = 0\n'
        '[hosts.c]\nurl = "http://127.0.0.1:11435"\nprotocol = "ollama"\nnum_ctx = "4k"\n',
        name="bad.toml",
    )
    problems = dict(failing(bad).problems)
    assert "num_ctx is an Ollama setting" in problems["hosts.a"]
    assert set(problems) == {"hosts.a", "hosts.b.num_ctx", "hosts.c.num_ctx"}
