"""The staff web pages over HTTP (Starlette's TestClient): access, CSRF, rate limit, traversal, changes, downloads.

Each test gets its own copy of one processed demo folder (`mailbot demo`'s roster, mail and archive).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import io
import json
import re
import stat
import subprocess
import sys
import warnings
import zipfile
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote_plus

import httpx
import pytest
from click.testing import CliRunner
from openpyxl import load_workbook
from sqlalchemy import select, update

from mailbot import config, store
from mailbot.cli import cli
from mailbot.config import Settings, WebSettings
from mailbot.demo.build import DIGEST_AT, ZONE
from mailbot.errors import ConfigError
from mailbot.reports.status import as_json, campaign_status
from mailbot.web import auth
from mailbot.web.app import create_app
from mailbot.web.core import SESSION_COOKIE
from tests.conftest import first_campaign
from tests.web_support import copy_of, free_port, processed_demo, serving

with warnings.catch_warnings():  # newer Starlette prefers the httpx2 package; plain httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

USER, PASSWORD = "lan.nguyen", "Mật-khẩu-thử-2023"
CAMPAIGN = "antq-2023"
C = f"/c/{CAMPAIGN}"
REVIEW_SENDER = "hoa.nguyen1987@yahoo.com"

PROTECTED_GETS = [
    "/",
    f"{C}/",
    f"{C}/institutions",
    f"{C}/institutions?q=ngo+quyen",
    f"{C}/institutions/THPT-NQ",
    f"{C}/review",
    f"{C}/log",
    f"{C}/tracker.xlsx",
    f"{C}/reports.zip",
    f"{C}/consolidation.xlsx",
    "/files/1",
    "/messages/1/original.eml",
]
PROTECTED_POSTS = ["/logout", f"{C}/extension", f"{C}/review/1/assign"]


@pytest.fixture(scope="module")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return processed_demo(tmp_path_factory.mktemp("web-demo"))


@pytest.fixture
def demo(demo_master: Path, tmp_path: Path) -> Settings:
    return copy_of(demo_master, tmp_path)


def staff_actions(*columns):  # type: ignore[no-untyped-def]
    """The change log without the service's imports of the configured roster file and campaign (done when the
    demo is built)."""
    return select(*(columns or (store.actions,))).where(
        store.actions.c.action.not_in(("roster_import", "campaign_import"))
    )


def make_client(settings: Settings, *, user: bool = True) -> TestClient:
    engine = store.connect(settings.db_url)
    if user:
        auth.set_password(engine, USER, PASSWORD, actor="test")
    return TestClient(create_app(settings, engine, now=DIGEST_AT), base_url="http://testserver")


@pytest.fixture
def client(demo: Settings) -> TestClient:
    return make_client(demo)


def login_token(client: TestClient, path: str = "/login") -> str:
    page = client.get(path)
    assert page.status_code == 200
    return re.search(r'name="token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]


def login(client: TestClient, name: str = USER, password: str = PASSWORD, prefix: str = ""):  # type: ignore[no-untyped-def]
    token = login_token(client, f"{prefix}/login")
    return client.post(
        f"{prefix}/login",
        data={"name": name, "password": password, "token": token, "next": f"{prefix}/"},
        follow_redirects=False,
    )


@pytest.fixture
def staff(client: TestClient) -> TestClient:
    assert login(client).status_code == 303
    return client


def csrf_of(page_html: str) -> str:
    return re.search(r'name="csrf" value="([^"]+)"', page_html).group(1)  # type: ignore[union-attr]


def flash(client: TestClient, path: str) -> str:
    page = client.get(path)
    found = re.search(r'<div class="flash (ok|error)"[^>]*>([^<]*)</div>', page.text)
    return f"{found.group(1)}: {found.group(2)}" if found else ""


def status_of(settings: Settings) -> dict:  # type: ignore[type-arg]
    engine = store.connect(settings.db_url)
    return as_json(campaign_status(engine, first_campaign(settings)))


def review_pk(settings: Settings) -> int:
    engine = store.connect(settings.db_url)
    m = store.messages
    with engine.connect() as conn:
        return conn.execute(select(m.c.id).where(m.c.sender == REVIEW_SENDER)).scalar_one()


# --- access ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_anonymous_get_goes_to_the_login_page(client: TestClient, path: str) -> None:
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login?next=")
    page = client.get(path)
    assert page.url.path == "/login"
    assert "Đăng nhập" in page.text and "Tên đăng nhập" in page.text
    assert "Ngô Quyền" not in page.text  # nothing of the campaign shows


@pytest.mark.parametrize("path", PROTECTED_POSTS)
def test_anonymous_post_goes_to_the_login_page_and_changes_nothing(
    client: TestClient, demo: Settings, path: str
) -> None:
    r = client.post(path, data={"code": "THPT-NQ", "until": "2023-12-20T17:00", "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert conn.execute(staff_actions()).first() is None


def test_login_wrong_then_right(client: TestClient) -> None:
    wrong = login(client, password="sai-mat-khau-roi")
    assert wrong.status_code == 200
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    unknown = login(client, name="khong.co.ai")
    assert "Tên đăng nhập hoặc mật khẩu không đúng." in unknown.text  # the same words: names are not revealed
    right = login(client, name="Lan.Nguyen")  # names are case-insensitive
    assert right.status_code == 303 and right.headers["location"] == "/"
    cookie = right.headers["set-cookie"]
    assert f"{SESSION_COOKIE}=" in cookie and "HttpOnly" in cookie and "samesite=lax" in cookie.lower()
    assert "Path=/" in cookie and "Secure" not in cookie
    page = client.get("/")
    assert page.url.path == f"{C}/" and "Tài khoản: <b>lan.nguyen</b>" in page.text
    # the login form of a logged-in user goes straight on
    assert client.get("/login", follow_redirects=False).status_code == 303


def test_login_form_needs_its_token(client: TestClient) -> None:
    r = client.post("/login", data={"name": USER, "password": PASSWORD, "next": "/"}, follow_redirects=False)
    assert r.status_code == 403
    assert SESSION_COOKIE not in r.headers.get("set-cookie", "")


def test_login_never_redirects_to_another_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:alert(1)"):
        client = TestClient(client.app)
        token = login_token(client)
        r = client.post(
            "/login", data={"name": USER, "password": PASSWORD, "token": token, "next": target}, follow_redirects=False
        )
        assert r.status_code == 303 and r.headers["location"] == "/"
    r = client.get(f"{C}/review", follow_redirects=False)
    assert r.status_code == 200


def test_login_is_rate_limited_per_address_and_user(client: TestClient, demo: Settings) -> None:
    clock = [1000.0]
    client.app.web.limiter.clock = lambda: clock[0]  # type: ignore[attr-defined]
    for _ in range(5):
        assert "không đúng" in login(client, password="doan-thu-mot-lan").text
    blocked = login(client)  # even the right password, for now
    assert blocked.status_code == 429
    assert "Vui lòng thử lại sau khoảng 15 phút" in blocked.text and int(blocked.headers["retry-after"]) > 800
    assert SESSION_COOKIE not in blocked.headers.get("set-cookie", "")
    # another account from the same address is not locked out by these failures
    engine = store.connect(demo.db_url)
    auth.set_password(engine, "minh.tran", "mat-khau-cua-minh", actor="test")
    other = TestClient(client.app)
    assert login(other, "minh.tran", "mat-khau-cua-minh").status_code == 303
    clock[0] += 15 * 60 + 1
    assert login(client).status_code == 303
    with engine.connect() as conn:
        events = [r.event for r in conn.execute(select(store.web_events).order_by(store.web_events.c.id))]
    assert events.count("login_failed") == 5 and "login_limited" in events


def from_address(app, host: str, **headers: str) -> TestClient:  # type: ignore[no-untyped-def]
    """Another browser on the same application, connecting from ``host``."""
    return TestClient(app, client=(host, 40000), headers=headers)


def login_events(settings: Settings) -> list[tuple[str, str]]:
    w = store.web_events
    with store.connect(settings.db_url).connect() as conn:
        return [
            (r.event, r.ip)
            for r in conn.execute(select(w.c.event, w.c.ip).where(w.c.event.like("login%")).order_by(w.c.id))
        ]


def test_forwarded_for_from_an_untrusted_client_does_not_change_its_address(client: TestClient, demo: Settings) -> None:
    """Without [web] trusted_proxies, a client cannot pick a fresh rate-limit bucket with X-Forwarded-For."""
    for n in range(5):
        attacker = from_address(client.app, "203.0.113.7", **{"X-Forwarded-For": f"198.51.100.{n}"})
        assert "không đúng" in login(attacker, password="doan-thu-mot-lan").text
    attacker = from_address(client.app, "203.0.113.7", **{"X-Forwarded-For": "198.51.100.99"})
    assert login(attacker).status_code == 429
    assert {ip for _, ip in login_events(demo)} == {"203.0.113.7"}


def test_failures_from_one_client_do_not_lock_the_account_elsewhere(client: TestClient, demo: Settings) -> None:
    """Anyone can lock ``lan`` out of their own machine, never out of hers; nor another account anywhere."""
    guesser = from_address(client.app, "192.0.2.10")
    for _ in range(5):
        login(guesser, password="doan-thu-mot-lan")
    assert login(guesser).status_code == 429
    assert login(from_address(client.app, "192.0.2.20")).status_code == 303  # lan, at her own desk
    auth.set_password(store.connect(demo.db_url), "minh.tran", "mat-khau-cua-minh", actor="test")
    assert login(from_address(client.app, "192.0.2.10"), "minh.tran", "mat-khau-cua-minh").status_code == 303


@pytest.mark.parametrize("proxy, trusted", [("127.0.0.1", ("127.0.0.1",)), ("10.1.2.3", ("10.0.0.0/8", "::1"))])
def test_a_trusted_proxy_gives_each_user_their_own_address(
    demo: Settings, proxy: str, trusted: tuple[str, ...]
) -> None:
    settings = demo.model_copy(update={"web": WebSettings(trusted_proxies=trusted)})
    app = make_client(settings).app

    def via_proxy(forwarded: str) -> TestClient:
        return from_address(app, proxy, **{"X-Forwarded-For": forwarded})

    for _ in range(5):
        login(via_proxy("198.51.100.1"), password="doan-thu-mot-lan")
    assert login(via_proxy("198.51.100.1")).status_code == 429
    # a client that writes its own X-Forwarded-For still gets the address the proxy appended
    assert login(via_proxy("198.51.100.2, 198.51.100.1")).status_code == 429
    assert login(via_proxy("198.51.100.2")).status_code == 303  # another user behind the same proxy
    # the proxy's own address is not believed from anywhere else
    assert (
        login(from_address(app, "192.0.2.99", **{"X-Forwarded-For": "198.51.100.2"}), password="sai-nhe").status_code
        == 200
    )
    assert [ip for _, ip in login_events(settings)] == ["198.51.100.1"] * 5 + ["198.51.100.1"] * 2 + [
        "198.51.100.2",
        "192.0.2.99",
    ]


def served(settings: Settings, port: int) -> contextlib.AbstractContextManager[str]:
    """`mailbot web` (uvicorn) as a real process on loopback; its URL while it runs."""
    return serving(settings.data_dir.parent / "mailbot.toml", port)


def failed_login_over_http(url: str, forwarded: str) -> None:
    with httpx.Client(base_url=url, headers={"X-Forwarded-For": forwarded}) as http:
        token = re.search(r'name="token" value="([^"]+)"', http.get("/login").text).group(1)  # type: ignore[union-attr]
        r = http.post("/login", data={"name": USER, "password": "doan-thu-mot-lan", "token": token, "next": "/"})
        assert "không đúng" in r.text


def test_the_server_believes_forwarded_for_only_from_configured_proxies(demo: Settings) -> None:
    """uvicorn alone trusts X-Forwarded-For from 127.0.0.1 (and $FORWARDED_ALLOW_IPS): `mailbot web` must not."""
    auth.set_password(store.connect(demo.db_url), USER, PASSWORD, actor="test")
    config_path = demo.data_dir.parent / "mailbot.toml"
    with served(demo, free_port()) as url:
        failed_login_over_http(url, "198.51.100.1")
    assert login_events(demo) == [("login_failed", "127.0.0.1")]
    log = next(demo.data_dir.parent.glob("web-*.log")).read_text()
    assert "X-Forwarded-For from 127.0.0.1 is ignored" in log and "trusted_proxies" in log
    config_path.write_text(config_path.read_text() + '\n[web]\ntrusted_proxies = ["127.0.0.1"]\n')
    with served(config.load(config_path), free_port()) as url:
        failed_login_over_http(url, "198.51.100.1")
    assert login_events(demo)[1:] == [("login_failed", "198.51.100.1")]


def test_logout_ends_the_session(staff: TestClient) -> None:
    cookie = staff.cookies.get(SESSION_COOKIE)
    csrf = csrf_of(staff.get(f"{C}/").text)
    r = staff.post("/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    replay = TestClient(staff.app)
    replay.cookies.set(SESSION_COOKIE, cookie)
    assert replay.get(f"{C}/", follow_redirects=False).status_code == 303  # the old cookie is dead


def test_forged_or_tampered_cookie_is_refused(client: TestClient) -> None:
    client.cookies.set(SESSION_COOKIE, "not-signed")
    assert client.get(f"{C}/", follow_redirects=False).status_code == 303
    fresh = TestClient(client.app)
    login(fresh)
    good = fresh.cookies.get(SESSION_COOKIE)
    tampered = TestClient(client.app)
    tampered.cookies.set(SESSION_COOKIE, good[:-2] + ("AA" if not good.endswith("AA") else "BB"))
    assert tampered.get(f"{C}/", follow_redirects=False).status_code == 303
    untouched = TestClient(client.app)
    untouched.cookies.set(SESSION_COOKIE, good)
    assert untouched.get(f"{C}/", follow_redirects=False).status_code == 200


def test_new_password_ends_sessions(staff: TestClient, demo: Settings) -> None:
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 200
    auth.set_password(store.connect(demo.db_url), USER, "mot-mat-khau-moi", actor="test")
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 303


@pytest.mark.parametrize("path", PROTECTED_POSTS)
def test_post_without_or_with_wrong_csrf_is_refused(staff: TestClient, demo: Settings, path: str) -> None:
    pk = review_pk(demo)
    path = path.replace("/review/1/", f"/review/{pk}/")
    form = {"code": "THPT-TPH", "until": "2023-12-20T17:00", "reason": "thử"}
    for extra in ({}, {"csrf": "wrong-token"}):
        r = staff.post(path, data={**form, **extra}, follow_redirects=False)
        assert r.status_code == 403
        assert "Biểu mẫu đã hết hiệu lực" in r.text
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert conn.execute(staff_actions()).first() is None
        assert conn.execute(select(store.extensions)).first() is None
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 200  # still logged in


def test_security_headers(staff: TestClient) -> None:
    r = staff.get(f"{C}/")
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["cache-control"] == "no-store"
    csp = r.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp
    nonce = re.search(r"'nonce-([^']+)'", csp).group(1)  # type: ignore[union-attr]
    assert f'<style nonce="{nonce}">' in r.text


def test_key_file_is_made_private(demo: Settings) -> None:
    make_client(demo, user=False)
    key = demo.data_dir / "web-secret.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    first = key.read_text()
    make_client(demo, user=False)
    assert key.read_text() == first  # kept, so sessions survive a restart


# --- pages ----------------------------------------------------------------------------------------------


def test_overview(staff: TestClient) -> None:
    page = staff.get(f"{C}/")
    assert page.status_code == 200
    text = page.text
    assert "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023" in text
    assert "Hạn nộp:</b> 17:00 ngày 05/12/2023" in text
    assert "Đã quá hạn 1 ngày 14 giờ" in text  # the demo clock: 07:30 on 07/12/2023
    for group in ("Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học", "Tổng cộng"):
        assert group in text
    assert "Đúng hạn: <b>5</b> · Nộp muộn: <b>1</b> · Chưa nộp: <b>11</b>" in text  # THPT
    assert 'aria-label="THPT: đúng hạn 5, nộp muộn 1, chưa nộp 11 trên 17 đơn vị"' in text
    assert "Thư chờ cán bộ xem xét (1)" in text


def test_overview_counts_down_before_the_deadline(demo: Settings) -> None:
    client = TestClient(create_app(demo, store.connect(demo.db_url), now=datetime(2023, 12, 3, 15, 0, tzinfo=ZONE)))
    auth.set_password(store.connect(demo.db_url), USER, PASSWORD, actor="test")
    login(client)
    assert "Còn 2 ngày 2 giờ" in client.get(f"{C}/").text


def test_institutions_table_search_filter_sort(staff: TestClient) -> None:
    everything = staff.get(f"{C}/institutions").text
    assert 'Tìm thấy <b id="so-ket-qua">41</b> đơn vị' in everything
    head = everything.split("<thead>")[1].split("</thead>")[0]
    for header in (
        "STT",
        "Mã đơn vị",
        "Tên đơn vị",
        "Tệp Word",
        "Thời điểm nộp lần đầu",
        "Số lần nộp",
        "Bản có dấu đỏ",
        "Nhận diện",
        "Lưu ý",
    ):
        assert header in head
    assert "Tệp đã nhận" not in head and "Trích yếu" not in head  # on the institution's page, or on request
    full = staff.get(f"{C}/institutions", params={"columns": "all"}).text.split("<thead>")[1].split("</thead>")[0]
    assert all(h in full for h in ("Tệp đã nhận", "Văn bản (số, ngày)", "Trích yếu", "Người ký", "Lưu ý"))
    found = staff.get(f"{C}/institutions", params={"q": "ngo quyen"}).text  # no diacritics typed
    assert "Trường THPT Ngô Quyền" in found and "Phòng GDĐT quận Ngô Quyền" in found
    assert "Trường THPT Thái Phiên" not in found
    assert (
        staff.get(f"{C}/institutions", params={"q": "trung hoc pho thong ngô quyền"}).text.count(
            "/institutions/THPT-NQ"
        )
        == 1
    )  # abbreviations unified as in mailbot.text.fold
    assert "THPT-NQ" in staff.get(f"{C}/institutions", params={"q": "thpt-nq"}).text
    late = staff.get(f"{C}/institutions", params={"status": "late"}).text
    assert "Trường THPT Tiên Lãng" in late and "Trường THPT Ngô Quyền" not in late
    thpt_missing = staff.get(f"{C}/institutions", params={"group": "THPT", "status": "missing"}).text
    assert 'Tìm thấy <b id="so-ket-qua">11</b>' in thpt_missing and "Phòng GDĐT" not in thpt_missing.split("<tbody>")[1]
    by_count = staff.get(f"{C}/institutions", params={"sort": "count", "dir": "desc"}).text
    first_row = by_count.split("<tbody>")[1].split("</tr>")[0]
    assert "PGD-HB" in first_row  # the only one that sent twice
    assert 'aria-sort="descending"' in by_count
    by_name = staff.get(f"{C}/institutions", params={"sort": "name"}).text.split("<tbody>")[1]
    names = re.findall(r'class="name"[^>]*><a [^>]*>([^<]+)</a>', by_name)
    assert len(names) == 41 and names[0].startswith("Phòng GDĐT huyện")
    nothing = staff.get(f"{C}/institutions", params={"q": "khong co don vi nao nhu the"}).text
    assert "Không có đơn vị nào phù hợp" in nothing
    bad = staff.get(f"{C}/institutions", params={"status": "<script>", "sort": "x", "page": "abc"})
    assert bad.status_code == 200 and "<script>" not in bad.text.split("<main")[1].split("</main>")[0]


def test_institution_page(staff: TestClient) -> None:
    page = staff.get(f"{C}/institutions/PGD-HB")
    assert page.status_code == 200
    text = page.text
    assert "<h1>Phòng GDĐT quận Hồng Bàng</h1>" in text
    assert "Bản mới nhất" in text and "Bản nộp trước" in text
    ids = re.findall(r'href="/files/(\d+)"', text)
    assert len(ids) == 2
    assert "Xác nhận đã nhận báo cáo" in text  # the receipts sent to it
    assert "Đơn vị chưa được gia hạn" in text
    assert staff.get(f"{C}/institutions/KHONG-CO").status_code == 404
    assert staff.get("/c/khong-co-dot-nay/").status_code == 404
    missing = staff.get(f"{C}/institutions/THPT-TPH").text
    assert "Đơn vị chưa gửi báo cáo cho đợt này." in missing


def test_pages_read_as_staff_write(staff: TestClient, demo: Settings) -> None:
    """Campaign titles instead of ids, spaces between words, groups in the overview's order."""
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": "08/12/2023 17:00"})
    overview = staff.get(f"{C}/").text
    assert "Mã đợt" not in overview and f"{CAMPAIGN}." not in overview
    recent = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", overview.split("Thay đổi gần đây")[1]))
    assert "Trường THPT Tiên Lãng đến 17:00 ngày 08/12/2023" in recent
    review = staff.get(f"{C}/review").text
    groups = re.findall(r'<optgroup label="([^"]+)"', review)
    overview_groups = [unquote_plus(g) for g in re.findall(r"/institutions\?group=([^\"]+)\"", overview)]
    assert groups == overview_groups == ["Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học"]


