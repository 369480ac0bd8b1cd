"""Settings discovery: from an email address to its IMAP, POP3 and SMTP servers.

Thunderbird's order (autoconfig, .well-known, ISPDB, MX, SRV, guessing), run in
parallel with timeouts; every result says where it came from and whether it can
be trusted (RFC 7817). See :mod:`advisor.discovery.engine` for the details and
:class:`DiscoveryOptions` for what can be pointed elsewhere.
"""

from __future__ import annotations

from advisor.discovery.autoconfig import AutoconfigError, ClientConfig, parse_client_config
from advisor.discovery.detect import (
    FALLBACK_PROVIDER,
    Detection,
    ProviderChoice,
    choose_provider,
    detect,
)
from advisor.discovery.engine import (
    Attempt,
    Discovery,
    Found,
    Origin,
    Outcome,
    choose,
    discover,
    lookup_mx,
    split_address,
    unchecked_guess,
)
from advisor.discovery.options import OFFLINE, DiscoveryOptions, current_options, use_options

__all__ = [
    "FALLBACK_PROVIDER",
    "OFFLINE",
    "Attempt",
    "AutoconfigError",
    "ClientConfig",
    "Detection",
    "Discovery",
    "DiscoveryOptions",
    "Found",
    "Origin",
    "Outcome",
    "ProviderChoice",
    "choose",
    "choose_provider",
    "current_options",
    "detect",
    "discover",
    "lookup_mx",
    "parse_client_config",
    "split_address",
    "unchecked_guess",
    "use_options",
]
