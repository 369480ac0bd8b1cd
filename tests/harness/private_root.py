"""Run servers unpacked from Debian packages (never installed) in a private mount namespace.

Cyrus and Courier conflict with dovecot-imapd in apt, so ``scripts/fetch-private-servers``
downloads their .debs and unpacks them into a private tree.  Their binaries have compiled-in
paths (``/usr/lib/cyrus/bin``, ``/etc/courier``, ``/run/courier``, ``/dev/log``...), so each
server runs in its own mount namespace (``unshare -m``) where read-only overlays put the tree
over ``/usr`` and ``/etc``, the instance's directories are bound onto the paths it writes,
and ``/dev/log`` is a socket this module reads (Cyrus logs only to syslog).  Nothing outside
the namespace changes; :meth:`Namespace.stop` kills exactly the processes of that namespace.

Standard library only, like ``tests/harness/dovecot.py``.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Generic, Protocol, TypeVar

REPO = Path(__file__).resolve().parent.parent.parent
FETCH_SCRIPT = REPO / "scripts" / "fetch-private-servers"
#: Where the script keeps the downloaded packages and the unpacked tree.
CACHE_ENV = "MAILADVISOR_TEST_SERVERS"


V = TypeVar("V", bound=Hashable)
S = TypeVar("S", bound="PrivateServer")


class PrivateServerError(RuntimeError):
    """A private server could not be fetched, started or stopped."""


_tree_lock = threading.Lock()
_tree: Path | None = None


def private_tree() -> Path:
    """Return the unpacked package tree, running scripts/fetch-private-servers if needed."""
    global _tree
    with _tree_lock:
        if _tree is None:
            if os.geteuid() != 0:
                raise PrivateServerError(
                    "Cyrus and Courier run in a private mount namespace, which needs root"
                )
            result = subprocess.run(
                [str(FETCH_SCRIPT)], capture_output=True, text=True, check=False, timeout=600
            )
            if result.returncode != 0:
                raise PrivateServerError(
                    f"{FETCH_SCRIPT.name} failed (exit {result.returncode}); the Cyrus and "
                    f"Courier tests need their Debian packages:\n{result.stderr}{result.stdout}"
                )
            _tree = Path(result.stdout.strip().splitlines()[-1])
        return _tree


class SyslogSink:
    """A ``/dev/log`` datagram socket whose messages are appended to a log file."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(socket_path))
        socket_path.chmod(0o666)  # the daemons log after dropping root
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="syslog-sink", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with self.log_path.open("ab") as log:
            while not self._stop.is_set():
                try:
                    data = self._sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                log.write(data.rstrip(b"\0\n") + b"\n")
                log.flush()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._sock.close()


def _mount_ns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


