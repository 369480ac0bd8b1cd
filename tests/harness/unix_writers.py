"""The real Unix programs that write mbox stores, run for tests.

- c-client (Alpine's and Pine's library) through Debian's uw-mailutils ``mailutil copy``;
- GNU mailutils' ``movemail --preserve pop://...`` against the suite's Dovecot POP3;
- Dovecot's own mbox driver: a suite server with ``mail_location = mbox:...``
  (``tests.harness.dovecot.MBOX_LOCATION``), fed over IMAP; :func:`dovecot_view` reads any mbox file
  through it, which is what an IMAP client of that file would see.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from tests.harness.dovecot import DovecotServer
from tests.harness.migrate_helpers import connect

MAILUTIL = "mailutil"
MOVEMAIL = "movemail.mailutils"
"""GNU mailutils' movemail by its own name: ``movemail`` is a Debian alternative."""
HOST = "127.0.0.1"


def _need(program: str) -> str:
    found = shutil.which(program)
    if found is None:
        raise AssertionError(f"{program} is not installed (see scripts/apt-packages.txt)")
    return found


@contextmanager
def _unprivileged_dir() -> Iterator[tuple[Path, dict[str, int]]]:
    """A scratch directory an unprivileged user owns (c-client refuses to open files
    by path when run as root), and the ids to run as."""
    root = Path(tempfile.mkdtemp(prefix="mailadv-unix-"))
    try:
        root.chmod(0o755)
        ids: dict[str, int] = {}
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            ids = {"user": nobody.pw_uid, "group": nobody.pw_gid}
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
        yield root, ids
    finally:
        shutil.rmtree(root, ignore_errors=True)


def cclient_copy(source: bytes) -> bytes:
    """What c-client writes when it copies the mbox ``source`` into a new mailbox
    (``mailutil copy``): its folder-data record first, then each message with
    Status, X-Status, X-Keywords and X-UID."""
    program = _need(MAILUTIL)
    with _unprivileged_dir() as (root, ids):
        src = root / "source"
        src.write_bytes(source)
        if ids:
            os.chown(src, ids["user"], ids["group"])
        env = {"HOME": str(root), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        result = subprocess.run(
            [program, "copy", "source", "copied"],
            cwd=root,
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
            **ids,  # type: ignore[arg-type]
        )
        if result.returncode != 0:
            raise AssertionError(f"mailutil copy failed: {result.stderr!r} {result.stdout!r}")
        return (root / "copied").read_bytes()


def movemail(server: DovecotServer, username: str, password: str, target: Path) -> None:
    """GNU movemail fetches ``username``'s POP3 mail into the mbox ``target``, leaving
    it on the server. The password goes in a 0600 ticket file (~/.mu-tickets), never
    on the command line, where every user could read it."""
    program = _need(MOVEMAIL)
    port = server.info.pop3_starttls_port  # plaintext from 127.0.0.1 counts as secure
    with tempfile.TemporaryDirectory(prefix="mailadv-movemail-") as home:
        tickets = Path(home) / ".mu-tickets"
        tickets.touch(mode=0o600)
        tickets.write_text(f"pop://{username}:{password}@{HOST}:{port}\n")
        env = {"HOME": home, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        result = subprocess.run(
            [program, "--no-config", "--preserve", f"pop://{username}@{HOST}:{port}", target],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    if result.returncode != 0:
        raise AssertionError(f"movemail failed ({result.returncode}): {result.stderr}")


def dovecot_view(
    server: DovecotServer, files: Mapping[str, bytes]
) -> dict[str, list[dict[bytes, object]]]:
    """What Dovecot's mbox driver shows of each mbox file (folder name -> bytes): the
    files become folders of a new user of the mbox ``server``; per folder, every
    message's BODY[], FLAGS (without the session's \\Recent) and INTERNALDATE."""
    account = server.add_user()
    mail = server.home_of(account) / "mail"
    for name, data in files.items():
        path = mail / name
        path.write_bytes(data)
        os.chown(path, server.uid, server.gid)
    out: dict[str, list[dict[bytes, object]]] = {}
    with connect(server, account) as client:
        for name in files:
            client.select_folder(name, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS", "INTERNALDATE", "BODY.PEEK[]"]) if uids else {}
            out[name] = [
                {
                    b"BODY[]": m[b"BODY[]"],
                    b"FLAGS": frozenset(m[b"FLAGS"]) - {b"\\Recent"},
                    b"INTERNALDATE": m[b"INTERNALDATE"],
                }
                for _, m in sorted(fetched.items())
            ]
    return out


def normalised(messages: list[dict[bytes, object]]) -> dict[bytes, tuple[object, ...]]:
    """Messages keyed by Message-ID: (bytes, flags without \\Recent, INTERNALDATE)."""
    out: dict[bytes, tuple[object, ...]] = {}
    for m in messages:
        body = m[b"BODY[]"]
        assert isinstance(body, bytes)
        when = m[b"INTERNALDATE"]
        assert isinstance(when, datetime)
        flags = frozenset(m[b"FLAGS"]) - {b"\\Recent"}  # type: ignore[call-overload]
        out[_message_id(body)] = (body, flags, when)
    return out


def _message_id(body: bytes) -> bytes:
    for line in body.split(b"\r\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip()
        if not line:
            break
    raise AssertionError(f"no Message-ID in {body[:200]!r}")
