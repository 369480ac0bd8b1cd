"""Real POP3 programs downloading from the suite's Dovecot, leaving the mail on the server.

Each runner writes the program's own configuration file (pointing at the fixture's POP3
over TLS port, trusting its throwaway CA, ``keep``/leave-on-server), runs the real
program non-interactively and returns the store it wrote:

* getmail6 into a Maildir (its ``oldmail-HOST-PORT-USER`` file beside it); getmail
  refuses to deliver as root, so it runs as ``nobody`` when the suite is root;
* mpop into an mbox (its ``uidls`` file beside it);
* fetchmail handing each message to procmail, which writes a Maildir (fetchmail's
  ``fetchids`` beside it).

:func:`deliver` puts the mail into the server's INBOX first (IMAP APPEND, as the
server's own delivery would leave it) and :func:`pop3_uidls` lists the server's UIDLs.
"""

from __future__ import annotations

import os
import poplib
import pwd
import shutil
import subprocess
from pathlib import Path

from tests.harness.dovecot import Account, DovecotServer
from tests.harness.migrate_helpers import connect

PROGRAMS = {
    "getmail6": ("getmail", "getmail6"),
    "mpop": ("mpop", "mpop"),
    "fetchmail": ("fetchmail", "fetchmail procmail"),
}
"""Program -> (command, Debian packages): scripts/apt-packages.txt installs them."""


def deliver(server: DovecotServer, account: Account, messages: list[bytes]) -> None:
    """Put ``messages`` into the account's INBOX, in order (they arrive unread)."""
    with connect(server, account) as client:
        for data in messages:
            client.append("INBOX", data)


def pop3_uidls(server: DovecotServer, account: Account) -> list[str]:
    """The server's POP3 UIDLs, in message order."""
    info = server.info
    client = poplib.POP3_SSL(info.hostname, info.pop3s_port, context=info.ssl_context())
    try:
        client.user(account.username)
        client.pass_(account.password)
        _, lines, _ = client.uidl()
        return [line.split()[1].decode() for line in lines]
    finally:
        client.quit()


def pop3_messages(server: DovecotServer, account: Account) -> list[bytes]:
    """Every message as POP3 RETR returns it (CRLF, dot-unstuffed), without deleting."""
    info = server.info
    client = poplib.POP3_SSL(info.hostname, info.pop3s_port, context=info.ssl_context())
    try:
        client.user(account.username)
        client.pass_(account.password)
        count, _ = client.stat()
        return [b"\r\n".join(client.retr(n)[1]) + b"\r\n" for n in range(1, count + 1)]
    finally:
        client.quit()


def _run(
    command: list[str], *, as_user: str | None = None, env: dict[str, str] | None = None
) -> None:
    if as_user is not None:
        entry = pwd.getpwnam(as_user)
        ids = [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
        command = ["setpriv", *ids, *command]
    result = subprocess.run(
        command, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if result.returncode != 0:
        raise AssertionError(
            f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
        )


def _maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def getmail(server: DovecotServer, account: Account, work: Path) -> Path:
    """getmail6 (SimplePOP3SSLRetriever, delete = false) into ``work/Maildir``."""
    maildir = _maildir(work / "Maildir")
    info = server.info
    (work / "getmailrc").write_text(
        f"""[retriever]
type = SimplePOP3SSLRetriever
server = {info.hostname}
port = {info.pop3s_port}
username = {account.username}
password = {account.password}
ca_certs = {info.ca_file}
ssl_cert_hostname = {info.hostname}

[destination]
type = Maildir
path = {maildir}/

[options]
delete = false
read_all = false
verbose = 0
"""
    )
    user = None
    if os.geteuid() == 0:  # "refuse to deliver mail as root"
        user = "nobody"
        entry = pwd.getpwnam(user)
        for path in (work, *work.rglob("*")):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        for parent in work.parents:
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o005)
    _run(["getmail", f"--rcfile={work / 'getmailrc'}", f"--getmaildir={work}"], as_user=user)
    return maildir


def mpop(server: DovecotServer, account: Account, work: Path) -> Path:
    """mpop (keep on) into the mbox ``work/inbox.mbox``."""
    info = server.info
    mbox = work / "inbox.mbox"
    mbox.touch()
    config = work / "mpoprc"
    config.write_text(
        f"""account default
host {info.hostname}
port {info.pop3s_port}
user {account.username}
password {account.password}
auth user
tls on
tls_starttls off
tls_trust_file {info.ca_file}
keep on
delivery mbox {mbox}
uidls_file {work / "uidls"}
"""
    )
    config.chmod(0o600)
    _run(["mpop", "-C", str(config), "-q"])
    return mbox


def fetchmail(server: DovecotServer, account: Account, work: Path) -> Path:
    """fetchmail (keep, UIDL) handing each message to procmail, into ``work/Maildir``."""
    info = server.info
    maildir = _maildir(work / "Maildir")
    (work / "procmailrc").write_text(f"DEFAULT={maildir}/\nLOGFILE={work}/procmail.log\n")
    rc = work / "fetchmailrc"
    rc.write_text(
        f"""set no syslog
poll {info.hostname} service {info.pop3s_port} protocol pop3 uidl auth password
  user "{account.username}" password "{account.password}" is "{account.username}" here
  ssl sslcertck sslcertfile "{info.ca_file}"
  keep
  mda "{shutil.which("procmail")} -m {work}/procmailrc"
"""
    )
    rc.chmod(0o600)
    env = dict(os.environ, FETCHMAILHOME=str(work), HOME=str(work))
    _run(["fetchmail", "-f", str(rc), "-i", str(work / "fetchids"), "--nodetach"], env=env)
    return maildir


RUNNERS = {"getmail6": getmail, "mpop": mpop, "fetchmail": fetchmail}
