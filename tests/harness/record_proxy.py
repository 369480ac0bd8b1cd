"""A TLS-record-counting relay: how many writes did the client make, and how big?

:class:`TlsRecordProxy` forwards every byte unchanged between a client and a TLS
server (the Dovecot fixture's IMAPS port) and splits what the *client* sends into
TLS records. Each ``send()`` of up to 16 KB on a TLS socket becomes exactly one
record whatever TCP does with it, so the records are the client's writes: a
command, its literal and the closing CRLF sent in three writes show as three
records, sent in one as one. The relay cannot read the (encrypted) content and
does not need to.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

APPLICATION_DATA = 23
"""Record type of encrypted data (TLS 1.3 uses it for everything after ServerHello)."""


@dataclass
class Recorded:
    """One client connection: the length of each record the client sent, in order."""

    records: list[tuple[int, int]] = field(default_factory=list)
    """(record type, payload length)."""
    client_bytes: int = 0

    @property
    def application_records(self) -> int:
        return sum(1 for kind, _ in self.records if kind == APPLICATION_DATA)


class TlsRecordProxy:
    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.connections: list[Recorded] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            recorded = Recorded()
            with self._lock:
                self._sockets += [client, upstream]
                self.connections.append(recorded)
            pumps = (
                threading.Thread(target=self._client_side, args=(client, upstream, recorded)),
                threading.Thread(target=self._pump, args=(upstream, client)),
            )
            for thread in pumps:
                thread.daemon = True
                self._threads.append(thread)
                thread.start()

    def _client_side(self, src: socket.socket, dst: socket.socket, rec: Recorded) -> None:
        pending = bytearray()
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                rec.client_bytes += len(data)
                pending += data
                while len(pending) >= 5:
                    length = int.from_bytes(pending[3:5], "big")
                    if len(pending) < 5 + length:
                        break
                    rec.records.append((pending[0], length))
                    del pending[: 5 + length]
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for s in sockets:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        for t in self._threads:
            t.join(timeout=2)
        self._accepter.join(timeout=2)

    def __enter__(self) -> TlsRecordProxy:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
