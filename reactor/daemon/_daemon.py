"""The daemon: the actor system, the fleet, the Engine and the HTTP server, on one loop.

:class:`Daemon` is what ``reactor serve`` runs, and what code embeds to serve its own
reactors::

    daemon = Daemon(load_config(), reactors=["app/flows.py:Triage"])
    daemon.start()          # the System, the fleet, the Engine (resuming interrupted
                            # runs), the app on uvicorn, on the System's I/O loop
    print(daemon.url, daemon.token)
    daemon.serve_forever()  # until SIGTERM / Ctrl-C; then drains (see stop)

Start-up, in order: the System; the fleet (configured and discovered hosts; the
built-in fakes only with ``simulated=True``); the Engine with the hub middleware; the
agents (read from the Store), the workflows' task runner, the tool runner, sessions
and conversations; then the runs whose process died are resumed (their steps find
everything they call running); the socket, bound
before the app is served so that the port is known; uvicorn's ``serve()`` as a task on
the System's I/O loop, the loop every actor's I/O already runs on.

:meth:`Daemon.stop` drains: the server stops accepting and gives running requests
``grace_s`` seconds (event streams end at once, telling browsers to reconnect later),
runs still in flight are left in the journal to be resumed by the next start, and
telemetry is flushed before the actors stop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import ipaddress
import os
import secrets
import signal
import socket
import stat
import threading
import time
from collections.abc import Iterable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import platformdirs
import structlog

from actors import ActorNotFound, Event, System
from actors.llm import Config, Fleet
from dsl import Reactor, find, locate
from reactor.daemon._agents import AgentBook
from reactor.daemon._errors import ApiError
from reactor.daemon._hub import Broadcaster, HubMiddleware
from reactor.daemon._tasks import TaskRunner
from reactor.daemon._workflow import install as install_workflows

__all__ = ["Daemon", "DaemonError", "default_token_file", "read_token"]

_log = structlog.get_logger("reactor.daemon")

TOKEN_ENV_VAR = "REACTOR_TOKEN"  # noqa: S105 - a variable's name
"""The environment variable a client reads the token from (before the token file)."""


class DaemonError(RuntimeError):
    """The daemon cannot start: the message says what is wrong (config, file, port)."""


def default_token_file() -> Path:
    """``daemon.token`` in the user's data directory for reactor-swarm."""
    return Path(platformdirs.user_data_dir("reactor-swarm", appauthor=False)) / "daemon.token"


def read_token(path: Path | None = None) -> str | None:
    """The token a client uses: ``$REACTOR_TOKEN``, else the token file's (``None``: none)."""
    token = os.environ.get(TOKEN_ENV_VAR)
    if token:
        return token.strip()
    file = path or default_token_file()
    try:
        return file.read_text().strip() or None
    except OSError:
        return None


