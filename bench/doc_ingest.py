"""Legacy .doc benchmark: a backlog in which one report in five is a Word 97 .doc, with and without the change.

    python bench/doc_ingest.py [-n 500] [--baseline REF] [--keep]

Loads N messages like bench/ingest.py (one ~40 KB report each, from a roster address), except that every fifth
report is a legacy .doc (the same report converted by LibreOffice once, cached under ~/.cache/mailbot-bench), into
a private Dovecot, then times `python -m mailbot run --once` on a fresh database, with this tree's code and, with
--baseline, with the code of a git commit (extracted by `git archive`, run from PYTHONPATH).

Measured for each run:
  - the wall time of `run --once`, from launch to exit (interpreter start-up, the conversions after the receipts
    included);
  - receipt latency: every message is in the mailbox before the run starts, so a message's wait for its receipt is
    taken as the receipt's outbox ``created_at`` (the moment it was queued, with the default file outbox) minus the
    run's start; p50/p95/max over all receipts, and p95 over the receipts of messages with a .doc;
  - how many .doc files ended with their metadata (title and issuer read) and how many unread.
"""

from __future__ import annotations

import argparse
import hashlib
import imaplib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # for tests.servers and bench.ingest

from bench.ingest import (  # noqa: E402
    FIRST_ARRIVAL,
    LOAD_CHUNK,
    SUBJECT,
    _report,
    _senders,
    measure,
    remove_unless_kept,
)
from mailbot.demo import samples  # noqa: E402
from tests.conftest import PASSWORD_ENV as WORKSPACE_PASSWORD_ENV  # noqa: E402
from tests.conftest import make_workspace  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402

DOC_EVERY = 5
DOC_TYPE = "application/msword"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mailbot-bench" / "doc"


def legacy_docs(codes: list[str]) -> dict[str, bytes]:
    """Each institution's report as a .doc, written by one LibreOffice run for all those not yet cached."""
    CACHE.mkdir(parents=True, exist_ok=True)
    names = {code: CACHE / f"{hashlib.sha256(_report(code)).hexdigest()[:20]}.doc" for code in codes}
    todo = [code for code, path in names.items() if not path.exists()]
    if todo:
        with tempfile.TemporaryDirectory(prefix="mailbot-bench-doc-") as tmp:
            sources = []
            for code in todo:
                source = Path(tmp) / names[code].with_suffix(".docx").name
                source.write_bytes(_report(code))
                sources.append(str(source))
            profile = (Path(tmp) / "profile").as_uri()
            subprocess.run(
                ["soffice", f"-env:UserInstallation={profile}", "--headless", "--convert-to", "doc", "--outdir", tmp]
                + sources,
                capture_output=True,
                timeout=600,
                check=True,
            )
            for code in todo:
                shutil.copyfile(Path(tmp) / names[code].name, names[code])
    return {code: path.read_bytes() for code, path in names.items()}


@cache
def _docs() -> dict[str, bytes]:
    return legacy_docs([r["code"] for r in _senders()])


def build_message(i: int) -> tuple[datetime, bytes]:
    """Message ``i`` as in bench/ingest.py; every fifth carries its report as a .doc."""
    row = _senders()[i % len(_senders())]
    when = FIRST_ARRIVAL + timedelta(seconds=37 * i)
    legacy = i % DOC_EVERY == 0
    name = f"Báo cáo ANTQ 2023 - {row['name']}.{'doc' if legacy else 'docx'}"
    data = _docs()[row["code"]] if legacy else _report(row["code"])
    raw = samples.make_email(
        sender=row["emails"][0],
        sender_name=f"Văn thư {row['name']}",
        subject=SUBJECT,
        body=f"Kính gửi: Sở GDĐT Hải Phòng\n\n{row['name']} xin gửi báo cáo (lần {i + 1}).\n\nTrân trọng!\n",
        attachments=[(name, data, DOC_TYPE if legacy else samples.DOCX_TYPE)],
        message_id=f"<bench-doc-{i:06d}@{row['emails'][0].split('@')[1]}>",
        date=when,
    )
    return when, raw


def load(server: Dovecot, n: int) -> None:
    _docs()  # converted once, before the timed part
    conn = server.connect(timeout=60)
    try:
        for start in range(0, n, LOAD_CHUNK):
            for i in range(start, min(n, start + LOAD_CHUNK)):
                when, raw = build_message(i)
                typ, data = conn.append("INBOX", None, imaplib.Time2Internaldate(when), raw)
                if typ != "OK":
                    raise RuntimeError(f"APPEND failed: {data!r}")
    finally:
        conn.logout()


