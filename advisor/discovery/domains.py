"""Host names: normalising, validating, and telling whose domain a host is in."""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from publicsuffixlist import PublicSuffixList

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}\Z)(?:{_LABEL}\.)*{_LABEL}\Z")


def normalise_host(name: str) -> str:
    """Lower case, no trailing dot, international names in their ASCII (IDNA) form."""
    name = name.strip().rstrip(".").lower()
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def valid_host(name: str) -> bool:
    """A syntactically valid host name or IP address (what a config may name)."""
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return bool(_HOSTNAME.match(name))


def in_domain(host: str, domain: str) -> bool:
    """True when ``host`` is ``domain`` or below it."""
    host, domain = normalise_host(host), normalise_host(domain)
    return host == domain or host.endswith("." + domain)


@lru_cache(maxsize=1)
def _psl() -> PublicSuffixList:
    return PublicSuffixList()


def base_domain(host: str) -> str | None:
    """The registrable domain of ``host`` (mx1.mail.example.co.uk -> example.co.uk).

    Uses the Public Suffix List, so "co.uk" is never taken for a provider's domain.
    None for a public suffix itself or a single label.
    """
    host = normalise_host(host)
    result: str | None = _psl().privatesuffix(host)
    return result
