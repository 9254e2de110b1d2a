"""`mailbot demo`: a self-contained folder with a roster, a Maildir of school emails and a config."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from mailbot import config
from mailbot.campaigns import roster
from mailbot.config import Settings
from mailbot.demo import samples

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DEADLINE = datetime(2023, 12, 5, 17, 0, tzinfo=ZONE)
DIGEST_AT = datetime(2023, 12, 7, 7, 30, tzinfo=ZONE)  # a morning after the deadline, when staff read the digest

# The pieces of the demo's configuration (TOML), shared by `mailbot demo`, the tests and bench/web.py.
MAILDIR_INBOX = """\
[inbox]
kind = "maildir"
path = "Maildir"
"""
ROSTER_FILE = """\
[roster]
file = "roster.csv"
"""
_CAMPAIGN = """\
[[campaign]]
id = "antq-2023"
title = "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023"
opens = 2023-11-01T00:00:00
deadline = 2023-12-05T17:00:00
"""


def demo_config(*tables: str, campaign_keys: str = "") -> str:
    """A configuration in the demo's zone and data folder with ``tables`` (whole TOML tables: inbox, outbox, ...)
    and the demo campaign, to which ``campaign_keys`` (TOML lines) are added."""
    parts = ['timezone = "Asia/Ho_Chi_Minh"\ndata_dir = "var"\n', *tables, _CAMPAIGN + campaign_keys]
    return "\n".join(part if part.endswith("\n") else part + "\n" for part in parts)


CONFIG = "# Demo configuration written by `mailbot demo`; see config.example.toml for every key.\n" + demo_config(
    MAILDIR_INBOX,
    ROSTER_FILE,
    """\
[outbox]
# The demo writes outgoing mail as .eml files instead of sending it.
kind = "file"
path = "outbox"
from = "Phòng GDTX&ĐH - Sở GDĐT Hải Phòng <gdtx@haiphong.edu.vn>"
""",
    """\
[notify]
staff = ["lanhdao.gdtx@haiphong.edu.vn"]
""",
    campaign_keys="""\
# The plan the reminders cite, and whom schools call (the seed plan leaves its number and date blank: invented here).
plan = "Số 2516/KH-SGDĐT ngày 30/10/2023"
contact = "bà Nguyễn Thị Lan, chuyên viên Phòng GDTX&ĐH, điện thoại 0225.3xxx.xxx"
""",
)


def build_demo(folder: Path | None) -> Settings:
    """Write the demo files (replacing an earlier demo's inbox and data) and return its settings."""
    root = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="mailbot-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    rows = samples.load_demo_roster()
    roster.write_csv(root / "roster.csv", roster.from_rows(rows))
    _write_maildir(root / "Maildir", samples.demo_messages(rows, DEADLINE))
    (root / "mailbot.toml").write_text(CONFIG, encoding="utf-8")
    return config.load(root / "mailbot.toml")


def _write_maildir(path: Path, messages: list[tuple[datetime, bytes]]) -> None:
    """One file per message in new/, its mtime set to the arrival time (as delivery agents do)."""
    for sub in ("cur", "new", "tmp"):  # a rerun replaces the inbox; the database keeps what it recorded
        (path / sub).mkdir(parents=True, exist_ok=True)
        for old in (path / sub).iterdir():
            old.unlink()
    for index, (arrived, raw) in enumerate(messages):
        stamp = int(arrived.timestamp())
        target = path / "new" / f"{stamp}.M{index:04d}.demo"  # stable names: a rerun finds nothing new
        target.write_bytes(raw)
        os.utime(target, (stamp, stamp))
