"""Reader processes and batch transactions (issue #15) against a real Dovecot: a worker that dies mid-batch is
replaced and its messages read again (a message that kills its reader twice is set aside, never lost); a `run
--once` SIGKILLed while a worker parses leaves no process behind and nothing half recorded; a batch is recorded in
one transaction (killed inside it: none of it recorded), and repeats within one batch count once."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from datetime import UTC, datetime
from email.parser import BytesHeaderParser

import psutil

from mailbot import pipeline
from mailbot.demo import samples
from mailbot.ingest import readers
from mailbot.models import RawMail
from tests import crash_probe
from tests.reliability_support import (
    Daemon,
    append_many,
    archive_problems,
    db_count,
    db_rows,
    school_mails,
    wait_until,
)

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # within the demo campaign
ONCE = ("run", "--once")


def _children_gone(pids: list[int], timeout: float) -> bool:
    return wait_until(lambda: not any(psutil.pid_exists(p) and _alive(p) for p in pids), timeout, every=0.1)


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_dying_reader_is_replaced_and_its_messages_read_again(workspace, dovecot, tmp_path, monkeypatch):
    mails = school_mails(12, "die")
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails], WHEN))
    once, always = mails[4][0], mails[7][0]  # the first kills its reader once, the second every time
    died = tmp_path / "died-once"
    real_parse = readers.parse

    def dying_parse(raw: RawMail, limits):  # type: ignore[no-untyped-def]
        if always.encode() in raw.data or (once.encode() in raw.data and not died.exists()):
            died.touch()
            os._exit(1)  # as a crash in a C library or the OOM killer would: no exception, no answer
        return real_parse(raw, limits)

    monkeypatch.setattr(readers, "parse", dying_parse)
    # Here only workers read a batch: this process would otherwise take a share to help, and the message that
    # "crashes" would end this test's own process (what happens then is test_a_crash_while_reading_in_place_...).
    monkeypatch.setattr(readers.Readers, "_take_one", lambda self: False)
    # The readers must be forked from this process, with the patch above. Alone, the test process has one thread
    # and readers fork by themselves; in the whole suite earlier tests leave helper threads behind (servers'
    # loggers, test clients), so the count the reader pool decides by is pinned to what it is alone.
    monkeypatch.setattr(readers.threading, "active_count", lambda: 1)
    settings = workspace.settings()
    engine = workspace.engine()
    pipeline.import_roster(settings, engine)
    before = {c.pid for c in psutil.Process().children(recursive=True)}  # the servers
    report = pipeline.run_once(settings, engine)

    assert died.exists()  # a reader really died
    rows = dict(db_rows(workspace, "SELECT message_id, state FROM messages WHERE state != 'error'"))
    assert set(rows) == {mid for mid, _, _, _ in mails} - {always} and set(rows.values()) == {"submission"}
    # the one that kills every reader is set aside, its bytes kept (staff see it), never lost
    ((fingerprint, reason),) = db_rows(workspace, "SELECT fingerprint, reason FROM messages WHERE state = 'error'")
    assert fingerprint == hashlib.sha256(next(raw for mid, _, _, raw in mails if mid == always)).hexdigest()
    assert readers.WORKER_DIED in reason
    assert report.states["submission"] == 11 and report.states["error"] == 1
    assert db_count(workspace, "locations") == 12
    assert db_count(workspace, "outbox", "kind = 'ack'") == 11  # one receipt each, none for the one set aside
    readers_left = [c.pid for c in psutil.Process().children(recursive=True) if c.pid not in before]
    assert _children_gone(readers_left, 10)  # no reader left running
    assert not any(archive_problems(workspace).values())


def test_sigkill_while_a_reader_parses_leaves_no_process_and_nothing_half_recorded(workspace, dovecot, tmp_path):
    mails = school_mails(20, "kill")
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails], WHEN))
    # the first message a reader takes sleeps there
    run = Daemon(workspace, tmp_path / "run.log", probe=tmp_path / "probe", hold="parse:1:60", command=ONCE)
    try:
        assert wait_until(lambda: crash_probe.held(run.probe()) == "parse", 60), run.log()
        workers = [c.pid for c in psutil.Process(run.proc.pid).children(recursive=True)]
        assert workers, "the message held in parsing should be in a reader process"
    finally:
        run.kill()
    assert _children_gone(workers, 10), "a reader process outlived the killed run"
    assert "Traceback" not in run.log()
    # Whatever was recorded before the kill is whole: each message row has its location and its files.
    assert db_count(workspace, "messages") == db_count(workspace, "locations")
    assert db_count(workspace, "messages") < 20  # the held message at least was not recorded

    workspace.cli("run", "--once")
    rows = db_rows(workspace, "SELECT message_id, state FROM messages")
    assert sorted(mid for mid, _ in rows) == sorted(mid for mid, _, _, _ in mails)  # each exactly once
    assert all(state == "submission" for _, state in rows)
    assert db_count(workspace, "locations") == 20
    assert db_count(workspace, "outbox", "kind = 'ack'") == 20
    files = dict(
        db_rows(
            workspace,
            "SELECT m.message_id, count(f.id) FROM messages m JOIN files f ON f.message_pk = m.id AND f.path != '' GROUP BY m.id",
        )
    )
    assert files == {mid: n for mid, _, n, _ in mails}
    assert not any(archive_problems(workspace).values())


def test_a_batch_is_recorded_together_and_repeats_inside_it_count_once(workspace, dovecot):
    mails = school_mails(10, "batch")
    copy = mails[2][3]  # the same bytes twice in one batch (delivered to two aliases)
    # the same Message-ID from the same sender, other bytes (sent again), and once more after the group holding
    # the first was committed
    resent, again = (_resend(mails[5], "Gửi lại báo cáo"), _resend(mails[5], "Gửi lại báo cáo lần nữa"))
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails] + [copy, resent, again], WHEN))
    workspace.cli("run", "--once")
    rows = db_rows(workspace, "SELECT message_id, state FROM messages")
    assert sorted(mid for mid, _ in rows) == sorted(mid for mid, _, _, _ in mails)  # each once
    assert {state for _, state in rows} == {"submission"}
    located = db_rows(
        workspace, "SELECT m.message_id, count(*) FROM locations l JOIN messages m ON m.id = l.message_pk GROUP BY m.id"
    )
    assert {mid: n for mid, n in located if n > 1} == {mails[2][0]: 2, mails[5][0]: 3}
    assert db_count(workspace, "outbox", "kind = 'ack'") == 10  # one receipt per recorded message, none for repeats
    assert not any(archive_problems(workspace).values())


def test_sigkill_inside_the_batch_transaction_records_none_of_it(workspace, dovecot, tmp_path):
    mails = school_mails(12, "group")
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails], WHEN))
    # every row of the batch inserted, COMMIT not issued
    run = Daemon(workspace, tmp_path / "run.log", probe=tmp_path / "probe", hold="commit:1:60", command=ONCE)
    try:
        assert wait_until(lambda: crash_probe.held(run.probe()) == "commit", 60), run.log()
    finally:
        run.kill()
    assert db_count(workspace, "messages") == 0 and db_count(workspace, "outbox") == 0  # none of the batch
    workspace.cli("run", "--once")
    assert sorted(mid for (mid,) in db_rows(workspace, "SELECT message_id FROM messages")) == sorted(
        mid for mid, _, _, _ in mails
    )
    assert db_count(workspace, "outbox", "kind = 'ack'") == 12
    assert not any(archive_problems(workspace).values())


def _resend(mail: tuple[str, str, int, bytes], subject: str) -> bytes:
    """Another message under the same Message-ID from the same sender (a school sending its report again)."""
    return samples.make_email(
        sender=db_sender(mail[3]),
        sender_name="Văn thư",
        subject=subject,
        body=f"{subject}.",
        message_id=mail[0],
        attachments=[("bao-cao.docx", samples.make_report_docx(subject), "application/octet-stream")],
    )


def db_sender(raw: bytes) -> str:
    """The From address of a message built by ``school_mails``."""
    head = BytesHeaderParser().parsebytes(raw)
    return str(head["From"]).rsplit("<", 1)[-1].rstrip(">").strip()


def test_the_service_keeps_one_reader_and_replaces_it_when_it_is_killed(workspace, dovecot, tmp_path):
    """The service forks its reader once, before its threads start, and keeps it (no pool started per pass); a
    reader killed between two bursts is replaced (from a fork server: the service's threads run by then) and
    nothing of the next burst is lost."""
    service = Daemon(workspace, tmp_path / "service.log")
    try:
        service.wait_log("mailbot started")
        readers = [c.pid for c in psutil.Process(service.proc.pid).children()]
        assert len(readers) == 1, readers  # forked at start, before any mail: the one reader
        first = school_mails(8, "keep")
        assert all(append_many(dovecot, [raw for _, _, _, raw in first], WHEN))
        assert wait_until(lambda: db_count(workspace, "messages") == 8, 60, service, every=0.2), service.log()
        assert [c.pid for c in psutil.Process(service.proc.pid).children()] == readers  # the same one, kept

        os.kill(readers[0], signal.SIGKILL)
        second = school_mails(16, "after-kill")[8:]
        assert all(append_many(dovecot, [raw for _, _, _, raw in second], WHEN))
        assert wait_until(lambda: db_count(workspace, "messages") == 16, 90, service, every=0.2), service.log()
        assert service.alive and "Traceback" not in service.log()
        assert "a reader process died" in service.log()
        rows = db_rows(workspace, "SELECT message_id, state FROM messages")
        assert sorted(mid for mid, _ in rows) == sorted(mid for mid, *_ in first + second)
        assert {state for _, state in rows} == {"submission"}
        assert db_count(workspace, "outbox", "kind = 'ack'") == 16
    finally:
        assert service.stop() == 0


def _parsed_where(monkeypatch, tmp_path, *, slow_workers: float = 0.0):  # type: ignore[no-untyped-def]
    """Patch the readers' parse to note, per Message-ID, the process that read it (a file each: workers are
    processes); workers take ``slow_workers`` seconds a message. Readers fork from this test's process."""
    main, real_parse = os.getpid(), readers.parse
    where = tmp_path / "where"
    where.mkdir()

    def noting_parse(raw: RawMail, limits):  # type: ignore[no-untyped-def]
        mail = real_parse(raw, limits)
        if os.getpid() != main:
            time.sleep(slow_workers)
        (where / hashlib.sha256(mail.message_id.encode()).hexdigest()).write_text(str(os.getpid()))
        return mail

    monkeypatch.setattr(readers, "parse", noting_parse)
    monkeypatch.setattr(readers.threading, "active_count", lambda: 1)  # see the first test
    return lambda mid: int((where / hashlib.sha256(mid.encode()).hexdigest()).read_text()) == main


