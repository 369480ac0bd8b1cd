"""The loopback side of the browser sign-in: a one-shot HTTP listener on 127.0.0.1 (and
::1) that catches the authorization server's redirect with the code (RFC 8252 7.3).

Kept apart from the flows in :mod:`advisor.oauth.flows` because it is a small server of its
own: threads, a hostile-request policy and the page the user sees after signing in.
"""

from __future__ import annotations

import contextlib
import html
import logging
import secrets
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

log = logging.getLogger(__name__)


_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>mailadvisor</title></head>
<body style="font-family: sans-serif; margin: 3em"><h1>{title}</h1><p>{text}</p></body></html>
"""


class Listener:
    """A one-shot HTTP listener on a loopback port that catches the authorization answer."""

    def __init__(self, redirect_host: str, state: str) -> None:
        self.state = state
        self.answer: dict[str, str] | None = None
        self.foreign_answers = 0
        self.done = threading.Event()
        self._servers: list[HTTPServer] = []
        self._threads: list[threading.Thread] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body are two writes
            timeout = 10  # a connection that sends nothing must not block the listener

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query holds the code: never into a log

            def do_GET(self) -> None:
                listener._handle(self)

        first = _LoopbackServer(("127.0.0.1", 0), Handler)
        self._servers.append(first)
        port = first.server_address[1]
        if redirect_host == "localhost":
            # "localhost" may resolve to ::1 in the browser: listen there too when possible.
            with contextlib.suppress(OSError):
                self._servers.append(_V6Server(("::1", port), Handler))
        host = redirect_host if redirect_host in ("localhost", "127.0.0.1") else "127.0.0.1"
        # No path: Microsoft and Google both match a bare loopback redirect on any port.
        self.redirect_uri = f"http://{host}:{port}"
        self.port = port

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(request.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path not in ("", "/") or not ({"code", "error"} & params.keys()):
            self._reply(request, 404, "Nothing here", "This address only receives a sign-in.")
            return
        if not secrets.compare_digest(params.get("state", "").encode(), self.state.encode()):
            # Not the answer to our request (RFC 6749 10.12): ignore it, keep waiting.
            self.foreign_answers += 1
            self._reply(
                request,
                400,
                "Not accepted",
                "This answer does not belong to mailadvisor's sign-in.",
            )
            return
        if self.done.is_set():
            self._reply(request, 200, "Already done", "You can close this tab.")
            return
        self.answer = params
        self.done.set()
        if "error" in params:
            self._reply(
                request,
                200,
                "Sign-in not completed",
                "mailadvisor got no permission. You can close this tab and look at the terminal.",
            )
        else:
            self._reply(
                request, 200, "Signed in", "mailadvisor got the permission. You can close this tab."
            )

    @staticmethod
    def _reply(request: BaseHTTPRequestHandler, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=html.escape(title), text=html.escape(text)).encode()
        request.send_response(status)
        request.send_header("Content-Type", "text/html; charset=utf-8")
        request.send_header("Content-Length", str(len(body)))
        request.send_header("Cache-Control", "no-store")
        request.send_header("Referrer-Policy", "no-referrer")
        request.send_header("Connection", "close")
        request.end_headers()
        request.wfile.write(body)

    def __enter__(self) -> Listener:
        for server in self._servers:
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="oauth-loopback",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for server in self._servers:
            if self._threads:
                server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)

    def wait(self, timeout: float) -> dict[str, str] | None:
        # Short waits keep Ctrl-C responsive.
        deadline = time.monotonic() + timeout
        while not self.done.wait(min(0.25, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline:
                return None
        return self.answer


class _LoopbackServer(socketserver.ThreadingMixIn, HTTPServer):
    # One thread per connection: a connection that sends nothing cannot hold up the answer.
    daemon_threads = True
    block_on_close = False

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks the host name up (getfqdn), which can take seconds.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "localhost", self.server_address[1]

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A broken or hostile request: drop it quietly (the default prints a traceback).
        log.debug("loopback listener: a request failed", exc_info=False)


class _V6Server(_LoopbackServer):
    address_family = socket.AF_INET6