def _token_from_file(path: Path) -> str:
    """The token kept in ``path``, creating it (owner-only) on first start.

    Raises:
        DaemonError: The file cannot be created or read, or others may read it.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            msg = (
                f"token file {path} may be read by others (mode {stat.filemode(mode)}); "
                f"make it owner-only: chmod 600 {path}"
            )
            raise DaemonError(msg) from None
        token = path.read_text().strip()
        if not token:
            msg = f"token file {path} is empty; delete it to have a new token made"
            raise DaemonError(msg) from None
        return token
    except OSError as exc:
        msg = f"cannot create the token file {path}: {exc.strerror or exc}"
        raise DaemonError(msg) from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    _log.info("generated the daemon's token", file=str(path))
    return token


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_reactors(locators: Iterable[str]) -> dict[str, type[Reactor]]:
    """The reactors named ``module:Name`` or ``path/file.py:Name``, by reactor name.

    Raises:
        DaemonError: One cannot be loaded or is not a Reactor, naming it.
    """
    found: dict[str, type[Reactor]] = {}
    for locator in locators:
        try:
            obj = find(locator)
        except (LookupError, ImportError, SyntaxError) as exc:
            msg = f"reactor {locator!r}: {exc}"
            raise DaemonError(msg) from None
        if not (isinstance(obj, type) and issubclass(obj, Reactor)):
            msg = f"reactor {locator!r} is not a Reactor class"
            raise DaemonError(msg)
        found[obj.__plan__.reactor] = obj
    return found


def load_tools(locators: Iterable[str]) -> Any:
    """A :class:`~actors.tools.ToolRegistry` of the tools the locators name.

    Each names a ``@tool``, a plain function (a tool with default metadata), or a
    ``ToolRegistry`` (all of its tools).

    Raises:
        DaemonError: One cannot be loaded or made a tool, naming it.
    """
    from actors.tools import Tool, ToolDefinitionError, ToolRegistry  # noqa: PLC0415

    registry = ToolRegistry()
    for locator in locators:
        try:
            obj = find(locator)
        except (LookupError, ImportError, SyntaxError) as exc:
            msg = f"tool {locator!r}: {exc}"
            raise DaemonError(msg) from None
        items = list(obj) if isinstance(obj, ToolRegistry) else [obj]
        for item in items:
            if not (isinstance(item, Tool) or callable(item)):
                msg = f"tool {locator!r} is neither a tool, a function nor a ToolRegistry"
                raise DaemonError(msg)
            try:
                registry.add(item)
            except (ToolDefinitionError, TypeError, ValueError) as exc:
                msg = f"tool {locator!r}: {exc}"
                raise DaemonError(msg) from None
    return registry


@functools.cache
def version() -> str:
    """The installed version of reactor-swarm (read once: /health answers it)."""
    try:
        return metadata.version("reactor-swarm")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Daemon:
    """``reactor serve``: everything a running daemon owns (see the module docstring).

    Args:
        config: The configuration (its ``[daemon]`` section and everything else).
        db_path: The SQLite file (default: ``REACTOR_DB``, else the user data dir).
        host: The address to bind (default: the configuration's, loopback).
        port: The port (default: the configuration's; 0 picks a free one).
        token: The bearer token (default: the configuration's, else the token file's).
        token_file: Where a generated token is kept.
        reactors: More reactors to serve, beside the configuration's.
        tools: More tools for ``tools`` steps and agents, beside the configuration's
            (``module:name`` or ``path/file.py:name``).
        simulated: With no LLM server found, start the built-in fake servers.
        discovery: Probe the default local ports for LLM servers.
        grace_s: Seconds running requests get when the daemon stops.
        jaeger_url: The Jaeger UI, for links from runs to their traces.
    """

    def __init__(
        self,
        config: Config,
        *,
        db_path: str | os.PathLike[str] | None = None,
        host: str | None = None,
        port: int | None = None,
        token: str | None = None,
        token_file: Path | None = None,
        reactors: Sequence[str] = (),
        tools: Sequence[str] = (),
        simulated: bool = False,
        discovery: bool = True,
        grace_s: float | None = None,
        jaeger_url: str | None = None,
    ) -> None:
        settings = config.daemon
        self.config = config
        self.db_path = db_path
        self.host = host or settings.host
        self.port = settings.port if port is None else port
        configured = settings.token.get_secret_value() if settings.token is not None else None
        self._token = token or configured
        self.token_file = token_file or settings.token_file or default_token_file()
        self.locators = (*settings.reactors, *reactors)
        self.tool_locators = (*settings.tools, *tools)
        self.tools: Any = None
        """The tools the runner offers (a :class:`actors.tools.ToolRegistry`, once checked)."""
        self.simulated = simulated
        self.discovery = discovery
        self.grace_s = settings.grace_s if grace_s is None else grace_s
        self.jaeger_url = jaeger_url or settings.jaeger_url
        self.allowed_origins = tuple(settings.allowed_origins)
        self.reactors: dict[str, type[Reactor]] = {}
        self.system: System | None = None
        self.fleet: Fleet | None = None
        self.engine: Any = None
        self.agents: AgentBook
        self.sessions: Any = None
        """The reasoning sessions (:class:`actors.sessions.Sessions`) on the engine's Store."""
        self.team: Any = None
        """The agents with roles (:class:`actors.agents.Agents`) on the engine's services."""
        self.conversations: Any = None
        """Their conversations (:class:`actors.agents.ConversationOrchestrator`)."""
        self.runner: TaskRunner
        self.hub: Broadcaster
        self.handles: dict[str, Any] = {}
        self.draining = False
        self.started_at = 0.0
        self._server: Any = None
        self._serving: concurrent.futures.Future[Any] | None = None
        self._stop_requested = threading.Event()
        self._socket: socket.socket | None = None

    # ---- checks --------------------------------------------------------------------------

    @property
    def token(self) -> str:
        """The bearer token (set when the daemon starts, or given)."""
        if self._token is None:
            self._token = _token_from_file(self.token_file)
        return self._token

    @property
    def url(self) -> str:
        """The daemon's base URL."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def check(self) -> list[str]:
        """Validate what can be checked without starting: reactors, token, address.

        Returns:
            Warnings (a non-loopback address).

        Raises:
            DaemonError: Something would stop the daemon from starting.
        """
        warnings: list[str] = []
        self.reactors = load_reactors(self.locators)
        self.tools = load_tools(self.tool_locators)
        if self._token is None and self.token_file.exists():
            _ = self.token  # readable, owner-only, not empty
        elif self._token is None:  # made at the first start: only check it could be
            folder = next((p for p in self.token_file.parents if p.exists()), Path("/"))
            if not os.access(folder, os.W_OK):
                msg = f"cannot create the token file {self.token_file}: {folder} is not writable"
                raise DaemonError(msg)
        if not is_loopback(self.host):
            warnings.append(
                f"binding {self.host}: the daemon is reachable from other machines "
                "(every request but /health still needs the token)"
            )
        if self.jaeger_url and not self.jaeger_url.startswith(("http://", "https://")):
            msg = f"daemon.jaeger_url {self.jaeger_url!r} is not an http(s) URL"
            raise DaemonError(msg)
        return warnings

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self, *, http: bool = True) -> None:
        """Start everything and serve; returns once the server accepts connections.

        Args:
            http: Serve HTTP (``False``: only the actors, for ``reactor mcp`` on stdio).

        Raises:
            DaemonError: A check failed, the port is taken, or the server did not start.
        """
        from actors.llm import start_fleet  # noqa: PLC0415
        from reactor.app import Engine  # noqa: PLC0415

        for warning in self.check():
            _log.warning(warning)
        sock = self._bind() if http else None
        try:
            system = self.system = System(
                name="reactor-daemon", loop_factory=_loop_factory()
            ).start()
            fallback = None
            if self.simulated:
                from actors.testing import fake_servers  # noqa: PLC0415

                fallback = fake_servers
            self.fleet = start_fleet(
                system, self.config, discovery=self.discovery, fallback=fallback
            )
            loop = system.bridge.loop
            self.hub, events = system.bridge.run(_make_broadcaster(loop))
            self._subscription = system.bus.subscribe(Event, events, loop=loop)
            self.engine = Engine(
                system,
                db_path=self.db_path,
                fleet=self.fleet,
                config=self.config,
                middleware=[HubMiddleware(system.bus)],
            )
            self.runner = TaskRunner(system, self.engine.catalog, self.engine.selector)
            self.agents = AgentBook(self.engine.journal)
            system.bridge.run(self.agents.load())
            install_workflows(self.runner, self.agents.get)
            # The runner the reactors' tools steps call, with their approvals and audit.
            self.engine.start_tools(self.tools, config=self.config)
            self._start_sessions_and_team()
            # Only now, with everything their steps call running (workflow steps need the
            # task runner, tools steps the tool runner), do interrupted runs go on.
            self.engine.resumed = self.engine.resume_interrupted()
            for handle in self.engine.resumed:
                self.handles[handle.run_id] = handle
            if sock is not None:
                self._serve(sock)
        except BaseException:
            self._shutdown_actors()
            raise
        self.started_at = time.time()
        _log.info("daemon started", url=self.url, reactors=sorted(self.reactors))

    def _start_sessions_and_team(self) -> None:
        """Reasoning sessions, agents and conversations on the one System and Store."""
        from actors.agents import ConversationOrchestrator  # noqa: PLC0415
        from actors.sessions import Sessions  # noqa: PLC0415

        self.sessions = Sessions(
            self.system,  # type: ignore[arg-type]
            store=self.engine.store,
            catalog=self.engine.catalog,
        ).open()
        self.team = self.engine.start_agents(tools="tools")
        self.conversations = ConversationOrchestrator(self.team)

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say TCP, and
        # without it every small response waits ~40 ms for a delayed ACK (Nagle).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.host, self.port))
        except OSError as exc:
            sock.close()
            msg = f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}"
            raise DaemonError(msg) from None
        self.port = sock.getsockname()[1]
        sock.set_inheritable(True)
        self._socket = sock
        return sock

    def _serve(self, sock: socket.socket) -> None:
        import uvicorn  # noqa: PLC0415

        from reactor.daemon._app import build_app  # noqa: PLC0415
        from reactor.daemon._http import HttpProtocol  # noqa: PLC0415

        assert self.system is not None
        app = build_app(self)
        config = uvicorn.Config(
            app,
            http=HttpProtocol,  # httptools, each response written in one piece
            server_header=False,
            proxy_headers=False,  # loopback by default; nothing reads the client's address
            lifespan="on",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=max(1, round(self.grace_s)),
            timeout_keep_alive=5,
        )
        self._server = uvicorn.Server(config)
        self._serving = asyncio.run_coroutine_threadsafe(
            self._server.serve(sockets=[sock]), self.system.bridge.loop
        )
        deadline = time.monotonic() + 30.0
        while not self._server.started:
            if self._serving.done():
                error = self._serving.exception()
                msg = f"the HTTP server did not start: {error or 'it stopped'}"
                raise DaemonError(msg)
            if time.monotonic() > deadline:
                msg = "the HTTP server did not start within 30 s"
                raise DaemonError(msg)
            time.sleep(0.01)

    def serve_stdio(self) -> None:
        """Serve the MCP tools over standard input and output until it closes."""
        from reactor.daemon._mcp import build_mcp  # noqa: PLC0415

        assert self.system is not None
        server = build_mcp(self)
        done = asyncio.run_coroutine_threadsafe(server.run_stdio_async(), self.system.bridge.loop)
        try:
            while True:
                try:
                    done.result(0.5)
                    break
                except concurrent.futures.TimeoutError:
                    if self._stop_requested.is_set():
                        done.cancel()
                        break
        finally:
            self.stop()

    def request_stop(self) -> None:
        """Ask :meth:`serve_forever` to return (thread- and signal-safe)."""
        self._stop_requested.set()

    def serve_forever(self) -> None:
        """Serve until SIGTERM or Ctrl-C (or :meth:`request_stop`), then :meth:`stop`."""
        previous: dict[signal.Signals, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                previous[sig] = signal.signal(sig, lambda *_: self.request_stop())
        try:
            while not self._stop_requested.wait(0.5):
                if self._serving is not None and self._serving.done():
                    break
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.stop()

    def stop(self) -> None:
        """Drain and stop: see the module docstring. Safe to call twice."""
        if self.system is None:
            return
        self.draining = True
        loop = self.system.bridge.loop
        if self._server is not None and self._serving is not None:
            loop.call_soon_threadsafe(self.hub.close)
            self._server.should_exit = True
            try:
                self._serving.result(self.grace_s + 5.0)
            except (concurrent.futures.TimeoutError, Exception) as exc:  # noqa: BLE001
                _log.warning("the HTTP server did not stop cleanly", error=str(exc))
            self._server = None
        in_flight = [rid for rid, h in self.handles.items() if not h.done()]
        if in_flight:
            _log.info("runs left to resume at the next start", runs=in_flight)
        import otel  # noqa: PLC0415

        otel.shutdown_telemetry(timeout=2.0)
        self._shutdown_actors()
        _log.info("daemon stopped")

    def _shutdown_actors(self) -> None:
        system, self.system = self.system, None
        if self.engine is not None:
            self.engine.close()
        if self.fleet is not None:
            self.fleet.close()
        if system is not None:
            system.stop()
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # ---- what the API uses ---------------------------------------------------------------

    def reactor(self, name: str) -> type[Reactor]:
        """A served reactor by name or locator.

        Raises:
            ApiError: ``not_found``, listing the served ones.
        """
        found = self.reactors.get(name)
        if found is None:
            for each in self.reactors.values():
                if locate(each) == name:
                    return each
            known = ", ".join(sorted(self.reactors)) or "none"
            raise ApiError(
                "not_found", f"no reactor {name!r} is served (served: {known})", field="reactor"
            )
        return found

    def lookup(self, name: str) -> Any:
        """An actor by name, or ``None``."""
        if self.system is None:
            return None
        try:
            return self.system.lookup(name)
        except ActorNotFound:
            return None


def _loop_factory() -> Any:
    """The loop factory: uvloop's where it is installed (``uvicorn[standard]``), else none.

    The daemon's one loop carries every actor's I/O and the HTTP server: uvloop's
    C loop and transports cost each request less, and join the writes a response makes
    in one turn into one system call.
    """
    try:
        import uvloop  # noqa: PLC0415
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _make_broadcaster(
    loop: asyncio.AbstractEventLoop,
) -> tuple[Broadcaster, asyncio.Queue[Any]]:
    """The broadcaster, and the queue the bus fills for it (pumped by a task on the loop)."""
    hub = Broadcaster(loop)
    events: asyncio.Queue[Any] = asyncio.Queue()

    async def pump() -> None:
        while True:
            hub.publish(await events.get())

    hub.pump = loop.create_task(pump(), name="reactor-daemon-events")
    return hub, events
