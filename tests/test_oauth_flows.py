"""The OAuth2 flows against a real authorization server on loopback
(tests/harness/oauth_server.py)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from advisor.errors import AuthenticationError, ConnectError, UsageError
from advisor.exitcodes import ExitStatus
from advisor.oauth.flows import (
    DevicePrompt,
    OAuthClient,
    OAuthServerError,
    authorization_code_flow,
    check_endpoint,
    device_code_flow,
    pkce_pair,
    refresh,
    s256,
)
from tests.harness.oauth_server import Browser, OAuthTestServer


@pytest.fixture
def idp() -> Iterator[OAuthTestServer]:
    with OAuthTestServer() as server:
        yield server


def client_for(server: OAuthTestServer, **kw: Any) -> OAuthClient:
    return OAuthClient(
        authorization_endpoint=server.authorize_url,
        token_endpoint=server.token_url,
        device_authorization_endpoint=server.device_url,
        client_id=server.client_id,
        scopes=("mail", "offline_access"),
        **kw,
    )


def quiet(message: str) -> None:
    pass


def test_pkce_pair_follows_rfc_7636() -> None:
    verifier, challenge = pkce_pair()
    assert 43 <= len(verifier) <= 128
    assert set(verifier) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    )
    assert challenge == s256(verifier) and len(challenge) == 43
    # The example of RFC 7636 appendix B.
    assert s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk") == (
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    )
    assert pkce_pair()[0] != verifier


def test_browser_flow_with_pkce_state_and_loopback_redirect(idp: OAuthTestServer) -> None:
    browser = Browser()
    messages: list[str] = []
    tokens = authorization_code_flow(
        client_for(idp), open_browser=browser, notify=messages.append, login_hint="ann@x.test"
    )
    assert tokens.access_token in idp.access_tokens
    assert tokens.refresh_token in idp.refresh_tokens
    assert idp.access_tokens[tokens.access_token].user == "ann@x.test"
    assert tokens.expires_at is not None and not tokens.expired()
    # What went over the wire: S256 challenge, state, loopback redirect, matching verifier.
    query = parse_qs(urlsplit(browser.visited[0]).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["mail offline_access"]
    redirect = urlsplit(query["redirect_uri"][0])
    assert redirect.scheme == "http" and redirect.hostname == "127.0.0.1" and redirect.port
    token_request = next(p for path, p in idp.log if path == "/token")
    assert s256(token_request["code_verifier"]) == query["code_challenge"][0]
    assert token_request["redirect_uri"] == query["redirect_uri"][0]
    assert browser.pages[-1][0] == 200 and "Signed in" in browser.pages[-1][1]
    assert "browser opens" in messages[0]
    # The tokens never show in a repr (and so in no log of the object).
    assert tokens.access_token not in repr(tokens)
    assert tokens.refresh_token is not None and tokens.refresh_token not in repr(tokens)


def test_the_server_really_checks_pkce(idp: OAuthTestServer) -> None:
    """So the test above proves something: a wrong verifier is refused."""
    _verifier, challenge = pkce_pair()
    location = idp.authorize(
        {
            "client_id": idp.client_id,
            "redirect_uri": "http://127.0.0.1:1",
            "response_type": "code",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s",
        }
    )
    code = parse_qs(urlsplit(location).query)["code"][0]
    answer = httpx.post(
        idp.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": "http://127.0.0.1:1",
            "client_id": idp.client_id,
            "code_verifier": pkce_pair()[0],
        },
    )
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_grant"


def test_an_answer_with_a_wrong_state_is_refused_and_the_real_one_wins(
    idp: OAuthTestServer,
) -> None:
    hostile: list[int] = []

    def attacker(redirect_uri: str) -> None:
        # A web page trying to plant its own code on the listener (RFC 6749 10.12).
        page = httpx.get(redirect_uri + "/?code=planted&state=guess")
        hostile.append(page.status_code)

    tokens = authorization_code_flow(client_for(idp), open_browser=Browser(attacker), notify=quiet)
    assert hostile == [400]
    token_request = next(p for path, p in idp.log if path == "/token")
    assert token_request["code"] != "planted"
    assert tokens.access_token in idp.access_tokens


def test_a_silent_connection_or_odd_state_cannot_block_the_listener(
    idp: OAuthTestServer,
) -> None:
    held: list[socket.socket] = []

    def attacker(redirect_uri: str) -> None:
        port = urlsplit(redirect_uri).port
        assert port is not None
        held.append(socket.create_connection(("127.0.0.1", port)))  # says nothing
        page = httpx.get(redirect_uri + "/?code=x&state=%C3%A9t%C3%A9")  # non-ASCII state
        assert page.status_code == 400

    started = time.monotonic()
    try:
        tokens = authorization_code_flow(
            client_for(idp), open_browser=Browser(attacker), notify=quiet
        )
    finally:
        for sock in held:
            sock.close()
    assert tokens.access_token in idp.access_tokens
    assert time.monotonic() - started < 5


def test_no_answer_times_out_and_says_so(idp: OAuthTestServer) -> None:
    def only_attacker(url: str) -> bool:
        redirect = parse_qs(urlsplit(url).query)["redirect_uri"][0]
        httpx.get(redirect + "/?code=planted&state=guess")
        return False  # "no browser": the URL is shown instead

    shown: list[str] = []
    with pytest.raises(AuthenticationError) as info:
        authorization_code_flow(
            client_for(idp), open_browser=only_attacker, notify=shown.append, timeout=0.3
        )
    assert "within 0 s" in str(info.value) and "wrong state" in str(info.value)
    assert info.value.exit_status is ExitStatus.AUTH_FAILED
    assert "Open this address" in shown[0] and idp.authorize_url in shown[0]
    assert "ssh -L" in shown[0]
    assert not any(path == "/token" for path, _ in idp.log)


def test_declined_consent_is_an_authentication_error(idp: OAuthTestServer) -> None:
    idp.deny = True
    with pytest.raises(OAuthServerError) as info:
        authorization_code_flow(client_for(idp), open_browser=Browser(), notify=quiet)
    assert info.value.error == "access_denied" and "declined" in str(info.value)
    assert info.value.exit_status is ExitStatus.AUTH_FAILED


def test_confidential_client_sends_its_secret_and_a_wrong_one_fails(
    idp: OAuthTestServer,
) -> None:
    idp.client_secret = "s3cr3t-client-value"
    tokens = authorization_code_flow(
        client_for(idp, client_secret="s3cr3t-client-value"), open_browser=Browser(), notify=quiet
    )
    assert tokens.access_token in idp.access_tokens
    with pytest.raises(OAuthServerError) as info:
        authorization_code_flow(
            client_for(idp, client_secret="wrong-secret-value"),
            open_browser=Browser(),
            notify=quiet,
        )
    assert info.value.error == "invalid_client" and "client id" in str(info.value)
    assert "wrong-secret-value" not in str(info.value)


@pytest.mark.parametrize("rotate", [False, True])
def test_refresh_keeps_or_rotates_the_refresh_token(idp: OAuthTestServer, rotate: bool) -> None:
    idp.rotate_refresh_tokens = rotate
    first = authorization_code_flow(client_for(idp), open_browser=Browser(), notify=quiet)
    assert first.refresh_token is not None
    again = refresh(client_for(idp), first.refresh_token)
    assert again.access_token != first.access_token and again.access_token in idp.access_tokens
    if rotate:
        assert again.refresh_token not in (None, first.refresh_token)
        with pytest.raises(OAuthServerError) as info:
            refresh(client_for(idp), first.refresh_token)  # the old one is spent
        assert info.value.error == "invalid_grant"
        assert first.refresh_token not in str(info.value)
    else:
        assert again.refresh_token == first.refresh_token
    assert idp.grants()[-1] == "refresh_token"


def test_device_flow_polls_through_pending_and_slow_down(idp: OAuthTestServer) -> None:
    prompts: list[DevicePrompt] = []
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) == 4:
            # The user enters the code on their phone meanwhile.
            prompt = prompts[0]
            page = httpx.get(prompt.verification_uri, params={"user_code": prompt.user_code})
            assert page.status_code == 200

    tokens = device_code_flow(client_for(idp), show=prompts.append, sleep=sleep)
    assert tokens.access_token in idp.access_tokens
    assert prompts[0].verification_uri == idp.device_url and "-" in prompts[0].user_code
    assert prompts[0].user_code in prompts[0].text()
    # No real sleeping here, so the server answered slow_down: each adds 5 s (RFC 8628 3.5).
    assert sleeps[0] == 1 and sleeps[1] == 1 and sleeps[2] == 6 and sleeps[3] == 11
    answers = [p for path, p in idp.log if path == "/token"]
    assert len(answers) == 4


def test_device_flow_declined(idp: OAuthTestServer) -> None:
    idp.deny = True

    def show(prompt: DevicePrompt) -> None:
        idp.device_approve(prompt.user_code)

    with pytest.raises(OAuthServerError) as info:
        device_code_flow(client_for(idp), show=show, sleep=lambda s: None)
    assert info.value.error == "access_denied"


def test_device_flow_gives_up_when_the_code_expires(idp: OAuthTestServer) -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += 400  # the server's codes live 600 s

    with pytest.raises(AuthenticationError, match="expired"):
        device_code_flow(client_for(idp), show=lambda p: None, sleep=sleep, clock=lambda: now[0])


def test_device_flow_needs_an_endpoint(idp: OAuthTestServer) -> None:
    client = OAuthClient(idp.authorize_url, idp.token_url, idp.client_id, ("mail",))
    with pytest.raises(UsageError, match="no device sign-in"):
        device_code_flow(client, show=lambda p: None)


@pytest.mark.parametrize(
    "url",
    ["http://oauth.example.com/token", "ftp://127.0.0.1/token", "https:///token", "token"],
)
def test_secrets_go_only_to_https_or_this_machine(url: str) -> None:
    with pytest.raises(UsageError, match="HTTPS"):
        check_endpoint(url, "token endpoint")
    client = OAuthClient("https://a.example/auth", url, "id", ("mail",))
    with pytest.raises(UsageError):
        refresh(client, "rt-some-refresh-token")


@pytest.mark.parametrize(
    "url", ["https://oauth2.googleapis.com/token", "http://127.0.0.1:9/t", "http://[::1]:9/t"]
)
def test_https_and_loopback_endpoints_are_accepted(url: str) -> None:
    check_endpoint(url, "token endpoint")


class _Hostile(BaseHTTPRequestHandler):
    """A token endpoint that echoes what it got and sometimes answers garbage."""

    mode = "echo"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        params = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        if self.mode == "echo":
            body = json.dumps(
                {
                    "error": "invalid_request",
                    "error_description": f"bad token {params.get('refresh_token')} "
                    f"for {params.get('client_secret')}",
                }
            ).encode()
            status, kind = 400, "application/json"
        else:
            body, status, kind = b"<html>Service Unavailable</html>", 503, "text/html"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def hostile() -> Iterator[tuple[str, type[_Hostile]]]:
    handler = type("Handler", (_Hostile,), {})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/token", handler
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_server_echoing_secrets_gets_them_redacted(
    hostile: tuple[str, type[_Hostile]],
) -> None:
    url, _handler = hostile
    client = OAuthClient("https://a.example/auth", url, "id", ("mail",), client_secret="cs-9876")
    with pytest.raises(OAuthServerError) as info:
        refresh(client, "rt-the-refresh-token-1234")
    message = str(info.value)
    assert "invalid_request" in message and "[redacted]" in message
    assert "rt-the-refresh-token-1234" not in message and "cs-9876" not in message


def test_a_non_json_answer_is_a_connect_error(hostile: tuple[str, type[_Hostile]]) -> None:
    url, handler = hostile
    handler.mode = "html"
    client = OAuthClient("https://a.example/auth", url, "id", ("mail",))
    with pytest.raises(ConnectError, match="HTTP 503 without JSON") as info:
        refresh(client, "rt-the-refresh-token-1234")
    assert info.value.exit_status is ExitStatus.CONNECT_FAILED


def test_an_unreachable_server_is_a_connect_error() -> None:
    from tests.harness.dovecot import find_free_ports

    (port,) = find_free_ports("127.0.0.1")
    client = OAuthClient("https://a.example/auth", f"http://127.0.0.1:{port}/t", "id", ("m",))
    with pytest.raises(ConnectError, match=r"cannot reach the sign-in server 127\.0\.0\.1"):
        refresh(client, "rt-the-refresh-token-1234")
