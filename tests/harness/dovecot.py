"""Private, throwaway Dovecot servers for integration tests.

Each :class:`DovecotServer` is a separate ``dovecot -F -c CONF`` process with its own
config, ``base_dir``, ``state_dir``, log and mail homes below a temporary directory, on
free loopback ports.  The system Dovecot (``/etc/dovecot``) is never read or touched.

Listeners of every server (see :class:`ServerInfo`):

* IMAP implicit TLS and IMAP STARTTLS on ``127.0.0.1``; plaintext LOGIN is refused
  before STARTTLS (``disable_plaintext_auth = yes``).  Dovecot treats a client whose
  address equals the server address as secure, so the refusal is only visible to
  clients connecting from another address, e.g. bound to source ``127.0.0.2``.
* IMAP plaintext on ``127.0.0.3``: a ``local 127.0.0.3 { ssl = no;
  disable_plaintext_auth = no }`` block makes LOGIN work without TLS there (and
  STARTTLS is not offered) while every other listener stays strict.
* POP3 implicit TLS and POP3 STARTTLS on ``127.0.0.1``.  A client on ``127.0.0.1`` may
  log in on the STARTTLS port without TLS (the same-address rule above): that is how a
  POP3 client without TLS settings (GNU movemail) fetches mail in tests.

Mail is kept in Maildir (``~/Maildir``) unless the variant's ``mail_location`` says
otherwise (:data:`MBOX_LOCATION`: mbox files in ``~/mail``, INBOX ``~/mail/inbox``).

This module only needs the standard library so benchmarks can use it without pytest;
the pytest fixtures live in ``tests/conftest.py``.
"""

from __future__ import annotations

import ctypes
import grp
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

INSTALL_HINT = (
    "apt-get install dovecot-imapd dovecot-pop3d (scripts/test, run by .ci/run, does it); "
    "the integration tests need a real Dovecot and are never skipped"
)
#: Mail storage user created when the tests run as root (Dovecot refuses root for mail).
MAIL_USER = "mailadvtest"
EMAIL_DOMAIN = "example.test"
HOST = "127.0.0.1"
HOSTNAME = "localhost"
#: Address of the plaintext IMAP listener; see the module docstring.
PLAIN_HOST = "127.0.0.3"
STARTUP_TIMEOUT = 10.0

#: A variant's ``mail_location`` keeping mail in mbox files, Dovecot's usual mbox layout.
MBOX_LOCATION = "mbox:~/mail:INBOX=~/mail/inbox"
#: Special-use folders of the default variant (name relative to the namespace prefix).
DEFAULT_SPECIAL_USE: Mapping[str, str | None] = {
    "Sent": "\\Sent",
    "Drafts": "\\Drafts",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}
GMAIL_SPECIAL_USE: Mapping[str, str | None] = {
    "[Gmail]/Sent Mail": "\\Sent",
    "[Gmail]/All Mail": "\\All",
    "[Gmail]/Spam": "\\Junk",
    "[Gmail]/Trash": "\\Trash",
    "[Gmail]/Drafts": "\\Drafts",
}
OUTLOOK_SPECIAL_USE: Mapping[str, str | None] = {
    "Sent Items": "\\Sent",
    "Deleted Items": "\\Trash",
    "Junk Email": "\\Junk",
    "Drafts": "\\Drafts",
    "Archive": "\\Archive",
    "Calendar": None,
    "Contacts": None,
}

#: Capabilities of Courier-IMAP 5 (no LITERAL+, MULTIAPPEND or SPECIAL-USE) for Dovecot
#: to advertise instead of its own: ``imap_capability`` replaces the whole list, so a
#: client takes the synchronising-literal, one-message-per-APPEND path.
COURIER_CAPABILITIES = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE SORT QUOTA IDLE ENABLE"


def capability_config(capabilities: str) -> str:
    """``extra_config`` making a server advertise exactly ``capabilities`` after login."""
    return f"protocol imap {{\n  imap_capability = {capabilities}\n}}\n"


