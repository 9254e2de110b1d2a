"""The stages' shape: earlier stages never import later ones; warnings are values in memory and the same strings in
the database as before (a data folder written by an earlier version reads unchanged)."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from sqlalchemy import select, text

import mailbot
from mailbot import store
from mailbot.models import Notice, State, WarningCode
from mailbot.wording import warning_text, warning_texts
from tests.conftest import db_url

PACKAGE = Path(mailbot.__file__).parent
LATER_THAN_INGEST = ("mailbot.notify", "mailbot.reports", "mailbot.web", "mailbot.campaigns", "mailbot.pipeline")


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found


def test_ingest_never_imports_a_later_stage() -> None:
    offenders = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted((PACKAGE / "ingest").glob("*.py"))
        for name in imported_modules(path)
        if name.startswith(LATER_THAN_INGEST)
    }
    assert not offenders


def test_notices_are_stored_as_the_strings_earlier_versions_wrote(tmp_path: Path) -> None:
    engine = store.connect(db_url(tmp_path / "db.sqlite3"))
    # as an earlier version wrote them, including a code this version does not know
    written = ["no_report_file", "date_far:05/12/2021", "heading_other_institution:A,B", "someday_code:x:y"]
    with store.atomic(engine) as conn:
        conn.execute(
            text(
                "INSERT INTO messages (fingerprint, message_id, sender, sender_name, subject, received_at, late, "
                'state, reason, eml_path, size, warnings, "references", auto_markers, recorded_at) VALUES '
                "('f1', '<a@b>', '', '', '', :at, :late, 'review', '', 'x.eml', 1, :w, '', '[]', :at)"
            ),
            {"at": "2023-12-05T10:00:00+00:00", "w": json.dumps(written), "late": False},
        )
    with engine.connect() as conn:
        read = conn.execute(select(store.messages.c.warnings)).scalar_one()
    assert read[:3] == (
        Notice(WarningCode.NO_REPORT_FILE),
        Notice(WarningCode.DATE_FAR, "05/12/2021"),
        Notice(WarningCode.HEADING_OTHER_INSTITUTION, "A,B"),
    )
    assert read[3].code is WarningCode.OTHER and warning_text(read[3]) == "someday_code:x:y"  # shown as written
    with store.atomic(engine) as conn:  # written back through the model: the same text, byte for byte
        conn.execute(store.messages.update().values(warnings=read, state=State.SUBMISSION.value))
        raw = conn.execute(text("SELECT warnings, state FROM messages")).one()
    assert json.loads(raw[0]) == written and raw[1] == "submission"


def test_warning_words_come_from_the_value_not_from_parsing_text() -> None:
    far = Notice(WarningCode.DATE_FAR, "05/12/2021")
    assert warning_text(far).endswith("(ngày 05/12/2021)")
    assert warning_text(Notice(WarningCode.TOO_LARGE, "31457280")) == warning_text(Notice(WarningCode.TOO_LARGE))
    assert len(warning_texts([far, far, Notice(WarningCode.DATE_FAR, "06/12/2021")])) == 2
    assert str(far) == "date_far:05/12/2021" and Notice.parse(str(far)) == far
    assert {str(Notice(c)) for c in WarningCode if c is not WarningCode.OTHER} == {c.value for c in WarningCode} - {
        "other"
    }


def test_every_warning_code_has_plain_words() -> None:
    missing = [c for c in WarningCode if c is not WarningCode.OTHER and warning_text(Notice(c)) in ("", c.value)]
    assert not missing
