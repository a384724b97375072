"""Talking to ``python -m RMBG serve`` with the standard library only: start it, wait for it, post photos.

Used by ``tests/test_server.py`` and ``scripts/bench_serve.py``; nothing here
is needed to run the server.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode, urlsplit


@dataclass
class Reply:
    """One HTTP answer: status, headers (lower-case names) and body."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def multipart(fields: dict | None = None, files: dict | None = None) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its content type; ``files`` maps field -> bytes or (filename, bytes)."""
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in (fields or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, value in (files or {}).items():
        filename, data = value if isinstance(value, tuple) else ("upload", value)
        head = (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n")
        parts += [head.encode(), data, b"\r\n"]
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def request(base: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None,
            query: dict | None = None, timeout: float = 60.0, source: str | None = None) -> Reply:
    """One request to ``base`` (``http://host:port``) on a fresh connection (from the address ``source``)."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path + (f"?{urlencode(query)}" if query else ""), body=body, headers=headers or {})
        answer = conn.getresponse()
        return Reply(answer.status, {k.lower(): v for k, v in answer.getheaders()}, answer.read())
    finally:
        conn.close()


def post_photo(base: str, data: bytes, path: str = "/api/remove", fields: dict | None = None,
               files: dict | None = None, headers: dict | None = None, query: dict | None = None,
               timeout: float = 60.0, source: str | None = None) -> Reply:
    """``POST`` a photo as the multipart field ``file`` (plus ``fields`` and other ``files``)."""
    body, content_type = multipart(fields, {"file": ("photo.jpg", data), **(files or {})})
    return request(base, "POST", path, body, {"Content-Type": content_type, **(headers or {})}, query, timeout,
                   source)


def start_server(args: list[str], log_path: Path, cwd: Path | None = None, command: list[str] | None = None,
                 env: dict | None = None):
    """``python -m RMBG serve ARGS`` (or ``command``) in a subprocess, its output going to ``log_path``
    (``env``: variables to set besides the current ones)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **(env or {}))
    log = open(log_path, "wb")
    try:
        return subprocess.Popen(command or [sys.executable, "-m", "RMBG", "serve", *args], cwd=cwd, env=env,
                                stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()  # the child holds its own copy


def wait_healthy(base: str, process, timeout_s: float = 180.0, path: str = "/health") -> float:
    """Seconds until ``GET path`` answers 200; RuntimeError when the process ends or time runs out."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before it was healthy")
        try:
            if request(base, "GET", path, timeout=5).status == 200:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"the server was not healthy within {timeout_s:g} s")


def stop_server(process, grace_s: float = 15.0) -> int:
    """Stop a server started by :func:`start_server` (terminate, then kill after ``grace_s``)."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(grace_s)
    return process.returncode
