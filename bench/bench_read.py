"""Reading speed and memory of the mbox reader, against ``grep -c '^From '``.

Generates, in a temporary directory that is removed at the end:

- an mbox of ``--size-gb`` GB (default 2) written as an mboxrd writer does, with the
  message mix of tests/harness/mailgen.py (about 70% 1-8 KB, 25% 10-80 KB, 5% 0.1-1.5 MB with
  base64 attachments; Received/Date/Message-ID headers; some body lines that needed
  ``>From`` quoting), streamed to disk, never held in memory;
- an mbox holding one message of ``--big-mb`` MB (default 200), written as Thunderbird
  does, with X-Mozilla-Status lines in the middle of its header.

Then times, each in the same run and from the page cache (every file is read once
before timing), best of ``--repeat`` runs:

- ``grep -c '^From '`` on the file (the floor: one pass, no per-message work);
- ``MboxReader`` reading every message (``advisor.stores.mbox``), in a subprocess so
  that its peak resident memory is its own: the larger of its VmHWM, read from /proc
  just before it exits, and the resident memory of its process tree (it and the helper
  process that searches large files for separators) sampled every 20 ms. Its time
  includes starting Python and importing mailadvisor (about 0.1 s).

Prints a table: seconds, MB/s, messages, the reader/grep ratio (target at most 2x) and
the reader's peak RSS, helper included (targets: under 100 MB for the large mbox, under
100 MB plus the message's size for the single large message).

Usage: python bench/bench_read.py [--size-gb 2] [--big-mb 200] [--repeat 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MB = 1 << 20
sys.path.insert(0, str(ROOT))

from tests.harness.mailgen import WORDS, target_size  # noqa: E402  the same mix as the tests

# Body lines an mboxrd writer had to quote (it adds one ">"); the reader removes one.
QUOTED_LINES = (b">From the desk of the treasurer", b">>From an older quote", b">From here on")

# -- the stores -----------------------------------------------------------------------------


class _Pools:
    """Pre-made text and base64 lines, sliced per message: generating 2 GB word by word
    in Python would take longer than reading it."""

    def __init__(self, rng: random.Random) -> None:
        lines = []
        for _ in range(40_000):
            if rng.random() < 0.002:
                lines.append(rng.choice(QUOTED_LINES))
            else:
                lines.append(
                    " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 12))).encode()
                )
        self.text = b"\n".join(lines) + b"\n"
        self.text_starts = [0]
        for i, byte in enumerate(self.text):
            if byte == 0x0A:
                self.text_starts.append(i + 1)
        self.text_starts.pop()
        self.b64 = base64.encodebytes(rng.randbytes(6 * MB))  # 76-character lines

    def text_of(self, rng: random.Random, size: int) -> bytes:
        """About ``size`` bytes of whole lines (the pool wraps around)."""
        start = self.text_starts[rng.randrange(len(self.text_starts))]
        out = bytearray()
        while len(out) < size:
            end = self.text.find(b"\n", start + min(size - len(out), len(self.text)) - 1)
            end = len(self.text) if end < 0 else end + 1
            out += self.text[start:end]
            start = 0
        return bytes(out)

    def base64_of(self, rng: random.Random, size: int) -> bytes:
        line = 77
        count = max(1, size // line)
        out = bytearray()
        while count:
            first = rng.randrange(len(self.b64) // line)
            take = min(count, len(self.b64) // line - first)
            out += self.b64[first * line : (first + take) * line]
            count -= take
        return bytes(out)


def _message(rng: random.Random, pools: _Pools, n: int, size: int, date: datetime) -> bytes:
    """One message as in tests/harness/mailgen.py's make_message, body quoted for mboxrd."""
    head = (
        f"Received: from mx.example.test by mail.example.test; {format_datetime(date)}\n"
        f"From: Sender {n % 17} <sender{n % 17}@example.test>\n"
        "To: Pat <pat@example.test>\n"
        f"Subject: {' '.join(rng.choice(WORDS) for _ in range(4))} #{n}\n"
        f"Date: {format_datetime(date)}\n"
        f"Message-ID: <gen-{n}-{rng.getrandbits(48):012x}@example.test>\n"
        "MIME-Version: 1.0\n"
    ).encode()
    if size <= 60_000:
        return head + b"Content-Type: text/plain; charset=utf-8\n\n" + pools.text_of(rng, size)
    boundary = f"b{n}x{rng.getrandbits(32):08x}".encode()
    return b"".join(
        [
            head,
            b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\n\n',
            b"--" + boundary + b"\nContent-Type: text/plain; charset=utf-8\n\n",
            pools.text_of(rng, 600),
            b"--" + boundary + b'\nContent-Type: application/octet-stream; name="file.bin"\n'
            b"Content-Transfer-Encoding: base64\n\n",
            pools.base64_of(rng, size - 2_000),
            b"--" + boundary + b"--\n",
        ]
    )


def _envelope(date: datetime) -> bytes:
    return f"From sender@example.test {date.strftime('%a %b %e %H:%M:%S %Y')}\n".encode()


def write_mbox(path: Path, size: int, seed: int = 7) -> int:
    """An mboxrd file of about ``size`` bytes; returns the number of messages."""
    rng = random.Random(seed)
    pools = _Pools(rng)
    date = datetime(2009, 3, 1, 8, 0, tzinfo=UTC)
    written = count = 0
    with open(path, "wb", buffering=4 * MB) as out:
        while written < size:
            date += timedelta(minutes=rng.randint(1, 90))
            data = _message(rng, pools, count, target_size(rng), date)
            chunk = _envelope(date) + data + b"\n"
            out.write(chunk)
            written += len(chunk)
            count += 1
    return count


