"""The roster as staff manage it: every institution, an Excel or CSV list imported after a preview (added, changed
before → after, reactivated, deactivated, rows skipped), one institution's edit form, and the Excel export.

The uploaded file is kept in ``data_dir/roster-uploads`` under its sha256 between the preview and the apply, and
the apply carries the previewed plan's fingerprint: what is applied is exactly what staff saw, or nothing (the
preview is shown again when the roster moved meanwhile).
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from mailbot.campaigns import roster_edit
from mailbot.campaigns import roster_import as importer
from mailbot.campaigns.roster import RosterFileError, RosterRead
from mailbot.errors import MailbotError, NotFound
from mailbot.files import write_atomic
from mailbot.models import Institution
from mailbot.reports import spreadsheets
from mailbot.web import queries
from mailbot.web.access import form, redirect, staff, user
from mailbot.web.core import Web, web_of
from mailbot.web.downloads import XLSX, attachment, stamp

MAX_UPLOAD = 5 * 1024 * 1024
UPLOADS = "roster-uploads"
KEEP_UPLOADS_SECONDS = 2 * 86400
SUFFIXES = (".xlsx", ".csv")
_SHA = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Preview:
    """What importing an uploaded file would do, as the preview page shows it."""

    sha256: str
    source: str  # the file's name on the staff's computer
    replace: bool
    read: RosterRead
    plan: importer.ImportPlan

    @property
    def blocked(self) -> str:
        """Why the plan cannot be applied as it stands (Vietnamese), or ""."""
        if self.replace and self.read.issues:
            return (
                "Khi thay thế toàn bộ danh sách, tệp không được có dòng lỗi (đơn vị ở dòng bị bỏ qua sẽ bị ngừng theo "
                "dõi). Vui lòng sửa các dòng dưới đây rồi tải tệp lên lại."
            )
        if self.replace and not self.read.institutions:
            return "Tệp không có đơn vị nào; thay thế toàn bộ danh sách sẽ ngừng theo dõi mọi đơn vị. Chưa nhập gì."
        if self.plan.empty:
            return "Danh sách trong tệp trùng với danh sách hiện có: không có thay đổi nào để cập nhật."
        return ""


def _uploads(web: Web) -> Path:
    folder = web.settings.data_dir / UPLOADS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _saved(web: Web, sha256: str) -> Path | None:
    """The upload named by a form's sha256 (only ever a name this module made)."""
    if not _SHA.fullmatch(sha256):
        return None
    return next((p for s in SUFFIXES if (p := _uploads(web) / f"{sha256}{s}").is_file()), None)


def _keep(web: Web, data: bytes, suffix: str) -> str:
    folder = _uploads(web)
    for old in folder.iterdir():  # previews nobody applied
        if old.is_file() and old.stat().st_mtime < time.time() - KEEP_UPLOADS_SECONDS:
            old.unlink(missing_ok=True)
    sha256 = hashlib.sha256(data).hexdigest()
    write_atomic(folder / f"{sha256}{suffix}", data, 0o600)
    return sha256


def _preview(engine: Engine, path: Path, sha256: str, source: str, replace: bool) -> Preview:
    with engine.connect() as conn:
        read = importer.read_file(conn, path)
        return Preview(sha256, source, replace, read, importer.plan(conn, read, replace=replace))


def _source(name: str) -> str:
    return " ".join(Path(name.replace("\\", "/")).name.split())[:120] or "danh-sach"


@staff
async def roster_page(request: Request) -> Response:
    web = web_of(request)

    def load() -> list[Institution]:
        with web.engine.connect() as conn:
            return list(importer.imported(conn).values())

    rows = await run_in_threadpool(load)
    return web.render(request, "roster.html", title="Quản lý danh sách đơn vị", rows=rows)


@staff
async def preview(request: Request) -> Response:
    web = web_of(request)
    checked = form(request)
    upload = checked.get("file")
    replace = checked.get("replace") in ("1", "on")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return redirect(web, "/roster", ("error", "Vui lòng chọn tệp danh sách (.xlsx hoặc .csv) để tải lên."))
    suffix = Path(upload.filename).suffix.lower()
    if suffix not in SUFFIXES:
        return redirect(
            web, "/roster", ("error", "Tệp phải có định dạng Excel (.xlsx) hoặc CSV (.csv). Vui lòng chọn lại tệp.")
        )
    data = await upload.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return redirect(web, "/roster", ("error", "Tệp quá lớn (tối đa 5 MB). Vui lòng kiểm tra lại tệp danh sách."))
    sha256 = await run_in_threadpool(_keep, web, data, suffix)
    path = _uploads(web) / f"{sha256}{suffix}"
    try:
        found = await run_in_threadpool(_preview, web.engine, path, sha256, _source(upload.filename), replace)
    except RosterFileError as exc:
        path.unlink(missing_ok=True)
        return redirect(web, "/roster", ("error", exc.vi))
    return _show_preview(request, web, found)


