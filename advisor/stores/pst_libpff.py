"""Outlook .pst files read through libpff (the ``pypff`` module of ``libpff-python``).

The reader for machines without readpst: libpff-python ships wheels for Windows, macOS
(Apple silicon) and Linux, so ``pip``/``pipx`` installs it without a compiler, where
readpst is a Unix program (Debian pst-utils, Homebrew libpst). :mod:`advisor.stores.pst`
prefers readpst when it is installed (it rebuilds attached messages, which libpff's
Python binding cannot reach) and uses this module otherwise.

libpff gives MAPI properties, so the message is rebuilt here: the header lines Outlook
kept from delivery (PR_TRANSPORT_MESSAGE_HEADERS) as they are, minus the MIME ones
(the body is re-encoded); without them (sent mail, drafts) From/To/Cc/Subject/Date/
Message-ID from the properties. The body: text/plain and text/html as alternatives,
an RTF body without HTML as ``rtf-body.rtf`` (as readpst does), attachments with their
names, types and Content-IDs. An attached message (an "Outlook item") cannot be read
through pypff: the message keeps a note in place of it and a problem in the report.

More survives than through readpst: replied/forwarded (PR_LAST_VERB_EXECUTED), the
follow-up flag (PR_FLAG_STATUS), drafts (MSGFLAG_UNSENT), and the delivery time
(PR_MESSAGE_DELIVERY_TIME) as the received date.

Nothing is written: libpff opens the file read-only, and no temporary copy is made.
"""

from __future__ import annotations

import importlib.util
import mimetypes
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import default as default_policy
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import Any

from advisor.stores.base import (
    ANSWERED,
    DRAFT,
    FLAGGED,
    FORWARDED,
    SEEN,
    Problem,
    SourceMessage,
    unreadable_message,
)
from advisor.stores.message_files import folder_key, header_date

__all__ = ["LIBPFF_PACKAGE", "PffFile", "libpff_available"]

LIBPFF_PACKAGE = "libpff-python"
_POLICY = default_policy.clone(linesep="\n")

# MAPI property tags (MS-OXPROPS).
_MESSAGE_CLASS = 0x001A
_SUBJECT = 0x0037
_CLIENT_SUBMIT_TIME = 0x0039
_SENDER_NAME = 0x0C1A
_SENDER_ADDRTYPE = 0x0C1E
_SENDER_EMAIL = 0x0C1F
_SENDER_SMTP = 0x5D01
_DELIVERY_TIME = 0x0E06
_MESSAGE_FLAGS = 0x0E07
_INTERNET_MESSAGE_ID = 0x1035
_REFERENCES = 0x1039
_IN_REPLY_TO = 0x1042
_LAST_VERB = 0x1081
_FLAG_STATUS = 0x1090
_INTERNET_CPID = 0x3FDE
_MESSAGE_CODEPAGE = 0x3FFD
_DISPLAY_NAME = 0x3001
_ADDRTYPE = 0x3002
_EMAIL_ADDRESS = 0x3003
_SMTP_ADDRESS = 0x39FE
_RECIPIENT_TYPE = 0x0C15
_ATTACH_FILENAME = 0x3704
_ATTACH_LONG_FILENAME = 0x3707
_ATTACH_METHOD = 0x3705
_ATTACH_MIME_TAG = 0x370E
_ATTACH_CONTENT_ID = 0x3712
_IPM_SUBTREE = 0x35E0

_MSGFLAG_READ = 0x1
_MSGFLAG_UNSENT = 0x8
_VERB_FORWARD = 104
_VERBS_REPLY = (102, 103)  # reply to sender, reply to all
_FLAG_MARKED = 2
_ATTACH_EMBEDDED_MESSAGE = 5
_MAIL_CLASSES = ("ipm.note", "report.ipm.note", "ipm.post")
_MIME_HEADERS = {b"content-type", b"content-transfer-encoding", b"mime-version"}
_STRING_TYPES = (0x1E, 0x1F)
_CODEPAGES = {65001: "utf-8", 20127: "us-ascii", 28591: "iso-8859-1", 1200: "utf-16-le"}


def libpff_available() -> bool:
    """Whether the ``pypff`` module (pip package libpff-python) can be imported."""
    return importlib.util.find_spec("pypff") is not None


