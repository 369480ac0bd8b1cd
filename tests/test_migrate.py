"""Migration into a real Dovecot: folders, flags, dates, bytes, and exactly once."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest

from advisor.cli import run
from advisor.connection.account import resolve_account
from advisor.errors import UsageError
from advisor.plugins.manager import load_plugins
from advisor.plugins.types import Endpoint, Protocol, Security, ServerSettings
from advisor.profile import load_profile
from tests.harness.cutting_proxy import CuttingProxy
from tests.harness.dovecot import Account, DovecotFactory, DovecotServer
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import (
    SIZE_LIMIT_CONFIG,
    body_counts,
    connect,
    server_messages,
    write_profile,
)
from tests.test_plugins import FakeEntryPoint, _installed, _module

FOLDERS = [("INBOX",), ("Sent",), ("Work", "Projects"), ("Entwürfe & Co",)]


def migrate(
    profile: Path, journal: Path, *extra: str, capsys: pytest.CaptureFixture[str]
) -> tuple[int, dict]:
    status = run(
        ["migrate", "--profile", str(profile), "--journal", str(journal), "--json", *extra]
    )
    out = capsys.readouterr().out
    return status, json.loads(out)


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[GeneratedMessage]]:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(40, FOLDERS, seed=7, sizes="small", without_message_id=0.2))
    )
    return root, msgs


def test_migrates_folders_flags_dates_and_exact_bytes(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0, report
    assert report["uploaded"] == len(msgs) and report["failed"] == 0
    assert report["verified"] is True

    on_server = server_messages(dovecot, imap_account)
    expected_folder = {
        ("INBOX",): "INBOX",
        ("Sent",): "Sent",  # the server's \Sent folder, not a new one
        ("Work", "Projects"): "Work/Projects",
        ("Entwürfe & Co",): "Entwürfe & Co",  # modified UTF-7 on the wire, decoded here
    }
    for folder, name in expected_folder.items():
        want = sorted((m for m in msgs if m.folder == folder), key=lambda m: crlf(m.data))
        got = sorted(on_server[name], key=lambda m: m[b"BODY[]"])  # type: ignore[arg-type,return-value]
        assert len(got) == len(want), name
        for g, w in zip(got, want, strict=True):
            assert g[b"BODY[]"] == crlf(w.data)
            flags = {f.decode() for f in g[b"FLAGS"]}  # type: ignore[attr-defined]
            assert flags - {"\\Recent"} == set(w.flags)
            internal = g[b"INTERNALDATE"]
            assert internal.astimezone(UTC).replace(tzinfo=None) == w.date.astimezone(  # type: ignore[attr-defined]
                UTC
            ).replace(tzinfo=None, microsecond=0)


def test_rerun_uploads_nothing(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    journal = tmp_path / "j.sqlite"
    assert migrate(profile, journal, capsys=capsys)[0] == 0
    status, again = migrate(profile, journal, capsys=capsys)
    assert status == 0
    assert again["uploaded"] == 0
    assert again["already_done"] == len(msgs)
    assert max(body_counts(dovecot, imap_account).values()) == 1


def test_lost_journal_and_other_tools_uploads_do_not_duplicate(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    # Another tool already put a third of the inbox there (with and without Message-IDs).
    inbox = [m for m in msgs if m.folder == ("INBOX",)]
    early = inbox[: len(inbox) // 3]
    assert any(m.message_id is None for m in msgs)
    with connect(dovecot, imap_account) as client:
        for m in early:
            client.append("INBOX", crlf(m.data), [], m.date)
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    status, first = migrate(profile, tmp_path / "one.sqlite", capsys=capsys)
    assert status == 0
    assert first["found_on_server"] == len(early)
    assert first["uploaded"] == len(msgs) - len(early)
    # The journal is lost: a new one finds everything on the server.
    status, second = migrate(profile, tmp_path / "two.sqlite", capsys=capsys)
    assert status == 0
    assert second["uploaded"] == 0 and second["found_on_server"] == len(msgs)
    counts = body_counts(dovecot, imap_account)
    assert sum(counts.values()) == len(msgs) and max(counts.values()) == 1


def test_dry_run_changes_nothing_and_shows_the_plan(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    before = server_messages(dovecot, imap_account)
    status, plan = migrate(profile, tmp_path / "j.sqlite", "--dry-run", capsys=capsys)
    assert status == 0 and plan["dry_run"] is True
    assert server_messages(dovecot, imap_account) == before
    rows = {f["source"]: f for f in plan["folders"]}
    assert rows["Work/Projects"]["target"] == "Work/Projects"
    assert rows["Sent"]["target"] == "Sent"
    assert sum(f["to_upload"] for f in plan["folders"]) == len(msgs)
    assert sum(f["bytes"] for f in plan["folders"]) == sum(len(m.data) for m in msgs)
    # Human form too.
    assert (
        run(
            [
                "migrate",
                "--profile",
                str(profile),
                "--journal",
                str(tmp_path / "j.sqlite"),
                "--dry-run",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    assert "dry run" in text and "Work/Projects" in text


def test_deleted_messages_skipped_or_recovered(
    tmp_path: Path,
    dovecot: DovecotServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(6, [("INBOX",)], seed=3, sizes="small")), deleted=[1, 4]
    )
    account = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0
    assert report["uploaded"] == 4 and report["skipped_deleted"] == 2
    account2 = dovecot.add_user()
    profile2, _ = write_profile(tmp_path, dovecot, account2, root, migration="skip_deleted = false")
    status, report = migrate(profile2, tmp_path / "j2.sqlite", capsys=capsys)
    assert status == 0 and report["uploaded"] == 6
    on_server = server_messages(dovecot, account2)
    recovered = on_server["Recovered deleted messages/INBOX"]
    assert sorted(m[b"BODY[]"] for m in recovered) == sorted(  # type: ignore[type-var]
        crlf(msgs[i].data) for i in (1, 4)
    )
    assert all(b"\\Deleted" not in m[b"FLAGS"] for m in recovered)  # type: ignore[operator]


def test_target_prefix_and_folder_map(
    tmp_path: Path,
    dovecot: DovecotServer,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    account = dovecot.add_user()
    profile, _ = write_profile(
        tmp_path,
        dovecot,
        account,
        root,
        migration='target_prefix = "Old mail"\nfolder_map = { "Work/Projects" = "Projects" }',
    )
    status, _report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0
    on_server = server_messages(dovecot, account)
    assert len(on_server["Old mail/INBOX"]) == sum(m.folder == ("INBOX",) for m in msgs)
    assert len(on_server["Old mail/Sent"]) == sum(m.folder == ("Sent",) for m in msgs)
    assert len(on_server["Projects"]) == sum(m.folder == ("Work", "Projects") for m in msgs)
    assert on_server["INBOX"] == [] and on_server["Sent"] == []


@pytest.mark.parametrize(
    ("variant", "expected"),
    [
        (
            {"separator": ".", "prefix": "INBOX."},
            {
                ("Sent",): "INBOX.Sent",
                ("Work", "Projects"): "INBOX.Work.Projects",
                ("Entwürfe & Co",): "INBOX.Entwürfe & Co",
                ("INBOX",): "INBOX",
            },
        ),
        (
            {
                "special_use": {
                    "[Gmail]/Sent Mail": "\\Sent",
                    "[Gmail]/All Mail": "\\All",
                    "[Gmail]/Trash": "\\Trash",
                }
            },
            {
                ("Sent",): "[Gmail]/Sent Mail",
                ("Work", "Projects"): "Work/Projects",
                ("INBOX",): "INBOX",
            },
        ),
    ],
)
def test_server_layouts(
    tmp_path: Path,
    dovecot_factory: DovecotFactory,
    variant: dict,
    expected: dict,
    store: tuple[Path, list[GeneratedMessage]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, msgs = store
    server = dovecot_factory(**variant)
    account = server.add_user()
    profile, _ = write_profile(tmp_path, server, account, root)
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0, report
    on_server = server_messages(server, account)
    for folder, name in expected.items():
        assert len(on_server[name]) == sum(m.folder == folder for m in msgs), name
    assert all(not v for k, v in on_server.items() if "All Mail" in k)


def test_refused_message_is_reported_kept_and_retried(
    tmp_path: Path,
    dovecot_factory: DovecotFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    dovecot = dovecot_factory(extra_config=SIZE_LIMIT_CONFIG)
    root = tmp_path / "Maildir"
    msgs = list(generate(12, [("INBOX",)], seed=5, sizes="small"))
    msgs.append(
        GeneratedMessage(
            ("INBOX",),
            msgs[0].data.replace(b"#0", b"#big") + b"x" * 300_000,
            msgs[0].date,
            frozenset(),
            None,
        )
    )
    write_maildir(root, msgs)
    account = dovecot.add_user()  # the server takes the small ones only
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "j.sqlite"
    status, report = migrate(profile, journal, capsys=capsys)
    assert status == 1
    assert report["uploaded"] == 12 and report["failed"] == 1
    (failure,) = report["failures"]
    assert "refused" in failure["reason"] and "maximum size" in failure["reason"]
    assert (root / "cur").exists() and len(list((root / "cur").iterdir())) == 13  # kept
    # Human output names it too, and exit status stays 1 on a re-run until it fits.
    assert run(["migrate", "--profile", str(profile), "--journal", str(journal)]) == 1
    assert "not migrated" in capsys.readouterr().out
    with connect(dovecot, account) as client:
        client.select_folder("INBOX", readonly=True)
        assert len(client.search()) == 12


def test_provider_rule_sets_flagged_again_after_append(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Outlook drops \\Flagged given with APPEND: the outlook plugin asks for a STORE after."""
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(30, [("INBOX",)], seed=9, sizes="small")))
    flagged = {crlf(m.data) for m in msgs if "\\Flagged" in m.flags}
    assert 0 < len(flagged) < len(msgs)
    account = dovecot.add_user()
    info = dovecot.info
    # A plaintext link through a recording proxy, to see the commands themselves.
    with CuttingProxy((info.imap_plain_host, info.imap_plain_port), 0, cuts=0) as proxy:
        profile, _ = write_profile(tmp_path, dovecot, account, root, provider="outlook")
        text = profile.read_text().replace(f"port = {info.imaps_port}", f"port = {proxy.port}")
        text = text.replace('security = "tls"', 'security = "none"\nallow_insecure = true')
        profile.write_text(text.replace(f'host = "{info.hostname}"', 'host = "127.0.0.1"'))
        status, _report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
        wire = bytes(proxy.sent)
    assert status == 0
    appends = [line for line in wire.split(b"\r\n") if b" APPEND " in line]
    assert appends and not any(b"\\Flagged" in line for line in appends)
    assert b"+FLAGS.SILENT (\\Flagged)" in wire
    with connect(dovecot, account) as client:
        client.select_folder("INBOX", readonly=True)
        data = client.fetch(client.search("ALL"), ["FLAGS", "BODY.PEEK[]"])
    assert {d[b"BODY[]"] for d in data.values() if b"\\Flagged" in d[b"FLAGS"]} == flagged


