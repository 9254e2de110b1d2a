"""Burst benchmark: 1,000 school reports arriving within one minute while `mailbot run` (the service) runs.

    python bench/burst.py [-n 1000] [--seconds 60] [--threads 4] [--idle-seconds 10] [--keep]

Starts a private Dovecot on loopback (tests/servers/dovecot.py, IDLE on), a real SMTP server (aiosmtpd, the
tests' SmtpSink) and `python -m mailbot run` as a subprocess with the service tests' configuration (see
bench/latency.py; its database made beforehand by `mailbot db upgrade`, as on any restart, unless
--first-start; [notify] max_auto_per_address_per_day is raised to 1,000,000 so that the daily cap suppresses
no receipt: each school sends ~25 reports here).  Once the service logged "mailbot started" (plus --warmup),
N messages as bench/ingest.py builds them (a ~40 KB Word report each, from the roster's addresses, unique
Message-IDs) are APPENDed at a steady rate, N over --seconds (message i is due at i * seconds / N), by
--threads threads, each over its own logged-in IMAP connection (one connection cannot keep up with 17/s of
~55 KB messages on a loaded machine; a thread that falls behind appends at once).

Latency of one message = the moment its receipt (X-Mailbot-Kind: ack, In-Reply-To: its Message-ID) is first
seen at the SMTP server - the moment its APPEND returned OK.  The sink is polled every 10 ms (bench/latency.py's
SinkWatcher), so figures are late by at most ~10 ms.  Percentiles are nearest-rank.  Target (issue #15): p95 of
the burst under 10 s, every message receipted once.

Memory: the service's whole process tree (the main process and its descendants: fork server, reader workers,
multiprocessing's resource tracker) is sampled every 20 ms from /proc/PID/smaps_rollup: the peak of the PSS sum
(each shared page divided among its sharers: what the service really occupies) and of the RSS sum (shared code
counted once per process), with each process's share at the PSS peak.  The same again while the service idles,
--settle seconds after the last receipt, for --idle-seconds.  Target (issue #15): peak PSS under 100 MB.

Exit status 0 when every target is met.  Needs root (or a `vmail` user) and dovecot-imapd, as the tests do.
"""

from __future__ import annotations

import argparse
import imaplib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.* and bench.*

from bench.ingest import build_message, process_usage, remove_unless_kept, tree_pids  # noqa: E402
from bench.latency import Sent, SinkWatcher, pct, summary, verdict  # noqa: E402
from tests.conftest import PASSWORD_ENV, make_workspace  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.smtp import SmtpSink  # noqa: E402
from tests.test_daemon import Running  # noqa: E402
from tests.test_notify import smtp_section  # noqa: E402
from tests.web_support import free_port  # noqa: E402

TARGET_P95_S = 10.0
TARGET_PSS_MB = 100.0
SAMPLE_SECONDS = 0.02


# --------------------------------------------------------------------------------------------
# memory of the service's process tree


