"""Settings discovery against real DNS, HTTPS and IMAP/POP3 servers on loopback.

Every test that lets discovery use the network goes through ``fake_internet``
(or sets the options by hand with the ``no_internet`` guard on): a DNS server,
an HTTPS and an HTTP server on loopback, and a guard that fails the test if
anything else is resolved or contacted.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from advisor.discovery import (
    AutoconfigError,
    DiscoveryOptions,
    Origin,
    Outcome,
    discover,
    parse_client_config,
    split_address,
    use_options,
)
from advisor.errors import UsageError
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Protocol, Security
from tests.harness.dovecot import DovecotServer
from tests.harness.netfakes import LOOPBACK, FakeInternet, NetGuard, make_pki

# Any attempt to resolve or reach a non-loopback address fails the test.
pytestmark = pytest.mark.usefixtures("no_internet")

EMAIL = "alex@example.test"


def config_xml(
    *servers: tuple[str, str, str, int, str],
    username: str = "%EMAILADDRESS%",
    extra: str = "",
) -> str:
    """An autoconfig document; each server is (element, type, hostname, port, socketType)."""
    body = "".join(
        f'<{tag} type="{kind}"><hostname>{host}</hostname><port>{port}</port>'
        f"<socketType>{socket_type}</socketType><username>{username}</username>"
        f"<authentication>password-cleartext</authentication></{tag}>"
        for tag, kind, host, port, socket_type in servers
    )
    return (
        '<?xml version="1.0"?><clientConfig version="1.1">'
        '<emailProvider id="example.test"><domain>example.test</domain>'
        f"<displayName>Example</displayName>{body}{extra}</emailProvider></clientConfig>"
    )


FULL = config_xml(
    ("incomingServer", "imap", "imap.example.test", 993, "SSL"),
    ("incomingServer", "imap", "imap.example.test", 143, "STARTTLS"),
    ("incomingServer", "pop3", "pop.example.test", 995, "SSL"),
    ("outgoingServer", "smtp", "smtp.example.test", 587, "STARTTLS"),
)


# --- the autoconfig parser -------------------------------------------------------------


def test_parse_maps_socket_types_and_fills_placeholders() -> None:
    xml = config_xml(
        ("incomingServer", "imap", "mail.%EMAILDOMAIN%", 993, "SSL"),
        ("incomingServer", "pop3", "pop.example.test", 110, "STARTTLS"),
        ("outgoingServer", "smtp", "smtp.example.test", 25, "plain"),
        username="%EMAILLOCALPART%",
        extra='<incomingServer type="exchange"><hostname>x.example.test</hostname>'
        "</incomingServer>",
    )
    config = parse_client_config(xml.encode(), "alex@example.test")
    imap, pop3, smtp = (s.endpoint for s in config.servers)
    assert (imap.host, imap.port, imap.security) == ("mail.example.test", 993, Security.TLS)
    assert (pop3.protocol, pop3.security) == (Protocol.POP3, Security.STARTTLS)
    assert (smtp.protocol, smtp.security) == (Protocol.SMTP, Security.NONE)
    assert imap.username == "alex"
    assert config.servers[0].authentication == ("password-cleartext",)
    assert config.display_name == "Example" and config.domains == ("example.test",)
    assert any("exchange" in note for note in config.ignored)


def test_parse_email_address_placeholder() -> None:
    config = parse_client_config(FULL.encode(), "Alex.B@example.test")
    assert {s.endpoint.username for s in config.servers} == {"Alex.B@example.test"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (b"<clientConfig><emailProvider>", "not well-formed"),
        (b"<html><body>hello</body></html>", "<html>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaa"><!ENTITY b "&a;&a;&a;">]>'
            b"<clientConfig><emailProvider>&b;</emailProvider></clientConfig>",
            "refused",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "file:///etc/passwd"><clientConfig/>',
            "refused",
        ),
        (b"<clientConfig>" + b" " * (600 * 1024) + b"</clientConfig>", "larger than"),
        (
            config_xml(("incomingServer", "imap", "evil host;rm -rf", 993, "SSL")).encode(),
            "invalid host name",
        ),
        (
            config_xml(("incomingServer", "imap", "imap.example.test", 99999, "SSL")).encode(),
            "invalid port",
        ),
        (
            config_xml(("incomingServer", "imap", "imap.example.test", 993, "magic")).encode(),
            "unknown socketType",
        ),
    ],
)
def test_parse_refuses_hostile_or_broken_documents(document: bytes, message: str) -> None:
    with pytest.raises(AutoconfigError, match=message):
        parse_client_config(document, EMAIL)


def test_split_address() -> None:
    assert split_address("Alex@Bücher.Example") == ("Alex", "xn--bcher-kva.example")
    for bad in ("no-at-sign", "@example.test", "alex@", "alex@bad host"):
        with pytest.raises(UsageError):
            split_address(bad)


# --- the sources, in Thunderbird's order ---------------------------------------------


def test_autoconfig_of_the_domain_over_https(fake_internet: FakeInternet) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    found = discover(EMAIL)
    assert found.imap is not None and found.pop3 is not None and found.smtp is not None
    imap = found.imap
    assert (imap.endpoint.host, imap.endpoint.port, imap.endpoint.security) == (
        "imap.example.test",
        993,
        Security.TLS,
    )
    assert imap.origin is Origin.AUTOCONFIG and imap.trusted
    assert imap.via.startswith("https://autoconfig.example.test:")
    assert found.smtp.endpoint.security is Security.STARTTLS
    # The address is sent along, URL-encoded, as Thunderbird does.
    asked = [r for r in fake_internet.https.requests if r.host == "autoconfig.example.test"]
    assert asked and asked[0].path.endswith("?emailaddress=alex%40example.test")
    settings = found.settings()
    assert settings is not None and settings.trusted and settings.source.startswith("autoconfig")


def test_autoconfig_may_name_hosts_outside_the_domain(fake_internet: FakeInternet) -> None:
    # The domain vouches for its hoster over HTTPS: that is trusted.
    xml = config_xml(("incomingServer", "imap", "imap.hoster.test", 993, "SSL"))
    fake_internet.serve_autoconfig("example.test", xml)
    found = discover(EMAIL)
    assert found.imap is not None and found.imap.endpoint.host == "imap.hoster.test"
    assert found.imap.trusted and "own autoconfig" in found.imap.note


def test_well_known_url_when_there_is_no_autoconfig_host(fake_internet: FakeInternet) -> None:
    fake_internet.serve_well_known("example.test", FULL)
    found = discover(EMAIL)
    assert found.imap is not None and found.imap.origin is Origin.WELL_KNOWN
    outcomes = {a.origin: a.outcome for a in found.attempts}
    assert outcomes[Origin.AUTOCONFIG] is Outcome.NONE  # autoconfig.example.test: no such name


def test_ispdb_is_trusted_for_hosts_outside_the_domain(fake_internet: FakeInternet) -> None:
    xml = config_xml(("incomingServer", "imap", "imap.bigmail.test", 993, "SSL"))
    fake_internet.serve_ispdb("example.test", xml)
    found = discover(EMAIL)
    assert found.imap is not None and found.imap.origin is Origin.ISPDB
    assert found.imap.endpoint.host == "imap.bigmail.test" and found.imap.trusted


def test_best_source_wins(fake_internet: FakeInternet) -> None:
    fake_internet.serve_ispdb(
        "example.test", config_xml(("incomingServer", "imap", "ispdb.example.test", 993, "SSL"))
    )
    fake_internet.serve_autoconfig(
        "example.test", config_xml(("incomingServer", "imap", "auto.example.test", 993, "SSL"))
    )
    fake_internet.dns.add_srv("_imaps._tcp.example.test", "srv.example.test", 993)
    found = discover(EMAIL)
    assert found.imap is not None and found.imap.endpoint.host == "auto.example.test"
    others = {f.endpoint.host for f in found.candidates} - {"auto.example.test"}
    assert others == {"ispdb.example.test", "srv.example.test"}


def test_mx_host_domain_is_looked_up_and_untrusted(fake_internet: FakeInternet) -> None:
    dns = fake_internet.dns
    dns.add_mx("example.test", "mx1.eu.mailhost.test")
    xml = config_xml(
        ("incomingServer", "imap", "imap.mailhost.test", 993, "SSL"),
        ("outgoingServer", "smtp", "smtp.mailhost.test", 465, "SSL"),
    )
    fake_internet.serve_ispdb("mailhost.test", xml)
    found = discover(EMAIL)
    assert found.mx_hosts == ("mx1.eu.mailhost.test",)
    assert found.imap is not None and found.imap.origin is Origin.MX
    # RFC 7817: learnt through DNS from outside the user's domain, so not trusted yet.
    assert not found.imap.trusted and "confirm" in found.imap.note
    assert "mx1.eu.mailhost.test" in found.imap.note
    settings = found.settings()
    assert settings is not None and not settings.trusted
    # The registrable domain of the MX host was asked, at the ISPDB and its autoconfig host.
    assert any(r.path == "/v1.1/mailhost.test" for r in fake_internet.https.requests)
    assert ("autoconfig.mailhost.test", "A") in dns.queries


def test_mx_autoconfig_of_the_mx_domain(fake_internet: FakeInternet) -> None:
    fake_internet.dns.add_mx("example.test", "mx.mailhost.test")
    fake_internet.serve_autoconfig(
        "mailhost.test", config_xml(("incomingServer", "imap", "imap.mailhost.test", 993, "SSL"))
    )
    found = discover(EMAIL)
    assert found.imap is not None and found.imap.origin is Origin.MX
    assert found.imap.via.startswith("https://autoconfig.mailhost.test:")
    assert not found.imap.trusted


def test_confirmed_host_is_trusted(fake_internet: FakeInternet) -> None:
    fake_internet.dns.add_srv("_imaps._tcp.example.test", "imap.hoster.test", 993)
    options = fake_internet.options(confirmed_hosts=frozenset({"imap.hoster.test"}))
    found = discover(EMAIL, options)
    assert found.imap is not None and found.imap.trusted
    assert found.imap.note == "you confirmed this host"


def test_srv_records(fake_internet: FakeInternet) -> None:
    dns = fake_internet.dns
    dns.add_srv("_imap._tcp.example.test", "imap.example.test", 143)
    dns.add_srv("_imaps._tcp.example.test", "imap2.example.test", 993, priority=10)
    dns.add_srv("_imaps._tcp.example.test", "imap1.example.test", 993, priority=0)
    dns.add_srv("_pop3s._tcp.example.test", ".", 0)
    dns.add_srv("_submission._tcp.example.test", "smtp.hoster.test", 587)
    found = discover(EMAIL)
    assert found.imap is not None and found.smtp is not None
    # Implicit TLS preferred, and the lowest priority value first.
    assert (found.imap.endpoint.host, found.imap.endpoint.security) == (
        "imap1.example.test",
        Security.TLS,
    )
    assert found.imap.origin is Origin.SRV and found.imap.trusted
    assert found.pop3 is None  # "." says POP3 is not offered (and guessing does not run)
    srv = {a.via: a for a in found.attempts if a.origin is Origin.SRV}
    assert srv["_pop3s._tcp.example.test"].outcome is Outcome.NONE
    assert "not offered" in srv["_pop3s._tcp.example.test"].detail
    assert srv["_submissions._tcp.example.test"].outcome is Outcome.NONE
    assert (found.smtp.endpoint.port, found.smtp.endpoint.security) == (587, Security.STARTTLS)
    assert not found.smtp.trusted and "SRV record" in found.smtp.note


def test_redirect_to_another_domain_is_untrusted(fake_internet: FakeInternet) -> None:
    web = fake_internet.https
    fake_internet.add_host("autoconfig.example.test")
    fake_internet.add_host("config.other.test")
    web.redirect(
        "autoconfig.example.test",
        "/mail/config-v1.1.xml",
        web.url("config.other.test", "/cfg.xml"),
    )
    web.route(
        "config.other.test",
        "/cfg.xml",
        config_xml(
            ("incomingServer", "imap", "imap.other.test", 993, "SSL"),
            ("incomingServer", "pop3", "pop.example.test", 995, "SSL"),
        ),
    )
    found = discover(EMAIL)
    assert found.imap is not None and found.pop3 is not None
    assert found.imap.origin is Origin.AUTOCONFIG and " -> " in found.imap.via
    assert not found.imap.trusted and "redirect to config.other.test" in found.imap.note
    assert found.pop3.trusted  # in the user's own domain, whatever the path


def test_plain_http_only_when_allowed(fake_internet: FakeInternet) -> None:
    fake_internet.add_host("autoconfig.example.test")
    fake_internet.http.route(
        "autoconfig.example.test",
        "/mail/config-v1.1.xml",
        config_xml(
            ("incomingServer", "imap", "imap.elsewhere.test", 993, "SSL"),
            ("incomingServer", "pop3", "pop.example.test", 995, "SSL"),
        ),
    )
    found = discover(EMAIL)
    assert found.imap is None and found.pop3 is None
    assert fake_internet.http.requests == []

    found = discover(EMAIL, fake_internet.options(allow_http=True))
    assert fake_internet.http.hosts_asked() == ["autoconfig.example.test"]
    assert found.imap is not None and found.pop3 is not None
    assert not found.imap.trusted and "plain HTTP" in found.imap.note
    assert found.pop3.trusted


def test_https_redirect_to_http_is_refused(fake_internet: FakeInternet) -> None:
    fake_internet.add_host("autoconfig.example.test")
    fake_internet.https.redirect(
        "autoconfig.example.test",
        "/mail/config-v1.1.xml",
        fake_internet.http.url("autoconfig.example.test", "/x.xml"),
    )
    found = discover(EMAIL)
    attempt = next(a for a in found.attempts if a.origin is Origin.AUTOCONFIG)
    assert attempt.outcome is Outcome.ERROR and "plain HTTP" in attempt.detail
    assert fake_internet.http.requests == []


def test_untrusted_https_certificate_is_an_error(
    fake_internet: FakeInternet, tmp_path: Path
) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    other_ca = make_pki(tmp_path / "other", names=("unused.test",))
    found = discover(EMAIL, fake_internet.options(ca_file=other_ca.ca_file))
    assert found.imap is None
    attempt = next(a for a in found.attempts if a.origin is Origin.AUTOCONFIG)
    assert attempt.outcome is Outcome.ERROR and "certificate is not trusted" in attempt.detail


def test_oversized_and_broken_documents_are_errors(fake_internet: FakeInternet) -> None:
    fake_internet.serve_autoconfig("example.test", "<clientConfig>" + " " * 600_000)
    fake_internet.serve_well_known("example.test", "<html>not a config</html>")
    found = discover(EMAIL)
    details = {a.origin: a.detail for a in found.attempts}
    assert "larger than" in details[Origin.AUTOCONFIG]
    assert "unusable" in details[Origin.WELL_KNOWN]


# --- guessing, against the real Dovecot ------------------------------------------------


def _guess_options(net: FakeInternet, dovecot: DovecotServer, **ports: int) -> DiscoveryOptions:
    info = dovecot.info
    probe_ports = dict(net.options().probe_ports)
    probe_ports.update(
        {
            (Protocol.IMAP, Security.TLS): ports.get("imaps", info.imaps_port),
            (Protocol.IMAP, Security.STARTTLS): ports.get("imap", info.imap_starttls_port),
            (Protocol.POP3, Security.TLS): ports.get("pop3s", info.pop3s_port),
            (Protocol.POP3, Security.STARTTLS): ports.get("pop3", info.pop3_starttls_port),
        }
    )
    return net.options(ca_file=info.ca_file, probe_ports=probe_ports)


def test_guessing_probes_the_usual_names_over_tls(
    fake_internet: FakeInternet, dovecot: DovecotServer
) -> None:
    # Dovecot's certificate is for "localhost": the bare domain of someone@localhost.
    fake_internet.add_host("localhost")
    found = discover("someone@localhost", _guess_options(fake_internet, dovecot))
    assert found.imap is not None and found.pop3 is not None
    assert found.imap.origin is Origin.GUESS and found.imap.trusted
    assert found.imap.endpoint == found.imap.endpoint.__class__(
        Protocol.IMAP, "localhost", dovecot.info.imaps_port, Security.TLS
    )
    assert (found.pop3.endpoint.port, found.pop3.endpoint.security) == (
        dovecot.info.pop3s_port,
        Security.TLS,
    )
    assert found.smtp is None  # nothing listens for SMTP
    guesses = {a.via: a for a in found.attempts if a.origin is Origin.GUESS}
    assert guesses["imap.localhost"].detail == "does not resolve"
    assert (
        "answered over TLSv1" in guesses[f"imap localhost:{dovecot.info.imaps_port} (tls)"].detail
    )
    # STARTTLS was tried too, and works, but implicit TLS is preferred.
    starttls = f"imap localhost:{dovecot.info.imap_starttls_port} (starttls)"
    assert guesses[starttls].outcome is Outcome.FOUND


def test_guessing_finds_starttls_when_there_is_no_implicit_tls(
    fake_internet: FakeInternet, dovecot: DovecotServer
) -> None:
    fake_internet.add_host("localhost")
    closed = fake_internet.options().probe_ports[(Protocol.SMTP, Security.TLS)]
    options = _guess_options(fake_internet, dovecot, imaps=closed, pop3s=closed)
    found = discover("someone@localhost", options)
    assert found.imap is not None and found.pop3 is not None
    assert found.imap.endpoint.security is Security.STARTTLS
    assert found.pop3.endpoint.security is Security.STARTTLS


def test_guessing_refuses_an_untrusted_certificate(
    fake_internet: FakeInternet, dovecot: DovecotServer
) -> None:
    fake_internet.add_host("localhost")
    options = replace(_guess_options(fake_internet, dovecot), ca_file=fake_internet.ca_file)
    found = discover("someone@localhost", options)
    assert found.imap is None and found.pop3 is None
    tls = f"imap localhost:{dovecot.info.imaps_port} (tls)"
    attempt = next(a for a in found.attempts if a.via == tls)
    assert attempt.outcome is Outcome.ERROR and "not trusted" in attempt.detail


# --- parallel, with timeouts -----------------------------------------------------------


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never says a word."""
    with socket.create_server((LOOPBACK, 0), backlog=16) as server:
        yield server.getsockname()[1]


