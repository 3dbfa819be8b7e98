"""The response writer: writes made in one loop turn leave in one piece, on asyncio's loop."""

from __future__ import annotations

import asyncio
import socket

from reactor.daemon._http import CoalescingTransport


def test_writes_in_one_turn_leave_in_one_send() -> None:
    """Headers and body written in one turn reach the peer as one segment; close flushes."""

    async def main() -> list[bytes]:
        loop = asyncio.get_running_loop()
        ours, theirs = socket.socketpair()
        theirs.setblocking(False)
        transport, _ = await loop.connect_accepted_socket(asyncio.Protocol, ours)
        sent: list[bytes] = []
        real_write = transport.write

        def counting(data: bytes | bytearray | memoryview) -> None:
            sent.append(bytes(data))
            real_write(data)

        transport.write = counting  # type: ignore[method-assign]
        wrapped = CoalescingTransport(transport, loop)
        wrapped.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        wrapped.write(b"{}")
        assert sent == []  # nothing yet: the turn is not over
        assert wrapped.get_write_buffer_size() == 40
        await asyncio.sleep(0)
        assert sent == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        wrapped.write(b"last")
        wrapped.close()  # what is pending goes first
        assert sent[-1] == b"last"
        assert wrapped.is_closing()  # everything else is the transport's
        await asyncio.sleep(0.01)
        received = await loop.sock_recv(theirs, 1024)
        theirs.close()
        return [received]

    loop = asyncio.new_event_loop()  # asyncio's own: uvloop's transports join writes already
    try:
        assert loop.run_until_complete(main()) == [
            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}last"
        ]
    finally:
        loop.close()