class PffFile:
    """One .pst file open through libpff, read-only. Use as a context manager."""

    def __init__(self, path: Path) -> None:
        import pypff

        self.path = path
        # Through a Python file object: non-ASCII and UNC paths open the way Python
        # opens them on every platform, and the file is surely opened read-only.
        self._stream = open(path, "rb")  # noqa: SIM115  # closed by close()
        self._file: Any = pypff.file()
        try:
            self._file.open_file_object(self._stream)
        except BaseException:
            self._stream.close()
            raise

    def __enter__(self) -> PffFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._file.close()
        finally:
            self._stream.close()

    def store_name(self) -> str:
        """The store's display name, which readpst also names its top folder after."""
        store = self._file.message_store
        name = _properties(store).text(_DISPLAY_NAME) if store is not None else None
        return name or "Outlook Data File"

    def mail_folders(self) -> Iterator[tuple[tuple[str, ...], tuple[str, ...], Any]]:
        """(folder, path for source ids, pypff folder) of folders holding mail, below the
        IPM subtree (what Outlook shows; search folders and views are outside it)."""
        top = self._ipm_subtree()
        if top is None:
            return
        store = self.store_name()
        stack: list[tuple[Any, tuple[str, ...]]] = [(top, ())]
        while stack:
            folder, names = stack.pop()
            if any(_is_mail(m) for m in _sub_messages(folder)):
                yield (names or (store,)), (store, *names), folder
            children = [
                (sub, (*names, sub.name or f"folder {sub.identifier}"))
                for sub in _sub_folders(folder)
            ]
            stack.extend(reversed(children))

    def messages(self) -> Iterator[SourceMessage]:
        for folder, relative, pff_folder in self.mail_folders():
            key = folder_key(relative)
            for item in _sub_messages(pff_folder):
                if _is_mail(item):
                    yield _message(folder, f"{key}/id{item.identifier}", item)

    def _ipm_subtree(self) -> Any:
        """The folder the store's PR_IPM_SUBTREE_ENTRYID names (its last 4 bytes are the
        node id); else the root's child that holds the mail (an old or odd file)."""
        root = self._file.root_folder
        if root is None:
            return None
        children = list(_sub_folders(root))
        entry = _properties(self._file.message_store).raw(_IPM_SUBTREE)
        if entry is not None and len(entry) >= 4:
            node = int.from_bytes(entry[-4:], "little")
            for child in children:
                if child.identifier == node:
                    return child
        for child in children:
            holds = child.number_of_sub_folders or child.number_of_sub_messages
            if holds and "search" not in (child.name or "").lower():
                return child
        return root


@dataclass(frozen=True)
class _Props:
    """The first record set of a libpff item, by property tag."""

    entries: dict[int, Any]

    def raw(self, tag: int) -> bytes | None:
        entry = self.entries.get(tag)
        if entry is None:
            return None
        data = entry.data
        return bytes(data) if data is not None else None

    def text(self, tag: int) -> str | None:
        entry = self.entries.get(tag)
        if entry is None or entry.value_type not in _STRING_TYPES:
            return None
        try:
            value = entry.data_as_string
        except (OSError, ValueError):
            return None
        return str(value) if value else None

    def number(self, tag: int) -> int | None:
        entry = self.entries.get(tag)
        if entry is None:
            return None
        try:
            return int(entry.data_as_integer)
        except (OSError, ValueError, TypeError):
            return None

    def time(self, tag: int) -> datetime | None:
        entry = self.entries.get(tag)
        if entry is None:
            return None
        try:
            value = entry.data_as_datetime
        except (OSError, ValueError, OverflowError):
            return None
        if not isinstance(value, datetime) or value.year < 1971:
            return None
        return value.replace(tzinfo=UTC)  # FILETIME: UTC


def _properties(item: Any) -> _Props:
    entries: dict[int, Any] = {}
    try:
        sets = list(item.record_sets) if item is not None else []
    except OSError:
        sets = []
    for entry in sets[0].entries if sets else ():
        entries.setdefault(int(entry.entry_type), entry)
    return _Props(entries)


def _sub_folders(folder: Any) -> Iterator[Any]:
    for i in range(folder.number_of_sub_folders):
        yield folder.get_sub_folder(i)


def _sub_messages(folder: Any) -> Iterator[Any]:
    for i in range(folder.number_of_sub_messages):
        yield folder.get_sub_message(i)


def _is_mail(item: Any) -> bool:
    """Mail only (as readpst -te): no contacts, appointments, tasks, notes."""
    kind = (_properties(item).text(_MESSAGE_CLASS) or "ipm.note").lower()
    return kind == "ipm" or kind.startswith(_MAIL_CLASSES)


