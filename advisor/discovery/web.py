"""Fetching autoconfig documents over HTTP(S) with httpx.

Redirects are followed by hand (at most :data:`MAX_REDIRECTS`) so that every URL
of the chain is known: a redirect to another domain makes what it returns
untrusted (RFC 7817), and HTTPS is never downgraded to HTTP unless allowed.
Responses are read up to a size limit.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import httpcore
import httpx

from advisor import __version__
from advisor.discovery.autoconfig import MAX_CONFIG_BYTES
from advisor.discovery.dnslookup import DnsError, DnsLookup
from advisor.discovery.options import DiscoveryOptions

MAX_REDIRECTS = 5
_NO_HOST = "the host name does not resolve"
_REFUSED = "connection refused"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class FetchError(Exception):
    """Nothing usable came back; the message says why in plain words."""

    def __init__(self, message: str, *, absent: bool = False) -> None:
        super().__init__(message)
        self.absent = absent
        """True when there is simply nothing there (no such host, HTTP 404...)."""


@dataclass(frozen=True)
class Fetched:
    """A document and the URLs that led to it."""

    body: bytes
    chain: tuple[str, ...]
    """Every URL requested, the first one first and the one that answered last."""

    @property
    def hosts(self) -> tuple[str, ...]:
        return tuple(httpx.URL(u).host for u in self.chain)


def tls_context(ca_file: str | None) -> ssl.SSLContext:
    """Verifying context for HTTPS and probes: system CAs, or only ``ca_file``; TLS >= 1.2."""
    context = ssl.create_default_context(cafile=ca_file)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


class _ResolvingBackend(httpcore.NetworkBackend):
    """Connects to the addresses our own DNS servers give; TLS still checks the host name."""

    def __init__(self, lookup: DnsLookup) -> None:
        self._lookup = lookup
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = self._lookup.addresses(host)
        except DnsError as exc:
            raise httpcore.ConnectError(f"{host}: {exc}") from None
        if not addresses:
            raise httpcore.ConnectError(f"{host} does not resolve")
        error: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:
        return self._inner.connect_unix_socket(path, timeout, socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _ResolvingTransport(httpx.HTTPTransport):
    """httpx's transport over :class:`_ResolvingBackend`.

    httpx has no resolver hook; its transport is a thin shell around an httpcore
    pool, which does take a network backend, so the pool is replaced.
    """

    def __init__(self, context: ssl.SSLContext, lookup: DnsLookup) -> None:
        super().__init__(verify=context)
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=context, network_backend=_ResolvingBackend(lookup)
        )


class WebClient:
    """Fetches small documents; one per discovery run, closed at the end."""

    def __init__(self, options: DiscoveryOptions, lookup: DnsLookup) -> None:
        context = tls_context(str(options.ca_file) if options.ca_file else None)
        transport = _ResolvingTransport(context, lookup) if lookup.custom else None
        self._client = httpx.Client(
            verify=context,
            transport=transport,
            timeout=httpx.Timeout(options.timeout),
            follow_redirects=False,
            headers={"User-Agent": f"mailadvisor/{__version__}", "Accept": "application/xml"},
        )

    def __enter__(self) -> WebClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, *, allow_http: bool = False) -> Fetched:
        """GET ``url``, following redirects; :class:`FetchError` unless it ends in a 200."""
        chain = [url]
        for _ in range(MAX_REDIRECTS + 1):
            status, location, body = self._get_once(chain[-1])
            if status == 200:
                return Fetched(body, tuple(chain))
            if status not in _REDIRECTS:
                raise FetchError(f"HTTP {status}", absent=status in (404, 410))
            if not location:
                raise FetchError(f"HTTP {status} without a Location")
            try:
                target = httpx.URL(chain[-1]).join(location)
            except httpx.InvalidURL:
                raise FetchError("redirected to an invalid URL") from None
            if target.scheme not in ("http", "https"):
                raise FetchError(f"redirected to a {target.scheme!r} URL")
            if target.scheme == "http" and not allow_http:
                raise FetchError(f"redirected to plain HTTP ({target.host}), which is not allowed")
            chain.append(str(target))
        raise FetchError(f"more than {MAX_REDIRECTS} redirects")

    def _get_once(self, url: str) -> tuple[int, str | None, bytes]:
        try:
            with self._client.stream("GET", url) as response:
                if response.status_code != 200:
                    return response.status_code, response.headers.get("location"), b""
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > MAX_CONFIG_BYTES:
                    raise FetchError(f"the document is larger than {MAX_CONFIG_BYTES} bytes")
                body = bytearray()
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_CONFIG_BYTES:
                        raise FetchError(f"the document is larger than {MAX_CONFIG_BYTES} bytes")
                return 200, None, bytes(body)
        except httpx.TimeoutException:
            raise FetchError("no answer in time") from None
        except httpx.ConnectError as exc:
            message = _describe_connect_error(exc)
            absent = message in (_NO_HOST, _REFUSED)
            raise FetchError(message, absent=absent) from None
        except httpx.HTTPError as exc:
            raise FetchError(f"the HTTP exchange failed ({type(exc).__name__})") from None


def _describe_connect_error(exc: httpx.ConnectError) -> str:
    text = str(exc)
    if "CERTIFICATE_VERIFY_FAILED" in text:
        detail = text.split("certificate verify failed:", 1)[-1].split("(_ssl")[0].strip()
        return f"the certificate is not trusted ({detail or 'verification failed'})"
    if "does not resolve" in text or "Name or service not known" in text or "No address" in text:
        return _NO_HOST
    if "Connection refused" in text:
        return _REFUSED
    return f"cannot connect ({text or type(exc).__name__})"
