"""The schools' status links (issue 12, item 7): the public page over HTTP, the link in the mail that really goes out
(real Dovecot, real SMTP server), and the web pages inside `mailbot run` (item 6) as a real process."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import warnings
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from mailbot import config, store
from mailbot.campaigns import catalog
from mailbot.config import Settings, WebSettings, late_limit
from mailbot.demo import samples
from mailbot.demo.build import DIGEST_AT, build_demo
from mailbot.errors import ConfigError
from mailbot.models import Campaign, PaperMode
from mailbot.notify import links
from mailbot.notify.compose import KINDS, Templates, secret_key
from mailbot.notify.samples import SAMPLE_CONTEXTS
from mailbot.reports.status import campaign_status
from mailbot.web.app import create_app
from tests.conftest import make_workspace
from tests.test_notify import smtp_section
from tests.web_support import copy_of, free_port, processed_demo

with warnings.catch_warnings():  # newer Starlette prefers the httpx2 package; plain httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PUBLIC = "https://baocao.haiphong.edu.vn/mailbot"
ROSTER = samples.load_demo_roster()


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_demo(tmp_path_factory.mktemp("link-demo"))


@pytest.fixture
def demo(demo_master: Path, tmp_path: Path) -> Settings:
    return copy_of(demo_master, tmp_path)


def client_for(settings: Settings, now=DIGEST_AT) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(create_app(settings, store.connect(settings.db_url), now=now), base_url="http://testserver")


def campaign_of(settings: Settings) -> Campaign:
    """The demo's campaign, from where the service and the pages take it (the database)."""
    return catalog.load(store.connect(settings.db_url), settings).all[0]


def token(settings: Settings, code: str) -> str:
    return links.make_token(secret_key(settings.data_dir), code, campaign_of(settings).id)


def others_shown(page: str, code: str) -> list[str]:
    """Names or codes of institutions other than ``code`` that appear on the page."""
    own = next(r for r in ROSTER if r["code"] == code)
    return [
        text
        for r in ROSTER
        if r["code"] != code
        for text in (r["name"], r["code"])
        if text not in own["name"] and re.search(rf"(?<![\w-]){re.escape(text)}(?![\w-])", page)
    ]


# --- the page -------------------------------------------------------------------------------------------


def test_a_valid_link_shows_that_institution_and_nobody_else(demo: Settings) -> None:
    client = client_for(demo)
    page = client.get(f"/s/{token(demo, 'THPT-TP')}")
    assert page.status_code == 200
    text = page.text
    assert "Kính gửi: <b>Trường THPT chuyên Trần Phú</b>" in text and "Sở đã nhận" in text
    assert "Đúng hạn" in text and "17:00 ngày 05/12/2023" in text  # on time, and its deadline
    assert re.search(r"<b>\d{6}</b>", text)  # its receipt number
    assert ".docx" in text and "ngày 0" in text  # the file it sent, when
    assert "bà Nguyễn Thị Lan" in text  # whom to call
    assert "số 2516/KH-SGDĐT" in text
    assert others_shown(text, "THPT-TP") == []
    assert "<a " not in text and "/c/" not in text  # no way into the staff pages
    assert '<meta name="robots" content="noindex, nofollow">' in text
    assert page.headers["x-robots-tag"] == "noindex, nofollow" and page.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in page.headers  # no session, nothing remembered


def test_a_missing_institution_is_told_what_is_missing_and_by_when(demo: Settings) -> None:
    status = campaign_status(store.connect(demo.db_url), campaign_of(demo))
    code = next(i.code for i in status.institutions if i.status == "missing")
    page = client_for(demo).get(f"/s/{token(demo, code)}").text
    assert "Chưa nộp" in page and "Sở chưa nhận được thư báo cáo nào" in page
    assert "Còn thiếu:</b> tệp Word của báo cáo" in page
    assert "Đã quá hạn" in page  # the demo's morning is after the deadline
    assert others_shown(page, code) == []


def test_the_stamped_copy_line_follows_the_campaign(demo: Settings) -> None:
    plain = client_for(demo).get(f"/s/{token(demo, 'THPT-TP')}").text  # paper = none: not asked for
    assert "dấu đỏ" not in plain
    c = campaign_of(demo)
    catalog.edit(store.connect(demo.db_url), c.id, replace(c, paper=PaperMode.EITHER), actor="t", now=DIGEST_AT)
    client = client_for(demo)
    scanned = client.get(f"/s/{token(demo, 'DH-HP')}").text  # Word report plus a PDF scan
    assert "Bản có dấu đỏ:</b> Sở đã nhận bản PDF" in scanned and "Sở đã nhận đủ hồ sơ" in scanned
    assert "(bản scan có dấu).pdf" in scanned
    word_only = client.get(f"/s/{token(demo, 'THPT-TP')}").text
    assert "Còn thiếu:</b> bản có dấu đỏ" in word_only and "bưu điện" in word_only


