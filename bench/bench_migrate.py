"""Migration throughput: mailadvisor against mbsync and Dovecot's own import.

Generates a Maildir of N messages (default 5,000; about 70% 1-8 KB, 25% 10-80 KB,
5% 0.1-1.5 MB), starts a private server, and moves the same messages into fresh
accounts with:

- ``mailadvisor migrate`` (a subprocess, as a user runs it),
- ``mbsync`` (isync), pushing the Maildir to the IMAP server,
- ``doveadm import`` (Dovecot only; no network protocol at all: the storage ceiling),

first on loopback, then through a proxy adding 25 ms of one-way latency
(bench/latency_proxy.py) for the two network clients. Prints wall time,
messages per second, peak memory (max RSS of the process tree) and the ratios.

``--server`` picks the server (repeat it, or ``all``): ``dovecot`` (tests/harness/dovecot.py),
``dovecot-sync`` (the same Dovecot advertising neither LITERAL+ nor MULTIAPPEND, as
Courier: every literal waits for the server's go-ahead, one message per APPEND),
``cyrus`` (Cyrus 3.6, Debian's INBOX./"." configuration, tests/harness/cyrus.py) and ``courier``
(Courier-IMAP 5.0, tests/harness/courier.py). Cyrus and Courier run from Debian packages
unpacked by scripts/fetch-private-servers and listen for plaintext IMAP on loopback;
Dovecot is reached over TLS. Ratios compare tools on the same server and link.

Usage: python bench/bench_migrate.py [--messages N] [--server NAME] [--latency-ms 25]
       [--skip-latency]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import imapclient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.harness.courier import CourierFactory  # noqa: E402
from tests.harness.cyrus import CyrusFactory  # noqa: E402
from tests.harness.dovecot import (  # noqa: E402
    COURIER_CAPABILITIES,
    Account,
    DovecotFactory,
    DovecotServer,
    capability_config,
    find_free_ports,
)
from tests.harness.mailgen import GeneratedMessage, generate, write_maildir  # noqa: E402

FOLDERS = [("INBOX",), ("INBOX",), ("Archive",), ("Sent",), ("Lists", "Python")]


@dataclass
class Run:
    tool: str
    link: str
    seconds: float
    messages: int
    peak_mb: float | None
    server: str = "dovecot"

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


#: Dovecot advertising what Courier-IMAP 5 does: no LITERAL+, MULTIAPPEND or SPECIAL-USE.
SYNC_LITERALS_CONFIG = capability_config(COURIER_CAPABILITIES)
SERVERS = ("dovecot", "dovecot-sync", "cyrus", "courier")


@dataclass
class Target:
    """A running server the benchmark moves mail into, whatever its kind."""

    name: str
    port: int
    ca_file: Path | None
    """None: plaintext IMAP on loopback (the Cyrus and Courier fixtures), else implicit TLS."""
    add_user: Callable[[], Account]
    dovecot: DovecotServer | None = None
    """Set for Dovecot: doveadm import measures its storage ceiling."""


def count_messages(target: Target, account: Account) -> int:
    """Messages in every folder of ``account``, asked over IMAP (any server)."""
    tls = target.ca_file is not None
    ctx = ssl.create_default_context(cafile=str(target.ca_file)) if tls else None
    with imapclient.IMAPClient("localhost", port=target.port, ssl=tls, ssl_context=ctx) as client:
        client.login(account.username, account.password)
        total = 0
        for flags, _delim, name in client.list_folders():
            if {b"\\NOSELECT", b"\\NONEXISTENT"} & {f.upper() for f in flags}:
                continue  # a parent that is only a name (Dovecot's "Lists" above "Python")
            total += int(client.folder_status(name, [b"MESSAGES"])[b"MESSAGES"])
        client.logout()
    return total


def run_mailadvisor(
    target: Target, account: Account, store: Path, port: int, work: Path
) -> tuple[float, float]:
    profile = work / f"{target.name}-{account.username}.toml"
    if target.ca_file is not None:
        security = f'security = "tls"\nca_file = "{target.ca_file}"\n'
    else:
        security = 'security = "none"\nallow_insecure = true\n'
    profile.write_text(
        f'version = 1\n[account]\nemail = "{account.email}"\nprovider = "generic"\n'
        f'[server]\nhost = "localhost"\nport = {port}\nusername = "{account.username}"\n'
        f"{security}"
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
        str(work / f"{target.name}-{account.username}.sqlite"),
        "--json",
    ]
    return timed(cmd, env)


def run_mbsync(
    target: Target, account: Account, store: Path, port: int, work: Path
) -> tuple[float, float]:
    label = f"{target.name}-{account.username}"
    state = work / f"mbsync-state-{label}"
    state.mkdir()
    near = work / f"mbsync-near-{label}"
    shutil.copytree(store, near)  # mbsync writes its UID state into the near store
    conf = work / f"mbsyncrc-{label}"
    if target.ca_file is not None:
        security = f"SSLType IMAPS\nCertificateFile {target.ca_file}\n"
    else:
        security = "SSLType None\nAuthMechs LOGIN\n"  # it refuses LOGIN in clear otherwise
    conf.write_text(
        f"IMAPAccount bench\nHost localhost\nPort {port}\nUser {account.username}\n"
        f"Pass {account.password}\n{security}\n"
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
    copy = work / f"doveadm-source-{account.username}-{server.root.name}"
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


@contextmanager
def open_targets(names: list[str]) -> Iterator[list[Target]]:
    """Start the servers asked for; stop them all at the end."""
    with ExitStack() as stack:
        targets: list[Target] = []
        factory: DovecotFactory | None = None
        cyrus: CyrusFactory | None = None
        courier: CourierFactory | None = None
        for name in names:
            if name.startswith("dovecot"):
                if factory is None:
                    factory = stack.enter_context(DovecotFactory())
                extra = SYNC_LITERALS_CONFIG if name == "dovecot-sync" else ""
                server = factory(extra_config=extra)
                info = server.info
                targets.append(Target(name, info.imaps_port, info.ca_file, server.add_user, server))
            elif name.startswith("cyrus"):
                if cyrus is None:
                    cyrus = CyrusFactory()
                    stack.callback(cyrus.close)
                plain = cyrus("debian")
                targets.append(Target(name, plain.info.port, None, plain.add_user))
            elif name == "courier":
                if courier is None:
                    courier = CourierFactory()
                    stack.callback(courier.close)
                plain = courier()
                targets.append(Target(name, plain.info.port, None, plain.add_user))
        yield targets


def bench_target(
    target: Target, store: Path, expected: int, work: Path, args: argparse.Namespace
) -> list[Run]:
    runs: list[Run] = []

    def record(tool: str, link: str, account: Account, result: tuple[float, float]) -> None:
        got = count_messages(target, account)
        if got != expected:
            raise SystemExit(
                f"{tool} ({target.name}, {link}) left {got} messages, expected {expected}"
            )
        runs.append(Run(tool, link, result[0], got, result[1], target.name))
        r = runs[-1]
        peak = f"{r.peak_mb:.0f} MB" if r.peak_mb else "-"
        print(
            f"  {target.name:13} {tool:12} {link:10} {r.seconds:7.2f} s "
            f"{r.rate:8.0f} msg/s  peak {peak}",
            flush=True,
        )

    if target.dovecot is not None and not args.skip_doveadm:
        account = target.add_user()
        record("doveadm", "none", account, run_doveadm(target.dovecot, account, store, work))
    for _ in range(args.repeat):  # alternating, so a busy moment hits both tools alike
        for tool, fn in (("mailadvisor", run_mailadvisor), ("mbsync", run_mbsync)):
            account = target.add_user()
            record(tool, "loopback", account, fn(target, account, store, target.port, work))
    if not args.skip_latency:
        proxy, proxy_port = start_proxy(target.port, args.latency_ms)
        try:
            link = f"+{args.latency_ms:g}ms"
            for tool, fn in (("mailadvisor", run_mailadvisor), ("mbsync", run_mbsync)):
                account = target.add_user()
                record(tool, link, account, fn(target, account, store, proxy_port, work))
        finally:
            proxy.terminate()
            proxy.wait()
            if proxy.stdout:
                proxy.stdout.close()
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument(
        "--server",
        action="append",
        choices=[*SERVERS, "all"],
        help="server to measure against (repeatable; default dovecot; all = every one)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="loopback runs per tool, alternating; the fastest of each counts (a shared "
        "machine's noise only ever slows a run down)",
    )
    parser.add_argument("--latency-ms", type=float, default=25.0)
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-doveadm", action="store_true", help="no doveadm import run")
    parser.add_argument("--json", action="store_true", help="also print the results as JSON")
    args = parser.parse_args()
    # Stopped with SIGTERM: unwind, so the servers (some outside our process group) stop.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if shutil.which("mbsync") is None:
        raise SystemExit("mbsync is missing: apt-get install isync")
    names = args.server or ["dovecot"]
    names = list(SERVERS) if "all" in names else list(dict.fromkeys(names))

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
    with open_targets(names) as targets:
        for target in targets:
            runs += bench_target(target, store, len(sizes), work, args)

    by: dict[tuple[str, str, str], Run] = {}
    for r in runs:
        best = by.get((r.server, r.tool, r.link))
        if best is None or r.seconds < best.seconds:
            by[(r.server, r.tool, r.link)] = r
    print("\nratios (messages per second" + (", fastest runs" if args.repeat > 1 else "") + "):")
    for name in names:
        for link in sorted({r.link for r in runs if r.tool == "mbsync" and r.server == name}):
            ours, theirs = by[(name, "mailadvisor", link)], by[(name, "mbsync", link)]
            print(
                f"  {name:13} mailadvisor / mbsync on {link:9}: {ours.rate / theirs.rate:.2f}x "
                f"({ours.rate:.0f} vs {theirs.rate:.0f} msg/s)"
            )
        ceiling = by.get((name, "doveadm", "none"))
        ours = by[(name, "mailadvisor", "loopback")]
        if ceiling is not None:
            print(
                f"  {name:13} mailadvisor / doveadm import (server ceiling): "
                f"{ours.rate / ceiling.rate:.2f}x"
            )
        print(
            f"  {name:13} peak memory: mailadvisor {ours.peak_mb:.0f} MB, "
            f"mbsync {by[(name, 'mbsync', 'loopback')].peak_mb:.0f} MB, "
            f"largest message {max(sizes) / 1e6:.1f} MB"
        )
    if args.json:
        print(json.dumps([r.__dict__ | {"rate": r.rate} for r in runs], indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
