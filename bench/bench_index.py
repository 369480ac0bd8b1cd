"""The cost of proving identity (advisor/migration/server_index.py) against the earlier check.

Generates N messages (default 5,000, the migration benchmark's mix) into a Maildir,
migrates them into a private Dovecot, then times what the server index does:

- the first migration (the closing check now samples content),
- a re-run with a lost journal: every message is on the server and must be recognised
  (Message-ID and size pick candidates, every candidate's body is downloaded and hashed),
- ``verify`` (Message-ID and size) and ``verify --content`` (every body),

each with this checkout and, for comparison, with another one (``--baseline DIR``, for
example /work/main: Message-ID and size only). Prints seconds and the ratio.

Usage: python bench/bench_index.py [--messages N] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_migrate import FOLDERS, timed  # noqa: E402
from tests.harness.dovecot import Account, DovecotFactory, DovecotServer  # noqa: E402
from tests.harness.mailgen import generate, write_maildir  # noqa: E402


def profile_for(server: DovecotServer, account: Account, store: Path, work: Path) -> Path:
    path = work / f"{account.username}.toml"
    path.write_text(
        f'version = 1\n[account]\nemail = "{account.email}"\nprovider = "generic"\n'
        f'[server]\nhost = "localhost"\nport = {server.info.imaps_port}\nsecurity = "tls"\n'
        f'username = "{account.username}"\nca_file = "{server.info.ca_file}"\n'
        f'[auth]\npassword_env = "BENCH_PASSWORD"\n'
        f'[source]\nkind = "maildir"\npath = "{store}"\n'
    )
    return path


CPU: list[float] = []
"""CPU seconds (user + system) of each run, in order: steadier than wall time on a busy
machine."""


def mailadvisor(code: Path, password: str, *args: str) -> float:
    env = {**os.environ, "BENCH_PASSWORD": password, "PYTHONPATH": str(code)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    seconds, _ = timed([sys.executable, "-m", "advisor", *args], env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--baseline", type=Path, default=Path("/work/main"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-index-") as tmp, DovecotFactory() as dovecot:
        work = Path(tmp)
        store = work / "Maildir"
        write_maildir(store, generate(args.messages, FOLDERS, seed=3), keep=False)
        server = dovecot()
        rows: list[tuple[str, float, float]] = []
        cpu: list[tuple[str, float, float]] = []
        for label, extra in (("first migration", None), ("re-run, journal lost", "lost")):
            times = []
            for code in (ROOT, args.baseline):
                account = server.add_user()
                profile = profile_for(server, account, store, work)
                journal = work / f"{account.username}.sqlite"
                run = ["migrate", "--profile", str(profile), "--json"]
                first = mailadvisor(code, account.password, *run, "--journal", str(journal))
                if extra is None:
                    times.append((first, CPU[-1]))
                    continue
                lost = work / f"{account.username}-lost.sqlite"
                wall = mailadvisor(code, account.password, *run, "--journal", str(lost))
                times.append((wall, CPU[-1]))
                if code == ROOT:
                    check = ["verify", "--profile", str(profile), "--json"]
                    quick = mailadvisor(code, account.password, *check)
                    quick_cpu = CPU[-1]
                    content = mailadvisor(code, account.password, *check, "--content")
                    content_cpu = CPU[-1]
                    baseline = mailadvisor(args.baseline, account.password, *check)
                    rows.append(("verify", quick, baseline))
                    rows.append(("verify --content", content, baseline))
                    cpu.append(("verify", quick_cpu, CPU[-1]))
                    cpu.append(("verify --content", content_cpu, CPU[-1]))
            at = 0 if extra is None else 1
            rows.insert(at, (label, times[0][0], times[1][0]))
            cpu.insert(at, (label, times[0][1], times[1][1]))
    print(f"{args.messages:,} messages; this checkout vs {args.baseline}")
    for title, table in (("wall seconds", rows), ("CPU seconds (client)", cpu)):
        print(f"{title:24} {'this':>9} {'baseline':>9} {'ratio':>7}")
        for label, mine, base in table:
            print(f"{label:24} {mine:9.1f} {base:9.1f} {mine / base:7.2f}")


if __name__ == "__main__":
    main()