def test_an_altered_or_foreign_link_is_not_found(demo: Settings) -> None:
    client = client_for(demo)
    good = token(demo, "THPT-TP")
    payload, _, signature = good.rpartition(".")
    forged = links.make_token(b"another installation's key!!!!!!", "THPT-TP", campaign_of(demo).id)
    other_payload = links.make_token(secret_key(demo.data_dir), "THPT-NQ", campaign_of(demo).id).rpartition(".")[0]
    for bad in (
        payload + "." + signature[:-3] + ("AAA" if signature[-3:] != "AAA" else "BBB"),  # signature altered
        other_payload + "." + signature,  # another institution's payload under this signature
        forged,
        links.make_token(secret_key(demo.data_dir), "THPT-TP", "no-such-campaign"),
        links.make_token(secret_key(demo.data_dir), "NO-SUCH-CODE", campaign_of(demo).id),
        "x" * 2000,
        "",
    ):
        page = client.get(f"/s/{bad}")
        assert page.status_code == 404, bad
        assert "Trường THPT chuyên Trần Phú" not in page.text and "Ngô Quyền" not in page.text
    assert "Đường dẫn không hợp lệ" in client.get(f"/s/{forged}").text


def test_a_link_expires_with_the_campaign(demo: Settings) -> None:
    limit = late_limit(campaign_of(demo))
    link = f"/s/{token(demo, 'THPT-TP')}"
    assert client_for(demo, now=limit - timedelta(minutes=1)).get(link).status_code == 200
    page = client_for(demo, now=limit + timedelta(minutes=1)).get(link)
    assert page.status_code == 403 and "Đường dẫn đã hết hiệu lực" in page.text
    assert "Trần Phú" not in page.text
    # no link is made once it would be dead
    key, campaign = secret_key(demo.data_dir), campaign_of(demo)
    assert links.status_url(PUBLIC, key, "THPT-TP", campaign, limit + timedelta(seconds=1)) == ""
    assert links.status_url("", key, "THPT-TP", campaign, limit) == ""
    assert links.status_url(PUBLIC, key, "THPT-TP", campaign, limit).startswith(PUBLIC + "/s/")


def test_bad_links_from_one_address_are_slowed_down(demo: Settings) -> None:
    client = client_for(demo)
    for n in range(20):
        assert client.get(f"/s/bad-{n}").status_code == 404
    assert client.get(f"/s/{token(demo, 'THPT-TP')}").status_code == 429


def test_the_staff_pages_still_need_a_login(demo: Settings) -> None:
    client = client_for(demo)
    assert client.get(f"/s/{token(demo, 'THPT-TP')}").status_code == 200
    assert client.get("/c/antq-2023/institutions", follow_redirects=False).status_code == 303


# --- configuration and templates ---------------------------------------------------------------------------


def test_public_url_is_checked(demo: Settings) -> None:
    assert WebSettings(public_url=PUBLIC + "/").public_url == PUBLIC
    assert WebSettings().public_url == "" and WebSettings().enabled is False
    raw = {"inbox": {"kind": "maildir", "path": "m"}, "campaign": [{"id": "a", "title": "A", "deadline": "2023-12-05"}]}
    for bad in ("baocao.haiphong.edu.vn", "ftp://baocao.haiphong.edu.vn", "https://", "https://x/?a=1", "https://x:0"):
        with pytest.raises(ConfigError, match=r"web\.public_url"):
            config.parse({**raw, "web": {"public_url": bad}}, demo.data_dir)


@pytest.mark.parametrize("kind", [k for k in KINDS if "status_url" in SAMPLE_CONTEXTS[k]])
def test_templates_carry_one_link_only_when_there_is_one(kind: str) -> None:
    templates, sample = Templates(), SAMPLE_CONTEXTS[kind]
    url = sample["status_url"]
    with_link = templates.render(kind, sample)
    assert with_link.text.count(url) == 1 and with_link.html.count(f'href="{url}"') == 1
    assert with_link.html.count(url) == 1
    without = templates.render(kind, {**sample, "status_url": ""})
    assert "/s/" not in without.text and "/s/" not in without.html and "theo dõi" not in without.text


# --- through the real mail path --------------------------------------------------------------------------


WEB_SECTION = f"""
[web]
public_url = "{PUBLIC}"
path_prefix = "/mailbot"
"""


def links_in(text: str) -> list[str]:
    return re.findall(re.escape(PUBLIC) + r"/s/[A-Za-z0-9_.\-]+", text)


def open_link(client: TestClient, url: str) -> httpx.Response:
    return client.get(urlsplit(url).path)  # the proxy passes /mailbot/... on; the application strips its prefix


