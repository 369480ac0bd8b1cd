"""Gmail labels (X-GM-EXT-1): which label a server folder shows, and how a label is written.

On Gmail a folder is a view of one label: APPEND into a folder applies its label, and
``UID STORE <uid> +X-GM-LABELS (<label>)`` adds another folder's label to a stored
message. User labels are the folder names, as astrings in modified UTF-7 like mailbox
names. The special folders are system labels with names of their own (``\\Inbox``,
``\\Sent``, ``\\Draft``...), found by the folder's special-use attribute, never by its
localised name; All Mail is every message and no label.

Labels instead of copies (:class:`LabelSharing`): where the provider keeps one message
under several labels, a message whose exact bytes are in several local folders is
uploaded once, and each other folder becomes a label on it (``UID STORE
+X-GM-LABELS``), also when the first copy went up in an earlier run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

import imapclient.exceptions
from imapclient.imap_utf7 import decode as utf7_decode

from advisor.migration.control import Control
from advisor.migration.journal import Entry, MigrationJournal, Status
from advisor.migration.ledger import Ledger, entry
from advisor.migration.report import FolderReport
from advisor.migration.upload import UploadJob, UploadResult, quote_mailbox, valid_flags

CAPABILITY = "X-GM-EXT-1"
INBOX_LABEL = "\\Inbox"
ATTRIBUTE_LABELS = {
    "\\sent": "\\Sent",
    "\\drafts": "\\Draft",
    "\\flagged": "\\Starred",
    "\\important": "\\Important",
    "\\trash": "\\Trash",
    "\\junk": "\\Spam",
}
"""Special-use attribute (lower case) -> the system label its folder shows."""
SYSTEM_LABELS = frozenset({INBOX_LABEL, *ATTRIBUTE_LABELS.values()})
NOT_SHARED = frozenset({"\\Trash", "\\Spam"})
"""Labels a kept message must never get: Gmail hides it from every other label and
deletes it after 30 days. A message there is uploaded as its own copy."""
_CANONICAL = {label.casefold(): label for label in SYSTEM_LABELS}
FETCH_CHUNK = 1000
"""UIDs per STORE and FETCH."""
HOLD_BYTES = 64 * 1024 * 1024
"""Labels instead of copies: bytes of messages kept while the upload of their identical
copy is unanswered, to upload them after all if it fails. Beyond this none are kept
(such a message is then retried by the next run)."""
LABEL_FAILED = "label-failed: "
"""Journal detail of a message whose label could not be set on the copy an earlier run
stored: the next run does not rely on that copy again."""


def label_for(name: str, attributes: Iterable[str] = ()) -> str | None:
    """The label the server folder ``name`` (with its LIST attributes) shows.

    None for a folder that is no single label: All Mail (``\\All``), or a folder that
    cannot hold messages.
    """
    lowered = {a.lower() for a in attributes}
    if "\\all" in lowered or "\\noselect" in lowered or "\\nonexistent" in lowered:
        return None
    if name.upper() == "INBOX":
        return INBOX_LABEL
    for attribute in sorted(lowered):
        if attribute in ATTRIBUTE_LABELS:
            return ATTRIBUTE_LABELS[attribute]
    return name


def shareable(label: str | None) -> bool:
    """Whether a message may carry ``label`` besides others (and so be stored only once).

    Not Trash and Spam (see :data:`NOT_SHARED`), and not a user folder whose name starts
    with a backslash: Gmail would read it as a system label.
    """
    if label is None or label in NOT_SHARED:
        return False
    return label in SYSTEM_LABELS or not label.startswith("\\")


def wire(label: str, *, utf8: bool = False) -> bytes:
    """``label`` as it goes into ``+X-GM-LABELS (...)``.

    System labels go bare, as Google documents them (``\\Inbox``). Any other label is a
    quoted string in modified UTF-7, so spaces, quotes, backslashes, brackets and
    non-ASCII letters survive and nothing in a name can end the string or the command.
    """
    if label in SYSTEM_LABELS:
        return label.encode("ascii")
    return quote_mailbox(label, utf8=utf8)


def parse(raw: bytes | str | int, *, utf8: bool = False) -> str:
    """One label from a FETCH X-GM-LABELS answer, as :func:`label_for` names it.

    The parser hands labels over unquoted; a label made of digits arrives as an int.
    System labels compare without regard to case (Gmail has sent both spellings).
    """
    if isinstance(raw, int):
        return str(raw)
    data = raw if isinstance(raw, bytes) else raw.encode("utf-8")
    if data.startswith(b"\\"):
        text = data.decode("utf-8", "replace")
        return _CANONICAL.get(text.casefold(), text)
    if utf8:  # the session enabled UTF8=ACCEPT: labels come in UTF-8
        return data.decode("utf-8", "replace")
    return str(utf7_decode(data))


# --- labels instead of copies ------------------------------------------------------------

CopyState = Literal["pending", "stored", "found", "gone"]


@dataclass(slots=True)
class Copy:
    """A message of this content on the server (or on its way), for labels instead of copies."""

    folder: str
    shareable: bool
    """Its folder's label may be one of several (not Trash or Spam)."""
    state: CopyState = "pending"
    """pending: APPEND unanswered; stored: the server took it; found: it was there
    already; gone: refused or lost."""
    uid: int | None = None
    uidvalidity: int | None = None


