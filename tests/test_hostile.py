"""Hostile and broken mail, over a thousand messages, through a real Dovecot and `mailbot run --once`.

The corpus (tests/hostile_mail.py, seeded) holds random MIME trees (bad boundaries, wrong transfer encodings,
bad charsets, lying names and types, NULs, 8-bit garbage, missing headers), huge headers, deep nesting, zip
bombs, billion-laughs and XXE Word files, path traversal names, header injection attempts, plus the bad
messages of the earlier issues and the demo's sample emails. Everything is appended over one IMAP connection,
then one `mailbot run --once` (a subprocess, its peak memory measured) must return, and afterwards:

* every message the server accepted is recorded (submission, no_report, review, bounce, or a duplicate of one)
  or set aside with a reason (state error), and is still on the server under the same UID;
* no file was written outside the archive (nor anything overwritten beside it); the archive holds only files
  the database knows, each matching its sha256, none partial;
* every forged sender (several From addresses, a "pass" hidden in Authentication-Results) is held for review
  and gets no reply;
* peak memory stayed under MAILBOT_HOSTILE_MAX_RSS_MB (400);
* a second run finds nothing new.

Size: MAILBOT_HOSTILE_MESSAGES random trees (1000) on top of ~100 handpicked cases; MAILBOT_HOSTILE_SEED.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from mailbot import pipeline
from mailbot.demo import samples
from tests.conftest import PASSWORD_ENV
from tests.hostile_mail import CANARY, corpus
from tests.reliability_support import ROOT, append_many, archive_problems, db_rows, write_figures
from tests.test_bad_input import bad_messages

SEED = int(os.environ.get("MAILBOT_HOSTILE_SEED", "6"))
RANDOM_TREES = int(os.environ.get("MAILBOT_HOSTILE_MESSAGES", "1000"))
MAX_RSS_MB = float(os.environ.get("MAILBOT_HOSTILE_MAX_RSS_MB", "400"))
WHEN = datetime(2023, 12, 4, 3, 0, tzinfo=UTC)
RECORDED = {"submission", "no_report", "review", "bounce"}

# Runs a command and prints its peak resident memory (kB, Linux) on the last line of stderr.
MEASURED = """
import resource, subprocess, sys
code = subprocess.run(sys.argv[1:]).returncode
print(f"peak-rss-kb {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}", file=sys.stderr)
sys.exit(code)
"""


def everything() -> list[tuple[str, bytes]]:
    mails = corpus(SEED, RANDOM_TREES)
    mails += [("earlier_issues", raw) for raw in bad_messages().values()]
    mails += [("earlier_issues", raw) for _, raw in samples.demo_messages(samples.load_demo_roster())]
    return mails


def files_outside_archive(root: Path) -> dict[str, str]:
    """path → sha256 of every file under the workspace except the archive."""
    out = {}
    archive = root / "var" / "archive"
    for path in root.rglob("*"):
        if path.is_file() and not path.is_relative_to(archive):
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def planted_files(archive: Path) -> list[str]:
    """Files a traversal name could have produced: canaries and passwd.docx-like names, in every folder from the
    archive up to /, and in /tmp, /etc, /root and the repository."""
    places = {archive, *archive.parents, Path("/tmp"), Path("/etc"), Path("/root"), ROOT, Path.cwd()}
    found = []
    for place in places:
        try:
            names = os.listdir(place)
        except OSError:
            continue
        found += [str(place / n) for n in names if CANARY in n or n in ("passwd.docx", "x.docx", ".docx")]
    return found


def test_a_thousand_hostile_messages_are_recorded_or_set_aside_and_stay_on_the_server(
    workspace, dovecot, tmp_path_factory
):
    began = time.monotonic()
    mails = everything()
    generated = Counter(category for category, _ in mails)
    accepted = append_many(dovecot, [raw for _, raw in mails], WHEN)
    uids = dovecot.uids()
    assert len(uids) == sum(accepted)
    category_of = dict(zip((str(u) for u in uids), (c for (c, _), ok in zip(mails, accepted) if ok)))
    before = files_outside_archive(workspace.root)
    appended = time.monotonic()

    env = {**os.environ, PASSWORD_ENV: workspace.password}
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            MEASURED,
            sys.executable,
            "-m",
            "mailbot",
            "--config",
            str(workspace.config_path),
            "run",
            "--once",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace.root,
        timeout=1800,
    )
    seconds = time.monotonic() - appended
    peak_mb = int(run.stderr.strip().splitlines()[-1].split()[-1]) / 1024

    problems: list[str] = []
    if run.returncode != 0:
        problems.append(f"mailbot run --once exited {run.returncode}: {run.stderr[-3000:]}")
    if dovecot.uids() != uids:
        problems.append("the messages on the server changed")
    rows = db_rows(
        workspace,
        "SELECT l.uid, m.state, m.reason, m.message_id FROM locations l JOIN messages m ON m.id = l.message_pk",
    )
    by_uid = {uid: (state, reason, mid) for uid, state, reason, mid in rows}
    missing = sorted(set(category_of) - set(by_uid), key=int)
    if missing:
        problems.append(
            f"{len(missing)} message(s) on the server never recorded nor set aside: "
            f"{[(u, category_of[u]) for u in missing[:20]]}"
        )
    states: Counter[str] = Counter()
    per_category: dict[str, Counter[str]] = defaultdict(Counter)
    for uid, (state, reason, _) in by_uid.items():
        states[state] += 1
        per_category[category_of.get(uid, "?")][state] += 1
        if state not in RECORDED | {"error"}:
            problems.append(f"uid {uid} ({category_of.get(uid)}): unexpected state {state!r}")
        if state == "error" and not reason.strip():
            problems.append(f"uid {uid} ({category_of.get(uid)}): set aside without a reason")
    distinct_records = len({mid for _, _, mid in by_uid.values()})
    answered = {
        mid for (mid,) in db_rows(workspace, "SELECT m.message_id FROM outbox o JOIN messages m ON m.id = o.message_pk")
    }
    for uid, category in category_of.items():
        state, reason, mid = by_uid.get(uid, ("", "", ""))
        if category == "forged_sender" and (state != "review" or mid in answered):
            problems.append(
                f"uid {uid} (forged_sender): {state!r}{' and answered' if mid in answered else ''} ({reason[:80]})"
            )

    after = files_outside_archive(workspace.root)
    allowed = (
        "var/mailbot.sqlite3",
        "var/secret.key",
        "var/outbox/",
        "var/mailbot.pid",
        "var/cache/templates/__jinja2_",
    )
    created = sorted(p for p in set(after) - set(before) if not p.startswith(allowed))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    if created or changed:
        problems.append(f"files outside the archive: created {created[:10]}, changed {changed[:10]}")
    planted = planted_files(workspace.root / "var" / "archive")
    if planted:
        problems.append(f"files planted by attachment names: {planted}")
    archive_issues = archive_problems(workspace)
    for kind, paths in archive_issues.items():
        if paths:
            problems.append(f"archive {kind}: {len(paths)} file(s), e.g. {paths[:5]}")
    if peak_mb >= MAX_RSS_MB:
        problems.append(f"peak memory {peak_mb:.0f} MB (limit {MAX_RSS_MB:.0f} MB)")

    again = pipeline.run_once(workspace.settings(), workspace.engine()) if run.returncode == 0 else None
    if again is not None and again.fetched:
        problems.append(f"a second run fetched {again.fetched} message(s) again")

    reasons = Counter(reason.split(":")[0][:80] for state, reason, _ in by_uid.values() if state == "error")
    write_figures(
        tmp_path_factory,
        "hostile",
        {
            "seed": SEED,
            "generated": sum(generated.values()),
            "generated_by_category": dict(generated),
            "accepted_by_dovecot": sum(accepted),
            "refused_by_dovecot": len(mails) - sum(accepted),
            "refused_by_category": dict(Counter(c for (c, _), ok in zip(mails, accepted) if not ok)),
            "corpus_mb": round(sum(len(r) for _, r in mails) / 1e6, 1),
            "exit_code": run.returncode,
            "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_mb, 1),
            "max_rss_mb": MAX_RSS_MB,
            "states": dict(states),
            "states_by_category": {k: dict(v) for k, v in per_category.items()},
            "set_aside_reasons": dict(reasons.most_common(15)),
            "distinct_records": distinct_records,
            "not_recorded": len(missing),
            "uids_unchanged": dovecot.uids() == uids,
            "files_outside_archive": created + changed + planted,
            "archive": {k: len(v) for k, v in archive_issues.items()},
            "total_seconds": round(time.monotonic() - began, 1),
            "problems": problems,
            "passed": not problems,
        },
    )
    assert len(mails) >= 1000
    assert not problems, "\n".join(problems)