def test_a_huge_subject_is_cut_on_the_page_and_kept_whole(staff: TestClient, demo: Settings) -> None:
    engine = store.connect(demo.db_url)
    pk = review_pk(demo)
    subject = "Báo cáo " + "rất-dài-" * 2500  # 20,000 characters, one endless word
    with engine.begin() as conn:
        conn.execute(update(store.messages).where(store.messages.c.id == pk).values(subject=subject))
    page = staff.get(f"{C}/review").text
    heading = page.split(f'id="tieu-de-{pk}">')[1].split("</h2>")[0]
    assert heading.endswith("…") and len(heading) < 400
    assert page.count("rất-dài-") < 100
    with engine.connect() as conn:
        assert conn.execute(select(store.messages.c.subject).where(store.messages.c.id == pk)).scalar() == subject


def test_review_page_lists_the_held_message(staff: TestClient, demo: Settings) -> None:
    pk = review_pk(demo)
    text = staff.get(f"{C}/review").text
    assert f"Thư số {pk}: gửi báo cáo" in text
    assert REVIEW_SENDER in text and "không nhận ra đơn vị gửi" in text
    assert "Bao cao.docx" in text and f"/messages/{pk}/original.eml" in text
    assert 'value="THPT-TPH" data-k="thpt tph truong thpt thai phien' in text  # searchable without diacritics
    assert f"Ghi nhớ địa chỉ {REVIEW_SENDER}" in text


