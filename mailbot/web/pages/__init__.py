"""The pages by subject, and the one table of their URLs (``routes``) that ``web.app`` serves.

Every route but the login form and the schools' status page (its signed link is its key) needs a live session,
every POST the session's CSRF token (``web.access``). Changes are made by the library functions with the logged-in
user as the actor, so they land in ``actions`` with who and when.
"""

from __future__ import annotations

from starlette.routing import Route

from mailbot.notify import links
from mailbot.web.pages import (
    account,
    campaigns,
    consolidation,
    exports,
    institutions,
    overview,
    review,
    roster,
    school,
    system,
)


def routes() -> list[Route]:
    return [
        Route("/login", account.login_form, methods=["GET"]),
        Route("/login", account.login_submit, methods=["POST"]),
        Route("/logout", account.logout, methods=["POST"]),
        Route("/", overview.home, methods=["GET"]),
        Route("/system", system.system, methods=["GET"]),
        Route("/campaigns", campaigns.campaign_list, methods=["GET"]),
        Route("/campaigns/new", campaigns.new_form, methods=["GET"]),
        Route("/campaigns/new", campaigns.create, methods=["POST"]),
        Route("/c/{cid}/settings", campaigns.edit_form, methods=["GET"]),
        Route("/c/{cid}/settings", campaigns.save, methods=["POST"]),
        Route("/c/{cid}/files/{fid}/delete", campaigns.remove_file, methods=["POST"]),
        Route("/c/{cid}/close", campaigns.close, methods=["POST"]),
        Route("/c/{cid}/announce", campaigns.announce_preview, methods=["GET"]),
        Route("/c/{cid}/announce", campaigns.announce_send, methods=["POST"]),
        Route("/c/{cid}/", overview.overview, methods=["GET"]),
        Route("/c/{cid}/institutions", institutions.institutions, methods=["GET"]),
        Route("/c/{cid}/institutions/{code:path}", institutions.institution, methods=["GET"]),
        Route("/c/{cid}/extension", institutions.grant_extension, methods=["POST"]),
        Route("/c/{cid}/extension/remove", institutions.remove_extension, methods=["POST"]),
        Route("/c/{cid}/confirm", institutions.confirm_name, methods=["POST"]),
        Route("/c/{cid}/reject", institutions.reject_name, methods=["POST"]),
        Route("/c/{cid}/paper", institutions.paper_copy, methods=["POST"]),
        Route("/c/{cid}/stamp", institutions.accept_stamp, methods=["POST"]),
        Route("/c/{cid}/review", review.review_queue, methods=["GET"]),
        Route("/c/{cid}/review/{pk}/assign", review.assign, methods=["POST"]),
        Route("/c/{cid}/review/{pk}/dismiss", review.dismiss, methods=["POST"]),
        Route("/c/{cid}/review/{pk}/restore", review.restore, methods=["POST"]),
        Route("/c/{cid}/log", overview.changes, methods=["GET"]),
        Route("/c/{cid}/tracker.xlsx", exports.tracker, methods=["GET"]),
        Route("/c/{cid}/consolidation.xlsx", exports.consolidation, methods=["GET"]),
        Route("/c/{cid}/consolidation", consolidation.page, methods=["GET"]),
        Route("/c/{cid}/consolidation/texts.docx", consolidation.texts, methods=["GET"]),
        Route("/c/{cid}/consolidation/report.docx", consolidation.report, methods=["GET", "POST"]),
        Route("/c/{cid}/consolidation/accept", consolidation.accept, methods=["POST"]),
        Route("/c/{cid}/reports.zip", exports.reports_zip, methods=["GET"]),
        Route("/files/{file_id}", exports.stored_file, methods=["GET"]),
        Route("/messages/{pk}/original.eml", exports.original, methods=["GET"]),
        Route("/roster", roster.roster_page, methods=["GET"]),
        Route("/roster/preview", roster.preview, methods=["POST"]),
        Route("/roster/apply", roster.apply, methods=["POST"]),
        Route("/roster/export.xlsx", roster.export, methods=["GET"]),
        Route("/roster/i/{code:path}", roster.institution_form, methods=["GET"]),
        Route("/roster/i/{code:path}", roster.institution_save, methods=["POST"]),
        # public: a school's own status, through the signed link in its mail (notify.links), no session
        Route(links.PATH + "{token}", school.school_status, methods=["GET"]),
    ]
