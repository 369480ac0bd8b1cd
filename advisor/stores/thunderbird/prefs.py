"""A profile's prefs.js: its settings, and where each POP3 or Local Folders account keeps its mail.

An account's ``directory-rel`` / ``directory`` may lie outside the profile; a directory of
``Mail/`` that no account names still holds mail (a removed account); feed (RSS) and IMAP
accounts are left out.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

_PREF = re.compile(
    r'user_pref\(\s*"((?:[^"\\]|\\.)*)"\s*,\s*("(?:[^"\\]|\\.)*"|true|false|-?\d+)\s*\)\s*;'
)
_SERVER_PREF = re.compile(r"mail\.server\.([A-Za-z0-9_]+)\.(.+)")
_MAILDIR_STORE = "maildirstore"
_MAIL_SERVER_TYPES = ("none", "pop3", "movemail")


def _pref_value(raw: str) -> str:
    if raw.startswith('"'):
        try:
            value = json.loads(raw.replace("\\'", "'"))
        except ValueError:
            return raw[1:-1]
        return str(value)
    return raw


def read_prefs(profile_dir: Path) -> dict[str, str]:
    """The ``user_pref`` settings of a profile's prefs.js (missing file: empty)."""
    try:
        with open(profile_dir / "prefs.js", "rb") as stream:
            text = stream.read(16 << 20).decode("utf-8", "replace")
    except OSError:
        return {}
    return {match.group(1): _pref_value(match.group(2)) for match in _PREF.finditer(text)}


@dataclass(frozen=True)
class MailRoot:
    """One account's mail directory."""

    name: str
    """The first element of its folders' paths: the directory's name ("Local Folders")."""
    path: Path
    server_type: str = "unknown"
    """prefs.js type: "none" (Local Folders), "pop3", "movemail"; "unknown" without prefs."""
    maildir: bool = False
    """The account uses Thunderbird's maildir store instead of mbox files."""


def mail_roots(profile_dir: Path) -> list[MailRoot]:
    """The POP3 / Local Folders mail directories of a profile.

    From prefs.js (``mail.server.*.directory-rel`` / ``directory``, which may lie
    outside the profile), plus any other directory in ``Mail/`` (an account
    removed from the settings still has its mail on disk). Feed (RSS) accounts
    are left out.
    """
    prefs = read_prefs(profile_dir)
    servers: dict[str, dict[str, str]] = {}
    for key, value in prefs.items():
        match = _SERVER_PREF.fullmatch(key)
        if match:
            servers.setdefault(match.group(1), {})[match.group(2)] = value
    roots: list[MailRoot] = []
    seen: set[str] = set()
    excluded: set[str] = set()

    def add(path: Path, server_type: str, maildir: bool) -> None:
        real = os.path.realpath(path)
        if real in seen or real in excluded or not path.is_dir():
            return
        seen.add(real)
        roots.append(MailRoot(path.name, path, server_type, maildir))

    for server in sorted(servers.values(), key=lambda s: s.get("directory-rel", "")):
        server_type = server.get("type", "unknown")
        path = _server_directory(profile_dir, server)
        if path is None:
            continue
        if server_type not in _MAIL_SERVER_TYPES:
            excluded.add(os.path.realpath(path))
            continue
        add(path, server_type, _MAILDIR_STORE in server.get("storeContractID", ""))
    with contextlib.suppress(OSError):
        for child in sorted((profile_dir / "Mail").iterdir()):
            if child.is_dir() and not is_feed_account(child):
                add(child, "unknown", False)
    # Names must be unique: they become the first level of folder paths.
    taken: dict[str, int] = {}
    unique = []
    for root in roots:
        count = taken.get(root.name, 0) + 1
        taken[root.name] = count
        name = root.name if count == 1 else f"{root.name} ({count})"
        unique.append(MailRoot(name, root.path, root.server_type, root.maildir))
    return unique


def _server_directory(profile_dir: Path, server: dict[str, str]) -> Path | None:
    relative = server.get("directory-rel", "")
    if relative.startswith("[ProfD]"):
        path = profile_dir.joinpath(*[p for p in re.split(r"[/\\]", relative[7:]) if p])
        if path.is_dir():
            return path
    absolute = server.get("directory", "")
    if absolute and Path(absolute).is_absolute():
        return Path(absolute)
    return None


def is_feed_account(directory: Path) -> bool:
    return any(
        (directory / name).exists()
        for name in ("feeds.json", "feeds.rdf", "feeditems.json", "feeditems.rdf")
    )