def test_log_page_shows_logins(staff: TestClient) -> None:
    text = staff.get(f"{C}/log").text
    assert "Nhật ký thay đổi" in text and "Đăng nhập" in text and USER in text


# --- changes --------------------------------------------------------------------------------------------


def test_assign_a_held_message(staff: TestClient, demo: Settings) -> None:
    pk = review_pk(demo)
    csrf = csrf_of(staff.get(f"{C}/review").text)
    r = staff.post(
        f"{C}/review/{pk}/assign", data={"csrf": csrf, "code": "THPT-TPH", "learn": "1"}, follow_redirects=False
    )
    assert r.status_code == 303 and r.headers["location"] == f"{C}/review"
    message = flash(staff, f"{C}/review")
    assert message == (
        f"ok: Đã giao thư số {pk} cho Trường THPT Thái Phiên: tính vào đợt {CAMPAIGN} (đúng hạn); "
        f"đã ghi nhớ địa chỉ {REVIEW_SENDER}; thư xác nhận sẽ được gửi tới {REVIEW_SENDER}."
    )
    assert "Không có thư nào đang chờ cán bộ xem xét." in staff.get(f"{C}/review").text
    inst = next(i for i in status_of(demo)["institutions"] if i["code"] == "THPT-TPH")
    assert inst["status"] == "on_time" and inst["identified_by"] == "staff"
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        action = conn.execute(staff_actions()).one()
        assert (action.action, action.actor, action.message_pk) == ("assign", USER, pk)
        assert store.learned_addresses(conn)[REVIEW_SENDER] == "THPT-TPH"
        # the receipt the README promises, queued with the decision, threaded to the held message, to its sender
        (receipt,) = conn.execute(
            select(store.outbox).where(store.outbox.c.message_pk == pk, store.outbox.c.kind == "ack")
        ).all()
        held_id = conn.execute(select(store.messages.c.message_id).where(store.messages.c.id == pk)).scalar_one()
    sent = email.message_from_bytes(receipt.raw, policy=email.policy.default)
    assert receipt.recipients == [REVIEW_SENDER] and receipt.status == "pending"
    assert sent["In-Reply-To"] == held_id and held_id in sent["References"] and sent["Subject"].startswith("Re: ")
    assert "Đơn vị gửi: Trường THPT Thái Phiên (THPT-TPH)" in sent.get_body(("plain",)).get_content()
    page = staff.get(f"{C}/institutions/THPT-TPH").text
    assert "Giao thư cho đơn vị" in page and f"<b>{USER}</b>" in page and f"ghi nhớ địa chỉ {REVIEW_SENDER}" in page
    assert "Cán bộ xác nhận" in page
    # a second click changes nothing
    again = staff.post(f"{C}/review/{pk}/assign", data={"csrf": csrf, "code": "THPT-NQ"}, follow_redirects=False)
    assert again.status_code == 303
    assert "đã được xử lý trước đó" in flash(staff, f"{C}/review")
    with engine.connect() as conn:
        assert len(conn.execute(staff_actions()).all()) == 1


