"""The OAuth2 flows a desktop mail client needs, spoken directly over HTTP.

* authorization code with PKCE (RFC 6749 4.1, RFC 7636) in the system browser,
  the answer caught by a one-shot listener on a loopback port (RFC 8252);
* the device authorization grant (RFC 8628) for machines without a browser;
* the refresh grant (RFC 6749 6).

Why not msal, authlib or google-auth-oauthlib: msal speaks only to Microsoft
(and looks its authority up on the internet), google-auth-oauthlib only to
Google and on requests, and neither has the other's flow; authlib has no
loopback listener and no device-flow client. The three flows are small
and standard, so one implementation on httpx serves every provider, and
the tests run it unchanged against a real authorization server on loopback.

Secrets (codes, verifiers, tokens, the client secret) never go into a log line
or an exception message; text a server sends back is scrubbed of them before
it is shown.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import logging
import secrets
import time
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx

from advisor.errors import AuthenticationError, ConnectError, UsageError
from advisor.oauth.loopback import Listener
from advisor.plugins.types import OAuthConfig

log = logging.getLogger(__name__)

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30.0
BROWSER_TIMEOUT = 300.0
"""How long the browser sign-in may take before it is given up."""
DEFAULT_DEVICE_INTERVAL = 5
"""RFC 8628 3.2: the polling interval when the server names none."""
DEFAULT_LIFETIME = 3600
"""Assumed access-token lifetime when the server does not say (RFC 6749 recommends saying)."""
_MAX_ANSWER = 64 * 1024
"""A token endpoint's JSON answer is a few kB; more is a broken or hostile server."""


@dataclass(frozen=True)
class OAuthClient:
    """One client registration at one authorization server: what every flow needs."""

    authorization_endpoint: str
    token_endpoint: str
    client_id: str
    scopes: tuple[str, ...]
    client_secret: str | None = field(default=None, repr=False)
    device_authorization_endpoint: str | None = None
    redirect_host: str = "127.0.0.1"
    extra_authorize_params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_config(
        cls, config: OAuthConfig, client_id: str, client_secret: str | None = None
    ) -> OAuthClient:
        return cls(
            authorization_endpoint=config.authorization_endpoint,
            token_endpoint=config.token_endpoint,
            client_id=client_id,
            scopes=tuple(config.scopes),
            client_secret=client_secret,
            device_authorization_endpoint=config.device_authorization_endpoint,
            redirect_host=config.redirect_host,
            extra_authorize_params=tuple(config.extra_authorize_params),
        )

    @property
    def scope(self) -> str:
        return " ".join(self.scopes)


@dataclass(frozen=True)
class TokenSet:
    """What a token endpoint gave: tokens are hidden from repr() so they never reach a log."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None
    """Seconds since the epoch."""
    scope: str = ""

    def expired(self, now: float | None = None, margin: float = 60.0) -> bool:
        """True when the access token is (about to be) unusable."""
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - margin


@dataclass(frozen=True)
class DevicePrompt:
    """What the user must do to finish a device sign-in (RFC 8628 3.3)."""

    verification_uri: str
    user_code: str
    expires_in: int
    verification_uri_complete: str | None = None

    def text(self) -> str:
        return (
            f"To sign in, open {self.verification_uri} in a browser on any device "
            f"and enter the code {self.user_code} (valid for {self.expires_in // 60} minutes)."
        )


class OAuthServerError(AuthenticationError):
    """The authorization server answered with an RFC 6749 error."""

    def __init__(self, message: str, error: str, description: str = "") -> None:
        super().__init__(message)
        self.error = error
        self.description = description


Notify = Callable[[str], None]


def notify_stderr(message: str) -> None:
    """The default way to tell the user something during sign-in, for callers that pass
    none: a warning on the ``advisor.oauth.flows`` logger (which Python shows on stderr when
    the application set no handler). The CLI passes its own ``notify``."""
    log.warning("%s", message)


# --- PKCE and URLs ---------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    """A fresh code verifier (64 unreserved characters) and its S256 challenge (RFC 7636)."""
    verifier = secrets.token_urlsafe(48)
    return verifier, s256(verifier)


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str, what: str) -> None:
    """Refuse to send codes or tokens anywhere but HTTPS (plain HTTP only to this machine)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return
    raise UsageError(
        f"the OAuth2 {what} {url!r} is not an https:// address; "
        "sign-in secrets are only sent over HTTPS (plain http only to this computer)"
    )


def authorization_url(
    client: OAuthClient,
    redirect_uri: str,
    state: str,
    challenge: str,
    login_hint: str | None = None,
) -> str:
    """The address the browser opens (RFC 6749 4.1.1 with RFC 7636 4.3)."""
    params = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": redirect_uri,
        "scope": client.scope,
        "state": state,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    params.update(dict(client.extra_authorize_params))
    sep = "&" if urlsplit(client.authorization_endpoint).query else "?"
    return client.authorization_endpoint + sep + urlencode(params)


