"""Where discovery looks, and how: every URL and the DNS server can be replaced.

The defaults are Thunderbird's. Tests (and anyone behind an unusual network)
point them elsewhere; :func:`use_options` sets them for code that cannot take
them as an argument, such as the generic plugin's ``mailadvisor_server_settings``
hook, whose signature is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from advisor.plugins.types import DEFAULT_PORTS, Protocol, Security

AUTOCONFIG_URL = "https://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}"
WELL_KNOWN_URL = "https://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"
AUTOCONFIG_HTTP_URL = "http://autoconfig.{domain}/mail/config-v1.1.xml?emailaddress={email}"
WELL_KNOWN_HTTP_URL = "http://{domain}/.well-known/autoconfig/mail/config-v1.1.xml"
ISPDB_URL = "https://autoconfig.thunderbird.net/v1.1/{domain}"


@dataclass(frozen=True)
class DiscoveryOptions:
    """How :func:`advisor.discovery.discover` finds settings.

    URL templates take ``{domain}`` and ``{email}`` (URL-encoded).
    """

    network: bool = True
    """False: look nothing up; discovery then offers only an unchecked guess."""
    allow_http: bool = False
    """Also try autoconfig over plain HTTP (results are untrusted unless in the user's domain)."""
    timeout: float = 8.0
    """Seconds for each HTTP request and each DNS lookup."""
    probe_timeout: float = 5.0
    """Seconds for each connection attempt while guessing host names."""
    autoconfig_url: str = AUTOCONFIG_URL
    well_known_url: str = WELL_KNOWN_URL
    autoconfig_http_url: str = AUTOCONFIG_HTTP_URL
    well_known_http_url: str = WELL_KNOWN_HTTP_URL
    ispdb_url: str = ISPDB_URL
    dns_servers: tuple[str, ...] = ()
    """Name servers (IP addresses) to ask instead of the system's. When set, host names
    for HTTP and probes are resolved through them too."""
    dns_port: int = 53
    ca_file: Path | None = None
    """A CA bundle to trust instead of the system's, for HTTPS and probes."""
    probe_ports: Mapping[tuple[Protocol, Security], int] = field(
        default_factory=lambda: dict(DEFAULT_PORTS)
    )
    """Ports tried when guessing, per protocol and security."""
    confirmed_hosts: frozenset[str] = frozenset()
    """Hosts the user has confirmed as their provider's: trusted wherever they were learnt."""
    max_workers: int = 16
    """Lookups and probes run in parallel on this many threads."""


OFFLINE = DiscoveryOptions(network=False)

_current: ContextVar[DiscoveryOptions | None] = ContextVar("mailadvisor_discovery", default=None)


def current_options() -> DiscoveryOptions:
    """The options set by the innermost :func:`use_options`, else the defaults."""
    return _current.get() or DiscoveryOptions()


@contextmanager
def use_options(options: DiscoveryOptions) -> Iterator[DiscoveryOptions]:
    """Make ``options`` the ones :func:`current_options` returns, within the block."""
    token = _current.set(options)
    try:
        yield options
    finally:
        _current.reset(token)