def process_name(pid: int) -> str:
    """A short label: the multiprocessing role of a child, else the command."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        text = " ".join(a.decode(errors="replace") for a in argv if a)
        if "forkserver" in text:  # the fork server's children (the readers) inherit its command line
            parent = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            forked = "forkserver" in Path(f"/proc/{parent}/cmdline").read_text(errors="replace")
            return "reader" if forked else "fork server"
    except OSError:
        return "?"
    for marker, label in (
        ("resource_tracker", "resource tracker"),
        ("multiprocessing", "worker"),
    ):
        if marker in text:
            return label
    return "main" if " run" in text else text[:40]


def _child_name(pid: int) -> str:
    name = process_name(pid)
    return "reader" if name == "main" else name


@dataclass
class TreeSample:
    pss_kb: int
    rss_kb: int
    each: dict[int, tuple[str, int]]  # pid -> (label, PSS kB)


class TreeSampler(threading.Thread):
    """Samples PSS and RSS summed over a process and its descendants every 20 ms; keeps the peaks."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True, name="tree-memory")
        self.pid = pid
        self.done = threading.Event()
        self.peak_pss = TreeSample(0, 0, {})
        self.peak_rss_kb = 0
        self.samples = 0
        self.cpu: dict[int, tuple[str, float]] = {}  # pid -> (label, CPU seconds last seen)
        self._names: dict[int, str] = {}

    def run(self) -> None:
        while not self.done.wait(SAMPLE_SECONDS):
            sample = self.sample()
            self.samples += 1
            if sample.pss_kb > self.peak_pss.pss_kb:
                self.peak_pss = sample
            self.peak_rss_kb = max(self.peak_rss_kb, sample.rss_kb)

    def sample(self) -> TreeSample:
        pss = rss = 0
        each: dict[int, tuple[str, int]] = {}
        for pid in tree_pids(self.pid):
            seen = process_usage(pid)
            if seen is None:
                continue
            # a reader forked from the service (not from a fork server) shares its command line: the root is "main"
            name = self._names.setdefault(pid, process_name(pid) if pid == self.pid else _child_name(pid))
            each[pid] = (name, seen.pss_kb)
            self.cpu[pid] = (name, seen.cpu_seconds)
            pss += seen.pss_kb
            rss += seen.rss_kb
        return TreeSample(pss, rss, each)

    def stop(self) -> None:
        self.done.set()
        self.join(5)

    def describe(self) -> str:
        peak = self.peak_pss
        parts = ", ".join(f"{name} {kb / 1024:.1f}" for name, kb in sorted(peak.each.values(), key=lambda v: -v[1]))
        return (
            f"peak PSS {peak.pss_kb / 1024:.1f} MB ({parts}), peak RSS sum {self.peak_rss_kb / 1024:.1f} MB; "
            f"{self.samples} samples"
        )


# --------------------------------------------------------------------------------------------
# the burst


@dataclass
class Burst:
    sent: list[Sent] = field(default_factory=list)
    late_starts: int = 0  # APPENDs that began more than 0.5 s after they were due
    began: float = 0.0
    ended: float = 0.0
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def append_burst(server: Dovecot, messages: list[tuple[str, bytes, str]], seconds: float, threads: int) -> Burst:
    """APPEND the messages at a steady rate, message i due at i * seconds / n, over ``threads`` connections."""
    burst = Burst()
    n = len(messages)
    connections = [server.connect(timeout=60) for _ in range(threads)]
    burst.began = time.monotonic() + 0.2

    def worker(k: int) -> None:
        conn = connections[k]
        try:
            for i in range(k, n, threads):
                mid, raw, when = messages[i]
                due = burst.began + i * seconds / n
                delay = due - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                t0 = time.monotonic()
                typ, data = conn.append("INBOX", None, when, raw)
                t1, w1 = time.monotonic(), time.time()
                with burst.lock:
                    if typ != "OK":
                        burst.errors.append(f"{mid}: {data!r}")
                        continue
                    burst.sent.append(Sent(mid, t0, t1, w1))
                    burst.late_starts += t0 - due > 0.5
        except Exception as exc:  # noqa: BLE001 - reported, the others go on
            with burst.lock:
                burst.errors.append(f"thread {k}: {type(exc).__name__}: {exc}")

    workers = [threading.Thread(target=worker, args=(k,), name=f"append-{k}") for k in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    burst.ended = time.monotonic()
    for conn in connections:
        try:
            conn.logout()
        except (OSError, imaplib.IMAP4.error):
            pass
    burst.sent.sort(key=lambda s: s.append_end)
    return burst


def build_messages(n: int) -> list[tuple[str, bytes, str]]:
    """(Message-ID, raw, INTERNALDATE) of bench/ingest.py's message i, for i < n."""
    out = []
    for i in range(n):
        when, raw = build_message(i)
        head = raw[: raw.find(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.find(b"\n\n")]
        mid = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.splitlines()
            if line.lower().startswith(b"message-id:")
        )
        out.append((mid, raw, imaplib.Time2Internaldate(when)))
    return out


def start_service(args: argparse.Namespace, server: Dovecot, sink: SmtpSink, ws_root: Path) -> Running:
    ws = make_workspace(
        ws_root / "ws",
        server,
        extra_inbox="poll_seconds = 2" + "".join(f"\n{line}" for line in args.inbox),
        extra=smtp_section(
            sink,
            extra=f"retry_base_seconds = 1\ndeliver_every_seconds = {args.deliver_every:g}\n",
            notify="max_auto_per_address_per_day = 1000000",
        )
        + (f'\n[web]\nenabled = true\nhost = "127.0.0.1"\nport = {free_port()}\n' if args.web else ""),
    )
    if not args.first_start:  # the usual start: a database already at the newest revision
        subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), "db", "upgrade"],
            env={**os.environ, PASSWORD_ENV: ws.password},
            cwd=ws.root,
            check=True,
            capture_output=True,
        )
    service = Running(ws)
    t0 = time.monotonic()
    service.wait_log("mailbot started", timeout=60)
    print(f"service pid {service.proc.pid} started in {time.monotonic() - t0:.2f} s", flush=True)
    return service


