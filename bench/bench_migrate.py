"""Migration throughput: mailadvisor against mbsync and Dovecot's own import.

Generates a Maildir of N messages (default 5,000; about 70% 1-8 KB, 25% 10-80 KB,
5% 0.1-1.5 MB), starts a private Dovecot (tests/dovecot.py), and moves the same
messages into fresh accounts with:

- ``mailadvisor migrate`` (a subprocess, as a user runs it),
- ``mbsync`` (isync), pushing the Maildir to the IMAP server,
- ``doveadm import`` (no network protocol at all: the server's storage ceiling),

first on loopback, then through a proxy adding 25 ms of one-way latency
(bench/latency_proxy.py) for the two network clients. Prints wall time,
messages per second, peak memory (max RSS of the process tree) and the ratios.

Usage: python bench/bench_migrate.py [--messages N] [--latency-ms 25] [--skip-latency]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.dovecot import Account, DovecotFactory, DovecotServer, find_free_ports  # noqa: E402
from tests.mailgen import GeneratedMessage, generate, write_maildir  # noqa: E402

FOLDERS = [("INBOX",), ("INBOX",), ("Archive",), ("Sent",), ("Lists", "Python")]


@dataclass
class Run:
    tool: str
    link: str
    seconds: float
    messages: int
    peak_mb: float | None

    @property
    def rate(self) -> float:
        return self.messages / self.seconds


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants, in KB (0 once gone)."""
    total = 0
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        pids.extend(int(c) for c in children)
    return total


