"""Turning a profile's [source] table into a reader."""

from __future__ import annotations

from urllib.parse import unquote

from advisor.errors import UsageError
from advisor.profile import POP3_URL, Profile, SourceKind
from advisor.secrets import resolve_secret
from advisor.stores import detect_kind, open_store
from advisor.stores.base import ReaderOptions, StoreReader
from advisor.stores.discover import discover_stores


def reader_for(profile: Profile, options: ReaderOptions | None = None) -> StoreReader:
    """The reader for the profile's source; finds the installed client's store when no path."""
    kind = profile.source.kind
    path = profile.source.path
    if kind is SourceKind.POP3:
        return _pop3_reader(profile, options or ReaderOptions())
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
        kind = detect_kind(path, 'with kind = "..." in the profile\'s [source] table')
    return open_store(kind, path, options)


def _pop3_reader(profile: Profile, options: ReaderOptions) -> StoreReader:
    """A live POP3 account; it signs in with the account's own secret."""
    from advisor.stores.pop3 import Pop3Reader

    match = POP3_URL.match(profile.source.url or "")
    if match is None:
        raise UsageError('[source] path: expected "pop3s://user@host" for a POP3 account')
    extra = {
        **options.extra,
        "host": match["host"],
        "username": unquote(match["user"]),
        "security": "tls" if match["scheme"] == "pop3s" else "starttls",
    }
    if match["port"]:
        extra["port"] = match["port"]
    server = profile.server
    if server is not None and server.ca_file is not None:
        extra["ca_file"] = str(server.ca_file)
    password = resolve_secret(profile.auth, profile.account.email)
    return Pop3Reader(None, ReaderOptions(options.ignore_lock, extra), password=password)
