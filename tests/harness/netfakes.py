"""A small private internet on loopback for discovery and connection-check tests.

Real servers, each on a free loopback port, in a thread of the test process:

* :class:`DnsServer`: a DNS server (dnslib) answering A, MX and SRV queries from a
  table the test fills; unknown names get NXDOMAIN.
* :class:`WebServer`: an HTTP or HTTPS server (http.server) answering by Host header
  and path from routes the test sets; it records every request.
* :class:`SmtpServer`: an SMTP submission server (aiosmtpd), implicit TLS or STARTTLS,
  advertising AUTH after TLS and refusing every login (nothing is ever sent).
* :class:`ScriptedServer`: a deliberately hostile plaintext server that answers from a
  script (the STARTTLS attacks), recording what the client sent.
* :class:`NetGuard`: makes any attempt to resolve or reach a non-loopback address
  fail, and remembers it so the test fails even when the code under test swallowed
  the error.

:class:`FakeInternet` puts DNS, HTTPS and HTTP together with a throwaway CA whose
certificate covers the test domains, and builds the :class:`DiscoveryOptions` that
point discovery at them.
"""

from __future__ import annotations

import ipaddress
import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from dnslib import QTYPE, RCODE, RR, SRV, A, DNSRecord
from dnslib.server import DNSLogger, DNSServer

from advisor.discovery import DiscoveryOptions
from advisor.plugins.types import Protocol, Security
from tests.harness.dovecot import find_free_ports

LOOPBACK = "127.0.0.1"
POLL_INTERVAL = 0.02

#: Names the throwaway web certificate is valid for.
WEB_CERT_NAMES = (
    "example.test",
    "*.example.test",
    "ispdb.test",
    "mailhost.test",
    "*.mailhost.test",
    "other.test",
    "*.other.test",
    "localhost",
    LOOPBACK,
)


# --- DNS ----------------------------------------------------------------------------


def _fqdn(name: str) -> str:
    return name.rstrip(".").lower() + "."


class _QuietLogger(DNSLogger):
    def __init__(self) -> None:
        super().__init__(log="-recv,-send,-request,-reply,-truncated,-error,-data")


