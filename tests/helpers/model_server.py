"""Start ``python -m scripts.serve_target`` (MLServer) on a free 127.0.0.1 port and wait until it is ready."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serving(args: list[str], log: Path, env: dict[str, str] | None = None, timeout_s: float = 180) -> Iterator[str]:
    """The URL of a real model server started with ``serve_target args``; stopped when the block ends.

    RuntimeError with the end of the server's log when it does not become ready within ``timeout_s``.
    """
    import requests

    port = free_port()
    cmd = [sys.executable, "-m", "scripts.serve_target", "--port", str(port), *args]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            with contextlib.suppress(requests.ConnectionError):
                if requests.get(f"{url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the model server did not become ready:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
