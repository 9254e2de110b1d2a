"""Legacy .doc reports through the LibreOffice kept running (issue #15, part 4), against a real Dovecot and real
processes: a .doc gets its metadata; one LibreOffice serves every file of a process; a LibreOffice that hangs is
killed and started again, the message recorded and acknowledged meanwhile and its metadata filled in after; a `run
--once` SIGKILLed while LibreOffice works leaves no LibreOffice (nor converter) behind, and loses nothing."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import psutil

from mailbot.demo import samples
from mailbot.documents import convert
from tests.conftest import PASSWORD_ENV, make_workspace
from tests.reliability_support import Daemon, append_many, db_count, db_rows, wait_until
from tests.test_documents_e2e import to_doc

WHEN = datetime(2023, 12, 1, 2, 0, tzinfo=UTC)  # within the demo campaign
FAST_LIMITS = "[limits]\ndoc_seconds = 2\n\n[documents]\nseconds_per_file = 15\n"


@cache
def _doc(name: str) -> bytes:
    return to_doc(samples.make_report_docx(name))


def doc_mails(count: int, tag: str) -> list[tuple[str, bytes]]:
    """(Message-ID, raw bytes): schools in turn, each with its report as a Word 97 .doc."""
    rows = [r for r in samples.load_demo_roster() if r["emails"]][:count]
    out = []
    for i, row in enumerate(rows):
        message_id = f"<{tag}-{i}@{row['emails'][0].split('@')[1]}>"
        raw = samples.make_email(
            sender=row["emails"][0],
            sender_name=row["name"],
            subject="V/v gửi báo cáo phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023",
            body="Kính gửi Sở GDĐT, đơn vị xin gửi báo cáo.",
            attachments=[("bao-cao-antq.doc", _doc(row["name"]), "application/msword")],
            message_id=message_id,
        )
        out.append((message_id, raw))
    return out


def doc_files(workspace) -> list[tuple[str, dict, list[str]]]:  # type: ignore[no-untyped-def]
    """(Message-ID, metadata, warning codes) of every .doc recorded."""
    rows = db_rows(
        workspace,
        "SELECT m.message_id, f.meta, f.warnings FROM files f JOIN messages m ON m.id = f.message_pk"
        " WHERE f.kind = 'doc' ORDER BY m.message_id",
    )
    return [(mid, json.loads(meta), [w.split(":")[0] for w in json.loads(warnings)]) for mid, meta, warnings in rows]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone(pids: list[int], timeout: float) -> bool:
    return wait_until(lambda: not any(_alive(p) for p in pids), timeout, every=0.1)


def test_a_doc_report_is_read_through_the_converter_and_gets_its_metadata(workspace, dovecot):
    mails = doc_mails(2, "doc")
    assert all(append_many(dovecot, [raw for _, raw in mails], WHEN))
    workspace.cli("run", "--once")
    found = doc_files(workspace)
    assert [mid for mid, _, _ in found] == sorted(mid for mid, _ in mails)
    for _, meta, codes in found:
        assert meta["title"] and meta["issuer"] and meta["date"], meta  # read from the converted .docx
        assert "legacy_doc" in codes  # the school is still asked for a .docx next time
        assert "legacy_doc_unread" not in codes and "legacy_doc_pending" not in codes
    assert db_count(workspace, "outbox", "kind = 'ack'") == 2


def test_one_libreoffice_serves_every_conversion_of_a_process():
    data = _doc("Trường THPT Ngô Quyền")
    first, second = convert.convert(data, 60), convert.convert(data, 60)
    assert first.docx and second.docx and first.docx[:2] == b"PK"
    soffice = convert.converter()
    assert soffice
    running = convert._this_process_converter(soffice)
    assert running is not None and running.starts == 1
    office = [p for p in psutil.Process().children(recursive=True) if p.name() == "soffice.bin"]
    assert len(office) == 1  # kept running between the two, and only one
    convert.close_all()
    assert _gone([p.pid for p in office], 10)


def _fake_soffice(folder: Path, *, hang: str) -> Path:
    """A `soffice` first on PATH that logs its pid, then hangs (``hang="always"``, or only the first time) or runs the
    real LibreOffice in its place (same pid)."""
    real = convert.converter()
    assert real, "LibreOffice is needed (scripts/test.sh installs libreoffice-writer-nogui)"
    folder.mkdir()
    script = folder / "soffice"
    first_only = f'[ -e "{folder}/hung" ] && exec "{real}" "$@"\n' if hang == "once" else ""
    script.write_text(
        f'#!/bin/sh\necho $$ >> "{folder}/pids"\n{first_only}touch "{folder}/hung"\nexec sleep 600\n', encoding="utf-8"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def _with_hanging_soffice(tmp_path: Path, dovecot, monkeypatch, *, hang: str):  # type: ignore[no-untyped-def]
    """The fake LibreOffice first on PATH, and a workspace with short conversion limits: (its folder, the workspace)."""
    fake = _fake_soffice(tmp_path / "bin", hang=hang)
    monkeypatch.setenv("PATH", f"{fake}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv(PASSWORD_ENV, dovecot.password)
    return fake, make_workspace(tmp_path / "ws", dovecot, extra=FAST_LIMITS)


def test_a_hung_libreoffice_is_killed_and_restarted_and_the_message_is_recorded_first(tmp_path, dovecot, monkeypatch):
    mails = doc_mails(1, "hang")
    assert all(append_many(dovecot, [raw for _, raw in mails], WHEN))
    fake, workspace = _with_hanging_soffice(tmp_path, dovecot, monkeypatch, hang="once")

    run = workspace.cli("-v", "run", "--once")

    assert db_rows(workspace, "SELECT message_id, state FROM messages") == [(mails[0][0], "submission")]
    assert db_count(workspace, "outbox", "kind = 'ack'") == 1  # acknowledged, not lost, not doubled
    log = run.stderr
    assert log.index("recorded") < log.index("converted after its receipt"), log  # receipt first, metadata after
    ((_, meta, codes),) = doc_files(workspace)
    assert meta["title"] and meta["issuer"], (meta, log)  # read by the LibreOffice started after the hung one
    assert "legacy_doc_pending" not in codes and "legacy_doc_unread" not in codes
    pids = [int(p) for p in (fake / "pids").read_text().split()]
    assert len(pids) == 2  # the hung start, then one more
    assert _gone(pids, 10), "a LibreOffice outlived the run"


def test_a_libreoffice_that_always_hangs_leaves_the_doc_unread_not_the_message_lost(tmp_path, dovecot, monkeypatch):
    mails = doc_mails(1, "stuck")
    assert all(append_many(dovecot, [raw for _, raw in mails], WHEN))
    fake, workspace = _with_hanging_soffice(tmp_path, dovecot, monkeypatch, hang="always")

    workspace.cli("run", "--once")

    assert db_count(workspace, "messages", "state = 'submission'") == 1
    assert db_count(workspace, "outbox", "kind = 'ack'") == 1
    ((_, meta, codes),) = doc_files(workspace)
    assert meta == {} and "legacy_doc_unread" in codes and "legacy_doc_pending" not in codes
    assert _gone([int(p) for p in (fake / "pids").read_text().split()], 10)


def test_sigkill_during_a_conversion_leaves_no_libreoffice_and_loses_nothing(workspace, dovecot, tmp_path):
    mails = doc_mails(6, "kill")  # a batch large enough for the reader processes
    assert all(append_many(dovecot, [raw for _, raw in mails], WHEN))
    run = Daemon(workspace, tmp_path / "run.log", command=("run", "--once"))
    try:

        def office_running() -> bool:
            try:
                return any(p.name() == "soffice.bin" for p in psutil.Process(run.proc.pid).children(recursive=True))
            except psutil.Error:
                return False

        assert wait_until(office_running, 120, every=0.05), run.log()
        tree = [p.pid for p in psutil.Process(run.proc.pid).children(recursive=True)]
    finally:
        run.kill()
    assert _gone(tree, 15), "a reader, converter or LibreOffice process outlived the killed run"
    assert "Traceback" not in run.log()

    workspace.cli("run", "--once")
    found = doc_files(workspace)
    assert [mid for mid, _, _ in found] == sorted(mid for mid, _ in mails)  # each exactly once
    assert all(meta.get("title") for _, meta, _ in found)
    assert db_count(workspace, "outbox", "kind = 'ack'") == 6


def test_the_service_acknowledges_first_and_fills_the_metadata_in_later(tmp_path, dovecot, monkeypatch):
    """The service's own scheduled job converts a .doc whose LibreOffice hung while the message was read: the
    receipt went out at once, the metadata follows, and stopping the service leaves no LibreOffice."""
    mails = doc_mails(1, "service-hang")
    fake, workspace = _with_hanging_soffice(tmp_path, dovecot, monkeypatch, hang="once")
    service = Daemon(workspace, tmp_path / "service.log")
    try:
        service.wait_log("mailbot started")
        assert all(append_many(dovecot, [raw for _, raw in mails], WHEN))
        assert wait_until(lambda: db_count(workspace, "outbox", "kind = 'ack'") == 1, 60, service), service.log()
        assert wait_until(lambda: doc_files(workspace)[0][1], 90, service, every=0.5), service.log()
    finally:
        assert service.stop() == 0
    ((_, meta, codes),) = doc_files(workspace)
    assert meta["title"] and meta["issuer"] and "legacy_doc_pending" not in codes
    log = service.log()
    # acknowledged when recorded, before its conversion: the log says so in that order
    assert "Traceback" not in log and log.index("recorded") < log.index("converted after its receipt"), log
    assert db_count(workspace, "outbox", "kind = 'ack'") == 1  # one receipt, not another when the metadata came
    assert _gone([int(p) for p in (fake / "pids").read_text().split()], 10), "a LibreOffice outlived the service"


def test_the_sockets_of_killed_libreoffices_are_swept_and_live_ones_kept(tmp_path: Path) -> None:
    import socket

    uid = os.getuid()
    folder = Path(tmp_path)  # LibreOffice's own folder is /tmp; the sweep takes any

    def bound(name: str, *, listening: bool) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(str(folder / name))
        if listening:
            s.listen(1)
        return s

    stale = [f"OSL_PIPE_{uid}_SingleOfficeIPC_0a1b2c", f"OSL_PIPE_{uid}_mailbot-4242-17"]
    for name in stale:
        bound(name, listening=False).close()  # a killed LibreOffice: the file stays, nobody listens
    live = bound(f"OSL_PIPE_{uid}_mailbot-4343-18", listening=True)  # another process's converter, running
    bound(f"OSL_PIPE_{uid + 1}_SingleOfficeIPC_ffee", listening=False).close()  # another user's: not ours to judge
    (folder / f"OSL_PIPE_{uid}_SingleOfficeIPC_file").write_text("")  # not a socket
    try:
        assert convert.sweep_stale_office_sockets(folder) == 2
        left = sorted(p.name for p in folder.iterdir())
        assert left == sorted(
            [
                f"OSL_PIPE_{uid}_mailbot-4343-18",
                f"OSL_PIPE_{uid + 1}_SingleOfficeIPC_ffee",
                f"OSL_PIPE_{uid}_SingleOfficeIPC_file",
            ]
        )
    finally:
        live.close()
