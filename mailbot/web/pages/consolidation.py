"""The consolidation page (/c/{cid}/consolidation): with the campaign's report template, the department's tables as
they stand (live: read again from the archive whenever the database moved since the last look), the participation per group, the list of what did
not match with each school's file, a form to accept a mapping, and the downloads (workbook, texts, drafted report,
also from a report template staff upload). Without a template, it says so and offers the shape-matched workbook.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote
from weakref import WeakKeyDictionary

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import Response

from mailbot.errors import MailbotError
from mailbot.models import Campaign
from mailbot.reports import spreadsheets
from mailbot.reports.aliases import remember_alias
from mailbot.reports.consolidate import Consolidation, Source, campaign_template, consolidate_campaign
from mailbot.reports.narrative import draft_bytes, texts_bytes
from mailbot.reports.numbers import vn_number
from mailbot.web.access import campaign_route, form, redirect, user
from mailbot.web.core import Web
from mailbot.web.downloads import attachment, stamp
from mailbot.web.snapshot import fingerprint

if TYPE_CHECKING:
    from mailbot.reports.consolidation_xlsx import Linker

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MAX_REPORT_TEMPLATE = 10 * 1024 * 1024


# The last consolidation computed, per database: a page visit, a download and the next visit reuse it while
# nothing it depends on moved (new mail, a staff change such as a new template or an accepted mapping: the
# snapshot's fingerprint); one entry only, since a city's consolidation holds every school's text.
_LAST: WeakKeyDictionary[Engine, tuple[str, tuple[Any, ...], Consolidation | None]] = WeakKeyDictionary()


def _consolidation(web: Web, campaign: Campaign, now: datetime) -> Consolidation | None:
    version = fingerprint(web.engine)
    last = _LAST.get(web.engine)
    if last is not None and last[0] == campaign.id and last[1] == version:
        return last[2]
    template = campaign_template(web.settings, web.engine, campaign.id)
    comp = None if template is None else consolidate_campaign(web.settings, web.engine, campaign, template, now=now)
    _LAST[web.engine] = (campaign.id, version, comp)
    return comp


def web_links(request: Request, web: Web) -> Linker:
    """Files link to the staff pages' /files/{id}: under ``public_url``, else on the address the page was asked at."""
    base = web.settings.web.public_url.rstrip("/") or f"{request.url.scheme}://{request.url.netloc}{web.prefix}"

    def link(source: Source) -> str | None:
        return f"{base}/files/{source.file_id}" if source.file_id is not None else None

    return link


def _page(web: Web, campaign: Campaign) -> str:
    return f"/c/{quote(campaign.id)}/consolidation"


@campaign_route
async def page(request: Request, web: Web, campaign: Campaign) -> Response:
    now = web.clock()
    try:
        comp = await run_in_threadpool(_consolidation, web, campaign, now)
    except MailbotError as exc:
        return web.render(request, "consolidation.html", campaign=campaign, comp=None, problem=str(exc))
    return web.render(request, "consolidation.html", campaign=campaign, comp=comp, problem="", vn=vn_number)


@campaign_route
async def texts(request: Request, web: Web, campaign: Campaign) -> Response:
    now = web.clock()
    comp = await run_in_threadpool(_consolidation, web, campaign, now)
    if comp is None:
        return redirect(web, _page(web, campaign), ("error", "Đợt báo cáo này chưa có mẫu báo cáo."))
    body = await run_in_threadpool(texts_bytes, comp)
    name = f"noi-dung-{campaign.id}-{stamp(web.settings.zone, now)}.docx"
    return Response(body, media_type=DOCX, headers={"Content-Disposition": attachment(name)})


@campaign_route
async def report(request: Request, web: Web, campaign: Campaign) -> Response:
    """The drafted report: GET the plain draft; POST with a report template staff upload, that one filled."""
    now = web.clock()
    template: bytes | None = None
    if request.method == "POST":
        upload = form(request).get("template")
        if isinstance(upload, UploadFile) and upload.filename:
            template = await upload.read(MAX_REPORT_TEMPLATE + 1)
            if len(template) > MAX_REPORT_TEMPLATE or not upload.filename.lower().endswith(".docx"):
                message = "Mẫu báo cáo của Sở phải là tệp Word .docx, tối đa 10 MB."
                return redirect(web, _page(web, campaign), ("error", message))
    comp = await run_in_threadpool(_consolidation, web, campaign, now)
    if comp is None:
        return redirect(web, _page(web, campaign), ("error", "Đợt báo cáo này chưa có mẫu báo cáo."))
    try:
        body, _ = await run_in_threadpool(draft_bytes, comp, template)
    except MailbotError:
        message = "Không đọc được tệp mẫu báo cáo của Sở (tệp Word .docx bị hỏng?). Vui lòng kiểm tra lại tệp."
        return redirect(web, _page(web, campaign), ("error", message))
    name = f"du-thao-bao-cao-{campaign.id}-{stamp(web.settings.zone, now)}.docx"
    return Response(body, media_type=DOCX, headers={"Content-Disposition": attachment(name)})


async def workbook_with_template(request: Request, web: Web, campaign: Campaign, now: datetime) -> bytes | None:
    """The template-driven workbook, or None when the campaign has no template (the caller falls back)."""
    comp = await run_in_threadpool(_consolidation, web, campaign, now)
    if comp is None:
        return None
    body: bytes = await run_in_threadpool(spreadsheets.consolidation, comp, web_links(request, web))
    return body


@campaign_route
async def accept(request: Request, web: Web, campaign: Campaign) -> Response:
    """Remember that a school's row or column name is the template's: every later consolidation reads it so."""
    checked = form(request)
    kind, found, target = (str(checked.get(k, "")).strip() for k in ("kind", "found", "target"))
    back = _page(web, campaign)
    if kind not in ("row", "column") or not found or not target:
        return redirect(web, back, ("error", "Vui lòng chọn dòng hoặc cột tương ứng trong mẫu báo cáo."))
    try:
        await run_in_threadpool(
            lambda: remember_alias(web.engine, kind, found, target, actor=user(request), now=web.clock())
        )
    except ValueError:
        return redirect(web, back, ("error", "Tên dòng hoặc cột không hợp lệ."))
    what = "Dòng" if kind == "row" else "Cột"
    return redirect(web, back, ("ok", f"Đã ghi nhận: {what} “{found}” được hiểu là “{target}” của mẫu báo cáo."))


__all__ = ["accept", "page", "report", "texts", "web_links", "workbook_with_template"]
