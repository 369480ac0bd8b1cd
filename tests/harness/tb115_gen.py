"""A Thunderbird 115+ (seen in 153) profile, laid out as Thunderbird writes it.

* ``folderCache.json``: nsMsgFolderCache serialises with jsoncpp's StreamWriterBuilder
  (default settings: tab indentation, ``" : "`` after keys, members sorted, non-ASCII
  escaped as ``\\uXXXX``, no final line feed). Keys are the absolute paths of the
  folders' ``.msf`` files (account roots: their directory); ``folderName`` holds the
  real name of folders whose file name was hashed.
* ``folderTree.json``: the folder pane's state, folder URIs per pane mode.
* Since 115 the ``.msf`` no longer records folderName; junk verdicts are string cells
  ``junkscore`` ("0"/"100") with ``junkscoreorigin``.
* A POP3 "headers only" download keeps the header block with X-Mozilla-Status 0x0401
  (read + partial), its ``X-UIDL`` and ``X-Account-Key``, and a short body Thunderbird
  writes in place of the message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from tests.harness import thunderbird_gen

PARTIAL_BODY = (
    b"\n[This message is too large: only its headers were downloaded. "
    b"Open it to download the rest.]\n"
)


def jsoncpp_dumps(value: Any, indent: str = "") -> str:
    """``value`` as jsoncpp's StreamWriterBuilder writes it (what Thunderbird does)."""
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = indent + "\t"
        members = [f"\n{inner}{_quote(k)} : " + _nested(v, inner) for k, v in sorted(value.items())]
        return "{" + ",".join(members) + f"\n{indent}}}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _quote(str(value))


def _nested(value: Any, indent: str) -> str:
    # An object or array value starts on its own line, indented like its key.
    if isinstance(value, dict) and value:
        return f"\n{indent}" + jsoncpp_dumps(value, indent)
    return jsoncpp_dumps(value, indent)


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        code = ord(ch)
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif code < 0x20 or code > 0x7E:
            if code > 0xFFFF:  # a surrogate pair, as UTF-16
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


@dataclass
class Tb115Message:
    subject: str
    received: datetime | None
    """The topmost Received: date (None: no Received: header)."""
    date: datetime | None = datetime(2020, 1, 1, tzinfo=UTC)
    status: int = 0x0001
    junkscore: str | None = None
    partial_uidl: str | None = None
    """A headers-only download of this POP3 UIDL (status gets 0x0400, body is the stub)."""
    body: bytes = b"The whole message body.\n"
    wrote: datetime = datetime(2025, 6, 1, 12, 0)
    """When Thunderbird wrote it (the From_ line; a copy or compaction time)."""
    raw: bytes | None = None
    """The message as the POP3 server sent it (else one is made up from the fields)."""

    def _account_lines(self) -> bytes:
        if self.partial_uidl is None:
            return b""
        return f"X-Account-Key: account2\nX-UIDL: {self.partial_uidl}\n".encode()

    def stored(self) -> bytes:
        """The message as Thunderbird stores it: a POP3 download starts with its account
        and UIDL, then the status fields, then the message (as bugmail-1 in the corpus)."""
        status = self.status | (0x0400 if self.partial_uidl else 0)
        head = f"X-Mozilla-Status: {status:04x}\nX-Mozilla-Status2: 00000000\n".encode()
        head += b"X-Mozilla-Keys: " + b" " * 80 + b"\n"
        return self._account_lines() + head + self._content()

    def message(self) -> bytes:
        """The message as a reader returns it (without the X-Mozilla fields)."""
        return self._account_lines() + self._content()

    def _content(self) -> bytes:
        if self.raw is not None:
            if self.partial_uidl is None:
                return self.raw
            end = self.raw.replace(b"\r\n", b"\n").find(b"\n\n")
            head = self.raw.replace(b"\r\n", b"\n")[:end]
            return head + b"\n" + PARTIAL_BODY  # the header block only
        head = ""
        if self.received is not None:
            head += (
                "Received: from mx.example.org by pop.example.org with ESMTP id 42;\n"
                f"\t{format_datetime(self.received)}\n"
            )
        if self.date is not None:
            head += f"Date: {format_datetime(self.date)}\n"
        slug = self.subject.replace(" ", "-").replace("/", "-")
        head += (
            f"From: sender@example.org\nTo: me@example.test\nSubject: {self.subject}\n"
            f"Message-ID: <{slug}@example.org>\n"
        )
        return head.encode() + (PARTIAL_BODY if self.partial_uidl else b"\n" + self.body)


