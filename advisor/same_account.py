"""Moving into the very account the POP3 program downloaded from.

Most POP3 programs leave a copy on the server, so the server's INBOX still holds the
originals of what the program downloaded. Then nothing needs uploading: the server is
made to look like the program (the migration's ``same account`` part):

* a local message whose original is in the server's INBOX is not uploaded; the original
  gets the local flags, and when the user had moved the message into a local folder, the
  original is MOVEd there (UID MOVE where offered, else COPY, STORE \\Deleted and
  UID EXPUNGE of exactly those UIDs);
* a message the user deleted locally whose original is still in INBOX is reported, and
  moved to Trash only when asked (``trash_deleted``).

Whether the target is that account is decided by :func:`detect`: a live POP3 source of
the same host and user, a Thunderbird POP3 account of the same host and user (prefs.js),
or the fetchers' trace lines (which name the POP3 server) and the fetcher's UIDL file
(which names the user: getmail's ``oldmail-HOST-PORT-USER``, mpop's ``uidls``,
fetchmail's ``.fetchids``).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import imapclient
import imapclient.exceptions

from advisor.errors import UsageError
from advisor.journal import Entry, Status
from advisor.server_index import ServerMessage, find_trace
from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, SEEN, StoreReader

SAMPLE_MESSAGES = 50
"""Messages read before the run to recognise the fetching program's trace lines."""
SYSTEM_FLAGS = (SEEN, ANSWERED, FLAGGED, DRAFT)
"""Flags the local copy decides (set or cleared) on the server's original; other
keywords on the server are kept."""
STORE_CHUNK = 500

_RECEIVED_FROM = re.compile(rb"^received:[ \t]*from[ \t]+([A-Za-z0-9.-]+)", re.I | re.M)
_PROGRAM_NAMES = {
    "thunderbird": "Thunderbird",
    "getmail6": "getmail",
    "mpop": "mpop",
    "fetchmail": "fetchmail",
    "pop3": "the POP3 download",
}


@dataclass
class SameAccountReport:
    """What the migration did with the server's own copies (JSON and text reports)."""

    program: str
    """Who downloaded the mail ("Thunderbird", "getmail", ...)."""
    why: str
    matched: int = 0
    """Local messages whose original is on the server: not uploaded."""
    moved: int = 0
    """Originals moved from INBOX into the folder the user had put them in."""
    to_move: int = 0
    """Dry run: what a real run would move."""
    flags_set: int = 0
    deleted_on_server: int = 0
    """Messages deleted locally whose original is still in the server's INBOX."""
    trashed: int = 0
    """Of those, moved to Trash (only with ``trash_deleted``)."""
    not_moved: int = 0
    """Originals that could not be moved (the server offers neither MOVE nor UIDPLUS,
    or refused): left in INBOX, reported."""


@dataclass(frozen=True)
class Origin:
    """Where the store's mail came from, as far as it can be told."""

    program: str
    host: str | None
    user: str | None


def _norm_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return re.sub(r"^(?:pop3?|imap4?|mail)s?\.", "", host)


def _uidl_users(places: Iterable[Path], host: str) -> set[str]:
    """Users named by fetchers' UIDL files for ``host`` (getmail, mpop, fetchmail)."""
    users: set[str] = set()
    for place in places:
        with contextlib.suppress(OSError):
            for entry in place.iterdir():
                name = entry.name
                if name.startswith("oldmail-"):  # getmail: oldmail-HOST-PORT-USER
                    parts = name[len("oldmail-") :].split("-", 2)
                    if len(parts) == 3 and _norm_host(parts[0]) == host:
                        users.add(parts[2])
                elif name in ("uidls", ".mpop_uidls", ".fetchids", "fetchids"):
                    users |= _users_in_uidl_file(entry, host)
    return users


def _users_in_uidl_file(path: Path, host: str) -> set[str]:
    users: set[str] = set()
    try:
        with open(path, "rb") as stream:
            text = stream.read(4 << 20).decode("utf-8", "replace")
    except OSError:
        return users
    for line in text.splitlines():
        if line.startswith(" "):  # mpop: " COUNT HOST USER"
            parts = line.split()
            if len(parts) == 3 and _norm_host(parts[1]) == host:
                users.add(parts[2])
        elif "@" in line and " " in line:  # fetchmail: "USER@HOST UIDL"
            who = line.split(" ", 1)[0]
            user, _, at = who.rpartition("@")
            if _norm_host(at) == host:
                users.add(user)
    return users


