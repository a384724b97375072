"""Slow and silent HTTP clients against ``python -m RMBG serve``, with the standard library only.

Used by ``tests/test_server_slow_clients.py`` and ``scripts/bench_slow_clients.py``
to hold connections the way a slow-loris attack does; nothing here is needed
to run the server.

* :func:`open_upload` opens one connection (from a chosen loopback source
  address) and sends a request head, and optionally the start of its body.
* :class:`SlowClients` keeps ``trickle`` connections that send one body byte
  every ``interval_s``, ``silent`` ones that send a head and part of a body and
  then nothing, and ``mute`` ones that send half a head; each one the server
  closes is opened again, and the status it was answered is counted.
"""

from __future__ import annotations

import errno
import selectors
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

#: What a slow upload declares: a body of this many bytes (under the server's default limit).
DECLARED_BYTES = 2**19

BOUNDARY = "slowclientboundary"


def upload_head(port: int, length: int | None = DECLARED_BYTES, path: str = "/api/remove",
                headers: dict | None = None) -> bytes:
    """The head of a multipart ``POST`` declaring ``length`` bytes (chunked when None)."""
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             f"Content-Type: multipart/form-data; boundary={BOUNDARY}",
             f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


#: The first lines of a body: the start of the part ``file``.
BODY_START = (f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="photo.jpg"\r\n'
              "Content-Type: image/jpeg\r\n\r\n").encode()


def open_upload(port: int, source: str = "127.0.0.1", body: bytes = BODY_START, length: int | None = DECLARED_BYTES,
                headers: dict | None = None, timeout: float = 10.0) -> socket.socket:
    """A connection to ``127.0.0.1:port`` from ``source`` that has sent a head and ``body`` (nothing more;
    ``body`` goes as it is, so with ``length=None`` it must be framed in chunks already)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
    sock.sendall(upload_head(port, length, headers=headers) + body)
    return sock


def read_answer(sock: socket.socket, timeout: float) -> bytes:
    """All the server sends until it closes the connection or ``timeout`` seconds pass."""
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except (socket.timeout, ConnectionResetError):
        pass
    return data


def status_of(answer: bytes) -> int | None:
    """The status code of the first HTTP answer in ``answer`` (None when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 2 and parts[0].startswith(b"HTTP/") and parts[1].isdigit() else None


@dataclass
class _Held:
    kind: str
    source: str
    sock: socket.socket | None = None
    due: float = 0.0  # when to send the next byte (trickle) or to reopen (closed)
    answer: bytes = b""


@dataclass
class SlowClients:
    """``trickle`` + ``silent`` + ``mute`` connections held open against ``port`` from ``sources`` (cycled).

    Run it as a context manager; :attr:`answers` counts the statuses the server
    closed them with (``None``: closed without an answer), :attr:`opened` the
    connections made and :attr:`refused` those that could not even connect.
    """

    port: int
    trickle: int = 0
    silent: int = 0
    mute: int = 0
    sources: list[str] = field(default_factory=lambda: [f"127.0.1.{i}" for i in range(1, 255)])
    interval_s: float = 1.0
    reopen_s: float = 0.1
    answers: Counter = field(default_factory=Counter)
    opened: int = 0
    refused: int = 0

    def __post_init__(self):
        kinds = ["trickle"] * self.trickle + ["silent"] * self.silent + ["mute"] * self.mute
        self._held = [_Held(kind, self.sources[i % len(self.sources)]) for i, kind in enumerate(kinds)]
        self._stop = threading.Event()
        self._selector = selectors.DefaultSelector()
        self._thread = threading.Thread(target=self._run, name="slow-clients", daemon=True)

    def __enter__(self) -> "SlowClients":
        for held in self._held:
            self._open(held)
        self._thread.start()
        return self

    def __exit__(self, *_):
        self._stop.set()
        self._thread.join(10)
        for held in self._held:
            self._close(held)
        self._selector.close()

    @property
    def connected(self) -> int:
        """Connections open right now."""
        return sum(held.sock is not None for held in self._held)

    def _open(self, held: _Held) -> None:
        head = upload_head(self.port)
        payload = {"trickle": head + BODY_START, "silent": head + BODY_START + bytes(1000),
                   "mute": head[: len(head) // 2]}[held.kind]
        try:
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5, source_address=(held.source, 0))
            sock.sendall(payload)
        except OSError:
            self.refused += 1
            held.due = time.monotonic() + self.reopen_s
            return
        sock.setblocking(False)
        held.sock, held.answer, held.due = sock, b"", time.monotonic() + self.interval_s
        self._selector.register(sock, selectors.EVENT_READ, held)
        self.opened += 1

    def _close(self, held: _Held) -> None:
        if held.sock is not None:
            self._selector.unregister(held.sock)
            held.sock.close()
            held.sock = None

    def _closed_by_server(self, held: _Held) -> None:
        self.answers[status_of(held.answer)] += 1
        self._close(held)
        held.due = time.monotonic() + self.reopen_s

    def _run(self) -> None:
        while not self._stop.is_set():
            for key, _ in self._selector.select(timeout=0.05):
                held = key.data
                try:
                    chunk = held.sock.recv(65536)
                except OSError:
                    chunk = b""
                if chunk:
                    held.answer += chunk
                else:
                    self._closed_by_server(held)
            now = time.monotonic()
            for held in self._held:
                if held.due > now or self._stop.is_set():
                    continue
                if held.sock is None:
                    self._open(held)
                elif held.kind == "trickle":
                    try:
                        held.sock.send(b"x")
                        held.due = now + self.interval_s
                    except OSError as exc:
                        if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                            self._closed_by_server(held)
                else:
                    held.due = now + 3600  # silent and mute ones send nothing more