def test_slow_sources_time_out_in_parallel(fake_internet: FakeInternet, silent_tcp: int) -> None:
    for name in ("autoconfig.example.test", "example.test", "ispdb.test"):
        fake_internet.add_host(name)
    base = fake_internet.options(timeout=1.0)
    options = replace(
        base,
        autoconfig_url=base.autoconfig_url.replace(str(fake_internet.https.port), str(silent_tcp)),
        well_known_url=base.well_known_url.replace(str(fake_internet.https.port), str(silent_tcp)),
        ispdb_url=base.ispdb_url.replace(str(fake_internet.https.port), str(silent_tcp)),
    )
    fake_internet.dns.add_srv("_imaps._tcp.example.test", "imap.example.test", 993)
    start = time.monotonic()
    found = discover(EMAIL, options)
    elapsed = time.monotonic() - start
    # Three sources each waited their 1 s timeout, side by side: not 3 s in a row.
    assert elapsed < 2.5, elapsed
    assert found.imap is not None and found.imap.origin is Origin.SRV
    errors = [a for a in found.attempts if a.outcome is Outcome.ERROR]
    assert {a.origin for a in errors} == {Origin.AUTOCONFIG, Origin.WELL_KNOWN, Origin.ISPDB}
    assert all("no answer in time" in a.detail for a in errors)