@dataclass(frozen=True)
class Figures:
    name: str
    seconds: float
    receipts: int
    p50: float
    p95: float
    worst: float
    doc_p95: float
    docs_read: int
    docs_unread: int
    docs_pending: int


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else max(values, default=0)


def run_mailbot(name: str, server: Dovecot, folder: Path, code: Path) -> Figures:
    from sqlalchemy import select

    from mailbot import config, store

    workspace = make_workspace(folder, server)
    env = {WORKSPACE_PASSWORD_ENV: server.password, "PYTHONPATH": str(code)}
    started = datetime.now(UTC)
    cmd = [sys.executable, "-m", "mailbot", "--config", str(workspace.config_path), "run", "--once"]
    seconds, _, _ = measure(name, cmd, folder, env)
    settings = config.load(workspace.config_path)
    engine = store.connect(settings.db_url)
    o, f = store.outbox, store.files
    with engine.connect() as conn:
        queued = [(r.message_pk, r.created_at) for r in conn.execute(select(o.c.message_pk, o.c.created_at))]
        docs = [(r.message_pk, r.meta, r.warnings) for r in conn.execute(select(f).where(f.c.kind == "doc"))]
    engine.dispose()
    waits = {pk: (at - started).total_seconds() for pk, at in queued if pk is not None}
    doc_waits = [waits[pk] for pk, _, _ in docs if pk in waits]
    codes = [{n.code.value for n in warnings} for _, _, warnings in docs]
    return Figures(
        name,
        seconds,
        len(waits),
        statistics.median(waits.values()) if waits else 0.0,
        _p95(list(waits.values())),
        max(waits.values(), default=0.0),
        _p95(doc_waits),
        sum(1 for _, meta, _ in docs if meta.get("title")),
        sum(1 for c in codes if "legacy_doc_unread" in c),
        sum(1 for c in codes if "legacy_doc_pending" in c),
    )


def extract(ref: str, into: Path) -> Path:
    """The code of commit ``ref`` in a folder of its own (no worktree, nothing changed in the repository)."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=500, help="number of messages (default 500), one in five a .doc")
    parser.add_argument("--baseline", help="also time this git commit's code (e.g. main before the change)")
    parser.add_argument("--keep", action="store_true", help="keep the server and work folders, print where")
    args = parser.parse_args()
    if not shutil.which("soffice"):
        parser.error("LibreOffice (soffice) is needed: apt-get install -y libreoffice-writer-nogui")
    server = Dovecot(tempfile.mkdtemp(prefix="dovecot-"))
    work = Path(tempfile.mkdtemp(prefix="mailbot-bench-doc-"))
    started = time.perf_counter()
    results: list[Figures] = []
    try:
        server.start()
        load(server, args.n)
        print(
            f"loaded {args.n} messages ({len(range(0, args.n, DOC_EVERY))} with a .doc) in {time.perf_counter() - started:.1f} s"
        )
        print(f"load average before timing: {os.getloadavg()[0]:.2f}")
        if args.baseline:
            (work / "baseline").mkdir()
            code = extract(args.baseline, work / "baseline-code")
            results.append(run_mailbot(f"before ({args.baseline})", server, work / "baseline", code))
        (work / "current").mkdir()
        results.append(run_mailbot("after (this tree)", server, work / "current", ROOT))
    finally:
        server.stop()
        remove_unless_kept(args.keep, server.root_dir, work)
    print(
        f"\n{'run':<24}{'seconds':>9}{'msg/s':>8}{'receipts':>10}{'p50 s':>8}{'p95 s':>8}{'max s':>8}"
        f"{'.doc p95':>10}  .doc read/unread/pending"
    )
    for r in results:
        print(
            f"{r.name:<24}{r.seconds:>9.2f}{args.n / r.seconds:>8.0f}{r.receipts:>10}{r.p50:>8.2f}{r.p95:>8.2f}"
            f"{r.worst:>8.2f}{r.doc_p95:>10.2f}  {r.docs_read}/{r.docs_unread}/{r.docs_pending}"
        )
    ok = all(r.receipts == args.n and r.docs_read == len(range(0, args.n, DOC_EVERY)) for r in results)
    print("every message acknowledged and every .doc read" if ok else "\nWRONG: a receipt or a .doc reading is missing")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
