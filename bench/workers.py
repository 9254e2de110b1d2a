"""Workers benchmark: the same backlog through 1, 2 and 3 `mailbot run` services on one PostgreSQL.

    python bench/workers.py [-n 600] [--workers 1 2 3]

For each worker count: a fresh private Dovecot loaded with N school emails (bench/ingest.py's messages: a roster
address, a ~40 KB Word report each), a fresh database on a throwaway PostgreSQL cluster (tests/servers/postgres.py)
and a fresh aiosmtpd server; the services are started together and timed until every message is recorded and every
receipt accepted by the SMTP server. Prints messages per second, the speed-up over one worker, and the receipt
latency (p50/p95/max) from the message's recording to the SMTP server's acceptance of its receipt.
Needs root (or `vmail` and `postgres` users) and Debian's dovecot-imapd and postgresql.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bench.ingest import load  # noqa: E402
from mailbot import store  # noqa: E402
from tests.conftest import PASSWORD_ENV, make_workspace  # noqa: E402
from tests.servers.dovecot import Dovecot  # noqa: E402
from tests.servers.postgres import start_cluster, stop_cluster  # noqa: E402
from tests.servers.smtp import SmtpSink  # noqa: E402
from tests.test_notify import smtp_section  # noqa: E402


def one_round(workers: int, n: int, cluster) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    """Seconds for ``workers`` services to record ``n`` messages and send their receipts; receipt latencies."""
    work = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    server, sink = Dovecot(tempfile.mkdtemp(prefix="dovecot-")), SmtpSink().start()
    server.start()
    try:
        load(server, n)
        ws = make_workspace(work, server, extra=smtp_section(sink, notify="max_auto_per_address_per_day = 100000"))
        text = ws.config_path.read_text(encoding="utf-8")
        ws.config_path.write_text(f'database_url = "{cluster.create_database()}"\n' + text, encoding="utf-8")
        engine = store.connect(ws.settings().db_url)  # the schema, before the clock starts
        env = {**os.environ, PASSWORD_ENV: server.password}
        command = [sys.executable, "-m", "mailbot", "--config", str(ws.config_path), "run"]
        started = time.monotonic()
        procs = [subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL) for _ in range(workers)]
        seen: dict[str, datetime] = {}  # receipt's In-Reply-To → when the SMTP server had it (to 0.1 s)
        try:
            while len(seen) < n:
                for captured in sink.messages:
                    if str(captured.message["X-Mailbot-Kind"]).startswith("ack"):  # receipts, not a digest
                        seen.setdefault(str(captured.message["In-Reply-To"]), datetime.now(UTC))
                time.sleep(0.1)
            seconds = time.monotonic() - started
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=60)
        return seconds, _latencies(engine, seen)
    finally:
        sink.stop()
        server.stop()


def _latencies(engine, seen: dict[str, datetime]) -> list[float]:  # type: ignore[no-untyped-def]
    """Recording of each message → its receipt at the SMTP server, in seconds."""
    with engine.connect() as conn:
        recorded = dict(conn.execute(select(store.messages.c.message_id, store.messages.c.recorded_at)).all())
        count = conn.execute(select(func.count()).select_from(store.messages)).scalar_one()
    assert count == len(recorded) == len(seen), (count, len(recorded), len(seen))  # each once
    return [max(0.0, (at - recorded[mid]).total_seconds()) for mid, at in seen.items() if mid in recorded]


def percentile(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100)[int(p) - 1] if len(values) > 1 else (values[0] if values else 0.0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=600, help="messages in the backlog (default 600)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    args = parser.parse_args()
    cluster = start_cluster()
    try:
        print(f"{args.n} messages, PostgreSQL, load average {os.getloadavg()[0]:.1f} at start")
        print(f"{'workers':>7}  {'seconds':>8}  {'msg/s':>7}  {'speed-up':>8}  receipt latency p50 / p95 / max (s)")
        base = None
        for w in args.workers:
            seconds, latencies = one_round(w, args.n, cluster)
            base = base or seconds
            print(
                f"{w:>7}  {seconds:>8.1f}  {args.n / seconds:>7.1f}  {base / seconds:>7.2f}x  "
                f"{percentile(latencies, 50):.2f} / {percentile(latencies, 95):.2f} / {max(latencies, default=0):.2f}"
            )
    finally:
        stop_cluster(cluster)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
