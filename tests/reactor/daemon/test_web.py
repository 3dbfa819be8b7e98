"""The web page in a real browser (Debian's chromium driven by Playwright)."""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from actors import AskError, ChildSpec, SupervisorSpec
from reactor.daemon import Daemon
from tests.reactor.daemon.conftest import TOKEN
from tests.support.actors import Block, Crash, Echo, Gated, Ping

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser(daemon: Daemon) -> Iterator[Any]:
    """Chromium through Playwright; skipped, saying why, where it cannot run.

    It needs the daemon started first: Playwright's sync API runs an event loop on this
    thread while it is open, where starting (and stopping) the actor system would block.
    """
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if shutil.which(CHROMIUM) is None:
        pytest.skip(
            f"{CHROMIUM} is missing: `make browser` installs Debian's chromium "
            "(apt-get install chromium)"
        )
    with sync_api.sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--no-sandbox", "--disable-background-networking"]
            )
        except Exception as exc:  # noqa: BLE001 - any launch failure is a reason to skip
            pytest.skip(f"chromium cannot start here: {exc}")
        yield launched
        launched.close()


def test_page_shows_a_run_progress_and_complete(
    browser: Any, daemon: Daemon, client: httpx.Client, tmp_path: Path
) -> None:
    """A run started over REST appears on the page, its steps move, and it completes."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{daemon.url}/?token={TOKEN}")
        page.wait_for_selector("#conn.live")
        page.wait_for_selector("#models tr")  # hosts and models panel filled
        assert "fake-small" in page.inner_text("#models")

        gate = tmp_path / "gate"
        run_id = client.post(
            "/api/runs", json={"reactor": "Gate", "inputs": {"gate": str(gate)}}
        ).json()["run_id"]
        row = f'#runs tr[data-run="{run_id}"]'
        page.wait_for_selector(row)  # pushed by /api/events, no reload
        page.click(row)
        page.wait_for_selector('#run-steps tr[data-step="started"][data-status="done"]')
        page.wait_for_selector('#run-steps tr[data-step="wait"][data-status="running"]')
        gate.write_text("open")
        page.wait_for_selector(f'{row}[data-status="completed"]')
        page.wait_for_selector('#run-detail[data-status="completed"]')
        page.wait_for_selector('#run-graph .node.status-done[data-step="wait"]')
        assert page.text_content("#run-mermaid").startswith("flowchart")
        assert errors == []
    finally:
        page.close()


def test_page_shows_sessions_as_they_change(
    browser: Any, daemon: Daemon, client: httpx.Client
) -> None:
    """A session started over REST appears; its steps and decision update it live."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{daemon.url}/?token={TOKEN}")
        page.wait_for_selector("#conn.live")
        created = client.post(
            "/api/sessions", json={"task_description": "name the release", "agent_name": "pat"}
        )
        session_id = created.json()["session_id"]
        row = f'#sessions tr[data-session="{session_id}"]'
        page.wait_for_selector(f'{row}[data-steps="0"]')  # pushed over /api/events
        client.post(
            f"/api/sessions/{session_id}/steps",
            json={"agent_name": "pat", "reasoning_text": "something short"},
        )
        page.wait_for_selector(f'{row}[data-steps="1"]')
        client.post(
            f"/api/sessions/{session_id}/decisions", json={"agent_name": "pat", "prompt": "pick"}
        )
        page.wait_for_selector(f'{row}[data-decisions="1"][data-status="decided"]')
        assert "name the release" in page.inner_text(row)
        assert errors == []
    finally:
        page.close()


def _off_this_thread(fn: Callable[[], Any]) -> Any:
    """Run a blocking actor call on another thread (Playwright's loop runs on this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=30)


def test_page_shows_the_supervision_tree_live(browser: Any, daemon: Daemon) -> None:
    """Nested supervisors, a busy actor's mailbox depth and a restart, updated as they change."""
    system = daemon.system
    assert system is not None
    gate = threading.Event()
    team = SupervisorSpec(
        name="probe-team",
        children=[
            ChildSpec(name="probe-gated", actor=Gated, args=(gate, [])),
            ChildSpec(name="probe-echo", actor=Echo),
        ],
    )
    _off_this_thread(lambda: system.spawn(team))
    gated = system.lookup("probe-gated")
    gated.tell(Block())
    for n in range(4):
        gated.tell(Ping(n=n))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{daemon.url}/?token={TOKEN}")
        page.wait_for_selector("#conn.live")
        page.wait_for_selector('#actors tr[data-actor="reactor-daemon.root"]')
        page.wait_for_selector('#actors tr[data-actor="runs"][data-parent="reactor-daemon.root"]')
        busy = '#actors tr[data-actor="probe-gated"][data-parent="probe-team"]'
        page.wait_for_selector(f'{busy}[data-mailbox="4"]')  # 4 Pings wait behind the Block
        echo = '#actors tr[data-actor="probe-echo"][data-parent="probe-team"]'
        page.wait_for_selector(f'{echo}[data-restarts="0"]')

        def crash() -> None:
            with contextlib.suppress(AskError):
                system.lookup("probe-echo").ask(Crash(why="page test"))

        _off_this_thread(crash)
        page.wait_for_selector(f'{echo}[data-restarts="1"]')  # ActorRestarted, pushed
        gate.set()
        page.wait_for_selector(f'{busy}[data-mailbox="0"]')  # read again every 2 s
        assert "supervisor" in page.inner_text('#actors tr[data-actor="probe-team"]')
        assert errors == []
    finally:
        gate.set()
        page.close()
