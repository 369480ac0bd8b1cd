"""The POP3 steps (login, STAT) and the SMTP submission steps (login, EHLO; no mail is sent)."""

from __future__ import annotations

import poplib
import smtplib
from typing import Any

from advisor.checks.model import _STARTTLS_FIX, CheckFailed, CheckStatus, _fmt_bytes, _Outcome
from advisor.checks.transport import Step, _login_fix, _secret_failed, _server_text, _ServerChecks
from advisor.connection.password_login import pop3_login, smtp_login
from advisor.connection.probe import (
    CLIENT_NAME,
)
from advisor.connection.tls import pop3_stls, smtp_starttls
from advisor.errors import (
    AuthenticationError,
    MailadvisorError,
    TLSError,
)
from advisor.exitcodes import ExitStatus
from advisor.plugins.types import Security
from advisor.profile import AuthKind


class _Pop3Checks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.pop: poplib.POP3 | None = None

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("login", "POP3 login", ("tls",), self.check_login),
            ("stat", "STAT", ("login",), self.check_stat),
        ]

    def close(self) -> None:
        super().close()
        if self.pop is not None:
            pop, self.pop = self.pop, None
            try:
                pop.quit()
            except Exception:
                pop.close()

    def check_login(self) -> _Outcome:
        e, t = self.endpoint, self.target
        if t.auth.method is AuthKind.OAUTH2:
            return _Outcome(
                "not checked: the POP3 check signs in with a password only",
                CheckStatus.SKIP,
            )
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        try:
            if e.security is Security.TLS:
                self.pop = poplib.POP3_SSL(e.host, e.port, context=self.context, timeout=t.timeout)
            else:
                self.pop = poplib.POP3(e.host, e.port, timeout=t.timeout)
                if e.security is Security.STARTTLS:
                    pop3_stls(self.pop, self.context, f"POP3 {e.host}:{e.port}")
        except TLSError as exc:  # stripped, refused or injected STARTTLS: no fallback
            raise CheckFailed(str(exc), _STARTTLS_FIX, exc.exit_status) from None
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"cannot open the POP3 session: {exc}",
                "Run the check again; if it persists, check the port.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        try:
            how = pop3_login(self.pop, self.username, secret, f"the POP3 server {e.host}:{e.port}")
        except AuthenticationError as exc:
            raise CheckFailed(str(exc), _login_fix(exc, "POP"), exc.exit_status) from None
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"the connection broke during login: {_server_text(exc)}",
                "Try again.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        return _Outcome(f"logged in as {self.username} ({how})")

    def check_stat(self) -> _Outcome:
        assert self.pop is not None
        try:
            count, size = self.pop.stat()
        except (OSError, poplib.error_proto) as exc:
            raise CheckFailed(
                f"STAT failed: {exc}",
                "The mailbox may be locked by another POP3 client: close it and try again.",
                ExitStatus.CONNECT_FAILED,
            ) from None
        return _Outcome(f"{count} messages ({_fmt_bytes(size)}) on the server")


class _SmtpChecks(_ServerChecks):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.smtp: smtplib.SMTP | None = None

    def steps(self) -> list[Step]:
        return [
            *super().steps(),
            ("ehlo", "submission EHLO", ("tls",), self.check_ehlo),
            ("login", "submission login", ("ehlo",), self.check_login),
        ]

    def close(self) -> None:
        super().close()
        if self.smtp is not None:
            smtp, self.smtp = self.smtp, None
            try:
                smtp.quit()
            except (OSError, smtplib.SMTPException):
                smtp.close()

    def check_login(self) -> _Outcome:
        """AUTH PLAIN in UTF-8 (or AUTH LOGIN) on the EHLO step's connection; sends no mail."""
        assert self.smtp is not None
        if self.target.auth.method is AuthKind.OAUTH2:
            return _Outcome(
                "not checked: the SMTP check signs in with a password only", CheckStatus.SKIP
            )
        if not self.smtp.esmtp_features.get("auth"):
            return _Outcome("not checked: the server offers no login", CheckStatus.SKIP)
        try:
            secret = self.secret.get()
        except MailadvisorError as exc:
            raise _secret_failed(exc) from None
        e = self.endpoint
        try:
            how = smtp_login(self.smtp, self.username, secret, f"the SMTP server {e.host}:{e.port}")
        except AuthenticationError as exc:
            raise CheckFailed(str(exc), _login_fix(exc, "SMTP"), exc.exit_status) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise CheckFailed(
                f"the connection broke during login: {exc}", "Try again.", ExitStatus.CONNECT_FAILED
            ) from None
        if how is None:
            offered = self.smtp.esmtp_features.get("auth", "")
            return _Outcome(
                f"not checked: the server offers AUTH {offered}, not PLAIN or LOGIN",
                CheckStatus.SKIP,
            )
        return _Outcome(f"logged in as {self.username} (AUTH {how}); no mail was sent")

    def check_ehlo(self) -> _Outcome:
        e, t = self.endpoint, self.target
        smtp: smtplib.SMTP | None = None
        keep = False
        try:
            if e.security is Security.TLS:
                smtp = smtplib.SMTP_SSL(
                    e.host, e.port, CLIENT_NAME, timeout=t.timeout, context=self.context
                )
            else:
                smtp = smtplib.SMTP(e.host, e.port, CLIENT_NAME, timeout=t.timeout)
                if e.security is Security.STARTTLS:
                    smtp_starttls(smtp, self.context, f"SMTP {e.host}:{e.port}")
            code, _ = smtp.ehlo()
            if code != 250:
                raise CheckFailed(
                    f"EHLO was refused ({code})",
                    "This may not be a mail submission port (465 or 587).",
                    ExitStatus.CONNECT_FAILED,
                )
            auth = smtp.esmtp_features.get("auth", "").split()
            size = smtp.esmtp_features.get("size", "")
            keep = True
        except TLSError as exc:  # stripped, refused or injected STARTTLS: no fallback
            raise CheckFailed(str(exc), _STARTTLS_FIX, exc.exit_status) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise CheckFailed(
                f"the SMTP exchange failed: {exc}",
                "Check the port: submission is 465 (TLS) or 587 (STARTTLS).",
                ExitStatus.CONNECT_FAILED,
            ) from None
        finally:
            if keep:
                self.smtp = smtp  # the login step goes on with it
            elif smtp is not None:
                try:
                    smtp.quit()
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        limit = (
            f"; messages up to {_fmt_bytes(int(size))}" if size.isdigit() and size != "0" else ""
        )
        if not auth:
            return _Outcome(
                f"answers, but offers no login{limit}",
                CheckStatus.WARN,
                "This looks like a server for incoming mail, not submission: use port 465 or 587.",
            )
        return _Outcome(f"AUTH {' '.join(auth)}{limit}; nothing was sent")