def wait_for_receipts(burst: Burst, service: Running, watcher: SinkWatcher, timeout: float) -> None:
    wanted = {s.message_id for s in burst.sent}
    deadline = burst.ended + timeout
    reported = time.monotonic()
    while not wanted <= watcher.seen.keys() and time.monotonic() < deadline and service.proc.poll() is None:
        time.sleep(0.05)
        if time.monotonic() - reported > 5:
            reported = time.monotonic()
            print(f"  receipts so far {len(wanted & watcher.seen.keys())}/{len(wanted)}", flush=True)
    time.sleep(1.0)  # a duplicate would come with the next delivery round
    watcher.stop()
    watcher.scan()


def report(args: argparse.Namespace, burst: Burst, watcher: SinkWatcher, memory: TreeSampler) -> bool:
    sent = burst.sent
    got = [s for s in sent if s.message_id in watcher.seen]
    latencies = [watcher.seen[s.message_id] - s.append_end for s in got]
    last = max((watcher.seen[s.message_id] for s in got), default=float("nan"))
    print()
    print(
        f"== burst: {len(sent)} of {args.n} messages appended in {burst.ended - burst.began:.1f} s "
        f"(asked: {args.seconds:g} s, {args.threads} connections; {burst.late_starts} APPENDs began > 0.5 s late)"
    )
    for error in burst.errors[:5]:
        print(f"  APPEND error: {error}")
    print(f"  APPEND -> receipt accepted by SMTP   {summary(latencies)}")
    print(
        f"  receipts: {len(got)}/{len(sent)}; the last one {last - burst.began:.1f} s after the first APPEND, "
        f"{last - burst.ended:.1f} s after the last"
    )
    if watcher.duplicates:
        print(f"  DUPLICATE receipts: {len(watcher.duplicates)}")
    if watcher.other_kinds:
        print(f"  other mail at the SMTP server (ignored): {watcher.other_kinds}")
    print(f"  memory during the burst: {memory.describe()}")
    cpu: dict[str, tuple[int, float]] = {}
    for name, seconds in memory.cpu.values():
        count, total = cpu.get(name, (0, 0.0))
        cpu[name] = (count + 1, total + seconds)
    print("  CPU seconds: " + ", ".join(f"{name} {s:.1f} ({k} process(es))" for name, (k, s) in cpu.items()))
    p95 = pct(latencies, 95) if latencies and len(got) == len(sent) == args.n else float("inf")
    ok_latency = p95 < TARGET_P95_S and not watcher.duplicates
    ok_memory = memory.peak_pss.pss_kb / 1024 < TARGET_PSS_MB
    print(f"  {verdict(ok_latency)}: p95 {p95:.2f} s vs target < {TARGET_P95_S:g} s, every message receipted once")
    print(f"  {verdict(ok_memory)}: peak PSS {memory.peak_pss.pss_kb / 1024:.1f} MB vs target < {TARGET_PSS_MB:g} MB")
    return ok_latency and ok_memory