def test_a_dns_server_that_never_answers() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind((LOOPBACK, 0))
        options = DiscoveryOptions(
            dns_servers=(LOOPBACK,),
            dns_port=mute.getsockname()[1],
            timeout=0.5,
            ispdb_url="https://127.0.0.1:9/v1.1/{domain}",
        )
        start = time.monotonic()
        found = discover(EMAIL, options)
    assert time.monotonic() - start < 3
    assert found.imap is None
    mx = next(a for a in found.attempts if a.origin is Origin.MX)
    assert mx.outcome is Outcome.ERROR and "did not answer" in mx.detail


# --- off, and the generic plugin --------------------------------------------------------


def test_offline_looks_nothing_up(fake_internet: FakeInternet) -> None:
    found = discover(EMAIL, fake_internet.options(network=False))
    assert fake_internet.dns.queries == [] and fake_internet.https.requests == []
    assert found.imap is not None and found.imap.endpoint.host == "imap.example.test"
    assert "not checked" in found.imap.note
    assert [a.outcome for a in found.attempts] == [Outcome.SKIPPED]


def test_generic_plugin_uses_discovery_only_when_asked(fake_internet: FakeInternet) -> None:
    fake_internet.serve_autoconfig("example.test", FULL)
    host = load_plugins(builtin_only=True)
    assert host.match_address(EMAIL)[0].provider == "generic"
    assert fake_internet.dns.queries == []  # loading and matching look nothing up
    settings = host.server_settings("generic", EMAIL)
    assert settings is not None and settings.imap is not None
    assert settings.imap.host == "imap.example.test" and settings.source.startswith("autoconfig")
    assert settings.trusted


def test_generic_plugin_offline_and_when_nothing_answers(fake_internet: FakeInternet) -> None:
    host = load_plugins(builtin_only=True)
    with use_options(fake_internet.options(network=False)):
        settings = host.server_settings("generic", EMAIL)
    assert settings is not None and settings.imap is not None
    assert settings.imap.host == "imap.example.test" and settings.source == "guess"
    assert fake_internet.dns.queries == []
    # With the network on but nothing anywhere: the same guess, as the last resort.
    settings = host.server_settings("generic", EMAIL)
    assert fake_internet.dns.queries  # this time it looked
    assert settings is not None and settings.source == "guess"
    assert settings.pop3 is not None and settings.pop3.host == "pop.example.test"


def test_the_guard_refuses_and_records_the_internet() -> None:
    # Code under test may swallow the refusal; the record still fails the test.
    with NetGuard() as guard:
        with pytest.raises(OSError):
            socket.create_connection(("192.0.2.1", 993), timeout=1)
        with pytest.raises(socket.gaierror):
            socket.getaddrinfo("example.com", 443)
        socket.getaddrinfo("localhost", 443)
    assert guard.violations == ["connect to 192.0.2.1", "resolve example.com"]
