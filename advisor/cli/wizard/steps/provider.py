"""The address, the provider and its servers (weighed into the advice), and the settings
for the user's mail program: tested ones, or the untested ones for a user who stops."""

from __future__ import annotations

import os
import re

from rich.markup import escape

from advisor.advice import SECURITY_WORDS, Advice, advise
from advisor.cli.advise_cmd import render_advice
from advisor.cli.wizard.questions import Prompt, QuestionKind
from advisor.cli.wizard.state import WizardState
from advisor.cli.wizard.steps.advice import settings_for_advice, without_unknown
from advisor.cli.wizard.texts import BACKUPS, LEAVE_A_COPY, ROLE_TITLE, found_line
from advisor.discovery import FALLBACK_PROVIDER, Origin, detect
from advisor.plugins.types import Protocol

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email_ok(text: str) -> bool | str:
    return True if _EMAIL.match(text.strip()) else "An address looks like alex@example.org."


class ProviderStep(WizardState):
    """Step 4 and the settings: the address, the provider, what to type into the mail program."""

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
            self.say(f"  • {escape(found_line(found))}")
        if not detection.servers:
            self.say("  I found no servers; you can type them in a moment.")

        factors = self.plugins.advice_factors(detection.provider, self.email)
        with_provider = advise(
            self.answers,
            provider_factors=factors,
            settings=settings_for_advice(detection),
            provider=detection.provider_name,
        )
        self.result.advice = with_provider
        if with_provider.recommendation is not advice.recommendation:
            self.heading("What your provider changes")
            render_advice(without_unknown(with_provider), email=self.email, show_settings=False)
            return with_provider
        # The same advice: say only what the provider adds, not all of it again.
        if with_provider.constraint:
            self.say(f"[bold]Also:[/] {escape(with_provider.constraint)}")
        for step in with_provider.steps:
            self.say(f"[bold]Before you start:[/] {escape(step)}")
        return with_provider

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
                f"  • {ROLE_TITLE[e.protocol]}: server [bold]{escape(e.host)}[/], port "
                f"[bold]{e.port}[/]. {escape(SECURITY_WORDS[e.security])} "
                "[dim](not tested)[/]"
            )
        self.say(f"  • User name: [bold]{escape(self.username or self.email)}[/]; your password.")
        if protocol is Protocol.POP3:
            self.say(
                "Turn on [bold]Leave messages on server[/] at first, so that nothing is lost "
                "if this computer fails before your backup has the mail."
            )

    # --- 7b. POP3: the settings and the advice around them -----------------------------
    def _pop3_advice(self) -> None:
        self._show_client_settings(Protocol.POP3)
        advice = self.result.advice
        self.heading('"Leave a copy on the server"')
        self.say(LEAVE_A_COPY)
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
        self.say(BACKUPS + keep)
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
                f"  • {ROLE_TITLE[e.protocol]}: server [bold]{escape(e.host)}[/], port "
                f"[bold]{e.port}[/]{escape(note)}. {escape(SECURITY_WORDS[e.security])}"
            )
        self.say(f"  • User name: [bold]{escape(self.username or self.email)}[/]; your password.")
        if protocol is Protocol.IMAP:
            self.say(
                "Once the new account shows your folders, remove the old POP3 account from "
                "your mail program (keep its local folders until you have checked that "
                "everything arrived)."
            )
