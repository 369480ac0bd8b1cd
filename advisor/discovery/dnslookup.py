"""DNS lookups for discovery (MX, SRV, addresses) through dnspython.

The system's resolver configuration is used unless the options name servers
(tests point them at a DNS server on loopback).
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

import dns.exception
import dns.name
import dns.resolver
import dns.rrset

from advisor.discovery.domains import normalise_host
from advisor.discovery.options import DiscoveryOptions


class DnsError(Exception):
    """The lookup could not be done (no answer in time, no usable server)."""


@dataclass(frozen=True)
class SrvRecord:
    """One SRV answer (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str
    """The host, without the trailing dot; "" when the record says "." (service not offered)."""


class DnsLookup:
    """The lookups discovery needs, with the options' servers and timeout."""

    def __init__(self, options: DiscoveryOptions) -> None:
        self.custom = bool(options.dns_servers)
        try:
            resolver = dns.resolver.Resolver(configure=not self.custom)
        except dns.resolver.NoResolverConfiguration:
            resolver = dns.resolver.Resolver(configure=False)
            resolver.nameservers = []
        if self.custom:
            resolver.nameservers = list(options.dns_servers)
            resolver.port = options.dns_port
        resolver.lifetime = options.timeout
        resolver.timeout = min(options.timeout, 3.0)
        self._resolver = resolver

    def _query(self, name: str, rdtype: str) -> dns.rrset.RRset | None:
        """The answer, or None when the name or the record type does not exist."""
        if not self._resolver.nameservers:
            raise DnsError("no DNS server is configured on this computer")
        try:
            answer = self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            return None
        except dns.resolver.LifetimeTimeout:
            raise DnsError(
                f"the DNS server did not answer in {self._resolver.lifetime:g} s"
            ) from None
        except dns.resolver.NoNameservers:
            raise DnsError("no DNS server could answer (SERVFAIL or refused)") from None
        except dns.exception.DNSException as exc:
            raise DnsError(f"the lookup failed ({exc})") from None
        return answer.rrset

    def mx(self, domain: str) -> list[str]:
        """Mail exchangers of ``domain``, most preferred first; [] for none or a null MX."""
        rrset = self._query(domain, "MX")
        if rrset is None:
            return []
        records = sorted(rrset, key=lambda r: r.preference)
        hosts = [normalise_host(r.exchange.to_text()) for r in records]
        # RFC 7505: "MX 0 ." says the domain accepts no mail at all.
        return [h for h in hosts if h]

    def srv(self, name: str) -> list[SrvRecord]:
        """SRV records of ``name`` in the order to try them (priority, then heavier first)."""
        rrset = self._query(name, "SRV")
        if rrset is None:
            return []
        records = [
            SrvRecord(
                r.priority,
                r.weight,
                r.port,
                normalise_host(r.target.to_text()),
            )
            for r in rrset
        ]
        return sorted(records, key=lambda r: (r.priority, -r.weight))

    def addresses(self, host: str) -> list[str]:
        """IP addresses of ``host``: through the custom servers, else the system's resolver."""
        if not self.custom:
            try:
                infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
            except socket.gaierror:
                return []
            return list(dict.fromkeys(str(info[4][0]) for info in infos))
        found: list[str] = []
        for rdtype in ("A", "AAAA"):
            rrset = self._query(host, rdtype)
            if rrset is not None:
                found.extend(r.to_text() for r in rrset)
        return found
