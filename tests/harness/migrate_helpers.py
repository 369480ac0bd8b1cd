"""Helpers shared by the migration tests: profiles for fixture accounts, server inspection."""

from __future__ import annotations

import itertools
import os
from collections import Counter
from pathlib import Path

import imapclient

from tests.harness.courier import CourierServer
from tests.harness.cyrus import CyrusServer
from tests.harness.dovecot import Account, DovecotServer

_counter = itertools.count()
AnyServer = DovecotServer | CyrusServer | CourierServer
"""Dovecot over TLS; Cyrus and Courier over plaintext on loopback
(tests/harness/private_root.py)."""


def _server_section(server: AnyServer, account: Account) -> str:
    info = server.info
    if isinstance(server, DovecotServer):
        return f"""host = "{server.info.hostname}"
port = {server.info.imaps_port}
security = "tls"
username = "{account.username}"
ca_file = "{server.info.ca_file}"
"""
    return f"""host = "{info.host}"
port = {info.port}
security = "none"
allow_insecure = true
username = "{account.username}"
"""


SIZE_LIMIT_CONFIG = "plugin {\n  quota_max_mail_size = 100k\n}\n"
"""A Dovecot variant that refuses a message for what it is: bigger than 100 kB
("NO [LIMIT] Mail size is larger than the maximum size allowed by server configuration").
A full account is another matter (deferred, not failed): see test_migrate_quota.py."""


def write_profile(
    tmp_path: Path,
    server: AnyServer,
    account: Account,
    source: Path,
    *,
    kind: str = "maildir",
    migration: str = "",
    provider: str = "generic",
) -> tuple[Path, dict[str, str]]:
    """A profile for ``account`` on ``server`` reading ``source``; returns it and its env."""
    var = f"MA_TEST_PASSWORD_{next(_counter)}"
    text = f"""version = 1
[account]
email = "{account.email}"
provider = "{provider}"
[server]
{_server_section(server, account)}[auth]
method = "password"
password_env = "{var}"
[source]
kind = "{kind}"
path = "{source}"
[migration]
{migration}
"""
    path = tmp_path / f"profile-{account.username}.toml"
    path.write_text(text)
    os.environ[var] = account.password
    return path, {var: account.password}


def connect(server: AnyServer, account: Account) -> imapclient.IMAPClient:
    if isinstance(server, DovecotServer):
        info = server.info
        client = imapclient.IMAPClient(
            info.hostname,
            port=info.imaps_port,
            ssl=True,
            ssl_context=info.ssl_context(),
            timeout=30,
        )
    else:
        client = imapclient.IMAPClient(
            server.info.host, port=server.info.port, ssl=False, timeout=30
        )
    if account.username.isascii() and account.password.isascii():
        client.login(account.username, account.password)
    else:  # imapclient's own AUTHENTICATE PLAIN (UTF-8), independent of the code under test
        client.plain_login(account.username, account.password)
    return client


def server_messages(server: AnyServer, account: Account) -> dict[str, list[dict[bytes, object]]]:
    """Every folder's messages: flags, INTERNALDATE, size, full bytes."""
    out: dict[str, list[dict[bytes, object]]] = {}
    with connect(server, account) as client:
        for flags, _delim, name in client.list_folders():
            if {b"\\Noselect", b"\\NonExistent"} & set(flags):
                continue  # a parent that exists only as a level of the hierarchy
            info = client.select_folder(name, readonly=True)
            if not info[b"EXISTS"]:
                out[name] = []
                continue
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["FLAGS", "INTERNALDATE", "RFC822.SIZE", "BODY.PEEK[]"])
            out[name] = [fetched[uid] for uid in sorted(fetched)]
    return out


def body_counts(server: AnyServer, account: Account) -> Counter[bytes]:
    """How often each full message body appears across the account (duplicates show > 1)."""
    counts: Counter[bytes] = Counter()
    for messages in server_messages(server, account).values():
        for m in messages:
            counts[m[b"BODY[]"]] += 1  # type: ignore[index]
    return counts
