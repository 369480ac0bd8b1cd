"""The connection test: every step from DNS to login, one result per step, with a fix.

``mailadvisor test`` and the wizard run the same checks. For each server (IMAP,
then POP3 and SMTP submission when known) they go, in order: DNS; TCP; STARTTLS
offered and enforced (when the security is STARTTLS); TLS handshake and
certificate (chain, host name, expiry, version); then, for IMAP, CAPABILITY, AUTH
mechanisms, login, LIST with special-use attributes, QUOTA and APPENDLIMIT; for
POP3, login and STAT; for SMTP, EHLO (with the AUTH mechanisms on offer) and a
login (AUTH PLAIN in UTF-8; no mail is ever sent). A check that needs an earlier
one which did not pass is skipped with the reason.

The first failure decides the exit status: 4 for DNS, TCP, TLS and STARTTLS
(cannot connect), 3 for a refused login, 2 when the secret cannot be read.
No result ever contains the password or token.

The package: :mod:`~advisor.checks.model` (target, results, report),
:mod:`~advisor.checks.transport` (DNS, TCP, STARTTLS, TLS), :mod:`~advisor.checks.imap`,
:mod:`~advisor.checks.pop3_smtp`, :mod:`~advisor.checks.runner` (:func:`run_checks`) and
:mod:`~advisor.checks.target` (what to check for a profile).
"""

from __future__ import annotations

from advisor.checks.model import (
    DEFAULT_TIMEOUT,
    CheckFailed,
    CheckReport,
    CheckResult,
    CheckStatus,
    CheckTarget,
    Resolver,
    system_resolve,
)
from advisor.checks.runner import run_checks
from advisor.checks.target import parse_server_option, target_from_profile

__all__ = [
    "DEFAULT_TIMEOUT",
    "CheckFailed",
    "CheckReport",
    "CheckResult",
    "CheckStatus",
    "CheckTarget",
    "Resolver",
    "parse_server_option",
    "run_checks",
    "system_resolve",
    "target_from_profile",
]