def test_from_a_live_pop3_account(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """The old POP3 mailbox itself as the source: downloaded (never deleted), then uploaded."""
    msgs = list(generate(8, [("INBOX",)], seed=21, sizes="small"))
    old = dovecot.add_user(password="same-Secret-1")
    new = dovecot.add_user(password="same-Secret-1")
    with connect(dovecot, old) as client:
        for m in msgs:
            client.append("INBOX", crlf(m.data))
    profile, _ = write_profile(tmp_path, dovecot, new, tmp_path)
    url = f"pop3s://{old.username}@{dovecot.info.hostname}:{dovecot.info.pop3s_port}"
    text = profile.read_text().replace('kind = "maildir"', 'kind = "pop3"')
    profile.write_text(text.replace(f'path = "{tmp_path}"', f'path = "{url}"'))
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0, report
    assert report["uploaded"] == len(msgs)
    assert sorted(m[b"BODY[]"] for m in server_messages(dovecot, new)["INBOX"]) == sorted(
        crlf(m.data) for m in msgs
    )
    assert len(server_messages(dovecot, old)["INBOX"]) == len(msgs)  # nothing deleted
    status, again = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0 and again["uploaded"] == 0 and again["already_done"] == len(msgs)


def test_untrusted_discovered_server_is_not_sent_a_password(tmp_path: Path) -> None:
    """Settings learnt outside the user's domain need the user's confirmation first."""

    def settings(provider: str, email: str) -> ServerSettings | None:
        imap = Endpoint(Protocol.IMAP, "imap.elsewhere.test", 993, Security.TLS)
        return ServerSettings(imap=imap, source="SRV", trusted=False)

    plugin = _module("srvmail", "srvmail", mailadvisor_server_settings=settings)
    plugins = load_plugins([*_installed(), FakeEntryPoint("srvmail", plugin, "srvmail")])
    path = tmp_path / "p.toml"
    path.write_text(
        'version = 1\n[account]\nemail = "a@example.org"\nprovider = "srvmail"\n'
        '[auth]\npassword_env = "NOPE"\n'
    )
    with pytest.raises(UsageError, match="not trusted yet"):
        resolve_account(load_profile(path), plugins)


def test_a_folder_the_server_refuses_fails_alone(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Dovecot refuses names starting with "~": those messages are reported, the rest go."""
    root = tmp_path / "Maildir"
    msgs = write_maildir(
        root, list(generate(9, [("INBOX",), ("~old",), ("Work",)], seed=8, sizes="small"))
    )
    account = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    status, report = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 1
    assert report["uploaded"] == 6 and report["failed"] == 3
    assert all("refused to create folder '~old'" in f["reason"] for f in report["failures"])
    on_server = server_messages(dovecot, account)
    assert len(on_server["INBOX"]) == len(on_server["Work"]) == 3
    # The user renames it in the profile and runs again: only those three go up.
    text = profile.read_text().replace(
        "[migration]\n", '[migration]\nfolder_map = { "~old" = "old" }\n'
    )
    profile.write_text(text)
    status, again = migrate(profile, tmp_path / "j.sqlite", capsys=capsys)
    assert status == 0 and again["uploaded"] == 3 and again["already_done"] == 6
    assert len(msgs) == 9


def test_a_message_deleted_on_the_server_is_uploaded_again_after_verification(
    tmp_path: Path, dovecot: DovecotServer, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "Maildir"
    write_maildir(root, list(generate(5, [("INBOX",)], seed=30, sizes="small")))
    account = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    journal = tmp_path / "j.sqlite"
    assert migrate(profile, journal, capsys=capsys)[0] == 0
    with connect(dovecot, account) as client:
        client.select_folder("INBOX")
        client.delete_messages(client.search("ALL")[:1])
        client.expunge()
    status, report = migrate(profile, journal, capsys=capsys)
    assert status == 1 and report["verified"] is False and report["missing_after_verify"] == 1
    status, report = migrate(profile, journal, capsys=capsys)
    assert status == 0 and report["uploaded"] == 1 and report["verified"] is True
    assert sum(body_counts(dovecot, account).values()) == 5
