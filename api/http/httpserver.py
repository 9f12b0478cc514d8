"""The HTTP protocol `golfcheck serve` runs: uvicorn's httptools parser (C, ~8x h11's requests/s on
the public leaderboard, BENCHMARKS.md) with a bound on the request head.

httptools buffers a header of any size until it is complete, so a client could make the server
hold megabytes per connection by never finishing its headers; h11 stops at 16 KiB past one read.
`BoundedHttpTools` counts the bytes of the head as they arrive and answers 431 and closes once it
passes `MAX_HEAD_BYTES`: memory per connection stays under that plus one socket read. It also
bounds the head in time: a connection must deliver a complete request head within `head_timeout_s`
of opening (or of the request's first byte), else it gets 408 and is closed, so a client cannot
hold a connection by trickling its headers. The body's deadline and minimum rate are the upload
route's (api.http.routes.submissions). Without httptools installed, uvicorn's h11 (bounded by itself)
is used.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 * 1024


TIMEOUT_REPLY = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\nconnection: close\r\n"
                 b"content-length: 35\r\n\r\nrequest head not complete in time\r\n")


def protocol(head_timeout_s: float = 30.0) -> Any:
    class BoundedHttpTools(HttpToolsProtocol):  # type: ignore[misc]
        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            self._head_bytes = 0
            self._in_head = False   # a request has begun and its head is not complete yet
            self._heads_done = 0
            self._head_timer: Any = None
            super().connection_made(transport)
            self._arm_head_timer()

        def _arm_head_timer(self) -> None:
            self._disarm_head_timer()
            self._head_timer = self.loop.call_later(head_timeout_s, self._head_expired)

        def _disarm_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_expired(self) -> None:
            self._head_timer = None
            if self.transport.is_closing():
                return
            if self.cycle is None or self._in_head:  # nothing complete arrived: no request is running
                self.transport.write(TIMEOUT_REPLY)
                self.transport.close()

        def on_message_begin(self) -> None:
            self._in_head = True
            self._arm_head_timer()
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._in_head = False
            self._heads_done += 1
            self._disarm_head_timer()
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            heads_before = self._heads_done
            super().data_received(data)
            if self._heads_done != heads_before:
                # A head completed inside this read; a next one may have begun in it (uncounted:
                # at most one read more than the limit).
                self._head_bytes = 0
                return
            if not self._in_head:
                return
            self._head_bytes += len(data)
            if self._head_bytes > MAX_HEAD_BYTES and not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; "
                                     b"charset=utf-8\r\nconnection: close\r\ncontent-length: 33\r\n\r\n"
                                     b"request head larger than 64 KiB\r\n")
                self.transport.close()

    return BoundedHttpTools
