"""One institution changed by staff on the web pages: the form checked (Vietnamese messages), the row written, and
one line of the change log saying what changed, by whom and when."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from sqlalchemy import Engine

from mailbot import store
from mailbot.campaigns import roster as roster_file
from mailbot.campaigns.roster_import import imported
from mailbot.errors import NotFound
from mailbot.models import Institution
from mailbot.text import nfc

ACTION = "roster_edit"
NEW_GROUP = "__new__"  # the group list's choice "a new group", typed in its own field
MAX_NAME, MAX_CONTACT, MAX_PHONE, MAX_EMAILS = 300, 200, 60, 20
_PHONE = re.compile(r"[0-9 .()+\-]{6,}")
_FIELDS = (("name", "tên"), ("group", "nhóm"), ("contact", "người liên hệ"), ("phone", "điện thoại"))


@dataclass(frozen=True)
class Form:
    """What the edit form sent, as typed."""

    name: str
    group: str  # an existing group, or NEW_GROUP
    new_group: str
    emails: str
    contact: str
    phone: str
    active: bool


def _clean(text: str) -> str:
    return " ".join(nfc(text).split())


def check(form: Form, before: Institution, groups: list[str]) -> tuple[Institution, list[str]]:
    """The institution as the form would leave it, and what is wrong with the form (empty when it can be saved)."""
    problems: list[str] = []
    name, contact, phone = _clean(form.name), _clean(form.contact), _clean(form.phone)
    if not name:
        problems.append("Vui lòng nhập tên đơn vị.")
    elif len(name) > MAX_NAME:
        problems.append(f"Tên đơn vị quá dài (tối đa {MAX_NAME} ký tự).")
    group = _clean(form.new_group) if form.group == NEW_GROUP else _clean(form.group)
    if not group:
        problems.append(
            "Vui lòng nhập tên nhóm mới."
            if form.group == NEW_GROUP
            else "Vui lòng chọn nhóm của đơn vị hoặc chọn “Nhóm mới” và nhập tên nhóm."
        )
    elif form.group != NEW_GROUP and group not in groups:
        problems.append(f"Nhóm “{group}” không có trong danh sách; để tạo nhóm mới, vui lòng chọn “Nhóm mới”.")
    emails, bad = roster_file.split_emails(form.emails)
    if bad:
        problems.append(f"Địa chỉ thư điện tử “{bad}” không hợp lệ. Vui lòng nhập theo dạng ten@haiphong.edu.vn.")
    elif len(emails) > MAX_EMAILS:
        problems.append(f"Mỗi đơn vị có tối đa {MAX_EMAILS} địa chỉ thư điện tử.")
    if len(contact) > MAX_CONTACT:
        problems.append(f"Tên người liên hệ quá dài (tối đa {MAX_CONTACT} ký tự).")
    if phone and (len(phone) > MAX_PHONE or not _PHONE.fullmatch(phone)):
        problems.append("Số điện thoại không hợp lệ: chỉ gồm chữ số, có thể có dấu cách, dấu chấm, dấu gạch ngang.")
    after = replace(before, name=name, group=group, emails=emails, contact=contact, phone=phone, active=form.active)
    return after, problems


def changes(before: Institution, after: Institution) -> list[str]:
    """``tên: “A” → “B”`` for each field that differs, in Vietnamese (the change log shows them)."""
    out = [
        f"{label}: “{getattr(before, attr)}” → “{getattr(after, attr)}”"
        for attr, label in _FIELDS
        if getattr(before, attr) != getattr(after, attr)
    ]
    if before.emails != after.emails:
        out.append(f"địa chỉ thư: {'; '.join(before.emails) or '(trống)'} → {'; '.join(after.emails) or '(trống)'}")
    if before.active != after.active:
        out.append("tiếp tục theo dõi" if after.active else "ngừng theo dõi")
    return out


def load(engine: Engine, code: str) -> Institution:
    with engine.connect() as conn:
        found = imported(conn).get(code)
    if found is None:
        raise NotFound(f"no institution {code}")
    return found


def groups(engine: Engine) -> list[str]:
    """The roster's groups, in roster order."""
    with engine.connect() as conn:
        return list(dict.fromkeys(i.group for i in imported(conn).values()))


def save(engine: Engine, after: Institution, *, actor: str) -> list[str]:
    """Write the institution (by code) and log what changed; returns the changes (none: nothing written)."""
    i = store.institutions
    with store.atomic(engine) as conn:
        before = imported(conn).get(after.code)
        if before is None:
            raise NotFound(f"no institution {after.code}")
        done = changes(before, after)
        if not done:
            return []
        conn.execute(
            i.update()
            .where(i.c.code == after.code)
            .values(
                name=after.name,
                grp=after.group,
                emails=list(after.emails),
                contact=after.contact,
                phone=after.phone,
                active=after.active,
                updated_at=store.now(),
            )
        )
        detail = f"{after.code}: " + "; ".join(done)
        conn.execute(store.actions.insert().values(action=ACTION, actor=actor, detail=detail[:2000], at=store.now()))
    return done
