"""Private Courier-IMAP 5.0 servers for integration tests (Debian packages, never installed).

Each :class:`CourierServer` runs ``authdaemond`` (users in a userdb) and ``couriertcpd``
with ``imaplogin``/``imapd`` for plaintext IMAP on a free loopback port, in a private mount
namespace over the tree ``scripts/fetch-private-servers`` unpacks
(``tests/harness/private_root.py``): the instance's own ``/etc/courier`` and ``/run`` are
bound over the compiled-in paths.

As shipped by Debian: ``INBOX.`` prefix and ``.`` separator, no SPECIAL-USE, no LITERAL+,
no MULTIAPPEND, and LOGIN only (AUTH=PLAIN is offered only over TLS).  Mail homes are
Maildirs owned by the unprivileged mail user; a new user has Drafts, Sent and Trash, as a
webmail's first login leaves them.
"""

from __future__ import annotations

import imaplib
import os
import secrets
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from tests.harness.cyrus import PlainInfo
from tests.harness.dovecot import MAIL_USER, Account, _ensure_system_user, find_free_ports
from tests.harness.private_root import (
    Namespace,
    PrivateServerError,
    ServerFactory,
    log_tail,
    private_tree,
    wait_for_greeting,
)

HOST = "127.0.0.1"
STARTUP_TIMEOUT = 20.0
DEFAULT_FOLDERS = ("Drafts", "Sent", "Trash")


@dataclass(frozen=True)
class CourierVariant:
    """Folders every new user's Maildir has (below INBOX.)."""

    folders: tuple[str, ...] = DEFAULT_FOLDERS
    extra_config: str = ""