def write_big_message(path: Path, size: int, seed: int = 8) -> None:
    """One message of ``size`` bytes as Thunderbird stores it: X-Mozilla-Status lines
    in the middle of its header (they must be cut out without copying the body twice)."""
    rng = random.Random(seed)
    pools = _Pools(rng)
    date = datetime(2020, 6, 1, 12, 0, tzinfo=UTC)
    head = (
        f"Received: from mx.example.test by mail.example.test; {format_datetime(date)}\n"
        "From: Sender <sender@example.test>\n"
        "X-Mozilla-Status: 0001\n"
        "X-Mozilla-Status2: 00000000\n"
        "X-Mozilla-Keys:                                                                 \n"
        "To: Pat <pat@example.test>\n"
        "Subject: the video of the wedding\n"
        f"Date: {format_datetime(date)}\n"
        "MIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="big"\n\n'
        "--big\nContent-Type: video/mp4; name=wedding.mp4\n"
        "Content-Transfer-Encoding: base64\n\n"
    ).encode()
    with open(path, "wb", buffering=4 * MB) as out:
        out.write(b"From - " + date.strftime("%a %b %d %H:%M:%S %Y").encode() + b"\n" + head)
        left = size - len(head) - 10
        while left > 0:
            piece = pools.base64_of(rng, min(left, 4 * MB))
            out.write(piece)
            left -= len(piece)
        out.write(b"--big--\n\n")


# -- measuring ------------------------------------------------------------------------------

READER = """
import sys
from pathlib import Path
from advisor.stores.mbox import MboxReader
count = size = 0
for message in MboxReader(Path(sys.argv[1])).messages():
    count += 1
    size += len(message.data)
    del message
hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1])
print(count, size, hwm)
"""


@dataclass
class Timing:
    seconds: float
    count: int
    peak_mb: float = 0.0


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and its descendants (the reader's search helper), KB."""
    total = 0
    pids = [pid]
    while pids:
        current = pids.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            with open(f"/proc/{current}/task/{current}/children") as children:
                pids.extend(int(child) for child in children.read().split())
        except OSError:
            continue
    return total


def _run(cmd: list[str]) -> tuple[float, str, int]:
    """Run ``cmd``: wall seconds, its output, and the peak resident memory of its process
    tree (it and its helper), sampled every 20 ms."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    peak = 0
    output: dict[str, bytes] = {}

    def collect() -> None:
        assert proc.stdout is not None and proc.stderr is not None
        output["out"], output["err"] = proc.stdout.read(), proc.stderr.read()

    reader = threading.Thread(target=collect)
    reader.start()
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.02)
    elapsed = time.perf_counter() - start
    reader.join()
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    proc.stderr.close()
    if proc.returncode not in (0, 1):  # grep -c exits 1 when it counts nothing
        raise SystemExit(f"{cmd[0]} failed: {output['err'].decode()[-2000:]}")
    return elapsed, output["out"].decode(), peak


def time_grep(path: Path) -> Timing:
    seconds, out, _ = _run(["grep", "-c", "^From ", str(path)])
    return Timing(seconds, int(out.strip()))


def time_reader(path: Path) -> Timing:
    seconds, out, sampled = _run([sys.executable, "-c", READER, str(path)])
    count, _size, hwm = (int(x) for x in out.split())
    return Timing(seconds, count, max(hwm, sampled) / 1024)


def _warm(path: Path) -> None:
    """Read the file once so that every timing reads it from the page cache."""
    with open(path, "rb", buffering=0) as stream:
        while stream.read(16 * MB):
            pass


def best(measure: object, path: Path, repeat: int) -> Timing:
    runs = [measure(path) for _ in range(repeat)]  # type: ignore[operator]
    return min(runs, key=lambda t: t.seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gb", type=float, default=2.0, help="size of the large mbox")
    parser.add_argument("--big-mb", type=int, default=200, help="size of the single message")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each, best kept")
    parser.add_argument("--keep", type=Path, help="generate into (and keep) this directory")
    args = parser.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="mailadvisor-bench-read-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        large, big = work / f"mbox-{args.size_gb:g}GB", work / f"one-{args.big_mb}MB"
        if not large.exists():
            started = time.perf_counter()
            count = write_mbox(large, int(args.size_gb * 1000**3))
            print(
                f"generated {large.name}: {count:,} messages, "
                f"{large.stat().st_size / MB:,.0f} MB in {time.perf_counter() - started:.0f} s"
            )
        if not big.exists():
            write_big_message(big, args.big_mb * MB)
        rows = []
        for path, label in (
            (large, f"{args.size_gb:g} GB mbox"),
            (big, f"one {args.big_mb} MB message"),
        ):
            _warm(path)
            grep = best(time_grep, path, args.repeat)
            ours = best(time_reader, path, args.repeat)
            if grep.count != ours.count:
                raise SystemExit(f"{path}: grep counts {grep.count}, the reader {ours.count}")
            rows.append((label, path.stat().st_size, grep, ours))
        print(f"\nload average: {os.getloadavg()[0]:.2f}; best of {args.repeat} runs\n")
        print("| file | messages | grep -c '^From ' | MboxReader | ratio | reader peak RSS |")
        print("|---|---|---|---|---|---|")
        for label, size, grep, ours in rows:
            print(
                f"| {label} | {ours.count:,} | {grep.seconds:.2f} s | {ours.seconds:.2f} s "
                f"({size / MB / ours.seconds:,.0f} MB/s) | {ours.seconds / grep.seconds:.2f}x "
                f"| {ours.peak_mb:.0f} MB |"
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