class Namespace:
    """One shell started in a new mount namespace over the private tree.

    ``binds`` maps instance directories (or files) onto paths the daemon has compiled
    in; each target must exist in the tree or on the system.  ``log_socket`` becomes
    ``/dev/log`` inside.
    """

    def __init__(
        self,
        instance: Path,
        binds: Sequence[tuple[Path, str]] = (),
        log_socket: Path | None = None,
    ) -> None:
        self.tree = private_tree()
        self.instance = instance
        self.binds = list(binds)
        self.log_socket = log_socket
        self._proc: subprocess.Popen[bytes] | None = None
        self._ns: str | None = None
        self._outer_ns = _mount_ns(os.getpid())

    def _setup(self) -> str:
        """The shell commands that build the namespace's view of the file system."""
        tree, inst = self.tree, self.instance
        lines = ["set -e"]
        for top in ("usr", "etc"):
            lines.append(f"mount -t overlay mailadv-{top} -o lowerdir={tree}/{top}:/{top} /{top}")
        if self.log_socket is not None:
            devlower = inst / "dev-lower"
            devlower.mkdir(exist_ok=True)
            (devlower / "log").touch()
            # Device nodes work through the overlay; the daemons need no /dev/pts or shm.
            lines.append(f"mount -t overlay mailadv-dev -o lowerdir={devlower}:/dev /dev")
            lines.append(f"mount --bind {shlex.quote(str(self.log_socket))} /dev/log")
        for source, target in self.binds:
            lines.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(target)}")
        return "\n".join(lines)

    def start(self, script: str, output: Path) -> subprocess.Popen[bytes]:
        """Run ``script`` (sh) inside the namespace; it should ``exec`` the daemon."""
        if self._proc is not None:
            raise PrivateServerError("namespace already started")
        with output.open("ab") as out:
            self._proc = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c",
                 self._setup() + "\n" + script],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return self._proc

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:
        return self._proc

    def namespace_id(self) -> str | None:
        """The mount namespace of the started shell, once it has unshared."""
        if self._ns is None and self._proc is not None and self._proc.poll() is None:
            ns = _mount_ns(self._proc.pid)
            if ns is not None and ns != self._outer_ns:
                self._ns = ns
        return self._ns

    def run(
        self, args: Sequence[str], *, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run a command inside the running namespace (``nsenter -m``)."""
        proc = self._proc
        if proc is None or self.namespace_id() is None:
            raise PrivateServerError("the namespace is not running")
        command = ["nsenter", "-t", str(proc.pid), "-m", "--", *args]
        result = subprocess.run(
            command, capture_output=True, text=True, input=input, check=False, timeout=60
        )
        if check and result.returncode != 0:
            raise PrivateServerError(
                f"{' '.join(args)} exited with {result.returncode}:\n{result.stderr}{result.stdout}"
            )
        return result

    def _members(self) -> list[int]:
        ns = self._ns
        if ns is None:
            return []
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and _mount_ns(int(entry.name)) == ns:
                pids.append(int(entry.name))
        return pids

    def stop(self) -> None:
        """Kill every process of the namespace (daemons detach, so the group is not enough)."""
        proc = self._proc
        if proc is None:
            return
        self.namespace_id()
        try:
            for sig, grace in ((signal.SIGTERM, 0.3), (signal.SIGKILL, 5.0)):
                for pid in self._members():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, sig)
                deadline = time.monotonic() + grace
                while time.monotonic() < deadline:
                    proc.poll()
                    if not [p for p in self._members() if not _zombie(p)]:
                        break
                    time.sleep(0.01)
            if [p for p in self._members() if not _zombie(p)]:
                raise PrivateServerError(f"processes of namespace {self._ns} survive SIGKILL")
        finally:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)
            self._proc = None


def _zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state in ("Z", "X")


def wait_for_greeting(
    host: str, port: int, timeout: float, alive: Namespace, describe: str
) -> bytes:
    """Poll until ``host:port`` sends an IMAP ``* OK`` greeting; return it."""
    deadline = time.monotonic() + timeout
    while True:
        proc = alive.proc
        if proc is None or proc.poll() is not None:
            raise PrivateServerError(f"{describe} exited during start-up")
        try:
            with socket.create_connection((host, port), timeout=1.0) as sock:
                sock.settimeout(max(0.2, deadline - time.monotonic()))
                greeting = sock.recv(1024)
            if greeting.startswith(b"* OK"):
                return greeting
            raise PrivateServerError(f"{describe}: unexpected greeting {greeting!r}")
        except OSError as exc:
            if time.monotonic() > deadline:
                raise PrivateServerError(
                    f"{describe} did not answer on {host}:{port} within {timeout:.0f} s ({exc})"
                ) from exc
            time.sleep(0.02)


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a server's log ("" before it exists)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


class PrivateServer(Protocol):
    """What :class:`ServerFactory` needs of a server it starts."""

    root: Path

    def start(self) -> object: ...

    def stop(self) -> None: ...

    def log_files(self) -> dict[str, Path]:
        """Each log to keep, by the name it is archived under."""
        ...


class ServerFactory(Generic[V, S]):
    """One running server per variant for the session, started on first use; at the end
    every server is stopped and its logs are copied into ``log_archive``."""

    def __init__(self, name: str, make: Callable[[Path, V], S], log_archive: Path | None) -> None:
        private_tree()  # fail before creating anything when the packages cannot be had
        self._name = name
        self._make = make
        self.root = Path(tempfile.mkdtemp(prefix=f"mailadv-{name}-"))
        self.root.chmod(0o755)
        self.log_archive = log_archive
        self._servers: dict[V, S] = {}
        self._spawned: list[S] = []
        self._lock = threading.Lock()

    def server_for(self, variant: V) -> S:
        with self._lock:
            server = self._servers.get(variant)
            if server is None:
                root = self.root / f"{self._name}{len(self._spawned) + 1}"
                root.mkdir(mode=0o755)
                server = self._make(root, variant)
                self._spawned.append(server)
                server.start()
                self._servers[variant] = server
            return server

    @property
    def servers(self) -> tuple[S, ...]:
        return tuple(self._spawned)

    def close(self) -> None:
        errors: list[BaseException] = []
        try:
            for server in self._spawned:
                try:
                    server.stop()
                except BaseException as exc:
                    errors.append(exc)
                if self.log_archive is not None:
                    for name, log in server.log_files().items():
                        if log.exists():
                            self.log_archive.mkdir(parents=True, exist_ok=True)
                            shutil.copy(log, self.log_archive / name)
        finally:
            self._spawned.clear()
            self._servers.clear()
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise errors[0]