def _message(folder: tuple[str, ...], source_id: str, item: Any) -> SourceMessage:
    try:
        data, flags, received, problems = _rebuild(item)
    except (OSError, ValueError, UnicodeError) as exc:
        # Reported with the reason and kept in the report; never silently dropped.
        return unreadable_message(folder, source_id, f"{source_id}: libpff cannot read it: {exc}")
    return SourceMessage(
        folder=folder,
        data=data,
        flags=flags,
        received=received,
        source_id=source_id,
        problems=problems,
    )


def _rebuild(
    item: Any,
) -> tuple[bytes, frozenset[str], datetime | None, tuple[Problem, ...]]:
    props = _properties(item)
    problems: list[Problem] = []
    body = _body(item, props, problems)
    generated = body.as_bytes(policy=_POLICY)
    end = generated.find(b"\n\n")
    mime_headers, content = generated[: end + 1], generated[end + 2 :]
    transport = _text_attr(item, "transport_headers")
    head = _kept_headers(transport) if transport else _made_headers(item, props)
    data = head + mime_headers + b"\n" + content
    # Received mail: when it arrived. Sent mail and drafts (no delivered header): when
    # it was sent, as its Date:; Outlook's delivery time there is not the sending time.
    times = (_DELIVERY_TIME, _CLIENT_SUBMIT_TIME) if transport else (_CLIENT_SUBMIT_TIME,)
    received = next((t for t in map(props.time, times) if t is not None), None)
    received = received or header_date(data)
    if received is None:
        problems.append(Problem("bad-date", "no delivery time, Received: or Date: header"))
    return data, _flags(props), received, tuple(problems)


def _flags(props: _Props) -> frozenset[str]:
    flags: set[str] = set()
    message_flags = props.number(_MESSAGE_FLAGS) or 0
    if message_flags & _MSGFLAG_READ:
        flags.add(SEEN)
    if message_flags & _MSGFLAG_UNSENT:
        flags.add(DRAFT)
    verb = props.number(_LAST_VERB)
    if verb in _VERBS_REPLY:
        flags.add(ANSWERED)
    elif verb == _VERB_FORWARD:
        flags.add(FORWARDED)
    if props.number(_FLAG_STATUS) == _FLAG_MARKED:
        flags.add(FLAGGED)
    return frozenset(flags)


def _kept_headers(transport: str) -> bytes:
    """The delivered header lines, LF-ended, without the MIME ones (rebuilt below)."""
    raw = transport.replace("\r\n", "\n").encode("utf-8", "replace")
    end = raw.find(b"\n\n")
    lines = (raw if end < 0 else raw[: end + 1]).split(b"\n")
    kept: list[bytes] = []
    keep = False
    for line in lines:
        if not line:
            continue
        if line[:1] in (b" ", b"\t"):
            if keep:
                kept.append(line)
            continue
        name = line.split(b":", 1)[0].strip().lower()
        keep = b":" in line and name not in _MIME_HEADERS
        if keep:
            kept.append(line)
    return b"".join(line + b"\n" for line in kept)


def _made_headers(item: Any, props: _Props) -> bytes:
    """Headers from the properties, for mail Outlook holds no delivered header for."""
    fields: list[tuple[str, str]] = []
    sender = _address(
        props.text(_SENDER_NAME),
        props.text(_SENDER_SMTP)
        or (
            props.text(_SENDER_EMAIL)
            if (props.text(_SENDER_ADDRTYPE) or "").upper() == "SMTP"
            else None
        ),
    )
    if sender:
        fields.append(("From", sender))
    for kind, name in ((1, "To"), (2, "Cc"), (3, "Bcc")):
        people = [_address(n, a) for t, n, a in _recipients(item) if t == kind]
        if any(people):
            fields.append((name, ", ".join(p for p in people if p)))
    subject = props.text(_SUBJECT)
    if subject is not None and subject.startswith("\x01"):
        subject = subject[2:]  # a marker and the length of the "FW: " prefix, not text
    if subject is not None:
        fields.append(("Subject", subject))
    when = props.time(_CLIENT_SUBMIT_TIME) or props.time(_DELIVERY_TIME)
    if when is not None:
        fields.append(("Date", format_datetime(when)))
    for tag, name in (
        (_INTERNET_MESSAGE_ID, "Message-ID"),
        (_IN_REPLY_TO, "In-Reply-To"),
        (_REFERENCES, "References"),
    ):
        value = props.text(tag)
        if value:
            fields.append((name, value))
    return b"".join(
        f"{name}: {_encoded(name, value)}\n".encode("ascii", "replace") for name, value in fields
    )