@dataclass
class Tb115Folder:
    file: str
    """The name on disk (hashed for awkward names)."""
    name: str
    """The real name, as Thunderbird shows it."""
    messages: list[Tb115Message] = field(default_factory=list)
    parent: tuple[str, ...] = ()
    """Files of the parent folders (Archives -> Archives.sbd/)."""
    in_cache: bool = True
    """Recorded in folderCache.json (else only in folderTree.json)."""
    index: bool = True


def write_tb115_profile(
    profile: Path,
    accounts: str | dict[str, list[Tb115Folder]],
    folders: list[Tb115Folder] | None = None,
    *,
    cache_prefix: str | None = None,
    prefs: str = "",
) -> Path:
    """Write each account's folders into ``profile/Mail/<account>`` (``accounts`` may be
    one name, with ``folders``). ``cache_prefix``: the profile's path as the cache
    records it (another machine's, e.g. ``C:\\Users\\jo\\...``). ``prefs``: more
    prefs.js lines (Local Folders is server1)."""
    if isinstance(accounts, str):
        accounts = {accounts: folders or []}
    first = next(iter(accounts))
    (profile / "Mail").mkdir(parents=True, exist_ok=True)
    (profile / "prefs.js").write_text(
        "// Mozilla User Preferences\n"
        f'user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/{first}");\n'
        'user_pref("mail.server.server1.hostname", "Local Folders");\n'
        'user_pref("mail.server.server1.type", "none");\n' + prefs
    )
    prefix = cache_prefix or str(profile)
    sep = "\\" if "\\" in prefix else "/"
    cache: dict[str, Any] = {}
    tree: dict[str, Any] = {}
    for account, account_folders in accounts.items():
        _write_account(profile, account, account_folders, prefix, sep, cache, tree)
    (profile / "folderCache.json").write_text(jsoncpp_dumps(cache))
    (profile / "folderTree.json").write_text(jsoncpp_dumps({"all": tree}))
    return profile / "Mail" / first


def _write_account(
    profile: Path,
    account: str,
    folders: list[Tb115Folder],
    prefix: str,
    sep: str,
    cache: dict[str, Any],
    tree: dict[str, Any],
) -> None:
    mail = profile / "Mail" / account
    mail.mkdir(parents=True, exist_ok=True)
    cache[sep.join([prefix, "Mail", account])] = {"folderName": account, "flags": 28}
    host = "nobody@" + account.replace(" ", "%20")
    tree[f"mailbox://{host}"] = {"open": True}
    for folder in folders:
        directory = mail.joinpath(*(f"{p}.sbd" for p in folder.parent))
        directory.mkdir(parents=True, exist_ok=True)
        stored = [m.stored() for m in folder.messages]
        envelopes = [
            b"From - " + m.wrote.strftime("%a %b %e %H:%M:%S %Y").encode() for m in folder.messages
        ]
        data = thunderbird_gen.mboxrd(stored, envelopes)
        (directory / folder.file).write_bytes(data)
        if folder.index:
            rows = [
                thunderbird_gen.Row(
                    start,
                    flags=m.status | (0x0400 if m.partial_uidl else 0),
                    received=m.received,
                    junkscore=m.junkscore,
                )
                for m, start in zip(folder.messages, thunderbird_gen.offsets(data), strict=True)
            ]
            # 115+: no folderName in the summary.
            msf = thunderbird_gen.msf(rows, folder_size=len(data))
            (directory / (folder.file + ".msf")).write_bytes(msf)
        parts = [prefix, "Mail", account, *(f"{p}.sbd" for p in folder.parent), folder.file]
        if folder.in_cache:
            cache[sep.join(parts) + ".msf"] = {
                "charset": "",
                "expungedBytes": 0,
                "flags": 4096,
                "folderName": folder.name,
                "folderSize": len(data),
                "pendingMsgs": 0,
                "pendingUnreadMsgs": 0,
                "totalMsgs": len(folder.messages),
                "totalUnreadMsgs": 0,
            }
        uri_path = "/".join(_uri_segment(n) for n in (*_parent_names(folders, folder), folder.name))
        tree[f"mailbox://{host}/{uri_path}"] = {"open": False}


def _parent_names(folders: list[Tb115Folder], folder: Tb115Folder) -> list[str]:
    by_file = {(*f.parent, f.file): f.name for f in folders}
    return [by_file.get(folder.parent[: i + 1], p) for i, p in enumerate(folder.parent)]


def _uri_segment(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")