def test_assign_refuses_unknown_codes_and_messages(staff: TestClient, demo: Settings) -> None:
    pk = review_pk(demo)
    csrf = csrf_of(staff.get(f"{C}/review").text)
    staff.post(f"{C}/review/{pk}/assign", data={"csrf": csrf, "code": "KHONG-CO"}, follow_redirects=False)
    assert "không có đơn vị này trong danh sách" in flash(staff, f"{C}/review")
    staff.post(f"{C}/review/{pk}/assign", data={"csrf": csrf, "code": ""}, follow_redirects=False)
    assert "Vui lòng chọn đơn vị" in flash(staff, f"{C}/review")
    assert staff.post(f"{C}/review/99999/assign", data={"csrf": csrf, "code": "THPT-NQ"}).status_code == 404
    assert staff.post(f"{C}/review/abc/assign", data={"csrf": csrf, "code": "THPT-NQ"}).status_code == 404
    for huge in ("9999999999999999999999", "9223372036854775808", "0"):
        assert staff.post(f"{C}/review/{huge}/assign", data={"csrf": csrf, "code": "THPT-NQ"}).status_code == 404
    assert status_of(demo)["review"]  # still held


def test_grant_an_extension(staff: TestClient, demo: Settings) -> None:
    before = next(i for i in status_of(demo)["institutions"] if i["code"] == "THPT-TL")
    assert before["status"] == "late"
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    r = staff.post(
        f"{C}/extension",
        data={"csrf": csrf, "code": "THPT-TL", "until": "2023-12-07T17:00", "reason": "  mất   điện  "},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"{C}/institutions/THPT-TL"
    page = staff.get(f"{C}/institutions/THPT-TL").text
    assert "Đã gia hạn nộp báo cáo đến 17:00 ngày 07/12/2023." in page
    assert "Đơn vị được gia hạn đến <b>17:00 ngày 07/12/2023</b> — lý do: mất điện." in page
    assert f"Ghi nhận bởi {USER}" in page and "Gia hạn nộp</li>" not in page
    assert f"<b>{USER}</b>: Gia hạn nộp" in page
    after = next(i for i in status_of(demo)["institutions"] if i["code"] == "THPT-TL")
    assert after["status"] == "on_time" and after["deadline"] == "2023-12-07T17:00:00+07:00"
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        ext = conn.execute(select(store.extensions)).one()
        assert ext.actor == USER and ext.reason == "mất điện"
        assert conn.execute(staff_actions(store.actions.c.actor, store.actions.c.action)).one() == (USER, "extend")
    # the overview and the table show it at once (the snapshot follows the database)
    assert "1 đơn vị được gia hạn riêng" in staff.get(f"{C}/").text
    assert "Gia hạn đến 17:00 ngày 07/12/2023" in staff.get(f"{C}/institutions", params={"q": "tien lang"}).text
    # changing it again, typed as staff write dates (the form shows and takes dd/mm/yyyy hh:mm)
    page = staff.get(f"{C}/institutions/THPT-TL").text
    assert 'type="text" id="until"' in page and 'value="07/12/2023 17:00"' in page
    staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": " 09/12/2023  08:00 "})
    assert "Đơn vị được gia hạn đến <b>08:00 ngày 09/12/2023</b>" in staff.get(f"{C}/institutions/THPT-TL").text


def test_an_extension_tells_the_school_its_new_deadline_when_staff_ask(staff: TestClient, demo: Settings) -> None:
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    assert 'name="notify" value="1" checked' in staff.get(f"{C}/institutions/THPT-TL").text  # asked by default
    engine = store.connect(demo.db_url)
    o = store.outbox

    def notices() -> list:  # type: ignore[type-arg]
        with engine.connect() as conn:
            return conn.execute(select(o).where(o.c.kind == "extension").order_by(o.c.id)).all()

    staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": "06/12/2023 17:00"})
    assert notices() == []  # the box unticked: recorded, nobody mailed
    grant = {"csrf": csrf, "code": "THPT-TL", "until": "07/12/2023 17:00", "reason": "mất điện", "notify": "1"}
    staff.post(f"{C}/extension", data=grant, follow_redirects=False)
    (row,) = notices()
    with engine.connect() as conn:
        emails = conn.execute(
            select(store.institutions.c.emails).where(store.institutions.c.code == "THPT-TL")
        ).scalar()
    assert row.recipients == emails and emails and row.status == "pending"
    assert "Thư báo gia hạn cho đơn vị đã được đưa vào hàng đợi gửi" in flash(staff, f"{C}/institutions/THPT-TL")
    sent = email.message_from_bytes(row.raw, policy=email.policy.default)
    assert sent["Subject"].startswith("Gia hạn nộp báo cáo: ") and sent["Subject"].endswith("(hạn mới 07/12/2023)")
    text = sent.get_body(("plain",)).get_content()
    assert "cho quý đơn vị đến 17:00 ngày 07/12/2023 (lý do: mất điện)" in text
    assert "Hạn nộp chung của đợt báo cáo là 17:00 ngày 05/12/2023" in text
    staff.post(f"{C}/extension", data=grant)  # the same deadline again: the school was told already
    assert len(notices()) == 1
    staff.post(f"{C}/extension", data={**grant, "until": "08/12/2023 17:00"})  # moved: told again
    assert len(notices()) == 2 and "08/12/2023" in notices()[1].subject
    no_address = {**grant, "code": "DV-HN"}  # on the roster without an email address
    staff.post(f"{C}/extension", data=no_address, follow_redirects=False)
    assert "chưa gửi được thư báo gia hạn" in flash(staff, f"{C}/institutions/DV-HN")
    assert notices()[-1].status == "failed" and len(notices()) == 3  # staff see on its page that it was not told


def test_extension_needs_a_valid_date_and_a_known_code(staff: TestClient, demo: Settings) -> None:
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    for wrong in ("ngày mai", "31/02/2023 17:00", "12/31/2023 17:00", "08/12/2023 25:00"):
        staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": wrong}, follow_redirects=False)
        message = flash(staff, f"{C}/institutions/THPT-TL")
        assert "Thời hạn mới không hợp lệ" in message and "ví dụ 08/12/2023 17:00" in message, wrong
    r = staff.post(f"{C}/extension", data={"csrf": csrf, "code": "KHONG-CO", "until": "2023-12-09T08:00"})
    assert r.status_code == 404
    with store.connect(demo.db_url).connect() as conn:
        assert conn.execute(select(store.extensions)).first() is None


@pytest.mark.parametrize(
    "until, words",
    [
        ("0001-01-01T00:00", "phải sau hạn nộp chung của đợt báo cáo (17:00 ngày 05/12/2023)"),
        ("2023-12-01T08:00", "phải sau hạn nộp chung của đợt báo cáo (17:00 ngày 05/12/2023)"),
        ("2023-12-05T17:00", "phải sau hạn nộp chung của đợt báo cáo (17:00 ngày 05/12/2023)"),
        ("2023-12-05T11:00+01:00", "phải sau hạn nộp chung"),  # the same moment, written in another zone
        ("9999-12-31T23:59", "không được quá một năm sau hạn nộp chung của đợt báo cáo"),
        ("2024-12-06T17:00", "không được quá một năm sau hạn nộp chung của đợt báo cáo"),
    ],
)
def test_extension_must_follow_the_campaign_deadline(staff: TestClient, demo: Settings, until: str, words: str) -> None:
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    r = staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": until}, follow_redirects=False)
    assert r.status_code == 303
    message = flash(staff, f"{C}/institutions/THPT-TL")
    assert message.startswith("error: Thời hạn mới ") and words in message, message
    with store.connect(demo.db_url).connect() as conn:
        assert conn.execute(select(store.extensions)).first() is None
        assert conn.execute(staff_actions()).first() is None


def test_extension_limits_are_inclusive_of_a_year(staff: TestClient, demo: Settings) -> None:
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    for until in ("2023-12-05T17:01", "2024-12-05T17:00"):  # just after the deadline; a year after it
        staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": until}, follow_redirects=False)
        assert flash(staff, f"{C}/institutions/THPT-TL").startswith("ok: Đã gia hạn nộp báo cáo đến ")


def test_cli_extend_refuses_a_deadline_before_the_campaign_one(demo: Settings) -> None:
    config_path = demo.data_dir.parent / "mailbot.toml"
    for until in ("2023-12-01T08:00", "0001-01-01", "9999-12-31T23:59"):
        done = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config_path), "extend", "THPT-TL", "--until", until],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1 and done.stdout == ""
        assert done.stderr.startswith("error: the new deadline ") and done.stderr.count("\n") == 1, done.stderr
        assert "campaign deadline 2023-12-05T17:00:00+07:00" in done.stderr
    with store.connect(demo.db_url).connect() as conn:
        assert conn.execute(select(store.extensions)).first() is None


