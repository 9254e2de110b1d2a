"""Ingest benchmark: how fast mailbot pulls school reports from IMAP, against a floor and a naive baseline.

    python bench/ingest.py [-n 2000] [--repeat 1] [--keep]

Loads N messages, each from a roster address with one ~40 KB Word report attached (~55 KB on the
wire), into a private Dovecot on loopback (tests/servers/dovecot.py), then times, one after the other:

  (a) mbsync (isync) pulling INBOX into an empty Maildir: the raw transfer cost, the floor;
  (b) bench/plain_loop.py: imap-tools fetching one message at a time and opening every .docx with
      python-docx, what one would write by hand;
  (c) `python -m mailbot run --once` with a fresh database and archive, and mailbot's defaults for
      everything the config below leaves out (e.g. acknowledgements, queued to the file outbox).

All three use plain IMAP on loopback, run as separate processes and are timed wall-clock from launch
to exit (interpreter start-up included); with --repeat they take turns and the fastest run of each is
kept.  Peak memory is each process's maximum RSS as GNU time reports it and, for mailbot (which
parses in worker processes), the peak over its whole process tree sampled every 50 ms: the sum of
RSS (counts the code the workers share with their fork server once per process) and the sum of PSS
(each shared page divided among the processes sharing it: what the service really occupies).  An untimed mbsync run first
warms Dovecot's indexes and the page cache.  Each contender's result is checked: (a) N files in the
Maildir, (b) N messages and N documents seen, (c) N submissions in `mailbot status --json`.

Targets (from the issue): mailbot within 4x of mbsync's time, at least 3x faster than the plain loop,
peak memory of the whole service under 100 MB whatever N.  Needs root (or a `vmail` user) and the Debian packages dovecot-imapd,
isync and time (GNU time); `bash scripts/test.sh` installs the first two.
"""

from __future__ import annotations

import argparse
import imaplib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.servers

from mailbot.demo import samples  # noqa: E402
from tests.conftest import PASSWORD_ENV as WORKSPACE_PASSWORD_ENV  # noqa: E402
from tests.conftest import make_workspace  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402

PASSWORD_ENV = "BENCH_IMAP_PASSWORD"
SUBJECT = "V/v gửi báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
FIRST_ARRIVAL = datetime(2023, 11, 2, 8, 0, tzinfo=samples.VN_TZ)  # inside the campaign, before its deadline
TARGET_VS_MBSYNC = 4.0
TARGET_VS_PLAIN = 3.0
TARGET_RSS_MB = 100.0
SAMPLE_SECONDS = 0.05  # the peak found is the same as at 0.02 s (flat memory), at under half the sampler's CPU
LOAD_CHUNK = 200
GNU_TIME = "/usr/bin/time"


