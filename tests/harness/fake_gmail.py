"""A small fake Gmail IMAP server on loopback: one message store, folders as label views.

Gmail cannot run here, and Dovecot has no labels, so this plays the part of Gmail
for the label tests. It implements what mailadvisor sends (read from imapclient and
``advisor/migration/upload.py``) and models Gmail's semantics where the migration depends on
them:

- one store of messages; each folder is a view of one label with UIDs of its own:
  ``INBOX`` is ``\\Inbox``, the special folders under ``[Gmail]/`` carry their
  special-use attribute and show the system labels ``\\Sent``, ``\\Draft``,
  ``\\Trash``, ``\\Spam``, ``\\Starred``, ``\\Important``; ``[Gmail]/All Mail`` shows
  every message and is no label; any other folder is the user label of that name;
- APPEND into a folder applies its label (into All Mail: no label at all);
- an APPEND of a message identical to a stored one (same Message-ID, same bytes)
  stores nothing new: Gmail adds the folder's label to the stored message;
- ``UID STORE +X-GM-LABELS (...)`` takes system labels bare (``\\Inbox``) or quoted,
  and user labels as atoms or quoted strings in modified UTF-7; a label that does not
  exist yet is created, as Gmail does;
- FETCH ``X-GM-LABELS`` answers every label of the message, system labels quoted
  (``"\\\\Inbox"``) as Gmail writes them.

Commands: CAPABILITY, LOGIN, AUTHENTICATE PLAIN (with or without an initial
response), NAMESPACE, LIST, CREATE, SUBSCRIBE, SELECT, EXAMINE, APPEND (MULTIAPPEND
too, synchronising and non-synchronising literals, LITERAL- rules enforced), UID
SEARCH ALL, UID FETCH (UID, FLAGS, INTERNALDATE, RFC822.SIZE, BODY.PEEK[],
BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)], X-GM-LABELS, X-GM-MSGID), UID STORE
(+FLAGS, +X-GM-LABELS, with or without .SILENT), NOOP, LOGOUT. Everything a client
sends is kept in :attr:`GmailState.log` for the tests to inspect.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from imapclient.imap_utf7 import decode as utf7_decode
from imapclient.imap_utf7 import encode as utf7_encode

from tests.harness.dovecot import TlsFiles
from tests.harness.hostile_server import HostileServer, Peer, server_context

BRIEF_CAPABILITIES = (
    "IMAP4rev1 X-GM-EXT-1 UIDPLUS MULTIAPPEND LITERAL+ NAMESPACE SPECIAL-USE AUTH=PLAIN"
)
GMAIL_LIKE_CAPABILITIES = (
    "IMAP4rev1 UNSELECT IDLE NAMESPACE QUOTA ID XLIST CHILDREN X-GM-EXT-1 UIDPLUS "
    "ENABLE MOVE CONDSTORE ESEARCH LIST-EXTENDED LIST-STATUS LITERAL- SPECIAL-USE "
    "APPENDLIMIT=35651584 AUTH=PLAIN"
)
"""Closer to what Gmail itself offers: LITERAL- (so literals over 4 KB wait for the
go-ahead) and no MULTIAPPEND."""

ALL_MAIL = "[Gmail]/All Mail"
SYSTEM_VIEWS: tuple[tuple[str, str | None, tuple[str, ...]], ...] = (
    ("INBOX", "\\Inbox", ()),
    (ALL_MAIL, None, ("\\All",)),
    ("[Gmail]/Drafts", "\\Draft", ("\\Drafts",)),
    ("[Gmail]/Important", "\\Important", ("\\Important",)),
    ("[Gmail]/Sent Mail", "\\Sent", ("\\Sent",)),
    ("[Gmail]/Spam", "\\Spam", ("\\Junk",)),
    ("[Gmail]/Starred", "\\Starred", ("\\Flagged",)),
    ("[Gmail]/Trash", "\\Trash", ("\\Trash",)),
)
"""(folder, label it shows, special-use attributes)."""
SYSTEM_LABELS = {label.casefold(): label for _, label, _ in SYSTEM_VIEWS if label}

_LITERAL = re.compile(rb"\{(\d+)(\+?)\}\r\n$")
_MESSAGE_ID = re.compile(rb"^message-id:[^\r\n]*(?:\r\n[ \t][^\r\n]*)*\r\n", re.I | re.M)
_SAFE_ATOM = re.compile(r"^[A-Za-z0-9_.\-/]+$")


@dataclass
class Message:
    """One message in the store."""

    gm_id: int
    data: bytes
    flags: set[str]
    internal_date: str
    labels: set[str] = field(default_factory=set)

    @property
    def message_id(self) -> bytes | None:
        head = self.data.split(b"\r\n\r\n", 1)[0] + b"\r\n"
        match = _MESSAGE_ID.search(head)
        return match.group(0) if match else None


@dataclass
class View:
    """A folder: the messages carrying one label (All Mail: all of them), with its UIDs."""

    name: str
    label: str | None
    attributes: tuple[str, ...]
    uidvalidity: int
    uidnext: int = 1
    uids: dict[int, int] = field(default_factory=dict)
    """UID -> gm_id, in UID order."""
    subscribed: bool = True

    def add(self, gm_id: int) -> int:
        for uid, gid in self.uids.items():
            if gid == gm_id:
                return uid
        uid = self.uidnext
        self.uidnext += 1
        self.uids[uid] = gm_id
        return uid


@dataclass
class Atom:
    text: str


@dataclass
class Quoted:
    text: str


Token = Atom | Quoted | bytes | list["Token"]


def tokenize(pieces: list[bytes | tuple[bytes]]) -> list[Token]:
    """Text pieces and literals (1-tuples) -> atoms, quoted strings, literals, lists."""
    flat: list[Token | str] = []
    for piece in pieces:
        if isinstance(piece, tuple):
            flat.append(piece[0])
            continue
        text = piece.decode("utf-8", "surrogateescape")
        i = 0
        while i < len(text):
            c = text[i]
            if c in " \r\n":
                i += 1
            elif c in "()":
                flat.append(c)
                i += 1
            elif c == '"':
                out, i = [], i + 1
                while i < len(text) and text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    out.append(text[i])
                    i += 1
                flat.append(Quoted("".join(out)))
                i += 1
            else:
                j = i
                while j < len(text) and text[j] not in ' ()"\r\n':
                    j += 1
                flat.append(Atom(text[i:j]))
                i = j
    stack: list[list[Token]] = [[]]
    for tok in flat:
        if tok == "(":
            stack.append([])
        elif tok == ")":
            done = stack.pop()
            stack[-1].append(done)
        else:
            assert not isinstance(tok, str)
            stack[-1].append(tok)
    return stack[0]


def text_of(token: Token) -> str:
    if isinstance(token, Atom | Quoted):
        return token.text
    if isinstance(token, bytes):
        return token.decode("utf-8")
    raise ValueError("a list where a string was expected")


def mailbox(token: Token) -> str:
    """A mailbox name or user label as sent (modified UTF-7) -> its real name."""
    return str(utf7_decode(text_of(token).encode("ascii")))


def label_name(token: Token) -> str:
    """A label from STORE: a system label in any case, bare or quoted, or a user label."""
    text = text_of(token)
    if text.startswith("\\"):
        return SYSTEM_LABELS.get(text.casefold(), text)
    return mailbox(token)


def wire_label(label: str) -> bytes:
    """As Gmail writes labels: system labels quoted, user labels atoms when they can be."""
    if label.startswith("\\"):
        return b'"\\\\' + label[1:].encode() + b'"'
    encoded = bytes(utf7_encode(label))
    if _SAFE_ATOM.match(encoded.decode("ascii")) and not encoded.isdigit():
        return bytes(encoded)
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def quote(name: str) -> bytes:
    encoded = bytes(utf7_encode(name))
    return b'"' + encoded.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def uid_set(text: str, known: list[int]) -> list[int]:
    wanted: list[int] = []
    top = max(known, default=0)
    for part in text.split(","):
        first, _, last = part.partition(":")
        a = top if first == "*" else int(first)
        b = a if not last else (top if last == "*" else int(last))
        lo, hi = min(a, b), max(a, b)
        wanted.extend(u for u in known if lo <= u <= hi)
    return sorted(set(wanted))


class GmailState:
    """The account: messages, views, and a log of what clients did."""

    def __init__(self, uidvalidity: int = 600_001) -> None:
        self.lock = threading.RLock()
        self.messages: dict[int, Message] = {}
        self.views: dict[str, View] = {}
        self._next_gm_id = 1
        self._next_uidvalidity = uidvalidity
        self.log: list[tuple[str, ...]] = []
        """("APPEND", folder), ("STORE", folder, item, value...), ("CREATE", name), ..."""
        self.errors: list[str] = []
        """Protocol errors a client made (the tests expect none)."""
        self.sync_literals = 0
        """Literals that waited for the server's go-ahead."""
        self.refuse: Callable[[str, bytes], bool] | None = None
        """APPENDs (folder, bytes) to answer with NO, as a full or broken account would."""
        for name, label, attributes in SYSTEM_VIEWS:
            self._new_view(name, label, attributes)

    def _new_view(self, name: str, label: str | None, attributes: tuple[str, ...] = ()) -> View:
        view = View(name, label, attributes, self._next_uidvalidity)
        self._next_uidvalidity += 1
        self.views[name] = view
        return view

    def view_for_label(self, label: str) -> View:
        for view in self.views.values():
            if view.label == label:
                return view
        if label.startswith("\\"):
            raise KeyError(label)
        return self._new_view(label, label)  # Gmail creates a label it is given

    def create(self, name: str) -> bool:
        if name in self.views or name.upper() == "INBOX":
            return False
        self._new_view(name, name)
        return True

    def add_label(self, message: Message, label: str) -> None:
        message.labels.add(label)
        self.view_for_label(label).add(message.gm_id)

    def append(self, folder: str, data: bytes, flags: set[str], date: str) -> int:
        """Store (or find) the message and give it the folder's label; its UID there."""
        view = self.views[folder]
        self.log.append(("APPEND", folder, hashlib.sha256(data).hexdigest()))
        existing = next(
            (m for m in self.messages.values() if m.data == data and m.message_id is not None),
            None,
        )
        if existing is None:
            existing = Message(self._next_gm_id, data, set(flags), date)
            self._next_gm_id += 1
            self.messages[existing.gm_id] = existing
            self.views[ALL_MAIL].add(existing.gm_id)
        if view.label is not None:
            self.add_label(existing, view.label)
        return view.add(existing.gm_id)

    def delete(self, message: Message) -> None:
        """Gone from every folder (deleted in the web interface, Trash emptied)."""
        with self.lock:
            del self.messages[message.gm_id]
            for view in self.views.values():
                for uid in [u for u, gid in view.uids.items() if gid == message.gm_id]:
                    del view.uids[uid]

    def renumber(self, name: str) -> None:
        """A new UIDVALIDITY and new UIDs for a folder, as after a server-side rebuild."""
        with self.lock:
            view = self.views[name]
            view.uidvalidity = self._next_uidvalidity
            self._next_uidvalidity += 1
            old = [gid for _, gid in sorted(view.uids.items())]
            view.uids = {}
            view.uidnext = 1000
            for gid in old:
                view.add(gid)

    def folder(self, name: str) -> list[Message]:
        """The messages a folder shows, in UID order."""
        with self.lock:
            view = self.views[name]
            return [self.messages[gid] for _, gid in sorted(view.uids.items())]

    def appends(self) -> list[str]:
        return [entry[1] for entry in self.log if entry[0] == "APPEND"]

    def label_stores(self) -> list[tuple[str, ...]]:
        return [entry for entry in self.log if entry[0] == "STORE" and "X-GM-LABELS" in entry[2]]


