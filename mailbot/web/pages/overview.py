"""The campaign at a glance (counts by group, time left, recent changes) and the log of who changed what."""

from __future__ import annotations

from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from mailbot.models import Campaign
from mailbot.reports.status import pick_campaign
from mailbot.web import queries
from mailbot.web.access import campaign_page, campaign_route, staff
from mailbot.web.core import Web, time_left, web_of
from mailbot.web.snapshot import Snapshot


@staff
async def home(request: Request) -> Response:
    """To the campaign whose deadline is nearest to now."""
    web = web_of(request)
    if not web.campaigns:  # nothing open: the list, where a new campaign is made and the closed ones are
        return RedirectResponse(web.url("/campaigns"), 303)
    campaign = pick_campaign(web.campaigns, None, web.clock())
    return RedirectResponse(web.url(f"/c/{quote(campaign.id)}/"), 303)


@campaign_page
async def overview(request: Request, web: Web, campaign: Campaign, snap: Snapshot) -> Response:
    left, overdue = time_left(campaign.deadline, web.clock())
    recent = await run_in_threadpool(queries.recent_actions, web.engine, 8)
    return web.render(
        request,
        "overview.html",
        campaign=campaign,
        snap=snap,
        left=left,
        overdue=overdue,
        recent=recent,
        names=snap.names,
    )


@campaign_route
async def changes(request: Request, web: Web, campaign: Campaign) -> Response:
    def load() -> tuple[list[queries.ActionView], list[queries.EventView], dict[str, str]]:
        return (
            queries.recent_actions(web.engine, 200),
            queries.recent_events(web.engine, 100),
            queries.institution_names(web.engine),
        )

    actions, events, names = await run_in_threadpool(load)
    return web.render(request, "log.html", campaign=campaign, actions=actions, events=events, names=names)
