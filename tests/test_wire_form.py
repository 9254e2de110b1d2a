"""compose.as_bytes writes our messages exactly as the email package's compat32 policy would (pure).

Its policy writes short or already folded ASCII headers as they are instead of folding each through
``email.header.Header``; the bytes must not change, whatever the sender name, subject or attachments."""

from __future__ import annotations

from datetime import UTC, datetime
from email.policy import compat32

import pytest

from mailbot.config import OutboxSettings
from mailbot.notify.compose import Rendered, Templates, as_bytes, compose
from mailbot.notify.samples import SAMPLE_CONTEXTS

SENDERS = (
    "Sở Giáo dục và Đào tạo Hải Phòng <gdtx@haiphong.edu.vn>",
    "gdtx@haiphong.edu.vn",
    "Phòng Giáo dục thường xuyên và chuyên nghiệp thuộc Sở Giáo dục và Đào tạo thành phố Hải Phòng <gdtx@haiphong.edu.vn>",
)
SUBJECTS = (
    None,  # the template's own
    "Re: " + "Báo cáo kết quả thực hiện phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023 " * 2,
    "short ascii",
    "x" * 200,
)
PLAN = ("Kế hoạch số 12 về việc tổ chức thực hiện phong trào năm 2023.pdf", b"%PDF-1.4 x" * 50, "application/pdf")


@pytest.mark.parametrize("sender", SENDERS)
def test_the_wire_form_is_byte_for_byte_what_compat32_writes(sender: str) -> None:
    templates, old = Templates(), compat32.clone(linesep="\r\n")
    outbox = OutboxSettings.model_validate({"sender": sender, "reply_to": "Phòng GDTX <gdtx@haiphong.edu.vn>"})
    to = ("a@b.vn", "someone.with.a.very.long.address.indeed@truong-thpt-ngo-quyen.haiphong.edu.vn")
    checked = 0
    for kind, context in SAMPLE_CONTEXTS.items():
        for subject in SUBJECTS:
            rendered = templates.render(kind, context)
            if subject:
                rendered = Rendered(subject, rendered.text, rendered.html)
            for attachments in ((), (PLAN,)):
                msg = compose(
                    outbox,
                    b"k" * 32,
                    kind,
                    to,
                    rendered,
                    in_reply_to="<" + "x" * 80 + "@gmail.com>",
                    references="<r1@x.vn> <r2@y.vn> " * 5,
                    when=datetime(2023, 12, 1, tzinfo=UTC),
                    attachments=attachments,
                )
                assert as_bytes(msg) == msg.as_bytes(policy=old), (kind, subject)
                checked += 1
    assert checked == len(SAMPLE_CONTEXTS) * len(SUBJECTS) * 2


@pytest.mark.parametrize("subtype", ["plain", "html"])
def test_a_text_part_is_what_mimetext_makes(subtype: str) -> None:
    """compose.text_part skips email.charset's line-by-line encoder; its part must be MIMEText's, byte for byte."""
    from email.mime.text import MIMEText

    from mailbot.notify.compose import text_part

    templates = Templates()
    texts = ["", "a", "x" * 57, "x" * 58, "Kính gửi: Trường THPT Ngô Quyền\n" * 40, "dòng\r\nkhác\rnữa ☺ 𝒳"]
    texts += [templates.render(kind, context).text for kind, context in SAMPLE_CONTEXTS.items()]
    texts += [templates.render(kind, context).html for kind, context in SAMPLE_CONTEXTS.items()]
    for text in texts:
        ours, theirs = text_part(text, subtype), MIMEText(text, subtype, "utf-8")
        assert ours.as_bytes(policy=compat32) == theirs.as_bytes(policy=compat32), text[:40]
        assert ours.items() == theirs.items()
        assert ours.get_payload(decode=True) == theirs.get_payload(decode=True) == text.encode("utf-8")


def test_what_the_short_writer_does_not_take_is_written_by_the_email_package() -> None:
    """as_bytes writes mailbot's own messages itself; anything else goes to the generator, with the same bytes."""
    from email.message import Message

    from mailbot.notify.compose import text_part

    odd = Message()
    odd["Subject"] = "Báo cáo"  # a header not encoded for the wire: the generator's business
    odd.set_payload("x\n")
    empty_preamble = compose(
        OutboxSettings.model_validate({"sender": SENDERS[0]}),
        b"k" * 32,
        "ack",
        ("a@b.vn",),
        Rendered("s", "t", "h"),
        when=datetime(2023, 12, 1, tzinfo=UTC),
    )
    empty_preamble.preamble = ""
    cr_body = text_part("a\rb\r\nc", "plain")
    cr_body.set_payload("line\rother\r\nlast\n")
    for msg in (odd, empty_preamble, cr_body):
        assert as_bytes(msg) == msg.as_bytes(policy=compat32.clone(linesep="\r\n"))