# --- talking to the token endpoint --------------------------------------------


def redact(text: str, *hidden: str | None) -> str:
    """``text`` with every secret in ``hidden`` replaced (a server may echo what it got)."""
    for value in hidden:
        if value and len(value) >= 4:
            text = text.replace(value, "[redacted]")
    return text


_HINTS = {
    "invalid_client": "the client id (or secret) was not accepted: check [auth] client_id "
    "and the client secret, and that the client is registered as a desktop/public app",
    "unauthorized_client": "this client may not use this kind of sign-in; check its "
    "registration (public client flows, redirect URI)",
    "invalid_grant": "the sign-in is no longer valid (expired, revoked or the password "
    "changed); sign in again",
    "invalid_scope": "the provider refused the mail permissions; check the client's API "
    "permissions",
    "access_denied": "the sign-in was declined",
    "expired_token": "the code expired before the sign-in was finished; start again",
}


def _post(
    http: httpx.Client | None,
    url: str,
    data: Mapping[str, str],
    what: str,
    hidden: tuple[str | None, ...],
) -> dict[str, Any]:
    """POST a form, return the JSON object; errors carry no secret."""
    check_endpoint(url, what)
    host = urlsplit(url).hostname or url
    log.debug("OAuth2 %s request to %s (%s)", what, host, data.get("grant_type", "-"))
    own = http is None
    client = http or httpx.Client(timeout=HTTP_TIMEOUT)
    try:
        response = client.post(url, data=dict(data), headers={"Accept": "application/json"})
        body = response.content[:_MAX_ANSWER]
    except httpx.HTTPError as exc:
        raise ConnectError(
            f"cannot reach the sign-in server {host}: {type(exc).__name__}"
            + (f" ({redact(str(exc), *hidden)})" if str(exc) else "")
        ) from None
    finally:
        if own:
            client.close()
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise ConnectError(
            f"the sign-in server {host} answered HTTP {response.status_code} without JSON "
            f"to the {what} request; is {url} the right endpoint?"
        )
    error = answer.get("error")
    if error is not None or response.status_code >= 400:
        code = str(error or f"HTTP {response.status_code}")[:100]
        description = redact(str(answer.get("error_description") or "")[:500], *hidden)
        hint = _HINTS.get(code, "")
        message = f"the sign-in server {host} refused the {what} request: {code}"
        if description:
            message += f" ({description.strip()})"
        if hint:
            message += f"; {hint}"
        raise OAuthServerError(message, code, description)
    return answer


def _token_set(
    answer: Mapping[str, Any], host: str, previous_refresh: str | None = None
) -> TokenSet:
    access = answer.get("access_token")
    if not isinstance(access, str) or not access:
        raise AuthenticationError(f"the sign-in server {host} sent no access token")
    kind = answer.get("token_type", "Bearer")
    if not isinstance(kind, str) or kind.lower() != "bearer":
        raise AuthenticationError(
            f"the sign-in server {host} sent a {str(kind)[:30]!r} token; mail needs a Bearer token"
        )
    try:
        lifetime = int(answer.get("expires_in", DEFAULT_LIFETIME))
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    refresh = answer.get("refresh_token")
    if not isinstance(refresh, str) or not refresh:
        # Google keeps the refresh token unchanged and sends none on refresh.
        refresh = previous_refresh
    scope = answer.get("scope")
    return TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=time.time() + max(lifetime, 0),
        scope=scope if isinstance(scope, str) else "",
    )


def _client_auth(client: OAuthClient) -> dict[str, str]:
    # Desktop apps are public clients (RFC 8252 8.4); Google still issues a "secret" for
    # them, sent in the body (client_secret_post) as its installed-app flow expects.
    data = {"client_id": client.client_id}
    if client.client_secret:
        data["client_secret"] = client.client_secret
    return data


def refresh(
    client: OAuthClient, refresh_token: str, *, http: httpx.Client | None = None
) -> TokenSet:
    """A new access token from a refresh token (RFC 6749 6)."""
    data = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "scope": client.scope,
        **_client_auth(client),
    }
    answer = _post(
        http, client.token_endpoint, data, "token refresh", (refresh_token, client.client_secret)
    )
    return _token_set(answer, _host(client.token_endpoint), previous_refresh=refresh_token)


def _host(url: str) -> str:
    return urlsplit(url).hostname or url


# --- authorization code + PKCE in the browser -----------------------------------


