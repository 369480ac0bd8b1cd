"""The POP3-or-IMAP advice engine: table-driven scenarios, properties, sizes, profiles."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from advisor.advice import (
    ANSWER_HELP,
    CAVEATS,
    RULES,
    SIZE_ANSWERS,
    Advice,
    AdviceAnswers,
    Confidence,
    Connectivity,
    Push,
    advise,
    format_size,
    parse_size,
)
from advisor.errors import ProfileError
from advisor.plugins.types import (
    AdviceFactor,
    Direction,
    Endpoint,
    Protocol,
    Security,
    ServerSettings,
)
from advisor.profile import Profile, dump_profile, load_profile, parse_profile, save_profile

GB = 1000**3
IMAP, POP3 = Protocol.IMAP, Protocol.POP3
A = AdviceAnswers

ICLOUD = ServerSettings(
    imap=Endpoint(Protocol.IMAP, "imap.mail.me.com", 993, Security.TLS),
    pop3=None,
    source="plugin icloud",
)
POP_ONLY = ServerSettings(
    imap=None, pop3=Endpoint(Protocol.POP3, "pop.old.example", 995, Security.TLS)
)
BOTH = ServerSettings(
    imap=Endpoint(Protocol.IMAP, "imap.example.org", 993, Security.TLS),
    pop3=Endpoint(Protocol.POP3, "pop.example.org", 110, Security.STARTTLS, username="pat"),
    source="autoconfig",
)
OUTLOOK_TOGGLE = AdviceFactor(
    "outlook-toggle",
    Direction.CONSTRAINT,
    0.0,
    "Outlook.com needs POP or IMAP switched on in its web settings before any client works.",
)
GMAIL_POP = AdviceFactor(
    "gmail-pop", Direction.IMAP, 0.3, "Google calls POP 'prone to losing messages'."
)
NO_POP_FACTOR = AdviceFactor(
    "icloud-no-pop3", Direction.CONSTRAINT, 1.0, "iCloud Mail has no POP3 server."
)


@dataclass(frozen=True)
class Scenario:
    name: str
    answers: AdviceAnswers
    expected: Protocol
    reason: str
    """Text that must appear among the reasons, the constraint, the caveats or the summary."""
    factors: Sequence[AdviceFactor] = ()
    settings: ServerSettings | None = None
    word: Confidence | None = None
    """The expected confidence word, where the scenario is about it."""
    provider: str | None = None
    extra: dict[str, object] = field(default_factory=dict)


SCENARIOS = [
    # --- one factor at a time -----------------------------------------------------
    Scenario("no answers: IMAP as the safe default", A(), IMAP, "Nothing you told me tips",
             word=Confidence.CLOSE_CALL),
    Scenario("several devices", A(devices=3), IMAP, "on 3 devices"),
    Scenario("one device decides nothing", A(devices=1), IMAP, "one device only",
             word=Confidence.CLOSE_CALL),
    Scenario("webmail", A(webmail=True), IMAP, "in the web browser"),
    Scenario("no webmail", A(webmail=False), IMAP, "do not use webmail"),
    Scenario("state follows the user", A(sync_state=True), IMAP, "look the same everywhere"),
    Scenario("state need not follow", A(sync_state=False), IMAP, "do not need read marks"),
    Scenario("always online", A(connectivity=Connectivity.ALWAYS), IMAP, "nearly always online"),
    Scenario("mostly online", A(connectivity=Connectivity.MOSTLY), IMAP,
             "online most of the time"),
    Scenario("rarely online", A(devices=1, connectivity=Connectivity.RARELY), POP3,
             "rarely online"),
    Scenario("metered connection", A(connectivity=Connectivity.METERED), POP3, "metered"),
    Scenario("disk too small for the mail", A(mail_size=10 * GB, free_disk=5 * GB), IMAP,
             "the disk has only 5.0 GB free"),
    Scenario("disk tight", A(mail_size=10 * GB, free_disk=20 * GB), IMAP,
             "without much room to grow"),
    Scenario("disk plenty, rarely online",
             A(mail_size=1 * GB, free_disk=500 * GB, connectivity=Connectivity.RARELY), POP3,
             "plenty of room either way"),
    Scenario("quota too small for the mail", A(mail_size=20 * GB, quota=15 * GB), POP3,
             "so it would not fit"),
    Scenario("quota tight", A(mail_size=10 * GB, quota=14 * GB), POP3, "but only just"),
    Scenario("quota mostly used", A(mail_size=4 * GB, quota=15 * GB, quota_used=14 * GB),
             POP3, "leaves only 1.0 GB free"),
    Scenario("quota plenty", A(mail_size=1 * GB, quota=50 * GB), IMAP, "fits easily"),
    Scenario("no backups", A(backups=False), IMAP, "one disk failure or theft"),
    Scenario("backups kept", A(backups=True), IMAP, "protected whichever you choose"),
    Scenario("mail off the provider's servers", A(keep_off_server=True), POP3,
             "Only POP3, set to delete mail"),
    Scenario("fine with mail on the server", A(keep_off_server=False), IMAP,
             "do not mind your provider"),
    Scenario("shared mailbox", A(shared_mailbox=True), IMAP, "Other people work in this mailbox"),
    Scenario("not shared", A(shared_mailbox=False), IMAP, "Nobody else works"),
    # --- caveats --------------------------------------------------------------------
    Scenario("POP3, one device, no backup: the disk-failure warning",
             A(devices=1, connectivity=Connectivity.RARELY), POP3,
             "With POP3 and one device, one disk failure loses all your mail"),
    Scenario("POP3 with a copy on the server is only a middle ground",
             A(connectivity=Connectivity.RARELY), POP3, "does not show on the others"),
    Scenario("IMAP is no backup either", A(devices=2), IMAP, "IMAP is no backup either"),
    Scenario("IMAP over quota: keep an archive locally",
             A(devices=3, sync_state=True, mail_size=20 * GB, quota=15 * GB), IMAP,
             "Keep the older mail in local folders"),
    Scenario("IMAP with a small disk: keep only recent mail offline",
             A(devices=2, mail_size=10 * GB, free_disk=12 * GB), IMAP,
             "keep only recent messages on this computer"),
    Scenario("IMAP while rarely online: keep messages for offline use",
             A(devices=3, webmail=True, connectivity=Connectivity.RARELY), IMAP,
             "keep messages for offline use"),
    Scenario("POP3 with a nearly full server: delete after download",
             A(connectivity=Connectivity.RARELY, mail_size=10 * GB, quota=12 * GB), POP3,
             "set POP3 to delete mail from the server"),
    # --- conflicts ------------------------------------------------------------------
    Scenario("three devices outweigh privacy, but it is close",
             A(devices=3, keep_off_server=True), IMAP,
             "You give up something with IMAP: keeping your mail off",
             word=Confidence.CLOSE_CALL),
    Scenario("rarely online and private outweigh webmail",
             A(webmail=True, connectivity=Connectivity.RARELY, keep_off_server=True), POP3,
             "You give up something with POP3: complete mail in the web browser"),
    Scenario("many reasons agree: a clear IMAP",
             A(devices=3, webmail=True, sync_state=True, backups=False), IMAP, "on 3 devices",
             word=Confidence.CLEAR),
    Scenario("many reasons agree: a clear POP3",
             A(devices=1, connectivity=Connectivity.METERED, keep_off_server=True,
               backups=True, mail_size=30 * GB, quota=15 * GB), POP3,
             "want your mail off", word=Confidence.CLEAR),
    Scenario("an exact tie goes to IMAP", A(webmail=True, connectivity=Connectivity.RARELY),
             IMAP, "rarely online", word=Confidence.CLOSE_CALL),
    # --- provider constraints and factors --------------------------------------------
    Scenario("no POP3 at the provider overrides the answers",
             A(devices=1, connectivity=Connectivity.RARELY, keep_off_server=True), IMAP,
             "Your answers lean toward POP3, but this is not a choice here: iCloud offers no POP3",
             settings=ICLOUD, provider="iCloud", word=Confidence.CLEAR),
    Scenario("a plugin's no-POP3 constraint overrides the answers",
             A(keep_off_server=True), IMAP, "iCloud Mail has no POP3 server",
             factors=[NO_POP_FACTOR], word=Confidence.CLEAR),
    Scenario("a constraint that agrees says so", A(devices=3), IMAP,
             "It is also the only choice here", settings=ICLOUD, provider="iCloud"),
    Scenario("no IMAP at the provider", A(devices=3, webmail=True), POP3,
             "Your provider offers no IMAP at all", settings=POP_ONLY),
    Scenario("a switch to turn on is a step, not a verdict",
             A(connectivity=Connectivity.RARELY, keep_off_server=True), POP3,
             "needs POP or IMAP switched on", factors=[OUTLOOK_TOGGLE]),
    Scenario("a provider's IMAP factor tips a balanced case", A(devices=1), IMAP,
             "prone to losing messages", factors=[GMAIL_POP]),
    Scenario("a provider's POP3 factor counts too", A(),
             POP3, "Only POP3 keeps up here",
             factors=[AdviceFactor("slow-imap", Direction.POP3, 0.5, "Only POP3 keeps up here.")]),
    Scenario("settings found indirectly are flagged", A(devices=2), IMAP, "found indirectly",
             settings=dataclasses.replace(BOTH, trusted=False)),
    # --- edge values ------------------------------------------------------------------
    Scenario("no mail at all and a full disk", A(mail_size=0, free_disk=0), IMAP,
             "plenty of room either way"),
    Scenario("a full disk with some mail", A(mail_size=1, free_disk=0), IMAP,
             "the disk has only 0 bytes free"),
    Scenario("free disk without the mail size", A(free_disk=20 * GB), IMAP,
             "cannot be compared"),
    Scenario("quota without the mail size", A(quota=15 * GB), IMAP, "cannot be compared"),
    Scenario("quota used without the limit", A(quota_used=3 * GB), IMAP,
             "not how much storage you have"),
    Scenario("mail size alone", A(mail_size=3 * GB), IMAP, "nothing to compare it with"),
    Scenario("used beyond the limit", A(mail_size=1, quota=5 * GB, quota_used=6 * GB), POP3,
             "leaves only 0 bytes free"),
    Scenario("a huge device count", A(devices=10_000), IMAP, "on 10000 devices"),
]  # fmt: skip


def _all_text(advice: Advice) -> str:
    parts = [advice.summary, *(f.reason for f in advice.factors), *advice.caveats, *advice.steps]
    if advice.constraint:
        parts.append(advice.constraint)
    parts.extend(advice.settings.notes)
    return "\n".join(parts)


def _run(s: Scenario) -> Advice:
    return advise(s.answers, provider_factors=s.factors, settings=s.settings, provider=s.provider)


def test_there_are_enough_scenarios() -> None:
    assert len(SCENARIOS) >= 25
    assert len({s.name for s in SCENARIOS}) == len(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.name for s in SCENARIOS])
def test_scenario(scenario: Scenario) -> None:
    advice = _run(scenario)
    assert advice.recommendation is scenario.expected, advice.summary
    assert scenario.reason in _all_text(advice)
    if scenario.word is not None:
        assert advice.confidence_word is scenario.word, advice.confidence
    assert 0.0 <= advice.confidence <= 1.0


def _template(text: str) -> re.Pattern[str]:
    """A sentence template from the table as a pattern: each {placeholder} matches any text."""
    parts = re.split(r"\{\w+\}", text)
    return re.compile(".+?".join(re.escape(p) for p in parts))


def test_every_rule_and_caveat_is_exercised_by_a_scenario() -> None:
    texts = [_all_text(_run(s)) for s in SCENARIOS]
    used_rules = {k for k, r in RULES.items() if any(_template(r.reason).search(t) for t in texts)}
    used_caveats = {k for k, c in CAVEATS.items() if any(_template(c).search(t) for t in texts)}
    assert set(RULES) - used_rules == set()
    # pop3_copy_hint is a fragment; both_unavailable needs a provider with neither protocol.
    assert set(CAVEATS) - used_caveats <= {"pop3_copy_hint", "both_unavailable"}


# --- details of the output ------------------------------------------------------------


def test_factors_carry_direction_weight_and_plain_strength() -> None:
    advice = advise(A(devices=3, connectivity=Connectivity.METERED, backups=True))
    by_name = {f.name: f for f in advice.factors}
    assert (by_name["devices"].direction, by_name["devices"].strength) == (Push.IMAP, "strong")
    assert by_name["devices"].answer == "3 devices"
    assert by_name["connectivity"].direction is Push.POP3
    assert by_name["connectivity"].strength == "moderate"
    assert by_name["connectivity"].answer == "metered or slow connection"
    assert (by_name["backups"].direction, by_name["backups"].strength) == (Push.NEITHER, "none")
    assert advice.imap_total == 1.0 and advice.pop3_total == 0.6
    # Strongest first, so a reader meets the deciding reasons first.
    weights = [f.weight for f in advice.factors]
    assert weights == sorted(weights, reverse=True)


def test_unknown_answers_are_listed_and_count_for_nothing() -> None:
    advice = advise(A(devices=2, backups=True))
    assert [u.name for u in advice.unknown] == [
        n for n in ANSWER_HELP if n not in {"devices", "backups"}
    ]
    assert all(u.question.endswith("?") for u in advice.unknown)
    assert advise(A(devices=2)).recommendation is IMAP
    assert advise(A(devices=2)).imap_total == advice.imap_total


def test_settings_for_imap_come_from_the_provider() -> None:
    advice = advise(A(devices=2), settings=BOTH)
    s = advice.settings
    assert s.protocol is IMAP and s.endpoint == BOTH.imap
    assert s.found_by == "autoconfig" and s.leave_copy_on_server is None
    assert any("SSL/TLS" in n for n in s.notes)


def test_settings_for_pop3_say_whether_to_leave_a_copy() -> None:
    keep = advise(A(connectivity=Connectivity.RARELY), settings=BOTH).settings
    assert keep.protocol is POP3 and keep.endpoint == BOTH.pop3
    assert keep.leave_copy_on_server is True
    assert any("Leave a copy on the server" in n for n in keep.notes)
    assert any("STARTTLS" in n for n in keep.notes)
    delete = advise(A(keep_off_server=True), settings=BOTH).settings
    assert delete.leave_copy_on_server is False
    assert any("Do not leave a copy" in n for n in delete.notes)
    full = advise(A(connectivity=Connectivity.RARELY, mail_size=10 * GB, quota=12 * GB)).settings
    assert full.leave_copy_on_server is False and full.endpoint is None


def test_one_device_caveat_offers_the_server_copy_only_when_it_is_kept() -> None:
    kept = advise(A(devices=1, connectivity=Connectivity.RARELY)).caveats
    assert any("or leave a copy on the server as a safety net" in c for c in kept)
    deleted = advise(A(devices=1, keep_off_server=True)).caveats
    one = [c for c in deleted if c.startswith("With POP3 and one device")]
    assert one and "leave a copy" not in one[0]
    backed_up = advise(A(devices=1, keep_off_server=True, backups=True)).caveats
    assert not any(c.startswith("With POP3 and one device") for c in backed_up)


def test_a_constraint_is_named_and_decides_with_full_confidence() -> None:
    advice = advise(A(keep_off_server=True, connectivity=Connectivity.RARELY), settings=ICLOUD)
    assert advice.preferred is POP3 and advice.recommendation is IMAP
    assert advice.constraint == "Your provider offers no POP3 at all, only IMAP."
    assert advice.confidence == 1.0
    (constraint,) = [f for f in advice.factors if f.direction is Push.CONSTRAINT]
    assert constraint.strength == "must" and advice.factors[0] is constraint


def test_a_step_constraint_does_not_change_the_verdict() -> None:
    plain = advise(A(keep_off_server=True))
    with_step = advise(A(keep_off_server=True), provider_factors=[OUTLOOK_TOGGLE])
    assert with_step.recommendation is plain.recommendation is POP3
    assert with_step.confidence == plain.confidence
    assert with_step.constraint is None
    assert with_step.steps == (OUTLOOK_TOGGLE.explanation,)


def test_neither_protocol_offered_keeps_the_preference_and_says_so() -> None:
    advice = advise(A(devices=3), provider_factors=[NO_POP_FACTOR], settings=POP_ONLY)
    assert advice.recommendation is IMAP and advice.constraint is None
    assert CAVEATS["both_unavailable"] in advice.caveats


def test_out_of_range_plugin_weights_are_clamped() -> None:
    huge = AdviceFactor("huge", Direction.POP3, 50.0, "a plugin that shouts")
    nan = AdviceFactor("nan", Direction.IMAP, float("nan"), "a plugin that is confused")
    advice = advise(A(), provider_factors=[huge, nan])
    by_name = {f.name: f for f in advice.factors}
    assert by_name["huge"].weight == 1.0 and by_name["nan"].weight == 0.0
    assert 0.0 <= advice.confidence <= 1.0


@pytest.mark.parametrize(
    ("answers", "problem"),
    [
        (A(devices=0), "devices must be a whole number of at least 1"),
        (A(devices=True), "devices must be a whole number"),
        (A(mail_size=-1), "mail_size must be a size in bytes"),
        (A(webmail="yes"), "webmail must be yes or no"),  # type: ignore[arg-type]
        (A(connectivity="always"), "connectivity must be one of"),  # type: ignore[arg-type]
    ],
)
def test_invalid_answers_are_refused(answers: AdviceAnswers, problem: str) -> None:
    with pytest.raises(ValueError, match=re.escape(problem)):
        advise(answers)


def test_every_sentence_is_plain_words() -> None:
    jargon = re.compile(r"\b(quota|APPEND|UID|SMTP|MUA|MTA|RFC|IDLE|protocol)\b", re.I)
    texts = [r.reason for r in RULES.values()] + list(CAVEATS.values())
    texts += [h.question + " " + h.hint for n, h in ANSWER_HELP.items() if n not in SIZE_ANSWERS]
    for text in texts:
        assert not jargon.search(text), text
    for rule in RULES.values():
        assert 0.0 <= rule.weight <= 1.0
        # Each reason that pushes explains what the protocol does, not just its name.
        if rule.direction in (Push.IMAP, Push.POP3):
            assert re.search(r"server|device|download|disk|connection", rule.reason), rule.reason


def test_answer_help_covers_every_answer_in_order() -> None:
    assert list(ANSWER_HELP) == [f.name for f in dataclasses.fields(AdviceAnswers)]


def test_merged_lets_the_override_win_only_where_it_knows() -> None:
    base = A(devices=1, webmail=True, connectivity=Connectivity.RARELY)
    merged = base.merged(A(webmail=False, quota=5))
    assert merged == A(devices=1, webmail=False, connectivity=Connectivity.RARELY, quota=5)
    assert base.webmail is True  # unchanged


# --- properties -----------------------------------------------------------------------

_sizes = st.one_of(st.none(), st.integers(min_value=0, max_value=10**13))
answers_strategy = st.builds(
    AdviceAnswers,
    devices=st.one_of(st.none(), st.integers(min_value=1, max_value=50)),
    webmail=st.one_of(st.none(), st.booleans()),
    sync_state=st.one_of(st.none(), st.booleans()),
    connectivity=st.one_of(st.none(), st.sampled_from(Connectivity)),
    backups=st.one_of(st.none(), st.booleans()),
    keep_off_server=st.one_of(st.none(), st.booleans()),
    shared_mailbox=st.one_of(st.none(), st.booleans()),
    mail_size=_sizes,
    free_disk=_sizes,
    quota=_sizes,
    quota_used=_sizes,
)
weights = st.one_of(
    st.floats(min_value=0, max_value=1), st.floats(allow_nan=True, allow_infinity=True)
)
plugin_factors = st.lists(
    st.builds(
        AdviceFactor,
        name=st.sampled_from(["a", "b", "speed", "toggle"]),
        direction=st.sampled_from([Direction.IMAP, Direction.POP3, Direction.CONSTRAINT]),
        weight=weights,
        explanation=st.just("a provider fact"),
    ),
    max_size=4,
)
settings_strategy = st.sampled_from([None, ICLOUD, POP_ONLY, BOTH])
PROPERTY = settings(max_examples=200, deadline=None, database=None)


@PROPERTY
@given(answers_strategy, plugin_factors, settings_strategy, weights)
def test_an_imap_factor_never_flips_imap_to_pop3(
    answers: AdviceAnswers,
    factors: list[AdviceFactor],
    server: ServerSettings | None,
    weight: float,
) -> None:
    before = advise(answers, provider_factors=factors, settings=server)
    extra = AdviceFactor("more-imap", Direction.IMAP, weight, "IMAP is better here")
    after = advise(answers, provider_factors=[*factors, extra], settings=server)
    if before.recommendation is IMAP:
        assert after.recommendation is IMAP
    if before.preferred is IMAP:
        assert after.preferred is IMAP


@PROPERTY
@given(answers_strategy, plugin_factors, weights)
def test_a_pop3_factor_never_flips_pop3_to_imap(
    answers: AdviceAnswers, factors: list[AdviceFactor], weight: float
) -> None:
    before = advise(answers, provider_factors=factors)
    extra = AdviceFactor("more-pop3", Direction.POP3, weight, "POP3 is better here")
    after = advise(answers, provider_factors=[*factors, extra])
    if before.preferred is POP3:
        assert after.preferred is POP3


@PROPERTY
@given(answers_strategy, plugin_factors, settings_strategy)
def test_confidence_is_between_0_and_1_and_matches_its_word(
    answers: AdviceAnswers, factors: list[AdviceFactor], server: ServerSettings | None
) -> None:
    advice = advise(answers, provider_factors=factors, settings=server)
    assert 0.0 <= advice.confidence <= 1.0
    if advice.confidence >= 0.6:
        assert advice.confidence_word is Confidence.CLEAR
    elif advice.confidence < 0.25:
        assert advice.confidence_word is Confidence.CLOSE_CALL
    else:
        assert advice.confidence_word is Confidence.LIKELY


@PROPERTY
@given(answers_strategy, plugin_factors)
def test_every_given_answer_appears_in_the_factors(
    answers: AdviceAnswers, factors: list[AdviceFactor]
) -> None:
    advice = advise(answers, provider_factors=factors)
    covered = {name for f in advice.factors for name in f.answers}
    assert set(answers.given()) <= covered
    assert {u.name for u in advice.unknown} == set(ANSWER_HELP) - set(answers.given())
    for f in advice.factors:
        assert f.reason and f.title and f.strength
        assert 0.0 <= f.weight <= 1.0


@PROPERTY
@given(answers_strategy, plugin_factors)
def test_no_pop3_at_the_provider_always_means_imap(
    answers: AdviceAnswers, factors: list[AdviceFactor]
) -> None:
    advice = advise(answers, provider_factors=factors, settings=ICLOUD)
    assert advice.recommendation is IMAP
    assert advice.constraint is not None
    assert advice.settings.endpoint == ICLOUD.imap


# --- sizes ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("4GB", 4 * GB),
        ("500 MB", 500 * 1000**2),
        ("1.5 GiB", 1536 * 1024**2),
        ("1.5gib", 1536 * 1024**2),
        ("2 TB", 2 * 1000**4),
        ("10k", 10_000),
        ("64 KiB", 65_536),
        ("1048576", 1_048_576),
        ("0", 0),
        (" .5 GB ", 500 * 1000**2),
        ("7 B", 7),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "4 XB", "-1GB", "1,5 GB", "4 GB extra", "3 iB", "nan"])
def test_parse_size_refuses_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match='expected a size like "4GB"'):
        parse_size(text)


def test_format_size() -> None:
    assert format_size(4 * GB) == "4.0 GB"
    assert format_size(0) == "0 bytes"


# --- the [advice] table of a profile --------------------------------------------------

BASE = """\
version = 1
[account]
email = "pat@example.org"
[auth]
password_env = "PAT_PASSWORD"
"""


def test_profile_without_advice_has_no_answers(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(BASE)
    profile = load_profile(path)
    assert profile.advice == AdviceAnswers()
    assert "[advice]" not in dump_profile(profile)


def test_profile_advice_table_is_read(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        BASE
        + '[advice]\ndevices = 2\nwebmail = true\nconnectivity = "metered"\n'
        + 'mail_size = "1.5 GiB"\nquota = 15000000000\nkeep_off_server = false\n'
    )
    advice = load_profile(path).advice
    assert advice == A(
        devices=2,
        webmail=True,
        connectivity=Connectivity.METERED,
        mail_size=1536 * 1024**2,
        quota=15 * GB,
        keep_off_server=False,
    )


def test_profile_advice_round_trips(tmp_path: Path) -> None:
    answers = A(
        devices=4,
        webmail=False,
        sync_state=True,
        connectivity=Connectivity.RARELY,
        backups=True,
        keep_off_server=False,
        shared_mailbox=True,
        mail_size=123,
        free_disk=0,
        quota=10 * GB,
        quota_used=GB,
    )
    base = tmp_path / "base.toml"
    base.write_text(BASE)
    profile = load_profile(base)
    profile.advice = answers
    again = load_profile(save_profile(profile, tmp_path / "again.toml"))
    assert again.advice == answers
    assert 'connectivity = "rarely"' in dump_profile(profile)


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ("devices = 0", "devices", "a whole number of devices, 1 or more"),
        ("devices = true", "devices", "a whole number of devices"),
        ('webmail = "yes"', "webmail", "true or false"),
        ('connectivity = "sometimes"', "connectivity", '"always", "mostly"'),
        ('mail_size = "lots"', "mail_size", 'a size like "4GB"'),
        ("free_disk = -5", "free_disk", 'a size like "4GB"'),
        ("phones = 2", "phones", "unknown key in [advice]; expected one of: backups"),
    ],
)
def test_profile_advice_errors_name_key_and_line(
    tmp_path: Path, table: str, key: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(BASE + "[advice]\n" + table + "\n")
    with pytest.raises(ProfileError) as info:
        load_profile(path)
    err = info.value
    assert err.key == f"[advice] {key}"
    assert err.line == BASE.count("\n") + 2
    assert message in err.detail


def test_parse_profile_accepts_advice_as_a_table_only(tmp_path: Path) -> None:
    data = {
        "version": 1,
        "account": {"email": "pat@example.org"},
        "auth": {"password_env": "X"},
        "advice": 3,
    }
    with pytest.raises(ProfileError, match=r"expected a table \[advice\]"):
        parse_profile(data, path=tmp_path / "x.toml")
    assert isinstance(Profile().advice, AdviceAnswers)
