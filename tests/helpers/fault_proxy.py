"""A threaded HTTP proxy that forwards to an inference server and injects scripted faults into inference calls.

Each ``POST .../infer`` takes the next fault from ``faults`` (none left: forward untouched). Faults: ``"503"``,
``"429"`` (with ``Retry-After``), ``"slow"`` (answer after ``slow_s``), ``"drop"`` (close without answering),
and malformed answers forwarded from the server then spoiled: ``"classes"`` (one class short), ``"nan"``,
``"not_json"``. ``seen`` records (time, fault) per inference call.
"""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultProxy:
    def __init__(self, upstream: str, faults: list[str] | None = None, slow_s: float = 2.0, retry_after: int = 1):
        self.upstream = urlsplit(upstream)
        self.faults = list(faults or [])
        self.slow_s, self.retry_after = slow_s, retry_after
        self.seen: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def next_fault(self) -> str:
        with self._lock:
            fault = self.faults.pop(0) if self.faults else ""
            self.seen.append((time.monotonic(), fault))
            return fault

    def forward(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection(self.upstream.hostname, self.upstream.port, timeout=120)
        try:
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            answer = conn.getresponse()
            return answer.status, answer.read()
        finally:
            conn.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def _spoil(body: bytes, fault: str) -> bytes:
    if fault == "not_json":
        return b"<html>upstream error</html>"
    answer = json.loads(body)
    out = answer["outputs"][0]
    n, c = out["shape"]
    if fault == "classes":
        out["data"] = [v for i, v in enumerate(out["data"]) if i % c != c - 1]
        out["shape"] = [n, c - 1]
    elif fault == "nan":
        out["data"][0] = float("nan")
    return json.dumps(answer).encode()


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            self._reply(*proxy.forward("GET", self.path, None))

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            fault = proxy.next_fault() if self.path.endswith("/infer") else ""
            if fault == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault == "503":
                return self._reply(503, b'{"error": "overloaded"}')
            if fault == "429":
                return self._reply(429, b'{"error": "slow down"}', {"Retry-After": str(proxy.retry_after)})
            if fault == "slow":
                time.sleep(proxy.slow_s)
            status, answer = proxy.forward("POST", self.path, body)
            if fault in ("classes", "nan", "not_json"):
                answer = _spoil(answer, fault)
            self._reply(status, answer)

        def _reply(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a "slow" answer past its timeout)

    return Handler
