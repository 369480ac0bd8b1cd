"""Running the checks: every server of a target in order, skipping what cannot run."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from advisor.checks.imap import _ImapChecks
from advisor.checks.model import (
    CheckFailed,
    CheckReport,
    CheckResult,
    CheckStatus,
    CheckTarget,
    Resolver,
    system_resolve,
)
from advisor.checks.pop3_smtp import _Pop3Checks, _SmtpChecks
from advisor.checks.transport import _Secret, _ServerChecks
from advisor.connection.imap import tls_context
from advisor.errors import (
    UsageError,
)
from advisor.plugins.types import Protocol

_CHECKS: dict[Protocol, type[_ServerChecks]] = {
    Protocol.IMAP: _ImapChecks,
    Protocol.POP3: _Pop3Checks,
    Protocol.SMTP: _SmtpChecks,
}


def run_checks(
    target: CheckTarget,
    *,
    on_result: Callable[[CheckResult], None] | None = None,
    resolve: Resolver | None = None,
) -> CheckReport:
    """Run every check against the target's servers, in order; never raises for a failure.

    ``on_result`` is called as each result is ready (to print progress). ``resolve``
    replaces the system's name resolution (tests).
    """
    if target.imap is None and target.pop3 is None and target.smtp is None:
        raise UsageError("nothing to check: no IMAP, POP3 or SMTP server is known")
    if target.ca_file is not None:
        tls_context(target.ca_file)  # a broken ca_file is a usage error, said once
    secret = _Secret(target)
    results: list[CheckResult] = []
    servers = tuple(e for e in (target.imap, target.pop3, target.smtp) if e is not None)
    for endpoint in servers:
        checks = _CHECKS[endpoint.protocol](endpoint, target, secret, resolve or system_resolve)
        try:
            for result in _run_steps(checks):
                results.append(result)
                if on_result is not None:
                    on_result(result)
        finally:
            checks.close()
    return CheckReport(target.email, servers, target.source, tuple(results))


def _run_steps(checks: _ServerChecks) -> Iterator[CheckResult]:
    """Run one server's checks in order, skipping those whose prerequisites did not pass."""
    protocol = checks.endpoint.protocol
    prefix = protocol.value
    passed: set[str] = set()
    titles: dict[str, str] = {}
    for suffix, title, needs, fn in checks.steps():
        titles[suffix] = title
        full_title = f"{checks.name} {title}" if not title.startswith(checks.name) else title
        missing = [n for n in needs if n not in passed]
        if missing:
            yield CheckResult(
                f"{prefix}.{suffix}",
                protocol,
                full_title,
                CheckStatus.SKIP,
                f"skipped: needs {checks.name} {titles.get(missing[0], missing[0])}, "
                "which did not pass",
            )
            continue
        start = time.monotonic()
        try:
            outcome = fn()
        except CheckFailed as exc:
            yield CheckResult(
                f"{prefix}.{suffix}",
                protocol,
                full_title,
                CheckStatus.FAIL,
                exc.detail,
                exc.fix,
                exc.exit_status,
                round(time.monotonic() - start, 3),
            )
            continue
        if outcome.status in (CheckStatus.OK, CheckStatus.WARN):
            passed.add(suffix)
        yield CheckResult(
            f"{prefix}.{suffix}",
            protocol,
            full_title,
            outcome.status,
            outcome.detail,
            outcome.fix,
            seconds=round(time.monotonic() - start, 3),
        )