def _show_preview(request: Request, web: Web, found: Preview, error: str = "") -> Response:
    return web.render(
        request,
        "roster_preview.html",
        title="Xem trước danh sách đơn vị",
        p=found,
        error=error,
    )


@staff
async def apply(request: Request) -> Response:
    web = web_of(request)
    checked = form(request)
    sha256, replace = str(checked.get("sha256", "")), checked.get("replace") == "1"
    source = _source(str(checked.get("source", "")))
    path = _saved(web, sha256)
    if path is None:
        return redirect(web, "/roster", ("error", "Tệp đã tải lên không còn trên máy chủ. Vui lòng tải tệp lên lại."))
    found = await run_in_threadpool(_preview, web.engine, path, sha256, source, replace)
    if found.blocked:
        return _show_preview(request, web, found)
    try:
        done = await run_in_threadpool(
            lambda: importer.import_file(
                web.engine,
                path,
                actor=user(request),
                replace=replace,
                source=f"{source} (trang web)",
                expect=str(checked.get("plan", "")),
            )
        )
    except importer.PlanChanged:
        text = "Danh sách đơn vị đã thay đổi kể từ khi xem trước. Vui lòng xem lại các thay đổi dưới đây rồi cập nhật."
        return _show_preview(request, web, found, text)
    except RosterFileError as exc:
        return redirect(web, "/roster", ("error", exc.vi))
    except MailbotError as exc:
        return redirect(web, "/roster", ("error", f"Chưa cập nhật được danh sách đơn vị: {exc}"))
    path.unlink(missing_ok=True)
    web.cache.clear()
    return redirect(web, "/roster", ("ok", f"Đã cập nhật danh sách đơn vị từ tệp {source}: {_counts(done)}."))


def _counts(done: importer.ImportPlan) -> str:
    return (
        f"thêm {len(done.added)}, cập nhật {len(done.changed)}, kích hoạt lại {len(done.reactivated)}, "
        f"ngừng theo dõi {len(done.deactivated)} đơn vị"
    )


@staff
async def export(request: Request) -> Response:
    web = web_of(request)

    def build() -> bytes:
        with web.engine.connect() as conn:
            rows = list(importer.imported(conn).values())
        return spreadsheets.roster(rows)

    body = await run_in_threadpool(build)
    name = f"danh-sach-don-vi-{stamp(web.settings.zone, web.clock())}.xlsx"
    return Response(body, media_type=XLSX, headers={"Content-Disposition": attachment(name)})


@staff
async def institution_form(request: Request) -> Response:
    web = web_of(request)
    code = request.path_params["code"]
    try:
        inst = await run_in_threadpool(roster_edit.load, web.engine, code)
    except NotFound:
        raise HTTPException(404) from None
    return await _edit_page(request, web, inst, inst, [])


async def _edit_page(
    request: Request,
    web: Web,
    inst: Institution,
    shown: Institution,
    errors: list[str],
    new_group: str = "",
) -> Response:
    def load() -> tuple[list[str], list[queries.ActionView]]:
        return roster_edit.groups(web.engine), queries.actions_for(web.engine, inst.code)

    groups, actions = await run_in_threadpool(load)
    return web.render(
        request,
        "roster_institution.html",
        400 if errors else 200,
        title=inst.name,
        inst=inst,
        shown=shown,
        groups=groups,
        new_group=new_group,
        NEW_GROUP=roster_edit.NEW_GROUP,
        errors=errors,
        actions=actions,
    )


@staff
async def institution_save(request: Request) -> Response:
    web = web_of(request)
    code = request.path_params["code"]
    checked = form(request)
    field = {k: str(checked.get(k, "")) for k in ("name", "group", "new_group", "emails", "contact", "phone")}
    sent = roster_edit.Form(**field, active=checked.get("active") in ("1", "on"))
    try:
        before = await run_in_threadpool(roster_edit.load, web.engine, code)
    except NotFound:
        raise HTTPException(404) from None
    groups = await run_in_threadpool(roster_edit.groups, web.engine)
    after, errors = roster_edit.check(sent, before, groups)
    if errors:
        return await _edit_page(request, web, before, after, errors, sent.new_group)
    try:
        done = await run_in_threadpool(lambda: roster_edit.save(web.engine, after, actor=user(request)))
    except NotFound:
        raise HTTPException(404) from None
    web.cache.clear()
    back = f"/roster/i/{quote(code, safe='')}"
    if not done:
        return redirect(web, back, ("ok", "Thông tin đơn vị không thay đổi."))
    return redirect(web, back, ("ok", f"Đã lưu thông tin đơn vị {after.name}: " + "; ".join(done) + "."))
