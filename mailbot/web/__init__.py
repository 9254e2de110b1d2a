"""The staff web pages (`mailbot web`): the campaign at a glance, the institutions, the review queue, downloads.

Starlette with server-rendered Jinja2 pages over the library (status, review, extensions, workbook); see
``app.create_app``. What handlers share is in ``core``, who may reach a page in ``access``, the pages by subject
in ``pages``; accounts, sessions, CSRF and the login rate limit are in ``auth``.
"""

from mailbot.web.app import create_app

__all__ = ["create_app"]
