"""Every crasher scripts/fuzz-readers found stays fixed (tests/data/fuzz/README.md), and
malformed files are each one message's problem, never the run's (issue 13, point 3)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from advisor.profile import SourceKind
from advisor.stores import open_store
from advisor.stores.scan import scan_store
from tests.harness.scan_builders import emlx_bytes, write_apple_mail

ROOT = Path(__file__).resolve().parent.parent
FUZZ = ROOT / "tests" / "data" / "fuzz"
FINDINGS = sorted(p.parent for p in FUZZ.glob("*/*/FINDING.txt"))
FUZZ_SCRIPT = ROOT / "scripts" / "fuzz-readers"


def _finding(tree: Path) -> tuple[str, Path]:
    line = (tree / "FINDING.txt").read_text().splitlines()[1]
    relative, kind = line.removeprefix("store: ").split(" (--kind ")
    return kind.rstrip(")"), tree / relative


def _scan_cli(tree: Path, kind: str, path: Path) -> subprocess.CompletedProcess[bytes]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), HOME=str(tree))
    if (tree / "bin" / "readpst").exists():  # a readpst output tree: the stand-in copies it
        env["PATH"] = f"{tree / 'bin'}:{env['PATH']}"
        env["MAILADVISOR_PST_READER"] = "readpst"
    return subprocess.run(
        [sys.executable, "-m", "advisor", "scan", "--json", "--kind", kind, str(path)],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )


def test_there_are_findings() -> None:
    assert FINDINGS, "tests/data/fuzz holds the fuzzer's crashers"


@pytest.mark.parametrize("tree", FINDINGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fuzz_finding_scans_cleanly(tree: Path) -> None:
    kind, path = _finding(tree)
    done = _scan_cli(tree, kind, path)
    assert b"Traceback" not in done.stderr, done.stderr.decode("utf-8", "replace")
    assert done.returncode in (0, 2), done.stderr  # scanned, or one clear error
    if done.returncode == 0:
        json.loads(done.stdout.decode("utf-8"))


GOOD = b"From: a@example.org\nSubject: fine\nMessage-ID: <ok@x>\n\nfine\n"
BAD_PLISTS = {
    "unknown-encoding": b"<?xml version='1.0' encoding='bogus-charset'?>\n<plist><dict/></plist>",
    "end-key-outside-dict": b"<?xml version='1.0'?>\n<plist></key></plist>",
    "truncated": b"<?xml version='1.0'?>\n<plist><dict><key>flags</key><integ",
    "huge-integer": b"<?xml version='1.0'?>\n<plist><dict><key>flags</key><integer>"
    + b"9" * 5000
    + b"</integer></dict></plist>",
}


@pytest.mark.parametrize("plist", BAD_PLISTS.values(), ids=BAD_PLISTS.keys())
def test_malformed_apple_mail_plist_is_that_messages_problem(tmp_path: Path, plist: bytes) -> None:
    root = write_apple_mail(tmp_path, 10, {"INBOX": [GOOD, GOOD.replace(b"ok@", b"ok2@")]})
    messages = next(root.rglob("Messages"))
    body = b"From: b@example.org\nSubject: odd\n\nodd\n"
    (messages / "200.emlx").write_bytes(f"{len(body):<10}\n".encode() + body + plist)
    reader = open_store(SourceKind.EMLX, root)
    found = list(reader.messages())
    assert len(found) == 3  # the two good ones are read all the same
    odd = next(m for m in found if b"odd" in m.data)
    assert odd.data == body and odd.flags == frozenset()
    assert any(p.code == "bad-flags" for p in odd.problems), odd.problems
    scan = scan_store(open_store(SourceKind.EMLX, root))
    assert scan.totals.messages == 3
    done = _scan_cli(tmp_path, "emlx", root)
    assert done.returncode == 0 and b"Traceback" not in done.stderr, done.stderr
    assert emlx_bytes(GOOD)  # the builder itself writes a valid plist


def test_the_fuzz_script_runs(tmp_path: Path) -> None:
    """A few seconds of two targets (the real runs take minutes per reader, outside the
    suite): the script still builds its stores and reads them with today's readers."""
    args = ["--minutes", "0.03", "--only", "eml,pst", "--out", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, str(FUZZ_SCRIPT), *args],
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        capture_output=True,
        timeout=120,
        check=False,
    )
    out = done.stdout.decode()
    assert done.returncode == 0, out + done.stderr.decode()
    assert "eml: " in out and "pst: " in out and "total: 0 finding(s)" in out
