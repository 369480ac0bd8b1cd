"""Small, exact mail stores for the scan, detection and discovery tests.

Each builder writes the files a real client would write (Thunderbird profile with
profiles.ini and mbox folders carrying X-Mozilla headers, Maildir++, MH with
.mh_sequences, .eml trees, Apple Mail .emlx) and returns what the readers should see,
so tests compare against what was generated rather than against hard-coded numbers.
"""

from __future__ import annotations

import hashlib
import os
import plistlib
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tests.harness import thunderbird_gen

CORPORA = Path("/work/shared/corpora")


def message(subject: str, when: datetime, body: str = "Hello.\n", *, extra: str = "") -> bytes:
    """An RFC 5322 message with LF endings (as Unix clients store them)."""
    date = when.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        f"Return-Path: <alice@example.org>\n"
        f"From: Alice <alice@example.org>\n"
        f"To: Bob <bob@example.net>\n"
        f"Subject: {subject}\n"
        f"Date: {date}\n"
        f"Message-ID: <{hashlib.sha1(subject.encode()).hexdigest()[:16]}@example.org>\n"
        f"{extra}"
        f"\n"
        f"{body}"
    ).encode()


def utc(year: int, month: int, day: int, hour: int = 12, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- Maildir ---------------------------------------------------------------------------


@dataclass
class MaildirMessage:
    folder: tuple[str, ...]
    data: bytes
    when: datetime
    flags: str = ""
    new: bool = False


def make_maildir(path: Path) -> Path:
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def write_maildir(root: Path, messages: list[MaildirMessage]) -> Path:
    """A Maildir++ tree: INBOX at ``root``, folder ("A", "B") in ``root/.A.B``."""
    make_maildir(root)
    for i, m in enumerate(messages):
        folder = (
            root if not m.folder or m.folder == ("INBOX",) else root / ("." + ".".join(m.folder))
        )
        make_maildir(folder)
        stamp = int(m.when.timestamp())
        name = f"{stamp}.M{i}P{1000 + i}.testhost"
        target = folder / "new" / name if m.new else folder / "cur" / f"{name}:2,{m.flags}"
        target.write_bytes(m.data)
        os.utime(target, (stamp, stamp))
    # Something a reader must ignore: a delivery still in progress.
    (root / "tmp" / "1700000000.M9P9.testhost").write_bytes(b"Subject: half written\n")
    return root


# --- mbox and Thunderbird -----------------------------------------------------------------


def envelope(when: datetime, sender: str = "-") -> bytes:
    """A From_ line as Thunderbird writes it: local time, no zone (here: the naive wall time)."""
    return f"From {sender} {when.strftime('%a %b %e %H:%M:%S %Y')}\n".encode()


def write_mbox(path: Path, messages: list[tuple[datetime, bytes]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        for when, data in messages:
            f.write(envelope(when, "alice@example.org"))
            f.write(data if data.endswith(b"\n") else data + b"\n")
            f.write(b"\n")
    return path


@dataclass
class TbMessage:
    data: bytes
    when: datetime
    status: int = 0x0001
    """X-Mozilla-Status; 0x0008 is expunged (then the .msf has no row for it)."""


@dataclass
class ThunderbirdProfile:
    root: Path
    """The directory holding profiles.ini."""
    profile: Path
    local_folders: Path
    folders: dict[tuple[str, ...], list[TbMessage]] = field(default_factory=dict)


def stored_size(m: TbMessage) -> int:
    """The message's size as a reader returns it: without From_ line and X-Mozilla headers."""
    return len(m.data)


def write_thunderbird_profile(
    root: Path,
    folders: dict[tuple[str, ...], list[TbMessage]],
    name: str = "default-release",
    *,
    index: bool = True,
) -> ThunderbirdProfile:
    """profiles.ini in ``root`` and one profile whose Local Folders hold ``folders``.

    Folder ("Archives", "2019") is the mbox ``Archives.sbd/2019``; parents get an empty
    mbox as Thunderbird creates them. With ``index``, every folder has a current .msf
    (tests/harness/thunderbird_gen.py) with a live row per message that is not expunged and its
    received date, as Thunderbird keeps it.
    """
    dirname = f"abcd1234.{name}"
    profile = root / dirname
    local = profile / "Mail" / "Local Folders"
    local.mkdir(parents=True)
    root.joinpath("profiles.ini").write_text(
        "[General]\nStartWithLastProfile=1\nVersion=2\n\n"
        f"[Profile0]\nName={name}\nIsRelative=1\nPath={dirname}\nDefault=1\n"
    )
    profile.joinpath("prefs.js").write_text(
        "// Mozilla User Preferences\n"
        'user_pref("mail.server.server1.directory-rel", "[ProfD]Mail/Local Folders");\n'
        'user_pref("mail.server.server1.hostname", "Local Folders");\n'
        'user_pref("mail.server.server1.type", "none");\n'
    )

    def write_folder(path: Path, messages: list[TbMessage]) -> None:
        stored = [
            f"X-Mozilla-Status: {m.status:04x}\nX-Mozilla-Status2: 00000000\n".encode() + m.data
            for m in messages
        ]
        envelopes = [
            b"From - " + m.when.strftime("%a %b %e %H:%M:%S %Y").encode() for m in messages
        ]
        data = thunderbird_gen.mboxrd(stored, envelopes)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if index:
            rows = [
                thunderbird_gen.Row(start, flags=m.status, received=m.when)
                for m, start in zip(
                    messages, thunderbird_gen.offsets(data) if data else [], strict=True
                )
                if not m.status & 0x0008
            ]
            msf = thunderbird_gen.msf(rows, folder_size=len(data))
            path.with_name(path.name + ".msf").write_bytes(msf)

    for folder, messages in folders.items():
        parent = local
        for part in folder[:-1]:
            if not (parent / part).exists():
                write_folder(parent / part, [])
            parent = parent / f"{part}.sbd"
        write_folder(parent / folder[-1], messages)
    return ThunderbirdProfile(root, profile, local, folders)


# --- MH, eml, emlx, PST --------------------------------------------------------------------


def write_mh(path: Path, messages: dict[int, bytes], sequences: str = "") -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for number, data in messages.items():
        (path / str(number)).write_bytes(data)
    path.joinpath(".mh_sequences").write_text(sequences)
    return path


def write_eml_tree(path: Path, messages: dict[str, bytes]) -> Path:
    for rel, data in messages.items():
        target = path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return path


def emlx_bytes(data: bytes, *, flags: int = 1, received: datetime | None = None) -> bytes:
    plist: dict[str, object] = {"flags": flags}
    if received is not None:
        plist["date-received"] = int(received.timestamp())
    return f"{len(data):<10}\n".encode() + data + plistlib.dumps(plist)


def write_apple_mail(home: Path, version: int, messages: dict[str, list[bytes]]) -> Path:
    """``~/Library/Mail/V<version>/<account>/<Mailbox>.mbox/<uuid>/Data/Messages/<n>.emlx``."""
    root = home / "Library" / "Mail" / f"V{version}"
    account = root / "5B1C2A3E-0000-4000-8000-000000000001"
    n = 100
    for mailbox, datas in messages.items():
        messages_dir = (
            account / f"{mailbox}.mbox" / "6C2D3B4F-0000-4000-8000-000000000002" / "Data"
        ) / "Messages"
        messages_dir.mkdir(parents=True, exist_ok=True)
        for data in datas:
            n += 1
            (messages_dir / f"{n}.emlx").write_bytes(emlx_bytes(data))
    (root / "MailData").mkdir(parents=True, exist_ok=True)
    return root


def copy_pst(target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(CORPORA / "pst" / "java-libpst-dist-list.pst", target)
    return target


# --- the read-only guarantee -----------------------------------------------------------


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root`` (itself included): type, mode, size, mtime, ctime, and the
    bytes' hash for files. Reading a tree changes none of these (atime is left out)."""
    state: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in [".", *dirnames, *filenames]:
            path = Path(dirpath) / name
            st = path.lstat()
            digest = ""
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            rel = str(path.relative_to(root))
            state[rel] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, digest)
    return state