class DnsServer:
    """An authoritative-looking DNS server for whatever names the test adds."""

    def __init__(self) -> None:
        self._records: dict[str, list[RR]] = {}
        self._lock = threading.Lock()
        self.queries: list[tuple[str, str]] = []
        """(name, type) of every query received, in order."""
        self._server = DNSServer(self, address=LOOPBACK, port=0, logger=_QuietLogger())
        self.port: int = self._server.server.server_address[1]
        # A short poll interval: shutdown() waits for it, and tests start many servers.
        self._thread = threading.Thread(
            target=self._server.server.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.server.shutdown()
        self._server.server.server_close()
        self._thread.join(5)

    def __enter__(self) -> DnsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _add(self, name: str, rr: RR) -> None:
        with self._lock:
            self._records.setdefault(_fqdn(name), []).append(rr)

    def add_a(self, name: str, address: str = LOOPBACK) -> None:
        self._add(name, RR(_fqdn(name), QTYPE.A, rdata=A(address), ttl=60))

    def add_mx(self, domain: str, host: str, preference: int = 10) -> None:
        from dnslib import MX

        self._add(domain, RR(_fqdn(domain), QTYPE.MX, rdata=MX(_fqdn(host), preference), ttl=60))

    def add_srv(
        self, name: str, target: str, port: int, priority: int = 0, weight: int = 1
    ) -> None:
        """``target`` "." says the service is not offered (RFC 6186)."""
        rdata = SRV(priority, weight, port, "." if target == "." else _fqdn(target))
        self._add(name, RR(_fqdn(name), QTYPE.SRV, rdata=rdata, ttl=60))

    def add_name(self, name: str) -> None:
        """Make ``name`` exist without records (NOERROR, empty answer instead of NXDOMAIN)."""
        with self._lock:
            self._records.setdefault(_fqdn(name), [])

    # dnslib calls this from its server thread.
    def resolve(self, request: DNSRecord, handler: object) -> DNSRecord:
        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((qname.rstrip("."), qtype))
            records = self._records.get(qname)
        if records is None:
            reply.header.rcode = RCODE.NXDOMAIN
            return reply
        for rr in records:
            if QTYPE[rr.rtype] == qtype:
                reply.add_answer(rr)
        return reply


# --- HTTP(S) --------------------------------------------------------------------------


@dataclass
class Route:
    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    host: str
    path: str
    """Path with the query string."""


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer

    def do_GET(self) -> None:
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].lower()
        web = self.server.web
        web.record(Request(host, self.path))
        route = web.route_for(host, self.path.split("?", 1)[0])
        self.send_response(route.status)
        headers = {"Content-Type": "application/xml", **route.headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, web: WebServer, context: ssl.SSLContext | None) -> None:
        self.web = web
        self.context = context
        super().__init__((LOOPBACK, 0), _Handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        # Handshake in the request's thread, so one bad client cannot stall the server.
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            self.web.handshake_errors.append(str(exc))
            return
        try:
            super().finish_request(tls, client_address)
        finally:
            tls.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up early is not the test's business


class WebServer:
    """HTTP (``context`` None) or HTTPS on loopback, answering from :meth:`route`."""

    def __init__(self, context: ssl.SSLContext | None = None) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.Lock()
        self.requests: list[Request] = []
        self.handshake_errors: list[str] = []
        self._httpd = _HttpServer(self, context)
        self.port: int = self._httpd.server_address[1]
        self.scheme = "https" if context else "http"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> WebServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def route(
        self,
        host: str,
        path: str,
        body: bytes | str = b"",
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._routes[(host.lower(), path)] = Route(status, data, dict(headers or {}))

    def redirect(self, host: str, path: str, location: str, status: int = 302) -> None:
        self.route(host, path, status=status, headers={"Location": location})

    def url(self, host: str, path: str) -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def route_for(self, host: str, path: str) -> Route:
        with self._lock:
            return self._routes.get((host, path), Route(404, b"not found"))

    def record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def hosts_asked(self) -> list[str]:
        with self._lock:
            return [r.host for r in self.requests]


# --- SMTP -----------------------------------------------------------------------------


class _NoMail:
    """aiosmtpd handler that never accepts a message (the checks never send one)."""

    async def handle_RCPT(self, *args: Any) -> str:
        return "550 this test server delivers nothing"


Logins = Callable[[str, str], bool]
"""Whether a user name and password (as the client sent them, UTF-8) may sign in."""


def _nobody(username: str, password: str) -> bool:
    return False


class _Authenticator:
    """aiosmtpd's AUTH PLAIN / LOGIN hook: the decoded bytes, checked by ``logins``."""

    def __init__(self, logins: Logins) -> None:
        self.logins = logins
        self.seen: list[tuple[str, bytes]] = []
        """(mechanism, user name bytes) of every attempt, never the password."""

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        login, password = getattr(data, "login", None), getattr(data, "password", None)
        if not isinstance(login, bytes) or not isinstance(password, bytes):
            return AuthResult(success=False, handled=False)
        self.seen.append((mechanism, login))
        try:
            ok = self.logins(login.decode("utf-8"), password.decode("utf-8"))
        except UnicodeDecodeError:
            ok = False
        return AuthResult(success=ok, handled=False)


class SmtpServer:
    """An SMTP submission server on loopback: implicit TLS, or STARTTLS required.

    ``logins`` decides who may sign in, e.g. :meth:`DovecotServer.check_password` to
    take exactly the credentials of the IMAP fixture's users; by default nobody.
    """

    def __init__(
        self, cert_file: Path, key_file: Path, *, implicit_tls: bool, logins: Logins = _nobody
    ) -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert_file, key_file)
        (self.port,) = find_free_ports(LOOPBACK)
        self.auth = _Authenticator(logins)
        tls: dict[str, Any] = (
            {"ssl_context": context}
            if implicit_tls
            else {"tls_context": context, "require_starttls": True}
        )
        self._controller = Controller(
            _NoMail(),
            hostname=LOOPBACK,
            port=self.port,
            server_hostname="localhost",
            authenticator=self.auth,
            # aiosmtpd only knows about TLS it started itself (STARTTLS); with implicit
            # TLS every byte is encrypted anyway, so AUTH may be offered from the start.
            auth_require_tls=not implicit_tls,
            ready_timeout=10,
            **tls,
        )
        self._controller.start()

    def close(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- a hostile plaintext server --------------------------------------------------------


class _ScriptedHandler(socketserver.StreamRequestHandler):
    server: _ScriptedTCPServer

    def handle(self) -> None:
        script = self.server.script
        self.wfile.write(script.greeting)
        for line in self.rfile:
            script.record(line)
            reply = script.reply(line)
            if reply is None:
                return
            self.wfile.write(reply)


class _ScriptedTCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, script: ScriptedServer) -> None:
        self.script = script
        super().__init__((LOOPBACK, 0), _ScriptedHandler)


class ScriptedServer:
    """A plaintext server that answers each command line from ``replies``.

    ``replies`` maps a command prefix (e.g. b"a2 STARTTLS") to the exact bytes sent
    back; an unknown command ends the connection. Everything received is kept in
    ``received``, to show what a client did (or did not) send in clear.
    """

    def __init__(self, greeting: bytes, replies: Mapping[bytes, bytes]) -> None:
        self.greeting = greeting
        self.replies = dict(replies)
        self.received = b""
        self._lock = threading.Lock()
        self._server = _ScriptedTCPServer(self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(POLL_INTERVAL,), daemon=True
        )
        self._thread.start()

    def record(self, line: bytes) -> None:
        with self._lock:
            self.received += line

    def reply(self, line: bytes) -> bytes | None:
        for prefix, answer in self.replies.items():
            if line.upper().startswith(prefix.upper()):
                return answer
        return None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> ScriptedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- certificates -------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A throwaway CA and PEM files of one server certificate it signed."""

    ca: trustme.CA
    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_pki(
    directory: Path, names: tuple[str, ...] = WEB_CERT_NAMES, not_after: datetime | None = None
) -> Pki:
    """A new CA and a server certificate for ``names`` (optionally expiring at ``not_after``)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="mailadvisor discovery tests")
    leaf = ca.issue_cert(*names, not_after=not_after)
    pki = Pki(ca, directory / "ca.pem", directory / "server.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(pki.ca_file))
    leaf.private_key_pem.write_to_path(str(pki.key_file))
    pki.cert_file.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    return pki


# --- the guard ------------------------------------------------------------------------


def _loopback(host: object) -> bool:
    """True for a name or address that stays on this machine."""
    if host in (None, "", "localhost"):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _ip_literal(host: object) -> bool:
    try:
        ipaddress.ip_address(str(host).split("%", 1)[0])
    except ValueError:
        return False
    return True


class NetGuard:
    """Refuses, and records, every name lookup or connection that is not loopback.

    Patches the socket module for the whole process while active; use it as a
    context manager. ``violations`` lists what was attempted.
    """

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._saved: list[tuple[object, str, object]] = []

    def _refuse(self, what: str) -> OSError:
        self.violations.append(what)
        return OSError(f"tests must not reach the internet: {what}")

    def __enter__(self) -> NetGuard:
        guard = self
        real_getaddrinfo = socket.getaddrinfo
        real_connect = socket.socket.connect
        real_connect_ex = socket.socket.connect_ex
        real_sendto = socket.socket.sendto

        def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
            if isinstance(host, bytes):
                host = host.decode()
            if not _loopback(host) and not _ip_literal(host):  # connect() judges addresses
                raise socket.gaierror(socket.EAI_NONAME, str(guard._refuse(f"resolve {host}")))
            return real_getaddrinfo(host, *args, **kw)

        def check(sock: socket.socket, address: Any, what: str) -> None:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
                raise guard._refuse(f"{what} {address[0]}")

        def connect(sock: socket.socket, address: Any) -> Any:
            check(sock, address, "connect to")
            return real_connect(sock, address)

        def connect_ex(sock: socket.socket, address: Any) -> Any:
            check(sock, address, "connect to")
            return real_connect_ex(sock, address)

        def sendto(sock: socket.socket, data: Any, *args: Any) -> Any:
            check(sock, args[-1], "send to")
            return real_sendto(sock, data, *args)

        patches: list[tuple[object, str, Callable[..., Any]]] = [
            (socket, "getaddrinfo", getaddrinfo),
            (socket.socket, "connect", connect),
            (socket.socket, "connect_ex", connect_ex),
            (socket.socket, "sendto", sendto),
        ]
        for owner, name, replacement in patches:
            self._saved.append((owner, name, getattr(owner, name)))
            setattr(owner, name, replacement)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for owner, name, original in reversed(self._saved):
            setattr(owner, name, original)
        self._saved.clear()


# --- everything together --------------------------------------------------------------


class FakeInternet:
    """DNS, HTTPS and HTTP servers on loopback, and discovery options that use them.

    Host names resolve only when the test adds them (:meth:`add_host`); every one of
    them is served by the same HTTPS and HTTP servers, which answer by Host header.
    """

    def __init__(self, pki: Pki) -> None:
        self.pki = pki
        self.dns = DnsServer()
        self.https = WebServer(pki.server_context())
        self.http = WebServer()
        self.ca_file = pki.ca_file

    def close(self) -> None:
        for server in (self.dns, self.https, self.http):
            server.close()

    def add_host(self, name: str, address: str = LOOPBACK) -> None:
        self.dns.add_a(name, address)

    def serve_autoconfig(self, domain: str, xml: str) -> None:
        """Answer https://autoconfig.<domain>/mail/config-v1.1.xml with ``xml``."""
        self.add_host(f"autoconfig.{domain}")
        self.https.route(f"autoconfig.{domain}", "/mail/config-v1.1.xml", xml)

    def serve_well_known(self, domain: str, xml: str) -> None:
        self.add_host(domain)
        self.https.route(domain, "/.well-known/autoconfig/mail/config-v1.1.xml", xml)

    def serve_ispdb(self, domain: str, xml: str) -> None:
        self.add_host("ispdb.test")
        self.https.route("ispdb.test", f"/v1.1/{domain}", xml)

    def options(self, **changes: Any) -> DiscoveryOptions:
        """Discovery options pointing at these servers (``changes`` override fields)."""
        https, http = self.https.port, self.http.port
        base = DiscoveryOptions(
            timeout=5.0,
            probe_timeout=3.0,
            autoconfig_url=(
                f"https://autoconfig.{{domain}}:{https}/mail/config-v1.1.xml?emailaddress={{email}}"
            ),
            well_known_url=f"https://{{domain}}:{https}/.well-known/autoconfig/mail/config-v1.1.xml",
            autoconfig_http_url=(
                f"http://autoconfig.{{domain}}:{http}/mail/config-v1.1.xml?emailaddress={{email}}"
            ),
            well_known_http_url=f"http://{{domain}}:{http}/.well-known/autoconfig/mail/config-v1.1.xml",
            ispdb_url=f"https://ispdb.test:{https}/v1.1/{{domain}}",
            dns_servers=(LOOPBACK,),
            dns_port=self.dns.port,
            ca_file=self.ca_file,
            # Nothing listens on these unless a test says so: guesses are refused quickly.
            probe_ports=dict.fromkeys(_GUESS_KEYS, find_free_ports(LOOPBACK)[0]),
        )
        return replace(base, **changes)


_GUESS_KEYS = [(protocol, security) for protocol in Protocol for security in Security]


@contextmanager
def guarded() -> Iterator[NetGuard]:
    """A :class:`NetGuard` that fails the test at the end if anything was attempted."""
    with NetGuard() as guard:
        yield guard
    assert not guard.violations, f"the test tried to reach the internet: {guard.violations}"
