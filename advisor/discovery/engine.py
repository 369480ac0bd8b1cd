"""Finding an address's IMAP, POP3 and SMTP servers the way Thunderbird does.

Sources, best first: the domain's own autoconfig server and its ``.well-known``
URL (HTTPS), Thunderbird's ISPDB, the ISPDB and autoconfig of the domain that
handles the address's mail (MX), RFC 6186/8314 SRV records, and finally guessing
``imap.``, ``mail.``, ``pop3.``, ``pop.``, ``smtp.`` and the bare domain, each
probed over verified TLS. The lookups run in parallel, each with a timeout; the
guesses only when nothing else named an incoming server.

Every answer says where it came from. A host outside the user's domain that was
learnt from MX, SRV, plain HTTP or a redirect to another domain is untrusted
until the user confirms it (RFC 7817): anyone who can spoof DNS could otherwise
send the user's password to a server of their choice.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from advisor.connection.probe import ProbeError, ProbeStage, probe
from advisor.discovery.autoconfig import AutoconfigError, parse_client_config
from advisor.discovery.dnslookup import DnsError, DnsLookup
from advisor.discovery.domains import base_domain, in_domain, normalise_host, valid_host
from advisor.discovery.options import DiscoveryOptions, current_options
from advisor.errors import UsageError
from advisor.plugins.types import DEFAULT_PORTS, Endpoint, Protocol, Security, ServerSettings

if TYPE_CHECKING:
    # httpx costs a quarter of a second to import: only discovery itself pays for it.
    from advisor.discovery.web import WebClient


class Origin(StrEnum):
    """Where a setting came from, best source first."""

    PLUGIN = "plugin"
    AUTOCONFIG = "autoconfig"
    WELL_KNOWN = "well-known"
    ISPDB = "ispdb"
    MX = "mx"
    SRV = "srv"
    GUESS = "guess"


ORIGIN_ORDER = tuple(Origin)

ORIGIN_LABELS = {
    Origin.PLUGIN: "a provider plugin",
    Origin.AUTOCONFIG: "the domain's autoconfig server",
    Origin.WELL_KNOWN: "the domain's .well-known autoconfig URL",
    Origin.ISPDB: "Thunderbird's ISPDB",
    Origin.MX: "the provider that receives the domain's mail (MX)",
    Origin.SRV: "DNS SRV records",
    Origin.GUESS: "guessing common host names",
}


class Outcome(StrEnum):
    """What one lookup gave."""

    FOUND = "found"
    NONE = "none"
    """Nothing there (HTTP 404, no such DNS name, nothing listening)."""
    ERROR = "error"
    """The lookup itself failed (timeout, untrusted certificate, unusable document)."""
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Found:
    """One server a source named."""

    endpoint: Endpoint
    origin: Origin
    via: str
    """The URL or DNS name it came from."""
    trusted: bool
    note: str
    """Why it is trusted or not, in plain words."""
    authentication: tuple[str, ...] = ()
    """Sign-in methods the source names (autoconfig's ``authentication``)."""


@dataclass(frozen=True)
class Attempt:
    """One lookup and what it gave."""

    origin: Origin
    via: str
    outcome: Outcome
    detail: str
    seconds: float = 0.0


@dataclass(frozen=True)
class Discovery:
    """Everything discovery found for an address, and the servers it chose."""

    email: str
    domain: str
    network: bool
    mx_hosts: tuple[str, ...]
    imap: Found | None
    pop3: Found | None
    smtp: Found | None
    candidates: tuple[Found, ...]
    """Every server found, in the order of the sources."""
    attempts: tuple[Attempt, ...]

    @property
    def chosen(self) -> tuple[Found, ...]:
        return tuple(f for f in (self.imap, self.pop3, self.smtp) if f is not None)

    def settings(self) -> ServerSettings | None:
        """The chosen servers as the plugin hooks pass them; None when none was found."""
        chosen = self.chosen
        if not chosen:
            return None
        origins = list(dict.fromkeys(f.origin for f in chosen))
        if len(origins) == 1:
            first = chosen[0]
            source = f"{first.origin.value} ({first.via})"
        else:
            source = "; ".join(f"{f.endpoint.protocol.value} from {f.origin.value}" for f in chosen)
        return ServerSettings(
            imap=self.imap.endpoint if self.imap else None,
            pop3=self.pop3.endpoint if self.pop3 else None,
            smtp=self.smtp.endpoint if self.smtp else None,
            source=source,
            trusted=all(f.trusted for f in chosen),
        )


SRV_SERVICES: tuple[tuple[str, Protocol, Security], ...] = (
    ("_imaps._tcp", Protocol.IMAP, Security.TLS),
    ("_imap._tcp", Protocol.IMAP, Security.STARTTLS),
    ("_pop3s._tcp", Protocol.POP3, Security.TLS),
    ("_pop3._tcp", Protocol.POP3, Security.STARTTLS),
    ("_submissions._tcp", Protocol.SMTP, Security.TLS),
    ("_submission._tcp", Protocol.SMTP, Security.STARTTLS),
)
"""RFC 6186 / 8314 services. The non-"s" ones mean STARTTLS to us: never plaintext."""

GUESS_PREFIXES: dict[Protocol, tuple[str, ...]] = {
    Protocol.IMAP: ("imap.", "mail.", ""),
    Protocol.POP3: ("pop3.", "pop.", "mail.", ""),
    Protocol.SMTP: ("smtp.", "mail.", ""),
}
_UNCHECKED_GUESS = {Protocol.IMAP: "imap.", Protocol.POP3: "pop.", Protocol.SMTP: "smtp."}

_Part = tuple[list[Found], list[Attempt]]


def split_address(email: str) -> tuple[str, str]:
    """The local part and the normalised domain; :class:`UsageError` if it is no address."""
    local, at, domain = email.strip().rpartition("@")
    domain = normalise_host(domain)
    if not at or not local or not domain or not valid_host(domain):
        raise UsageError(f"{email!r} is not an email address (expected name@domain.example)")
    return local, domain


def unchecked_guess(email: str, note: str) -> list[Found]:
    """The usual host names on their implicit-TLS ports, not looked up: the last resort."""
    _, domain = split_address(email)
    found = []
    for protocol, prefix in _UNCHECKED_GUESS.items():
        endpoint = Endpoint(protocol, prefix + domain, DEFAULT_PORTS[(protocol, Security.TLS)])
        found.append(Found(endpoint, Origin.GUESS, endpoint.host, True, note))
    return found


def _timed(origin: Origin, via: str, fn: Callable[[], _Part]) -> _Part:
    """Run one lookup; any failure becomes an ERROR attempt, never an exception."""
    start = time.monotonic()
    try:
        found, attempts = fn()
    except Exception as exc:  # a lookup must never break discovery as a whole
        found, attempts = [], [Attempt(origin, via, Outcome.ERROR, f"{type(exc).__name__}: {exc}")]
    elapsed = round(time.monotonic() - start, 3)
    return found, [
        Attempt(a.origin, a.via, a.outcome, a.detail, a.seconds or elapsed) for a in attempts
    ]


class _Run:
    """One discovery: the address, the options and the shared clients."""

    def __init__(
        self, email: str, domain: str, options: DiscoveryOptions, lookup: DnsLookup, web: WebClient
    ) -> None:
        self.email = email
        self.domain = domain
        self.options = options
        self.lookup = lookup
        self.web = web

    def url(self, template: str, domain: str) -> str:
        return template.replace("{domain}", quote(domain, safe="")).replace(
            "{email}", quote(self.email, safe="")
        )

    def trust(self, host: str, authority: bool, how: str) -> tuple[bool, str]:
        """Whether ``host`` may be used without asking, and why (RFC 7817)."""
        if normalise_host(host) in self.options.confirmed_hosts:
            return True, "you confirmed this host"
        if in_domain(host, self.domain):
            return True, f"{host} is in your domain {self.domain}"
        if authority:
            return True, how
        return False, (
            f"{host} is outside {self.domain} and was learnt from {how}; "
            "confirm it is your provider's server before using it (RFC 7817)"
        )

    # --- autoconfig documents -------------------------------------------------

    def config(
        self, origin: Origin, urls: Sequence[str], authority_domain: str | None, how: str
    ) -> _Part:
        """Fetch the first of ``urls`` that answers and read its servers.

        ``authority_domain``: the domain whose HTTPS answer is authoritative (the user's
        own for autoconfig, the ISPDB's); None when nothing but in-domain hosts is trusted.
        """
        from advisor.discovery.web import FetchError

        attempts: list[Attempt] = []
        for url in urls:
            start = time.monotonic()
            try:
                fetched = self.web.get(url, allow_http=self.options.allow_http)
                config = parse_client_config(fetched.body, self.email)
            except FetchError as exc:
                outcome = Outcome.NONE if exc.absent else Outcome.ERROR
                attempts.append(Attempt(origin, url, outcome, str(exc), _since(start)))
                continue
            except AutoconfigError as exc:
                attempts.append(
                    Attempt(origin, url, Outcome.ERROR, f"unusable: {exc}", _since(start))
                )
                continue
            chain = fetched.chain
            via = chain[0] if len(chain) == 1 else f"{chain[0]} -> {chain[-1]}"
            secure = all(u.startswith("https://") for u in chain)
            authoritative = (
                authority_domain is not None
                and secure
                and all(in_domain(h, authority_domain) for h in fetched.hosts)
            )
            if not secure:
                how_here = f"{how} over plain HTTP"
            elif authority_domain and not authoritative:
                how_here = f"{how} after a redirect to {fetched.hosts[-1]}"
            else:
                how_here = how
            found = []
            for server in config.servers:
                trusted, note = self.trust(server.endpoint.host, authoritative, how_here)
                found.append(
                    Found(server.endpoint, origin, via, trusted, note, server.authentication)
                )
            summary = ", ".join(
                dict.fromkeys(s.endpoint.protocol.value.upper() for s in config.servers)
            )
            attempts.append(
                Attempt(origin, via, Outcome.FOUND, f"names {summary} servers", _since(start))
            )
            return found, attempts
        return [], attempts

    def autoconfig(self) -> _Part:
        urls = [self.url(self.options.autoconfig_url, self.domain)]
        if self.options.allow_http:
            urls.append(self.url(self.options.autoconfig_http_url, self.domain))
        how = f"{self.domain}'s own autoconfig server over HTTPS"
        return self.config(Origin.AUTOCONFIG, urls, self.domain, how)

    def well_known(self) -> _Part:
        urls = [self.url(self.options.well_known_url, self.domain)]
        if self.options.allow_http:
            urls.append(self.url(self.options.well_known_http_url, self.domain))
        how = f"{self.domain}'s own .well-known autoconfig URL over HTTPS"
        return self.config(Origin.WELL_KNOWN, urls, self.domain, how)

    def ispdb(self, domain: str, origin: Origin = Origin.ISPDB, mx_host: str = "") -> _Part:
        url = self.url(self.options.ispdb_url, domain)
        if origin is Origin.MX:
            how = f"the ISPDB entry of {domain}, the domain of the MX host {mx_host}"
            return self.config(origin, [url], None, how)
        ispdb_host = normalise_host(urlsplit(url).hostname or "")
        return self.config(
            origin, [url], base_domain(ispdb_host) or ispdb_host, "Thunderbird's ISPDB"
        )

    def mx_autoconfig(self, domain: str, mx_host: str) -> _Part:
        url = self.url(self.options.autoconfig_url, domain)
        how = f"the autoconfig server of {domain}, the domain of the MX host {mx_host}"
        return self.config(Origin.MX, [url], None, how)

    # --- DNS ----------------------------------------------------------------------

    def srv(self, service: str, protocol: Protocol, security: Security) -> _Part:
        name = f"{service}.{self.domain}"
        try:
            records = self.lookup.srv(name)
        except DnsError as exc:
            return [], [Attempt(Origin.SRV, name, Outcome.ERROR, str(exc))]
        if not records:
            return [], [Attempt(Origin.SRV, name, Outcome.NONE, "no SRV record")]
        usable = [r for r in records if r.target and r.port]
        if not usable:
            # RFC 6186 section 3.4: target "." means the service is deliberately not offered.
            return [], [
                Attempt(Origin.SRV, name, Outcome.NONE, 'the domain says it is not offered (".")')
            ]
        found = []
        for record in usable:
            if not valid_host(record.target):
                continue
            trusted, note = self.trust(record.target, False, f"the SRV record {name}")
            endpoint = Endpoint(protocol, record.target, record.port, security)
            found.append(Found(endpoint, Origin.SRV, name, trusted, note))
        targets = ", ".join(f"{f.endpoint.host}:{f.endpoint.port}" for f in found)
        return found, [Attempt(Origin.SRV, name, Outcome.FOUND, targets or "no valid target")]

    # --- guessing -------------------------------------------------------------------

    def guess(self, pool: ThreadPoolExecutor) -> _Part:
        """Probe the usual host names over verified TLS; the servers that answered."""
        hosts = list(
            dict.fromkeys(p + self.domain for prefixes in GUESS_PREFIXES.values() for p in prefixes)
        )
        resolving = {h: pool.submit(self._addresses, h) for h in hosts}
        addresses: dict[str, list[str]] = {}
        attempts: list[Attempt] = []
        for host, future in resolving.items():
            result, error = future.result()
            addresses[host] = result
            if error:
                attempts.append(Attempt(Origin.GUESS, host, Outcome.ERROR, error))
            elif not result:
                attempts.append(Attempt(Origin.GUESS, host, Outcome.NONE, "does not resolve"))
        from advisor.discovery.web import tls_context

        context = tls_context(str(self.options.ca_file) if self.options.ca_file else None)
        probes: list[tuple[Endpoint, Future[_Part]]] = []
        for protocol, prefixes in GUESS_PREFIXES.items():
            for prefix in prefixes:
                host = prefix + self.domain
                if not addresses[host]:
                    continue
                for security in (Security.TLS, Security.STARTTLS):
                    port = self.options.probe_ports[(protocol, security)]
                    endpoint = Endpoint(protocol, host, port, security)
                    address = addresses[host][0] if self.lookup.custom else None
                    probes.append((endpoint, pool.submit(self._probe, endpoint, context, address)))
        found: list[Found] = []
        for _endpoint, probing in probes:
            part_found, part_attempts = probing.result()
            found.extend(part_found)
            attempts.extend(part_attempts)
        return found, attempts

    def _addresses(self, host: str) -> tuple[list[str], str]:
        try:
            return self.lookup.addresses(host), ""
        except DnsError as exc:
            return [], str(exc)

    def _probe(self, endpoint: Endpoint, context: ssl.SSLContext, address: str | None) -> _Part:
        via = (
            f"{endpoint.protocol.value} {endpoint.host}:{endpoint.port} ({endpoint.security.value})"
        )
        start = time.monotonic()
        try:
            result = probe(
                endpoint.protocol,
                endpoint.host,
                endpoint.port,
                endpoint.security,
                context,
                self.options.probe_timeout,
                address=address,
            )
        except ProbeError as exc:
            outcome = Outcome.NONE if exc.stage is ProbeStage.TCP else Outcome.ERROR
            return [], [Attempt(Origin.GUESS, via, outcome, str(exc), _since(start))]
        tls = result.tls
        detail = f"answered over {tls.version}" if tls else "answered"
        trusted, note = self.trust(endpoint.host, False, "guessing")
        note = f"{note}; a server answered there with a valid certificate"
        return [Found(endpoint, Origin.GUESS, via, trusted, note)], [
            Attempt(Origin.GUESS, via, Outcome.FOUND, detail, _since(start))
        ]


def _since(start: float) -> float:
    return round(time.monotonic() - start, 3)


def lookup_mx(domain: str, options: DiscoveryOptions | None = None) -> tuple[list[str], Attempt]:
    """The domain's MX hosts (best first) and the attempt, for the report."""
    options = options or current_options()
    if not options.network:
        return [], Attempt(Origin.MX, domain, Outcome.SKIPPED, "network lookups are off")
    start = time.monotonic()
    try:
        hosts = DnsLookup(options).mx(domain)
    except DnsError as exc:
        return [], Attempt(Origin.MX, domain, Outcome.ERROR, f"MX lookup: {exc}", _since(start))
    if not hosts:
        return [], Attempt(Origin.MX, domain, Outcome.NONE, "no MX record", _since(start))
    return hosts, Attempt(Origin.MX, domain, Outcome.FOUND, "MX " + ", ".join(hosts), _since(start))


def choose(candidates: Sequence[Found], protocol: Protocol) -> Found | None:
    """The best server for ``protocol``: trusted first, then the better source, then TLS.

    Plaintext servers are never chosen: they need the user's explicit ``allow_insecure``.
    """
    usable = [
        (i, f)
        for i, f in enumerate(candidates)
        if f.endpoint.protocol is protocol and f.endpoint.security is not Security.NONE
    ]
    if not usable:
        return None
    _, best = min(
        usable,
        key=lambda item: (
            not item[1].trusted,
            ORIGIN_ORDER.index(item[1].origin),
            item[1].endpoint.security is not Security.TLS,
            item[0],
        ),
    )
    return best


def discover(
    email: str,
    options: DiscoveryOptions | None = None,
    *,
    mx: tuple[Sequence[str], Attempt] | None = None,
) -> Discovery:
    """Find the servers for ``email``. Never raises for network trouble: see ``attempts``.

    ``options`` default to :func:`current_options`. ``mx``: an MX lookup already done
    (by :func:`lookup_mx`), so it is not repeated.
    """
    options = options or current_options()
    _, domain = split_address(email)
    if not options.network:
        guess = unchecked_guess(email, "not checked: network lookups are off")
        skipped = Attempt(Origin.GUESS, domain, Outcome.SKIPPED, "network lookups are off")
        return Discovery(email, domain, False, (), *_pick(guess), tuple(guess), (skipped,))

    from advisor.discovery.web import WebClient

    lookup = DnsLookup(options)
    found: list[Found] = []
    attempts: list[Attempt] = []
    with WebClient(options, lookup) as web, ThreadPoolExecutor(options.max_workers) as pool:
        run = _Run(email, domain, options, lookup, web)

        def submit(origin: Origin, via: str, fn: Callable[[], _Part]) -> Future[_Part]:
            return pool.submit(_timed, origin, via, fn)

        futures: list[Future[_Part]] = [
            submit(Origin.AUTOCONFIG, domain, run.autoconfig),
            submit(Origin.WELL_KNOWN, domain, run.well_known),
            submit(Origin.ISPDB, domain, lambda: run.ispdb(domain)),
        ]
        futures += [
            submit(Origin.SRV, f"{svc}.{domain}", partial(run.srv, svc, proto, security))
            for svc, proto, security in SRV_SERVICES
        ]
        mx_hosts, mx_attempt = mx if mx is not None else lookup_mx(domain, options)
        attempts.append(mx_attempt)
        if mx_hosts:
            mx_host = mx_hosts[0]
            mx_domain = base_domain(mx_host)
            if mx_domain is None or in_domain(mx_domain, domain):
                attempts.append(
                    Attempt(
                        Origin.MX,
                        mx_host,
                        Outcome.SKIPPED,
                        "the mail is received in your own domain: nothing more to learn",
                    )
                )
            else:
                futures += [
                    submit(Origin.MX, mx_domain, partial(run.ispdb, mx_domain, Origin.MX, mx_host)),
                    submit(Origin.MX, mx_domain, partial(run.mx_autoconfig, mx_domain, mx_host)),
                ]
        # Collect in submission order: the order of the sources, best first.
        parts = [f.result() for f in futures]
        for part_found, part_attempts in sorted(parts, key=lambda p: _part_rank(p)):
            found.extend(part_found)
            attempts.extend(part_attempts)
        if choose(found, Protocol.IMAP) is None and choose(found, Protocol.POP3) is None:
            guess_found, guess_attempts = _timed(Origin.GUESS, domain, lambda: run.guess(pool))
            found.extend(guess_found)
            attempts.extend(guess_attempts)
    return Discovery(
        email, domain, True, tuple(mx_hosts), *_pick(found), tuple(found), tuple(attempts)
    )


def _part_rank(part: _Part) -> int:
    """Sort key keeping the source order stable (parts carry their origin in their attempts)."""
    found, attempts = part
    origin = found[0].origin if found else (attempts[0].origin if attempts else Origin.GUESS)
    return ORIGIN_ORDER.index(origin)


def _pick(found: Sequence[Found]) -> tuple[Found | None, Found | None, Found | None]:
    return (
        choose(found, Protocol.IMAP),
        choose(found, Protocol.POP3),
        choose(found, Protocol.SMTP),
    )
