"""Signing in: which server (the user's word on a doubtful one), the password, and the
ways out of a failed test (STARTTLS, a CA file, plaintext on a LAN, another server)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from rich.markup import escape

from advisor.checks import CheckStatus
from advisor.checks import parse_server_option as _parse_server_option
from advisor.cli.wizard.questions import Option, Prompt, QuestionKind, not_empty
from advisor.cli.wizard.steps.checking import CheckingStep
from advisor.cli.wizard.texts import KIND, ROLE
from advisor.discovery import Origin
from advisor.errors import MailadvisorError
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import AuthMechanism, AuthMethod, Endpoint, Protocol, Security
from advisor.profile import AuthConfig, AuthKind, ServerConfig


class SignInStep(CheckingStep):
    """Step 6: the server and the sign-in, tested until they work or the user stops."""

    # --- 6. signing in and testing -----------------------------------------------------
    def _sign_in_possible(self, protocol: Protocol) -> bool:
        """False when the provider takes no password at all (browser sign-in only)."""
        assert self.detection is not None
        methods = self.plugins.auth_methods(self.detection.provider, self.email)
        return not methods or any(m.mechanism is not AuthMechanism.OAUTH2 for m in methods)

    def _password_method(self) -> AuthMethod | None:
        """The provider's first way to sign in with a password (or app password)."""
        assert self.detection is not None
        methods = self.plugins.auth_methods(self.detection.provider, self.email)
        return next((m for m in methods if m.mechanism is not AuthMechanism.OAUTH2), None)

    def _server_for(self, protocol: Protocol) -> Endpoint:
        """The server to test: what was found (after the user's word on a doubtful one)."""
        assert self.detection is not None
        found = next(
            (f for f in self.detection.servers if f.endpoint.protocol is protocol),
            None,
        )
        if found is None:
            self.say(f"I do not know your provider's {KIND[protocol]} server.")
            return self._ask_server(protocol)
        e = found.endpoint
        if found.origin is Origin.GUESS:
            answer = self.ask(
                Prompt(
                    "server_check",
                    QuestionKind.SELECT,
                    f"Shall I try {e.host} as your {KIND[protocol]} server?",
                    "It is only a guess from your address; your provider's help pages name "
                    f"the right one (search for '{KIND[protocol]} settings').",
                    "try",
                    (
                        Option(f"Try {e.host}", "try"),
                        Option("Let me type the server name", "type"),
                    ),
                )
            )
        elif not found.trusted:
            self.say(f"[yellow]Careful:[/] {escape(found.note)}")
            answer = self.ask(
                Prompt(
                    "server_check",
                    QuestionKind.SELECT,
                    f"Is {e.host} really your provider's {KIND[protocol]} server?",
                    "It was learnt in a way someone could fake; your provider's help "
                    "pages name the right one.",
                    "type",
                    (
                        Option("Yes: my provider's help pages name it", "try"),
                        Option("No, or not sure: let me type the server name", "type"),
                    ),
                )
            )
        else:
            return e
        return e if answer == "try" else self._ask_server(protocol)

    def _ask_server(self, protocol: Protocol) -> Endpoint:
        def valid(text: str) -> bool | str:
            try:
                _parse_server_option(protocol, text)
            except MailadvisorError as exc:
                return str(exc)
            return True

        example = "imap" if protocol is Protocol.IMAP else "pop"
        answer: str = self.ask(
            Prompt(
                "server",
                QuestionKind.TEXT,
                f"What is the name of your provider's {KIND[protocol]} server?",
                f"From your provider's help pages, like {example}.example.org; add :port only "
                "if they give one.",
                "",
                validate=valid,
            )
        )
        return _parse_server_option(protocol, answer.strip())

    def _ask_password(self) -> None:
        method = self._password_method()
        kept = "It stays in memory while I run and is never written down."
        if method is not None and method.mechanism is AuthMechanism.APP_PASSWORD:
            message = f"The app password for {self.email}?"
            hint = f"Not your usual password: an app password. {method.note} {kept}"
        else:
            message = f"The password for {self.email}?"
            note = method.note if method is not None and method.note else ""
            hint = f"The password of your mail account. {note} {kept}"
        self._password = self.ask(
            Prompt("password", QuestionKind.PASSWORD, message, " ".join(hint.split()), "")
        )

    def _sign_in(self, protocol: Protocol) -> ExitStatus:
        """Test the server and the sign-in for ``protocol`` until it works or the user stops."""
        self.heading(f"Signing in ({ROLE[protocol]})")
        endpoint = self._server_for(protocol)
        if not self.username:
            self.username = endpoint.username or self.email
        if self._password is None:
            self._ask_password()
        while True:
            self.say(
                f"Testing {escape(endpoint.host)} port {endpoint.port} as {escape(self.username)}:"
            )
            try:
                report = self._test(protocol, endpoint)
            except MailadvisorError as exc:
                # A certificate file that is no certificate, say: fixable, not the end.
                self.say(f"[bold red]That did not work:[/] {escape(str(exc))}")
                if self.ca_file is not None:
                    self.say("The certificate file cannot be used; give another one.")
                    self.ca_file = self._ask_ca_file()
                    continue
                remedy = self._remedy("setup", endpoint)
                if remedy == "stop":
                    return exc.exit_status
                if remedy == "server":
                    endpoint = self._ask_server(protocol)
                continue
            failed = next((r for r in report.results if r.status is CheckStatus.FAIL), None)
            if failed is None:
                self.endpoints[protocol] = endpoint
                self.say("[green]It works.[/]")
                if protocol is Protocol.IMAP:
                    self._remember_server(endpoint)
                return ExitStatus.OK
            self._explain(failed, endpoint)
            step = failed.id.partition(".")[2]
            remedy = self._remedy(step, endpoint, failed.detail)
            if remedy == "stop":
                self.say("Nothing was changed. Run mailadvisor again when you have the details.")
                return failed.exit_status
            if remedy == "server":
                endpoint = self._ask_server(protocol)
            elif remedy == "starttls":
                endpoint = replace(
                    endpoint, security=Security.STARTTLS, port=_plain_port(protocol, endpoint)
                )
            elif remedy == "plain":
                self.say(
                    "[yellow]Careful:[/] without encryption your password and mail cross the "
                    "network readable to anyone on the way. Only for a server on this "
                    "computer or your own network."
                )
                endpoint = replace(endpoint, security=Security.NONE)
                self.allow_insecure = True
            elif remedy == "ca_file":
                self.ca_file = self._ask_ca_file()
            elif remedy == "login":
                self.username = self.ask(
                    Prompt(
                        "username",
                        QuestionKind.TEXT,
                        "Your user name?",
                        "Usually your full email address; some providers use only the part "
                        "before the @.",
                        self.username,
                        validate=not_empty,
                    )
                ).strip()
                self._ask_password()

    def _remedy(self, step: str, endpoint: Endpoint, detail: str = "") -> str:
        options = []
        if step in ("auth", "login", "list", "stat"):
            options.append(Option("Type my user name and password again", "login"))
        certificate = step == "tls" and "certificate" in detail.lower()
        if certificate:
            options.append(
                Option("Use the certificate file of my server's own authority", "ca_file")
            )
        if step in ("tls", "tcp") and endpoint.security is Security.TLS:
            # Many servers speak plaintext first and switch on encryption (STARTTLS),
            # on 143 or 110: a TLS handshake there fails like a bad certificate would.
            port = _plain_port(endpoint.protocol, endpoint)
            options.append(
                Option(f"Try STARTTLS (encryption switched on after connecting) on port {port}",
                       "starttls")
            )  # fmt: skip
        if step == "tls" and not certificate:
            options.append(
                Option("Use the certificate file of my server's own authority", "ca_file")
            )
        if step in ("tls", "starttls", "tcp") and is_local_network(endpoint.host):
            options.append(
                Option("Connect without encryption (only for this computer or my own network)",
                       "plain")
            )  # fmt: skip
        options.append(Option("Type another server name", "server"))
        options.append(Option("Try again", "again"))
        options.append(Option("Stop here", "stop"))
        answer: str = self.ask(
            Prompt(
                "fix",
                QuestionKind.SELECT,
                "What would you like to do?",
                "You can also stop and come back later.",
                options[0].value,
                tuple(options),
            )
        )
        return answer

    def _ask_ca_file(self) -> Path:
        def valid(text: str) -> bool | str:
            path = Path(text.strip()).expanduser()
            return True if path.is_file() else f"There is no file {text.strip()!r}."

        answer: str = self.ask(
            Prompt(
                "ca_file",
                QuestionKind.TEXT,
                "Where is the certificate file of your server's authority?",
                "A .pem or .crt file your administrator gives you, for example ~/company-ca.pem.",
                str(self.ca_file or ""),
                validate=valid,
            )
        )
        return Path(answer.strip()).expanduser().resolve()

    def _remember_server(self, endpoint: Endpoint) -> None:
        """Write the tested IMAP server into the profile, so a re-run uses the same one."""
        self.profile.server = ServerConfig(
            host=endpoint.host,
            port=endpoint.port,
            security=endpoint.security,
            username=self.username if self.username != self.email else None,
            ca_file=self.ca_file,
            allow_insecure=self.allow_insecure,
        )
        self.profile.auth = AuthConfig(method=AuthKind.PASSWORD)


def _plain_port(protocol: Protocol, endpoint: Endpoint) -> int:
    """The port for STARTTLS: the one given unless it is the implicit-TLS one."""
    implicit = {Protocol.IMAP: 993, Protocol.POP3: 995, Protocol.SMTP: 465}
    usual = {Protocol.IMAP: 143, Protocol.POP3: 110, Protocol.SMTP: 587}
    return usual[protocol] if endpoint.port == implicit.get(protocol) else endpoint.port


def is_local_network(host: str) -> bool:
    """Loopback or a private network address (RFC 1918, ULA, link-local), or localhost."""
    import ipaddress

    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_private or address.is_link_local
