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
   ``mailadvisor migrate`` does: see :mod:`advisor.migration.run_lock`). POP3: test the POP3
   sign-in, show the settings to type into the mail program, and explain "leave a copy
   on the server" and backups;
8. offer to save everything as a profile file (never with the password in it), so
   ``mailadvisor migrate --profile FILE`` repeats the run without questions.

The wizard fills the same :class:`~advisor.profile.Profile` a profile file gives.
Questions go through an :class:`~advisor.cli.wizard.questions.Asker` (questionary in a
terminal; tests drive the same questionary prompts through a pipe). Ctrl-C (or Ctrl-D) at
a question becomes :class:`WizardCancelled`, elsewhere a :class:`KeyboardInterrupt`;
:func:`run_wizard` turns both into exit status 130. Nothing is written before the user
agrees to it: the migration's journal is consistent whenever it stops (the migration
flushes it on the way out), and the profile file is written in one step at the very end.

This module is the order of the steps (:class:`Wizard`); each step lives in
:mod:`advisor.cli.wizard.steps`, the words in :mod:`advisor.cli.wizard.texts`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.markup import escape

from advisor.advice import advise
from advisor.cli.advise_cmd import render_advice
from advisor.cli.wizard.questions import Asker, QuestionaryAsker, WizardCancelled
from advisor.cli.wizard.state import WizardResult
from advisor.cli.wizard.steps.advice import AdviceStep, without_unknown
from advisor.cli.wizard.steps.copying import CopyingStep
from advisor.cli.wizard.steps.devices import DevicesStep
from advisor.cli.wizard.steps.provider import ProviderStep
from advisor.cli.wizard.steps.saving import SavingStep
from advisor.cli.wizard.steps.sign_in import SignInStep
from advisor.exitcodes import ExitStatus
from advisor.platform_compat import write_private
from advisor.plugins.types import Protocol
from advisor.profile import AccountConfig, AuthConfig, AuthKind, SourceConfig, dump_profile


class Wizard(AdviceStep, ProviderStep, SignInStep, CopyingStep, SavingStep, DevicesStep):
    """One run of the guided wizard. Build it, call :meth:`run` (or :meth:`main`).

    The constructor's arguments are :class:`~advisor.cli.wizard.state.WizardState`'s;
    this class only says the order of the steps.
    """

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
        render_advice(without_unknown(advice), show_settings=False)
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


def run_wizard(asker: Asker | None = None, **kwargs: Any) -> int:
    """Run the wizard in the terminal (or with ``asker``); the exit status, 130 after Ctrl-C."""
    return Wizard(asker or QuestionaryAsker(), **kwargs).main()
