"""uvicorn's httptools protocol, writing each response in one piece.

uvicorn writes a response's status line and headers as soon as the app sends
``http.response.start``, and the body when it sends ``http.response.body``: two
``send`` calls, two TCP segments (the socket has ``TCP_NODELAY``), so the client wakes
up for the headers, reads them, and sleeps again until the body arrives. On a busy
machine each wake-up waits for a CPU, and the second one is pure loss.

:class:`HttpProtocol` hands uvicorn a transport whose writes made in one turn of the
event loop are joined and written once, at the end of that turn (as uvloop does for
its streams): a plain JSON response leaves in one segment, and an event stream's
frames still leave as soon as each is yielded. Closing writes what is pending first.
uvloop's transports already work this way, so they are used as they are.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingTransport", "HttpProtocol"]


class CoalescingTransport:
    """A transport whose writes in one loop turn leave in one ``write`` (see the module)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data``; the first write of a turn schedules the flush."""
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(bytes(data))

    def writelines(self, lines: Any) -> None:
        """Queue each of ``lines``."""
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        """Write what is queued, in one piece."""
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if self._transport.is_closing():
            return
        self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        """Write what is queued, then close."""
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        """Write what is queued, then end the stream."""
        self.flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        """Bytes queued here and in the transport."""
        return sum(map(len, self._pending)) + self._transport.get_write_buffer_size()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol over a :class:`CoalescingTransport`."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Wrap asyncio's own transports (uvloop's join writes already), then as uvicorn."""
        if type(transport).__module__.startswith("asyncio."):
            wrapped: Any = CoalescingTransport(transport, self.loop)
            super().connection_made(wrapped)
        else:
            super().connection_made(transport)
