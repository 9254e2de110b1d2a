"""Terminal views (rich): the campaign status table per group and the review queue."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.console import Console
from rich.table import Table

from mailbot.status import CampaignStatus
from mailbot.wording import IDENTIFIED_BY, STATUS, local_time, warning_text

_STYLE = {"on_time": "green", "late": "yellow", "missing": "red"}


def print_status(cs: CampaignStatus, zone: ZoneInfo, console: Console | None = None) -> None:
    console = console or Console()
    c = cs.campaign
    console.print(f"[bold]{c.title}[/bold]  ({c.id}) — hạn nộp {local_time(c.deadline, zone)}")
    for group, members in cs.groups().items():
        console.print(_group_table(group, members, zone))
    if cs.review:
        console.print(_review_table(cs, zone))


def _group_table(group: str, members: list, zone: ZoneInfo) -> Table:  # type: ignore[type-arg]
    counts = {k: sum(1 for m in members if m.status == k) for k in STATUS}
    title = f"{group}: " + ", ".join(f"{STATUS[k].lower()} {n}" for k, n in counts.items()) + f" / {len(members)}"
    table = Table(title=title, title_justify="left", expand=False)
    for header in ("Mã", "Tên đơn vị", "Trạng thái", "Thời điểm nộp", "Tệp", "Nhận diện", "Lưu ý"):
        table.add_column(header)
    for m in members:
        files = [f for s in m.submissions for f in s.files if f.path]
        warnings = {warning_text(w) for s in m.submissions for w in (*s.warnings, *(x for f in s.files for x in f.warnings))}
        table.add_row(
            m.code, m.name, f"[{_STYLE[m.status]}]{STATUS[m.status]}[/]", local_time(m.submitted_at, zone),
            str(len(files)), IDENTIFIED_BY.get(m.submissions[0].identified_by, "") if m.submissions else "",
            "; ".join(sorted(warnings)),
        )
    return table


def _review_table(cs: CampaignStatus, zone: ZoneInfo) -> Table:
    table = Table(title=f"Cần cán bộ xem xét: {len(cs.review)} thư", title_justify="left")
    for header in ("Số", "Người gửi", "Tiêu đề", "Nhận lúc", "Lý do"):
        table.add_column(header)
    for r in cs.review:
        table.add_row(f"#{r.pk}", r.sender, r.subject, local_time(r.received_at, zone), r.reason)
    return table