# Lower-case ASCII, or letters beyond ASCII (josé@bücher.de): Dovecot keeps user names
# as UTF-8 bytes, the passwd-file is written in UTF-8 and named after the user.
_USERNAME_RE = re.compile(r"(?:[a-z0-9]|[^\x00-\x7f\W])(?:[a-z0-9._+@-]|[^\x00-\x7f\W])*\Z")
_SPECIAL_USE_RE = re.compile(r"\\[A-Za-z]+(?: \\[A-Za-z]+)*\Z")


class DovecotError(RuntimeError):
    """Dovecot could not be started, stopped or queried."""


class DovecotMissingError(DovecotError):
    """The Dovecot binaries (or openssl) are not installed."""


@dataclass(frozen=True)
class Account:
    """A mail user on a test server; log in with ``username``, not ``email``."""

    username: str
    password: str
    email: str


@dataclass(frozen=True)
class ServerInfo:
    """Everything a client needs to connect to one test server."""

    host: str
    hostname: str
    imaps_port: int
    imap_starttls_port: int
    imap_plain_host: str
    imap_plain_port: int
    pop3s_port: int
    pop3_starttls_port: int
    ca_file: Path
    separator: str
    prefix: str

    def ssl_context(self) -> ssl.SSLContext:
        """Return a verifying client context that trusts only the throwaway CA."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of the throwaway CA and the server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


@dataclass(frozen=True)
class Variant:
    """The knobs that make servers differ; equal variants share one server."""

    separator: str = "/"
    prefix: str = ""
    special_use: tuple[tuple[str, str | None], ...] = tuple(DEFAULT_SPECIAL_USE.items())
    extra_config: str = ""
    mail_location: str = ""
    """Dovecot's mail_location; empty: Maildir in ~/Maildir."""
    maildir_plus_plus: bool = False
    """Keep Maildir++ on disk under a "/" separator (a common hosting set-up): Dovecot
    then refuses "." in folder names. By default "/" comes with LAYOUT=fs."""

    def __post_init__(self) -> None:
        if self.separator not in ("/", "."):
            raise ValueError(f"separator must be '/' or '.', not {self.separator!r}")
        if self.prefix and not self.prefix.endswith(self.separator):
            raise ValueError(f"prefix {self.prefix!r} must end with {self.separator!r}")
        for name, attribute in self.special_use:
            if not name or name.startswith(self.separator) or name.endswith(self.separator):
                raise ValueError(f"bad special-use folder name {name!r}")
            if attribute is not None and not _SPECIAL_USE_RE.match(attribute):
                raise ValueError(f"bad special-use attribute {attribute!r} for {name!r}")


