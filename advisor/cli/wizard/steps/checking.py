"""The connection test: :func:`advisor.checks.run_checks` (the checks ``mailadvisor test``
runs), each step shown in plain words, a failure explained with what can be done."""

from __future__ import annotations

from rich.markup import escape

from advisor.checks import CheckReport, CheckResult, CheckStatus, CheckTarget, run_checks
from advisor.cli.wizard.state import WizardState
from advisor.cli.wizard.texts import (
    CA_FILE_UNUSABLE,
    MARKS,
    SHOW_DETAIL,
    STEP_WORDS,
    failure_words,
    no_tls_words,
)
from advisor.plugins.types import Endpoint, Protocol


class CheckingStep(WizardState):
    """The connection test: each check in plain words, a failure explained."""

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
        words = STEP_WORDS.get(step, result.title)
        detail = ""
        if result.status is CheckStatus.OK and step in SHOW_DETAIL:
            detail = f"[dim]{escape(result.detail)}[/]"
        if result.status is CheckStatus.WARN:
            detail = f"{escape(result.detail)}. [dim]{escape(result.fix)}[/]"
        self.out.print(f"  {MARKS[result.status]} {escape(words)}  {detail}", soft_wrap=True)

    def _explain(self, failed: CheckResult, endpoint: Endpoint) -> None:
        """Why the step failed, in plain words, and what can be done."""
        step = failed.id.partition(".")[2]
        host = escape(endpoint.host)
        why = failure_words(step, host, endpoint.port)
        if "ca_file" in failed.detail:
            why = CA_FILE_UNUSABLE
        elif step == "tls" and "certificate" not in failed.detail.lower():
            # No certificate was even shown: the port does not speak TLS at all.
            why = no_tls_words(host, endpoint.port)
        self.say(f"[bold red]That did not work:[/] {escape(failed.detail)}")
        if why:
            self.say(why)
        elif failed.fix:
            self.say(escape(failed.fix))
