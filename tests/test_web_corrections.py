"""The web pages for staff corrections (#12 item 5) over HTTP: assigning a held message when several campaigns are
open, dismissing one and putting it back, confirming or rejecting a submission identified by name, removing an
extension. Each route: login required, CSRF checked, Vietnamese validation messages, the change made and logged."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from mailbot import config, store
from mailbot.campaigns import catalog
from mailbot.config import Settings
from mailbot.reports.status import as_json, campaign_status
from tests.test_web import (  # noqa: F401 - fixtures
    CAMPAIGN,
    REVIEW_SENDER,
    USER,
    C,
    TestClient,
    client,
    csrf_of,
    demo,
    demo_master,
    flash,
    login,
    make_client,
    review_pk,
    staff,
    staff_actions,
    status_of,
)

SECOND = "thidua-2023"
SECOND_CAMPAIGN = f"""
[[campaign]]
id = "{SECOND}"
title = "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023"
opens = 2023-11-01T00:00:00
deadline = 2023-12-10T17:00:00
"""
NEW_POSTS = [
    f"{C}/review/1/dismiss",
    f"{C}/review/1/restore",
    f"{C}/confirm",
    f"{C}/reject",
    f"{C}/extension/remove",
]


def inst_status(settings: Settings, code: str, campaign: str = CAMPAIGN) -> dict:  # type: ignore[type-arg]
    engine = store.connect(settings.db_url)
    wanted = catalog.load(engine, settings).get(campaign)
    return next(i for i in as_json(campaign_status(engine, wanted))["institutions"] if i["code"] == code)


def logged_actions(settings: Settings) -> list[tuple[str, str, int | None]]:
    a = store.actions
    with store.connect(settings.db_url).connect() as conn:
        return [tuple(r) for r in conn.execute(staff_actions(a.c.action, a.c.actor, a.c.message_pk))]  # type: ignore[misc]


@pytest.fixture
def two_open(demo: Settings) -> Settings:  # noqa: F811
    path = demo.data_dir.parent / "mailbot.toml"
    path.write_text(path.read_text(encoding="utf-8") + SECOND_CAMPAIGN, encoding="utf-8")
    return config.load(path)


@pytest.fixture
def staff2(two_open: Settings) -> TestClient:
    client = make_client(two_open)
    assert login(client).status_code == 303
    return client


@pytest.mark.parametrize("path", NEW_POSTS)
def test_new_routes_need_a_login(client: TestClient, demo: Settings, path: str) -> None:  # noqa: F811
    r = client.post(path, data={"code": "THPT-NQ", "reason": "spam", "csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert logged_actions(demo) == []


@pytest.mark.parametrize("path", NEW_POSTS)
def test_new_routes_refuse_a_wrong_csrf_token(staff: TestClient, demo: Settings, path: str) -> None:  # noqa: F811
    pk = review_pk(demo)
    path = path.replace("/review/1/", f"/review/{pk}/")
    for data in ({"code": "THPT-NQ", "reason": "spam"}, {"code": "THPT-NQ", "reason": "spam", "csrf": "sai"}):
        r = staff.post(path, data=data, follow_redirects=False)
        assert r.status_code == 403 and "Biểu mẫu đã hết hiệu lực" in r.text
    assert logged_actions(demo) == []
    assert status_of(demo)["review"] and inst_status(demo, "THPT-NQ")["identified_by"] == "name"


def test_campaign_is_asked_only_when_several_are_open(staff: TestClient, staff2: TestClient) -> None:  # noqa: F811
    assert 'name="campaign"' not in staff.get(f"{C}/review").text
    page = staff2.get(f"{C}/review").text
    select_html = re.search(r'<select id="dot-\d+" name="campaign" required>(.*?)</select>', page, re.S)
    assert select_html is not None
    options = re.findall(r'<option value="([^"]*)">', select_html.group(1))
    assert options == ["", CAMPAIGN, SECOND]
    assert "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023 (hạn 17:00 ngày 10/12/2023)" in page


def test_assign_to_the_second_of_two_open_campaigns(staff2: TestClient, two_open: Settings) -> None:
    pk = review_pk(two_open)
    csrf = csrf_of(staff2.get(f"{C}/review").text)
    url = f"{C}/review/{pk}/assign"
    staff2.post(url, data={"csrf": csrf, "code": "THPT-TPH"}, follow_redirects=False)
    assert flash(staff2, f"{C}/review") == (
        f"error: Chưa giao được thư số {pk}: có nhiều đợt báo cáo đang mở cho đơn vị này "
        "(Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023; "
        "Báo cáo tổng kết công tác thi đua, khen thưởng năm 2023), vui lòng chọn đợt báo cáo."
    )
    staff2.post(url, data={"csrf": csrf, "code": "THPT-TPH", "campaign": "khong-co"}, follow_redirects=False)
    assert "không có đợt báo cáo đã chọn, vui lòng chọn lại" in flash(staff2, f"{C}/review")
    assert logged_actions(two_open) == [] and status_of(two_open)["review"]

    r = staff2.post(url, data={"csrf": csrf, "code": "THPT-TPH", "campaign": SECOND}, follow_redirects=False)
    assert r.status_code == 303
    assert flash(staff2, f"{C}/review") == (
        f"ok: Đã giao thư số {pk} cho Trường THPT Thái Phiên: tính vào đợt {SECOND} (đúng hạn); "
        f"thư xác nhận sẽ được gửi tới {REVIEW_SENDER}."
    )
    assert inst_status(two_open, "THPT-TPH", SECOND)["status"] == "on_time"
    assert inst_status(two_open, "THPT-TPH")["status"] == "missing"
    assert logged_actions(two_open) == [("assign", USER, pk)]
    o = store.outbox
    with store.connect(two_open.db_url).connect() as conn:
        (receipt,) = conn.execute(select(o).where(o.c.message_pk == pk, o.c.kind == "ack")).all()
    assert receipt.campaign_id == SECOND and receipt.recipients == [REVIEW_SENDER]


def test_dismiss_and_put_back(staff: TestClient, demo: Settings) -> None:  # noqa: F811
    pk = review_pk(demo)
    page = staff.get(f"{C}/review").text
    assert "Chưa có thư nào bị loại." in page
    csrf = csrf_of(page)
    staff.post(f"{C}/review/{pk}/dismiss", data={"csrf": csrf, "reason": "   "}, follow_redirects=False)
    assert flash(staff, f"{C}/review") == (
        f"error: Vui lòng ghi lý do loại thư số {pk} (ví dụ: thư quảng cáo, thư hỏi đáp)."
    )
    r = staff.post(f"{C}/review/{pk}/dismiss", data={"csrf": csrf, "reason": " thư  hỏi đáp "}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{C}/review"
    assert flash(staff, f"{C}/review") == f"ok: Đã loại thư số {pk} khỏi danh sách chờ xem xét (lý do: thư hỏi đáp)."
    page = staff.get(f"{C}/review").text
    assert "Không có thư nào đang chờ cán bộ xem xét." in page
    assert f'id="da-loai-{pk}"' in page and "Lý do loại: thư hỏi đáp" in page and USER in page
    assert status_of(demo)["review"] == []
    # a second click: nothing more
    staff.post(f"{C}/review/{pk}/dismiss", data={"csrf": csrf, "reason": "x"}, follow_redirects=False)
    assert "không còn trong danh sách chờ xem xét" in flash(staff, f"{C}/review")

    staff.post(f"{C}/review/{pk}/restore", data={"csrf": csrf}, follow_redirects=False)
    page = staff.get(f"{C}/review").text
    assert f"Thư số {pk}: gửi báo cáo" in page and "Chưa có thư nào bị loại." in page
    staff.post(f"{C}/review/{pk}/restore", data={"csrf": csrf}, follow_redirects=False)
    assert "không nằm trong danh sách đã loại" in flash(staff, f"{C}/review")
    assert [r["from"] for r in status_of(demo)["review"]] == [REVIEW_SENDER]
    assert logged_actions(demo) == [("dismiss", USER, pk), ("undismiss", USER, pk)]
    assert staff.post(f"{C}/review/99999/dismiss", data={"csrf": csrf, "reason": "x"}).status_code == 404


def test_confirm_a_submission_identified_by_name(staff: TestClient, demo: Settings) -> None:  # noqa: F811
    page = staff.get(f"{C}/institutions/THPT-NQ").text
    assert "Cần xác nhận đơn vị gửi" in page and ">Xác nhận</button>" in page and ">Không đúng đơn vị</button>" in page
    assert "Cần xác nhận đơn vị gửi" not in staff.get(f"{C}/institutions/THPT-TPH").text
    csrf = csrf_of(page)
    r = staff.post(f"{C}/confirm", data={"csrf": csrf, "code": "THPT-NQ"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{C}/institutions/THPT-NQ"
    assert flash(staff, f"{C}/institutions/THPT-NQ").startswith("ok: Đã xác nhận báo cáo là của Trường THPT Ngô Quyền")
    after = inst_status(demo, "THPT-NQ")
    assert after["identified_by"] == "staff" and after["status"] == "on_time"
    (pk,) = [pk for action, _, pk in logged_actions(demo) if action == "confirm"]
    o = store.outbox
    with store.connect(demo.db_url).connect() as conn:  # the school has one receipt for it, whenever it was queued
        assert len(conn.execute(select(o).where(o.c.message_pk == pk, o.c.kind == "ack")).all()) == 1
    page = staff.get(f"{C}/institutions/THPT-NQ").text
    assert "Cần xác nhận đơn vị gửi" not in page and f"<b>{USER}</b>: Xác nhận đơn vị gửi" in page
    staff.post(f"{C}/confirm", data={"csrf": csrf, "code": "THPT-NQ"}, follow_redirects=False)
    assert flash(staff, f"{C}/institutions/THPT-NQ") == (
        "error: Đơn vị không có báo cáo nào chờ xác nhận (nhận diện theo tên) trong đợt này."
    )
    assert staff.post(f"{C}/confirm", data={"csrf": csrf, "code": "KHONG-CO"}).status_code == 404


def test_reject_returns_it_to_review(staff: TestClient, demo: Settings) -> None:  # noqa: F811
    assert inst_status(demo, "DV-HN")["status"] == "on_time"
    csrf = csrf_of(staff.get(f"{C}/institutions/DV-HN").text)
    staff.post(f"{C}/reject", data={"csrf": csrf, "code": "DV-HN"}, follow_redirects=False)
    message = flash(staff, f"{C}/institutions/DV-HN")
    assert message.startswith("ok: Đã ghi nhận thư số ") and "thư đã trở lại danh sách chờ xem xét." in message
    assert inst_status(demo, "DV-HN")["status"] == "missing"
    reasons = [r["reason"] for r in status_of(demo)["review"]]
    assert any(r.startswith("cán bộ xác định thư không phải của") and "(DV-HN)" in r for r in reasons)
    page = staff.get(f"{C}/review").text
    assert "cán bộ xác định thư không phải của" in page
    assert [a for a, _, _ in logged_actions(demo)] == ["reject"]


def test_remove_an_extension(staff: TestClient, demo: Settings) -> None:  # noqa: F811
    csrf = csrf_of(staff.get(f"{C}/institutions/THPT-TL").text)
    staff.post(f"{C}/extension/remove", data={"csrf": csrf, "code": "THPT-TL"}, follow_redirects=False)
    assert flash(staff, f"{C}/institutions/THPT-TL") == (
        "error: Đơn vị chưa được gia hạn trong đợt báo cáo này; không có gì để hủy."
    )
    staff.post(f"{C}/extension", data={"csrf": csrf, "code": "THPT-TL", "until": "07/12/2023 17:00"})
    assert inst_status(demo, "THPT-TL")["status"] == "on_time"
    page = staff.get(f"{C}/institutions/THPT-TL").text
    assert "Hủy gia hạn (áp dụng lại hạn chung 17:00 ngày 05/12/2023)" in page
    r = staff.post(f"{C}/extension/remove", data={"csrf": csrf, "code": "THPT-TL"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{C}/institutions/THPT-TL"
    page = staff.get(f"{C}/institutions/THPT-TL").text
    assert "Đã hủy gia hạn; hạn nộp của đơn vị trở lại hạn chung 17:00 ngày 05/12/2023." in page
    assert "Đơn vị chưa được gia hạn" in page and f"<b>{USER}</b>: Hủy gia hạn nộp" in page
    assert inst_status(demo, "THPT-TL")["status"] == "late"
    assert [a for a, _, _ in logged_actions(demo)] == ["extend", "extend_remove"]
    assert staff.post(f"{C}/extension/remove", data={"csrf": csrf, "code": "KHONG-CO"}).status_code == 404