def test_this_process_reads_the_last_shares_when_the_worker_is_behind(workspace, dovecot, tmp_path, monkeypatch):
    mails = school_mails(12, "help")
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails], WHEN))
    monkeypatch.setattr(readers, "SHARE_BYTES", 1)  # a share per message
    read_here = _parsed_where(monkeypatch, tmp_path, slow_workers=0.3)
    settings, engine = workspace.settings(), workspace.engine()
    pipeline.import_roster(settings, engine)
    report = pipeline.run_once(settings, engine)

    here = [mid for mid, _, _, _ in mails if read_here(mid)]
    assert 0 < len(here) < len(mails)  # both sides read: the worker from the first share, this process from the last
    assert read_here(mails[-1][0]) and not read_here(mails[0][0])
    assert report.states["submission"] == 12
    recorded = [mid for (mid,) in db_rows(workspace, "SELECT message_id FROM messages ORDER BY id")]
    assert sorted(recorded) == sorted(mid for mid, _, _, _ in mails)
    assert db_count(workspace, "outbox", "kind = 'ack'") == 12
    assert not list((settings.data_dir).glob("reading.*"))  # nothing left noted as being read


def test_waiting_for_a_batch_this_process_reads_the_end_of_the_next_one(tmp_path, monkeypatch):
    """With nothing left to take in the batch it waits for, this process reads the last shares of the batch
    fetched after it (those the worker would reach last), never its first ones (the worker goes on with those
    while this process records); each batch's readings still come in order."""
    from mailbot.config import LimitSettings

    monkeypatch.setattr(readers, "SHARE_BYTES", 1)  # a share per message
    read_here = _parsed_where(monkeypatch, tmp_path, slow_workers=0.3)
    mails = school_mails(12, "next")
    raws = [RawMail("test", 1, str(i), WHEN, raw) for i, (_, _, _, raw) in enumerate(mails)]
    with readers.Readers(LimitSettings(), 1, guard=readers.Guard(tmp_path)) as pool:
        first, second = pool.submit(raws[:4]), pool.submit(raws[4:])  # 4: the smallest batch given to workers
        got = [r.mail.message_id for r in pool.results(first) if r.mail]
        assert got == [mid for mid, _, _, _ in mails[:4]]
        taken = [mid for mid, _, _, _ in mails[4:] if (tmp_path / "where" / _name(mid)).exists()]
        assert taken and all(read_here(mid) for mid in taken)  # read while waiting for the first batch
        assert read_here(mails[-1][0]) and not read_here(mails[0][0])
        got = [r.mail.message_id for r in pool.results(second) if r.mail]
    assert got == [mid for mid, _, _, _ in mails[4:]]
    assert not read_here(mails[0][0])  # the worker began with the first share (at worst, the one left to it)


