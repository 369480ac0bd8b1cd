"""A deliberately unreliable TCP proxy for tests: it cuts busy connections.

Every connection is forwarded to the real server; the first ``cuts`` connections
that carry more than ``after_bytes`` from the client are cut in both directions
at that point, as a dropped Wi-Fi or a NAT timeout would. Later ones pass, and
so does the very first one (the migration's control connection) unless
``spare_first`` is False.
Everything the clients sent is kept in ``sent`` (readable on a plaintext link).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType


class CuttingProxy:
    def __init__(
        self, target: tuple[str, int], after_bytes: int, cuts: int, spare_first: bool = True
    ) -> None:
        self.target = target
        self.after_bytes = after_bytes
        self.cuts_left = cuts
        self.cut = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._closed = False
        self._spare = spare_first  # the first connection is the migration's control channel
        self.sent = bytearray()
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            with self._lock:
                limit = self.after_bytes if self.cuts_left > 0 and not self._spare else None
                self._spare = False
            up = threading.Thread(target=self._pump, args=(client, upstream, limit), daemon=True)
            down = threading.Thread(target=self._pump, args=(upstream, client, None), daemon=True)
            self._threads += [up, down]
            up.start()
            down.start()

    def _pump(self, src: socket.socket, dst: socket.socket, limit: int | None) -> None:
        record = src in self._sockets[0::2]  # client -> server
        sent = 0
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if limit is not None and sent + len(data) > limit:
                    with self._lock:
                        if self.cuts_left > 0:
                            self.cuts_left -= 1
                            self.cut += 1
                            dst.sendall(data[: limit - sent])
                            break
                    limit = None
                dst.sendall(data)
                sent += len(data)
                if record:
                    with self._lock:
                        self.sent += data
        except OSError:
            pass
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        for s in self._sockets:
            s.close()
        for t in self._threads:
            t.join(timeout=2)
        self._accepter.join(timeout=2)

    def __enter__(self) -> CuttingProxy:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
