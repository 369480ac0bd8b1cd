"""Thunderbird autoconfig files (``config-v1.1.xml``), read safely.

The file comes from the network and is untrusted: it is parsed with defusedxml
(no DTD, no entities, nothing external), its size is bounded, and every host name
and port in it is checked before it becomes an :class:`Endpoint`.
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree.ElementTree import Element, ParseError

import defusedxml
import defusedxml.ElementTree

from advisor.discovery.domains import normalise_host, valid_host
from advisor.plugins.types import Endpoint, Protocol, Security

MAX_CONFIG_BYTES = 512 * 1024
"""A real config is a few kB; anything this big is not one."""

_PROTOCOLS = {"imap": Protocol.IMAP, "pop3": Protocol.POP3, "smtp": Protocol.SMTP}
_SECURITY = {"ssl": Security.TLS, "tls": Security.TLS, "starttls": Security.STARTTLS}
_PLAIN = "plain"


class AutoconfigError(ValueError):
    """The document is not a usable autoconfig file."""


@dataclass(frozen=True)
class ConfigServer:
    """One server entry of an autoconfig file."""

    endpoint: Endpoint
    authentication: tuple[str, ...] = ()
    """The file's ``authentication`` values, e.g. ("password-cleartext", "OAuth2")."""


@dataclass(frozen=True)
class ClientConfig:
    """The usable content of an autoconfig file, servers in the file's order."""

    provider_id: str
    display_name: str
    domains: tuple[str, ...]
    servers: tuple[ConfigServer, ...]
    ignored: tuple[str, ...] = ()
    """Entries left out, and why (an Exchange server, a bad port...)."""


def substitute(template: str, email: str) -> str:
    """Fill in Thunderbird's placeholders for ``email``."""
    local, _, domain = email.rpartition("@")
    return (
        template.replace("%EMAILADDRESS%", email)
        .replace("%EMAILLOCALPART%", local)
        .replace("%EMAILDOMAIN%", domain)
    )


def _tag(element: Element) -> str:
    # Tolerate a namespace a hand-written file may carry.
    return element.tag.rpartition("}")[2]


def _text(element: Element, name: str) -> str:
    for child in element:
        if _tag(child) == name:
            return (child.text or "").strip()
    return ""


def parse_client_config(data: bytes, email: str) -> ClientConfig:
    """Read an autoconfig document for ``email``; :class:`AutoconfigError` if unusable."""
    if len(data) > MAX_CONFIG_BYTES:
        raise AutoconfigError(f"larger than {MAX_CONFIG_BYTES // 1024} kB: not an autoconfig file")
    try:
        root = defusedxml.ElementTree.fromstring(
            data, forbid_dtd=True, forbid_entities=True, forbid_external=True
        )
    except ParseError as exc:
        raise AutoconfigError(f"not well-formed XML ({exc})") from None
    except defusedxml.DefusedXmlException as exc:
        raise AutoconfigError(f"refused: the XML uses {type(exc).__name__}") from None
    if _tag(root) != "clientConfig":
        raise AutoconfigError(f"the root element is <{_tag(root)}>, not <clientConfig>")
    provider = next((e for e in root if _tag(e) == "emailProvider"), None)
    if provider is None:
        raise AutoconfigError("no <emailProvider> element")

    servers: list[ConfigServer] = []
    ignored: list[str] = []
    domains: list[str] = []
    for element in provider:
        tag = _tag(element)
        if tag == "domain" and element.text:
            domains.append(element.text.strip().lower())
        if tag not in ("incomingServer", "outgoingServer"):
            continue
        kind = element.get("type", "").lower()
        protocol = _PROTOCOLS.get(kind)
        if protocol is None or (protocol is Protocol.SMTP) != (tag == "outgoingServer"):
            ignored.append(f"{tag} of type {kind or '?'!r} (not IMAP, POP3 or SMTP)")
            continue
        try:
            servers.append(_server(element, protocol, email))
        except AutoconfigError as exc:
            ignored.append(f"{protocol.value} server: {exc}")
    if not servers:
        reason = f" ({'; '.join(ignored)})" if ignored else ""
        raise AutoconfigError(f"no usable IMAP, POP3 or SMTP server in it{reason}")
    return ClientConfig(
        provider_id=provider.get("id", ""),
        display_name=_text(provider, "displayName"),
        domains=tuple(domains),
        servers=tuple(servers),
        ignored=tuple(ignored),
    )


def _server(element: Element, protocol: Protocol, email: str) -> ConfigServer:
    host = normalise_host(substitute(_text(element, "hostname"), email))
    if not host or not valid_host(host):
        raise AutoconfigError(f"invalid host name {host[:80]!r}")
    port_text = _text(element, "port")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise AutoconfigError(f"invalid port {port_text[:20]!r}")
    socket_type = _text(element, "socketType").lower()
    if socket_type == _PLAIN:
        security = Security.NONE
    elif socket_type in _SECURITY:
        security = _SECURITY[socket_type]
    else:
        raise AutoconfigError(f"unknown socketType {socket_type[:20]!r}")
    username = substitute(_text(element, "username"), email) or None
    authentication = tuple(
        (child.text or "").strip()
        for child in element
        if _tag(child) == "authentication" and (child.text or "").strip()
    )
    return ConfigServer(
        Endpoint(protocol, host, int(port_text), security, username), authentication
    )
