"""A host over HTTPS with a company's own CA, or behind an HTTP proxy, on both transports.

Real TLS on loopback: a CA of the test's own signs the fake server's certificate for
127.0.0.1, so a client trusts it only when told to (``ca_file``, ``SSL_CERT_FILE``) or
told to check nothing (``verify_tls = false``). The proxy is a real forwarding proxy on
loopback that records each request it passes on.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from structlog.testing import capture_logs

from actors import AskError, FailureKind, System
from actors.llm import ChatRequest, Config, HostConfig, discover_sync, start_fleet
from actors.testing import FakeServer, Reply
from tests.support.hosts import chat, start_host
from tests.support.proxy import ForwardProxy, TunnelProxy
from tests.support.tls import Certificates, make_certificates

TRANSPORTS = ["aiohttp", "httpx"]


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def https(certs: Certificates) -> Iterator[FakeServer]:
    with FakeServer("openai", models=["m"], tls=certs.server_context()) as server:
        yield server


def _settings(url: str, **more: Any) -> HostConfig:
    base: dict[str, Any] = {"url": url, "protocol": "openai", "timeout_s": 5.0}
    return HostConfig.model_validate({**base, "connect_timeout_s": 2.0, **more})


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_https_with_the_hosts_ca_file_answers_whole_and_streamed(
    system: System, https: FakeServer, certs: Certificates, transport: str
) -> None:
    assert https.url.startswith("https://127.0.0.1:")
    start_host(system, _settings(https.url, ca_file=str(certs.ca), transport=transport))
    https.script(Reply(text="over TLS"), Reply(text="streamed over TLS"))
    assert chat(system, "local", "hello", model="m").content == "over TLS"
    streamed = chat(system, "local", ChatRequest.prompt("m", "hello", stream=True))
    assert streamed.content == "streamed over TLS"


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_untrusted_certificate_is_refused_as_a_connection_failure(
    system: System, https: FakeServer, transport: str
) -> None:
    start_host(system, _settings(https.url, transport=transport))
    with pytest.raises(AskError) as caught:
        chat(system, "local", "hello", model="m")
    assert caught.value.failure.kind is FailureKind.CONNECTION
    assert "CERTIFICATE_VERIFY_FAILED" in caught.value.failure.message
    assert https.calls == []


def test_ssl_cert_file_is_trusted_too(
    system: System, https: FakeServer, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    start_host(system, _settings(https.url))
    https.script(Reply(text="trusted by the environment"))
    assert chat(system, "local", "hello", model="m").content == "trusted by the environment"


def test_discovery_trusts_ssl_cert_file_too(
    https: FakeServer, certs: Certificates, monkeypatch: pytest.MonkeyPatch
) -> None:
    [refused] = discover_sync([https.url], default_ports=False, timeout=2.0)
    assert not refused.server
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca))
    [found] = discover_sync([https.url], default_ports=False, timeout=2.0)
    assert (found.server, [m.id for m in found.models]) == ("openai-compatible", ["m"])


def test_verify_tls_false_accepts_any_certificate_and_says_so(
    system: System, https: FakeServer
) -> None:
    with capture_logs() as logs:
        start_host(system, _settings(https.url, verify_tls=False))
    https.script(Reply(text="unchecked"))
    assert chat(system, "local", "hello", model="m").content == "unchecked"
    warned = [e for e in logs if "TLS certificates are not checked" in e["event"]]
    assert [(e["log_level"], e["url"]) for e in warned] == [("warning", https.url)]


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_a_server_that_asks_for_a_client_certificate_gets_the_hosts(
    system: System, certs: Certificates, transport: str
) -> None:
    """Mutual TLS: ``client_cert`` and ``client_key`` are presented; without them, refused."""
    with FakeServer("openai", models=["m"], tls=certs.server_context(require_client=True)) as srv:
        mutual = _settings(
            srv.url,
            ca_file=str(certs.ca),
            client_cert=str(certs.client_cert),
            client_key=str(certs.client_key),
            transport=transport,
        )
        start_host(system, mutual, name="mutual")
        start_host(system, _settings(srv.url, ca_file=str(certs.ca), transport=transport))
        srv.script(Reply(text="known client"))
        assert chat(system, "mutual", "hello", model="m").content == "known client"
        with pytest.raises(AskError) as caught:
            chat(system, "local", "hello", model="m")
        assert caught.value.failure.kind is FailureKind.CONNECTION
        assert len(srv.calls) == 1


def test_a_configured_host_without_a_protocol_is_recognised_over_https(
    system: System, https: FakeServer, certs: Certificates
) -> None:
    """The start-up probe of a host whose protocol is not given uses its TLS settings."""
    config = Config.model_validate(
        {
            "discovery": {"enabled": False},
            "resources": {"nvml": False},
            "hosts": {"secure": {"url": https.url, "ca_file": str(certs.ca)}},
        }
    )
    fleet = start_fleet(system, config, discovery=False)
    try:
        assert fleet.warnings == []
        assert fleet.inventories["secure"].server
        https.script(Reply(text="found"))
        assert chat(system, "secure", "hello", model="m").content == "found"
    finally:
        fleet.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_every_request_goes_through_the_hosts_proxy(system: System, transport: str) -> None:
    with FakeServer("openai", models=["m"]) as server, ForwardProxy() as proxy:
        proxied = proxy.url.replace("http://", "http://ada:secret@")
        start_host(system, _settings(server.url, proxy=proxied, transport=transport))
        server.script(Reply(text="via the proxy"), Reply(text="streamed via the proxy"))
        assert chat(system, "local", "hello", model="m").content == "via the proxy"
        streamed = chat(system, "local", ChatRequest.prompt("m", "hello", stream=True))
        assert streamed.content == "streamed via the proxy"
        chats = [p for p in proxy.seen if p.url.endswith("/v1/chat/completions")]
        assert [p.url for p in chats] == [f"{server.url}/v1/chat/completions"] * 2
        assert all(p.proxy_authorization == "Basic YWRhOnNlY3JldA==" for p in chats)
        assert len(server.calls) == len(chats)


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_an_https_host_behind_a_proxy_is_reached_through_a_tunnel(
    system: System, https: FakeServer, certs: Certificates, transport: str
) -> None:
    """An https:// target through the proxy: CONNECT, then TLS end to end to the server."""
    with TunnelProxy() as proxy:
        proxied = proxy.url.replace("http://", "http://ada:secret@")
        settings = _settings(https.url, ca_file=str(certs.ca), proxy=proxied, transport=transport)
        start_host(system, settings)
        https.script(Reply(text="tunnelled"), Reply(text="streamed through the tunnel"))
        assert chat(system, "local", "hello", model="m").content == "tunnelled"
        streamed = chat(system, "local", ChatRequest.prompt("m", "hello", stream=True))
        assert streamed.content == "streamed through the tunnel"
        assert proxy.seen, "no request went through the proxy"
        target = https.url.removeprefix("https://")
        assert {(p.method, p.url) for p in proxy.seen} == {("CONNECT", target)}
        assert all(p.proxy_authorization == "Basic YWRhOnNlY3JldA==" for p in proxy.seen)
        assert len(https.calls) == 2