def _name(mid: str) -> str:
    return hashlib.sha256(mid.encode()).hexdigest()


def test_a_crash_while_reading_in_place_sends_those_messages_to_a_worker_or_aside(
    workspace, dovecot, tmp_path, monkeypatch
):
    """A process that died reading messages itself left their fingerprints in reading.<pid>: the next one reads
    them only in a worker (a second crash is then a worker's, handled as such), or, with no workers, sets them
    aside for staff; everything else is read as usual."""
    mails = school_mails(2, "poison")  # a batch this small is read in place
    assert all(append_many(dovecot, [raw for _, _, _, raw in mails], WHEN))
    poison = mails[0][3]
    dead = psutil.Popen(["true"])
    dead.wait()  # a process number that no longer runs
    settings, engine = workspace.settings(), workspace.engine()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / f"reading.{dead.pid}").write_text(hashlib.sha256(poison).hexdigest() + "\n")
    read_here = _parsed_where(monkeypatch, tmp_path)
    pipeline.import_roster(settings, engine)
    pipeline.run_once(settings, engine)

    assert not read_here(mails[0][0]) and read_here(mails[1][0])  # the suspect went to a worker, the other not
    assert set(dict(db_rows(workspace, "SELECT message_id, state FROM messages")).values()) == {"submission"}
    assert not (settings.data_dir / f"reading.{dead.pid}").exists()
    assert (settings.data_dir / "suspects").read_text().split() == [hashlib.sha256(poison).hexdigest()]

    # Without workers, the suspect is never read again: set aside, its bytes kept.
    again = samples.make_email(
        sender="thptngoquyen@haiphong.edu.vn", sender_name="", subject="x", body="x", attachments=[], message_id="<2@x>"
    )
    (settings.data_dir / "suspects").write_text(hashlib.sha256(again).hexdigest() + "\n")
    dovecot.append(again, WHEN)
    inbox = settings.inbox.model_copy(update={"reader_processes": 0})
    no_workers = settings.model_copy(update={"inboxes": (inbox,)})
    pipeline.run_once(no_workers, engine)
    fingerprint = hashlib.sha256(again).hexdigest()
    ((state, reason),) = db_rows(workspace, f"SELECT state, reason FROM messages WHERE fingerprint = '{fingerprint}'")
    assert state == "error" and readers.DIED_IN_PLACE in reason


