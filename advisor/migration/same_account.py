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

import re
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING

import imapclient
import imapclient.exceptions

from advisor.connection.account import AccountAccess
from advisor.errors import MailadvisorError, UsageError
from advisor.migration.journal import Entry
from advisor.migration.ledger import found_entry
from advisor.migration.pop3_state import Pop3State, map_to_imap, states_in
from advisor.migration.server_index import ServerMessage, find_trace, message_id_of
from advisor.profile import AuthKind
from advisor.stores.base import ANSWERED, DRAFT, FLAGGED, SEEN, StoreReader

if TYPE_CHECKING:  # the run's server-side check knows the same account, too
    from advisor.migration.duplicates import ServerCopies

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
    port: int | None = None


def _norm_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    return re.sub(r"^(?:pop3?|imap4?|mail)s?\.", "", host)


FETCHER_STORES = ("maildir", "mbox", "mh")
"""Where getmail6, mpop and fetchmail (with procmail or maildrop) deliver."""


def _fetcher_origin(reader: StoreReader) -> Origin | None:
    """The POP3 server the first messages' fetcher trace lines name."""
    if reader.kind not in FETCHER_STORES:
        return None
    messages = reader.messages()
    try:
        for msg in islice(messages, SAMPLE_MESSAGES):
            head = msg.data[:8192].replace(b"\r\n", b"\n")
            trace = find_trace(head)
            if not trace.programs:
                continue
            match = _RECEIVED_FROM.search(head[: trace.length])
            return Origin(trace.programs[0], match.group(1).decode() if match else None, None)
    finally:
        close = getattr(messages, "close", None)
        if close is not None:
            close()  # a generator's finally stops the reader's helpers at once
    return None


def _thunderbird_origins(reader: StoreReader) -> tuple[list[Origin], list[Path]]:
    """Thunderbird's POP3 accounts (prefs.js) and its mail directories."""
    from advisor.stores.thunderbird import ThunderbirdReader, mail_roots, read_prefs

    if not isinstance(reader, ThunderbirdReader):
        return [], []
    try:
        profile = reader.profile_dir
    except UsageError:  # not a profile: no accounts to compare
        return [], []
    if profile is None:
        return [], []
    servers: dict[str, dict[str, str]] = {}
    for key, value in read_prefs(profile).items():
        match = re.fullmatch(r"mail\.server\.([A-Za-z0-9_]+)\.(hostname|userName|type|port)", key)
        if match:
            servers.setdefault(match.group(1), {})[match.group(2)] = value
    origins = [
        Origin("thunderbird", s.get("hostname"), s.get("userName"), _port(s.get("port")))
        for s in servers.values()
        if s.get("type") == "pop3"
    ]
    return origins, [root.path for root in mail_roots(profile)]