@pytest.mark.parametrize(
    ("more", "field", "says"),
    [
        ({"ca_file": "missing.pem"}, "hosts.h.ca_file", "no file"),
        ({"ca_file": "notes.txt"}, "hosts.h.ca_file", "not a PEM file of CA certificates"),
        ({"ca_file": "ca.pem", "verify_tls": False}, "hosts.h\n", "verify_tls is false"),
        ({"proxy": "socks5://127.0.0.1:1080"}, "hosts.h.proxy", "http:// or https:// proxy"),
        ({"verify_tls": "no"}, "hosts.h.verify_tls", "valid boolean"),
        ({"client_cert": "missing.pem"}, "hosts.h.client_cert", "no file"),
        ({"client_key": "ca.pem"}, "hosts.h\n", "client_key is given without client_cert"),
        ({"client_cert": "ca.pem"}, "hosts.h\n", "cannot be loaded"),
    ],
)
def test_bad_tls_and_proxy_settings_name_the_field(
    tmp_path: Path, certs: Certificates, more: dict[str, Any], field: str, says: str
) -> None:
    (tmp_path / "notes.txt").write_text("not a certificate")
    (tmp_path / "ca.pem").write_bytes(certs.ca.read_bytes())
    for name in ("ca_file", "client_cert", "client_key"):
        if name in more:
            more = {**more, name: str(tmp_path / more[name])}
    host: dict[str, Any] = {"url": "https://127.0.0.1:1", **more}
    with pytest.raises(ValidationError) as caught:
        Config.model_validate({"hosts": {"h": host}})
    text = str(caught.value)
    assert field in text, text
    assert says in text, text


def test_a_proxys_credentials_are_never_printed() -> None:
    host = _settings("http://127.0.0.1:1", proxy="http://ada:secret@proxy.example:3128")
    assert "secret" not in repr(host)
    assert "secret" not in str(host.model_dump())
    assert host.proxy_url() == "http://ada:secret@proxy.example:3128"