def find_free_ports(*hosts: str) -> list[int]:
    """Return one free TCP port per host; the sockets stay bound until all are chosen.

    Keeping them bound prevents the kernel from handing out the same port twice.
    Another process may still grab a port before Dovecot binds it; that race is
    accepted because start-up then fails loudly rather than silently.
    """
    sockets: list[socket.socket] = []
    try:
        for host in hosts:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.bind((host, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def make_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a server certificate for localhost/127.0.0.1/127.0.0.2 with openssl.

    EC keys keep this fast (RSA key generation would dominate start-up).  They are
    valid for 90 days: ``mailadvisor test`` warns about a certificate within 14 days
    of expiring, and the fixture's must pass it cleanly.  The
    extensions are complete enough for OpenSSL's strict X.509 checks (Python >= 3.13
    enables ``VERIFY_X509_STRICT`` in default contexts).
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise DovecotMissingError("openssl is not installed: apt-get install openssl")
    directory.mkdir(parents=True, exist_ok=True)
    cnf = directory / "openssl.cnf"
    cnf.write_text(
        "[req]\n"
        "distinguished_name = dn\n"
        "prompt = no\n"
        "[dn]\n"
        "CN = unused\n"
        "[ca_ext]\n"
        "basicConstraints = critical, CA:TRUE\n"
        "keyUsage = critical, keyCertSign, cRLSign\n"
        "subjectKeyIdentifier = hash\n"
        "[server_ext]\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        f"subjectAltName = DNS:{HOSTNAME}, IP:{HOST}, IP:127.0.0.2\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid:always\n"
    )
    files = TlsFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key")
    ca_key, csr = directory / "ca.key", directory / "server.csr"
    newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands: list[list[str | Path]] = [
        [openssl, "req", "-x509", "-config", cnf, "-extensions", "ca_ext", *newkey,
         "-keyout", ca_key, "-out", files.ca_file, "-days", "90",
         "-subj", "/O=mailadvisor tests/CN=mailadvisor throwaway CA"],
        [openssl, "req", "-new", "-config", cnf, *newkey,
         "-keyout", files.key_file, "-out", csr, "-subj", f"/CN={HOSTNAME}"],
        [openssl, "x509", "-req", "-in", csr, "-CA", files.ca_file, "-CAkey", ca_key,
         "-set_serial", f"0x{secrets.token_hex(8)}", "-days", "90",
         "-extfile", cnf, "-extensions", "server_ext", "-out", files.cert_file],
    ]  # fmt: skip
    for command in commands:
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DovecotError(f"{' '.join(map(str, command))} failed:\n{result.stderr}")
    return files


def _find_binary(name: str, explicit: str | None) -> str:
    """Locate a Dovecot binary; /usr/sbin is often not on a normal user's PATH."""
    path = explicit or shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None or not os.access(path, os.X_OK):
        raise DovecotMissingError(f"{explicit or name} not found: {INSTALL_HINT}")
    return path


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    """Return the passwd entry of ``name``, creating a nologin system user if missing."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    result = subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        # Re-read even on failure: a parallel test run (xdist) may have won the race.
        return pwd.getpwnam(name)
    except KeyError:
        raise DovecotError(f"cannot create user {name}: {result.stderr.strip()}") from None


def _check_traversable(path: Path) -> None:
    """Fail early if Dovecot's unprivileged processes could not reach ``path``."""
    for directory in (path, *path.parents):
        if not os.stat(directory).st_mode & 0o001:
            raise DovecotError(
                f"{directory} is not world-traversable, so Dovecot's unprivileged "
                f"processes cannot reach {path}; point TMPDIR somewhere like /tmp"
            )


def _die_with_parent() -> Callable[[], None] | None:
    """Return a ``preexec_fn`` making the child get SIGTERM when the test process dies.

    This keeps a killed pytest run from leaving a Dovecot behind.  The libc function
    is resolved here, in the parent, because dlopen after fork is not safe.  Linux
    only; note the signal fires when the *thread* that started the server exits.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    parent = os.getpid()

    def preexec() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _quote(value: str) -> str:
    """Quote a value for dovecot.conf."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def process_group_alive(pgid: int) -> bool:
    """Tell whether any non-zombie process is left in process group ``pgid``."""
    proc = Path("/proc")
    if not proc.is_dir():
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process exited while we looked
        # fields[0] is the state, fields[2] the process group.
        if fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
            return True
    return False


class DovecotServer:
    """One private Dovecot instance; use :meth:`start`/:meth:`stop` or ``with``."""

    kind = "dovecot"

    def __init__(
        self,
        root: Path,
        tls: TlsFiles,
        variant: Variant | None = None,
        *,
        dovecot_bin: str | None = None,
        doveadm_bin: str | None = None,
    ) -> None:
        self.root = root
        self.tls = tls
        self.variant = variant or Variant()
        self.dovecot_bin = _find_binary("dovecot", dovecot_bin)
        self.doveadm_bin = _find_binary("doveadm", doveadm_bin)
        self.config_path = root / "dovecot.conf"
        self.log_path = root / "dovecot.log"
        self.stderr_path = root / "dovecot.stderr"
        self.passwd_dir = root / "passwd.d"
        self.home_root = root / "home"
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._users: set[str] = set()
        self._counter = 0
        ports = find_free_ports(HOST, HOST, PLAIN_HOST, HOST, HOST)
        self.info = ServerInfo(
            host=HOST,
            hostname=HOSTNAME,
            imaps_port=ports[0],
            imap_starttls_port=ports[1],
            imap_plain_host=PLAIN_HOST,
            imap_plain_port=ports[2],
            pop3s_port=ports[3],
            pop3_starttls_port=ports[4],
            ca_file=tls.ca_file,
            separator=self.variant.separator,
            prefix=self.variant.prefix,
        )
        if os.geteuid() == 0:
            mail_user = _ensure_system_user(MAIL_USER)
            self.uid, self.gid = mail_user.pw_uid, mail_user.pw_gid
            # The unprivileged accounts the Debian package creates.
            self.login_user = "dovenull"
            self.internal_user = self.internal_group = "dovecot"
        else:
            # Unprivileged Dovecot cannot switch users, so everything runs as us.
            self.uid, self.gid = os.getuid(), os.getgid()
            self.login_user = self.internal_user = pwd.getpwuid(self.uid).pw_name
            self.internal_group = grp.getgrgid(self.gid).gr_name

    # -- life cycle ------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """PID of the Dovecot master process while it runs."""
        return self._proc.pid if self._proc is not None else None

    @property
    def running(self) -> bool:
        """Whether the master process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> DovecotServer:
        """Write the config, launch Dovecot and wait until every listener answers."""
        if self._proc is not None:
            raise DovecotError("server already started")
        for sub in ("run", "state"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.home_root.mkdir(exist_ok=True)
        os.chown(self.home_root, self.uid, self.gid)
        # The auth process runs as the internal user and must read the files.
        self.passwd_dir.mkdir(mode=0o755, exist_ok=True)
        if os.geteuid() == 0:
            self.root.chmod(0o755)
            _check_traversable(self.root)
        self.config_path.write_text(self.render_config())
        with self.stderr_path.open("wb") as stderr:
            self._proc = subprocess.Popen(
                [self.dovecot_bin, "-F", "-c", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=stderr,
                stderr=subprocess.STDOUT,
                # Own process group: stop() can then kill every child by the master pid.
                start_new_session=True,
                preexec_fn=_die_with_parent(),
            )
        try:
            self._wait_until_ready(STARTUP_TIMEOUT)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self, timeout: float) -> None:
        """Poll until every port accepts a connection and the IMAP greeting arrives."""
        deadline = time.monotonic() + timeout
        info = self.info
        endpoints = [
            (info.host, info.imaps_port, False),
            # Reading a greeting proves the login processes and auth are up too.
            (info.host, info.imap_starttls_port, True),
            (info.imap_plain_host, info.imap_plain_port, False),
            (info.host, info.pop3s_port, False),
            (info.host, info.pop3_starttls_port, False),
        ]
        for host, port, greets in endpoints:
            while True:
                proc = self._proc
                if proc is None or proc.poll() is not None:
                    code = proc.returncode if proc else None
                    raise DovecotError(f"Dovecot exited ({code}) during start-up{self._tails()}")
                try:
                    self._probe(host, port, greets, deadline)
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        raise DovecotError(
                            f"Dovecot did not answer on {host}:{port} within {timeout:.0f} s "
                            f"({exc}){self._tails()}"
                        ) from exc
                    time.sleep(0.02)

    def _probe(self, host: str, port: int, greets: bool, deadline: float) -> None:
        """Connect once; raise OSError if the port is not (yet) serving."""
        with socket.create_connection((host, port), timeout=1.0) as sock:
            if greets:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                greeting = sock.recv(1024)
                if not greeting.startswith(b"* OK"):
                    raise DovecotError(f"unexpected IMAP greeting {greeting!r}{self._tails()}")

    def stop(self) -> None:
        """Stop the master and make sure no process of its group survives."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                # SIGTERM to the whole group: signalling only the master works too,
                # but the master then waits about a second for its children.
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=0.3)
                except subprocess.TimeoutExpired:
                    # A child caught between fork and exec ignores SIGTERM and the
                    # master waits for it; nothing here is worth a graceful exit.
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        finally:
            self._kill_group(proc.pid)

    @staticmethod
    def _kill_group(pgid: int) -> None:
        """SIGKILL leftovers in the master's process group and wait for them to go."""
        deadline = time.monotonic() + 5
        while process_group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                return
            if time.monotonic() > deadline:
                raise DovecotError(f"Dovecot processes of group {pgid} survive SIGKILL")
            time.sleep(0.01)

    def __enter__(self) -> DovecotServer:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- configuration ---------------------------------------------------------------

    def render_config(self) -> str:
        """Return the complete dovecot.conf text of this server."""
        v, info, root = self.variant, self.info, self.root
        # Maildir++ stores hierarchy with "." on disk, so names with "." would be
        # impossible under a "/" separator; LAYOUT=fs maps "/" to directories instead.
        layout = ":LAYOUT=fs" if v.separator == "/" and not v.maildir_plus_plus else ""
        mailboxes = "".join(
            f"  mailbox {_quote(name)} {{\n    auto = subscribe\n"
            + (f"    special_use = {attribute}\n" if attribute else "")
            + "  }\n"
            for name, attribute in v.special_use
        )
        # Unprivileged Dovecot cannot chroot; these are the chrooting services we run.
        no_chroot = "  chroot =\n" if os.geteuid() != 0 else ""
        return f"""\
# Generated by tests/harness/dovecot.py: a private throwaway instance, not the system Dovecot.
base_dir = {root}/run
state_dir = {root}/state
instance_name = mailadvisor-test-{root.name}
log_path = {self.log_path}
info_log_path = {self.log_path}
protocols = imap pop3
listen = {HOST}
default_login_user = {self.login_user}
default_internal_user = {self.internal_user}
default_internal_group = {self.internal_group}
first_valid_uid = {self.uid}
first_valid_gid = {self.gid}

ssl = yes
ssl_cert = <{self.tls.cert_file}
ssl_key = <{self.tls.key_file}
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes

auth_mechanisms = plain login
auth_verbose = yes
# Allow user names beyond ASCII (the default list is ASCII letters, digits and .-_@).
auth_username_chars =
# Wrong-password tests would otherwise wait 2 s, then more via the penalty below.
auth_failure_delay = 0
# One passwd-file per user: Dovecot re-checks a passwd-file at most once per second,
# so a user appended to a shared file right after a lookup would stay unknown.
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.passwd_dir}/%u
}}
userdb {{
  driver = passwd-file
  args = {self.passwd_dir}/%u
}}

mail_location = {v.mail_location or f"maildir:~/Maildir{layout}"}
# Test data needs no durability; skipping fsync makes doveadm import much faster.
mail_fsync = never
mail_plugins = $mail_plugins quota
namespace inbox {{
  inbox = yes
  separator = {v.separator}
  prefix = {v.prefix}
{mailboxes}}}
plugin {{
  quota = count:User quota
  quota_rule = *:storage=1G
  quota_vsizes = yes
}}

protocol imap {{
  mail_plugins = $mail_plugins imap_quota
  # Tests may open several connections per user at once.
  mail_max_userip_connections = 100
}}

service imap-login {{
  inet_listener imap {{
    address = {HOST}
    port = {info.imap_starttls_port}
  }}
  inet_listener imaps {{
    address = {HOST}
    port = {info.imaps_port}
    ssl = yes
  }}
  inet_listener imap_plain {{
    address = {PLAIN_HOST}
    port = {info.imap_plain_port}
  }}
{no_chroot}}}
service pop3-login {{
  inet_listener pop3 {{
    address = {HOST}
    port = {info.pop3_starttls_port}
  }}
  inet_listener pop3s {{
    address = {HOST}
    port = {info.pop3s_port}
    ssl = yes
  }}
{no_chroot}}}
service anvil {{
  # Disables the per-IP auth penalty (up to 15 s delays after failed logins).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
{no_chroot}}}
service ipc {{
{no_chroot}}}
service stats {{
  # Mail processes run as the mail user and must be able to report stats.
  unix_listener stats-writer {{
    mode = 0666
  }}
}}

# The plaintext listener: connections to this address may log in without TLS.
local {PLAIN_HOST} {{
  ssl = no
  disable_plaintext_auth = no
}}

{v.extra_config}
"""

    # -- users -----------------------------------------------------------------------

    def add_user(
        self, name: str | None = None, password: str | None = None, *, quota_kb: int | None = None
    ) -> Account:
        """Create a new user, usable at once: it gets its own new passwd-file.

        ``quota_kb`` gives this user a storage quota of its own (to make APPEND fail).

        ``name`` defaults to a fresh ``userN``; a name containing ``@`` is also the
        email address, otherwise the email is ``name@example.test``.  Dovecot cannot
        iterate per-user files, so ``doveadm -A`` does not work: pass ``-u NAME``.
        """
        with self._lock:
            if name is None:
                while name is None or name in self._users:
                    self._counter += 1
                    name = f"user{self._counter}"
            if not _USERNAME_RE.match(name):
                raise ValueError(
                    f"invalid user name {name!r} (lower-case [a-z0-9._+@-] or non-ASCII letters)"
                )
            if name in self._users:
                raise ValueError(f"user {name!r} already exists")
            if password is None:
                password = secrets.token_urlsafe(12)
            if not password or any(c in password for c in ":\r\n\0"):
                raise ValueError("password must be non-empty without ':' or line breaks")
            home = self.home_root / name
            extra = f"userdb_quota_rule=*:storage={quota_kb}K" if quota_kb is not None else ""
            line = f"{name}:{{PLAIN}}{password}:{self.uid}:{self.gid}::{home}::{extra}\n"
            # Write then rename so a concurrent lookup never sees a partial file.
            tmp = self.passwd_dir / f".{name}.tmp"
            tmp.write_text(line, encoding="utf-8")
            tmp.chmod(0o644)
            tmp.rename(self.passwd_dir / name)
            self._users.add(name)
        # Open every mailbox once now, as a real provider's account already has them:
        # Dovecot 2.3 creates "auto" mailboxes on first access, and several connections
        # doing that at once can deadlock on its file locks and drop a connection.
        self.doveadm("mailbox", "status", "-u", name, "messages", "*")
        email = name if "@" in name else f"{name}@{EMAIL_DOMAIN}"
        return Account(username=name, password=password, email=email)

    def set_quota(self, user: str | Account, quota_kb: int | None) -> None:
        """Give ``user`` another storage quota (None: the server's default of 1 GB)."""
        name = user.username if isinstance(user, Account) else user
        with self._lock:
            path = self.passwd_dir / name
            fields = path.read_text(encoding="utf-8").rstrip("\n").split(":")
            fields[7:] = [f"userdb_quota_rule=*:storage={quota_kb}K" if quota_kb else ""]
            tmp = self.passwd_dir / f".{name}.tmp"
            tmp.write_text(":".join(fields) + "\n", encoding="utf-8")
            tmp.chmod(0o644)
            tmp.rename(path)
        # Dovecot's auth process looks at a passwd-file at most once a second: the new
        # rule holds only from the next second on.
        time.sleep(1.1)

    def check_password(self, username: str, password: str) -> bool:
        """Whether Dovecot's own passdb accepts these credentials (``doveadm auth test``).

        Lets a test server of another protocol (the SMTP one) sign users in exactly as
        Dovecot would, byte for byte.
        """
        return self.doveadm("auth", "test", username, password, check=False).returncode == 0

    def home_of(self, user: str | Account) -> Path:
        """Home directory of ``user`` (created by Dovecot at first login)."""
        return self.home_root / (user.username if isinstance(user, Account) else user)

    def maildir_of(self, user: str | Account) -> Path:
        """Root Maildir of ``user``; with LAYOUT=fs it is also the INBOX."""
        return self.home_of(user) / "Maildir"

    # -- inspection ------------------------------------------------------------------

    def doveadm(
        self, *args: str, check: bool = True, input: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run ``doveadm -c CONF *args`` against this server and return the result."""
        command = [self.doveadm_bin, "-c", str(self.config_path), *args]
        result = subprocess.run(
            command, capture_output=True, text=True, input=input, check=False, timeout=120
        )
        if check and result.returncode != 0:
            raise DovecotError(
                f"{' '.join(command)} exited with {result.returncode}:\n"
                f"{result.stderr}{result.stdout}"
            )
        return result

    def log_tail(self, lines: int = 40) -> str:
        """Return the last ``lines`` lines of the Dovecot log."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _tails(self) -> str:
        """Log and stderr tails to append to error messages."""
        try:
            stderr = self.stderr_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            stderr = ""
        return (
            f"\n--- {self.log_path} (tail) ---\n{self.log_tail()}"
            f"\n--- dovecot stderr ---\n{stderr[-4000:]}"
        )


class DovecotFactory:
    """Starts servers on demand, one per distinct :class:`Variant`, and stops them all."""

    def __init__(
        self,
        log_archive: Path | None = None,
        *,
        dovecot_bin: str | None = None,
        doveadm_bin: str | None = None,
    ) -> None:
        # Fail before creating anything when Dovecot is not installed.
        self.dovecot_bin = _find_binary("dovecot", dovecot_bin)
        self.doveadm_bin = _find_binary("doveadm", doveadm_bin)
        # Not below pytest's tmp_path: that tree is 0700 and Dovecot's unprivileged
        # processes must be able to traverse to their sockets, passwd-file and homes.
        self.root = Path(tempfile.mkdtemp(prefix="mailadv-dovecot-"))
        self.root.chmod(0o755)
        self.log_archive = log_archive
        self._servers: dict[Variant, DovecotServer] = {}
        self._spawned: list[DovecotServer] = []
        self._lock = threading.Lock()
        try:
            self.tls = make_tls_files(self.root / "tls")
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise

    def __call__(
        self,
        separator: str = "/",
        prefix: str = "",
        special_use: Mapping[str, str | None] | None = None,
        extra_config: str = "",
        mail_location: str = "",
        maildir_plus_plus: bool = False,
    ) -> DovecotServer:
        """Return the running server for this variant, starting it on first use."""
        variant = self._variant(
            separator, prefix, special_use, extra_config, mail_location, maildir_plus_plus
        )
        with self._lock:
            server = self._servers.get(variant)
            if server is None:
                server = self._start(variant)
                self._servers[variant] = server
            return server

    def spawn(
        self,
        separator: str = "/",
        prefix: str = "",
        special_use: Mapping[str, str | None] | None = None,
        extra_config: str = "",
    ) -> DovecotServer:
        """Start a new, uncached server (e.g. to test stop); still stopped by close()."""
        variant = self._variant(separator, prefix, special_use, extra_config)
        with self._lock:
            return self._start(variant)

    @staticmethod
    def _variant(
        separator: str,
        prefix: str,
        special_use: Mapping[str, str | None] | None,
        extra_config: str,
        mail_location: str = "",
        maildir_plus_plus: bool = False,
    ) -> Variant:
        folders = DEFAULT_SPECIAL_USE if special_use is None else special_use
        return Variant(
            separator,
            prefix,
            tuple(folders.items()),
            extra_config,
            mail_location,
            maildir_plus_plus,
        )

    def _start(self, variant: Variant) -> DovecotServer:
        root = self.root / f"server{len(self._spawned) + 1}"
        root.mkdir(mode=0o755)
        server = DovecotServer(
            root, self.tls, variant, dovecot_bin=self.dovecot_bin, doveadm_bin=self.doveadm_bin
        )
        self._spawned.append(server)
        return server.start()

    @property
    def servers(self) -> tuple[DovecotServer, ...]:
        """Every server started so far (cached variants and spawned ones)."""
        return tuple(self._spawned)

    def close(self) -> None:
        """Stop every server, archive the logs and delete the throwaway tree."""
        errors: list[BaseException] = []
        try:
            for server in self._spawned:
                try:
                    server.stop()
                except BaseException as exc:  # stop the others before reporting
                    errors.append(exc)
                if self.log_archive is not None and server.log_path.exists():
                    self.log_archive.mkdir(parents=True, exist_ok=True)
                    shutil.copy(server.log_path, self.log_archive / f"{server.root.name}.log")
        finally:
            self._spawned.clear()
            self._servers.clear()
            shutil.rmtree(self.root, ignore_errors=True)
        if errors:
            raise errors[0]

    def __enter__(self) -> DovecotFactory:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


__all__ = [
    "COURIER_CAPABILITIES",
    "DEFAULT_SPECIAL_USE",
    "GMAIL_SPECIAL_USE",
    "INSTALL_HINT",
    "MBOX_LOCATION",
    "OUTLOOK_SPECIAL_USE",
    "Account",
    "DovecotError",
    "DovecotFactory",
    "DovecotMissingError",
    "DovecotServer",
    "ServerInfo",
    "TlsFiles",
    "Variant",
    "capability_config",
    "find_free_ports",
    "make_tls_files",
    "process_group_alive",
]
