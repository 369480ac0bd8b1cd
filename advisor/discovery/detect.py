"""Which provider serves an address, and its servers: what ``mailadvisor detect`` shows.

A provider plugin that claims the address (by its domain or its MX hosts) knows
the servers; when only the generic fallback does, settings discovery finds them.
"""

from __future__ import annotations

from dataclasses import dataclass

from advisor.discovery.engine import (
    Attempt,
    Found,
    Origin,
    Outcome,
    discover,
    lookup_mx,
    split_address,
)
from advisor.discovery.options import DiscoveryOptions, current_options
from advisor.errors import PluginError
from advisor.plugins.manager import PluginHost
from advisor.plugins.types import AddressMatch

FALLBACK_PROVIDER = "generic"
"""The built-in plugin whose servers are whatever discovery finds."""


@dataclass(frozen=True)
class ProviderChoice:
    """The provider for an address, and how it was chosen: the one resolver every command
    and the wizard use, so that a Google Workspace domain is Gmail everywhere."""

    email: str
    domain: str
    provider: str
    reason: str
    matches: tuple[AddressMatch, ...]
    mx_hosts: tuple[str, ...]
    mx_attempt: Attempt


def choose_provider(
    email: str,
    host: PluginHost,
    options: DiscoveryOptions | None = None,
    *,
    given: str = "auto",
) -> ProviderChoice:
    """``given`` when it names a provider; else the most confident plugin's claim, with
    the domain's MX hosts (when the network is on) so custom domains are recognised."""
    options = options or current_options()
    _, domain = split_address(email)
    if given != "auto":
        host.provider(given)  # a clear error naming the loaded providers
        skipped = Attempt(Origin.MX, domain, Outcome.SKIPPED, f"provider {given} given")
        return ProviderChoice(email, domain, given, f"the profile says {given}", (), (), skipped)
    mx_hosts, mx_attempt = lookup_mx(domain, options)
    matches = host.match_address(email, mx_hosts)
    if not matches:
        raise PluginError(
            f"no provider plugin handles {email}; reinstall mailadvisor to get the generic one"
        )
    best = matches[0]
    return ProviderChoice(
        email, domain, best.provider, best.reason, tuple(matches), tuple(mx_hosts), mx_attempt
    )


@dataclass(frozen=True)
class Detection:
    """The provider chosen for an address and the servers to use, each with its origin."""

    email: str
    domain: str
    network: bool
    provider: str
    provider_name: str
    reason: str
    """Why the provider was chosen (the winning plugin's words)."""
    matches: tuple[AddressMatch, ...]
    """Every plugin's claim, most confident first."""
    mx_hosts: tuple[str, ...]
    servers: tuple[Found, ...]
    """The chosen IMAP, POP3 and SMTP servers (those known)."""
    alternatives: tuple[Found, ...]
    """Other servers found but not chosen."""
    attempts: tuple[Attempt, ...]
    """Every lookup made, and what it gave."""

    @property
    def untrusted(self) -> tuple[Found, ...]:
        return tuple(f for f in self.servers if not f.trusted)

    @property
    def network_unreachable(self) -> bool:
        """Nothing found because nothing could be reached: not one lookup gave anything,
        and not even Thunderbird's ISPDB host (which always exists) resolved or answered."""
        if not self.network or self.servers:
            return False
        if any(a.outcome is Outcome.FOUND for a in self.attempts):
            return False
        ispdb = [a for a in self.attempts if a.origin is Origin.ISPDB]
        return bool(ispdb) and all(
            "does not resolve" in a.detail or "could not connect" in a.detail
            or a.outcome is Outcome.ERROR
            for a in ispdb
        )  # fmt: skip


def detect(email: str, host: PluginHost, options: DiscoveryOptions | None = None) -> Detection:
    """Choose the provider for ``email`` and find its servers."""
    options = options or current_options()
    choice = choose_provider(email, host, options)
    domain, mx_hosts, mx_attempt = choice.domain, list(choice.mx_hosts), choice.mx_attempt
    matches, best = choice.matches, choice.matches[0]
    name = host.provider(best.provider).display_name
    if best.provider == FALLBACK_PROVIDER:
        found = discover(email, options, mx=(mx_hosts, mx_attempt))
        servers = found.chosen
        alternatives = tuple(f for f in found.candidates if f not in servers)
        attempts = found.attempts
    else:
        settings = host.server_settings(best.provider, email)
        endpoints = (
            [e for e in (settings.imap, settings.pop3, settings.smtp) if e] if settings else []
        )
        note = f"the {best.provider} plugin knows {name}'s servers"
        if settings is not None and not settings.trusted:
            note = f"the {best.provider} plugin marks these servers as needing your confirmation"
        servers = tuple(
            Found(
                e,
                Origin.PLUGIN,
                settings.source if settings else "",
                bool(settings and settings.trusted),
                note,
            )
            for e in endpoints
        )
        alternatives = ()
        outcome = Outcome.FOUND if servers else Outcome.NONE
        detail = "gave the servers" if servers else "gave no servers"
        attempts = (mx_attempt, Attempt(Origin.PLUGIN, best.provider, outcome, detail))
    return Detection(
        email=email,
        domain=domain,
        network=options.network,
        provider=best.provider,
        provider_name=name,
        reason=best.reason,
        matches=tuple(matches),
        mx_hosts=tuple(mx_hosts),
        servers=servers,
        alternatives=alternatives,
        attempts=tuple(attempts),
    )
