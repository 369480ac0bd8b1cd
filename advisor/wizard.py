"""The guided wizard: what ``mailadvisor`` does when it is started without arguments.

It is written for someone who has never heard of IMAP, and goes:

1. look for the mail that mail programs keep on this computer, and measure it (how
   much mail, how much free disk): nothing the program can measure is asked;
2. ask about devices, webmail, connection, backups... (the questions of
   :data:`advisor.advice.ANSWER_HELP`), each with a suggested answer and a one-line hint;
3. give the advice (POP3 or IMAP) with every reason;
4. ask the email address, find the provider and its servers, and weigh what the
   provider says (no POP3 at all, a switch to turn on);
5. let the user choose (the advice is the default);
6. sign in and test the connection step by step, explaining any failure in plain words
   and offering a way out; with IMAP, the server's storage limit is measured
   (GETQUOTAROOT) and weighed too;
7. IMAP: choose the local store, show the folder plan (a dry run), ask, then copy the
   mail with a progress bar and show the report (holding the account's run lock, as
   ``mailadvisor migrate`` does: see :mod:`advisor.run_lock`). POP3: test the POP3
   sign-in, show the settings to type into the mail program, and explain "leave a copy
   on the server" and backups;
8. offer to save everything as a profile file (never with the password in it), so
   ``mailadvisor migrate --profile FILE`` repeats the run without questions.

The wizard fills the same :class:`~advisor.profile.Profile` a profile file gives.
Questions go through an :class:`~advisor.questions.Asker` (questionary in a terminal;
tests drive the same questionary prompts through a pipe). Ctrl-C (or Ctrl-D) at a question becomes
:class:`WizardCancelled`, elsewhere a :class:`KeyboardInterrupt`; :func:`run_wizard`
turns both into exit status 130. Nothing is written before the user agrees to it: the
migration's journal is consistent whenever it stops (the migration flushes it on the
way out), and the profile file is written in one step at the very end.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from typing import Protocol as TypingProtocol

import imapclient
import imapclient.exceptions
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from advisor.account import AccountAccess, resolve_account
from advisor.advice import (
    ANSWER_HELP,
    SECURITY_WORDS,
    Advice,
    AdviceAnswers,
    Connectivity,
    Push,
    advise,
    format_size,
)
from advisor.checks import CheckReport, CheckResult, CheckStatus, CheckTarget, run_checks
from advisor.checks import parse_server_option as _parse_server_option
from advisor.cli.advise_cmd import render_advice
from advisor.cli.migrate_cmd import render_report
from advisor.cli.render import stdout
from advisor.discovery import FALLBACK_PROVIDER, Detection, Found, Origin, detect
from advisor.errors import MailadvisorError
from advisor.exitcodes import ExitStatus
from advisor.migration import Migration, MigrationOptions, MigrationReport, not_migrated_path
from advisor.migration.journal import MigrationJournal, default_journal_path
from advisor.migration.quota import QuotaCheck, WhenFull, read_room
from advisor.migration.run_lock import AccountBusyError, account_lock
from advisor.platform_compat import config_dir, set_env_secretly_hint, shell_quote, write_private
from advisor.plugin_manager import PluginHost, load_plugins
from advisor.profile import (
    AccountConfig,
    AuthConfig,
    AuthKind,
    Profile,
    ServerConfig,
    SourceConfig,
    SourceKind,
    dump_profile,
    load_profile,
)
from advisor.provider import AuthMechanism, AuthMethod, Endpoint, Protocol, Security, ServerSettings
from advisor.questions import (
    Asker,
    Option,
    Prompt,
    QuestionaryAsker,
    QuestionKind,
    WizardCancelled,
    not_empty,
)
from advisor.secrets import KEYRING_SERVICE, resolve_secret
from advisor.stores.discover import discover_stores
from advisor.stores.scan import ScannedStore, ScanTarget, scan_stores
from advisor.stores.source import reader_for

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
DEFAULT_PASSWORD_ENV = "MAILADVISOR_PASSWORD"


def _email_ok(text: str) -> bool | str:
    return True if _EMAIL.match(text.strip()) else "An address looks like alex@example.org."


# --- what the wizard produces ----------------------------------------------------------


@dataclass
class WizardResult:
    """How a wizard run ended (for the CLI's exit status and for tests)."""

    status: ExitStatus
    profile: Profile
    """What the wizard filled in (also when it was not saved)."""
    protocol: Protocol | None = None
    """What the user chose; None when they stopped before choosing."""
    advice: Advice | None = None
    plan: MigrationReport | None = None
    report: MigrationReport | None = None
    profile_path: Path | None = None
    """Where the profile was saved, if it was."""
    device_files: dict[Any, Path] = field(default_factory=dict)
    """What was written for the user's other devices, by kind of device."""


class _BarProgress:
    """The migration's progress, as a bar of messages on the console."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._task = progress.add_task("Copying", total=total or None)

    def advance(self, messages: int, size: int) -> None:
        self._progress.update(self._task, advance=messages)

    def note(self, text: str) -> None:
        self._progress.console.print(escape(text))


class MigrationProgress(TypingProtocol):
    """What :class:`~advisor.migrate.Migration` reports progress to."""

    def advance(self, messages: int, size: int) -> None: ...

    def note(self, text: str) -> None: ...


# Plain words for each step of :func:`advisor.checks.run_checks`.
_STEP_WORDS = {
    "dns": "Finding the server",
    "tcp": "Reaching it",
    "starttls": "Switching on encryption",
    "tls": "Checking it really is the server (its certificate)",
    "capability": "Talking to it",
    "auth": "Asking how to sign in",
    "login": "Signing in",
    "list": "Reading your folders",
    "quota": "Reading how much storage you have",
    "appendlimit": "Reading the largest message it takes",
    "stat": "Counting the mail waiting there",
    "ehlo": "Checking the server for sending",
}
_MARKS = {
    CheckStatus.OK: "[green]✓[/]",
    CheckStatus.WARN: "[yellow]![/]",
    CheckStatus.FAIL: "[bold red]✗[/]",
    CheckStatus.SKIP: "[dim]-[/]",
}
_KIND = {Protocol.IMAP: "IMAP", Protocol.POP3: "POP3", Protocol.SMTP: "SMTP"}
_ROLE = {
    Protocol.IMAP: "receiving, IMAP",
    Protocol.POP3: "receiving, POP3",
    Protocol.SMTP: "sending, SMTP",
}
_ROLE_TITLE = {
    Protocol.IMAP: "Receiving (IMAP)",
    Protocol.POP3: "Receiving (POP3)",
    Protocol.SMTP: "Sending (SMTP)",
}
_SHOW_DETAIL = frozenset({"tls", "login", "list", "quota", "stat"})
"""Steps whose detail means something to a newcomer; the others just pass."""


# --- the wizard ------------------------------------------------------------------------


class Wizard:
    """One run of the guided wizard. Build it, call :meth:`run`.

    ``home`` and ``spool_dirs`` say where to look for mail (see
    :func:`~advisor.stores.discover.discover_stores`); ``profile_dir`` is where profiles
    are suggested; ``journal_path`` gives the migration journal of an account (the same
    one ``mailadvisor migrate`` uses, so a saved profile continues where the wizard
    stopped).
    """

    def __init__(
        self,
        asker: Asker,
        *,
        plugins: PluginHost | None = None,
        home: Path | None = None,
        spool_dirs: Sequence[Path] | None = None,
        profile_dir: Path | None = None,
        journal_path: Callable[[str, str, int], Path] = default_journal_path,
    ) -> None:
        self.asker = asker
        self.plugins = plugins or load_plugins()
        self.out: Console = stdout  # the console render_advice and render_report print to
        self.home = home
        self.spool_dirs = spool_dirs
        self.profile_dir = profile_dir or config_dir() / "profiles"
        self.journal_path = journal_path
        self.profile = Profile()
        self.result = WizardResult(ExitStatus.OK, self.profile)
        self.stores: list[ScannedStore] = []
        self.asked = AdviceAnswers()
        """The answers the user gave (saved in the profile); measured sizes are not."""
        self.answers = AdviceAnswers()
        """What the advice is based on: the answers plus what was measured."""
        self.detection: Detection | None = None
        self.endpoints: dict[Protocol, Endpoint] = {}
        """The servers that passed the connection test."""
        self.username = ""
        self.ca_file: Path | None = None
        self.allow_insecure = False
        """The user chose a plaintext connection (offered only on loopback or a LAN)."""
        self._password: str | None = None
        self._migration: Migration | None = None
        self._copying = False

    # --- small helpers -----------------------------------------------------------
    def ask(self, prompt: Prompt) -> Any:
        return self.asker.ask(prompt)

    def say(self, text: str = "") -> None:
        self.out.print(text, soft_wrap=False)

    def heading(self, title: str) -> None:
        self.out.print()
        self.out.rule(f"[bold]{escape(title)}[/]", align="left")

    @property
    def email(self) -> str:
        return self.profile.account.email

    # --- the flow ----------------------------------------------------------------
    def main(self) -> int:
        """Run the conversation and return the exit status: 130 after Ctrl-C."""
        try:
            return int(self.run().status)
        except (WizardCancelled, KeyboardInterrupt):
            self.out.print()
            self.out.print(self.interrupted_message(), soft_wrap=True)
            draft = self._save_draft()
            if draft is not None:
                self.out.print(
                    f"Your answers so far are kept in {draft} (no password in it): edit it, "
                    "or run mailadvisor again.",
                    soft_wrap=True,
                    markup=False,
                )
            return int(ExitStatus.INTERRUPTED)

    def _save_draft(self) -> Path | None:
        """What was answered so far, as a profile draft (0600); None before the address."""
        if self.result.profile_path is not None or not self.profile.account.email:
            return None
        self.profile.advice = self.asked
        path = self.profile_dir / f"{self.profile.account.email}.draft.toml"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_private(
                path,
                "# Answers of an interrupted mailadvisor wizard run; complete [source] and\n"
                "# [auth], then: mailadvisor profile check THIS-FILE\n"
                + dump_profile(self.profile),
            )
        except OSError:
            return None  # a draft is a courtesy: never a reason for a traceback
        return path

    def run(self) -> WizardResult:
        """Go through the whole conversation; raises WizardCancelled/KeyboardInterrupt."""
        self._welcome()
        self._find_local_mail()
        self._ask_answers()
        advice = advise(self.answers)
        self.result.advice = advice
        self.heading("My advice")
        render_advice(_without_unknown(advice), show_settings=False)
        self._not_measured_yet()

        self.heading("Your mail account")
        self.profile.account = AccountConfig(email=self._ask_email())
        advice = self._provider(advice)
        protocol = self._choose(advice)
        if protocol is None:
            self._settings_untested(advice.recommendation)
            self.say("Fine: nothing was changed. Run [bold]mailadvisor[/] again any time.")
            return self.result
        self.result.protocol = protocol
        if not self._sign_in_possible(protocol):
            return self._finish_oauth_only(protocol)
        status = self._sign_in(protocol)
        if status is not ExitStatus.OK:
            self.result.status = status
            return self.result
        if protocol is Protocol.IMAP:
            protocol = self._weigh_quota(advice)
            self.result.protocol = protocol
        if protocol is Protocol.IMAP:
            self.result.status = self._move_mail()
            self._show_client_settings(Protocol.IMAP)
        else:
            if Protocol.POP3 not in self.endpoints:
                status = self._sign_in(Protocol.POP3)
                if status is not ExitStatus.OK:
                    self.result.status = status
                    return self.result
            self._pop3_advice()
        self._offer_profile(protocol)
        if protocol is Protocol.IMAP and self.result.status is ExitStatus.OK:
            self._devices()
        return self.result

    def _settings_untested(self, protocol: Protocol) -> None:
        """The servers found for the advised protocol, for a user who stops before testing."""
        found = [
            f
            for f in (self.detection.servers if self.detection else ())
            if f.endpoint.protocol in (protocol, Protocol.SMTP)
        ]
        if not any(f.endpoint.protocol is protocol for f in found):
            return
        kind = "POP3" if protocol is Protocol.POP3 else "IMAP"
        self.heading(f"The {kind} settings, should you set it up yourself")
        for f in found:
            e = f.endpoint
            self.say(
                f"  • {_ROLE_TITLE[e.protocol]}: server [bold]{escape(e.host)}[/], port "
                f"[bold]{e.port}[/]. {escape(SECURITY_WORDS[e.security])} "
                "[dim](not tested)[/]"
            )
        self.say(f"  • User name: [bold]{escape(self.username or self.email)}[/]; your password.")
        if protocol is Protocol.POP3:
            self.say(
                "Turn on [bold]Leave messages on server[/] at first, so that nothing is lost "
                "if this computer fails before your backup has the mail."
            )

    def interrupted_message(self) -> str:
        """What to tell the user after Ctrl-C, depending on how far the run got."""
        if self._copying and self._migration is not None:
            done = self._migration.report.uploaded
            return (
                f"Stopped while copying. {done:,} messages were copied and recorded, the rest "
                "were not touched. Run mailadvisor again to copy the rest: nothing is copied "
                "twice, and the mail on this computer was only read."
            )
        if self.result.report is not None:
            return "Stopped. Your mail was copied; only the profile file was not saved."
        return "Stopped. Nothing was changed: not on your mail server, not on this computer."

    # --- 1. welcome and the local mail ---------------------------------------------
    def _welcome(self) -> None:
        self.out.print(
            Panel(
                "I will help you decide how your mail program should fetch your mail: with "
                "[bold]POP3[/] (the mail is downloaded to one computer) or [bold]IMAP[/] (the "
                "mail stays on your provider's server and every device shows the same). If "
                "IMAP suits you, I can also copy the mail this computer keeps into your "
                "account, folder by folder.\n\n"
                "Every question has a suggested answer: press Enter to take it. Nothing "
                "changes, on your server or on this computer, until you say so. Press "
                "Ctrl-C at any time to stop.",
                title="[bold]mailadvisor[/]",
                title_align="left",
            )
        )

    def _find_local_mail(self) -> None:
        self.heading("The mail on this computer")
        with self.out.status("Looking for the mail your mail programs keep on this computer..."):
            found = discover_stores(self.home, spool_dirs=self.spool_dirs)
            targets = [ScanTarget(s.kind, s.path, s.client, s.reason) for s in found.stores]
            self.stores = scan_stores(targets)
        if not self.stores:
            self.say(
                "I found no mail that a mail program keeps on this computer. If you have "
                "old mail to move, you can show me where it is later."
            )
        else:
            self.say("I found:")
            for s in self.stores:
                self.say(f"  • {escape(_store_title(s))}")
        usable = [s for s in self.stores if s.scan is not None]
        if usable:
            self.answers.mail_size = sum(s.scan.totals.bytes for s in usable if s.scan)
        where = self.stores[0].path if self.stores else (self.home or Path.home())
        free = _free_disk(where)
        if free is not None:
            self.answers.free_disk = free
        measured = []
        if self.answers.mail_size is not None:
            measured.append(f"{format_size(self.answers.mail_size)} of mail")
        if free is not None:
            measured.append(f"{format_size(free)} free on this disk")
        if measured:
            self.say(f"Measured: {', '.join(measured)}. You will not be asked about these.")

    # --- 2. the questions ------------------------------------------------------------
    def _ask_answers(self) -> None:
        self.heading("A few questions")
        a = self.asked
        a.devices = self.ask(
            Prompt(
                "devices",
                QuestionKind.SELECT,
                ANSWER_HELP["devices"].question,
                ANSWER_HELP["devices"].hint,
                2,
                (
                    Option("One: only this computer", 1),
                    Option("Two: for example this computer and a phone", 2),
                    Option("Three", 3),
                    Option("Four or more", 4),
                ),
            )
        )
        a.webmail = self._yes_no("webmail", default=False)
        if a.devices > 1 or a.webmail:
            # With one device and no webmail there is nowhere else for the state to follow.
            a.sync_state = self._yes_no("sync_state", default=True)
        a.connectivity = self.ask(
            Prompt(
                "connectivity",
                QuestionKind.SELECT,
                ANSWER_HELP["connectivity"].question,
                "Pick what is closest to a usual week.",
                Connectivity.ALWAYS,
                (
                    Option("Nearly always online (home or office internet)", Connectivity.ALWAYS),
                    Option("Mostly online, sometimes not (travel, trains)", Connectivity.MOSTLY),
                    Option("Rarely online", Connectivity.RARELY),
                    Option(
                        "Paid per megabyte, slow or unreliable (mobile data, satellite)",
                        Connectivity.METERED,
                    ),
                ),
            )
        )
        a.backups = self._yes_no("backups", default=False)
        a.keep_off_server = self._yes_no("keep_off_server", default=False)
        a.shared_mailbox = self._yes_no("shared_mailbox", default=False)
        self.profile.advice = a
        self.answers = self.answers.merged(a)

    def _yes_no(self, name: str, *, default: bool) -> bool:
        help_ = ANSWER_HELP[name]
        answer: bool = self.ask(
            Prompt(name, QuestionKind.CONFIRM, help_.question, help_.hint, default)
        )
        return answer

    def _not_measured_yet(self) -> None:
        if self.answers.quota is None:
            self.say()
            self.say(
                "[dim]Not known yet: how much storage your account has on the server. I "
                "measure it once you have signed in, and tell you if it changes the advice.[/]"
            )

    # --- 4. the address and the provider ---------------------------------------------
    def _ask_email(self) -> str:
        answer: str = self.ask(
            Prompt(
                "email",
                QuestionKind.TEXT,
                "What is your email address?",
                "The address whose mail you want to read, like alex@example.org.",
                os.environ.get("EMAIL", ""),
                validate=_email_ok,
            )
        )
        return answer.strip()

    def _provider(self, advice: Advice) -> Advice:
        """Find the provider and its servers; weigh what the provider says."""
        with self.out.status(f"Looking up the settings for {escape(self.email)}..."):
            detection = detect(self.email, self.plugins)
        self.detection = detection
        self.profile.account.provider = detection.provider
        if detection.provider == FALLBACK_PROVIDER:
            self.say(
                f"No plugin knows the provider of [bold]{escape(detection.domain)}[/] "
                "specially, so I looked its servers up the way mail programs do."
            )
        else:
            self.say(
                f"Your provider: [bold]{escape(detection.provider_name)}[/] "
                f"({escape(detection.reason)})."
            )
        for found in detection.servers:
            self.say(f"  • {escape(_found_line(found))}")
        if not detection.servers:
            self.say("  I found no servers; you can type them in a moment.")

        factors = self.plugins.advice_factors(detection.provider, self.email)
        with_provider = advise(
            self.answers,
            provider_factors=factors,
            settings=_settings_for_advice(detection),
            provider=detection.provider_name,
        )
        self.result.advice = with_provider
        if with_provider.recommendation is not advice.recommendation:
            self.heading("What your provider changes")
            render_advice(_without_unknown(with_provider), email=self.email, show_settings=False)
            return with_provider
        # The same advice: say only what the provider adds, not all of it again.
        if with_provider.constraint:
            self.say(f"[bold]Also:[/] {escape(with_provider.constraint)}")
        for step in with_provider.steps:
            self.say(f"[bold]Before you start:[/] {escape(step)}")
        return with_provider

    # --- 5. the choice -----------------------------------------------------------------
    def _choose(self, advice: Advice) -> Protocol | None:
        rec = advice.recommendation
        other = Protocol.POP3 if rec is Protocol.IMAP else Protocol.IMAP
        what = {
            Protocol.IMAP: "then I copy the mail from this computer into your account",
            Protocol.POP3: "then I test it and tell you how to set up your mail program",
        }
        answer = self.ask(
            Prompt(
                "protocol",
                QuestionKind.SELECT,
                "How do you want to go on?",
                "My advice is the first one; it is your choice.",
                rec,
                (
                    Option(f"Use {_KIND[rec]}, as advised: {what[rec]}", rec),
                    Option(
                        f"Use {_KIND[other]} instead: {what[other]}",
                        other,
                        disabled=_short(advice.constraint) if advice.constraint else None,
                    ),
                    Option("Stop here", "stop"),
                ),
            )
        )
        return None if answer == "stop" else Protocol(answer)

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
            self.say(f"I do not know your provider's {_KIND[protocol]} server.")
            return self._ask_server(protocol)
        e = found.endpoint
        if found.origin is Origin.GUESS:
            answer = self.ask(
                Prompt(
                    "server_check",
                    QuestionKind.SELECT,
                    f"Shall I try {e.host} as your {_KIND[protocol]} server?",
                    "It is only a guess from your address; your provider's help pages name "
                    f"the right one (search for '{_KIND[protocol]} settings').",
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
                    f"Is {e.host} really your provider's {_KIND[protocol]} server?",
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
                f"What is the name of your provider's {_KIND[protocol]} server?",
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
        self.heading(f"Signing in ({_ROLE[protocol]})")
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

    def _test(self, protocol: Protocol, endpoint: Endpoint) -> CheckReport:
        password = self._password or ""
        target = CheckTarget(
            email=self.email,
            imap=endpoint if protocol is Protocol.IMAP else None,
            pop3=endpoint if protocol is Protocol.POP3 else None,
            username=self.username,
            ca_file=self.ca_file,
            allow_insecure=self.allow_insecure,
            secret=lambda: password,
            source="the wizard",
        )
        return run_checks(target, on_result=self._show_check)

    def _show_check(self, result: CheckResult) -> None:
        if result.status is CheckStatus.SKIP:
            return
        step = result.id.partition(".")[2]
        words = _STEP_WORDS.get(step, result.title)
        detail = ""
        if result.status is CheckStatus.OK and step in _SHOW_DETAIL:
            detail = f"[dim]{escape(result.detail)}[/]"
        if result.status is CheckStatus.WARN:
            detail = f"{escape(result.detail)}. [dim]{escape(result.fix)}[/]"
        self.out.print(f"  {_MARKS[result.status]} {escape(words)}  {detail}", soft_wrap=True)

    def _explain(self, failed: CheckResult, endpoint: Endpoint) -> None:
        """Why the step failed, in plain words, and what can be done."""
        step = failed.id.partition(".")[2]
        host = escape(endpoint.host)
        why = {
            "dns": f"The name {host} is not known on the internet. Check its spelling: your "
            "provider's help pages give the right server name. If it is right, check that "
            "this computer is online.",
            "tcp": f"{host} does not answer on port {endpoint.port}. The server name or port "
            "may be wrong, the server may be down, or a firewall blocks the way.",
            "starttls": f"{host} could not switch on encryption, and I never send your "
            "password without it.",
            "tls": "I could not confirm that this is really the server it claims to be (its "
            "certificate, its proof of identity, did not check out). With a company's or "
            "your own server this is normal when it uses its own certificate authority: "
            "then use that authority's certificate file. With a public provider it can mean "
            "that someone intercepts the connection: do not go on from this network.",
            "capability": f"{host} answers, but not like a mail server should.",
            "auth": f"{host} does not let mail programs sign in with a password here.",
            "login": "The server did not accept the user name or the password. Check both; "
            "many providers want an app password here (made in your account's security "
            "settings) and some need IMAP or POP switched on in their web settings first.",
        }.get(step, "")
        if "ca_file" in failed.detail:
            why = (
                "The certificate file you gave cannot be used (it holds no certificate, or "
                "not one this computer can read). Give the right file: usually a .pem or "
                ".crt your administrator sends, starting with '-----BEGIN CERTIFICATE-----'."
            )
        elif step == "tls" and "certificate" not in failed.detail.lower():
            # No certificate was even shown: the port does not speak TLS at all.
            why = (
                f"{host} does not speak encrypted connections (TLS) on port {endpoint.port}. "
                "Many servers start unencrypted and switch encryption on (STARTTLS), "
                "usually on port 143 for IMAP and 110 for POP3: try that."
            )
        self.say(f"[bold red]That did not work:[/] {escape(failed.detail)}")
        if why:
            self.say(why)
        elif failed.fix:
            self.say(escape(failed.fix))

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

    def _access(self) -> AccountAccess:
        assert self._password is not None
        return resolve_account(self.profile, self.plugins).with_secret(self._password)

    def _weigh_quota(self, advice: Advice) -> Protocol:
        """Measure the server's storage limit, weigh it, and let the user reconsider."""
        try:
            quota = measure_quota(self._access())
        except MailadvisorError as exc:
            # It worked a moment ago; an unknown quota is no reason to stop.
            self.say(f"[dim]I could not read your storage limit ({escape(str(exc))}).[/]")
            quota = None
        if quota is None:
            self.say("[dim]Your account has no storage limit that the server tells me.[/]")
            return Protocol.IMAP
        used, limit = quota
        self.answers.quota, self.answers.quota_used = limit, used
        assert self.detection is not None
        again = advise(
            self.answers,
            provider_factors=self.plugins.advice_factors(self.detection.provider, self.email),
            settings=_settings_for_advice(self.detection),
            provider=self.detection.provider_name,
        )
        self.result.advice = again
        if again.recommendation is Protocol.IMAP:
            for factor in again.factors:
                if factor.name == "quota" and factor.direction is not Push.NEITHER:
                    self.say(f"[yellow]Keep in mind:[/] {escape(factor.reason)}")
            return Protocol.IMAP
        self.heading("What the storage limit changes")
        render_advice(_without_unknown(again), email=self.email, show_settings=False)
        go_on: bool = self.ask(
            Prompt(
                "imap_anyway",
                QuestionKind.CONFIRM,
                "Go on with IMAP anyway?",
                "No means POP3, as advised now.",
                False,
            )
        )
        return Protocol.IMAP if go_on else Protocol.POP3

    # --- 7a. IMAP: moving the mail ----------------------------------------------------
    def _move_mail(self) -> ExitStatus:
        self.heading("Moving your mail")
        store = self._choose_store()
        if store is None:
            self.say("Nothing to move, then.")
            return ExitStatus.OK
        self.profile.source = SourceConfig(kind=store.kind, path=store.path)
        access = self._access()
        with self.out.status("Comparing your mail with what is on the server..."):
            plan = self._plan(access)
        journal_path = self.journal_path(access.email, access.target.host, access.target.port)
        plan.journal = str(journal_path)  # where the copying will be recorded
        self.result.plan = plan
        render_report(plan)
        to_upload = sum(f.to_upload for f in plan.folders)
        if to_upload == 0:
            self.say("[green]Everything is already on the server.[/] Nothing to copy.")
            return ExitStatus.OK
        if plan.room is not None and plan.room.blocks and not self._choose_partial(plan.room):
            self.say(
                "Nothing was copied. Make room, then run mailadvisor again (or "
                "mailadvisor migrate --profile FILE with the profile saved below)."
            )
            return ExitStatus.ACCOUNT_FULL
        size = format_size(sum(f.bytes for f in plan.folders))
        go: bool = self.ask(
            Prompt(
                "migrate",
                QuestionKind.CONFIRM,
                f"Copy {to_upload:,} messages into your account now?",
                f"The mail on this computer ({size}) is only read, never changed; Ctrl-C "
                "stops, and a later run continues",
                True,
            )
        )
        if not go:
            self.say("Nothing was copied.")
            return ExitStatus.OK
        total = sum(f.messages for f in plan.folders)
        try:
            # One run per account at a time: the lock `mailadvisor migrate` takes too.
            with (
                account_lock(access, command="wizard") as lock,
                MigrationJournal(journal_path) as journal,
                self.migration_progress(total) as bar,
            ):
                options = self._options(journal_path=journal_path)
                options.unfinished_run = lock.unfinished_run()
                migration = Migration(
                    reader_for(self.profile),
                    access,
                    self.plugins,
                    journal,
                    options,
                    bar,
                )
                self._migration = migration
                self._copying = True
                report = migration.run()
                self._copying = False
        except AccountBusyError as exc:
            self.say(
                f"[red]{escape(str(exc))}.[/] Nothing was copied: start mailadvisor again "
                "when that run has finished."
            )
            return exc.exit_status
        self.result.report = report
        render_report(report)
        if report.account_full:
            self.say(
                "Your account is full: what did not fit is still here on this computer. "
                "Make room, then run again: it continues where it stopped."
            )
            return ExitStatus.ACCOUNT_FULL
        if report.complete:
            self.say("[green]Done: your mail is in your account.[/]")
            return ExitStatus.OK
        return ExitStatus.INCOMPLETE

    def _choose_partial(self, room: QuotaCheck) -> bool:
        """The mail does not fit: move the newest that fits (True), or stop (False)."""
        answer = self.ask(
            Prompt(
                "when_full",
                QuestionKind.SELECT,
                "Your account has no room for all of this mail. What now?",
                room.summary,
                "stop",
                (
                    Option(
                        f"Copy the newest {room.fitting_messages:,} messages "
                        f"({format_size(room.fitting_bytes)}) that fit; the rest waits here",
                        "newest-first",
                    ),
                    Option("Stop: I will make room first (or buy more storage)", "stop"),
                ),
            )
        )
        self.profile.migration.when_full = str(answer)
        return self.profile.migration.when_full == "newest-first"

    def _options(
        self, *, dry_run: bool = False, journal_path: Path | None = None
    ) -> MigrationOptions:
        """The same options `mailadvisor migrate --profile` uses, the not-migrated mbox
        (beside the journal, as the command keeps it) included."""
        m = self.profile.migration
        return MigrationOptions(
            dry_run=dry_run,
            skip_deleted=m.skip_deleted,
            target_prefix=m.target_prefix,
            folder_map=dict(m.folder_map),
            when_full=WhenFull(m.when_full),
            not_migrated_path=(
                not_migrated_path(None, journal_path) if journal_path and not dry_run else None
            ),
        )

    def _plan(self, access: AccountAccess) -> MigrationReport:
        """A dry run: the folder plan with counts and sizes; nothing is uploaded.

        The account's journal is used when it exists (it knows what an earlier run did);
        otherwise a throwaway one, so that only looking writes nothing.
        """
        path = self.journal_path(access.email, access.target.host, access.target.port)
        with tempfile.TemporaryDirectory(prefix="mailadvisor-plan-") as tmp:
            journal = MigrationJournal(path if path.exists() else Path(tmp) / "plan.sqlite")
            with journal:
                return Migration(
                    reader_for(self.profile),
                    access,
                    self.plugins,
                    journal,
                    self._options(dry_run=True),
                ).run()

    @contextmanager
    def migration_progress(self, total: int) -> Iterator[MigrationProgress]:
        """The progress display of the migration (a bar of messages)."""
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("messages"),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.out, transient=True) as progress:
            yield _BarProgress(progress, total)

    def _choose_store(self) -> ScannedStore | None:
        while True:
            options = [
                Option(_store_title(s), i, disabled=_short(s.error) if s.error else None)
                for i, s in enumerate(self.stores)
            ]
            usable = [o for o in options if o.disabled is None]
            if any(s.error for s in self.stores):
                options.append(Option("Look again (after closing my mail program)", "again"))
            options.append(Option("Somewhere else: let me type where my mail is", "path"))
            options.append(Option("Nothing: I have no old mail to move", "none"))
            answer = self.ask(
                Prompt(
                    "store",
                    QuestionKind.SELECT,
                    "Which mail do you want to copy into your account?",
                    "The mail your POP3 program downloaded over the years.",
                    usable[0].value if usable else "path",
                    tuple(options),
                )
            )
            if answer == "none":
                return None
            if answer == "again":
                self._find_local_mail()
                continue
            if answer == "path":
                store = self._store_at_path()
                if store is not None:
                    return store
                continue
            chosen: ScannedStore = self.stores[answer]
            return chosen

    def _store_at_path(self) -> ScannedStore | None:
        answer: str = self.ask(
            Prompt(
                "store_path",
                QuestionKind.TEXT,
                "Where is it?",
                "The folder or file your mail program keeps mail in, like ~/Maildir, a "
                "Thunderbird profile or an Outlook .pst file; leave it empty to go back.",
                "",
                validate=lambda t: (
                    True
                    if not t.strip() or Path(t.strip()).expanduser().exists()
                    else "There is nothing at that path."
                ),
            )
        )
        if not answer.strip():
            return None
        path = Path(answer.strip()).expanduser().resolve()
        with self.out.status("Counting the mail there..."):
            scanned = scan_stores([ScanTarget(SourceKind.AUTO, path)])[0]
        if scanned.error:
            self.say(f"[bold red]I cannot read it:[/] {escape(scanned.error)}")
            return None
        self.stores.append(scanned)
        self.say(f"Found: {escape(_store_title(scanned))}")
        return scanned

    # --- 7b. POP3: the settings and the advice around them -----------------------------
    def _pop3_advice(self) -> None:
        self._show_client_settings(Protocol.POP3)
        advice = self.result.advice
        self.heading('"Leave a copy on the server"')
        self.say(
            "Your mail program has a setting called [bold]Leave messages on server[/] (or "
            "'Leave a copy on the server'). When it is on, each message is downloaded to this "
            "computer but also stays on the server: your phone and the webmail still see "
            "new mail, and the server is a safety net if this computer breaks. When it is "
            "off, each message exists only on this computer after it is downloaded. Most "
            "programs can also remove the server's copy after some days, so the server does "
            "not fill up."
        )
        if advice is not None:
            for note in advice.settings.notes:
                if "copy on the server" in note:
                    self.say(f"[bold]My advice:[/] {escape(note)}")
        self.heading("Backups")
        keep = (
            f" Your mail program keeps it here: {escape(str(self.stores[0].path))}."
            if self.stores
            else ""
        )
        self.say(
            "With POP3 your mail lives on this computer. If its disk fails or it is stolen, "
            "the mail is gone, unless you have a copy. Copy your mail program's folder to an "
            "external disk or a backup service regularly." + keep
        )
        if self.asked.backups:
            self.say("You said you back up this computer: check that the backup includes it.")

    def _show_client_settings(self, protocol: Protocol) -> None:
        """What to type into the mail program, for the protocol that works."""
        endpoint = self.endpoints.get(protocol)
        if endpoint is None:
            return
        self.heading("The settings for your mail program")
        smtp = next(
            (
                f
                for f in (self.detection.servers if self.detection else ())
                if f.endpoint.protocol is Protocol.SMTP
            ),
            None,
        )
        what = "an IMAP account" if protocol is Protocol.IMAP else "a POP3 account"
        self.say(f"Set up {what} in your mail program with these settings:")
        lines = [(endpoint, "")]
        if smtp is not None:
            doubt = smtp.origin is Origin.GUESS or not smtp.trusted
            lines.append((smtp.endpoint, " (not tested: check it on your provider's help pages)"))
            if not doubt:
                lines[-1] = (smtp.endpoint, " (not tested)")
        for e, note in lines:
            self.say(
                f"  • {_ROLE_TITLE[e.protocol]}: server [bold]{escape(e.host)}[/], port "
                f"[bold]{e.port}[/]{escape(note)}. {escape(SECURITY_WORDS[e.security])}"
            )
        self.say(f"  • User name: [bold]{escape(self.username or self.email)}[/]; your password.")
        if protocol is Protocol.IMAP:
            self.say(
                "Once the new account shows your folders, remove the old POP3 account from "
                "your mail program (keep its local folders until you have checked that "
                "everything arrived)."
            )

    # --- 8. the profile ----------------------------------------------------------------
    def _finish_oauth_only(self, protocol: Protocol) -> WizardResult:
        """Providers that take no password: save a profile for `mailadvisor signin`."""
        assert self.detection is not None
        self.heading("Signing in")
        self.say(
            f"{escape(self.detection.provider_name)} does not accept a password from mail "
            "programs: you sign in through your browser instead (this is called OAuth2). "
            "Save a profile now, then run [bold]mailadvisor signin --profile FILE[/] to sign "
            "in, and [bold]mailadvisor migrate --profile FILE[/] to copy your mail."
        )
        self.profile.auth = AuthConfig(method=AuthKind.OAUTH2)
        if protocol is Protocol.IMAP:
            store = self._choose_store()
            if store is not None:
                self.profile.source = SourceConfig(kind=store.kind, path=store.path)
        self._offer_profile(protocol)
        if protocol is Protocol.IMAP and self.result.status is ExitStatus.OK:
            self._devices()
        return self.result

    def _devices(self) -> None:
        """The new account on the user's other devices, and the switch that loses nothing."""
        from advisor.devices import device_account
        from advisor.devices.conversation import device_step

        self.heading("Your other devices")
        smtp = next(
            (
                f.endpoint
                for f in (self.detection.servers if self.detection else ())
                if f.endpoint.protocol is Protocol.SMTP
            ),
            None,
        )
        try:
            account = device_account(self.profile, self.plugins, smtp=smtp)
        except MailadvisorError as exc:
            self.say(f"I cannot write the settings for your devices: {escape(str(exc))}")
            return
        saved = self.result.profile_path
        folder = (saved.parent if saved else self.profile_dir) / f"{self.email}-devices"
        self.result.device_files = device_step(
            self.ask,
            self.say,
            account,
            folder,
            devices=self.asked.devices,
            source=self.profile.source.path,
            profile_path=str(saved) if saved else "FILE",
        )

    def _offer_profile(self, protocol: Protocol) -> None:
        self.heading("Saving this for next time")
        repeat = (
            "so that `mailadvisor migrate --profile FILE` repeats this without questions"
            if protocol is Protocol.IMAP
            else "so that `mailadvisor test --profile FILE` checks the account again"
        )
        save: bool = self.ask(
            Prompt(
                "save",
                QuestionKind.CONFIRM,
                "Save these settings in a profile file?",
                f"It never holds your password; {repeat}",
                True,
            )
        )
        if not save:
            self.say("Not saved.")
            return
        path = self._ask_profile_path()
        if self.profile.auth.method is AuthKind.PASSWORD:
            self.profile.auth = self._secret_source()
        written = write_profile(self.profile, path)
        self.result.profile_path = written
        self.say(f"[green]Saved:[/] {escape(str(written))}")
        self._next_steps(written, protocol)

    def _ask_profile_path(self) -> Path:
        default = self.profile_dir / f"{self.email}.toml"
        while True:
            answer: str = self.ask(
                Prompt(
                    "profile_path",
                    QuestionKind.TEXT,
                    "Where shall I save it?",
                    "Press Enter for the suggested place, or type another file name.",
                    str(default),
                    validate=lambda t: (
                        True
                        if t.strip() and not Path(t.strip()).expanduser().is_dir()
                        else "Type a file name (not a folder)."
                    ),
                )
            )
            path = Path(answer.strip()).expanduser()
            if not path.exists():
                return path
            overwrite: bool = self.ask(
                Prompt(
                    "overwrite",
                    QuestionKind.CONFIRM,
                    f"{path} exists. Replace it?",
                    "No lets you type another name.",
                    False,
                )
            )
            if overwrite:
                return path

    def _secret_source(self) -> AuthConfig:
        """Where a later run gets the password: keyring, environment variable or command."""
        from advisor.oauth.tokens import keyring_usable

        options = []
        if keyring_usable():
            options.append(Option("Keep it in this computer's password store (keyring)", "keyring"))
        options.append(Option("Read it from an environment variable when I run mailadvisor", "env"))
        options.append(
            Option("Get it from my password manager with a command (pass, op...)", "command")
        )
        while True:
            how = self.ask(
                Prompt(
                    "secret_source",
                    QuestionKind.SELECT,
                    "Where should mailadvisor find your password next time?",
                    "The profile only says where the password is, never what it is.",
                    options[0].value,
                    tuple(options),
                )
            )
            if how == "keyring":
                auth = self._store_in_keyring()
            elif how == "env":
                auth = self._password_env()
            else:
                auth = self._password_command()
            if auth is not None:
                return auth

    def _store_in_keyring(self) -> AuthConfig | None:
        import keyring
        import keyring.errors

        assert self._password is not None
        try:
            keyring.set_password(KEYRING_SERVICE, self.email, self._password)
        except keyring.errors.KeyringError as exc:
            self.say(f"[bold red]The keyring refused it[/] ({escape(type(exc).__name__)}).")
            return None
        self.say(f"Your password is in the keyring (service {KEYRING_SERVICE!r}).")
        return AuthConfig(method=AuthKind.PASSWORD, keyring=True)

    def _password_env(self) -> AuthConfig:
        name: str = self.ask(
            Prompt(
                "password_env",
                QuestionKind.TEXT,
                "Which environment variable?",
                "Letters, digits and _; you set it before running mailadvisor.",
                DEFAULT_PASSWORD_ENV,
                validate=lambda t: (
                    True
                    if _ENV_NAME.match(t.strip())
                    else "Letters, digits and _ only, not starting with a digit."
                ),
            )
        )
        return AuthConfig(method=AuthKind.PASSWORD, password_env=name.strip())

    def _password_command(self) -> AuthConfig | None:
        command: str = self.ask(
            Prompt(
                "password_command",
                QuestionKind.TEXT,
                "Which command prints your password?",
                "Its first line is used, for example: pass show mail/alex",
                "",
                validate=not_empty,
            )
        )
        auth = AuthConfig(method=AuthKind.PASSWORD, password_command=command.strip())
        try:
            printed = resolve_secret(auth, self.email)
        except MailadvisorError as exc:
            self.say(f"[bold red]That command does not work:[/] {escape(str(exc))}")
            return None
        if printed != self._password:
            self.say(
                "[bold red]That command prints a different password[/] from the one that "
                "worked a moment ago."
            )
            return None
        return auth

    def _next_steps(self, path: Path, protocol: Protocol) -> None:
        quoted = _shell_quote(str(path))
        auth = self.profile.auth
        if auth.password_env:
            self.say(
                f"Before using it, set {auth.password_env} to your password in that terminal, "
                f"for example: [bold]{escape(set_env_secretly_hint(auth.password_env))}[/]"
            )
        if auth.method is AuthKind.OAUTH2:
            self.say(f"Next: [bold]mailadvisor signin --profile {escape(quoted)}[/]")
        if protocol is Protocol.IMAP and self.profile.source.path is not None:
            what = (
                "To run it again (it copies only what is new)"
                if self.result.report is not None
                else "To copy your mail"
            )
            self.say(f"{what}: [bold]mailadvisor migrate --profile {escape(quoted)}[/]")
        self.say(f"To check the account: [bold]mailadvisor test --profile {escape(quoted)}[/]")