def _fetcher_origin(reader: StoreReader) -> Origin | None:
    """The POP3 server the first messages' fetcher trace lines name."""
    for msg in islice(reader.messages(), SAMPLE_MESSAGES):
        head = msg.data[:8192].replace(b"\r\n", b"\n")
        trace = find_trace(head)
        if not trace.programs:
            continue
        match = _RECEIVED_FROM.search(head[: trace.length])
        return Origin(trace.programs[0], match.group(1).decode() if match else None, None)
    return None


def _thunderbird_origins(reader: StoreReader) -> list[Origin]:
    from advisor.stores.thunderbird import ThunderbirdReader, read_prefs

    if not isinstance(reader, ThunderbirdReader):
        return []
    try:
        profile = reader.profile_dir()
    except UsageError:  # not a profile: no accounts to compare
        return []
    if profile is None:
        return []
    servers: dict[str, dict[str, str]] = {}
    for key, value in read_prefs(profile).items():
        match = re.fullmatch(r"mail\.server\.([A-Za-z0-9_]+)\.(hostname|userName|type)", key)
        if match:
            servers.setdefault(match.group(1), {})[match.group(2)] = value
    return [
        Origin("thunderbird", s.get("hostname"), s.get("userName"))
        for s in servers.values()
        if s.get("type") == "pop3"
    ]


def detect(reader: StoreReader, host: str, user: str) -> SameAccountReport | None:
    """Is the IMAP account (``host``, ``user``) the one the store's mail came from?"""
    target = _norm_host(host)
    if reader.kind == "pop3":
        pop_host, pop_user = getattr(reader, "host", ""), getattr(reader, "username", "")
        if _norm_host(pop_host) == target and pop_user == user:
            return SameAccountReport("the POP3 download", f"POP3 {pop_user} at {pop_host}")
        return None
    for origin in _thunderbird_origins(reader):
        if origin.host and _norm_host(origin.host) == target and origin.user == user:
            return SameAccountReport(
                "Thunderbird", f"Thunderbird's POP3 account {origin.user} at {origin.host}"
            )
    fetched = _fetcher_origin(reader)
    if fetched is None or not fetched.host or _norm_host(fetched.host) != target:
        return None
    places = [reader.path, *list(reader.path.parents)[:2], Path.home()]
    places += [Path.home() / ".getmail", Path.home() / ".config" / "getmail"]
    places += [Path.home() / ".local" / "share" / "mpop"]
    places = [p if p.is_dir() else p.parent for p in places]
    users = _uidl_users(dict.fromkeys(places), target)
    if users and user not in users:
        return None  # the fetcher downloaded another user's mail from this host
    name = _PROGRAM_NAMES.get(fetched.program, fetched.program)
    known = f"user {user}" if users else "its trace lines"
    return SameAccountReport(name, f"{name} downloaded it from {fetched.host} ({known})")


# --- making the server look like the program ---------------------------------------------


def found_entry(key: str, folder: str, found: ServerMessage, digest: str) -> Entry:
    """The journal's record of a message found on the server: as the server holds it."""
    return Entry(key, folder, found.message_id, found.size, found.exact or digest, Status.FOUND)


@dataclass
class Matched:
    """A local message whose original is in the server's INBOX."""

    original: ServerMessage
    target: str
    """The server folder it belongs in (INBOX, or where the user moved it)."""
    flags: frozenset[str]
    record: Entry | None
    """What the journal gets once done; None for a message deleted locally (Trash)."""