MBSYNCRC = """\
FSync yes

IMAPAccount far
Host {host}
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore far
Account far

MaildirStore near
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :far:
Near :near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""


@dataclass
class Result:
    name: str
    seconds: float
    peak_rss_mb: float
    check: str  # what the correctness check found
    ok: bool
    tree_rss_mb: float = 0.0  # peak of the sum over the process tree (mailbot only)
    tree_pss_mb: float = 0.0
    main_cpu: float = 0.0  # CPU seconds of the main process (mailbot only), as last sampled
    other_cpu: float = 0.0  # CPU seconds of its reader processes
    pss_split: str = ""  # the tree's peak PSS, main process and readers
    sampler_cpu: float = 0.0  # CPU seconds the memory sampler itself took meanwhile (on the same cores)


# ---------------------------------------------------------------- the messages


@lru_cache(maxsize=1)
def _senders() -> tuple[dict, ...]:
    return tuple(r for r in samples.load_demo_roster() if r["emails"])


@cache
def _report(code: str) -> bytes:
    """One ~40 KB report per institution, reused by its messages (the content costs the same each time)."""
    row = next(r for r in _senders() if r["code"] == code)
    return samples.report_for(row, FIRST_ARRIVAL, pad_to=40_000)


def build_message(i: int) -> tuple[datetime, bytes]:
    """Message number ``i``: from a roster address, arriving 37 s after the previous one (so even 200,000
    messages arrive while the campaign accepts them)."""
    row = _senders()[i % len(_senders())]
    when = FIRST_ARRIVAL + timedelta(seconds=37 * i)
    raw = samples.make_email(
        sender=row["emails"][0],
        sender_name=f"Văn thư {row['name']}",
        subject=SUBJECT,
        body=f"Kính gửi: Sở GDĐT Hải Phòng\n\n{row['name']} xin gửi báo cáo (lần {i + 1}).\n\nTrân trọng!\n",
        attachments=[(f"Báo cáo ANTQ 2023 - {row['name']}.docx", _report(row["code"]), samples.DOCX_TYPE)],
        message_id=f"<bench-{i:06d}@{row['emails'][0].split('@')[1]}>",
        date=when,
    )
    return when, raw


def load(server: Dovecot, n: int) -> int:
    """APPEND n messages over one IMAP connection (built in worker processes meanwhile); returns bytes sent."""
    conn = server.connect(timeout=60)
    sent = 0
    try:
        with ProcessPoolExecutor() as pool:
            for start in range(0, n, LOAD_CHUNK):  # a chunk at a time: map() would queue every message at once
                for when, raw in pool.map(build_message, range(start, min(n, start + LOAD_CHUNK)), chunksize=25):
                    typ, data = conn.append("INBOX", None, imaplib.Time2Internaldate(when), raw)
                    if typ != "OK":
                        raise RuntimeError(f"APPEND failed: {data!r}")
                    sent += len(raw)
    finally:
        conn.logout()
    return sent


# ---------------------------------------------------------------- running a contender


class TreeMemory(threading.Thread):
    """Samples the sums of RSS and PSS (/proc/PID/smaps_rollup) over all descendants of a process (GNU time).

    The sampler runs beside the contender on the same two cores, so it is kept cheap: the tree is found through
    /proc/PID/task/TID/children (a scan of every process, as psutil does, took ~1.5 ms a sample and, 50 times a
    second, a fifth of a core from the contender). ``cpu_seconds`` says what the sampling itself cost."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.done = pid, threading.Event()
        self.peak_rss = self.peak_pss = 0  # kB
        self.cpu: dict[int, float] = {}  # pid → CPU seconds (user + system) last seen
        self.at_peak: dict[int, int] = {}  # pid → its PSS (kB) when the tree's PSS peaked
        self.main = 0  # the measured command's own process (GNU time's child); the others are its readers
        self.cpu_seconds = 0.0  # this thread's own CPU time, sampling

    def run(self) -> None:
        started = time.thread_time()
        while not self.done.wait(SAMPLE_SECONDS):
            self._sample()
        self.cpu_seconds = time.thread_time() - started

    def _sample(self) -> None:
        pids = tree_pids(self.pid)[1:]  # GNU time's descendants: the command's process first
        self.main = self.main or (pids[0] if pids else 0)
        rss = pss = 0
        each: dict[int, int] = {}
        for pid in pids:
            seen = process_usage(pid)
            if seen is None:
                continue  # exited meanwhile
            self.cpu[pid] = seen.cpu_seconds
            rss += seen.rss_kb
            each[pid] = seen.pss_kb
            pss += seen.pss_kb
        if pss > self.peak_pss:
            self.at_peak = each
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def split_at_peak(self) -> str:
        """``main X, readers Y``: MB of PSS when the tree peaked."""
        others = sum(kb for pid, kb in self.at_peak.items() if pid != self.main)
        return f"main {self.at_peak.get(self.main, 0) / 1024:.1f}, readers {others / 1024:.1f}"


CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    """One process as last seen: its RSS and PSS (kB, /proc/PID/smaps_rollup) and CPU seconds (user + system)."""

    rss_kb: int
    pss_kb: int
    cpu_seconds: float


