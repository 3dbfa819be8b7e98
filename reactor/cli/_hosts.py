"""``reactor discover`` and ``reactor fake-server``: find LLM servers, or start a fake one."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

import msgspec
from pydantic import ValidationError

from actors.llm import (
    DEFAULT_ENDPOINTS,
    DiscoveryConfig,
    HostInventory,
    ModelInfo,
    discover_sync,
)

__all__ = ["format_inventory", "run_discover", "run_fake_server"]


def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _loaded(model: ModelInfo) -> str:
    return {True: "loaded", False: "not loaded", None: "-"}[model.loaded]


def format_inventory(inventories: Sequence[HostInventory]) -> str:
    """A plain-text table: one block per endpoint, one row per model."""
    lines: list[str] = []
    for inv in inventories:
        if not inv.reachable:
            lines.append(f"{inv.url}  -  {inv.error or 'unreachable'}")
            continue
        title = f"{inv.url}  {inv.server}" + (f" {inv.version}" if inv.version else "")
        title += f"  (protocol {inv.provider})" if inv.provider else ""
        lines.append(title)
        if inv.error:
            lines.append(f"  error: {inv.error}")
        rows = [("MODEL", "STATE", "CONTEXT", "SIZE", "VRAM", "CAPABILITIES")]
        rows += [
            (
                m.id,
                _loaded(m),
                str(m.context_length) if m.context_length else "-",
                _size(m.size_bytes),
                _size(m.vram_bytes),
                ",".join(m.capabilities) or "-",
            )
            for m in inv.models
        ]
        if len(rows) == 1:
            lines.append("  (no models)")
            continue
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines.extend(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in rows
        )
    return "\n".join(lines)


def run_discover(
    urls: Sequence[str],
    *,
    as_json: bool,
    default_ports: bool,
    timeout: float,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Probe and print; the exit status.

    0 when at least one known server answered, 1 when none did (nothing answered, or
    only something that is not an LLM server), 2 for a URL or timeout that is wrong
    before anything is probed.
    """
    problems = [why for _url, why in _bad_urls(urls)]
    if not timeout > 0:
        problems.append(f"--timeout {timeout!r}: must be a number of seconds > 0")
    if problems:
        for problem in problems:
            err.write(f"reactor discover: error: {problem}\n")
        return 2
    found = discover_sync(urls, default_ports=default_ports, timeout=timeout)
    if as_json:
        out.write(json.dumps(msgspec.to_builtins(found), indent=2) + "\n")
    else:
        probed = ", ".join(DEFAULT_ENDPOINTS) if default_ports else "none"
        out.write(format_inventory(found) + "\n")
        out.write(f"\n(default local endpoints probed: {probed})\n")
    return 0 if any(f.reachable and f.server for f in found) else 1


def _bad_urls(urls: Sequence[str]) -> list[tuple[str, str]]:
    """Each URL that is not one discovery can probe, with the reason (as configuration says)."""
    bad: list[tuple[str, str]] = []
    for url in urls:
        try:
            DiscoveryConfig(urls=[url])
        except ValidationError as exc:
            reason = str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
            if "://" not in url:
                reason += f" (did you mean http://{url}?)"
            bad.append((url, reason))
    return bad


def run_fake_server(
    protocol: str,
    *,
    port: int,
    models: Sequence[str],
    latency: float,
    token_delay: float,
    reply_words: int = 0,
    context_length: int | None = None,
    fault: dict[str, Any] | None = None,
    refuses: Sequence[tuple[str, Sequence[str]]] = (),
    err: TextIO | None = None,
) -> int:
    """Serve a fake until interrupted (Ctrl-C or SIGTERM).

    ``fault`` holds :class:`~actors.testing.Fault` fields applied to every request (or
    to the first ``times``). ``refuses`` pairs a model with the request fields it
    answers 400 to (:attr:`~actors.testing.FakeModel.refuses`; a model named twice
    refuses both lists). A port that cannot be used, or a refusal the fake cannot play,
    is one line on standard error and exit status 2.
    """
    from actors.testing import Exchange, FakeModel, FakeServer, Fault, Reply  # noqa: PLC0415

    err = err or sys.stderr
    if not 0 <= port <= 65535:
        err.write(f"reactor fake-server: error: --port must be 0 to 65535, not {port}\n")
        return 2
    if context_length is not None and context_length < 1:
        err.write(
            f"reactor fake-server: error: --context-length must be positive, not {context_length}\n"
        )
        return 2
    names = list(models) or ["fake-small", "fake-large"]
    refused, problem = _refusals(protocol, names, refuses)
    if problem:
        err.write(f"reactor fake-server: error: --refuses: {problem}\n")
        return 2
    text = " ".join(f"word{i}" for i in range(reply_words))

    def fixed(_: Exchange) -> Reply:
        return Reply(text=text)

    fakes = [FakeModel(n, refuses=refused.get(n, ())) for n in names]
    if context_length is not None:
        for fake in fakes:
            fake.context_length = context_length
    server = FakeServer(
        protocol,
        models=fakes,
        port=port,
        latency=latency,
        token_delay=token_delay,
        responder=fixed if reply_words else None,
    )
    if fault is not None:
        server.inject(Fault(**fault))
    try:
        server.start()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        err.write(f"reactor fake-server: error: cannot listen on 127.0.0.1:{port}: {reason}\n")
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        faults = "" if fault is None else f"; faults: {_describe(fault)}"
        print(
            f"fake {protocol} server on {server.url} with models {', '.join(names)}"
            f"{faults} (Ctrl-C to stop)",
            flush=True,
        )
        with contextlib.suppress(KeyboardInterrupt):
            done.wait()
    finally:
        server.stop()
    return 0


def _refusals(
    protocol: str, names: Sequence[str], refuses: Sequence[tuple[str, Sequence[str]]]
) -> tuple[dict[str, tuple[str, ...]], str]:
    """The fields each model refuses, or why ``refuses`` cannot be served (else ``""``).

    Only the OpenAI-protocol fakes refuse fields (OpenAI's error names the field, so a
    client can send the request again without it), and only models the server serves.
    """
    if not refuses:
        return {}, ""
    from actors.testing import PROTOCOLS, protocol_for  # noqa: PLC0415

    if not protocol_for(protocol).refuses_fields:
        able = ", ".join(sorted(n for n in PROTOCOLS if protocol_for(n).refuses_fields))
        return {}, f"the {protocol} fake refuses no fields; the OpenAI-protocol ones do ({able})"
    refused: dict[str, tuple[str, ...]] = {}
    for model, fields in refuses:
        if model not in names:
            return {}, f"no model {model!r} here (the models: {', '.join(names)}; see --models)"
        known = refused.get(model, ())
        refused[model] = known + tuple(f for f in fields if f not in known)
    return refused, ""


def _describe(fault: dict[str, Any]) -> str:
    """``status=429 retry_after=2`` for the banner."""
    return " ".join(f"{k}={v}" for k, v in fault.items() if v is not None)
