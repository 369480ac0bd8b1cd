"""Checks every store reader must pass, shared by the tests/test_store_*.py files.

* :func:`tree_state` / :func:`assert_untouched`: a source tree's bytes, sizes, modes and
  mtimes (and the set of its entries) before and after reading.
* :func:`read_twice`: reads a store twice and checks the invariants of the interface:
  every message once (unique ids), the same messages with the same identity on both
  reads, folders as tuples of names, messages only in listed folders.
* :func:`unprivileged`: run a block with the effective uid of "nobody" when the tests run
  as root, so permission errors are real (root reads everything).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from advisor.stores.base import SourceMessage, StoreReader

NOBODY = 65534


def tree_state(root: Path) -> dict[str, tuple[object, ...]]:
    """Every entry below ``root`` (itself included): mode, size, mtime, content hash."""
    state: dict[str, tuple[object, ...]] = {}
    paths = [root] if root.is_file() else [root, *sorted(root.rglob("*"))]
    for path in paths:
        st = path.lstat()
        digest = ""
        if path.is_file() and not path.is_symlink():
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
        state[str(path)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    if root.is_file():  # a lone file: its directory must not gain files either
        state["entries of parent"] = tuple(sorted(os.listdir(root.parent)))
    return state


def assert_untouched(root: Path, before: dict[str, tuple[object, ...]]) -> None:
    after = tree_state(root)
    assert after.keys() == before.keys(), "entries were created or removed"
    changed = [path for path in before if before[path] != after[path]]
    assert not changed, f"changed by reading: {changed}"


def snapshot(message: SourceMessage) -> tuple[object, ...]:
    return (
        message.source_id,
        message.folder,
        message.data,
        message.flags,
        message.received,
        message.deleted,
        message.partial,
        message.problems,
    )


def read_twice(make: Callable[[], StoreReader]) -> list[SourceMessage]:
    """Read the store twice; check the interface's invariants; return the first read."""
    reader = make()
    folders = [f.path for f in reader.folders()]
    first = list(reader.messages())
    second = list(make().messages())
    assert [snapshot(m) for m in first] == [snapshot(m) for m in second]
    ids = [m.source_id for m in first]
    assert len(ids) == len(set(ids)), "a source id was given twice"
    assert len(folders) == len(set(folders)), "a folder was listed twice"
    for message in first:
        assert isinstance(message.folder, tuple) and message.folder
        assert all(isinstance(name, str) and name for name in message.folder)
        assert message.folder in folders, f"{message.folder} not among {folders}"
        assert isinstance(message.data, bytes)
    return first


@contextmanager
def unprivileged() -> Iterator[None]:
    """Effective uid/gid "nobody" inside the block when running as root."""
    if os.geteuid() != 0:
        yield
        return
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)
