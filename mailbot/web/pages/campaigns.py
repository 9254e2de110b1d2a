"""Campaigns as staff manage them: the list (open, then closed ones as the archive), the create and edit form with
the plan and the report template, closing, and the call for reports (preview, then send)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import catalog
from mailbot.campaigns.catalog import CampaignProblem
from mailbot.errors import MailbotError, NotFound
from mailbot.models import Campaign, PaperMode
from mailbot.notify import announce
from mailbot.web.access import campaign_route, form, redirect, row_id, staff, user
from mailbot.web.core import Web, web_of
from mailbot.wording import INPUT_EXAMPLE, input_time, parse_input_time

PAPER_CHOICES = (
    (PaperMode.NONE.value, "Không yêu cầu (chỉ cần tệp Word)"),
    (PaperMode.PDF.value, "Tệp PDF (bản chụp hoặc bản ký số) gửi kèm thư"),
    (PaperMode.POST.value, "Bản giấy gửi qua đường bưu điện"),
    (PaperMode.EITHER.value, "Tệp PDF kèm thư hoặc bản giấy qua bưu điện"),
)
DATE_HINT = f"ngày/tháng/năm giờ:phút, ví dụ {INPUT_EXAMPLE}"


@dataclass
class FormState:
    """What the form shows: the values typed (kept on an error) and what is wrong with each."""

    values: dict[str, Any]
    problems: dict[str, str] = field(default_factory=dict)


@staff
async def campaign_list(request: Request) -> Response:
    web = web_of(request)
    found = await run_in_threadpool(web.catalog)
    words = dict(PAPER_CHOICES)
    return web.render(request, "campaigns.html", title="Các đợt báo cáo", found=found, paper_words=words)


@staff
async def new_form(request: Request) -> Response:
    web = web_of(request)
    return await _render_form(request, web, None, FormState(_blank(web)))


@staff
async def create(request: Request) -> Response:
    web = web_of(request)
    checked = form(request)
    state, draft = _read(checked, web, campaign_id=str(checked.get("id", "")).strip())
    uploads = await _uploads(checked, state)
    if draft is None or state.problems:
        return await _render_form(request, web, None, state, 400)
    try:
        campaign = await run_in_threadpool(catalog.add, web.engine, draft, actor=user(request), now=web.clock())
    except CampaignProblem as exc:
        state.problems.update(exc.problems)
        return await _render_form(request, web, None, state, 400)
    await _attach(web, campaign.id, uploads, user(request))
    web.cache.clear()
    return redirect(web, f"/c/{quote(campaign.id)}/settings", ("ok", f"Đã tạo đợt báo cáo “{campaign.title}”."))


@campaign_route
async def edit_form(request: Request, web: Web, campaign: Campaign) -> Response:
    return await _render_form(request, web, campaign, FormState(_values(campaign, web)))


@campaign_route
async def save(request: Request, web: Web, campaign: Campaign) -> Response:
    checked = form(request)
    state, draft = _read(checked, web, campaign_id=campaign.id)
    uploads = await _uploads(checked, state)
    if draft is None or state.problems:
        return await _render_form(request, web, campaign, state, 400)
    try:
        await run_in_threadpool(catalog.edit, web.engine, campaign.id, draft, actor=user(request), now=web.clock())
    except CampaignProblem as exc:
        state.problems.update(exc.problems)
        return await _render_form(request, web, campaign, state, 400)
    await _attach(web, campaign.id, uploads, user(request))
    web.cache.clear()
    return redirect(web, f"/c/{quote(campaign.id)}/settings", ("ok", "Đã lưu thông tin đợt báo cáo."))


@campaign_route
async def remove_file(request: Request, web: Web, campaign: Campaign) -> Response:
    file_id = row_id(request, "fid")
    try:
        await run_in_threadpool(catalog.detach, web.engine, campaign.id, file_id, actor=user(request), now=web.clock())
    except NotFound:
        raise HTTPException(404) from None
    return redirect(web, f"/c/{quote(campaign.id)}/settings", ("ok", "Đã bỏ tệp đính kèm."))


@campaign_route
async def close(request: Request, web: Web, campaign: Campaign) -> Response:
    reopen = form(request).get("reopen") == "1"
    await run_in_threadpool(catalog.close, web.engine, campaign.id, actor=user(request), now=web.clock(), reopen=reopen)
    web.cache.clear()
    message = (
        "Đã mở lại đợt báo cáo." if reopen else "Đã kết thúc đợt báo cáo; đợt được lưu trong mục các đợt đã kết thúc."
    )
    return redirect(web, f"/c/{quote(campaign.id)}/settings", ("ok", message))


@campaign_route
async def announce_preview(request: Request, web: Web, campaign: Campaign) -> Response:
    def load() -> tuple[announce.Announced, tuple[catalog.CampaignFile, ...]]:
        with web.engine.connect() as conn:
            files = catalog.files_of(conn, campaign.id)
        return announce.announce(web.settings, web.engine, campaign, web.clock(), dry_run=True), files

    planned, files = await run_in_threadpool(load)
    first = planned.queued[0].institution if planned.queued else None
    sample = announce.render(web.settings, campaign, first, files) if first else None
    return web.render(
        request,
        "announce.html",
        title="Gửi công văn / thông báo",
        campaign=campaign,
        planned=planned,
        files=files,
        sample=sample,
        page="settings",
    )


@campaign_route
async def announce_send(request: Request, web: Web, campaign: Campaign) -> Response:
    back = f"/c/{quote(campaign.id)}/announce"
    if campaign.closed is not None:
        return redirect(web, back, ("error", "Đợt báo cáo đã kết thúc, không gửi thông báo được nữa."))
    try:
        done = await run_in_threadpool(announce.announce, web.settings, web.engine, campaign, web.clock())
    except (MailbotError, OSError) as exc:
        return redirect(web, back, ("error", f"Chưa gửi được thông báo: {exc}"))
    web.cache.clear()
    if not done.queued:
        return redirect(web, back, ("ok", "Không có đơn vị nào cần gửi thêm: tất cả đã được gửi thông báo trước đó."))
    return redirect(
        web,
        back,
        ("ok", f"Đã đưa {len(done.queued)} thư thông báo vào hàng gửi; hệ thống sẽ gửi lần lượt trong ít phút."),
    )


# --- the form ----------------------------------------------------------------------------------------


async def _render_form(
    request: Request, web: Web, campaign: Campaign | None, state: FormState, status: int = 200
) -> Response:
    def load() -> tuple[list[str], tuple[catalog.CampaignFile, ...]]:
        with web.engine.connect() as conn:
            groups = catalog.groups_in_roster(conn)
            files = catalog.files_of(conn, campaign.id) if campaign else ()
        extra = [g for g in (campaign.groups if campaign else ()) if g not in groups]
        return groups + extra, files

    groups, files = await run_in_threadpool(load)
    return web.render(
        request,
        "campaign_form.html",
        status,
        title=f"Sửa đợt: {campaign.title}" if campaign else "Tạo đợt báo cáo mới",
        **({"campaign": campaign} if campaign else {}),
        page="settings",
        state=state,
        groups=groups,
        files=files,
        paper_choices=PAPER_CHOICES,
        date_hint=DATE_HINT,
    )


def _blank(web: Web) -> dict[str, Any]:
    return {
        "id": "",
        "title": "",
        "plan": "",
        "opens": input_time(web.clock(), web.settings.zone),
        "deadline": "",
        "groups": [],
        "keywords": "",
        "contact": "",
        "paper": PaperMode.NONE.value,
        "accept_late_days": "60",
    }


def _values(c: Campaign, web: Web) -> dict[str, Any]:
    zone = web.settings.zone
    return {
        "id": c.id,
        "title": c.title,
        "plan": c.plan,
        "opens": input_time(c.opens, zone),
        "deadline": input_time(c.deadline, zone),
        "groups": list(c.groups),
        "keywords": ", ".join(c.keywords),
        "contact": c.contact,
        "paper": c.paper.value,
        "accept_late_days": str(c.accept_late_days),
    }


def _read(checked: FormData, web: Web, *, campaign_id: str) -> tuple[FormState, Campaign | None]:
    """The typed values and, when the dates and numbers read, the draft (the catalog checks the rest)."""
    text = {
        k: " ".join(str(checked.get(k, "")).split())
        for k in ("title", "plan", "opens", "deadline", "keywords", "contact", "paper", "accept_late_days")
    }
    values = {**text, "id": campaign_id, "groups": [str(g) for g in checked.getlist("groups")]}
    state = FormState(values)
    zone = web.settings.zone
    deadline = parse_input_time(text["deadline"], zone)
    if deadline is None:
        state.problems["deadline"] = f"Hạn nộp không hợp lệ. Vui lòng nhập theo dạng {DATE_HINT}."
    opens = parse_input_time(text["opens"], zone) if text["opens"] else None
    if text["opens"] and opens is None:
        state.problems["opens"] = f"Ngày bắt đầu nhận báo cáo không hợp lệ. Vui lòng nhập theo dạng {DATE_HINT}."
    if text["paper"] not in {p.value for p in PaperMode}:
        state.problems["paper"] = "Vui lòng chọn cách nộp bản có dấu đỏ."
    late_days = int(text["accept_late_days"]) if text["accept_late_days"].isdigit() else -1
    if not 0 <= late_days <= 366:
        state.problems["accept_late_days"] = "Số ngày nhận báo cáo muộn phải là số nguyên từ 0 đến 366."
    if deadline is None or state.problems:
        return state, None
    keywords = tuple(k.strip() for k in text["keywords"].replace(";", ",").split(",") if k.strip())
    draft = Campaign(
        id=campaign_id,
        title=text["title"],
        deadline=deadline,
        opens=opens,
        groups=tuple(values["groups"]),
        keywords=keywords,
        accept_late_days=late_days,
        plan=text["plan"],
        contact=text["contact"],
        paper=PaperMode(text["paper"]),
    )
    return state, draft


async def _uploads(checked: FormData, state: FormState) -> list[tuple[str, str, bytes]]:
    """The files chosen in the form, read and checked; a problem is shown by the field."""
    out: list[tuple[str, str, bytes]] = []
    for role, key in ((catalog.ATTACHMENT, "attachments"), (catalog.TEMPLATE, "template")):
        for item in checked.getlist(key):
            if not isinstance(item, UploadFile) or not item.filename:
                continue
            data = await item.read()
            try:
                catalog.check_upload(role, item.filename, data)
            except CampaignProblem as exc:
                state.problems[key] = " ".join(exc.problems.values())
                continue
            out.append((role, item.filename, data))
    return out


async def _attach(web: Web, campaign_id: str, uploads: list[tuple[str, str, bytes]], actor: str) -> None:
    now: datetime = web.clock()
    for role, name, data in uploads:
        await run_in_threadpool(
            catalog.attach, web.engine, web.settings.data_dir, campaign_id, role, name, data, actor=actor, now=now
        )