class CourierServer:
    """One private Courier-IMAP instance; :meth:`start` / :meth:`stop` or ``with``."""

    kind = "courier"

    def __init__(self, root: Path, variant: CourierVariant | None = None) -> None:
        self.root = root
        self.variant = variant or CourierVariant()
        self.etc = root / "etc-courier"
        self.run_dir = root / "run"
        self.home_root = root / "home"
        self.log_path = root / "courier.log"
        (port,) = find_free_ports(HOST)
        self.info = PlainInfo(HOST, "localhost", port, ".", "INBOX.")
        mail_user = _ensure_system_user(MAIL_USER)
        self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
        self._ns: Namespace | None = None
        self._lock = threading.Lock()
        self._users: dict[str, str] = {}
        self._counter = 0
        self.startup_seconds = 0.0

    def _configure(self) -> None:
        tree = private_tree()
        shutil.copytree(tree / "etc" / "courier", self.etc, dirs_exist_ok=True)
        rc = self.etc / "authdaemonrc"
        rc.write_text(
            rc.read_text().replace('authmodulelist="authpam"', 'authmodulelist="authuserdb"')
        )
        imapd = self.etc / "imapd"
        imapd.write_text(
            imapd.read_text()
            + f"\n# tests/harness/courier.py\nADDRESS={HOST}\nPORT={self.info.port}\n"
            "MAXPERIP=100\nIMAPDSTARTTLS=NO\n" + self.variant.extra_config + "\n"
        )
        userdb = self.etc / "userdb"
        userdb.write_text("")
        userdb.chmod(0o600)
        for sub in (self.run_dir / "courier" / "authdaemon", self.home_root):
            sub.mkdir(parents=True, exist_ok=True)

    def start(self) -> CourierServer:
        if self._ns is not None:
            raise PrivateServerError("Courier already started")
        began = time.monotonic()
        self.root.chmod(0o755)
        self._configure()
        self._ns = Namespace(self.root, binds=[(self.etc, "/etc/courier"), (self.run_dir, "/run")])
        # What /usr/lib/courier/imapd start does, in the foreground and without TLS.
        script = """\
/usr/lib/courier/courier-authlib/authdaemond &
set -a
. /etc/courier/imapd-ssl
. /etc/courier/imapd
IMAP_STARTTLS=NO
umask $IMAP_UMASK
exec /usr/sbin/couriertcpd -address=$ADDRESS -maxprocs=$MAXDAEMONS -maxperip=$MAXPERIP \
  $TCPDOPTS $PORT /usr/lib/courier/courier/imaplogin /usr/bin/imapd $MAILDIRPATH
"""
        try:
            self._ns.start(script, self.log_path)
            wait_for_greeting(HOST, self.info.port, STARTUP_TIMEOUT, self._ns, "couriertcpd")
            self._wait_for_authdaemon()
        except BaseException as exc:
            self.stop()
            if isinstance(exc, PrivateServerError):
                raise PrivateServerError(f"{exc}{self._tails()}") from exc
            raise
        self.startup_seconds = time.monotonic() - began
        return self

    def _wait_for_authdaemon(self) -> None:
        socket_path = self.run_dir / "courier" / "authdaemon" / "socket"
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not socket_path.exists():
            if time.monotonic() > deadline:
                raise PrivateServerError("authdaemond did not create its socket")
            time.sleep(0.02)

    def add_user(self, name: str | None = None, password: str | None = None) -> Account:
        """Add a userdb entry (SHA-512 crypt) and a Maildir with the variant's folders."""
        with self._lock:
            if name is None:
                while name is None or name in self._users:
                    self._counter += 1
                    name = f"user{self._counter}"
            if name in self._users:
                raise ValueError(f"user {name!r} already exists")
            password = password or secrets.token_urlsafe(12)
            home = self.home_root / name
            self._make_maildir(home / "Maildir")
            hashed = subprocess.run(
                ["openssl", "passwd", "-6", "-stdin"],
                input=password,
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            self._users[name] = (
                f"{name}\tuid={self.uid}|gid={self.gid}|home={home}|mail={home}/Maildir"
                f"|systempw={hashed}"
            )
            (self.etc / "userdb").write_text("".join(f"{line}\n" for line in self._users.values()))
            assert self._ns is not None
            self._ns.run(["/usr/sbin/makeuserdb"])
        account = Account(username=name, password=password, email=f"{name}@example.test")
        self._check_login(account)
        return account

    def _make_maildir(self, maildir: Path) -> None:
        folders = [maildir] + [maildir / f".{name}" for name in self.variant.folders]
        for folder in folders:
            for sub in ("cur", "new", "tmp"):
                (folder / sub).mkdir(parents=True, exist_ok=True)
            if folder != maildir:
                (folder / "maildirfolder").touch()
        (maildir / "courierimapsubscribed").write_text(
            "".join(f"INBOX.{name}\n" for name in self.variant.folders)
        )
        for path in [maildir.parent, *maildir.parent.rglob("*")]:
            os.chown(path, self.uid, self.gid)

    def _check_login(self, account: Account) -> None:
        client = imaplib.IMAP4(HOST, self.info.port, timeout=30)
        try:
            if account.password.isascii():
                client.login(account.username, account.password)
            else:  # imaplib quotes ASCII only: the password goes as a UTF-8 literal
                client.literal = account.password.encode("utf-8")
                typ, data = client._simple_command("LOGIN", account.username)
                if typ != "OK":
                    raise imaplib.IMAP4.error(data)
                client.state = "AUTH"
            client.logout()
        except imaplib.IMAP4.error as exc:
            raise PrivateServerError(f"login of {account.username}: {exc}{self._tails()}") from exc

    def maildir_of(self, user: str | Account) -> Path:
        return self.home_root / (user.username if isinstance(user, Account) else user) / "Maildir"

    def stop(self) -> None:
        ns, self._ns = self._ns, None
        if ns is not None:
            ns.stop()

    @property
    def running(self) -> bool:
        ns = self._ns
        return ns is not None and ns.proc is not None and ns.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def log_files(self) -> dict[str, Path]:
        """What the factory keeps when the session ends, by archived name."""
        return {f"{self.root.name}.log": self.log_path}

    def _tails(self) -> str:
        return f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}"

    def __enter__(self) -> CourierServer:
        return self.start() if self._ns is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class CourierFactory(ServerFactory[CourierVariant, CourierServer]):
    """``courier_factory()``: one server per variant for the session, logs archived."""

    def __init__(self, log_archive: Path | None = None) -> None:
        super().__init__("courier", CourierServer, log_archive)

    def __call__(self, **knobs: object) -> CourierServer:
        return self.server_for(CourierVariant(**knobs))  # type: ignore[arg-type]


__all__ = ["CourierFactory", "CourierServer", "CourierVariant"]
