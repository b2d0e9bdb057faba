"""Simulated distance: an HTTP proxy in front of the twin's DynamoDB endpoint that adds a fixed delay to every request.

A twin answers in about a millisecond; DynamoDB in a region answers a client elsewhere after
a round trip of tens of milliseconds. What batches in flight buy shows only at that distance:
``DelayProxy(upstream, 0.020)`` holds each request 20 ms before passing it on, so a client
that waits for each answer before the next request (boto3's ``batch_writer``) pays the 20 ms
every time, and one with four batches in flight pays it once per four.

Plain HTTP/1.1 with keep-alive, one thread per client connection and one upstream connection
per thread: requests on a connection stay in order, as on a real one. The twin's engines
check no signatures, so headers (Host included) are passed on as they came.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    upstream: tuple[str, int]
    delay: float
    requests: int = 0
    lock: threading.Lock


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects
    server: _Server

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass  # a bench run's output is its report

    def _upstream(self) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection | None = getattr(self, "_conn", None)
        if conn is None:
            conn = http.client.HTTPConnection(*self.server.upstream, timeout=300)
            self._conn = conn
        return conn

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(self.server.delay)  # the distance, paid before the server sees the request
        with self.server.lock:
            self.server.requests += 1
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        try:
            conn = self._upstream()
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException):
            self._conn = None  # the upstream closed a kept-alive connection: one more try on a new one
            conn = self._upstream()
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
        payload = resp.read()
        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_GET = do_PUT = do_DELETE = _forward


@contextmanager
def delay_proxy(upstream_url: str, delay_seconds: float) -> Iterator[_Server]:
    """A proxy to ``upstream_url`` on a free local port (``server.server_address``), stopped on exit."""
    parts = urlsplit(upstream_url)
    server = _Server(("127.0.0.1", 0), _Handler)
    server.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
    server.delay = delay_seconds
    server.lock = threading.Lock()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def endpoint(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}"