def process_usage(pid: int) -> Usage | None:
    """``pid``'s memory and CPU now; None when it has exited."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    fields = dict(line.split()[:2] for line in text.splitlines()[1:] if line.split())
    return Usage(int(fields.get("Rss:", 0)), int(fields.get("Pss:", 0)), (int(stat[11]) + int(stat[12])) / CLK_TCK)


def tree_pids(root: int) -> list[int]:
    """``root`` and all its descendants, each before its own children (from /proc/PID/task/TID/children)."""
    out, todo = [], [root]
    while todo:
        pid = todo.pop(0)
        out.append(pid)
        try:
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue  # exited meanwhile
    return out


def measure(
    name: str, cmd: list[str], cwd: Path, env: dict[str, str], tree: list[TreeMemory] | None = None
) -> tuple[float, float, str]:
    """Run ``cmd`` to completion; (wall seconds, peak RSS in MB, stdout).  Raises if it fails.

    Peak RSS comes from GNU time (%M), not from our own wait4(): Linux charges a child's maxrss with the
    memory image it had before exec(), which would be a copy of this (large) process. With ``tree``, the
    process tree's memory is sampled as well (the sampler is appended to it).
    """
    out, err, rss = (cwd / f"{name}.{what}" for what in ("stdout", "stderr", "maxrss"))
    with out.open("wb") as stdout, err.open("wb") as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [GNU_TIME, "-f", "%M", "-o", str(rss), *cmd],
            cwd=cwd,
            env={**os.environ, **env},
            stdout=stdout,
            stderr=stderr,
        )
        if tree is not None:
            tree.append(TreeMemory(proc.pid))
            tree[-1].start()
        proc.wait()
        seconds = time.perf_counter() - start
        if tree is not None:
            tree[-1].done.set()
            tree[-1].join()
    if proc.returncode != 0:
        raise RuntimeError(f"{name} exited {proc.returncode}:\n{err.read_text(errors='replace')[-3000:]}")
    return seconds, int(rss.read_text().split()[-1]) / 1024, out.read_text(errors="replace")


def write_mbsyncrc(server: Dovecot, folder: Path) -> Path:
    rc, maildir = folder / "mbsyncrc", folder / "maildir"
    maildir.mkdir()  # mbsync creates the folders inside, not the store's root
    rc.write_text(
        MBSYNCRC.format(host=server.host, port=server.port, user=server.user, password=server.password, maildir=maildir)
    )
    return rc


def run_mbsync(server: Dovecot, folder: Path, n: int) -> Result:
    rc = write_mbsyncrc(server, folder)
    seconds, rss, _ = measure("mbsync", ["mbsync", "-q", "-c", str(rc), "bench"], folder, {})
    inbox = folder / "maildir" / "INBOX"
    got = sum(1 for sub in ("cur", "new") for f in (inbox / sub).iterdir() if f.is_file())
    return Result("(a) mbsync", seconds, rss, f"{got} files in Maildir", got == n)


def run_plain_loop(server: Dovecot, folder: Path, n: int) -> Result:
    cmd = [sys.executable, str(ROOT / "bench" / "plain_loop.py"), server.host, str(server.port), server.user]
    seconds, rss, stdout = measure("plain", cmd, folder, {PASSWORD_ENV: server.password})
    counts = dict(re.findall(r"(\w+)=(\d+)", stdout))
    ok = counts.get("messages") == str(n) and counts.get("documents") == str(n)
    return Result("(b) plain imap-tools loop", seconds, rss, stdout.strip(), ok)


PROFILE: Path | None = None  # --profile: where cProfile writes mailbot's main-process profile
SAMPLES: Path | None = None  # --py-spy: where py-spy writes its samples (collapsed stacks)
READERS: int | None = None  # --readers: [inbox] reader_processes (default: mailbot's)
PY_SPY = ("py-spy", "record", "--idle", "--subprocesses", "--rate", "250", "--format", "raw")


def run_mailbot(server: Dovecot, folder: Path, n: int) -> Result:
    inbox = f"reader_processes = {READERS}" if READERS is not None else ""
    config = make_workspace(folder, server, inbox).config_path  # the same roster and config as the tests use
    env = {WORKSPACE_PASSWORD_ENV: server.password}
    mailbot = [sys.executable, "-m", "mailbot", "--config", str(config)]
    profiled = [sys.executable, "-m", "cProfile", "-o", str(PROFILE), "-m", "mailbot", "--config", str(config)]
    if SAMPLES:  # py-spy samples every process of the tree, readers included, at a small cost
        profiled = [*PY_SPY, "--output", str(SAMPLES), "--", *mailbot]
    tree: list[TreeMemory] = []
    seconds, rss, _ = measure(
        "mailbot", [*(profiled if PROFILE or SAMPLES else mailbot), "run", "--once"], folder, env, tree
    )
    _, _, status = measure("mailbot-status", [*mailbot, "status", "--json"], folder, env)
    report = json.loads(status)
    submissions = sum(len(i["submissions"]) for i in report["institutions"])
    check = f"{submissions} submissions, {len(report['review'])} in review"
    return Result(
        "(c) mailbot run --once",
        seconds,
        rss,
        check,
        submissions == n,
        tree[0].peak_rss / 1024,
        tree[0].peak_pss / 1024,
        tree[0].cpu.get(tree[0].main, 0.0),
        sum(cpu for pid, cpu in tree[0].cpu.items() if pid != tree[0].main),
        tree[0].split_at_peak(),
        tree[0].cpu_seconds,
    )


def file_cost(where: Path, files: int = 300) -> float:
    """Seconds to create one archive-sized file in a new folder there: the kernel's share of every contender's
    work, which on some machines varies tenfold (see README, Performance).

    The files are left for the end of the benchmark: on ext4 without a journal (this VM's disk) a new file skips
    every inode freed in the last ~30 s, reading each one, so deleting them now would slow the next contender."""
    folder = Path(tempfile.mkdtemp(prefix="file-cost-", dir=where))
    data = os.urandom(50_000)
    started = time.perf_counter()
    for i in range(files):
        (folder / f"{i}.eml").write_bytes(data)
    return (time.perf_counter() - started) / files


def remove_unless_kept(keep: bool, *folders: str | Path) -> None:
    """A benchmark's server and work folders: kept for a look (``--keep``, and their places printed) or removed."""
    if keep:
        print("kept " + ", ".join(str(f) for f in folders))
        return
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


def compile_mailbot() -> None:
    """Byte-compile mailbot as ``pip install`` does: a source checkout run with PYTHONDONTWRITEBYTECODE (as in this
    sandbox) would otherwise compile every module at every start, which no installed copy does."""
    package = Path(samples.__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True, stdout=subprocess.DEVNULL)


CONTENDERS = (run_mbsync, run_plain_loop, run_mailbot)


def run_all(
    server: Dovecot, work: Path, n: int, repeat: int, contenders: tuple[Callable[..., Result], ...] = CONTENDERS
) -> list[Result]:
    """Each contender ``repeat`` times, taking turns, each run in a fresh folder (empty Maildir, new database).

    Keeps the fastest time of each; peak RSS is the highest seen, and a check fails if any run's failed.
    """
    runs: dict[str, list[Result]] = {c.__name__: [] for c in contenders}
    for attempt in range(repeat):
        for contender in contenders:
            folder = work / f"{contender.__name__}-{attempt}"
            folder.mkdir()
            runs[contender.__name__].append(contender(server, folder, n))
    return [
        replace(
            min(rs, key=lambda r: r.seconds),
            peak_rss_mb=max(r.peak_rss_mb for r in rs),
            tree_rss_mb=max(r.tree_rss_mb for r in rs),
            tree_pss_mb=max(r.tree_pss_mb for r in rs),
            pss_split=max(rs, key=lambda r: r.tree_pss_mb).pss_split,
            ok=all(r.ok for r in rs),
        )
        for rs in runs.values()
    ]


# ---------------------------------------------------------------- report


def print_table(results: list[Result], n: int) -> None:
    floor = results[0].seconds
    print(f"\n{'contender':<28}{'seconds':>9}{'msg/s':>9}{'peak RSS MB':>13}{'x mbsync':>10}  check")
    for r in results:
        mark = "" if r.ok else "  <-- WRONG"
        print(
            f"{r.name:<28}{r.seconds:>9.2f}{n / r.seconds:>9.0f}{r.peak_rss_mb:>13.1f}"
            f"{r.seconds / floor:>10.2f}  {r.check}{mark}"
        )
        if r.tree_pss_mb:
            print(
                f"{'':<28}{'':>18}  whole process tree: PSS {r.tree_pss_mb:.1f} MB ({r.pss_split}), summed RSS {r.tree_rss_mb:.1f} MB;"
                f" CPU s: main {r.main_cpu:.1f}, readers {r.other_cpu:.1f} (the memory sampler beside it: {r.sampler_cpu:.2f})"
            )


def print_targets(mbsync: Result, plain: Result, mailbot: Result) -> bool:
    vs_floor, speedup = mailbot.seconds / mbsync.seconds, plain.seconds / mailbot.seconds
    checks = [
        (f"mailbot within {TARGET_VS_MBSYNC:g}x of mbsync", vs_floor <= TARGET_VS_MBSYNC, f"{vs_floor:.2f}x"),
        (f"mailbot >= {TARGET_VS_PLAIN:g}x faster than the plain loop", speedup >= TARGET_VS_PLAIN, f"{speedup:.2f}x"),
        (
            f"mailbot peak memory (PSS, process tree) < {TARGET_RSS_MB:g} MB",
            mailbot.tree_pss_mb < TARGET_RSS_MB,
            f"{mailbot.tree_pss_mb:.1f} MB; summed RSS {mailbot.tree_rss_mb:.1f} MB, main process {mailbot.peak_rss_mb:.1f} MB",
        ),
        ("every contender saw every message", all(r.ok for r in (mbsync, plain, mailbot)), ""),
    ]
    print(f"\nmailbot speed-up over the plain loop: {speedup:.2f}x; time relative to mbsync: {vs_floor:.2f}x")
    for label, ok, value in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {label}{f' ({value})' if value else ''}")
    return all(ok for _, ok, _ in checks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=2000, help="number of messages (default 2000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per contender, the fastest kept (default 1)")
    parser.add_argument("--keep", action="store_true", help="keep the server and work folders, print where")
    parser.add_argument("--mailbot-only", action="store_true", help="time mailbot alone (while tuning it)")
    parser.add_argument("--profile", type=Path, help="run mailbot under cProfile, writing the profile here")
    parser.add_argument("--py-spy", type=Path, help="sample mailbot's processes with py-spy, writing stacks here")
    parser.add_argument("--readers", type=int, help="[inbox] reader_processes for mailbot (default: its own)")
    args = parser.parse_args()
    global PROFILE, SAMPLES, READERS
    READERS = args.readers
    PROFILE = args.profile.resolve() if args.profile else None
    SAMPLES = args.py_spy.resolve() if args.py_spy else None
    missing = [tool for tool in (GNU_TIME, "mbsync") if not shutil.which(tool)]
    if missing:
        parser.error(f"missing {', '.join(missing)}: apt-get install -y time isync dovecot-imapd")
    started = time.perf_counter()
    compile_mailbot()
    server = Dovecot(tempfile.mkdtemp(prefix="dovecot-"))
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-"))
    try:
        server.start()
        sent = load(server, args.n)
        print(f"loaded {args.n} messages ({sent / 1e6:.1f} MB) into Dovecot in {time.perf_counter() - started:.1f} s")
        (work / "warmup").mkdir()
        run_mbsync(server, work / "warmup", args.n)
        print(f"load average before timing: {os.getloadavg()[0]:.2f} (other work on this machine skews the figures)")
        print(f"creating a 50 KB file in a new folder under {work}: {file_cost(work) * 1000:.2f} ms (TMPDIR moves it)")
        results = run_all(server, work, args.n, args.repeat, (run_mailbot,) if args.mailbot_only else CONTENDERS)
    finally:
        server.stop()
        remove_unless_kept(args.keep, server.root_dir, work)
    if args.mailbot_only:
        r = results[0]
        print(
            f"\n{r.name}: {r.seconds:.2f} s, {args.n / r.seconds:.0f} msg/s, main process {r.peak_rss_mb:.1f} MB, "
            f"process tree: PSS {r.tree_pss_mb:.1f} MB ({r.pss_split}), RSS {r.tree_rss_mb:.1f} MB; CPU: main {r.main_cpu:.1f} s, "
            f"readers {r.other_cpu:.1f} s; {r.check}"
        )
        return 0 if r.ok else 1
    print_table(results, args.n)
    ok = print_targets(*results)
    print(f"\nwhole run: {time.perf_counter() - started:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
