"""The questions of :data:`advisor.advice.ANSWER_HELP`, the user's choice of POP3 or IMAP,
and the advice weighed again once the server's storage limit is measured."""

from __future__ import annotations

from dataclasses import replace

from rich.markup import escape

from advisor.advice import ANSWER_HELP, Advice, Connectivity, Push, advise
from advisor.cli.advise_cmd import render_advice
from advisor.cli.wizard.questions import Option, Prompt, QuestionKind
from advisor.cli.wizard.state import WizardState
from advisor.cli.wizard.texts import KIND, short
from advisor.discovery import FALLBACK_PROVIDER, Detection
from advisor.errors import MailadvisorError
from advisor.migration.quota import measure_quota
from advisor.plugins.types import Protocol, ServerSettings


class AdviceStep(WizardState):
    """Steps 2, 3, 5 and the storage limit: the questions, the advice, the choice."""

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
                    Option(f"Use {KIND[rec]}, as advised: {what[rec]}", rec),
                    Option(
                        f"Use {KIND[other]} instead: {what[other]}",
                        other,
                        disabled=short(advice.constraint) if advice.constraint else None,
                    ),
                    Option("Stop here", "stop"),
                ),
            )
        )
        return None if answer == "stop" else Protocol(answer)

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
            settings=settings_for_advice(self.detection),
            provider=self.detection.provider_name,
        )
        self.result.advice = again
        if again.recommendation is Protocol.IMAP:
            for factor in again.factors:
                if factor.name == "quota" and factor.direction is not Push.NEITHER:
                    self.say(f"[yellow]Keep in mind:[/] {escape(factor.reason)}")
            return Protocol.IMAP
        self.heading("What the storage limit changes")
        render_advice(without_unknown(again), email=self.email, show_settings=False)
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


def without_unknown(advice: Advice) -> Advice:
    """The advice without its "not answered" list: the wizard asks or measures everything
    it can, and says itself what it will measure later."""
    return replace(advice, unknown=())


def settings_for_advice(detection: Detection) -> ServerSettings | None:
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
