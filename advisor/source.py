"""Turning a profile's [source] table into a reader."""

from __future__ import annotations

from advisor.errors import UsageError
from advisor.profile import Profile, SourceKind
from advisor.stores import detect_kind, open_store
from advisor.stores.base import ReaderOptions, StoreReader
from advisor.stores.discover import discover_stores


def reader_for(profile: Profile, options: ReaderOptions | None = None) -> StoreReader:
    """The reader for the profile's source; finds the installed client's store when no path."""
    kind = profile.source.kind
    path = profile.source.path
    if kind is SourceKind.POP3:
        raise UsageError(
            "reading a live POP3 account is done with `mailadvisor scan`; "
            "migrating from it is not supported yet"
        )
    if path is None:
        found = [s for s in discover_stores().stores if kind in (SourceKind.AUTO, s.kind)]
        if not found:
            raise UsageError(
                "no mail store of an installed mail program was found on this "
                "machine; set [source] path in the profile"
            )
        if len(found) > 1:
            listing = "; ".join(f"{s.client}: {s.path}" for s in found)
            raise UsageError(
                f"several mail stores were found ({listing}); "
                "choose one with [source] path in the profile"
            )
        kind, path = found[0].kind, found[0].path
    if kind is SourceKind.AUTO:
        kind = detect_kind(path)
    return open_store(kind, path, options)
