"""Configuration validation and roster import: clear messages naming the key or the row."""

import subprocess
import sys
from pathlib import Path

import pytest
from openpyxl import Workbook

from mailbot import config
from mailbot.campaigns import roster
from mailbot.errors import ConfigError, RosterError
from tests.conftest import first_campaign

GOOD = """
[inbox]
kind = "maildir"
path = "Maildir"
[[campaign]]
id = "antq-2023"
title = "Báo cáo"
deadline = 2023-12-05T17:00:00
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mailbot.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_local_deadline_is_read_in_the_configured_zone(tmp_path):
    settings = config.load(write(tmp_path, GOOD))
    deadline = first_campaign(settings).deadline
    assert deadline.utcoffset().total_seconds() == 7 * 3600 and deadline.hour == 17
    assert settings.data_dir == tmp_path / "var" and settings.inbox.path == tmp_path / "Maildir"


@pytest.mark.parametrize(
    "text, key",
    [
        (GOOD.replace('kind = "maildir"', 'kind = "pop3"'), "inbox.kind"),
        (GOOD.replace("deadline = 2023-12-05T17:00:00", 'deadline = "soon"'), "campaign[0].deadline"),
        (GOOD + 'timezone = "Mars/Base"', "campaign[0].timezone"),
        (GOOD.replace("[inbox]", "[inbox]\nhots = 'x'"), "inbox.hots"),
        (GOOD.replace('kind = "maildir"', 'kind = "imap"\nusername = "u"'), "inbox"),
    ],
)
def test_bad_config_names_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    assert key in str(info.value)


def test_missing_password_variable_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("NO_SUCH_VAR", raising=False)
    text = GOOD.replace('kind = "maildir"', 'kind = "imap"\nusername = "u"\npassword_env = "NO_SUCH_VAR"')
    settings = config.load(write(tmp_path, text))
    with pytest.raises(ConfigError, match="NO_SUCH_VAR"):
        settings.inbox.password("inbox")


def test_cli_bad_config_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, GOOD.replace("[[campaign]]", "[[campaign]]\nid = 'x'\n").replace('id = "antq-2023"', ""))
    bad = write(tmp_path, "this is = not toml [")
    result = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(bad), "status"], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr and "not valid TOML" in result.stderr
    assert path.exists()


def test_roster_csv_with_vietnamese_headers_and_bad_rows(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text(
        "Mã đơn vị;Tên đơn vị;Nhóm;Email\n"
        "THPT-NQ;Trường THPT Ngô Quyền;THPT;A@haiphong.edu.vn, b@haiphong.edu.vn\n"
        ";Không mã;THPT;\n"
        "THPT-X;Trường X;THPT;not-an-address\n",
        encoding="utf-8",
    )
    read = roster.read(path)
    assert [i.code for i in read.institutions] == ["THPT-NQ"]
    assert read.institutions[0].emails == ("a@haiphong.edu.vn", "b@haiphong.edu.vn")
    assert read.problems == ("row 3: code is empty", "row 4: not an email address: not-an-address")


def test_roster_xlsx(tmp_path):
    wb = Workbook()
    wb.active.append(["code", "name", "group", "emails"])
    wb.active.append(["DH-HP", "Trường Đại học Hải Phòng", "Đại học", "dhhp@haiphong.edu.vn"])
    wb.save(tmp_path / "r.xlsx")
    assert roster.read(tmp_path / "r.xlsx").institutions[0].name == "Trường Đại học Hải Phòng"


def test_roster_missing_column_is_explained(tmp_path):
    (tmp_path / "r.csv").write_text("code,name\nA,B\n", encoding="utf-8")
    with pytest.raises(RosterError, match="missing column"):
        roster.read(tmp_path / "r.csv")