# --- downloads ------------------------------------------------------------------------------------------


def test_tracker_download_is_a_workbook(staff: TestClient) -> None:
    r = staff.get(f"{C}/tracker.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert r.headers["content-disposition"].startswith('attachment; filename="theo-doi-antq-2023-20231207-0730.xlsx"')
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames[0] == "Tổng hợp" and "THPT" in wb.sheetnames and "Thư chờ cán bộ xem xét" in wb.sheetnames
    assert wb["Tổng hợp"]["A1"].value.startswith("Báo cáo sơ kết")


def test_zip_lists_latest_reports_by_group(staff: TestClient, demo: Settings) -> None:
    r = staff.get(f"{C}/reports.zip")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    zf = zipfile.ZipFile(io.BytesIO(r.content))
    assert zf.testzip() is None
    names = zf.namelist()
    assert "antq-2023/THPT/THPT-NQ - Trường THPT Ngô Quyền/baocao_ANTQ_2023.docx" in names
    groups = {n.split("/")[1] for n in names}
    assert groups == {"Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học"}
    submitted = [i for i in status_of(demo)["institutions"] if i["submissions"]]
    assert {n.split("/")[2].split(" - ")[0] for n in names} == {i["code"] for i in submitted}
    hb = [n for n in names if "/PGD-HB - " in n]
    assert hb == [
        "antq-2023/Phòng GDĐT/PGD-HB - Phòng GDĐT quận Hồng Bàng/BC so ket ANTQ 2023 - PGD Hong Bang (sua lai).docx"
    ]
    nq = next(i for i in submitted if i["code"] == "THPT-NQ")
    on_disk = (demo.archive_dir / nq["submissions"][-1]["files"][0]["path"]).read_bytes()
    assert zf.read("antq-2023/THPT/THPT-NQ - Trường THPT Ngô Quyền/baocao_ANTQ_2023.docx") == on_disk


def test_zip_notes_files_missing_from_the_archive(staff: TestClient, demo: Settings) -> None:
    nq = next(i for i in status_of(demo)["institutions"] if i["code"] == "THPT-NQ")
    (demo.archive_dir / nq["submissions"][-1]["files"][0]["path"]).unlink()
    zf = zipfile.ZipFile(io.BytesIO(staff.get(f"{C}/reports.zip").content))
    assert "TỆP BỊ THIẾU.txt" in zf.namelist()
    assert "THPT-NQ - Trường THPT Ngô Quyền" in zf.read("TỆP BỊ THIẾU.txt").decode("utf-8")


def test_file_download_by_id(staff: TestClient, demo: Settings) -> None:
    engine = store.connect(demo.db_url)
    f = store.files
    with engine.connect() as conn:
        row = conn.execute(select(f).where(f.c.path != "").order_by(f.c.id)).first()
    r = staff.get(f"/files/{row.id}")
    assert r.status_code == 200
    assert r.content == (demo.archive_dir / row.path).read_bytes()
    assert r.headers["content-disposition"].startswith("attachment;")
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats-officedocument.wordprocessingml")
    pk = review_pk(demo)
    eml = staff.get(f"/messages/{pk}/original.eml")
    assert eml.status_code == 200 and REVIEW_SENDER.encode() in eml.content


@pytest.mark.parametrize(
    "path",
    [
        "/files/../../etc/passwd",
        "/files/..%2F..%2Fetc%2Fpasswd",
        "/files/%2e%2e/%2e%2e/etc/passwd",
        "/files/abc",
        "/files/-1",
        "/files/1.0",
        "/files/0x1",
        "/files/99999",
        "/files/1/../../../etc/passwd",
        "/messages/abc/original.eml",
        "/messages/99999/original.eml",
        "/files//etc/passwd",
        f"{C}/institutions/..%2F..%2Fetc%2Fpasswd",
        # ids no row can have: past SQLite's integers, zero, negative, absurdly long
        "/files/9999999999999999999999",
        "/files/9223372036854775808",
        "/files/0",
        "/files/-9999999999999999999999",
        "/files/" + "9" * 5000,
        "/messages/9999999999999999999999/original.eml",
        "/messages/0/original.eml",
    ],
)
def test_traversal_and_foreign_ids_are_refused(staff: TestClient, path: str) -> None:
    r = staff.get(path)
    assert r.status_code == 404
    assert b"root:" not in r.content


def test_rows_pointing_outside_the_archive_are_refused(staff: TestClient, demo: Settings, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0")
    engine = store.connect(demo.db_url)
    f = store.files
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(f.c.id).where(f.c.path != "").order_by(f.c.id).limit(3))]
    link = demo.archive_dir / "link-out"
    link.symlink_to(secret)
    with store.atomic(engine) as conn:
        conn.execute(update(f).where(f.c.id == ids[0]).values(path="../../../../../../etc/passwd"))
        conn.execute(update(f).where(f.c.id == ids[1]).values(path=str(secret)))
        conn.execute(update(f).where(f.c.id == ids[2]).values(path="link-out"))
    for file_id in ids:
        r = staff.get(f"/files/{file_id}")
        assert r.status_code == 404 and b"root:" not in r.content


