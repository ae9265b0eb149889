"""Servers on loopback that answer HTTP byte for byte, as a test scripts them.

They stand in for registries (and what sits in front of them) whose behaviour no real
registry shows on demand: connections hung up while idle, answers that never come, and
hostile answers (malformed framing, endless bodies, floods of headers).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator

#: What a script sends for one request: bytes, pieces sent one after another (a generator
#: may sleep between them), or None to hang up without an answer.
Sent = bytes | Iterable[bytes] | None
Script = Callable[[int, bytes], Sent]


class LoopbackServer:
    """A TCP server on loopback that gives each connection to `_handle` in a thread of its own."""

    def __init__(self) -> None:
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def close(self) -> None:
        self._listener.close()


class HangUpServer(LoopbackServer):
    """Answers each request on a connection, then closes connections idle for `idle` seconds."""

    def __init__(
        self, *, answer: bool = True, close: bool = False, delay: float = 0, idle: float = 0.05
    ) -> None:
        self.requests = 0
        self.open = 0
        self.most_open = 0
        self._lock = threading.Lock()
        self.answer = answer
        self.close_each = close
        self.delay = delay
        self.idle = idle
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with self._lock:
            self.open += 1
            self.most_open = max(self.most_open, self.open)
        try:
            self._answer(conn)
        finally:
            with self._lock:
                self.open -= 1

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(self.idle if self.answer else 5)
            buffer = b""
            while True:
                try:
                    data = conn.recv(65536)
                except OSError:
                    return  # idle: hang up, as registries' load balancers do
                if not data:
                    return
                buffer += data
                while b"\r\n\r\n" in buffer:
                    _, buffer = buffer.split(b"\r\n\r\n", 1)
                    self.requests += 1
                    if self.answer:
                        time.sleep(self.delay)
                        body = b'{"name":"lab/tool","tags":["1.0"]}'
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                            + (b"Connection: close\r\n" if self.close_each else b"")
                            + b"Content-Length: "
                            + str(len(body)).encode()
                            + b"\r\n\r\n"
                            + body
                        )
                        if self.close_each:
                            return


class ScriptedServer(LoopbackServer):
    """Answers each request with what `script(number, request)` returns, byte for byte.

    `number` counts requests across connections from 0. A connection is closed after an
    answer that says `Connection: close` or has neither a length nor chunks, and after a
    script that sent pieces. `sent` counts the bytes sent to the client.
    """

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[bytes] = []
        self.sent = 0
        super().__init__()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    try:
                        data = conn.recv(65536)
                    except OSError:
                        return
                    if not data:
                        return
                    buffer += data
                request, buffer = buffer.split(b"\r\n\r\n", 1)
                self.requests.append(request)
                answer = self.script(len(self.requests) - 1, request)
                if answer is None:
                    return
                if not isinstance(answer, bytes):
                    with contextlib.suppress(OSError):
                        for piece in answer:
                            conn.sendall(piece)
                            self.sent += len(piece)
                    return
                try:
                    conn.sendall(answer)
                except OSError:
                    return
                self.sent += len(answer)
                head = answer.split(b"\r\n\r\n", 1)[0].lower()
                if b"connection: close" in head or not (
                    b"content-length:" in head or b"transfer-encoding:" in head
                ):
                    return


def answer(body: bytes = b"{}", *headers: str, status: str = "200 OK") -> bytes:
    """An HTTP/1.1 answer with these headers, and a Content-Length unless they frame it."""
    lines = [f"HTTP/1.1 {status}", *headers]
    if not any(h.lower().startswith(("content-length", "transfer-encoding")) for h in headers):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@contextlib.contextmanager
def scripted(script: Script) -> Iterator[ScriptedServer]:
    """A `ScriptedServer` for the block."""
    server = ScriptedServer(script)
    try:
        yield server
    finally:
        server.close()