class FakeGmail:
    """The fake server on a free loopback port (implicit TLS with ``tls``, else plaintext)."""

    def __init__(
        self,
        users: dict[str, str],
        tls: TlsFiles | None = None,
        capabilities: str = BRIEF_CAPABILITIES,
    ) -> None:
        self.users = users
        self.capabilities = capabilities
        self.state = GmailState()
        context = server_context(tls) if tls is not None else None
        self._server = HostileServer(self._serve, tls=context)
        self.port = self._server.port
        self.connections_served = 0

    def close(self) -> None:
        self._server.close()
        if self._server.errors:
            raise self._server.errors[0]

    def __enter__(self) -> FakeGmail:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _serve(self, peer: Peer) -> None:
        self.connections_served += 1
        _Session(self, peer).run()


class _Session:
    def __init__(self, server: FakeGmail, peer: Peer) -> None:
        self.server = server
        self.state = server.state
        self.peer = peer
        self.caps = set(server.capabilities.split())
        self.user: str | None = None
        self.view: View | None = None
        self.readonly = False

    # --- reading ------------------------------------------------------------------
    def read_command(self) -> tuple[bytes, list[bytes | tuple[bytes]]] | None:
        """One command: its tag and its pieces (text, and literals as 1-tuples)."""
        line = self.peer.readline()
        if line is None:
            return None
        tag, _, rest = line.partition(b" ")
        pieces: list[bytes | tuple[bytes]] = []
        while True:
            match = _LITERAL.search(rest)
            if match is None:
                pieces.append(rest)
                return tag, pieces
            size, nonsync = int(match.group(1)), bool(match.group(2))
            pieces.append(rest[: match.start()])
            literal_minus_ok = "LITERAL-" in self.caps and size <= 4096
            if nonsync and "LITERAL+" not in self.caps and not literal_minus_ok:
                self.state.errors.append(f"non-synchronising literal of {size} bytes")
            if not nonsync:
                self.state.sync_literals += 1
                if not self.peer.send(b"+ go ahead\r\n"):
                    return None
            data = self.peer.read_exact(size)
            more = self.peer.readline()
            if data is None or more is None:
                return None
            pieces.append((data,))
            rest = more

    def send(self, *lines: bytes) -> bool:
        return self.peer.send(b"".join(line + b"\r\n" for line in lines))

    # --- the loop -----------------------------------------------------------------
    def run(self) -> None:
        if not self.send(b"* OK Gimap ready for requests from 127.0.0.1"):
            return
        while True:
            command = self.read_command()
            if command is None:
                return
            tag, pieces = command
            tokens = tokenize(pieces)
            if not tokens or not isinstance(tokens[0], Atom):
                self.send(tag + b" BAD what?")
                continue
            name = tokens[0].text.upper()
            args = tokens[1:]
            if name == "UID" and args and isinstance(args[0], Atom):
                name, args = "UID " + args[0].text.upper(), args[1:]
            raw = b"".join(p for p in pieces if isinstance(p, bytes))
            with self.state.lock:
                try:
                    ok = self.dispatch(tag, name, args, raw)
                except (KeyError, ValueError, IndexError) as exc:
                    ok = self.send(tag + b" BAD " + str(exc).encode()[:200])
            if not ok:
                return

    def dispatch(self, tag: bytes, name: str, args: list[Token], raw: bytes) -> bool:
        caps = " ".join(sorted(self.caps, key=lambda c: (c != "IMAP4rev1", c))).encode()
        if name == "CAPABILITY":
            return self.send(b"* CAPABILITY " + caps, tag + b" OK Thats all she wrote!")
        if name == "NOOP":
            return self.send(tag + b" OK Success")
        if name == "LOGOUT":
            self.send(b"* BYE LOGOUT Requested", tag + b" OK 73 good day (Success)")
            return False
        if name == "LOGIN":
            return self.login(tag, text_of(args[0]), text_of(args[1]), caps)
        if name == "AUTHENTICATE":
            return self.authenticate(tag, args, caps)
        if self.user is None:
            return self.send(tag + b" BAD Unknown command (not signed in)")
        handler = getattr(self, "cmd_" + name.replace(" ", "_").lower(), None)
        if handler is None:
            return self.send(tag + b" BAD Unknown command " + name.encode())
        result: bool = handler(tag, args, raw)
        return result

    # --- signing in -----------------------------------------------------------------
    def login(self, tag: bytes, user: str, password: str, caps: bytes) -> bool:
        if self.server.users.get(user) != password:
            return self.send(tag + b" NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")
        self.user = user
        self.state.log.append(("LOGIN", user))
        return self.send(
            tag + b" OK [CAPABILITY " + caps + b"] " + user.encode() + b" authenticated"
        )

    def authenticate(self, tag: bytes, args: list[Token], caps: bytes) -> bool:
        if text_of(args[0]).upper() != "PLAIN":
            return self.send(tag + b" NO unsupported mechanism")
        if len(args) > 1:
            response = text_of(args[1])
        else:
            if not self.send(b"+ "):
                return False
            line = self.peer.readline()
            if line is None:
                return False
            response = line.strip().decode("ascii")
        try:
            _authz, user, password = base64.b64decode(response).decode("utf-8").split("\0")
        except ValueError:
            return self.send(tag + b" BAD Invalid SASL argument")
        return self.login(tag, user, password, caps)

    # --- folders ----------------------------------------------------------------------
    def cmd_namespace(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        return self.send(b'* NAMESPACE (("" "/")) NIL NIL', tag + b" OK Success")

    def cmd_list(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        lines = [b'* LIST (\\HasChildren \\Noselect) "/" "[Gmail]"']
        for view in sorted(self.state.views.values(), key=lambda v: (v.name != "INBOX", v.name)):
            attrs = " ".join((*view.attributes, "\\HasNoChildren")).encode()
            lines.append(b"* LIST (" + attrs + b') "/" ' + quote(view.name))
        return self.send(*lines, tag + b" OK Success")

    def cmd_create(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        name = mailbox(args[0])
        self.state.log.append(("CREATE", name))
        if not self.state.create(name):
            return self.send(tag + b" NO [ALREADYEXISTS] Duplicate folder name (Failure)")
        return self.send(tag + b" OK Success")

    def cmd_subscribe(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        self.state.views[mailbox(args[0])].subscribed = True
        return self.send(tag + b" OK Success")

    def cmd_select(self, tag: bytes, args: list[Token], raw: bytes, readonly: bool = False) -> bool:
        name = mailbox(args[0])
        view = self.state.views.get(name)
        if view is None:
            self.view = None
            return self.send(tag + b" NO [NONEXISTENT] Unknown Mailbox: " + name.encode())
        self.view, self.readonly = view, readonly
        flags = b"\\Answered \\Flagged \\Draft \\Deleted \\Seen $Forwarded"
        return self.send(
            b"* FLAGS (" + flags + b")",
            b"* OK [PERMANENTFLAGS (" + flags + b" \\*)] Flags permitted.",
            b"* OK [UIDVALIDITY %d] UIDs valid." % view.uidvalidity,
            b"* %d EXISTS" % len(view.uids),
            b"* 0 RECENT",
            b"* OK [UIDNEXT %d] Predicted next UID." % view.uidnext,
            tag + (b" OK [READ-ONLY] " if readonly else b" OK [READ-WRITE] ") + b"Success",
        )

    def cmd_examine(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        return self.cmd_select(tag, args, raw, readonly=True)

    # --- messages ---------------------------------------------------------------------
    def cmd_append(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        name = mailbox(args[0])
        view = self.state.views.get(name)
        if view is None:
            return self.send(tag + b" NO [TRYCREATE] Folder doesn't exist. (Failure)")
        batch: list[tuple[bytes, set[str], str]] = []
        rest = args[1:]
        while rest:
            flags: set[str] = set()
            date = ""
            if isinstance(rest[0], list):
                flags = {text_of(f) for f in rest[0]}
                rest = rest[1:]
            if isinstance(rest[0], Quoted):
                date = rest[0].text
                rest = rest[1:]
            data = rest[0]
            if not isinstance(data, bytes):
                return self.send(tag + b" BAD expected a literal")
            rest = rest[1:]
            batch.append((data, flags, date))
        refuse = self.state.refuse
        if refuse is not None and any(refuse(name, data) for data, _, _ in batch):
            # MULTIAPPEND is all or nothing (RFC 3502).
            return self.send(tag + b" NO [CANNOT] refused for the test (Failure)")
        uids = [self.state.append(name, data, flags, date) for data, flags, date in batch]
        appenduid = b"[APPENDUID %d %s]" % (
            view.uidvalidity,
            ",".join(map(str, uids)).encode(),
        )
        return self.send(tag + b" OK " + appenduid + b" (Success)")

    def _selected(self, tag: bytes) -> View | None:
        if self.view is None:
            self.send(tag + b" BAD No mailbox selected")
        return self.view

    def cmd_uid_search(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        view = self._selected(tag)
        if view is None:
            return True
        if [text_of(a).upper() for a in args] != ["ALL"]:
            return self.send(tag + b" BAD only ALL here")
        found = " ".join(str(u) for u in sorted(view.uids)).encode()
        return self.send(
            b"* SEARCH " + found if found else b"* SEARCH", tag + b" OK SEARCH completed"
        )

    def _fetch_line(self, view: View, uid: int, items: str) -> bytes:
        message = self.state.messages[view.uids[uid]]
        seq = sorted(view.uids).index(uid) + 1
        parts = [b"UID %d" % uid]
        if "RFC822.SIZE" in items:
            parts.append(b"RFC822.SIZE %d" % len(message.data))
        if "FLAGS" in items.replace("X-GM-LABELS", ""):
            parts.append(b"FLAGS (" + " ".join(sorted(message.flags)).encode() + b")")
        if "INTERNALDATE" in items:
            parts.append(b'INTERNALDATE "' + message.internal_date.encode() + b'"')
        if "X-GM-MSGID" in items:
            parts.append(b"X-GM-MSGID %d" % (10**15 + message.gm_id))
        if "X-GM-LABELS" in items:
            labels = b" ".join(wire_label(label) for label in sorted(message.labels))
            parts.append(b"X-GM-LABELS (" + labels + b")")
        if "BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]" in items:
            header = (message.message_id or b"") + b"\r\n"
            parts.append(b"BODY[HEADER.FIELDS (MESSAGE-ID)] {%d}\r\n" % len(header) + header)
        if "BODY.PEEK[]" in items:
            parts.append(b"BODY[] {%d}\r\n" % len(message.data) + message.data)
        return b"* %d FETCH (" % seq + b" ".join(parts) + b")"

    def cmd_uid_fetch(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        view = self._selected(tag)
        if view is None:
            return True
        items = raw.decode("utf-8", "replace").upper().split(None, 2)[-1]
        lines = [
            self._fetch_line(view, uid, items) for uid in uid_set(text_of(args[0]), list(view.uids))
        ]
        return self.send(*lines, tag + b" OK Success")

    def cmd_uid_store(self, tag: bytes, args: list[Token], raw: bytes) -> bool:
        view = self._selected(tag)
        if view is None:
            return True
        if self.readonly:
            return self.send(tag + b" NO STORE attempt on READ-ONLY folder (Failure)")
        item = text_of(args[1]).upper()
        values = args[2] if isinstance(args[2], list) else [args[2]]
        uids = uid_set(text_of(args[0]), list(view.uids))
        if item.startswith("+X-GM-LABELS"):
            labels = [label_name(v) for v in values]
            self.state.log.append(("STORE", view.name, item, *labels))
            for uid in uids:
                for label in labels:
                    self.state.add_label(self.state.messages[view.uids[uid]], label)
        elif item.startswith("+FLAGS"):
            flags = [text_of(v) for v in values]
            self.state.log.append(("STORE", view.name, item, *flags))
            for uid in uids:
                self.state.messages[view.uids[uid]].flags.update(flags)
        else:
            return self.send(tag + b" BAD only +FLAGS and +X-GM-LABELS here")
        lines = []
        if not item.endswith(".SILENT"):
            what = "X-GM-LABELS" if "X-GM-LABELS" in item else "FLAGS"
            lines = [self._fetch_line(view, uid, what) for uid in uids]
        return self.send(*lines, tag + b" OK Success")


def all_labels(state: GmailState) -> Iterator[tuple[bytes, set[str]]]:
    """(body, labels) of every stored message."""
    with state.lock:
        for message in state.messages.values():
            yield message.data, set(message.labels)