def test_receipts_and_reminders_carry_the_link_that_opens_the_status(  # type: ignore[no-untyped-def]
    tmp_path, dovecot, smtp_sink, monkeypatch
) -> None:
    monkeypatch.setenv("MAILBOT_TEST_IMAP_PASSWORD", dovecot.password)
    ws = make_workspace(tmp_path / "ws", dovecot, extra=smtp_section(smtp_sink) + WEB_SECTION)
    cases = samples.demo_cases(ROSTER)
    for case in cases:
        dovecot.append(case.raw, case.arrival)
    ws.cli("--now", "2023-12-05T18:00", "run", "--once")  # the demo's mail, processed in its own year
    got = smtp_sink.wait_for(len(cases))
    settings = ws.settings()
    client = TestClient(create_app(settings, store.connect(settings.db_url), now=DIGEST_AT))
    own = {a: r for r in ROSTER for a in r["emails"]}
    linked = 0
    for receipt in got:
        msg, to = receipt.message, receipt.rcpt_tos[0]
        text, html = msg.get_body(("plain",)).get_content(), msg.get_body(("html",)).get_content()
        found = links_in(text)
        assert len(found) <= 1 and len(links_in(html)) == len(found)
        if to not in own:
            assert found == []  # never to an address off the roster: it may be anyone's
            continue
        if msg["X-Mailbot-Kind"] == "ack":
            assert len(found) == 1, text
        if found:
            linked += 1
            assert links_in(html) == found
            page = open_link(client, found[0])
            assert page.status_code == 200
            assert f"Kính gửi: <b>{own[to]['name']}</b>" in page.text
            assert others_shown(page.text, own[to]["code"]) == []
    assert linked >= 5

    smtp_sink.clear()
    ws.cli("--now", "2023-12-02T08:00", "remind")
    missing = {i["code"] for i in ws.status()["institutions"] if i["status"] == "missing"}
    reminders = smtp_sink.wait_for(len([c for c in missing if any(r["code"] == c and r["emails"] for r in ROSTER)]))
    for reminder in reminders:
        text = reminder.message.get_body(("plain",)).get_content()
        html = reminder.message.get_body(("html",)).get_content()
        assert len(links_in(text)) == 1 and links_in(html) == links_in(text)
        name = re.search(r"Kính gửi: (.+)", text).group(1).strip()  # type: ignore[union-attr]
        page = open_link(client, links_in(text)[0])
        assert page.status_code == 200 and f"Kính gửi: <b>{name}</b>" in page.text and "Chưa nộp" in page.text
        code = next(r["code"] for r in ROSTER if r["name"] == name)
        assert others_shown(page.text, code) == []


# --- the web pages inside `mailbot run` ------------------------------------------------------------------


def start_service(root: Path, port: int) -> tuple[subprocess.Popen[bytes], Path]:
    log = root / f"run-{port}.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "mailbot", "--config", str(root / "mailbot.toml"), "--now", "2023-12-07T07:30", "run"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
        cwd=root,
        env=dict(os.environ),
    )
    return proc, log


def with_web(root: Path, port: int) -> None:
    config_path = root / "mailbot.toml"
    text = config_path.read_text(encoding="utf-8")
    config_path.write_text(f'{text}\n[web]\nenabled = true\nport = {port}\npublic_url = "{PUBLIC}"\n', encoding="utf-8")


def test_run_serves_the_web_pages_and_stops_on_sigterm(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    build_demo(root)
    port = free_port()
    with_web(root, port)
    proc, log = start_service(root, port)
    try:
        login = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert login is not None, log.read_text(encoding="utf-8", errors="replace")
        assert login.status_code == 200 and "Đăng nhập" in login.text
        settings = config.load(root / "mailbot.toml")
        page = httpx.get(f"http://127.0.0.1:{port}/s/{token(settings, 'THPT-TP')}", timeout=5)
        assert page.status_code == 200 and "Trường THPT chuyên Trần Phú" in page.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    logged = log.read_text(encoding="utf-8", errors="replace")
    assert f"web pages on http://127.0.0.1:{port}/" in logged and "web pages stopped" in logged
    assert "Traceback" not in logged
    with socket.socket() as s:  # the port is free again
        s.bind(("127.0.0.1", port))


def test_run_with_the_web_port_taken_says_so_in_one_line(tmp_path: Path) -> None:
    root = tmp_path / "svc"
    build_demo(root)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        with_web(root, port)
        proc, log = start_service(root, port)
        assert proc.wait(60) == 1
    logged = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in logged
    assert f"error: cannot serve the web pages on 127.0.0.1:{port}: Address already in use" in logged
    check = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(root / "mailbot.toml"), "check"],
        capture_output=True,
        text=True,
        cwd=root,
    )
    assert f"ok   web: served by `mailbot run` on http://127.0.0.1:{port}/" in check.stdout
    assert f"receipts and reminders link to {PUBLIC}/s/" in check.stdout