def _encoded(name: str, value: str) -> str:
    value = " ".join(value.split())
    if value.isascii():
        return value
    return Header(value, "utf-8", header_name=name).encode(linesep="\n")


def _address(name: str | None, address: str | None) -> str:
    if address and "@" in address:
        if name and name.strip("'\" ") != address:
            return formataddr((name, address), charset="utf-8")
        return address
    return name or ""


def _recipients(item: Any) -> Iterator[tuple[int | None, str | None, str | None]]:
    try:
        recipients = item.recipients
        sets = list(recipients.record_sets) if recipients is not None else []
    except OSError:
        return
    for record in sets:
        props = _Props({int(e.entry_type): e for e in record.entries})
        address = props.text(_SMTP_ADDRESS)
        if address is None and (props.text(_ADDRTYPE) or "").upper() == "SMTP":
            address = props.text(_EMAIL_ADDRESS)
        yield props.number(_RECIPIENT_TYPE), props.text(_DISPLAY_NAME), address


def _body(item: Any, props: _Props, problems: list[Problem]) -> EmailMessage:
    root = EmailMessage(policy=_POLICY)
    plain = _bytes_attr(item, "plain_text_body")
    html = _bytes_attr(item, "html_body")
    text = _decode(plain, "utf-8") if plain else None
    markup = _decode(html, _codec(props.number(_INTERNET_CPID))) if html else None
    if text is not None:
        root.set_content(text)
        if markup is not None:
            root.add_alternative(markup, subtype="html")
    elif markup is not None:
        root.set_content(markup, subtype="html")
    else:
        root.set_content("")
    rtf = _bytes_attr(item, "rtf_body") if markup is None else None
    if rtf:
        # A rich-text message: its formatting lives only there (readpst does the same).
        root.add_attachment(rtf, "application", "rtf", filename="rtf-body.rtf")
    for number, attachment in enumerate(_attachments(item), 1):
        _attach(root, number, attachment, problems)
    for part in root.walk():
        if part is not root:
            del part["MIME-Version"]  # set_content() adds one to every part
    return root


def _attach(root: EmailMessage, number: int, attachment: Any, problems: list[Problem]) -> None:
    props = _properties(attachment)
    name = (
        props.text(_ATTACH_LONG_FILENAME)
        or props.text(_ATTACH_FILENAME)
        or props.text(_DISPLAY_NAME)
        or f"attachment-{number}"
    )
    if props.number(_ATTACH_METHOD) == _ATTACH_EMBEDDED_MESSAGE:
        problems.append(
            Problem(
                "attachment-lost",
                f"the attached message {name!r} cannot be rebuilt through libpff "
                "(readpst can: install it and read this file again)",
            )
        )
        root.add_attachment(
            f"The attached message {name!r} could not be copied by mailadvisor (libpff).\n",
            filename=f"{name} (not copied).txt",
        )
        return
    size = attachment.size or 0
    data = bytes(attachment.read_buffer(size)) if size else b""
    mime = (props.text(_ATTACH_MIME_TAG) or "").strip().lower()
    if mime.count("/") != 1:
        mime = mimetypes.guess_type(name)[0] or "application/octet-stream"
    maintype, subtype = mime.split("/")
    cid = props.text(_ATTACH_CONTENT_ID)
    root.add_attachment(
        data,
        maintype,
        subtype,
        filename=name,
        cid=f"<{cid.strip('<>')}>" if cid else None,
        disposition="inline" if cid else "attachment",
    )


def _attachments(item: Any) -> Iterator[Any]:
    for i in range(item.number_of_attachments):
        yield item.get_attachment(i)


def _bytes_attr(item: Any, name: str) -> bytes | None:
    try:
        value = getattr(item, name)
    except OSError:
        return None
    return bytes(value) if value else None


def _text_attr(item: Any, name: str) -> str | None:
    try:
        value = getattr(item, name)
    except OSError:
        return None
    return str(value) if value else None


def _codec(codepage: int | None) -> str:
    if codepage is None:
        return "utf-8"
    return _CODEPAGES.get(codepage, f"cp{codepage}")


def _decode(data: bytes, codec: str) -> str:
    text = data.rstrip(b"\0")
    try:
        return text.decode(codec)
    except (LookupError, UnicodeDecodeError):
        return text.decode("utf-8", "replace")
