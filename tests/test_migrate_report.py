"""Migration report: refused messages kept in a "not migrated" mbox, --report, verify."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress

from advisor.cli import run
from advisor.cli.migrate_cmd import _RichProgress, estimate_source_bytes
from advisor.migration.plan import to_crlf
from advisor.migration.rejects import NotMigratedMbox, subject_of
from advisor.stores.maildir import MaildirReader
from advisor.stores.mbox import MboxReader
from tests.harness.dovecot import Account, DovecotFactory, DovecotServer
from tests.harness.mailgen import GeneratedMessage, crlf, generate, write_maildir
from tests.harness.migrate_helpers import SIZE_LIMIT_CONFIG, connect, write_profile

BIG_SUBJECT = "=?utf-8?q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?= with a very long tail " + "x" * 120


def _big_message(template: GeneratedMessage) -> GeneratedMessage:
    """Too big for a 200 KB quota; has lines an mbox must quote (``From ``, ``>From ``)."""
    head, body = template.data.split(b"\n\n", 1)
    head = b"\n".join(
        b"Subject: " + BIG_SUBJECT.encode() if line.startswith(b"Subject:") else line
        for line in head.split(b"\n")
    )
    body = b"From here on it is big.\n>From quoted once.\n" + body + b"y" * 300_000 + b"\n"
    return GeneratedMessage(template.folder, head + b"\n\n" + body, template.date)


def _refusing_store(tmp_path: Path) -> tuple[Path, GeneratedMessage]:
    root = tmp_path / "Maildir"
    msgs = list(generate(12, [("INBOX",)], seed=5, sizes="small"))
    big = _big_message(msgs[0])
    write_maildir(root, [*msgs, big])
    return root, big


def test_refused_message_is_reported_and_saved_in_not_migrated_mbox(
    tmp_path: Path, dovecot_factory: DovecotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    dovecot = dovecot_factory(extra_config=SIZE_LIMIT_CONFIG)
    root, big = _refusing_store(tmp_path)
    account = dovecot.add_user()  # the server takes the small ones only
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    report_file = tmp_path / "out" / "run1.json"
    report_file.parent.mkdir()
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    status = run([*args, "--json", "--report", str(report_file)])
    printed = json.loads(capsys.readouterr().out)
    assert status == 1
    # --report writes what --json prints, privately.
    assert json.loads(report_file.read_text()) == printed
    assert stat.S_IMODE(report_file.stat().st_mode) == 0o600
    (failure,) = printed["failures"]
    assert failure["folder"] == "INBOX"
    assert failure["subject"].startswith("Grüße aus Köln with a very long tail")
    assert len(failure["subject"]) == 80 and failure["subject"].endswith("…")
    assert failure["size"] == len(crlf(big.data))
    assert "maximum size" in failure["reason"] and failure["saved"] is True

    mbox = tmp_path / "out" / "run1.not-migrated.mbox"
    assert printed["not_migrated_mbox"] == str(mbox)
    assert stat.S_IMODE(mbox.stat().st_mode) == 0o600
    assert b"\n>From here on it is big.\n>>From quoted once.\n" in mbox.read_bytes()
    (saved,) = list(MboxReader(mbox).messages())
    assert to_crlf(saved.data) == crlf(big.data)  # byte-identical after CRLF normalisation
    assert saved.received is not None and saved.received.date() == big.date.date()

    # Without --report: one mbox per run beside the journal; the human report says where.
    status = run(args)
    out = capsys.readouterr().out
    assert status == 1
    (default,) = tmp_path.glob("j-not-migrated-*.mbox")
    assert "Grüße aus Köln" in out and "not-migrated" in out.replace("\n", "")
    (again,) = list(MboxReader(default).messages())
    assert to_crlf(again.data) == crlf(big.data)


def test_too_large_for_appendlimit_is_saved_without_being_sent(
    tmp_path: Path, dovecot_factory: DovecotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = dovecot_factory(
        extra_config="protocol imap {\n  imap_capability = +APPENDLIMIT=100000\n}\n"
    )
    root, big = _refusing_store(tmp_path)
    account = server.add_user()
    profile, _ = write_profile(tmp_path, server, account, root)
    report_file = tmp_path / "r.json"
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    assert run([*args, "--report", str(report_file)]) == 1
    capsys.readouterr()
    report = json.loads(report_file.read_text())
    assert report["uploaded"] == 12
    (failure,) = report["failures"]
    assert "too large" in failure["reason"] and failure["size"] == len(crlf(big.data))
    (saved,) = list(MboxReader(tmp_path / "r.not-migrated.mbox").messages())
    assert to_crlf(saved.data) == crlf(big.data)


def test_dry_run_writes_no_mbox(
    tmp_path: Path, dovecot_factory: DovecotFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    dovecot = dovecot_factory(extra_config=SIZE_LIMIT_CONFIG)
    root, _big = _refusing_store(tmp_path)
    account = dovecot.add_user()
    profile, _ = write_profile(tmp_path, dovecot, account, root)
    report_file = tmp_path / "plan.json"
    args = ["migrate", "--profile", str(profile), "--journal", str(tmp_path / "j.sqlite")]
    assert run([*args, "--dry-run", "--json", "--report", str(report_file)]) == 0
    assert json.loads(report_file.read_text())["dry_run"] is True
    assert not list(tmp_path.glob("*.mbox"))
    capsys.readouterr()


def test_mbox_writer_quotes_and_dates(tmp_path: Path) -> None:
    path = tmp_path / "nm.mbox"
    path.write_bytes(b"old run\n")
    first = b"Subject: one\r\n\r\nFrom the start\r\n>>From deep\r\nlast line"
    second = b"Subject: two\n\nbody\n"
    with NotMigratedMbox(path) as mbox:
        mbox.add(first, datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC))
        mbox.add(second, None)
    text = path.read_bytes()
    assert text.startswith(b"From MAILER-DAEMON Thu Mar  4 05:06:07 2021\n")  # old one replaced
    assert b"\n>From the start\n>>>From deep\n" in text
    got = [m.data for m in MboxReader(path).messages()]
    assert [to_crlf(g) for g in got] == [to_crlf(first + b"\n"), to_crlf(second)]
    assert subject_of(b"Subject: =?iso-8859-1?q?caf=E9?=\n folded\n\nx") == "café folded"
    assert subject_of(b"From: a\n\nSubject: in the body") == ""


def test_progress_shows_folder_rate_and_estimated_total(tmp_path: Path) -> None:
    root = tmp_path / "Maildir"
    msgs = write_maildir(root, list(generate(10, [("INBOX",), ("Work",)], seed=3, sizes="small")))
    reader = MaildirReader(root)
    total = estimate_source_bytes(reader)
    assert total == sum(len(m.data) for m in msgs)
    console = Console(file=open(tmp_path / "bar.txt", "w"), force_terminal=False)  # noqa: SIM115
    try:
        with Progress(console=console) as bar:
            display = _RichProgress(bar, total)
            display.folder("Work")
            display.advance(1, 100)
            (task,) = bar.tasks
            assert task.total == total and task.completed == 100
            assert "1 messages" in task.description and "Work" in task.description
            display.advance(1, total)  # more than estimated: the total follows
            assert bar.tasks[0].total == total + 100
    finally:
        console.file.close()


def _verify(profile: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, dict]:
    status = run(["verify", "--profile", str(profile), "--json"])
    return status, json.loads(capsys.readouterr().out)


def test_verify_finds_exactly_the_missing_and_the_doubled(
    tmp_path: Path,
    dovecot: DovecotServer,
    imap_account: Account,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root = tmp_path / "Maildir"
    folders = [("INBOX",), ("Work", "Projects")]
    msgs = write_maildir(
        root, list(generate(24, folders, seed=11, sizes="small", without_message_id=0.3))
    )
    profile, _ = write_profile(tmp_path, dovecot, imap_account, root)
    journal = tmp_path / "j.sqlite"
    assert run(["migrate", "--profile", str(profile), "--journal", str(journal), "--json"]) == 0
    capsys.readouterr()
    status, report = _verify(profile, capsys)
    assert status == 0, report
    assert report["checked"] == len(msgs) and not report["missing"] and not report["doubled"]
    assert sum(f["present"] for f in report["folders"]) == len(msgs)

    # Delete one message with a Message-ID in INBOX; APPEND a copy of one without in Work.
    gone = next(m for m in msgs if m.folder == ("INBOX",) and m.message_id)
    twin = next(m for m in msgs if m.folder == ("Work", "Projects") and not m.message_id)
    with connect(dovecot, imap_account) as client:
        client.select_folder("INBOX")
        uids = client.search(["HEADER", "Message-ID", gone.message_id])
        assert len(uids) == 1
        client.delete_messages(uids)
        client.expunge()
        work = next(n for _f, _d, n in client.list_folders() if n.endswith("Projects"))
        client.append(work, crlf(twin.data))
    status, report = _verify(profile, capsys)
    assert status == 1
    (missing,) = report["missing"]
    assert missing["message_id"] == gone.message_id and missing["target"] == "INBOX"
    assert missing["on_server"] == 0 and missing["in_source"] == 1
    (doubled,) = report["doubled"]
    assert doubled["message_id"] is None and doubled["size"] == len(crlf(twin.data))
    assert doubled["folder"] == "Work/Projects" and doubled["on_server"] == 2
    assert subject_of(twin.data) == doubled["subject"]
    by_target = {f["target"]: f for f in report["folders"]}
    assert by_target["INBOX"]["missing"] == 1 and by_target[work]["doubled"] == 1

    # The human form names them too.
    assert run(["verify", "--profile", str(profile)]) == 1
    out = capsys.readouterr().out
    assert "missing" in out and "doubled" in out and missing["subject"][:20] in out