def timed(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run ``cmd``; return (wall seconds, peak resident MB of its process tree).

    Memory is sampled from /proc every 20 ms (ru_maxrss would report the benchmark's
    own size, inherited through fork).
    """
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    outputs: dict[str, bytes] = {}

    def collect(name: str, stream: Any) -> None:
        outputs[name] = stream.read()
        stream.close()

    readers = [
        threading.Thread(target=collect, args=(n, s))
        for n, s in (("out", proc.stdout), ("err", proc.stderr))
    ]
    for t in readers:
        t.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    for t in readers:
        t.join()
    out, err = outputs.get("out", b""), outputs.get("err", b"")
    code = proc.returncode
    if code != 0:
        raise SystemExit(
            f"{cmd[0]} failed ({code}):\n{out.decode()[-2000:]}\n{err.decode()[-2000:]}"
        )
    return elapsed, peak / 1024


def count_messages(server: DovecotServer, account: Account) -> int:
    total = 0
    listing = server.doveadm("mailbox", "status", "-u", account.username, "-t", "messages", "*")
    for line in listing.stdout.split():
        if line.startswith("messages="):
            total += int(line.split("=", 1)[1])
    return total


def run_mailadvisor(
    server: DovecotServer, account: Account, store: Path, port: int, work: Path
) -> tuple[float, float]:
    profile = work / f"{account.username}.toml"
    profile.write_text(
        f'version = 1\n[account]\nemail = "{account.email}"\nprovider = "generic"\n'
        f'[server]\nhost = "localhost"\nport = {port}\nsecurity = "tls"\n'
        f'username = "{account.username}"\nca_file = "{server.info.ca_file}"\n'
        f'[auth]\npassword_env = "BENCH_PASSWORD"\n'
        f'[source]\nkind = "maildir"\npath = "{store}"\n'
    )
    env = {**os.environ, "BENCH_PASSWORD": account.password}
    cmd = [
        sys.executable,
        "-m",
        "advisor",
        "migrate",
        "--profile",
        str(profile),
        "--journal",
        str(work / f"{account.username}.sqlite"),
        "--json",
    ]
    return timed(cmd, env)


def run_mbsync(
    server: DovecotServer, account: Account, store: Path, port: int, work: Path
) -> tuple[float, float]:
    state = work / f"mbsync-state-{account.username}"
    state.mkdir()
    near = work / f"mbsync-near-{account.username}"
    shutil.copytree(store, near)  # mbsync writes its UID state into the near store
    conf = work / f"mbsyncrc-{account.username}"
    conf.write_text(
        f"IMAPAccount bench\nHost localhost\nPort {port}\nUser {account.username}\n"
        f"Pass {account.password}\nSSLType IMAPS\nCertificateFile {server.info.ca_file}\n\n"
        "IMAPStore far\nAccount bench\n\n"
        f"MaildirStore near\nInbox {near}\nSubFolders Maildir++\n\n"
        "Channel push\nFar :far:\nNear :near:\nPatterns * !Drafts !Junk !Trash\nCreate Far\n"
        "Sync Push New\n"
        f"Expunge None\nCopyArrivalDate yes\nSyncState {state}/\n"
    )
    return timed(["mbsync", "-q", "-c", str(conf), "push"])


def run_doveadm(
    server: DovecotServer, account: Account, store: Path, work: Path
) -> tuple[float, float]:
    # doveadm writes index files into the source: give it a copy its mail user owns.
    copy = work / "doveadm-source"
    shutil.copytree(store, copy)
    for path in [copy, *copy.rglob("*")]:
        os.chown(path, server.uid, server.gid)
    cmd = [
        "doveadm",
        "-c",
        str(server.config_path),
        "import",
        "-u",
        account.username,
        f"maildir:{copy}",
        "",
        "all",
    ]
    return timed(cmd)


def start_proxy(target_port: int, delay_ms: float) -> tuple[subprocess.Popen[bytes], int]:
    (port,) = find_free_ports("127.0.0.1")
    proc = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "bench" / "latency_proxy.py"),
            str(port),
            "127.0.0.1",
            str(target_port),
            str(delay_ms),
        ],
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None
    if proc.stdout.readline().strip() != b"ready":
        raise SystemExit("the latency proxy did not start")
    return proc, port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    if shutil.which("mbsync") is None:
        raise SystemExit("mbsync is missing: apt-get install isync")

    work = Path(tempfile.mkdtemp(prefix="mailadvisor-bench-"))
    work.chmod(0o755)  # Dovecot's unprivileged mail user reaches the copy for doveadm import
    store = work / "Maildir"
    sizes: list[int] = []

    def counted() -> Iterator[GeneratedMessage]:
        for msg in generate(args.messages, FOLDERS, seed=42):
            sizes.append(len(msg.data))
            yield msg

    write_maildir(store, counted(), keep=False)
    total_bytes = sum(sizes)
    print(
        f"store: {len(sizes):,} messages, {total_bytes / 1e6:.0f} MB, "
        f"largest {max(sizes) / 1e6:.2f} MB"
    )

    runs: list[Run] = []
    with DovecotFactory() as factory:
        server = factory()
        port = server.info.imaps_port

        def record(tool: str, link: str, account: Account, result: tuple[float, float]) -> None:
            got = count_messages(server, account)
            if got != len(sizes):
                raise SystemExit(f"{tool} ({link}) left {got} messages, expected {len(sizes)}")
            runs.append(Run(tool, link, result[0], got, result[1]))
            r = runs[-1]
            peak = f"{r.peak_mb:.0f} MB" if r.peak_mb else "-"
            print(f"  {tool:12} {link:10} {r.seconds:7.2f} s {r.rate:8.0f} msg/s  peak {peak}")

        account = server.add_user()
        record("doveadm", "none", account, run_doveadm(server, account, store, work))
        for tool, fn in (("mailadvisor", run_mailadvisor), ("mbsync", run_mbsync)):
            account = server.add_user()
            record(tool, "loopback", account, fn(server, account, store, port, work))
        if not args.skip_latency:
            proxy, proxy_port = start_proxy(port, args.latency_ms)
            try:
                link = f"+{args.latency_ms:g}ms"
                for tool, fn in (("mailadvisor", run_mailadvisor), ("mbsync", run_mbsync)):
                    account = server.add_user()
                    record(tool, link, account, fn(server, account, store, proxy_port, work))
            finally:
                proxy.terminate()
                proxy.wait()
                if proxy.stdout:
                    proxy.stdout.close()

    by = {(r.tool, r.link): r for r in runs}
    print("\nratios (messages per second):")
    for link in sorted({r.link for r in runs if r.tool == "mbsync"}):
        ours, theirs = by[("mailadvisor", link)], by[("mbsync", link)]
        print(f"  mailadvisor / mbsync on {link}: {ours.rate / theirs.rate:.2f}x")
    ceiling = by[("doveadm", "none")]
    ours = by[("mailadvisor", "loopback")]
    print(f"  mailadvisor / doveadm import (server ceiling): {ours.rate / ceiling.rate:.2f}x")
    print(
        f"  peak memory: mailadvisor {ours.peak_mb:.0f} MB, "
        f"mbsync {by[('mbsync', 'loopback')].peak_mb:.0f} MB, "
        f"largest message {max(sizes) / 1e6:.1f} MB"
    )
    if args.json:
        print(json.dumps([r.__dict__ | {"rate": r.rate} for r in runs], indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
