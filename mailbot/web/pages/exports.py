"""The downloads: the tracker and the consolidation workbooks, the zip of the latest reports, and single files and
original messages out of the archive (by row id only; see ``web.downloads``).
"""

from __future__ import annotations

import io
from datetime import datetime

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from mailbot.models import Campaign
from mailbot.reports import spreadsheets
from mailbot.web import downloads
from mailbot.web.access import campaign_page, campaign_route, row_id, staff
from mailbot.web.core import Web, web_of
from mailbot.web.downloads import XLSX, attachment, stamp
from mailbot.web.snapshot import Snapshot


@campaign_page
async def tracker(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    now = web.clock()
    (body,) = await run_in_threadpool(spreadsheets.trackers, [snap.cs], web.settings.zone, now)
    name = f"theo-doi-{campaign.id}-{stamp(web.settings.zone, now)}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": attachment(name)})


@campaign_route
async def consolidation(request: Request, web: Web, campaign: Campaign) -> Response:
    """The consolidation workbook (`mailbot compile`): from the campaign's report template when it has one, else the
    schools' tables merged by shape, with sums per group."""
    from mailbot.web.pages.consolidation import workbook_with_template  # it imports this module's helpers

    now = web.clock()
    body = await workbook_with_template(request, web, campaign, now)
    if body is None:
        body = await run_in_threadpool(_consolidation_bytes, web, campaign, now)
    name = f"tong-hop-{campaign.id}-{stamp(web.settings.zone, now)}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": attachment(name)})


def _consolidation_bytes(web: Web, campaign: Campaign, now: datetime) -> bytes:
    from mailbot.reports.compile import compile_campaign
    from mailbot.reports.compile_output import build_workbook

    buffer = io.BytesIO()
    build_workbook(compile_campaign(web.settings, web.engine, campaign, now=now)).save(buffer)
    return buffer.getvalue()


@campaign_page
async def reports_zip(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    entries = await run_in_threadpool(downloads.latest_reports, snap.cs, web.settings.archive_dir)
    name = f"bao-cao-{campaign.id}-{stamp(web.settings.zone, web.clock())}.zip"
    return StreamingResponse(
        downloads.stream_zip(entries, web.settings.zone),
        media_type="application/zip",
        headers={"Content-Disposition": attachment(name)},
    )


def _file_response(found: downloads.Download | None) -> Response:
    if found is None:
        raise HTTPException(404)
    return FileResponse(
        found.path, media_type=found.media_type, filename=found.name, content_disposition_type="attachment"
    )


@staff
async def stored_file(request: Request) -> Response:
    web = web_of(request)
    file_id = row_id(request, "file_id")
    return _file_response(await run_in_threadpool(downloads.stored_file, web.engine, web.settings.archive_dir, file_id))


@staff
async def original(request: Request) -> Response:
    web = web_of(request)
    pk = row_id(request, "pk")
    return _file_response(await run_in_threadpool(downloads.original_message, web.engine, web.settings.archive_dir, pk))