def measure_idle(args: argparse.Namespace, pid: int) -> bool:
    time.sleep(args.settle)
    idle = TreeSampler(pid)
    idle.start()
    time.sleep(args.idle_seconds)
    idle.stop()
    print(f"\n== idle service ({args.idle_seconds:g} s from {args.settle:g} s after the burst): {idle.describe()}")
    ok = idle.peak_pss.pss_kb / 1024 < TARGET_PSS_MB
    print(f"  {verdict(ok)}: idle PSS {idle.peak_pss.pss_kb / 1024:.1f} MB vs target < {TARGET_PSS_MB:g} MB")
    return ok


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-n", type=int, default=1000, help="messages to append (default 1000)")
    ap.add_argument("--seconds", type=float, default=60.0, help="append them over this many seconds (default 60)")
    ap.add_argument("--threads", type=int, default=4, help="appending threads, one IMAP connection each (default 4)")
    ap.add_argument("--warmup", type=float, default=2.0, help="wait after 'mailbot started' (s)")
    ap.add_argument("--timeout", type=float, default=300.0, help="wait for receipts after the last APPEND (s)")
    ap.add_argument("--deliver-every", type=float, default=1.0, help="[outbox] deliver_every_seconds (tests: 1)")
    ap.add_argument("--settle", type=float, default=5.0, help="wait after the burst before the idle sample (s)")
    ap.add_argument("--idle-seconds", type=float, default=10.0, help="idle memory sampling window (s; 0: none)")
    ap.add_argument("--inbox", action="append", default=[], help="a line for [inbox], e.g. 'batch_bytes = 1048576'")
    ap.add_argument(
        "--first-start",
        action="store_true",
        help="the service creates the database itself (else `mailbot db upgrade` does it before: a usual restart)",
    )
    ap.add_argument(
        "--web", action="store_true", help="the service also serves the web pages ([web] enabled), as staff run it"
    )
    ap.add_argument("--keep", action="store_true", help="keep the temporary folders (paths printed)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()

    def on_term(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)  # so that the finally below runs

    signal.signal(signal.SIGTERM, on_term)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()} ({os.cpu_count()} CPUs)")
    t0 = time.monotonic()
    messages = build_messages(args.n)
    print(
        f"built {len(messages)} messages of ~{len(messages[0][1]) / 1024:.0f} KB in {time.monotonic() - t0:.1f} s",
        flush=True,
    )
    dovecot_root = tempfile.mkdtemp(prefix="dovecot-")
    ws_root = Path(tempfile.mkdtemp(prefix="mailbot-burst-"))
    server, sink = Dovecot(dovecot_root), SmtpSink()
    try:
        server.start()
        sink.start()
        return 0 if measure(args, server, sink, ws_root, messages) else 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # clean up undisturbed
        sink.stop()
        server.stop()
        remove_unless_kept(args.keep, dovecot_root, ws_root)


def measure(
    args: argparse.Namespace, server: Dovecot, sink: SmtpSink, ws_root: Path, messages: list[tuple[str, bytes, str]]
) -> bool:
    """The service started, the burst appended and receipted, memory sampled throughout; then idle; then stopped."""
    service = start_service(args, server, sink, ws_root)
    memory = TreeSampler(service.proc.pid)
    memory.start()
    ok = False
    try:
        time.sleep(args.warmup)
        watcher = SinkWatcher(sink)
        watcher.start()
        burst = append_burst(server, messages, args.seconds, args.threads)
        print(f"  appended {len(burst.sent)}, receipts so far {len(watcher.seen)}", flush=True)
        wait_for_receipts(burst, service, watcher, args.timeout)
        memory.stop()
        print(f"load average after the burst: {Path('/proc/loadavg').read_text().strip()}")
        ok = report(args, burst, watcher, memory)
        if service.proc.poll() is not None:
            raise RuntimeError(f"service exited with {service.proc.returncode}:\n{service.log()[-3000:]}")
        if args.idle_seconds > 0:
            ok &= measure_idle(args, service.proc.pid)
    except BaseException:
        print(f"--- service log (tail) ---\n{service.log()[-3000:]}", file=sys.stderr)
        raise
    finally:
        memory.stop()
        ok &= stopped(service)
    return ok


def stopped(service: Running) -> bool:
    """SIGTERM, and whether the service exited 0 within 30 s (killed otherwise)."""
    try:
        code = service.stop(timeout=30)
    except Exception:  # noqa: BLE001 - a bench must clean up whatever went wrong
        service.proc.kill()
        service.proc.wait()
        return False
    print(f"service: SIGTERM -> exit {code}")
    return code == 0


if __name__ == "__main__":
    sys.exit(main())
