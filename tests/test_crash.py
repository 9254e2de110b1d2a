"""Crash test: `mailbot run` SIGKILLed again and again while it works through a backlog, restarted each time.

A backlog of school emails (every roster institution that has an address, each with a Word report, some with
two) waits in Dovecot, and more arrives between restarts. The service runs under ``tests/crash_probe.py``,
which records where each thread is (fetch, parse, archive, commit, sync, smtp) and can hold a thread inside a
chosen phase. Each run is killed with SIGKILL at a moment picked by a seeded RNG, in turn:

* after a random delay;
* when a given phase is reached (the probe holds the thread there and the test kills it on seeing the hold):
  after a FETCH, half-way through writing an archive file, inside the record transaction before COMMIT,
  before an SMTP transaction, after the SMTP server accepted a receipt and before it is marked sent;
* when the log has shown a random number of "recorded" or "sent" lines;
* when the archive or the SMTP sink has grown by a random number of files/messages.

Each kill is classified by the phases the probe shows open at the moment of the kill (and, for reference, by
the last log line). A final clean run finishes the work; then every message must be recorded exactly once,
every archived file must match its sha256, no partial file may be left, every receipt must have been
delivered, and a message sent twice (same Message-ID at the SMTP sink: receipt or digest) is only allowed within
the documented window (killed after the SMTP server accepted it and before the record): at most one per kill
during SMTP delivery.

Size: MAILBOT_CRASH_MESSAGES (300), MAILBOT_CRASH_KILLS (30), MAILBOT_CRASH_SEED.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

import pytest

from tests import crash_probe
from tests.conftest import PASSWORD_ENV, make_workspace
from tests.reliability_support import (
    Daemon,
    ack_parents,
    append_many,
    archive_problems,
    count_files,
    db_count,
    db_rows,
    school_mails,
    sent_twice,
    wait_until,
    write_figures,
)
from tests.test_notify import smtp_section

pytestmark = pytest.mark.crash

MESSAGES = int(os.environ.get("MAILBOT_CRASH_MESSAGES", "300"))
KILLS = int(os.environ.get("MAILBOT_CRASH_KILLS", "30"))
SEED = int(os.environ.get("MAILBOT_CRASH_SEED", "20231205"))
ARRIVAL = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # within the test campaign
FAST = """
retry_base_seconds = 1
deliver_every_seconds = 1
"""
TRIGGER_TIMEOUT = 15.0  # a moment that has not come by then will not come: kill anyway
HOLD_SECONDS = 8.0  # how long the probe holds a thread in the aimed phase; the test kills within milliseconds
# One round of ways to pick the moment; repeated until KILLS kills were made.
SCHEDULE = (
    "hold:fetch",
    "random",
    "hold:archive",
    "log:recorded",
    "hold:commit",
    "growth:archive",
    "hold:accepted",
    "log:sent",
    "hold:smtp",
    "growth:outbox",
    "random",
    "hold:commit",
)
# The n-th occurrence of the phase in a run is held: n is drawn from 1..HOLD_MAX[phase], and no further than
# the work waiting when the run starts can take it.
HOLD_MAX = {"fetch": 1, "archive": 12, "commit": 8, "smtp": 6, "accepted": 6}
PHASES = ("fetch", "archive", "commit", "smtp")  # each must have been hit at least once


def last_log_kind(log: str) -> str:
    lines = [line for line in log.splitlines() if " INFO " in line or " WARNING " in line or " ERROR " in line]
    if not lines:
        return "starting"
    last = lines[-1]
    for needle, kind in (
        (" recorded ", "recorded"),
        ("skipped ", "recorded"),
        ("sent outbox", "sent"),
        ("mailbot started", "started"),
        ("digest:", "started"),
        ("reminders:", "started"),
    ):
        if needle in last:
            return kind
    return "other"


def trigger(strategy: str, rng: random.Random, run: Daemon, ws, sink, appended: int) -> str:  # type: ignore[no-untyped-def]
    """Wait for the moment this strategy picks; returns a description of it."""
    if strategy == "random":
        delay = rng.uniform(0.0, 3.0)
        wait_until(lambda: "mailbot started" in run.log(), TRIGGER_TIMEOUT, run)
        wait_until(lambda: False, delay, run)
        return f"{delay:.2f} s after start"
    if strategy.startswith("hold:"):
        reached = wait_until(lambda: crash_probe.held(run.probe()) != "", TRIGGER_TIMEOUT, run)
        return "held" if reached else f"hold not reached in {TRIGGER_TIMEOUT:.0f} s"
    # A number of events this run can still produce: what is not recorded yet, and receipts not sent yet.
    unrecorded = appended - db_count(ws, "messages")
    unsent = db_count(ws, "outbox", "status IN ('pending', 'sending')") + unrecorded
    work = {"log:recorded": unrecorded, "growth:archive": 2 * unrecorded}.get(strategy, unsent)
    target = rng.randint(1, max(1, min(25, work)))
    archive = ws.root / "var" / "archive"
    if strategy == "log:recorded":
        count: object = lambda: run.log().count(" recorded ")  # noqa: E731
    elif strategy == "log:sent":
        count = lambda: run.log().count("sent outbox #")  # noqa: E731
    elif strategy == "growth:archive":
        base = count_files(archive)
        count = lambda: count_files(archive) - base  # noqa: E731
    else:  # growth:outbox
        base = len(sink.messages)
        count = lambda: len(sink.messages) - base  # noqa: E731
    reached = wait_until(lambda: count() >= target, TRIGGER_TIMEOUT, run)  # type: ignore[operator]
    return f"{target} {strategy.split(':')[1]}" + ("" if reached else f" not reached in {TRIGGER_TIMEOUT:.0f} s")


@pytest.fixture
def crash_setup(tmp_path, dovecot, smtp_sink, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    ws = make_workspace(
        tmp_path / "ws",
        dovecot,
        extra_inbox="poll_seconds = 2",
        extra=smtp_section(smtp_sink, extra=FAST, notify="max_auto_per_address_per_day = 1000"),
    )
    runs: list[Daemon] = []
    yield ws, dovecot, smtp_sink, runs
    for run in runs:
        run.kill()


def test_sigkill_at_random_moments_loses_and_doubles_nothing(crash_setup, tmp_path_factory):
    ws, dovecot, sink, runs = crash_setup
    began = time.monotonic()
    rng = random.Random(SEED)
    mails = school_mails(MESSAGES, "crash")
    per_wave = max(1, MESSAGES // (3 * KILLS))
    backlog = MESSAGES - per_wave * (KILLS - 1)
    assert backlog > 0, "MAILBOT_CRASH_MESSAGES too small for MAILBOT_CRASH_KILLS"
    waves = [mails[:backlog]] + [mails[backlog + i * per_wave : backlog + (i + 1) * per_wave] for i in range(KILLS - 1)]
    logs = tmp_path_factory.mktemp("crash-runs")

    kills: list[dict] = []
    for index in range(KILLS):
        assert all(append_many(dovecot, [raw for _, _, _, raw in waves[index]], ARRIVAL))
        strategy = SCHEDULE[index % len(SCHEDULE)]
        hold = ""
        if strategy.startswith("hold:"):
            phase = strategy.split(":")[1]
            unrecorded = sum(len(w) for w in waves[: index + 1]) - db_count(ws, "messages")
            unsent = db_count(ws, "outbox", "status IN ('pending', 'sending')") + unrecorded
            work = {"fetch": 1, "archive": 2 * unrecorded, "commit": unrecorded}.get(phase, unsent)
            hold = f"{phase}:{rng.randint(1, max(1, min(HOLD_MAX[phase], work)))}:{HOLD_SECONDS}"
        run = Daemon(ws, logs / f"run-{index:02d}.log", probe=logs / f"run-{index:02d}.probe", hold=hold)
        runs.append(run)
        appended = sum(len(w) for w in waves[: index + 1])
        moment = trigger(strategy, rng, run, ws, sink, appended)
        exited_before = not run.alive
        run.kill()
        time.sleep(0.2)  # a message whose last byte was on the wire is stored by the sink now, or never
        log, probe = run.log(), run.probe()
        assert not exited_before and "Traceback" not in log, f"run {index} died by itself:\n{log[-5000:]}"
        phases = crash_probe.open_phases(probe)
        kills.append(
            {
                "run": index,
                "strategy": strategy,
                "hold": hold,
                "moment": moment,
                "held": crash_probe.held(probe),
                "phases": sorted(phases) or ["idle" if "mailbot started" in log else "startup"],
                "last_log": last_log_kind(log),
                "recorded": log.count(" recorded "),
                "sent": log.count("sent outbox #"),
                "seconds": round(time.monotonic() - run.started_at, 2),
                "sink_after": len(sink.messages),
            }
        )

    # The final clean run: no probe, no kill, until everything is recorded and acknowledged.
    expected = {mid: (code, files) for mid, code, files, _ in mails}
    final = Daemon(ws, logs / "final.log")
    runs.append(final)

    def finished() -> bool:
        return db_count(ws, "messages") >= MESSAGES and db_count(ws, "outbox", "status IN ('pending', 'sending')") == 0

    settled = wait_until(finished, 120.0, final, every=0.5)
    time.sleep(3)  # a few more delivery rounds: anything sent twice now would show
    final_exit = final.stop()
    elapsed = time.monotonic() - began

    # --- what became of each message -----------------------------------------------------------------
    problems: list[str] = []
    recorded = Counter(mid for (mid,) in db_rows(ws, "SELECT message_id FROM messages"))
    locations = db_count(ws, "locations")
    lost = sorted(set(expected) - set(recorded))
    doubled = {mid: n for mid, n in recorded.items() if n > 1}
    unexpected = sorted(set(recorded) - set(expected))
    if lost:
        problems.append(f"{len(lost)} message(s) never recorded: {lost[:10]}")
    if doubled or unexpected:
        problems.append(f"recorded more than once: {doubled}; unexpected records: {unexpected[:10]}")
    if locations != MESSAGES:
        problems.append(f"{locations} locations for {MESSAGES} messages on the server")
    files_per = dict(
        db_rows(
            ws,
            "SELECT m.message_id, count(f.id) FROM messages m LEFT JOIN files f "
            "ON f.message_pk = m.id AND f.path != '' GROUP BY m.id",
        )
    )
    wrong_files = {mid: (files_per.get(mid), n) for mid, (_, n) in expected.items() if files_per.get(mid) != n}
    if wrong_files:
        problems.append(f"archived Word files (found, expected) differ: {dict(list(wrong_files.items())[:10])}")

    status = ws.status()
    shown: dict[str, list[str]] = {
        i["code"]: [s["message_id"] for s in i["submissions"]] for i in status["institutions"]
    }
    for code in {c for c, _ in expected.values()}:
        want = sorted(mid for mid, (c, _) in expected.items() if c == code)
        if sorted(shown.get(code, [])) != want:
            problems.append(f"status --json for {code}: {len(shown.get(code, []))} submission(s), expected {len(want)}")

    archive_issues = archive_problems(ws)
    for kind, paths in archive_issues.items():
        if paths:
            problems.append(f"archive {kind}: {len(paths)} file(s), e.g. {paths[:5]}")

    # --- receipts ------------------------------------------------------------------------------------
    receipts = ack_parents(sink)
    unacknowledged = sorted(set(expected) - set(receipts))
    doubled_sends = sent_twice(sink)  # any kind (receipts, the digest): same Message-ID received twice
    duplicates = sum(n - 1 for n in doubled_sends.values())
    smtp_kills = sum("smtp" in k["phases"] for k in kills)
    accepted_kills = sum(k["held"] == "accepted" for k in kills)
    if unacknowledged:
        senders = dict(db_rows(ws, "SELECT message_id, sender FROM messages"))
        problems.append(
            f"{len(unacknowledged)} message(s) without a receipt: {[(m, senders.get(m)) for m in unacknowledged[:10]]}"
        )
    if duplicates > smtp_kills:
        problems.append(
            f"{duplicates} message(s) sent twice but only {smtp_kills} kill(s) during SMTP delivery: "
            f"{sorted(doubled_sends)}"
        )
    # Sharper: one SMTP transaction at a time, each marked sent before the next starts, so a message sent twice
    # must be the last one the sink received from a run killed during SMTP delivery.
    ids = [str(BytesHeaderParser().parsebytes(c.data)["Message-ID"]) for c in sink.messages]
    last_of_run: dict[int, dict] = {}
    for k in kills:
        last_of_run.setdefault(k["sink_after"] - 1, k)
    outside_window = sorted(
        mid for mid in doubled_sends if "smtp" not in last_of_run.get(ids.index(mid), {}).get("phases", [])
    )
    if outside_window:
        problems.append(f"sent twice, but not as the message in flight when a run was killed: {outside_window}")
    not_sent = db_rows(ws, "SELECT id, kind, status, last_error FROM outbox WHERE status != 'sent'")
    if not_sent:
        problems.append(f"outbox rows not sent: {not_sent[:10]}")
    if not settled:
        problems.append("the final run did not finish within 120 s")
    if final_exit != 0:
        problems.append(f"the final run exited {final_exit}")

    by_phase = Counter(p for k in kills for p in k["phases"])
    missed = [p for p in PHASES if not by_phase[p]]
    write_figures(
        tmp_path_factory,
        "crash",
        {
            "messages": MESSAGES,
            "kills": len(kills),
            "seed": SEED,
            "seconds": round(elapsed, 1),
            "kills_by_phase": dict(sorted(by_phase.items())),
            "kills_by_strategy": dict(Counter(k["strategy"] for k in kills)),
            "kills_by_last_log_line": dict(Counter(k["last_log"] for k in kills)),
            "holds_reached": sum(bool(k["held"]) for k in kills),
            "kills_after_smtp_acceptance": accepted_kills,
            "lost": len(lost),
            "recorded_twice": sum(n - 1 for n in doubled.values()),
            "locations": locations,
            "unacknowledged": len(unacknowledged),
            "duplicate_receipts": duplicates,
            "duplicate_bound": smtp_kills,
            "sent_twice": sorted(doubled_sends),
            "sent_twice_outside_window": len(outside_window),
            "archive": {k: len(v) for k, v in archive_issues.items()},
            "archive_partial_files": archive_issues["partial"][:20],
            "phases_missed": missed,
            "problems": problems,
            "passed": not problems and not missed,
            "kill_log": kills,
        },
    )
    assert len(kills) == KILLS >= min(KILLS, 20)
    if len(SCHEDULE) <= KILLS:  # one round of the schedule aims at every phase
        assert not missed, f"no kill landed in {missed}: {kills}"
    assert not problems, "\n".join(problems)
