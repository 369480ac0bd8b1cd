"""The mail providers POP3 users are on, from one data file (providers.toml).

Each table of providers.toml is one provider: its domains, servers (an empty ``pop3``
means the provider has none, which rules POP3 out of the advice), how to sign in, the
switch to turn on first, and its limits. Adding a provider is adding a table; the code
below only turns the tables into hook answers.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from advisor import hookimpl
from advisor.plugins.types import (
    AddressMatch,
    AdviceFactor,
    AuthMechanism,
    AuthMethod,
    Direction,
    Endpoint,
    PreflightFinding,
    Protocol,
    ProviderInfo,
    ProviderLimits,
    Security,
    ServerSettings,
    Severity,
    match_domains,
)

MB = 1024 * 1024
_AUTH = {
    "password": AuthMechanism.PASSWORD,
    "app-password": AuthMechanism.APP_PASSWORD,
    "bridge": AuthMechanism.PASSWORD,
}


@dataclass(frozen=True)
class KnownProvider:
    """One table of providers.toml."""

    key: str
    name: str
    domains: tuple[str, ...]
    mx: tuple[str, ...]
    imap: Endpoint | None
    pop3: Endpoint | None
    smtp: Endpoint | None
    username: str
    auth: str
    auth_note: str
    toggle: str
    note: str
    limits: ProviderLimits


def _endpoint(protocol: Protocol, spec: str) -> Endpoint | None:
    if not spec:
        return None
    scheme, _, rest = spec.partition("://")
    host, _, port = rest.rpartition(":")
    return Endpoint(protocol, host, int(port), Security(scheme))


def _provider(key: str, t: dict[str, Any]) -> KnownProvider:
    def mb(field: str) -> int | None:
        return int(t[field] * MB) if field in t else None

    return KnownProvider(
        key=key,
        name=t["name"],
        domains=tuple(t["domains"]),
        mx=tuple(t.get("mx", ())),
        imap=_endpoint(Protocol.IMAP, t.get("imap", "")),
        pop3=_endpoint(Protocol.POP3, t.get("pop3", "")),
        smtp=_endpoint(Protocol.SMTP, t.get("smtp", "")),
        username=t.get("username", "email"),
        auth=t.get("auth", "password"),
        auth_note=t.get("auth_note", ""),
        toggle=t.get("toggle", ""),
        note=t.get("note", ""),
        limits=ProviderLimits(
            max_message_bytes=mb("max_message_mb"),
            max_connections=t.get("max_connections"),
            messages_per_folder=t.get("messages_per_folder"),
            mailbox_bytes=int(t["mailbox_gb"] * 1024**3) if "mailbox_gb" in t else None,
        ),
    )


@cache
def known() -> dict[str, KnownProvider]:
    """Every provider of the data file, by name."""
    text = resources.files(__name__).joinpath("providers.toml").read_text(encoding="utf-8")
    return {key: _provider(key, table) for key, table in tomllib.loads(text).items()}


def _get(provider: str) -> KnownProvider | None:
    return known().get(provider)


def _user(p: KnownProvider, email: str, e: Endpoint | None) -> Endpoint | None:
    if e is None:
        return None
    login = email.partition("@")[0] if p.username == "localpart" else email
    return Endpoint(e.protocol, e.host, e.port, e.security, login)


@hookimpl
def mailadvisor_providers() -> Sequence[ProviderInfo]:
    return [ProviderInfo(p.key, p.name, p.domains) for p in known().values()]


@hookimpl
def mailadvisor_match_address(
    email: str, domain: str, mx_hosts: Sequence[str]
) -> AddressMatch | None:
    for p in known().values():
        match = match_domains(p.key, p.name, domain, mx_hosts, p.domains, p.mx)
        if match is not None:
            return match
    return None


@hookimpl
def mailadvisor_server_settings(provider: str, email: str) -> ServerSettings | None:
    p = _get(provider)
    if p is None:
        return None
    return ServerSettings(
        imap=_user(p, email, p.imap),
        pop3=_user(p, email, p.pop3),
        smtp=_user(p, email, p.smtp),
        source=f"mailadvisor's provider data ({p.name})",
    )


@hookimpl
def mailadvisor_auth_methods(provider: str, email: str) -> Sequence[AuthMethod] | None:
    p = _get(provider)
    if p is None:
        return None
    return [AuthMethod(_AUTH[p.auth], ("PLAIN", "LOGIN"), p.auth_note)]


@hookimpl
def mailadvisor_limits(provider: str) -> ProviderLimits | None:
    p = _get(provider)
    return p.limits if p is not None else None


@hookimpl
def mailadvisor_preflight(provider: str, email: str) -> Sequence[PreflightFinding] | None:
    p = _get(provider)
    if p is None:
        return None
    findings = []
    if p.toggle:
        findings.append(PreflightFinding("toggle", Severity.WARNING, p.toggle, p.toggle))
    if p.auth != "password":
        findings.append(
            PreflightFinding("password", Severity.WARNING, "Your normal password will not work.",
                             p.auth_note)
        )  # fmt: skip
    if p.note:
        findings.append(PreflightFinding("note", Severity.INFO, p.note))
    return findings


@hookimpl
def mailadvisor_advice_factors(provider: str, email: str) -> Sequence[AdviceFactor] | None:
    p = _get(provider)
    if p is None:
        return None
    factors = []
    if p.pop3 is None:
        factors.append(
            AdviceFactor(
                f"{p.key}-no-pop3",
                Direction.CONSTRAINT,
                1.0,
                f"{p.name} offers no POP3: mail programs can only use IMAP with it. "
                + (p.note if p.note and "POP3" in p.note else ""),
            )
        )
    if p.toggle:
        factors.append(AdviceFactor(f"{p.key}-toggle", Direction.CONSTRAINT, 0.0, p.toggle))
    if p.auth != "password":
        factors.append(
            AdviceFactor(f"{p.key}-app-password", Direction.CONSTRAINT, 0.0, p.auth_note)
        )
    return factors