# --- reverse proxy --------------------------------------------------------------------------------------


def test_path_prefix(demo: Settings) -> None:
    settings = demo.model_copy(update={"web": WebSettings(path_prefix="/mailbot")})
    client = make_client(settings)
    r = client.get("/mailbot/c/antq-2023/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/mailbot/login?next=%2Fmailbot%2Fc%2F")
    done = login(client, prefix="/mailbot")
    assert done.status_code == 303 and done.headers["location"] == "/mailbot/"
    assert "Path=/mailbot" in done.headers["set-cookie"]
    page = client.get("/mailbot/c/antq-2023/institutions")
    assert page.status_code == 200
    links = re.findall(r'(?:href|action)="([^"#]+)"', page.text)
    assert links and all(link.startswith("/mailbot/") or link.startswith("data:") for link in links), links
    # a proxy that strips the prefix reaches the same pages
    assert client.get("/c/antq-2023/").status_code == 200


def test_https_only_marks_the_cookie_secure(demo: Settings) -> None:
    settings = demo.model_copy(update={"web": WebSettings(https_only=True)})
    client = make_client(settings)
    client.base_url = "https://testserver"  # type: ignore[assignment]
    assert "Secure" in login(client).headers["set-cookie"]


# --- command line ---------------------------------------------------------------------------------------


