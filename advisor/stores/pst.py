"""Outlook data files (.pst, also .ost), read through readpst or libpff.

Two readers, because no one program is on every machine:

* readpst (libpst; Debian/Ubuntu ``pst-utils``, Fedora ``libpst``, Homebrew ``libpst``)
  rebuilds messages completely (headers, bodies, attachments, attached messages) and is
  the one used wherever it is installed: it is what this reader was first built and
  tested on, and attached messages survive only through it.
* libpff (pip package ``libpff-python``, module ``pypff``: :mod:`advisor.stores.
  pst_libpff`) where readpst is absent: Windows and most Macs. It ships wheels, so it
  installs with mailadvisor there, and it keeps more of the message's state (replied,
  forwarded, flagged, the delivery time); an attached message is lost through it.

``ReaderOptions.extra["pst_reader"]`` or the environment variable
``MAILADVISOR_PST_READER`` ("readpst", "libpff"; default "auto") forces one. Which one
read the file, and why, is the first of :attr:`PstReader.notes`, shown by scan and in
the migration report.

How: ``readpst -q -D -j 0 -te -e -o TMP FILE`` writes one RFC 822 file per message,
``TMP/<store name>/<folder>/.../<n>.eml``, into a private temporary directory (never
next to the source; ``ReaderOptions.extra["tmp_dir"]`` chooses where). ``-te`` keeps
e-mail only (no contacts, appointments, journal entries: those folders yield nothing),
``-D`` includes the "Deleted Items" folder, which readpst skips otherwise; ``-j 0``
keeps the numbering deterministic. The files are then read one at a time, each one
deleted once yielded, and the directory is removed at the end, on errors too, and
when the caller stops early (closing the generator).

What survives through readpst (:attr:`PstReader.metadata_notes`): read/unread (readpst
writes ``Status: RO`` for a read message; that line is readpst's bookkeeping and is
removed), folder names (lossy for ``/``, ``\\`` and ``:``), headers as delivered when
Outlook kept them. Replied/forwarded/flagged state and the delivery time are lost;
the received date comes from the Received:/Date: headers.

The folder of a message is its path below the store's root folder; messages lying in
the root itself (rare) get the root's display name as folder.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

from advisor.errors import SourceLockedError, UsageError
from advisor.platform_compat import is_sharing_violation
from advisor.stores.base import (
    SEEN,
    Problem,
    ReaderOptions,
    SourceFolder,
    SourceMessage,
    StoreReader,
)
from advisor.stores.message_files import (
    folder_key,
    header_date,
    is_dir,
    is_file,
    natural_key,
    read_bytes,
    sorted_dir,
)
from advisor.stores.pst_libpff import PffFile, libpff_available

PST_MAGIC = b"!BDN"
READPST = "readpst"
READPST_ARGS = ("-q", "-D", "-j", "0", "-te", "-e")
STATUS_READ = b"Status: RO"
PST_READER_OPTION = "pst_reader"
PST_READER_ENV = "MAILADVISOR_PST_READER"
INSTALL_HINT = (
    "reading Outlook .pst files needs readpst or libpff: pip install libpff-python "
    "(into mailadvisor's environment: pipx inject mailadvisor libpff-python), or readpst: "
    "apt-get install pst-utils (Fedora: dnf install libpst; macOS: brew install libpst)"
)


def choose_pst_reader(choice: str | None = None) -> tuple[str, str]:
    """("readpst" or "libpff", why), for ``choice`` ("auto", "readpst", "libpff").

    Auto: readpst when it is on PATH (complete rebuild, attached messages included),
    else libpff when installed; neither: a UsageError saying how to install one."""
    wanted = (choice or os.environ.get(PST_READER_ENV) or "auto").strip().lower()
    if wanted not in ("auto", READPST, "libpff"):
        raise UsageError(f'{PST_READER_ENV} must be "auto", "readpst" or "libpff", not {wanted!r}')
    has_readpst = shutil.which(READPST) is not None
    has_libpff = libpff_available()
    if wanted == READPST:
        if not has_readpst:
            raise UsageError(f"readpst was asked for but is not installed: {INSTALL_HINT}")
        return READPST, "readpst, as asked"
    if wanted == "libpff":
        if not has_libpff:
            raise UsageError(f"libpff was asked for but is not installed: {INSTALL_HINT}")
        return "libpff", "libpff, as asked"
    if has_readpst:
        return READPST, (
            "readpst (found on PATH; preferred where installed: it also rebuilds attached messages)"
        )
    if has_libpff:
        return "libpff", (
            "libpff (readpst is not installed; replied/forwarded/flagged states and the "
            "delivery time survive, attached messages do not)"
        )
    raise UsageError(INSTALL_HINT)


def strip_read_status(data: bytes) -> tuple[bytes, bool]:
    """Remove readpst's ``Status: RO`` line from the top-level header: (data, was read).

    readpst writes it after the message's own header lines, so the last one is its.
    """
    end = data.find(b"\n\n")
    header_end = len(data) if end < 0 else end + 1
    at = -1
    pos = 0
    while pos < header_end:
        nl = data.find(b"\n", pos, header_end)
        line_end = header_end if nl < 0 else nl
        if data[pos:line_end].rstrip(b"\r") == STATUS_READ:
            at = pos
        pos = line_end + 1
    if at < 0:
        return data, False
    nl = data.find(b"\n", at, header_end)
    return data[:at] + data[(header_end if nl < 0 else nl + 1) :], True


class PstReader(StoreReader):
    """Reads the mail folders of an Outlook .pst/.ost file through readpst or libpff."""

    kind: ClassVar[str] = "pst"
    metadata_notes: ClassVar[tuple[str, ...]] = (
        "A .pst holds MAPI properties, not MIME: each message is rebuilt (by readpst, else "
        "libpff), so the bytes differ from what the server sent (header lines are kept as "
        "delivered when Outlook stored them; bodies and attachments are re-encoded).",
        "Read/unread survives (PR_MESSAGE_FLAGS); through readpst replied, forwarded and "
        "flagged states are lost (libpff keeps them).",
        "The received date comes from the Received:/Date: headers through readpst, which "
        "does not export the delivery time (PR_MESSAGE_DELIVERY_TIME); libpff uses it.",
        "Only mail is read: contacts, calendar, tasks, journal and notes are skipped; "
        "Deleted Items is read like any folder.",
        "Folder names: readpst writes /, \\ and : as _ and numbers a name repeated among "
        "sibling folders (Inbox, Inbox1).",
        "A message attached to a message (an Outlook item) survives through readpst only; "
        "libpff leaves a note in its place and reports it.",
        "A PST password is not encryption: Outlook asks for it, readpst and libpff do not, "
        "so such files are read like any other.",
    )

    @classmethod
    def detect(cls, path: Path) -> bool:
        if not path.is_file():
            return False
        try:
            with open(path, "rb") as f:
                return f.read(4) == PST_MAGIC
        except OSError:
            return False

    def __init__(self, path: Path, options: ReaderOptions | None = None) -> None:
        super().__init__(path, options)
        self._extraction: _Extraction | None = None

    def _backend(self) -> str:
        """The reader for this file; its choice is noted once per run for the report."""
        name, why = choose_pst_reader(self.options.extra.get(PST_READER_OPTION))
        note = f"Read with {why}."
        if note not in self.notes:
            self.notes.insert(0, note)
        return name

    def folders(self) -> Iterator[SourceFolder]:
        """Mail folders, listed from a readpst run (a PST cannot be listed more cheaply)
        or through libpff. The extraction is kept for :meth:`messages`, so a scan runs
        readpst once."""
        if self._backend() == "libpff":
            with _opened(self.path) as pst:
                for folder, _, _ in pst.mail_folders():
                    yield SourceFolder(folder, self.path)
            return
        top, _ = self._extracted().result()
        seen: set[tuple[str, ...]] = set()
        for folder, _, _ in self._walk(top):
            if folder not in seen:
                seen.add(folder)
                yield SourceFolder(folder, self.path)

    def messages(self) -> Iterator[SourceMessage]:
        """Every message, from the extraction :meth:`folders` made (or a new one); the
        extraction is removed once read, also when the caller stops early."""
        if self._backend() == "libpff":
            with _opened(self.path) as pst:
                yield from pst.messages()
            return
        extraction = self._extracted()
        self._extraction = None  # this run owns it now; a next run extracts again
        try:
            top, failure = extraction.result()
            for folder, relative, directory in self._walk(top):
                for name in _message_names(directory):
                    path = directory / name
                    try:
                        data = read_bytes(path)
                    except OSError as exc:  # our own temporary file: should not happen
                        raise UsageError(f"cannot read readpst's output {path}: {exc}") from None
                    path.unlink()  # free the temporary space as we go
                    yield _message(folder, relative, name, data)
            if failure:
                # Everything readpst managed to write has been yielded; say what is missing.
                raise UsageError(failure)
        finally:
            extraction.remove()

    def close(self) -> None:
        """Remove an extraction :meth:`folders` made and :meth:`messages` did not read."""
        if self._extraction is not None:
            self._extraction.remove()
            self._extraction = None

    def _extracted(self) -> _Extraction:
        if self._extraction is None:
            self._extraction = _Extraction(self.path, self.options.extra.get("tmp_dir"))
        return self._extraction

    @staticmethod
    def _walk(top: Path | None) -> Iterator[tuple[tuple[str, ...], tuple[str, ...], Path]]:
        """(folder, path relative to the output, directory) of folders holding mail."""
        if top is None:
            return
        stack: list[tuple[Path, tuple[str, ...]]] = [(top, (top.name,))]
        while stack:
            directory, relative = stack.pop()
            entries = sorted_dir(directory)
            if any(is_file(e) and e.name.endswith(".eml") for e in entries):
                yield (relative[1:] or relative), relative, directory
            children = [(Path(e.path), (*relative, e.name)) for e in entries if is_dir(e)]
            stack.extend(reversed(children))


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[PffFile]:
    """The file open through libpff; its errors as one clear UsageError."""
    if not path.is_file():
        raise UsageError(f"{path} is not a file")
    try:
        pst = PffFile(path)
    except OSError as exc:
        # Opened by Python first: on Windows a file Outlook holds open fails there with
        # a sharing violation, told apart from one libpff cannot parse.
        if is_sharing_violation(exc):
            raise SourceLockedError(
                f"{path} is open in Outlook: close Outlook and try again"
            ) from None
        raise UsageError(f"libpff cannot read {path}: {exc}") from None
    with pst:
        yield pst


def _message_names(directory: Path) -> list[str]:
    names = [e.name for e in sorted_dir(directory) if is_file(e) and e.name.endswith(".eml")]
    return sorted(names, key=natural_key)


def _message(
    folder: tuple[str, ...], relative: tuple[str, ...], name: str, data: bytes
) -> SourceMessage:
    data, read = strip_read_status(data)
    received = header_date(data)
    problems: tuple[Problem, ...] = ()
    if received is None:
        problems = (Problem("bad-date", "no usable Received: or Date: header"),)
    return SourceMessage(
        folder=folder,
        data=data,
        flags=frozenset({SEEN}) if read else frozenset(),
        received=received,
        # readpst numbers the items of each folder in PST order: stable for a given file.
        source_id=f"{folder_key(relative)}/{name.removesuffix('.eml')}",
        problems=problems,
    )


class _Extraction:
    """readpst's output in a private temporary directory: made on first :meth:`result`,
    removed by :meth:`remove`, or when the object is collected or the program exits."""

    def __init__(self, source: Path, tmp_dir: str | None) -> None:
        self.source = source
        self.tmp_dir = tmp_dir
        self._result: tuple[Path | None, str] | None = None
        self._cleanup: weakref.finalize[[str], _Extraction] | None = None

    def result(self) -> tuple[Path | None, str]:
        """(store root directory or None when there is no mail, failure message or "")."""
        if self._result is None:
            self._result = self._run()
        return self._result

    def _run(self) -> tuple[Path | None, str]:
        readpst = shutil.which(READPST)
        if readpst is None:
            raise UsageError(INSTALL_HINT)  # removed from PATH since it was chosen
        if not self.source.is_file():
            raise UsageError(f"{self.source} is not a file")
        directory = Path(tempfile.mkdtemp(prefix="mailadvisor-pst-", dir=self.tmp_dir))
        self._cleanup = weakref.finalize(self, _remove_tree, str(directory))
        try:
            out = directory / "out"
            out.mkdir()
            result = subprocess.run(
                [readpst, *READPST_ARGS, "-o", str(out), str(self.source.resolve())],
                cwd=directory,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
            )
            tops = [Path(e.path) for e in sorted_dir(out) if is_dir(e)]
            top = tops[0] if tops else None
            failure = ""
            if result.returncode != 0:
                said = (result.stderr or result.stdout).decode("utf-8", "replace").strip()
                said = said.splitlines()[-1] if said else f"exit status {result.returncode}"
                if top is None:
                    raise UsageError(f"readpst cannot read {self.source}: {said}")
                failure = f"readpst could not read all of {self.source}: {said}"
            return top, failure
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        if self._cleanup is not None:
            self._cleanup()  # runs once; later calls and the collector do nothing
        self._result = None


def _remove_tree(directory: str) -> None:
    shutil.rmtree(directory, ignore_errors=True)