def _port(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


@dataclass
class Detected:
    """The target is the account the store came from: why, and what the program kept."""

    report: SameAccountReport
    states: list[Pop3State]
    """The program's own record of what it downloaded from this account (may be empty)."""
    port: int | None = None
    """The POP3 port the program used, when it says."""


def detect(reader: StoreReader, host: str, user: str) -> Detected | None:
    """Is the IMAP account (``host``, ``user``) the one the store's mail came from?"""
    target = _norm_host(host)

    def ours(states: list[Pop3State]) -> list[Pop3State]:
        return [s for s in states if _norm_host(s.host) == target and s.user == user]

    if reader.kind == "pop3":
        pop_host, pop_user = getattr(reader, "host", ""), getattr(reader, "username", "")
        if _norm_host(pop_host) == target and pop_user == user:
            return Detected(
                SameAccountReport("the POP3 download", f"POP3 {pop_user} at {pop_host}"), []
            )
        return None
    origins, roots = _thunderbird_origins(reader)
    for origin in origins:
        if origin.host and _norm_host(origin.host) == target and origin.user == user:
            why = f"Thunderbird's POP3 account {origin.user} at {origin.host}"
            return Detected(
                SameAccountReport("Thunderbird", why), ours(states_in(roots)), origin.port
            )
    fetched = _fetcher_origin(reader)
    if fetched is None or not fetched.host or _norm_host(fetched.host) != target:
        return None
    home = Path.home()
    places = [reader.path, *list(reader.path.parents)[:2], home, home / ".getmail"]
    places += [home / ".config" / "getmail", home / ".local" / "share" / "mpop"]
    states = [s for s in states_in(dict.fromkeys(places)) if _norm_host(s.host) == target]
    if states and not ours(states):
        return None  # the fetcher downloaded another user's mail from this host
    name = _PROGRAM_NAMES.get(fetched.program, fetched.program)
    known = f"user {user}" if states else "its trace lines"
    report = SameAccountReport(name, f"{name} downloaded it from {fetched.host} ({known})")
    port = next((s.port for s in ours(states) if s.port), None)
    return Detected(report, ours(states), port)


# --- making the server look like the program ---------------------------------------------


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
        self.uids: dict[str, int] = {}
        """The server's POP3 UIDL -> INBOX UID (see :func:`uidl_map`)."""
        self.downloaded: set[str] = set()
        """UIDLs the program says it downloaded."""
        self.inbox_selected = False
        """Mapping the UIDLs selected INBOX on the control connection."""

    def uid_for(self, uidl: str | None) -> int | None:
        """The INBOX UID of the message with this POP3 UIDL, when known."""
        return self.uids.get(uidl) if uidl else None

    def downloaded_uids(self) -> list[int]:
        """INBOX UIDs of the messages the program downloaded (still on the server)."""
        return sorted(self.uids[u] for u in self.downloaded if u in self.uids)

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

    def deleted_locally(
        self, server: ServerCopies, data: bytes, trash: Callable[[], str | None]
    ) -> None:
        """A message deleted locally (``data``: its CRLF bytes): is POP3's copy still in
        the server's INBOX? ``trash``: where to move it, if anywhere."""
        found = server.find(self.inbox, data, message_id_of(data))
        if found is not None:
            self.deleted(found, trash())

    def deleted_by_uidl(self, server: ServerCopies, trash: Callable[[], str | None]) -> None:
        """Downloaded by the program (its UIDL file says so), still in INBOX, in no local
        folder: the user deleted it locally."""
        if not self.downloaded:
            return
        index = server.index(self.inbox)
        where = trash()
        for uid in self.downloaded_uids():
            if (found := index.claim_uid(uid)) is not None:
                self.deleted(found, where)

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


def for_run(
    reader: StoreReader,
    access: AccountAccess,
    control: imapclient.IMAPClient,
    inbox: str | None,
    said: bool | None,
    dry_run: bool,
) -> tuple[SameAccount | None, list[str]]:
    """Is the target the account the store came from? Then its POP3 UIDLs, too.

    ``inbox``: the server's INBOX, if it has one (selected here to map the UIDLs);
    ``said``: the user's word (None: find out). Returns notes for the report.
    """
    found = detect(reader, access.target.host, access.username)
    if found is None and said:
        found = Detected(SameAccountReport("mail program", "you said so (--same-account)"), [])
    if found is None:
        return None, []
    same = SameAccount(found.report, inbox or "INBOX", dry_run)
    if not found.states or inbox is None:
        return same, []
    uids, note = uidl_map(control, access, found, inbox)
    same.inbox_selected = True
    same.uids = uids
    same.downloaded = {u for state in found.states for u in state.uidls}
    return same, [note] if note else []


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


def uidl_map(
    control: imapclient.IMAPClient,
    access: AccountAccess,
    detected: Detected,
    inbox: str,
) -> tuple[dict[str, int], str | None]:
    """The server's POP3 UIDLs as INBOX UIDs (empty with a note when they cannot be had).

    POP3 signs in with the account's password on the IMAP host: the port the program
    used (else 995, implicit TLS; 110 means STARTTLS).
    """
    from advisor.stores.base import ReaderOptions
    from advisor.stores.pop3 import Pop3Reader

    if access.profile.auth.method is AuthKind.OAUTH2:
        return {}, None
    port = detected.port or 995
    extra = {
        "host": access.target.host,
        "username": access.username,
        "port": str(port),
        "security": "starttls" if port == 110 else "tls",
        "timeout": str(access.target.timeout),
    }
    if access.target.ca_file is not None:
        extra["ca_file"] = str(access.target.ca_file)
    try:
        reader = Pop3Reader(None, ReaderOptions(extra=extra), password=access.secret())
        listing = reader.listing()
    except MailadvisorError as exc:
        return {}, (
            f"the server's POP3 UIDLs could not be listed ({exc}); the server's copies are "
            "recognised by their content only"
        )
    control.select_folder(inbox, readonly=True)
    uids = control.search("ALL")
    sizes: list[tuple[int, int]] = []
    for start in range(0, len(uids), STORE_CHUNK):
        fetched = control.fetch(uids[start : start + STORE_CHUNK], ["RFC822.SIZE"])
        sizes.extend((uid, int(data[b"RFC822.SIZE"])) for uid, data in sorted(fetched.items()))
    mapping = map_to_imap(listing, sizes)
    if mapping is None:
        return {}, (
            "the server's POP3 mailbox does not line up with its INBOX; the server's copies "
            "are recognised by their content only"
        )
    return mapping, None
