"""A small, real OAuth2 authorization server on loopback for the sign-in tests.

It speaks the parts of the protocols mailadvisor uses, strictly enough that a
client mistake fails a test:

* ``GET /authorize`` (RFC 6749 4.1 with PKCE, RFC 7636): checks the client id,
  the redirect URI (loopback only), ``response_type=code`` and an S256
  challenge, then "the user consents" at once and the answer is a 302 to the
  redirect URI with ``code`` and the client's ``state``.
* ``POST /token``: ``authorization_code`` (single-use code, same redirect URI,
  PKCE verifier checked), ``refresh_token`` (optionally rotating) and
  ``urn:ietf:params:oauth:grant-type:device_code`` (RFC 8628:
  ``authorization_pending`` until the user approved, ``slow_down`` when polled
  too fast, ``expired_token``).
* ``POST /device`` (RFC 8628 3.1) and ``GET /device?user_code=...`` (the page
  the user visits to approve).
* ``POST /introspect`` (RFC 7662): what Dovecot's oauth2 passdb asks.

Only the standard library: a ``ThreadingHTTPServer`` on 127.0.0.1 in a thread.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


class OAuthError(Exception):
    """An RFC 6749 error answer."""

    def __init__(self, error: str, description: str = "", status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class _Code:
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    user: str


@dataclass
class _Device:
    client_id: str
    scope: str
    user_code: str
    expires_at: float
    user: str | None = None
    denied: bool = False
    last_poll: float | None = None


@dataclass
class _Token:
    user: str
    scope: str
    client_id: str
    expires_at: float


@dataclass
class OAuthTestServer:
    """The server's state; ``start()`` serves it on ``127.0.0.1``, ``stop()`` ends it."""

    client_id: str = "mailadvisor-test-client"
    client_secret: str | None = None
    """When set, the token endpoint requires it (a "confidential" client like Google's)."""
    user: str = "user1"
    """Who consents in the browser (``login_hint`` overrides it, as a user picking an account)."""
    access_ttl: int = 3600
    rotate_refresh_tokens: bool = False
    device_interval: int = 1
    deny: bool = False
    """When True the user clicks "Cancel": authorize redirects with error=access_denied."""
    host: str = "127.0.0.1"
    codes: dict[str, _Code] = field(default_factory=dict)
    devices: dict[str, _Device] = field(default_factory=dict)
    access_tokens: dict[str, _Token] = field(default_factory=dict)
    refresh_tokens: dict[str, _Token] = field(default_factory=dict)
    log: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    """Every request: path and its parameters (the tests look at grant types and PKCE)."""
    issued: list[str] = field(default_factory=list)
    """Every token and code this server ever handed out (for the no-leak checks)."""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> OAuthTestServer:
        server = self

        class Handler(_Handler):
            state = server

        self._httpd = ThreadingHTTPServer((self.host, 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None

    def __enter__(self) -> OAuthTestServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        return f"http://{self.host}:{self._httpd.server_address[1]}"

    @property
    def authorize_url(self) -> str:
        return self.base_url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.base_url + "/token"

    @property
    def device_url(self) -> str:
        return self.base_url + "/device"

    @property
    def introspect_url(self) -> str:
        return self.base_url + "/introspect"

    # -- helpers for tests ------------------------------------------------------------

    def issue(self, user: str, *, ttl: int | None = None) -> tuple[str, str]:
        """Mint an access and a refresh token for ``user`` directly (a token command's view)."""
        with self._lock:
            return self._mint(user, "mail", self.client_id, ttl)

    def expire_access_tokens(self) -> None:
        """Make every access token issued so far expired (the server rejects them)."""
        with self._lock:
            for token in self.access_tokens.values():
                token.expires_at = 0.0

    def revoke_refresh_tokens(self) -> None:
        with self._lock:
            self.refresh_tokens.clear()

    def secrets_seen(self) -> set[str]:
        """Everything secret that crossed this server: tokens, codes, verifiers, the secret."""
        found = set(self.issued)
        for _path, params in self.log:
            for key in ("code", "code_verifier", "refresh_token", "device_code", "token"):
                if params.get(key):
                    found.add(params[key])
            if params.get("client_secret"):
                found.add(params["client_secret"])
        if self.client_secret:
            found.add(self.client_secret)
        return found

    def grants(self) -> list[str]:
        """The grant types asked for at the token endpoint, in order."""
        return [p.get("grant_type", "") for path, p in self.log if path == "/token"]

    # -- endpoints --------------------------------------------------------------------

    def _mint(self, user: str, scope: str, client_id: str, ttl: int | None) -> tuple[str, str]:
        now = time.time()
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.issued += [access, refresh]
        life = self.access_ttl if ttl is None else ttl
        self.access_tokens[access] = _Token(user, scope, client_id, now + life)
        self.refresh_tokens[refresh] = _Token(user, scope, client_id, now + 86400)
        return access, refresh

    def _token_answer(self, user: str, scope: str, client_id: str) -> dict[str, Any]:
        access, refresh = self._mint(user, scope, client_id, None)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.access_ttl,
            "refresh_token": refresh,
            "scope": scope,
        }

    def authorize(self, params: Mapping[str, str]) -> str:
        """Return the Location the browser is sent to (raises OAuthError before a redirect)."""
        redirect_uri = params.get("redirect_uri", "")
        parts = urlsplit(redirect_uri)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise OAuthError("invalid_request", "redirect_uri must be a loopback URI")
        if params.get("client_id") != self.client_id:
            raise OAuthError("unauthorized_client", "unknown client_id")
        state = params.get("state")
        extra = {"state": state} if state else {}
        if params.get("response_type") != "code":
            return _add_query(redirect_uri, {"error": "unsupported_response_type", **extra})
        challenge = params.get("code_challenge", "")
        if params.get("code_challenge_method") != "S256" or len(challenge) != 43:
            return _add_query(
                redirect_uri,
                {"error": "invalid_request", "error_description": "PKCE S256 needed", **extra},
            )
        if self.deny:
            return _add_query(redirect_uri, {"error": "access_denied", **extra})
        code = secrets.token_urlsafe(16)
        with self._lock:
            self.issued.append(code)
            self.codes[code] = _Code(
                self.client_id,
                redirect_uri,
                challenge,
                params.get("scope", ""),
                params.get("login_hint") or self.user,
            )
        return _add_query(redirect_uri, {"code": code, **extra})

    def token(self, params: Mapping[str, str]) -> dict[str, Any]:
        if params.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", "unknown client", 401)
        if self.client_secret is not None and params.get("client_secret") != self.client_secret:
            raise OAuthError("invalid_client", "client authentication failed", 401)
        grant = params.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                return self._code_grant(params)
            if grant == "refresh_token":
                return self._refresh_grant(params)
            if grant == DEVICE_GRANT:
                return self._device_grant(params)
        raise OAuthError("unsupported_grant_type", str(grant))

    def _code_grant(self, params: Mapping[str, str]) -> dict[str, Any]:
        code = self.codes.pop(params.get("code", ""), None)  # single use
        if code is None:
            raise OAuthError("invalid_grant", "unknown or used code")
        if params.get("redirect_uri") != code.redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri differs from the authorize request")
        verifier = params.get("code_verifier", "")
        if not 43 <= len(verifier) <= 128 or _s256(verifier) != code.challenge:
            raise OAuthError("invalid_grant", "PKCE verification failed")
        return self._token_answer(code.user, code.scope, code.client_id)

    def _refresh_grant(self, params: Mapping[str, str]) -> dict[str, Any]:
        old = params.get("refresh_token", "")
        token = self.refresh_tokens.get(old)
        if token is None or token.client_id != params.get("client_id"):
            raise OAuthError("invalid_grant", "refresh token revoked or unknown")
        answer = self._token_answer(token.user, token.scope, token.client_id)
        if self.rotate_refresh_tokens:
            del self.refresh_tokens[old]
        else:
            # Like Google: the refresh token stays; the answer carries none.
            del self.refresh_tokens[answer.pop("refresh_token")]
        return answer

    def device_start(self, params: Mapping[str, str]) -> dict[str, Any]:
        if params.get("client_id") != self.client_id:
            raise OAuthError("invalid_client", "unknown client", 401)
        device_code = secrets.token_urlsafe(24)
        user_code = "-".join(secrets.token_hex(2).upper() for _ in range(2))
        with self._lock:
            self.issued.append(device_code)
            self.devices[device_code] = _Device(
                self.client_id, params.get("scope", ""), user_code, time.time() + 600
            )
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": self.device_url,
            "expires_in": 600,
            "interval": self.device_interval,
            "message": f"Visit {self.device_url} and enter {user_code}",
        }

    def device_approve(self, user_code: str, user: str | None = None) -> bool:
        with self._lock:
            for device in self.devices.values():
                if device.user_code == user_code:
                    device.user = user or self.user
                    device.denied = self.deny
                    return True
        return False

    def _device_grant(self, params: Mapping[str, str]) -> dict[str, Any]:
        device = self.devices.get(params.get("device_code", ""))
        if device is None:
            raise OAuthError("invalid_grant", "unknown device code")
        now = time.monotonic()
        too_fast = (
            device.last_poll is not None and now - device.last_poll < self.device_interval * 0.9
        )
        device.last_poll = now
        if time.time() > device.expires_at:
            raise OAuthError("expired_token")
        if device.denied:
            raise OAuthError("access_denied")
        if device.user is None:
            raise OAuthError("slow_down" if too_fast else "authorization_pending")
        del self.devices[params["device_code"]]
        return self._token_answer(device.user, device.scope, device.client_id)

    def introspect(self, params: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            token = self.access_tokens.get(params.get("token", ""))
            if token is None or token.expires_at < time.time():
                return {"active": False}
            return {
                "active": True,
                "username": token.user,
                "scope": token.scope,
                "client_id": token.client_id,
                "exp": int(token.expires_at),
            }


class Browser:
    """Plays the user's browser: opens the authorize URL, consents, follows the redirect.

    Pass an instance as ``open_browser``. ``before`` is an optional callback run with
    the loopback redirect URI first (e.g. to play a hostile page hitting the listener).
    """

    def __init__(self, before: Callable[[str], None] | None = None) -> None:
        self.visited: list[str] = []
        self.pages: list[tuple[int, str]] = []
        self.before = before

    def __call__(self, url: str) -> bool:
        self.visited.append(url)
        query = dict(parse_qs(urlsplit(url).query))
        if self.before is not None:
            self.before(query["redirect_uri"][0])
        # http.client, not httpx: a browser's traffic must not land in the logs under test.
        status, location, text = _get(url)
        if status == 302 and location:
            status, _, text = _get(location)
        self.pages.append((status, text))
        return True


def _get(url: str) -> tuple[int, str | None, str]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", (parts.path or "/") + (f"?{parts.query}" if parts.query else ""))
        answer = conn.getresponse()
        return answer.status, answer.getheader("Location"), answer.read().decode()
    finally:
        conn.close()


def dovecot_oauth2_config(server: OAuthTestServer, directory: Path) -> str:
    """Write Dovecot's oauth2 passdb file for ``server``; return the ``extra_config`` text.

    XOAUTH2 and OAUTHBEARER are checked against the introspection endpoint (RFC 7662,
    POST); the passwd-file passdb stays first, so password logins keep working.
    ``directory`` must be readable by Dovecot's auth process (not pytest's 0700 tmp).
    """
    conf = directory / f"dovecot-oauth2-{server.base_url.rsplit(':', 1)[1]}.conf.ext"
    conf.write_text(
        f"introspection_url = {server.introspect_url}\n"
        "introspection_mode = post\n"
        "force_introspection = yes\n"
        "username_attribute = username\n"
        "active_attribute = active\n"
        "active_value = true\n"
        "timeout_msecs = 5000\n"
    )
    conf.chmod(0o644)
    return (
        "auth_mechanisms = plain login xoauth2 oauthbearer\n"
        "passdb {\n"
        "  driver = oauth2\n"
        "  mechanisms = xoauth2 oauthbearer\n"
        f"  args = {conf}\n"
        "}\n"
    )


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _add_query(uri: str, params: Mapping[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(params)


class _Handler(BaseHTTPRequestHandler):
    state: OAuthTestServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _params(self) -> dict[str, str]:
        query = urlsplit(self.path).query
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8") if length else ""
        merged = parse_qs(query, keep_blank_values=True)
        merged.update(parse_qs(body, keep_blank_values=True))
        return {k: v[0] for k, v in merged.items()}

    def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: Mapping[str, Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        params = self._params()
        self.state.log.append((path, params))
        try:
            if path == "/authorize":
                self._send(302, b"", "text/plain", Location=self.state.authorize(params))
            elif path == "/device":
                ok = self.state.device_approve(params.get("user_code", ""))
                self._send(200 if ok else 404, b"approved" if ok else b"no", "text/plain")
            else:
                self._send(404, b"not found", "text/plain")
        except OAuthError as exc:
            self._send(exc.status, f"{exc.error}: {exc.description}".encode(), "text/plain")

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        params = self._params()
        self.state.log.append((path, params))
        try:
            if path == "/token":
                self._json(200, self.state.token(params))
            elif path == "/device":
                self._json(200, self.state.device_start(params))
            elif path == "/introspect":
                self._json(200, self.state.introspect(params))
            else:
                self._send(404, b"not found", "text/plain")
        except OAuthError as exc:
            answer = {"error": exc.error}
            if exc.description:
                answer["error_description"] = exc.description
            self._json(exc.status, answer)


__all__ = ["DEVICE_GRANT", "Browser", "OAuthError", "OAuthTestServer", "dovecot_oauth2_config"]