# --- library functions the wizard uses ---------------------------------------------------


def measure_quota(access: AccountAccess) -> tuple[int, int] | None:
    """(used, limit) in bytes of the account's storage (IMAP GETQUOTAROOT), or None.

    None when the server has no QUOTA capability, reports no storage limit, or the
    question fails: an unknown quota only means it is not weighed.
    """
    try:
        client = access.open()
    except (OSError, imapclient.exceptions.IMAPClientError):
        return None
    try:
        caps = [c.decode("ascii", "replace") for c in client.capabilities()]
        room = read_room(client, caps)
    except (OSError, imapclient.exceptions.IMAPClientError):
        return None
    finally:
        try:
            client.logout()
        except Exception:  # already broken; the answer matters more than a clean goodbye
            client.shutdown()
    if room is None or room.used_bytes is None or room.limit_bytes is None:
        return None
    return room.used_bytes, room.limit_bytes


def write_profile(profile: Profile, path: Path) -> Path:
    """Save ``profile`` at ``path`` in one step (0600), and check that it reads back.

    The file appears complete or not at all: it is written beside its final name and
    renamed, so a Ctrl-C leaves no half-written profile.
    """
    path = path.expanduser().absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    text = dump_profile(profile)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp makes it 0600
            f.write(text)
        load_profile(tmp)  # a profile the wizard writes must be one that runs
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    profile.path = path
    return path