def test_cli_user_add(demo: Settings) -> None:
    config_path = demo.data_dir.parent / "mailbot.toml"
    runner = CliRunner()
    made = runner.invoke(
        cli, ["--config", str(config_path), "user", "add", "Thu.Ha", "--password-stdin"], input="mot-mat-khau-dai\n"
    )
    assert made.exit_code == 0, made.output
    assert "account thu.ha created" in made.output
    prompted = runner.invoke(
        cli, ["--config", str(config_path), "user", "add", "thu.ha"], input="mat-khau-khac-nua\nmat-khau-khac-nua\n"
    )
    assert prompted.exit_code == 0 and "updated" in prompted.output
    engine = store.connect(demo.db_url)
    assert auth.authenticate(engine, "thu.ha", "mat-khau-khac-nua") is not None
    assert auth.authenticate(engine, "thu.ha", "mot-mat-khau-dai") is None
    with engine.connect() as conn:
        stored = conn.execute(select(store.web_users.c.password_hash)).scalar_one()
    assert stored.startswith("$argon2id$") and "mat-khau" not in stored
    short = runner.invoke(cli, ["--config", str(config_path), "user", "add", "x", "--password-stdin"], input="ngan\n")
    assert short.exit_code != 0


def cli_user(config_path: Path, *args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(cli, ["--config", str(config_path), "user", *args])


def test_cli_user_disable_enable_remove(staff: TestClient, demo: Settings) -> None:
    config_path = demo.data_dir.parent / "mailbot.toml"
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 200
    off = cli_user(config_path, "disable", "Lan.Nguyen")
    assert off.exit_code == 0 and off.output == "account lan.nguyen disabled, sessions ended\n"
    # the open session ends at once, and the right password no longer logs in
    r = staff.get(f"{C}/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert "không đúng" in login(staff).text
    assert cli_user(config_path, "disable", USER).output == "account lan.nguyen was already disabled\n"
    on = cli_user(config_path, "enable", USER)
    assert on.exit_code == 0 and on.output == "account lan.nguyen enabled\n"
    assert login(staff).status_code == 303  # the old password again
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 200
    gone = cli_user(config_path, "remove", USER)
    assert gone.exit_code == 0 and gone.output == "account lan.nguyen removed, sessions ended\n"
    assert staff.get(f"{C}/", follow_redirects=False).status_code == 303
    assert "không đúng" in login(staff).text
    engine = store.connect(demo.db_url)
    with engine.connect() as conn:
        assert conn.execute(select(store.web_users)).first() is None
        assert conn.execute(select(store.web_sessions)).first() is None
        events = [
            (r.event, r.actor, r.detail) for r in conn.execute(select(store.web_events).order_by(store.web_events.c.id))
        ]
    # the record of what the account did stays, with who changed it
    assert [e for e, _, _ in events if e.startswith("user_")] == [
        "user_added",
        "user_disabled",
        "user_enabled",
        "user_removed",
    ]
    assert [e for e, actor, _ in events if actor == USER].count("login") == 2
    assert all(actor.startswith("cli:") for e, actor, _ in events if e in ("user_disabled", "user_removed"))
    # the log page names the new events in Vietnamese
    auth.set_password(engine, "minh.tran", "mat-khau-cua-minh", actor="test")
    other = TestClient(staff.app)
    login(other, "minh.tran", "mat-khau-cua-minh")
    page = other.get(f"{C}/log").text
    assert "Khóa tài khoản" in page and "Mở lại tài khoản" in page and "Xóa tài khoản" in page


def test_cli_user_commands_on_unknown_accounts(demo: Settings) -> None:
    config_path = demo.data_dir.parent / "mailbot.toml"
    for action in ("disable", "enable", "remove"):
        done = subprocess.run(
            [sys.executable, "-m", "mailbot", "--config", str(config_path), "user", action, "khong.co"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 1 and done.stderr == "error: no web account named 'khong.co'\n", done.stderr


def test_web_settings_from_the_config_file(tmp_path: Path) -> None:
    raw = {
        "inbox": {"kind": "maildir", "path": "Maildir"},
        "web": {
            "host": "0.0.0.0",
            "port": 9000,
            "path_prefix": "/mailbot",
            "secret_key_file": "k/web.key",
            "session_hours": 8,
            "https_only": True,
        },
        "campaign": [{"id": "x", "title": "X", "deadline": datetime(2023, 12, 5, 17, 0)}],
    }
    s = config.parse(raw, tmp_path)
    assert (s.web.host, s.web.port, s.web.path_prefix, s.web.https_only) == ("0.0.0.0", 9000, "/mailbot", True)
    assert s.web.secret_key_file == (tmp_path / "k" / "web.key").resolve()
    default = config.parse({**raw, "web": {}}, tmp_path)
    assert (default.web.host, default.web.port, default.web.path_prefix) == ("127.0.0.1", 8080, "")
    with pytest.raises(Exception, match="path_prefix"):
        config.parse({**raw, "web": {"path_prefix": "mailbot/"}}, tmp_path)
    proxies = config.parse({**raw, "web": {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8", "::1"]}}, tmp_path)
    assert proxies.web.trusted_proxies == ("127.0.0.1/32", "10.0.0.0/8", "::1/128")
    assert default.web.trusted_proxies == ()
    with pytest.raises(ConfigError, match=r"web\.trusted_proxies: 'nginx' is not an IP address or network"):
        config.parse({**raw, "web": {"trusted_proxies": ["nginx"]}}, tmp_path)


def test_status_json_unchanged_by_the_pages(staff: TestClient, demo: Settings) -> None:
    before = json.dumps(status_of(demo), sort_keys=True)
    for path in PROTECTED_GETS[1:]:
        staff.get(path)
    assert json.dumps(status_of(demo), sort_keys=True) == before


def test_campaign_chooser_with_several_campaigns(demo: Settings) -> None:
    from mailbot.config import CampaignSettings

    other = CampaignSettings(
        id="tk-2024", title="Báo cáo tổng kết năm học 2023-2024", deadline=datetime(2024, 6, 15, 17, 0)
    )
    settings = demo.model_copy(update={"campaign": (*demo.campaign, other)})
    client = make_client(settings)
    login(client)
    page = client.get("/")
    assert page.url.path == f"{C}/"  # the one whose deadline is nearest to the clock
    assert "Đợt báo cáo:" in page.text and 'href="/c/tk-2024/"' in page.text
    second = client.get("/c/tk-2024/")
    assert second.status_code == 200 and "Báo cáo tổng kết năm học 2023-2024" in second.text
    assert "Còn 191 ngày 9 giờ" in second.text


def test_consolidation_workbook_download(demo: Settings, staff: TestClient) -> None:
    """The same consolidation as `mailbot compile`, one click away, and not without login."""
    import io

    import openpyxl

    got = staff.get("/c/antq-2023/consolidation.xlsx")
    assert got.status_code == 200
    assert openpyxl.load_workbook(io.BytesIO(got.content)).sheetnames[0] == "Tổng hợp"
    anonymous = make_client(demo, user=False)
    assert anonymous.get("/c/antq-2023/consolidation.xlsx", follow_redirects=False).status_code in (302, 303)