class SameAccount:
    """The same-account part of one migration: planned while reading, applied at the end."""

    def __init__(self, report: SameAccountReport, inbox: str, dry_run: bool) -> None:
        self.report = report
        self.inbox = inbox
        self.dry_run = dry_run
        self.plan: list[Matched] = []

    def original(
        self, found: ServerMessage, target: str, flags: frozenset[str], key: str, digest: str
    ) -> None:
        """The server's INBOX holds this local message: flag it, move it to ``target``."""
        self.report.matched += 1
        if self.dry_run:
            self.report.to_move += target != self.inbox
            return
        self.plan.append(Matched(found, target, flags, found_entry(key, target, found, digest)))

    def deleted(self, found: ServerMessage, trash: str | None) -> None:
        """Deleted locally, still in INBOX: counted; moved to ``trash`` if given."""
        self.report.deleted_on_server += 1
        if trash is not None and not self.dry_run:
            self.plan.append(Matched(found, trash, frozenset(), None))

    def apply(
        self, control: imapclient.IMAPClient, capabilities: frozenset[str]
    ) -> tuple[list[Entry], list[str]]:
        """Set the local flags on the originals, then move them into their folders.

        Returns the journal records of what is done, and notes for the report.
        """
        notes: list[str] = []
        report = self.report
        control.select_folder(self.inbox)
        groups: dict[frozenset[str], list[int]] = {}
        for m in self.plan:
            have = frozenset(m.original.flags)
            system = set(SYSTEM_FLAGS)
            if m.record is not None and (m.flags & system != have & system or m.flags - have):
                groups.setdefault(m.flags, []).append(m.original.uid)
        for wanted, uids in groups.items():
            why = _store_flags(control, uids, wanted)
            if why:
                notes.append(f"the server refused to set flags on its own copies: {why}")
            else:
                report.flags_set += len(uids)
        done = [m.record for m in self.plan if m.target == self.inbox and m.record is not None]
        moves: dict[str, list[Matched]] = {}
        for m in self.plan:
            if m.target != self.inbox:
                moves.setdefault(m.target, []).append(m)
        for target, group in sorted(moves.items()):
            refused = _move(control, [m.original.uid for m in group], target, capabilities)
            if refused is not None:
                report.not_moved += len(group)
                notes.append(
                    f"{len(group)} messages stay in {self.inbox}, not moved to {target!r}: "
                    + refused
                )
                continue
            done.extend(m.record for m in group if m.record is not None)
            report.trashed += sum(1 for m in group if m.record is None)
            report.moved += sum(1 for m in group if m.record is not None)
        self.plan.clear()
        return done, notes


def _store_flags(control: imapclient.IMAPClient, uids: list[int], wanted: frozenset[str]) -> str:
    """Make the system flags of ``uids`` those of ``wanted`` and add its keywords."""
    drop = [f for f in SYSTEM_FLAGS if f not in wanted]
    try:
        for start in range(0, len(uids), STORE_CHUNK):
            chunk = uids[start : start + STORE_CHUNK]
            if drop:
                control.remove_flags(chunk, drop, silent=True)
            if wanted:
                control.add_flags(chunk, sorted(wanted), silent=True)
    except imapclient.exceptions.IMAPClientAbortError:
        raise
    except imapclient.exceptions.IMAPClientError as exc:
        return str(exc)
    return ""


def _move(
    control: imapclient.IMAPClient, uids: list[int], target: str, capabilities: frozenset[str]
) -> str | None:
    """Move ``uids`` of the selected folder into ``target``; None, or why not."""
    try:
        for start in range(0, len(uids), STORE_CHUNK):
            chunk = uids[start : start + STORE_CHUNK]
            if "MOVE" in capabilities:
                control.move(chunk, target)
            elif "UIDPLUS" in capabilities:
                control.copy(chunk, target)
                control.add_flags(chunk, ["\\Deleted"], silent=True)
                control.uid_expunge(chunk)  # exactly these: never another \Deleted message
            else:
                return "the server offers neither MOVE nor UIDPLUS (UID EXPUNGE)"
    except imapclient.exceptions.IMAPClientAbortError:
        raise
    except imapclient.exceptions.IMAPClientError as exc:
        return f"the server refused: {exc}"
    return None


def summary(report: SameAccountReport, dry_run: bool, inbox: str = "INBOX") -> list[str]:
    """The sentences the migration report and the wizard show."""
    lines = []
    if dry_run:
        lines.append(
            f"Your {report.program} downloaded this mail from this account "
            f"({report.why}); {report.matched:,} messages are still on the server: they "
            "will be matched, not uploaded again"
            + (
                f" ({report.to_move:,} moved into the folder you put them in)."
                if report.to_move
                else "."
            )
        )
    else:
        lines.append(
            f"This is the account your {report.program} downloaded from: "
            f"{report.matched:,} messages were already on the server and were not uploaded "
            f"again; {report.moved:,} were moved into the folder you had put them in; "
            f"{report.flags_set:,} got the flags they have locally."
        )
    if report.deleted_on_server:
        verb = "are" if not report.trashed else "were"
        if report.trashed:
            lines.append(
                f"{report.trashed:,} messages you deleted in {report.program} {verb} moved from "
                f"the server's {inbox} to Trash."
            )
        left = report.deleted_on_server - report.trashed
        if left:
            lines.append(
                f"{left:,} messages you deleted in {report.program} are still in the server's "
                f"{inbox} (run with --trash-deleted to move them to Trash)."
            )
    if report.not_moved:
        lines.append(f"{report.not_moved:,} messages could not be moved and stay in {inbox}.")
    return lines