def run_wizard(asker: Asker | None = None, **kwargs: Any) -> int:
    """Run the wizard in the terminal (or with ``asker``); the exit status, 130 after Ctrl-C."""
    return Wizard(asker or QuestionaryAsker(), **kwargs).main()


# --- small pure helpers --------------------------------------------------------------------


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


def _without_unknown(advice: Advice) -> Advice:
    """The advice without its "not answered" list: the wizard asks or measures everything
    it can, and says itself what it will measure later."""
    return replace(advice, unknown=())


def _settings_for_advice(detection: Detection) -> ServerSettings | None:
    """The servers found, as the advice engine takes them.

    A plugin's list is complete (no POP3 server means the provider has none); discovery's
    is not (autoconfig may name IMAP only), so a missing protocol there says nothing.
    """
    by_protocol = {f.endpoint.protocol: f.endpoint for f in reversed(detection.servers)}
    imap, pop3 = by_protocol.get(Protocol.IMAP), by_protocol.get(Protocol.POP3)
    if detection.provider == FALLBACK_PROVIDER and (imap is None) != (pop3 is None):
        return None
    if imap is None and pop3 is None:
        return None
    origins = {f.via for f in detection.servers}
    return ServerSettings(
        imap=imap,
        pop3=pop3,
        smtp=by_protocol.get(Protocol.SMTP),
        source=", ".join(sorted(origins)) or detection.provider,
        trusted=all(f.trusted for f in detection.servers),
    )


def _found_line(found: Found) -> str:
    e = found.endpoint
    security = {Security.TLS: "encrypted", Security.STARTTLS: "encrypted (STARTTLS)"}.get(
        e.security, "not encrypted"
    )
    line = f"{_ROLE_TITLE[e.protocol]}: {e.host}, port {e.port}, {security}"
    if found.origin is Origin.GUESS:
        return f"{line} (a guess from your address)"
    if not found.trusted:
        return f"{line} (to confirm)"
    return line


def _store_title(store: ScannedStore) -> str:
    what = store.reason or store.client or store.kind.value
    where = str(store.path)
    if store.scan is None:
        return f"{what} ({where}): cannot be read now: {store.error}"
    t = store.scan.totals
    folders = store.scan.folders
    return (
        f"{what} ({where}): {t.messages:,} messages in {folders} "
        f"folder{'s' if folders != 1 else ''}, {format_size(t.bytes)}"
    )


def _free_disk(path: Path) -> int | None:
    """Free bytes on the disk holding ``path`` (or its nearest existing parent)."""
    for candidate in (path, *path.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def _short(text: str | None, limit: int = 70) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _shell_quote(text: str) -> str:
    return shell_quote(text)
