"""Real folder names of Thunderbird 115 and later, from the profile's JSON caches.

Thunderbird cannot use every folder name as a file name: a name with a character the
file system refuses (``/``, ``\\``, ``:``...), with leading or trailing spaces, a reserved
name or a long one is stored under a short name plus 8 hex digits of a hash ("Q1/Q2
report" -> ``Q18e2cfdc9``; nsMsgUtils' NS_MsgHashIfNecessary keeps the part before the
first refused character). Older versions kept the real name in the folder's ``.msf``
(folderName); since 115 it lives in the profile's ``folderCache.json``, written by
nsMsgFolderCache with jsoncpp: one object whose keys are the absolute paths of the
folders' summary files (``.../Mail/Local Folders/Q18e2cfdc9.msf``, the
PersistentDescriptor of the file) and whose values hold cached properties, among them
``"folderName"`` (read back by Thunderbird's FolderCollector::FindChildren).

``folderTree.json`` (the folder pane's state) names folders by URI
(``mailbox://nobody@Local%20Folders/Q1%2FQ2%20report``): it is the fallback for a folder
missing from the cache, matched to a hashed file name by the kept prefix when exactly
one name fits.

Paths in the cache are those of the machine Thunderbird ran on (another home, Windows
back-slashes): entries are matched by their trailing path components, the file and at
least its directory, never only by the whole path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

FOLDER_CACHE = "folderCache.json"
FOLDER_TREE = "folderTree.json"
MAX_JSON = 64 << 20
"""A folder cache larger than this is not a real one: it is not read."""
# Thunderbird's own folders: their file names are canonical, their shown names localised.
SPECIAL_FILES = frozenset(
    {"Inbox", "Sent", "Drafts", "Trash", "Templates", "Junk", "Archives", "Unsent Messages"}
)
_HASHED = re.compile(r"(?s)(.*)([0-9a-f]{8})")
_URI = re.compile(r"(?:mailbox|pop3|none)://[^/]*(/.*)?")

NameOf = Callable[[Path | None, Path, str], "str | None"]


def _parts(path: str) -> tuple[str, ...]:
    return tuple(p for p in re.split(r"[/\\]", path) if p)


def _read_json(path: Path) -> Any:
    try:
        with open(path, "rb") as stream:
            raw = stream.read(MAX_JSON + 1)
    except OSError:
        return None
    if len(raw) > MAX_JSON:
        return None
    try:
        return json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return None


def _uris(value: Any) -> Iterator[str]:
    """Every folder URI anywhere in a JSON document (keys and strings)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _URI.fullmatch(key):
                    yield key
                stack.append(child)
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and _URI.fullmatch(item):
            yield item


class FolderNames:
    """The names a profile's folderCache.json / folderTree.json record for its folders."""

    def __init__(self, cache: dict[tuple[str, ...], str], tree: list[tuple[str, ...]]) -> None:
        self._by_file: dict[str, list[tuple[tuple[str, ...], str]]] = {}
        for parts, name in cache.items():
            self._by_file.setdefault(parts[-1], []).append((parts, name))
        self._tree = tree
        """Folder paths (decoded URI segments, account first) from folderTree.json."""

    @classmethod
    def load(cls, profile: Path | None) -> FolderNames:
        if profile is None:
            return cls({}, [])
        cache: dict[tuple[str, ...], str] = {}
        document = _read_json(profile / FOLDER_CACHE)
        if isinstance(document, dict):
            for key, value in document.items():
                if not isinstance(key, str) or not isinstance(value, dict):
                    continue
                name = value.get("folderName")
                parts = _parts(key)
                if isinstance(name, str) and name and parts:
                    cache[parts] = name
        tree: list[tuple[str, ...]] = []
        for uri in _uris(_read_json(profile / FOLDER_TREE)):
            match = _URI.fullmatch(uri)
            path = (match.group(1) if match else None) or ""
            segments = tuple(unquote(s) for s in path.split("/") if s)
            if segments:
                tree.append(segments)
        return cls(cache, tree)

    def __bool__(self) -> bool:
        return bool(self._by_file or self._tree)

    def name_for(self, location: Path) -> str | None:
        """The recorded name of the folder stored at ``location`` (its mbox file or
        directory), or None when the caches do not name it."""
        if location.name in SPECIAL_FILES:
            return None
        summary = (*_parts(str(location.parent)), location.name + ".msf")
        best: list[str] = []
        best_depth = 1  # the file and its directory at least
        for parts, name in self._by_file.get(summary[-1], []):
            depth = 0
            while (
                depth < min(len(parts), len(summary)) and parts[-1 - depth] == summary[-1 - depth]
            ):
                depth += 1
            if depth > best_depth:
                best, best_depth = [name], depth
            elif depth == best_depth and depth > 1:
                best.append(name)
        if len(set(best)) == 1:
            return best[0]
        return self._from_tree(location)

    def _from_tree(self, location: Path) -> str | None:
        hashed = _HASHED.fullmatch(location.name)
        if hashed is None:
            return None
        kept = hashed.group(1)
        # The levels above: "A.sbd/B.sbd/Q1..." is folder A/B; compared as a suffix.
        parents = [p[:-4] if p.endswith(".sbd") else p for p in _parts(str(location.parent))]
        found = {
            path[-1]
            for path in self._tree
            if path[-1] != location.name
            and path[-1].startswith(kept)
            and _needs_hash(path[-1], len(kept))
            and list(path[:-1]) == parents[len(parents) - len(path) + 1 :]
        }
        return found.pop() if len(found) == 1 else None

    def wrap(self, base: NameOf) -> NameOf:
        """``base`` (the .msf's recorded name) overridden by these names."""
        if not self:
            return base

        def named(summary: Path | None, location: Path, store: str) -> str | None:
            recorded = base(summary, location, store)
            return self.name_for(location) or recorded

        return named


_REFUSED = set('/\\:*?"<>|')


def _needs_hash(name: str, kept: int) -> bool:
    """Whether Thunderbird hashes ``name`` keeping its first ``kept`` characters: a refused
    character there, or a leading/trailing space or dot, or a name too long to keep."""
    if kept < len(name) and name[kept] in _REFUSED:
        return True
    if name != name.strip(" .") and kept <= len(name) - len(name.lstrip(" .")):
        return True
    return len(name) > kept and kept >= 40
