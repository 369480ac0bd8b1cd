"""The POP3-or-IMAP advice: a pure engine, no I/O.

The caller (``mailadvisor advise``, the wizard) fills an :class:`AdviceAnswers`
(what the user said, plus what it measured: the size of the mail on disk, the
free disk space, the server's quota), asks the provider plugins for their
:class:`~advisor.plugins.types.AdviceFactor` objects and server settings, and calls
:func:`advise`. The result, :class:`Advice`, holds the recommendation, how sure
it is, every factor in plain words, what to watch out for and the settings to
use.

How it decides: each answer becomes one :class:`Factor` that pushes toward IMAP,
toward POP3 or neither, with a weight from 0 to 1. The side with the larger
total wins (a tie goes to IMAP, today's usual choice). A *constraint* is not a
preference: when the provider offers no POP3, the advice is IMAP whatever the
answers say, and the advice says so. Every weight and every sentence the user
reads lives in :mod:`advisor.advice.rules`, so they can be reviewed in one
place; this module only weighs and picks from them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

from advisor.advice.model import (
    Advice,
    AdviceAnswers,
    ClientSettings,
    Confidence,
    Connectivity,
    Factor,
    Push,
    UnknownAnswer,
)
from advisor.advice.rules import (
    ANSWER_HELP,
    CAVEATS,
    CONFIDENCE_LEVELS,
    CONNECTIVITY_WORDS,
    DISK_SHORT_BELOW,
    DISK_TIGHT_BELOW,
    EXCLUDING_SUFFIXES,
    FACTOR_TITLES,
    GIVE_UP,
    LEAVE_COPY,
    PRIOR_WEIGHT,
    PROTOCOL_MEANING,
    QUOTA_SHORT_BELOW,
    QUOTA_TIGHT_BELOW,
    RULES,
    SECURITY_WORDS,
    STRENGTH_WORDS,
    SUMMARY,
    TIE_GOES_TO,
)
from advisor.advice.sizes import format_size
from advisor.plugins.types import (
    AdviceFactor,
    Direction,
    Protocol,
    ServerSettings,
)

# --- the engine --------------------------------------------------------------


def advise(
    answers: AdviceAnswers,
    *,
    provider_factors: Sequence[AdviceFactor] = (),
    settings: ServerSettings | None = None,
    provider: str | None = None,
) -> Advice:
    """Recommend POP3 or IMAP for ``answers``.

    ``provider_factors`` are what ``PluginHost.advice_factors(provider, email)``
    returned; ``settings`` what ``PluginHost.server_settings`` returned (a POP3
    or IMAP endpoint of None means the provider does not offer it); ``provider``
    is the provider's display name for the sentences. Raises :class:`ValueError`
    when an answer is out of range (see :meth:`AdviceAnswers.problems`).
    """
    problems = answers.problems()
    if problems:
        raise ValueError("; ".join(problems))
    name = provider or "Your provider"
    factors = _answer_factors(answers)
    excluded: dict[Protocol, str] = {}
    steps: list[str] = []
    for pf in provider_factors:
        factor = _plugin_factor(pf, provider)
        factors.append(factor)
        if pf.direction is Direction.CONSTRAINT:
            ruled_out = _ruled_out(pf.name)
            if ruled_out is None:
                steps.append(factor.reason)
            else:
                excluded.setdefault(ruled_out, factor.reason)
    if settings is not None and (settings.imap is None) != (settings.pop3 is None):
        # Only one protocol offered: the other is ruled out. (Both None says nothing.)
        missing = Protocol.POP3 if settings.pop3 is None else Protocol.IMAP
        if missing not in excluded:
            key = "provider.no_pop3" if missing is Protocol.POP3 else "provider.no_imap"
            factor = _factor(key, "provider", name, {"provider": name}, source="provider settings")
            factors.append(factor)
            excluded[missing] = factor.reason

    imap_total = math.fsum(f.weight for f in factors if f.direction is Push.IMAP)
    pop3_total = math.fsum(f.weight for f in factors if f.direction is Push.POP3)
    if math.isclose(imap_total, pop3_total, abs_tol=1e-9):
        preferred = TIE_GOES_TO
    else:
        preferred = Protocol.IMAP if imap_total > pop3_total else Protocol.POP3
    confidence = abs(imap_total - pop3_total) / (imap_total + pop3_total + PRIOR_WEIGHT)

    recommendation = preferred
    constraint: str | None = None
    caveats: list[str] = []
    if Protocol.IMAP in excluded and Protocol.POP3 in excluded:
        caveats.append(CAVEATS["both_unavailable"])
    elif preferred in excluded:
        recommendation = _other(preferred)
        constraint = excluded[preferred]
        confidence = 1.0
    elif _other(preferred) in excluded:
        constraint = excluded[_other(preferred)]
        confidence = 1.0
    # Rounded first, so the word always matches the number the user sees.
    confidence = round(min(1.0, max(0.0, confidence)), 3)
    word = next(w for low, w in CONFIDENCE_LEVELS if confidence >= low)

    ctx = _context(answers)
    leave_copy, leave_copy_note = _leave_copy(answers, recommendation, ctx)
    caveats.extend(_caveats(answers, recommendation, factors, leave_copy, ctx))
    if settings is not None and not settings.trusted:
        caveats.append(CAVEATS["untrusted_settings"])
    client = _client_settings(recommendation, settings, leave_copy, leave_copy_note)

    factors.sort(key=lambda f: (f.direction is not Push.CONSTRAINT, -f.weight))
    return Advice(
        recommendation=recommendation,
        confidence=confidence,
        confidence_word=word,
        summary=_summary(recommendation, preferred, word, factors, constraint),
        preferred=preferred,
        constraint=constraint,
        factors=tuple(factors),
        unknown=tuple(
            UnknownAnswer(n, ANSWER_HELP[n].question)
            for n in ANSWER_HELP
            if getattr(answers, n) is None
        ),
        caveats=tuple(caveats),
        steps=tuple(steps),
        settings=client,
        imap_total=round(imap_total, 3),
        pop3_total=round(pop3_total, 3),
        answers=answers,
    )


def _other(protocol: Protocol) -> Protocol:
    return Protocol.POP3 if protocol is Protocol.IMAP else Protocol.IMAP


def _ruled_out(factor_name: str) -> Protocol | None:
    lowered = factor_name.lower()
    for protocol, suffixes in EXCLUDING_SUFFIXES.items():
        if lowered.endswith(suffixes):
            return protocol
    return None


def strength_word(weight: float) -> str:
    """A weight (0..1) in a word: "strong", "moderate", "slight" or "none"."""
    if weight <= 0:
        return "none"
    return next(w for low, w in STRENGTH_WORDS if weight >= low)


def _factor(
    key: str,
    name: str,
    answer: str,
    ctx: dict[str, Any],
    answers: tuple[str, ...] = (),
    source: str = "your answers",
) -> Factor:
    rule = RULES[key]
    return Factor(
        name=name,
        title=FACTOR_TITLES[name],
        answer=answer,
        direction=rule.direction,
        weight=rule.weight,
        strength="must" if rule.direction is Push.CONSTRAINT else strength_word(rule.weight),
        reason=rule.reason.format(**ctx),
        answers=answers,
        source=source,
    )


def _plugin_factor(pf: AdviceFactor, provider: str | None) -> Factor:
    weight = pf.weight if math.isfinite(pf.weight) else 0.0
    weight = min(1.0, max(0.0, weight))
    direction = {
        Direction.IMAP: Push.IMAP,
        Direction.POP3: Push.POP3,
        Direction.CONSTRAINT: Push.CONSTRAINT,
    }[pf.direction]
    if direction is Push.CONSTRAINT:
        weight = 0.0  # a constraint decides by ruling out, never by weight
    return Factor(
        name=pf.name,
        title=FACTOR_TITLES["provider"],
        answer=provider or "",
        direction=direction,
        weight=weight,
        strength="must" if direction is Push.CONSTRAINT else strength_word(weight),
        reason=pf.explanation,
        source=f"provider {provider}" if provider else "provider",
    )


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def _context(a: AdviceAnswers) -> dict[str, Any]:
    """Values the rule templates may use."""
    ctx: dict[str, Any] = {"devices": a.devices}
    if a.mail_size is not None:
        ctx["mail"] = format_size(a.mail_size)
    if a.free_disk is not None:
        ctx["free"] = format_size(a.free_disk)
    if a.quota is not None:
        ctx["room_bytes"] = max(0, a.quota - (a.quota_used or 0))
        ctx["room"] = format_size(ctx["room_bytes"])
    if a.quota_used is not None:
        ctx["used"] = format_size(a.quota_used)
    return ctx


def _ratio(have: int, need: int) -> float:
    return math.inf if need == 0 else have / need


def _answer_factors(a: AdviceAnswers) -> list[Factor]:
    """One factor per known answer (the size answers share the disk and quota factors)."""
    ctx = _context(a)
    out: list[Factor] = []
    if a.devices is not None:
        key = "devices.several" if a.devices >= 2 else "devices.one"
        word = "device" if a.devices == 1 else "devices"
        out.append(_factor(key, "devices", f"{a.devices} {word}", ctx, ("devices",)))
    for name in ("webmail", "sync_state", "backups", "keep_off_server", "shared_mailbox"):
        value = getattr(a, name)
        if value is not None:
            key = f"{name}.{'yes' if value else 'no'}"
            out.append(_factor(key, name, _yes_no(value), ctx, (name,)))
    if a.connectivity is not None:
        c = a.connectivity
        out.append(
            _factor(
                f"connectivity.{c.value}",
                "connectivity",
                CONNECTIVITY_WORDS[c],
                ctx,
                ("connectivity",),
            )
        )
    if a.free_disk is not None:
        if a.mail_size is None:
            out.append(
                _factor("disk.free_only", "disk", f"{ctx['free']} free", ctx, ("free_disk",))
            )
        else:
            ratio = _ratio(a.free_disk, a.mail_size)
            if ratio < DISK_SHORT_BELOW:
                key = "disk.short"
            elif ratio < DISK_TIGHT_BELOW:
                key = "disk.tight"
            else:
                key = "disk.plenty"
            answer = f"{ctx['mail']} of mail, {ctx['free']} free"
            out.append(_factor(key, "disk", answer, ctx, ("mail_size", "free_disk")))
    if a.quota is not None:
        used = ("quota", "quota_used") if a.quota_used is not None else ("quota",)
        answer = f"{ctx['room']} free on the server"
        if a.mail_size is None:
            out.append(_factor("quota.unknown_size", "quota", answer, ctx, used))
        else:
            ratio = _ratio(ctx["room_bytes"], a.mail_size)
            if ratio < QUOTA_SHORT_BELOW:
                key = "quota.short"
            elif ratio < QUOTA_TIGHT_BELOW:
                key = "quota.tight"
            else:
                key = "quota.plenty"
            answer = f"{ctx['mail']} of mail, {answer}"
            out.append(_factor(key, "quota", answer, ctx, ("mail_size", *used)))
    elif a.quota_used is not None:
        out.append(
            _factor("quota.unknown_limit", "quota", f"{ctx['used']} in use", ctx, ("quota_used",))
        )
    if a.mail_size is not None and a.free_disk is None and a.quota is None:
        out.append(_factor("mail_size.alone", "mail_size", ctx["mail"], ctx, ("mail_size",)))
    return out


def _quota_short(a: AdviceAnswers, ctx: dict[str, Any], below: float) -> bool:
    if a.quota is None or a.mail_size is None:
        return False
    return _ratio(ctx["room_bytes"], a.mail_size) < below


def _leave_copy(
    a: AdviceAnswers, recommendation: Protocol, ctx: dict[str, Any]
) -> tuple[bool | None, str]:
    if recommendation is not Protocol.POP3:
        return None, ""
    if a.keep_off_server:
        return False, LEAVE_COPY["delete_wanted"]
    if _quota_short(a, ctx, QUOTA_TIGHT_BELOW):
        return False, LEAVE_COPY["delete_quota"]
    return True, LEAVE_COPY["keep"]


def _against(factors: Iterable[Factor], recommendation: Protocol) -> list[str]:
    """What the user gives up: moderate or strong factors that pushed the other way."""
    other = Push.POP3 if recommendation is Protocol.IMAP else Push.IMAP
    return [
        GIVE_UP.get(f.name, f.name)
        for f in sorted(factors, key=lambda f: -f.weight)
        if f.direction is other and f.weight >= 0.5 and f.source == "your answers"
    ]


def _caveats(
    a: AdviceAnswers,
    recommendation: Protocol,
    factors: Sequence[Factor],
    leave_copy: bool | None,
    ctx: dict[str, Any],
) -> list[str]:
    out: list[str] = []
    against = _against(factors, recommendation)
    if recommendation is Protocol.POP3:
        if a.devices in (None, 1) and a.backups is not True:
            hint = CAVEATS["pop3_copy_hint"] if leave_copy else ""
            out.append(CAVEATS["pop3_one_device"].format(copy_hint=hint))
        if leave_copy:
            out.append(CAVEATS["pop3_no_state"])
        if _quota_short(a, ctx, QUOTA_TIGHT_BELOW) and not a.keep_off_server:
            out.append(CAVEATS["pop3_over_quota"])
        if against:
            out.append(CAVEATS["pop3_against"].format(against="; ".join(against)))
    else:
        if a.backups is not True:
            out.append(CAVEATS["imap_no_backup"])
        if _quota_short(a, ctx, QUOTA_SHORT_BELOW):
            out.append(CAVEATS["imap_over_quota"].format(**ctx))
        if (
            a.free_disk is not None
            and a.mail_size is not None
            and _ratio(a.free_disk, a.mail_size) < DISK_TIGHT_BELOW
        ):
            out.append(CAVEATS["imap_disk"])
        if a.connectivity in (Connectivity.RARELY, Connectivity.METERED):
            out.append(CAVEATS["imap_offline"])
        if against:
            out.append(CAVEATS["imap_against"].format(against="; ".join(against)))
    return out


def _client_settings(
    recommendation: Protocol,
    settings: ServerSettings | None,
    leave_copy: bool | None,
    leave_copy_note: str,
) -> ClientSettings:
    endpoint = None
    if settings is not None:
        endpoint = settings.imap if recommendation is Protocol.IMAP else settings.pop3
    notes: list[str] = []
    if leave_copy_note:
        notes.append(leave_copy_note)
    if endpoint is not None:
        notes.append(SECURITY_WORDS[endpoint.security])
    return ClientSettings(
        protocol=recommendation,
        endpoint=endpoint,
        found_by=settings.source if settings is not None and endpoint is not None else None,
        leave_copy_on_server=leave_copy,
        notes=tuple(notes),
    )


def _summary(
    recommendation: Protocol,
    preferred: Protocol,
    word: Confidence,
    factors: Sequence[Factor],
    constraint: str | None,
) -> str:
    parts = [
        SUMMARY["verdict"].format(protocol=recommendation.name, word=_verdict_word(word)),
        PROTOCOL_MEANING[recommendation],
    ]
    if constraint is not None:
        key = "constrained" if preferred is not recommendation else "constrained_agrees"
        parts.append(SUMMARY[key].format(preferred=preferred.name, why=constraint))
        return " ".join(parts)
    toward = Push.IMAP if recommendation is Protocol.IMAP else Push.POP3
    pushing = [f for f in factors if f.direction is toward and f.weight > 0]
    if pushing:
        top = max(pushing, key=lambda f: f.weight)
        parts.append(SUMMARY["main_reason"].format(reason=_lower_first(top.reason)))
    elif not any(f.weight > 0 for f in factors if f.direction in (Push.IMAP, Push.POP3)):
        parts.append(SUMMARY["balanced"].format(protocol=recommendation.name))
    return " ".join(parts)


def _verdict_word(word: Confidence) -> str:
    return {
        Confidence.CLEAR: "a clear choice",
        Confidence.LIKELY: "the better fit",
        Confidence.CLOSE_CALL: "a close call",
    }[word]


def _lower_first(text: str) -> str:
    # "You read..." -> "you read..."; keep acronyms and names ("IMAP", "iCloud") as they are.
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        return text[0].lower() + text[1:]
    return text
