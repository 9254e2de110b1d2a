"""Terminal views (rich): the campaign status table per group and the review queue; and the lines that sum up a
command (plain text: rich is loaded only for a table, not at the end of every `run --once`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from mailbot.campaigns.roster_import import ImportPlan
from mailbot.reports.status import CampaignStatus
from mailbot.wording import IDENTIFIED_BY, STATUS, clip, local_time, warning_texts

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

_STYLE = {"on_time": "green", "late": "yellow", "missing": "red"}


def print_status(cs: CampaignStatus, zone: ZoneInfo, console: Console | None = None) -> None:
    from rich.console import Console

    console = console or Console()
    c = cs.campaign
    console.print(f"[bold]{c.title}[/bold] — hạn nộp {local_time(c.deadline, zone)}")
    for group, members in cs.groups().items():
        console.print(_group_table(group, members, zone))
    if cs.review:
        console.print(_review_table(cs, zone))


def _group_table(group: str, members: list, zone: ZoneInfo) -> Table:  # type: ignore[type-arg]
    counts = {k: sum(1 for m in members if m.status == k) for k in STATUS}
    title = f"{group}: " + ", ".join(f"{STATUS[k].lower()} {n}" for k, n in counts.items()) + f" / {len(members)}"
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for header in ("Mã", "Tên đơn vị", "Trạng thái", "Thời điểm nộp", "Tệp", "Nhận diện", "Lưu ý"):
        table.add_column(header)
    for m in members:
        files = [f for s in m.submissions for f in s.files if f.path]
        warnings = warning_texts(m.notices())
        table.add_row(
            m.code,
            m.name,
            f"[{_STYLE[m.status]}]{STATUS[m.status]}[/]",
            local_time(m.submitted_at, zone),
            str(len(files)),
            IDENTIFIED_BY.get(m.submissions[0].identified_by, "") if m.submissions else "",
            "; ".join(warnings),
        )
    return table


def _review_table(cs: CampaignStatus, zone: ZoneInfo) -> Table:
    from rich.table import Table

    table = Table(title=f"Thư chờ cán bộ xem xét: {len(cs.review)}", title_justify="left")
    for header in ("Số", "Người gửi", "Tiêu đề", "Nhận lúc", "Lý do"):
        table.add_column(header)
    for r in cs.review:
        table.add_row(f"#{r.pk}", r.sender, clip(r.subject), local_time(r.received_at, zone), r.reason)
    return table


# --- what staff read after a command (the logs and --help stay in English) -----------------------------------

MESSAGE_STATES = {
    "submission": "báo cáo được ghi nhận",
    "no_report": "thư không kèm tệp Word",
    "review": "thư chờ cán bộ xem xét",
    "error": "thư không đọc được",
    "duplicate": "thư trùng (đã ghi nhận trước đó)",
    "bounce": "thư báo gửi không thành công",
}
NOTICE_KINDS = {"reminder": "thư nhắc hạn", "late": "thư đôn đốc (quá hạn)"}
NOTICE_STATUS = {
    "pending": "chờ gửi",
    "suppressed": "không gửi (vượt giới hạn thư tự động)",
    "exists": "đã gửi trước đó",
    "failed": "không gửi được",
    "dry-run": "dự kiến",
}


def run_summary(states: dict[str, int], moved: int) -> str:
    """``Đã xử lý 18 thư: 16 báo cáo được ghi nhận, 1 thư không kèm tệp Word, 1 thư chờ cán bộ xem xét``."""
    order = list(MESSAGE_STATES)
    ranked = sorted(states.items(), key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    parts = [f"{n} {MESSAGE_STATES.get(state, state)}" for state, n in ranked if n] or ["không có thư mới"]
    moved_words = f"; đã chuyển {moved} thư sang thư mục đã xử lý" if moved else ""
    return f"Đã xử lý {sum(states.values())} thư: " + ", ".join(parts) + moved_words


def delivery_summary(sent: int, retrying: int, failed: int, last_error: str = "") -> str:
    line = f"Thư đi: đã gửi {sent}, chờ gửi lại {retrying}, gửi không thành công {failed}"
    return line + (f" (lỗi gần nhất: {last_error})" if last_error else "")


def notice_line(status: str, kind: str, campaign_title: str, code: str, recipients: tuple[str, ...]) -> str:
    to = ", ".join(recipients) or "(đơn vị không có địa chỉ thư dùng được)"
    return f"{NOTICE_STATUS.get(status, status)} – {NOTICE_KINDS.get(kind, kind)} – {code} – {to} – {campaign_title}"


def notices_summary(count: int, dry_run: bool) -> str:
    if dry_run:
        return f"{count} thư nhắc hạn, đôn đốc sẽ được gửi hôm nay (chạy thử, chưa gửi)"
    return f"{count} thư nhắc hạn, đôn đốc đến lượt gửi hôm nay"


ROSTER_ACTIONS = {"add": "Thêm", "change": "Cập nhật", "reactivate": "Kích hoạt lại", "deactivate": "Ngừng theo dõi"}
_ACTION_WIDTH = max(len(label) for label in ROSTER_ACTIONS.values())


def roster_plan_lines(found: ImportPlan) -> list[str]:
    """One line per institution a roster import adds, changes, reactivates or deactivates."""

    def line(action: str, code: str, text: str) -> str:
        return f"{ROSTER_ACTIONS[action]:{_ACTION_WIDTH}}  {code}  {text}"

    lines = [line("add", i.code, f"{i.name} ({i.group})") for i in found.added]
    for before, after in found.changed:
        what = [
            f"{label}: {old or '(trống)'} → {new or '(trống)'}"
            for label, old, new in (
                ("tên", before.name, after.name),
                ("nhóm", before.group, after.group),
                ("địa chỉ thư", "; ".join(before.emails), "; ".join(after.emails)),
                ("người liên hệ", before.contact, after.contact),
                ("điện thoại", before.phone, after.phone),
            )
            if old != new
        ]
        lines.append(line("change", after.code, ", ".join(what)))
    lines += [line("reactivate", i.code, i.name) for i in found.reactivated]
    lines += [line("deactivate", i.code, i.name) for i in found.deactivated]
    return lines


def roster_summary(found: ImportPlan, dry_run: bool) -> str:
    """``Đã nhập danh sách đơn vị: thêm 1, cập nhật 0, kích hoạt lại 0, ngừng theo dõi 2, giữ nguyên 40 đơn vị``."""
    counts = (
        f"thêm {len(found.added)}, cập nhật {len(found.changed)}, kích hoạt lại {len(found.reactivated)}, "
        f"ngừng theo dõi {len(found.deactivated)}, giữ nguyên {found.unchanged} đơn vị"
    )
    return (
        f"Chạy thử, chưa thay đổi gì; nếu nhập thật sẽ {counts}" if dry_run else f"Đã nhập danh sách đơn vị: {counts}"
    )
