"""A loopback HTTP server that answers one byte at a time: a raw socket in a thread, no framework, so nothing
buffers the trickle. Every POST gets a valid OpenAI chat answer (``"positive"``, padded with spaces), sent byte
by byte every ``interval`` seconds from its first byte (``phase="headers"``) or after its headers
(``phase="body"``): each byte comes well within any per-read timeout, and the whole answer takes minutes.

Used by tests/test_remote.py and benchmarks/bad_inputs.py: ``with trickling("body", 1.0) as url: ...`` (the API
root, ``http://127.0.0.1:PORT/v1``).
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading

PAD = 4000  # spaces after the answer: at one byte a second, over an hour


def answer_bytes() -> bytes:
    body = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": "positive"}}]})
    body = (body + " " * PAD).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    return head + body


def _read_request(conn: socket.socket) -> bool:
    """Read one request (headers and a Content-Length body); False when the client went away first."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    found = re.search(rb"content-length:\s*(\d+)", head, re.IGNORECASE)
    need = int(found.group(1)) if found else 0
    while len(body) < need:
        chunk = conn.recv(65536)
        if not chunk:
            return False
        body += chunk
    return True


@contextlib.contextmanager
def trickling(phase: str = "body", interval: float = 1.0):
    """Serve on a free loopback port until the block ends; yields the API root URL."""
    if phase not in ("headers", "body"):
        raise ValueError(f"phase must be headers or body, got {phase!r}")
    stop = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    port = server.getsockname()[1]
    response = answer_bytes()
    start = 0 if phase == "headers" else response.index(b"\r\n\r\n") + 4

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up: this connection is done
            conn.settimeout(30)
            while _read_request(conn):
                conn.sendall(response[:start])
                for i in range(start, len(response)):
                    if stop.wait(interval):
                        return
                    conn.sendall(response[i : i + 1])

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True, name="trickle").start()

    thread = threading.Thread(target=accept, daemon=True, name="trickle-accept")
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop.set()
        thread.join(5)
        server.close()