@dataclass
class LabelTask:
    """A message not uploaded because an identical one is stored: its folder becomes a label."""

    source_key: str
    source_id: str
    folder: str
    """Its own server folder."""
    message_id: str | None
    size: int
    sha256: str
    flags: tuple[str, ...]
    report: FolderReport
    stored: Copy
    label: str | None
    """The label to add to the stored message; None when that is in this folder already."""
    job: UploadJob | None = None
    """The message itself, kept while the stored copy's APPEND is unanswered: if that
    copy does not make it, this one is uploaded after all."""


Upload = Callable[[list[UploadJob]], tuple[set[str], list[UploadJob], str | None]]
"""Uploads jobs over a new connection: the keys stored, the jobs whose answer was lost,
the connection's error."""


class LabelSharing:
    """What this run stored or found, by content, and the labels still to add."""

    def __init__(
        self,
        ledger: Ledger,
        control: Control,
        attributes: dict[str, frozenset[str]],
        dry_run: bool,
        keywords_allowed: bool,
    ) -> None:
        self.ledger = ledger
        self.journal: MigrationJournal = ledger.journal
        self.control = control
        self._attributes = attributes
        self.dry_run = dry_run
        self.keywords_allowed = keywords_allowed
        self._copies: dict[str, list[Copy]] = {}
        """What this run stored or found, by content hash."""
        self._copy_of: dict[str, Copy] = {}
        """The same, by source key, while the APPEND is unanswered."""
        self._label_tasks: list[LabelTask] = []
        self._held_bytes = 0
        self._uidvalidities: dict[str, int | None] = {}

    # --- what happened to the stored copies ---------------------------------------------
    def answered(self, key: str, result: UploadResult) -> None:
        """The server answered the upload of ``key`` (a lost answer is settled later)."""
        copy = self._copy_of.get(key)
        if copy is not None and not result.unknown:
            del self._copy_of[key]
            copy.state = "stored" if result.ok else "gone"
            copy.uid, copy.uidvalidity = result.uid, result.uidvalidity

    def settled(self, key: str, found: bool) -> None:
        """A lost answer settled: the message is on the server, or it is not."""
        if (copy := self._copy_of.pop(key, None)) is not None:
            copy.state = "found" if found else "gone"

    def _label_of(self, folder: str) -> str | None:
        return label_for(folder, self._attributes.get(folder, ()))

    def remember(self, digest: str, folder: str, state: CopyState, key: str = "") -> None:
        """Note a message of this content going to (or found in) ``folder``."""
        copy = Copy(folder, shareable(self._label_of(folder)), state)
        self._copies.setdefault(digest, []).append(copy)
        if key:
            self._copy_of[key] = copy

    def as_label(self, folder: FolderReport, job: UploadJob, source_id: str, trust: bool) -> bool:
        """Leave the message out if an identical one is stored; True if it is so handled.

        Same folder: nothing to do on the server. Another folder: its label goes on the
        stored message in the label pass. ``trust``: an earlier run's copy may be used.
        """
        target, digest = job.folder, job.sha256
        copies = self._copies.setdefault(digest, [])
        label = self._label_of(target)
        add: str | None = None
        stored = next((c for c in copies if c.folder == target and c.state != "gone"), None)
        if stored is None:
            earlier = self.journal.done_with_hash(digest)
            if any(e.folder == target for e in earlier):
                stored = Copy(target, shareable(label), "found")
                copies.append(stored)
            elif shareable(label):
                stored = self._shareable_copy(copies, earlier if trust else [])
                add = label
        if stored is None:
            return False
        if self.dry_run:
            folder.to_label += 1
            return True
        task = LabelTask(
            job.source_key,
            source_id,
            target,
            job.message_id,
            job.size,
            digest,
            job.flags + job.flags_after,
            folder,
            stored,
            add,
        )
        if add is None and stored.state in ("stored", "found"):
            self._labelled(task)
            return True
        if stored.state == "pending" and self._held_bytes + job.size <= HOLD_BYTES:
            task.job = job
            self._held_bytes += job.size
        self._label_tasks.append(task)
        return True

    def _shareable_copy(self, copies: list[Copy], earlier: list[Entry]) -> Copy | None:
        """A stored message of this content that another label can go on, if any."""
        for copy in copies:
            if copy.shareable and copy.state == "stored" and copy.uid is not None:
                return copy
        for copy in copies:
            if copy.shareable and copy.state == "pending":
                return copy
        for e in earlier:
            # An earlier run's upload, if its folder still has the UIDs it had then.
            if (
                e.status == Status.UPLOADED
                and e.uid is not None
                and e.uidvalidity is not None
                and shareable(self._label_of(e.folder))
                and self._current_uidvalidity(e.folder) == e.uidvalidity
            ):
                copy = Copy(e.folder, True, "stored", e.uid, e.uidvalidity)
                copies.append(copy)
                return copy
        return None

    def _current_uidvalidity(self, folder: str) -> int | None:
        if folder not in self._uidvalidities:
            control = self.control
            try:
                info = control.imap.select_folder(folder, readonly=True)
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError:
                info = {}  # the folder is gone
            control.selected = folder
            value = info.get(b"UIDVALIDITY")
            self._uidvalidities[folder] = int(value) if value is not None else None
        return self._uidvalidities[folder]

    def apply(self, upload: Upload, lost: Callable[[UploadJob, str | None], None]) -> None:
        """The label pass: each left-out message's folder becomes a label on its stored twin.

        A message whose twin did not make it is uploaded after all (``upload``) if it was
        held; ``lost``: one whose answer was lost there too.
        """
        tasks, self._label_tasks = self._label_tasks, []
        by_folder: dict[str, list[LabelTask]] = {}
        fallback: list[LabelTask] = []
        for task in tasks:
            stored = task.stored
            if task.label is None and stored.state in ("stored", "found"):
                self._labelled(task)  # an identical message made it into this folder
            elif task.label is not None and stored.state == "stored" and stored.uid is not None:
                by_folder.setdefault(stored.folder, []).append(task)
            else:
                fallback.append(task)
        for folder, group in sorted(by_folder.items()):
            fallback.extend(self._label_in(folder, group))
        if fallback:
            self._fallback(fallback, upload, lost)
        self._held_bytes = 0

    def _label_in(self, folder: str, tasks: list[LabelTask]) -> list[LabelTask]:
        """Add the labels (and the copies' flags) to messages of ``folder``; the misses."""
        control = self.control.imap
        try:
            info = control.select_folder(folder)  # read-write: STORE needs it
        except imapclient.exceptions.IMAPClientAbortError:
            raise
        except imapclient.exceptions.IMAPClientError:
            info = {}  # the folder is gone: so are the messages in it
        self.control.selected = folder
        current = info.get(b"UIDVALIDITY")
        ready = [t for t in tasks if current is not None and t.stored.uidvalidity == int(current)]
        missed = [t for t in tasks if current is None or t.stored.uidvalidity != int(current)]
        by_label: dict[str, set[int]] = {}
        by_flag: dict[str, set[int]] = {}
        utf8 = bool(getattr(control, "utf8_enabled", False))  # ENABLE UTF8=ACCEPT
        for t in ready:
            assert t.label is not None and t.stored.uid is not None
            by_label.setdefault(t.label, set()).add(t.stored.uid)
            # Gmail keeps flags per message, not per label: read anywhere is read.
            for flag in valid_flags(t.flags, self.keywords_allowed)[0]:
                by_flag.setdefault(flag, set()).add(t.stored.uid)
        for label, uids in sorted(by_label.items()):
            self._store_label(uids, wire(label, utf8=utf8), f"label {label!r}")
        for flag, uids in sorted(by_flag.items()):
            self._store_flag(uids, flag)
        # Confirm: a label the server refused, or a message deleted since, shows here.
        have: dict[int, set[str]] = {}
        targets = sorted({t.stored.uid for t in ready if t.stored.uid is not None})
        for start in range(0, len(targets), FETCH_CHUNK):
            chunk = targets[start : start + FETCH_CHUNK]
            for uid, data in control.fetch(chunk, ["X-GM-LABELS"]).items():
                labels = data.get(b"X-GM-LABELS", ())
                have[uid] = {parse(x, utf8=utf8) for x in labels}
        for t in ready:
            if t.stored.uid in have and t.label in have[t.stored.uid]:
                self._labelled(t)
            else:
                missed.append(t)
        return missed

    def _store_label(self, uids: set[int], value: bytes, what: str) -> None:
        """``UID STORE +X-GM-LABELS.SILENT (value)``, as :func:`wire` writes the label.

        Over imaplib's ``uid`` command: imapclient's ``add_gmail_labels`` would quote the
        system labels, which Google documents bare.
        """
        imap: Any = self.control.imap._imap  # imaplib object: its public uid()
        ordered = sorted(uids)
        for start in range(0, len(ordered), FETCH_CHUNK):
            chunk = b",".join(b"%d" % uid for uid in ordered[start : start + FETCH_CHUNK])
            try:
                typ, data = imap.uid("STORE", chunk, b"+X-GM-LABELS.SILENT", b"(" + value + b")")
                if typ != "OK":  # as imapclient words a refusal
                    said = data[0] if data else b""
                    text = said.decode("utf-8", "replace") if isinstance(said, bytes) else said
                    raise imapclient.exceptions.IMAPClientError(f"store failed: {text}")
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError as exc:
                self.ledger.report.notes.append(f"the server refused to set {what}: {exc}")
                return

    def _store_flag(self, uids: set[int], flag: str) -> None:
        """The copies' flags on the stored twin (Gmail keeps flags per message)."""
        ordered = sorted(uids)
        for start in range(0, len(ordered), FETCH_CHUNK):
            try:
                self.control.imap.add_flags(
                    ordered[start : start + FETCH_CHUNK], [flag], silent=True
                )
            except imapclient.exceptions.IMAPClientAbortError:
                raise
            except imapclient.exceptions.IMAPClientError as exc:
                self.ledger.report.notes.append(f"the server refused to set flag {flag}: {exc}")
                return

    def _fallback(
        self,
        tasks: list[LabelTask],
        upload: Upload,
        lost: Callable[[UploadJob, str | None], None],
    ) -> None:
        """Messages whose stored twin did not make it, or did not take the label."""
        groups: dict[tuple[str, str], list[LabelTask]] = {}
        for task in tasks:
            groups.setdefault((task.sha256, task.folder), []).append(task)
        jobs: list[UploadJob] = []
        riders: dict[str, list[LabelTask]] = {}
        for group in groups.values():
            carrier = next((t for t in group if t.job is not None), None)
            if carrier is None or carrier.job is None:
                for t in group:
                    self._label_failed(
                        t,
                        f"its identical message in {t.stored.folder!r} is not on the server "
                        "as recorded, so the label could not be added",
                    )
                continue
            # One upload per folder and content: the others are the same message there.
            jobs.append(carrier.job)
            riders[carrier.source_key] = [t for t in group if t is not carrier]
        if not jobs:
            return
        ok, unknown, error = upload(jobs)
        for job in unknown:
            lost(job, error)
        for key, rest in riders.items():
            for t in rest:
                if key in ok:
                    t.label = None
                    self._labelled(t)
                else:
                    self._label_failed(t, "its identical message could not be uploaded")

    def _labelled(self, task: LabelTask) -> None:
        where = "this folder" if task.label is None else repr(task.stored.folder)
        detail = f"the identical message in {where} carries this folder's label"
        self.ledger.record(_task_entry(task, Status.LABELLED, detail))
        task.report.labelled += 1

    def _label_failed(self, task: LabelTask, why: str) -> None:
        self.ledger.record(_task_entry(task, Status.FAILED, LABEL_FAILED + why))
        task.report.failed += 1
        # Its bytes are known only while it was held for a fallback upload.
        failure = self.ledger.failure(
            task.report.source,
            task.source_id,
            task.message_id,
            f"{why}; the next run uploads it",
            task.job.data if task.job is not None else None,
            task.job.internal_date if task.job is not None else None,
        )
        if task.job is None:
            failure.size = task.size


def _task_entry(task: LabelTask, status: str, detail: str) -> Entry:
    return entry(
        task.source_key,
        task.folder,
        task.message_id,
        task.size,
        task.sha256,
        status,
        detail=detail,
    )
