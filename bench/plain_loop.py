"""The hand-written baseline for bench/ingest.py: an imap-tools loop that opens every Word attachment.

    python bench/plain_loop.py HOST PORT USER      (password in $BENCH_IMAP_PASSWORD)

Fetches INBOX one message at a time (imap-tools' default, ``bulk=False``), opens each ``.docx``
attachment with python-docx and reads all its paragraphs.  Plain IMAP, like the other contenders.
Prints ``messages=<n> documents=<n> paragraphs=<n>`` so the caller can check it saw everything.
"""

from __future__ import annotations

import io
import os
import sys

import docx
from imap_tools import MailBoxUnencrypted


def main(host: str, port: str, user: str) -> None:
    messages = documents = paragraphs = 0
    with MailBoxUnencrypted(host, int(port)).login(user, os.environ["BENCH_IMAP_PASSWORD"], "INBOX") as box:
        for msg in box.fetch(mark_seen=False):
            messages += 1
            for att in msg.attachments:
                if att.filename.lower().endswith(".docx"):
                    document = docx.Document(io.BytesIO(att.payload))
                    paragraphs += sum(1 for p in document.paragraphs if p.text)
                    documents += 1
    print(f"messages={messages} documents={documents} paragraphs={paragraphs}")


if __name__ == "__main__":
    main(*sys.argv[1:4])