def test_the_guard_lists_what_every_thread_is_reading_in_place(tmp_path):
    """A service's inbox threads may each read in place at once: the guard's file lists all of them, so a crash
    then sends every one of those messages to a worker next time, not only the last noted."""
    import threading

    guard = readers.Guard(tmp_path)
    raws = [RawMail("test", 1, str(i), WHEN, raw) for i, (_, _, _, raw) in enumerate(school_mails(3, "guard"))]
    listed = tmp_path / f"reading.{os.getpid()}"
    guard.reading(raws[:1])
    other = threading.Thread(target=guard.reading, args=(raws[1:],))
    other.start()
    other.join()
    assert sorted(listed.read_text().split()) == sorted(raw.fingerprint for raw in raws)
    guard.done()  # this thread's message read: the other thread's stay listed
    assert sorted(listed.read_text().split()) == sorted(raw.fingerprint for raw in raws[1:])
    other = threading.Thread(target=guard.done)
    other.start()
    other.join()
    assert listed.read_text() == ""
    guard.close()
    assert not listed.exists()


def test_the_pipes_to_and_from_a_worker_hold_a_whole_answer(tmp_path):
    """A worker's answer passes without waiting for this process's pool thread to get the GIL 64 KB at a time."""
    import fcntl

    from mailbot.config import LimitSettings

    with readers.Readers(LimitSettings(), 1, guard=readers.Guard(tmp_path)) as pool:
        raws = [RawMail("test", 1, str(i), WHEN, raw) for i, (_, _, _, raw) in enumerate(school_mails(8, "pipe"))]
        answers = list(pool.results(pool.submit(raws)))
        executor = pool._pool
        assert executor is not None
        for queue in (executor._call_queue, executor._result_queue):  # type: ignore[attr-defined]
            for end in (queue._reader, queue._writer):
                assert fcntl.fcntl(end.fileno(), fcntl.F_GETPIPE_SZ) == readers.PIPE_BYTES
    assert [a.mail.message_id for a in answers if a.mail] == [mid for mid, _, _, _ in school_mails(8, "pipe")]


