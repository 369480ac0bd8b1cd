"""A minimal third-party provider plugin."""

from __future__ import annotations

from collections.abc import Sequence

from advisor import hookimpl
from advisor.plugins.types import Endpoint, Protocol, ProviderInfo, Security, ServerSettings

NAME = "example"


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    return [ProviderInfo(NAME, "Example Mail", domains=("example.net",))]


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    if provider != NAME:
        return None
    return ServerSettings(imap=Endpoint(Protocol.IMAP, "imap.example.net", 993, Security.TLS))
