"""File and folder names that are not UTF-8, decoded the way the program that wrote them did.

On POSIX a name is bytes; Python hands it over as ``str`` with each byte that is not
UTF-8 as a lone surrogate (PEP 383). Such a string cannot be encoded as UTF-8, so it
would break IMAP's modified UTF-7, the journal's SQLite, and JSON output. Older Linux
mail programs wrote names in the user's legacy encoding (Latin-1 ``.Café`` is the byte
0xE9), so a name is decoded as UTF-8, else the locale's legacy encoding, else Latin-1;
a name that is none of these (control characters once decoded) gets a visible stand-in,
its odd bytes written ``\\xE9``. Each fallback says what it did, for the report.
"""

from __future__ import annotations

import codecs
import locale
import os
import unicodedata
from pathlib import Path

__all__ = ["decode_folder_name", "decode_name", "has_surrogates", "printable"]


def has_surrogates(text: str) -> bool:
    """True when ``text`` holds a lone surrogate (a byte that was not UTF-8)."""
    return any("\ud800" <= c <= "\udfff" for c in text)


def printable(text: str) -> str:
    """``text`` with every undecodable byte written ``\\xE9``: valid UTF-8, visible."""
    if not has_surrogates(text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    return raw.decode("utf-8", "backslashreplace")


def _legacy_encoding() -> str | None:
    """The locale's encoding when it is a legacy one (not UTF-8 or ASCII), else None."""
    try:
        name = codecs.lookup(locale.getpreferredencoding(False)).name
    except LookupError:
        return None
    return None if name in ("utf-8", "ascii", "latin-1", "iso8859-1") else name


def _plausible(text: str) -> bool:
    """A name a person wrote: no control characters (C0, C1) or unassigned code points."""
    return all(unicodedata.category(c) not in ("Cc", "Cn", "Cs") for c in text)


def decode_name(name: str | bytes) -> tuple[str, str | None]:
    """(text, how) for one name as ``os.scandir`` gives it (or as bytes).

    ``how`` is None for UTF-8 (the usual case), else "the locale's legacy encoding
    (cp1251)", "Latin-1" or "a stand-in (undecodable bytes written as \\xNN)".
    """
    raw = name if isinstance(name, bytes) else os.fsencode(name)
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    legacy = _legacy_encoding()
    if legacy is not None:
        try:
            text = raw.decode(legacy)
            if _plausible(text):
                return text, f"the locale's legacy encoding ({legacy})"
        except UnicodeDecodeError:
            pass
    text = raw.decode("latin-1")
    if _plausible(text):
        return text, "Latin-1"
    return raw.decode(
        "utf-8", "backslashreplace"
    ), "a stand-in (undecodable bytes written as \\xNN)"


def decode_folder_name(name: str, directory: Path, notes: list[str]) -> str:
    """:func:`decode_name` for a folder's file or directory ``name`` in ``directory``;
    a name that was not UTF-8 is said once in ``notes`` (the reader's, for the report)."""
    text, how = decode_name(name)
    if how is not None:
        note = (
            f"folder name '{printable(name)}' in {printable(str(directory))} is not UTF-8: "
            f"read as {how}, '{text}'"
        )
        if note not in notes:  # a reader's folders() and messages() both walk the tree
            notes.append(note)
    return text