def test_a_worker_writes_the_originals_it_read_and_leaves_a_failure_to_the_main_process(tmp_path):
    """The .eml of each message a worker read is in the archive when its answer comes (its path needs no verdict);
    where it cannot be written, the answer says so and the main process writes it (and meets the error) as before."""
    from mailbot.config import LimitSettings
    from mailbot.ingest import archive

    raws = [RawMail("test", 1, str(i), WHEN, raw) for i, (_, _, _, raw) in enumerate(school_mails(8, "eml"))]
    root = tmp_path / "archive"
    with readers.Readers(LimitSettings(), 1, guard=readers.Guard(tmp_path), archive_dir=root) as pool:
        answers = list(pool.results(pool.submit(raws)))
    pooled = [(raw, a) for raw, a in zip(raws, answers, strict=True) if a.eml_kept]
    assert pooled  # the workers read most of the batch (this process may take a share it would wait for)
    for raw, _ in pooled:
        assert (root / archive.eml_path(raw.internaldate, raw.fingerprint)).read_bytes() == raw.data
    blocked = tmp_path / "blocked"
    blocked.write_bytes(b"a file where the archive's folder should be")
    with readers.Readers(LimitSettings(), 1, guard=readers.Guard(tmp_path), archive_dir=blocked) as pool:
        answers = list(pool.results(pool.submit(raws)))
    assert all(a.mail is not None and not a.eml_kept for a in answers)


def test_the_suspects_list_keeps_the_latest_and_stops_growing(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "SUSPECTS_KEPT", 5)
    listed = tmp_path / "suspects"
    listed.write_text("".join(f"{n:064x}\n" for n in [1, 2, 3, 4, 2, 5, 6]))
    dead = psutil.Popen(["true"])
    dead.wait()
    (tmp_path / f"reading.{dead.pid}").write_text(f"{7:064x}\n")  # a process died reading it in place
    guard = readers.Guard(tmp_path)
    try:
        latest = {f"{n:064x}" for n in [2, 4, 5, 6, 7]}  # 2 listed twice counts once, as its latest
        assert guard.suspects == latest
        assert listed.read_text().split() == [f"{n:064x}" for n in [4, 2, 5, 6, 7]]  # cut back, in order
    finally:
        guard.close()
    guard = readers.Guard(tmp_path)
    guard.close()
    assert guard.suspects == latest and len(listed.read_text().split()) == 5  # stable once cut back
