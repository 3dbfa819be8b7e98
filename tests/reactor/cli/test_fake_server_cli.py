"""`reactor fake-server`: flavours and faults from the command line, and clear errors."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from tests.support.proc import ROOT, run_python


@contextmanager
def serving(*args: str) -> Iterator[str]:
    """``reactor fake-server ARGS`` in a subprocess; yields its URL once it serves."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "reactor", "fake-server", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "server on http://127.0.0.1:" in line, line
        yield next(part for part in line.split() if part.startswith("http://"))
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()


def chat_body(stream: bool = False) -> dict[str, object]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}


def test_rate_limit_with_retry_after_for_the_first_request_only() -> None:
    """--status 429 --retry-after 2 --fault-times 1: one 429 with the header, then 200."""
    with serving("--protocol", "openai", "--models", "m", "--status", "429",
                 "--retry-after", "2", "--fault-times", "1") as url:  # fmt: skip
        first = httpx.post(f"{url}/v1/chat/completions", json=chat_body(), timeout=5)
        second = httpx.post(f"{url}/v1/chat/completions", json=chat_body(), timeout=5)
    assert first.status_code == 429
    assert first.headers["retry-after"] == "2"
    assert first.json()["error"]["code"] == "rate_limit_exceeded"
    assert second.status_code == 200


def test_llama_cpp_python_flavour_with_malformed_and_empty_streams() -> None:
    """The flavour is a protocol name; --malformed and --empty-stream misbehave as told."""
    with serving("--protocol", "llama-cpp-python", "--models", "m", "--empty-stream") as url:
        models = httpx.get(f"{url}/v1/models", timeout=5).json()
        stream = httpx.post(f"{url}/v1/chat/completions", json=chat_body(True), timeout=5)
    assert models["data"][0]["owned_by"] == "me"
    assert stream.status_code == 200
    assert stream.content == b""
    with serving("--protocol", "openai", "--models", "m", "--malformed") as url:
        broken = httpx.post(f"{url}/v1/chat/completions", json=chat_body(), timeout=5)
    assert broken.status_code == 200
    assert broken.content.endswith(b"}{")


def test_a_port_out_of_range_is_one_line_and_exit_2() -> None:
    """--port 99999 is refused with one line on standard error, no traceback."""
    result = run_python("-m", "reactor", "fake-server", "--protocol", "openai", "--port", "99999")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "reactor fake-server: error: --port must be 0 to 65535, not 99999"
    ]


def test_a_port_in_use_is_one_line_and_exit_2() -> None:
    """A port another process listens on is refused with one line, no traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_python(
            "-m", "reactor", "fake-server", "--protocol", "openai", "--port", str(port)
        )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"reactor fake-server: error: cannot listen on 127.0.0.1:{port}: ")
    assert "in use" in line


def test_fault_values_that_mean_nothing_are_refused_before_serving() -> None:
    """A status outside 100-599, negative seconds or zero times: exit 2, naming the option."""
    refused = {
        ("--status", "99"): "argument --status: 99 is not an HTTP status (100 to 599)",
        ("--retry-after", "-1"): "argument --retry-after: -1 is not a number of seconds >= 0",
        ("--fault-times", "0"): "argument --fault-times: 0 is not a whole number >= 1",
        ("--latency", "soon"): "argument --latency: 'soon' is not a number of seconds >= 0",
    }
    for option, message in refused.items():
        result = run_python(
            "-m", "reactor", "fake-server", "--protocol", "openai", *option, timeout=20
        )
        assert result.returncode == 2, option
        assert result.stderr.splitlines()[-1] == f"reactor fake-server: error: {message}"


def test_refuses_scripts_a_model_that_refuses_fields_as_openai_s_reasoning_models_do() -> None:
    """--refuses m=temperature --refuses m=stop: 400s naming each field; others answered."""
    with serving("--protocol", "lmstudio", "--models", "m,other",
                 "--refuses", "m=temperature", "--refuses", "m=stop") as url:  # fmt: skip
        chat = f"{url}/v1/chat/completions"
        warm = httpx.post(chat, json={**chat_body(), "temperature": 0.7}, timeout=5)
        stop = httpx.post(chat, json={**chat_body(), "stop": ["X"]}, timeout=5)
        native = httpx.post(f"{url}/api/v0/chat/completions", json={**chat_body(), "stop": ["X"]})
        plain = httpx.post(chat, json={**chat_body(), "temperature": 1}, timeout=5)
        other = {**chat_body(), "model": "other", "temperature": 0.7, "stop": ["X"]}
        untouched = httpx.post(chat, json=other, timeout=5)
    assert warm.status_code == 400
    assert warm.json()["error"]["param"] == "temperature"
    assert warm.json()["error"]["code"] == "unsupported_value"
    assert stop.status_code == 400
    assert stop.json()["error"]["param"] == "stop"
    assert stop.json()["error"]["code"] == "unsupported_parameter"
    assert native.status_code == 400
    assert plain.status_code == 200  # 1 is the one temperature such a model takes
    assert untouched.status_code == 200


def test_refusals_the_fake_cannot_play_are_refused_before_serving() -> None:
    """A malformed value, a model not served, a field every request needs, a non-OpenAI fake."""
    refused = {
        ("--refuses", "temperature"): "argument --refuses: 'temperature' is not "
        "MODEL=FIELD[,FIELD...] (e.g. gpt-5-mini=temperature,stop)",
        ("--refuses", "m="): "argument --refuses: 'm=' is not MODEL=FIELD[,FIELD...] "
        "(e.g. gpt-5-mini=temperature,stop)",
        ("--refuses", "m=top p"): "argument --refuses: 'top p' (in 'm=top p') is not a "
        "request field's name",
        ("--refuses", "m=messages"): "argument --refuses: m cannot refuse 'messages': "
        "every chat request carries it",
        ("--refuses", "gpt-5=stop"): "--refuses: no model 'gpt-5' here (the models: m; "
        "see --models)",
        ("--protocol", "anthropic", "--refuses", "m=stop"): "--refuses: the anthropic fake "
        "refuses no fields; the OpenAI-protocol ones do (llama-cpp-python, llamacpp, "
        "lmstudio, openai, vllm)",
    }
    for option, message in refused.items():
        protocol = () if "--protocol" in option else ("--protocol", "openai")
        result = run_python(
            "-m", "reactor", "fake-server", *protocol, "--models", "m", *option, timeout=20
        )
        assert result.returncode == 2, option
        assert result.stderr.splitlines()[-1] == f"reactor fake-server: error: {message}"
