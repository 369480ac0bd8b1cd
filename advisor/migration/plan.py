"""Where each local folder goes on the IMAP server.

The server's hierarchy delimiter and personal namespace prefix are read from
the server (NAMESPACE, LIST), never assumed. Special folders go to the server
folder carrying the matching SPECIAL-USE attribute (RFC 6154), else to the name
the provider plugin knows, else they are created. Names are sanitised one
level at a time, so nothing in a source folder name can add a hierarchy level,
escape ``target_prefix`` or reach the wire unquoted:

- the server's delimiter inside a name becomes a look-alike character
  (``/`` -> U+2215 division slash, ``.`` -> U+2024 one dot leader,
  ``\\`` -> U+29F5 reverse solidus operator, any other delimiter -> ``_``); ``/``
  becomes its look-alike on every server, since many refuse it even when their
  delimiter is ``.``;
- control characters (CR, LF, NUL, ...) become ``_``;
- leading and trailing spaces are removed (Gmail refuses them), an empty name
  becomes ``_``, and ``.`` / ``..`` become ``_.`` / ``_..``;
- a name longer than 200 characters is cut and given a short hash, so two long
  names stay distinct.

``INBOX`` is case-insensitive as the first level of a path (RFC 3501): a local
``Inbox/Sub`` is the server's ``INBOX/Sub`` (``INBOX.Sub`` under an ``INBOX.`` prefix).
Sub-folders of a special folder follow it: ``Archives/2019`` goes below the server's
archive folder, wherever ``Archives`` went. A folder whose name the server refused and
accepted with look-alikes (:mod:`advisor.migration.server_folders`) keeps that name: ``renames``.

Also the plain steps of the per-message plan that need no server: a message's bytes as
they are uploaded (:func:`to_crlf`), its date, what names the source in the journal.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from advisor.migration.upload import UploadJob, valid_flags
from advisor.plugins.types import FolderPolicy, FolderRole, ServerFolder, UploadRules
from advisor.stores.base import SourceFolder, SourceMessage, StoreReader
from advisor.stores.fsnames import printable

if TYPE_CHECKING:
    from advisor.connection.account import AccountAccess
    from advisor.migration.options import MigrationOptions
    from advisor.plugins.manager import PluginHost

INBOX = "INBOX"
MAX_NAME = 200
DELIMITER_LOOKALIKES = {"/": "\u2215", ".": "\u2024", "\\": "\u29f5"}
RECOVERED_FOLDER = "Recovered deleted messages"
"""Where deleted-but-not-purged messages go when the user asks to recover them."""

ROLE_ATTRIBUTE: dict[FolderRole, str] = {
    FolderRole.SENT: "\\Sent",
    FolderRole.DRAFTS: "\\Drafts",
    FolderRole.TRASH: "\\Trash",
    FolderRole.JUNK: "\\Junk",
    FolderRole.ARCHIVE: "\\Archive",
    FolderRole.ALL: "\\All",
    FolderRole.FLAGGED: "\\Flagged",
}
SPECIAL_USE_ATTRIBUTES = {attr.lower(): role for role, attr in ROLE_ATTRIBUTE.items()}

# Local folder names (case-insensitive) that mean a special folder, as mail
# clients name them. Only top-level folders are treated as special.
LOCAL_ROLE_NAMES: dict[str, FolderRole] = {
    "inbox": FolderRole.INBOX,
    "sent": FolderRole.SENT,
    "sent items": FolderRole.SENT,
    "sent messages": FolderRole.SENT,
    "sent mail": FolderRole.SENT,
    "drafts": FolderRole.DRAFTS,
    "draft": FolderRole.DRAFTS,
    "trash": FolderRole.TRASH,
    "deleted items": FolderRole.TRASH,
    "deleted messages": FolderRole.TRASH,
    "bin": FolderRole.TRASH,
    "junk": FolderRole.JUNK,
    "junk email": FolderRole.JUNK,
    "junk e-mail": FolderRole.JUNK,
    "spam": FolderRole.JUNK,
    "bulk mail": FolderRole.JUNK,
    "archive": FolderRole.ARCHIVE,
    "archives": FolderRole.ARCHIVE,
}
DEFAULT_ROLE_NAMES: dict[FolderRole, str] = {
    FolderRole.SENT: "Sent",
    FolderRole.DRAFTS: "Drafts",
    FolderRole.TRASH: "Trash",
    FolderRole.JUNK: "Junk",
    FolderRole.ARCHIVE: "Archive",
}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
REFUSED_LOOKALIKES = {**DELIMITER_LOOKALIKES, "%": "\uff05", "*": "\u2217"}
"""Characters servers refuse in names (Dovecot's Maildir++ refuses '.' under a '/'
separator, IMAP wildcards), and what replaces them when the server says no."""


def canonical(name: str, delimiter: str) -> str:
    """``name`` with a first level of any case spelled ``INBOX``, as servers report it."""
    head, sep, rest = name.partition(delimiter) if delimiter else (name, "", "")
    if head.upper() == INBOX and head != INBOX:
        return INBOX + sep + rest
    return name


def with_lookalikes(name: str, layout: ServerLayout) -> str:
    """``name`` with the characters servers refuse replaced by look-alikes, level by level.

    The namespace prefix and the delimiter stay as they are.
    """
    prefix = layout.prefix if name.startswith(layout.prefix) else ""
    delim = layout.delimiter or "/"
    levels = name[len(prefix) :].split(delim)
    for char, lookalike in REFUSED_LOOKALIKES.items():
        if char != delim:
            levels = [level.replace(char, lookalike) for level in levels]
    return prefix + delim.join(levels)


@dataclass(frozen=True)
class ServerLayout:
    """What the server told us about its folders."""

    delimiter: str
    prefix: str
    """Personal namespace prefix, e.g. "" or "INBOX." (already ends with the delimiter)."""
    folders: Sequence[ServerFolder] = ()
    capabilities: frozenset[str] = frozenset()

    def special_folders(self) -> dict[FolderRole, str]:
        """Role -> server folder, from SPECIAL-USE attributes (first folder wins)."""
        found: dict[FolderRole, str] = {}
        for folder in self.folders:
            for flag in folder.flags:
                role = SPECIAL_USE_ATTRIBUTES.get(flag.lower())
                if role is not None and role not in found:
                    found[role] = folder.name
        return found

    def has(self, name: str) -> bool:
        """Whether the server listed ``name`` (INBOX in any case, as a path's first level)."""
        if name.upper() == INBOX:
            return True
        wanted = canonical(name, self.delimiter)
        return any(
            canonical(f.name, self.delimiter) == wanted
            and not {"\\noselect", "\\nonexistent"} & {x.lower() for x in f.flags}
            for f in self.folders
        )


@dataclass(frozen=True)
class FolderTarget:
    """The server folder one local folder goes to, and why."""

    name: str
    """Full server name (decoded; modified UTF-7 happens on the wire)."""
    role: FolderRole | None
    exists: bool
    reason: str
    create_use: str | None = None
    """SPECIAL-USE attribute to give the folder when it is created (CREATE-SPECIAL-USE)."""


@dataclass
class FolderMapper:
    """Maps source folder paths to server folders for one migration."""

    layout: ServerLayout
    policy: FolderPolicy = field(default_factory=FolderPolicy)
    target_prefix: str = ""
    folder_map: Mapping[str, str] = field(default_factory=dict)
    account_level: bool = False
    """The first level of source paths is a mail account (Thunderbird's "Local Folders",
    "pop.example.com"), not a folder: it is left out, so every account's Inbox goes to
    the server's INBOX. ``folder_map`` keys still use the full path."""
    inboxes: Mapping[tuple[str, ...], str] = field(default_factory=dict)
    """Source folders that are the user's inbox under another name (a mail spool such as
    /var/mail/bob, a fetcher's target file), with the reason: they go to INBOX unless
    ``folder_map`` or ``target_prefix`` says otherwise."""
    renames: Mapping[str, str] = field(default_factory=dict)
    """Server names an earlier run had to change (look-alikes for refused characters)."""

    def __post_init__(self) -> None:
        self._special = self.layout.special_folders()
        self._prefix_levels = [p for p in self.target_prefix.split("/") if p.strip()]

    def sanitise(self, name: str) -> str:
        """One level of a folder name, safe on this server (see the module docstring)."""
        # A name a reader could not decode (lone surrogates): its odd bytes as \xNN.
        name = printable(name)
        delim = self.layout.delimiter
        if delim:
            name = name.replace(delim, DELIMITER_LOOKALIKES.get(delim, "_"))
        # "/" is refused by many servers even where it is not the delimiter (Dovecot's
        # Maildir++ among them): it always becomes its look-alike.
        name = name.replace("/", DELIMITER_LOOKALIKES["/"])
        name = _CONTROL.sub("_", name).strip()
        if name in ("", ".", ".."):
            name = "_" + name
        if len(name) > MAX_NAME:
            digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
            name = f"{name[: MAX_NAME - 10].rstrip()}~{digest}"
        return name

    def join(self, levels: Iterable[str]) -> str:
        """Levels -> full server name below the personal namespace."""
        parts = [self.sanitise(level) for level in levels]
        delim = self.layout.delimiter or "/"
        if parts and parts[0].upper() == INBOX:
            if len(parts) == 1:
                return INBOX
            # INBOX is case-insensitive: "Inbox/Sub" is the server's INBOX/Sub, which is
            # INBOX.Sub where the personal namespace is INBOX. itself.
            prefix = self.layout.prefix
            if prefix.upper() == INBOX + delim:
                return prefix + delim.join(parts[1:])
            return delim.join([INBOX, *parts[1:]])
        return self.layout.prefix + delim.join(parts)

    def target_for(self, source: Sequence[str], *, deleted: bool = False) -> FolderTarget:
        """Where messages of the local folder ``source`` go."""
        key = "/".join(source)
        if self.account_level and len(source) > 1:
            source = source[1:]
        if deleted:
            levels = [*self._prefix_levels, RECOVERED_FOLDER, *source]
            return self._finish(self.join(levels), None, "deleted messages, recovered")
        if key in self.folder_map:
            levels = [p for p in self.folder_map[key].split("/") if p.strip()]
            return self._finish(self.join(levels), None, "folder_map in the profile")
        role = LOCAL_ROLE_NAMES.get(source[-1].casefold()) if len(source) == 1 else None
        if self._prefix_levels:
            # Everything below one folder: special folders become ordinary ones there.
            return self._finish(self.join([*self._prefix_levels, *source]), None, "target_prefix")
        parent_role = LOCAL_ROLE_NAMES.get(source[0].casefold()) if len(source) > 1 else None
        if parent_role is not None and parent_role is not FolderRole.INBOX:
            # A special folder's sub-folders go below wherever it went (Archives/2019 ->
            # Archive/2019), not into a second tree of the local name.
            parent = self.target_for(source[:1])
            delim = self.layout.delimiter or "/"
            name = delim.join([parent.name, *(self.sanitise(level) for level in source[1:])])
            return self._finish(name, None, f"below {parent.name!r} ({parent.reason})")
        if role is FolderRole.INBOX:
            return self._finish(INBOX, role, "the inbox")
        if tuple(source) in self.inboxes:
            return self._finish(INBOX, FolderRole.INBOX, self.inboxes[tuple(source)])
        if role is not None:
            if role in self._special:
                return self._finish(
                    self._special[role], role, f"server's {ROLE_ATTRIBUTE[role]} folder"
                )
            if role in self.policy.roles:
                return self._finish(self.policy.roles[role], role, "provider plugin's folder name")
            name = self.join([DEFAULT_ROLE_NAMES.get(role, source[-1])])
            return self._finish(name, role, "special folder, created", use=ROLE_ATTRIBUTE[role])
        return self._finish(self.join(source), None, "same name")

    def _finish(
        self, name: str, role: FolderRole | None, reason: str, use: str | None = None
    ) -> FolderTarget:
        blocked = self.policy.never_upload
        if name in blocked or self._special.get(FolderRole.ALL) == name:
            # Never fill a non-mail folder (Calendar) or Gmail's All Mail by accident.
            name = f"{name} (imported)"
            reason += f"; the server folder is not for uploads, using {name!r}"
        accepted = self.renames.get(name)
        if accepted is None and not self.layout.has(name):
            # A lost journal: the look-alike name an earlier run created is still there.
            lookalike = with_lookalikes(name, self.layout)
            if lookalike != name and self.layout.has(lookalike):
                accepted = lookalike
        if accepted is not None and accepted != name:
            reason += f"; the server refused {name!r}, so look-alike characters replace some"
            name = accepted
        return FolderTarget(name, role, self.layout.has(name), reason, use)


# --- the per-message plan: what needs no server ------------------------------------------

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_DATE = re.compile(rb"^date:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def to_crlf(data: bytes) -> bytes:
    """Line endings as IMAP wants them; every other byte untouched."""
    if b"\r" not in data:
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")


def header_block(data: bytes) -> bytes:
    end = _HEADER_END.search(data)
    return data[: end.start()] if end else data


def date_header_of(data: bytes) -> datetime | None:
    match = _DATE.search(header_block(data))
    if match is None:
        return None
    try:
        return parsedate_to_datetime(b" ".join(match.group(1).split()).decode("ascii", "replace"))
    except (TypeError, ValueError, IndexError):
        return None


def kept_flags(msg: SourceMessage, keywords_allowed: bool) -> frozenset[str]:
    """The message's flags the server can keep (keywords only where it takes them)."""
    return frozenset(valid_flags(sorted(msg.flags), keywords_allowed)[0])


def upload_job(
    msg: SourceMessage,
    key: str,
    folder: str,
    data: bytes,
    message_id: str | None,
    digest: str,
    rules: UploadRules,
) -> UploadJob:
    """The upload of one message; flags the provider drops on APPEND are set after it."""
    received = msg.received or date_header_of(data)
    after = tuple(sorted(rules.flags_after_append.intersection(msg.flags)))
    flags = tuple(sorted(msg.flags.difference(after)))
    return UploadJob(key, folder, data, flags, received, message_id, digest, after)


def folder_mapper(
    kind: str,
    paths: list[tuple[str, ...]],
    layout: ServerLayout,
    plugins: PluginHost,
    access: AccountAccess,
    options: MigrationOptions,
    listed: Sequence[SourceFolder] = (),
    renames: dict[str, str] | None = None,
) -> FolderMapper:
    """Where each local folder goes: the same mapping for a migration and a verification.

    ``listed``: the reader's folders, which may say that one is the inbox (a spool);
    ``renames``: the journal's server names for names the server refused.
    """
    policy = plugins.folder_policy(access.provider, layout.folders)
    # Thunderbird profiles put the account first ("Local Folders/Inbox"): leave it out.
    account_level = kind == "thunderbird" and all(len(p) > 1 for p in paths)
    inboxes = {f.path: f.inbox_reason for f in listed if f.inbox_reason}
    return FolderMapper(
        layout,
        policy,
        options.target_prefix,
        options.folder_map,
        account_level,
        inboxes,
        renames or {},
    )


def store_bytes(reader: StoreReader) -> int | None:
    """Bytes of the files under the store's path (an upper bound of its mail), or None."""
    path = Path(reader.path)
    try:
        if path.is_file():
            return path.stat().st_size
        total = 0
        for entry in path.rglob("*"):
            if entry.is_file():
                total += entry.stat().st_size
        return total
    except OSError:
        return None


def source_name(reader: StoreReader) -> str:
    """What identifies the source in the journal: its kind and resolved path (or account)."""
    if reader.path is not None:
        return f"{reader.kind}:{reader.path.resolve()}"
    account = f"{getattr(reader, 'username', '')}@{getattr(reader, 'host', '')}"
    return f"{reader.kind}:{account}"


def mb(n: int) -> str:
    return f"{n / 1_000_000:,.0f} MB"