def authorization_code_flow(
    client: OAuthClient,
    *,
    open_browser: Callable[[str], object] | None = None,
    notify: Notify = notify_stderr,
    timeout: float = BROWSER_TIMEOUT,
    login_hint: str | None = None,
    http: httpx.Client | None = None,
) -> TokenSet:
    """Sign in through the browser: PKCE, loopback redirect, state check, code exchange.

    ``open_browser`` opens the URL (default :func:`webbrowser.open`); tests pass one
    that plays the user's browser. If it reports failure the URL is shown instead.
    """
    check_endpoint(client.authorization_endpoint, "authorization endpoint")
    check_endpoint(client.token_endpoint, "token endpoint")
    opener = open_browser if open_browser is not None else webbrowser.open
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(24)
    with Listener(client.redirect_host, state) as listener:
        url = authorization_url(client, listener.redirect_uri, state, challenge, login_hint)
        try:
            opened = bool(opener(url))
        except webbrowser.Error:
            opened = False
        minutes = f"{timeout / 60:.0f} minutes" if timeout >= 120 else f"{timeout:.0f} s"
        if opened:
            notify(
                "Your browser opens for the sign-in. If it does not, open this address "
                f"on this computer:\n{url}\nWaiting up to {minutes}..."
            )
        else:
            notify(
                "Open this address in a browser on this computer to sign in:\n"
                f"{url}\n(From another machine, forward the port first: "
                f"ssh -L {listener.port}:127.0.0.1:{listener.port} this-host)\n"
                f"Waiting up to {minutes}..."
            )
        answer = listener.wait(timeout)
        foreign = listener.foreign_answers
    if answer is None:
        extra = (
            f"; {foreign} answer(s) with a wrong state were refused (RFC 6749 10.12)"
            if foreign
            else ""
        )
        raise AuthenticationError(
            f"no sign-in answer from the browser within {timeout:.0f} s{extra}; start again"
        )
    if "error" in answer:
        code = answer["error"][:100]
        description = answer.get("error_description", "")[:300]
        hint = _HINTS.get(code, "")
        message = f"the sign-in in the browser failed: {code}"
        if description:
            message += f" ({description})"
        if hint:
            message += f"; {hint}"
        raise OAuthServerError(message, code, description)
    code_value = answer.get("code", "")
    data = {
        "grant_type": "authorization_code",
        "code": code_value,
        "redirect_uri": listener.redirect_uri,
        "code_verifier": verifier,
        **_client_auth(client),
    }
    result = _post(
        http,
        client.token_endpoint,
        data,
        "authorization code",
        (code_value, verifier, client.client_secret),
    )
    return _token_set(result, _host(client.token_endpoint))


# --- device authorization grant (RFC 8628) --------------------------------------


def device_code_flow(
    client: OAuthClient,
    *,
    show: Callable[[DevicePrompt], None] | None = None,
    http: httpx.Client | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> TokenSet:
    """Sign in with a code the user enters in any browser; polls until done (RFC 8628)."""
    endpoint = client.device_authorization_endpoint
    if not endpoint:
        raise UsageError("this provider offers no device sign-in; use the browser sign-in")
    check_endpoint(client.token_endpoint, "token endpoint")
    if http is None:  # one connection pool for all the polling
        with httpx.Client(timeout=HTTP_TIMEOUT) as own:
            return device_code_flow(client, show=show, http=own, sleep=sleep, clock=clock)
    host = _host(endpoint)
    start = _post(
        http,
        endpoint,
        {"scope": client.scope, **_client_auth(client)},
        "device authorization",
        (client.client_secret,),
    )
    device_code = start.get("device_code")
    user_code = start.get("user_code")
    # Google says verification_url, the RFC verification_uri.
    uri = start.get("verification_uri") or start.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, uri)):
        raise AuthenticationError(f"the sign-in server {host} sent an incomplete device answer")
    assert isinstance(device_code, str) and isinstance(user_code, str) and isinstance(uri, str)
    try:
        expires_in = min(int(start.get("expires_in", 900)), 3600)
        # At least a second between polls, whatever a broken server says.
        interval = max(float(start.get("interval", DEFAULT_DEVICE_INTERVAL)), 1.0)
    except (TypeError, ValueError):
        expires_in, interval = 900, float(DEFAULT_DEVICE_INTERVAL)
    complete = start.get("verification_uri_complete")
    prompt = DevicePrompt(
        uri, user_code, expires_in, complete if isinstance(complete, str) else None
    )
    (show or (lambda p: notify_stderr(p.text())))(prompt)

    deadline = clock() + expires_in
    data = {"grant_type": DEVICE_GRANT, "device_code": device_code, **_client_auth(client)}
    hidden = (device_code, client.client_secret)
    while True:
        sleep(interval)
        if clock() > deadline:
            raise AuthenticationError(
                "the device code expired before the sign-in was finished; start again"
            )
        try:
            answer = _post(http, client.token_endpoint, data, "device token", hidden)
        except OAuthServerError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval += 5  # RFC 8628 3.5
                continue
            raise
        return _token_set(answer, _host(client.token_endpoint))
