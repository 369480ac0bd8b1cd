"""A reader for Mork, the text database format of Thunderbird's ``.msf`` summary files.

Mork is a log of changes in plain text (grammar as in Mozilla's
``morkParser.cpp``, which this module follows but does not copy):

* ``// comment`` to the end of the line;
* dictionaries ``< <(a=c)> (80=value) (81=other) >`` define atoms: numbered
  strings. ``<(a=c)>`` puts the dictionary's atoms in the *column* scope
  (column names, table kinds, row scopes); otherwise they are plain atoms;
* rows ``[id:scope (^col=literal) (^col^atom) ...]`` hold cells; ``[-id ...]``
  first clears the row; ``-`` before a cell removes it;
* tables ``{id:scope {(k^kind:c)} rows-or-row-ids ...}`` list rows; ``{-id``
  first empties the table; ``-`` before a row (or row id) removes it;
* groups ``@$${id{@ ... @$$}id}@`` are transactions: their content counts only
  when the group is committed (``@$$}~~}@`` aborts it, and an unfinished group
  at the end of the file is ignored);
* in values, ``\\`` escapes the next byte (and before a line break continues
  the line) and ``$XX`` is a byte in hex. Ids are hexadecimal.

To keep memory proportional to what the caller needs, :func:`parse_mork` can
be told which columns to keep: other cells are dropped while parsing, and only
the atoms those cells refer to are stored (a second, cheap pass over the
dictionaries collects them).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path

MAX_MORK_SIZE = 1 << 30
"""Larger .msf files are not parsed (no real summary comes near this)."""

_SKIP = re.compile(rb"(?:[ \t\r\n\f\v]+|//[^\r\n]*|/\*.*?\*/|\\(?:\r\n?|\n\r?))+", re.S)
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_NAME = re.compile(rb"[A-Za-z_][A-Za-z0-9_\-!?+.]*")
_PLAIN_VALUE = re.compile(rb"[^)\\$]+")
_GROUP_END = re.compile(rb"@\$\$\}(~~|[0-9A-Fa-f]+)\}@")
_GROUP_START = re.compile(rb"@\$\$\{([0-9A-Fa-f]+)\{@")
_HEXDIGITS = frozenset(b"0123456789abcdefABCDEF")
_SKIP_FIRST = frozenset(b" \t\r\n\f\v/\\")
# The compact forms Thunderbird writes nearly everywhere, matched in one step (the
# general, byte-by-byte path handles everything else): a cell (^col=value) or
# (^col^atom), and a dictionary entry (id=value).
_VALUE = rb"((?:[^)\\$]|\\.|\$[0-9A-Fa-f]{2})*)"
_FAST_CELL = re.compile(rb"\(\^([0-9A-Fa-f]+)(?:=" + _VALUE + rb"|\^([0-9A-Fa-f]+))\)", re.S)
_FAST_ATOM = re.compile(rb"\(([0-9A-Fa-f]+)=" + _VALUE + rb"\)", re.S)
_ESCAPE = re.compile(rb"\\(?:\r\n?|\n\r?)|\\(.)|\$([0-9A-Fa-f]{2})", re.S)


def _unescape(value: bytes) -> bytes:
    if b"\\" not in value and b"$" not in value:
        return value
    return _ESCAPE.sub(
        lambda m: m.group(1) or (bytes([int(m.group(2), 16)]) if m.group(2) else b""), value
    )


ATOM_SCOPE = "a"
COLUMN_SCOPE = "c"


class MorkError(ValueError):
    """The data is not Mork at all (parsing is otherwise forgiving)."""


@dataclass(frozen=True, slots=True)
class _AtomRef:
    id: int


@dataclass
class MorkTable:
    """A table: its kind and the ids of its member rows, in order."""

    scope: str
    id: int
    kind: str | None = None
    rows: dict[tuple[str, int], None] = field(default_factory=dict)
    """Member rows as (scope, id), an ordered set."""


@dataclass
class MorkDocument:
    """The state a Mork file describes once every committed change is applied."""

    rows: dict[tuple[str, int], dict[str, bytes]] = field(default_factory=dict)
    """Cells of each row, (scope, id) -> column name -> value bytes."""
    tables: dict[tuple[str, int], MorkTable] = field(default_factory=dict)
    unresolved: int = 0
    """Cells dropped because they referred to an atom the file never defines."""

    def tables_of_kind(self, kind: str) -> list[MorkTable]:
        return [table for table in self.tables.values() if table.kind == kind]

    def row(self, scope: str, row_id: int) -> dict[str, bytes] | None:
        return self.rows.get((scope, row_id))


class _Parser:
    def __init__(self, data: bytes, columns: Collection[str] | None) -> None:
        self.data = data
        self.pos = 0
        self.keep = None if columns is None else frozenset(columns)
        self.column_names: dict[int, str] = {}
        self.atoms: dict[int, bytes] = {}
        self.atom_dicts: list[int] = []
        """Where the atom dictionaries start, for the second pass."""
        self.needed: set[int] = set()
        self.collect_atoms = False  # second pass: only atom dictionaries
        self.raw_rows: dict[tuple[str, int], dict[str, bytes | _AtomRef]] = {}
        self.tables: dict[tuple[str, int], MorkTable] = {}

    # -- lexical helpers --------------------------------------------------------------
    def skip(self) -> None:
        match = _SKIP.match(self.data, self.pos)
        if match:
            self.pos = match.end()

    def peek(self) -> int:
        """The next significant byte (-1 at the end), after whitespace and comments."""
        pos = self.pos
        if pos < len(self.data) and self.data[pos] not in _SKIP_FIRST:
            return self.data[pos]  # the common case, without running the pattern
        self.skip()
        return self.data[self.pos] if self.pos < len(self.data) else -1

    def hex(self) -> int | None:
        self.skip()
        match = _HEX.match(self.data, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return int(match.group(), 16)

    def mid(self, default_scope: str) -> tuple[int, str] | None:
        """An object id: ``hex`` optionally followed by ``:^hex`` or ``:name`` (its scope)."""
        number = self.hex()
        if number is None:
            return None
        scope = default_scope
        if self.data.startswith(b":", self.pos):
            self.pos += 1
            if self.data.startswith(b"^", self.pos):
                self.pos += 1
                token = self.hex()
                if token is not None:
                    scope = self.column_names.get(token, f"^{token:X}")
            else:
                match = _NAME.match(self.data, self.pos)
                if match:
                    self.pos = match.end()
                    scope = match.group().decode("latin-1")
        return number, scope

    def value(self) -> bytes:
        """A literal value after ``=``, up to its unescaped ``)`` (consumed)."""
        data = self.data
        out = bytearray()
        while self.pos < len(data):
            match = _PLAIN_VALUE.match(data, self.pos)
            if match:
                out += match.group()
                self.pos = match.end()
                continue
            byte = data[self.pos]
            self.pos += 1
            if byte == 0x29:  # ')'
                return bytes(out)
            if byte == 0x5C:  # backslash
                if self.pos >= len(data):
                    break
                nxt = data[self.pos]
                if nxt in (0x0A, 0x0D):  # a line continuation: drop the line break
                    self.pos += 1
                    if self.pos < len(data) and data[self.pos] in {0x0A, 0x0D} - {nxt}:
                        self.pos += 1
                    continue
                out.append(nxt)
                self.pos += 1
            else:  # '$': a byte in hex
                pair = data[self.pos : self.pos + 2]
                if len(pair) == 2 and pair[0] in _HEXDIGITS and pair[1] in _HEXDIGITS:
                    out.append(int(pair, 16))
                    self.pos += 2
                else:
                    out.append(byte)
        return bytes(out)

    def skip_to(self, closer: int) -> None:
        """Skip to just past ``closer`` (recovering from bytes we do not understand)."""
        end = self.data.find(bytes([closer]), self.pos)
        self.pos = len(self.data) if end < 0 else end + 1

    # -- content ------------------------------------------------------------------------
    def content(self, end: int) -> None:
        data = self.data
        while True:
            self.skip()
            if self.pos >= end:
                return
            byte = data[self.pos]
            if byte == 0x3C:  # '<'
                self.pos += 1
                self.dictionary()
            elif byte == 0x7B:  # '{'
                self.pos += 1
                self.table()
            elif byte == 0x5B:  # '['
                self.pos += 1
                self.row(default_scope="")
            elif byte == 0x40:  # '@'
                self.group(end)
            else:
                self.pos += 1

    def group(self, end: int) -> None:
        start = _GROUP_START.match(self.data, self.pos)
        if start is None:
            self.pos += 1
            return
        close = _GROUP_END.search(self.data, start.end(), end)
        if close is None:
            self.pos = end  # an unfinished transaction: ignore it and what follows
            return
        committed = close.group(1) != b"~~" and int(close.group(1), 16) == int(start.group(1), 16)
        if committed:
            self.pos = start.end()
            self.content(close.start())
        self.pos = close.end()

    def dictionary(self) -> None:
        scope = ATOM_SCOPE
        start = self.pos
        while True:
            byte = self.peek()
            if byte < 0:
                return
            self.pos += 1
            if byte == 0x3E:  # '>'
                break
            if byte == 0x3C:  # '<': meta, e.g. <(a=c)>
                scope = self.dictionary_meta(scope)
            elif byte == 0x28 and (fast := _FAST_ATOM.match(self.data, self.pos - 1)):
                self.pos = fast.end()
                atom_id = int(fast.group(1), 16)
                if scope == COLUMN_SCOPE:
                    name = _unescape(fast.group(2))
                    self.column_names[atom_id] = name.decode("utf-8", "replace")
                elif self.keep is None or (self.collect_atoms and atom_id in self.needed):
                    self.atoms[atom_id] = _unescape(fast.group(2))
            elif byte == 0x28:  # '(': an atom
                number = self.hex()
                if number is None:
                    self.skip_to(0x29)
                    continue
                if self.peek() == 0x3C:  # a form (charset) we do not need
                    self.skip_to(0x3E)
                if self.peek() != 0x3D:  # '='
                    self.skip_to(0x29)
                    continue
                self.pos += 1
                text = self.value()
                if scope == COLUMN_SCOPE:
                    self.column_names[number] = text.decode("utf-8", "replace")
                elif self.keep is None or (self.collect_atoms and number in self.needed):
                    self.atoms[number] = text
        if scope == ATOM_SCOPE and not self.collect_atoms and self.keep is not None:
            self.atom_dicts.append(start)

    def dictionary_meta(self, scope: str) -> str:
        while True:
            byte = self.peek()
            if byte < 0:
                return scope
            self.pos += 1
            if byte == 0x3E:
                return scope
            if byte == 0x28:
                match = _NAME.match(self.data, self.pos)
                name = match.group() if match else b""
                if match:
                    self.pos = match.end()
                if self.peek() == 0x3D:
                    self.pos += 1
                    text = self.value()
                    if name == b"a":
                        scope = text.decode("latin-1")
                else:
                    self.skip_to(0x29)

    def cell(self) -> tuple[str, bytes | _AtomRef | None] | None:
        """A cell after ``(``: (column name, literal or atom reference); None if malformed."""
        data = self.data
        if data.startswith(b"^", self.pos):
            self.pos += 1
            token = self.mid(COLUMN_SCOPE)
            if token is None:
                self.skip_to(0x29)
                return None
            column = self.column_names.get(token[0], f"^{token[0]:X}")
        else:
            match = _NAME.match(data, self.pos)
            if match is None:
                self.skip_to(0x29)
                return None
            self.pos = match.end()
            column = match.group().decode("latin-1")
        byte = self.peek()
        if byte == 0x3D:  # '='
            self.pos += 1
            return column, self.value()
        if byte == 0x5E:  # '^': an atom
            self.pos += 1
            ref = self.mid(ATOM_SCOPE)
            self.skip_to(0x29)
            if ref is None:
                return column, None
            number, scope = ref
            if scope == COLUMN_SCOPE:
                name = self.column_names.get(number)
                return column, None if name is None else name.encode("utf-8")
            return column, _AtomRef(number)
        self.skip_to(0x29)
        return column, None

    def row(self, default_scope: str) -> tuple[str, int] | None:
        """A row after ``[``: applies its cells; returns its (scope, id)."""
        cut_all = False
        if self.peek() == 0x2D:  # '-'
            cut_all = True
            self.pos += 1
        ident = self.mid(default_scope)
        if ident is None:
            self.skip_to(0x5D)
            return None
        key = (ident[1], ident[0])
        cells = self.raw_rows.get(key)
        if cells is None or cut_all:
            cells = self.raw_rows[key] = {}
        cut_next = False
        while True:
            byte = self.peek()
            if byte < 0:
                break
            self.pos += 1
            if byte == 0x5D:  # ']'
                break
            if byte == 0x2D:  # '-'
                cut_next = True
            elif (
                byte == 0x28
                and not cut_next
                and (fast := _FAST_CELL.match(self.data, self.pos - 1))
            ):
                self.pos = fast.end()
                column_id = int(fast.group(1), 16)
                column = self.column_names.get(column_id) or f"^{column_id:X}"
                if self.keep is None or column in self.keep:
                    if fast.group(3) is not None:
                        atom = int(fast.group(3), 16)
                        cells[column] = _AtomRef(atom)
                        self.needed.add(atom)
                    else:
                        cells[column] = _unescape(fast.group(2))
            elif byte == 0x28:  # '('
                parsed = self.cell()
                if parsed is not None:
                    column, content = parsed
                    if cut_next:
                        cells.pop(column, None)
                    elif self.keep is None or column in self.keep:
                        if content is None:
                            cells.pop(column, None)
                        else:
                            cells[column] = content
                            if isinstance(content, _AtomRef):
                                self.needed.add(content.id)
                cut_next = False
            elif byte == 0x5B:  # '[': row meta, not needed
                self.skip_to(0x5D)
        self.row_position()
        return key

    def row_position(self) -> None:
        if self.peek() == 0x21:  # '!': a row position, ignored
            self.pos += 1
            self.hex()

    def table(self) -> None:
        cut_all = False
        if self.peek() == 0x2D:
            cut_all = True
            self.pos += 1
        ident = self.mid("")
        if ident is None:
            self.skip_to(0x7D)
            return
        row_scope = ident[1]
        key = (row_scope, ident[0])
        table = self.tables.get(key)
        if table is None:
            table = self.tables[key] = MorkTable(row_scope, ident[0])
        elif cut_all:
            table.rows.clear()
        remove_next = False
        while True:
            byte = self.peek()
            if byte < 0:
                return
            if byte == 0x7D:  # '}'
                self.pos += 1
                return
            if byte == 0x7B:  # '{': table meta
                self.pos += 1
                self.table_meta(table)
            elif byte == 0x5B:  # '[': a row
                self.pos += 1
                added = self.row(row_scope)
                if added is not None:
                    if remove_next:
                        table.rows.pop(added, None)
                    else:
                        table.rows[added] = None
                remove_next = False
            elif byte == 0x2D:  # '-': the next row leaves the table
                self.pos += 1
                remove_next = True
            elif byte in _HEXDIGITS:  # a reference to a row defined elsewhere
                ident = self.mid(row_scope)
                self.row_position()
                if ident is not None:
                    ref = (ident[1], ident[0])
                    if remove_next:
                        table.rows.pop(ref, None)
                    else:
                        table.rows[ref] = None
                remove_next = False
            else:
                self.pos += 1

    def table_meta(self, table: MorkTable) -> None:
        while True:
            byte = self.peek()
            if byte < 0:
                return
            self.pos += 1
            if byte == 0x7D:
                return
            if byte == 0x28:
                parsed = self.cell()
                if parsed is not None and parsed[0] == "k":
                    content = parsed[1]
                    if isinstance(content, bytes):
                        table.kind = content.decode("utf-8", "replace")
            elif byte == 0x5B:  # a meta row: not a member
                self.row(table.scope)
            elif byte in _HEXDIGITS:  # a meta row reference such as 1:m
                self.pos -= 1
                self.mid(table.scope)

    # -- driver --------------------------------------------------------------------------
    def parse(self) -> MorkDocument:
        if b"<mdb:mork" not in self.data[:256]:
            raise MorkError("not a Mork file (no <mdb:mork header)")
        self.content(len(self.data))
        if self.keep is not None:
            self.collect_atoms = True
            for start in self.atom_dicts:
                self.pos = start
                self.dictionary()
        document = MorkDocument(tables=self.tables)
        for key, cells in self.raw_rows.items():
            resolved: dict[str, bytes] = {}
            for column, content in cells.items():
                if isinstance(content, _AtomRef):
                    text = self.atoms.get(content.id)
                    if text is None:
                        document.unresolved += 1
                        continue
                    resolved[column] = text
                else:
                    resolved[column] = content
            document.rows[key] = resolved
        return document


def parse_mork(data: bytes, columns: Collection[str] | None = None) -> MorkDocument:
    """Parse Mork ``data``; keep only cells of ``columns`` when given (saves memory).

    Parsing is forgiving, like Thunderbird's: bytes it does not understand are
    skipped. :class:`MorkError` only when the data is not Mork at all.
    """
    return _Parser(data, columns).parse()


def read_mork(path: Path, columns: Collection[str] | None = None) -> MorkDocument:
    """Parse the Mork file at ``path`` (opened read-only)."""
    with open(path, "rb") as stream:
        data = stream.read(MAX_MORK_SIZE + 1)
    if len(data) > MAX_MORK_SIZE:
        raise MorkError(f"{path} is larger than {MAX_MORK_SIZE} bytes")
    return parse_mork(data, columns)
