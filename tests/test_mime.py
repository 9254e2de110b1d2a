"""mailbot.ingest.mime gives the very tree the standard library's parser gives, untouched (pure).

Its speed comes from changing what ``email.feedparser`` sees (base64 runs folded) and how it matches boundaries;
what must never change is the result. Each message here is read both ways and the trees compared field by field:
headers as written, payloads, preambles, epilogues, defects. The speed itself is measured by bench/ingest.py.
"""

from __future__ import annotations

import base64
import contextlib
import email
import random
import re
from collections.abc import Iterator
from email import feedparser
from email.message import Message
from email.policy import compat32
from typing import Any

import pytest

from mailbot.ingest import mime
from tests.hostile_mail import corpus
from tests.test_bad_input import corpus_messages, needs_corpus

SEED = 20261201


@contextlib.contextmanager
def untouched_parser() -> Iterator[None]:
    """``email.feedparser`` as Python ships it, for the duration."""
    saved = feedparser.re, feedparser.NLCRE_eol  # type: ignore[attr-defined]
    feedparser.re, feedparser.NLCRE_eol = re, re.compile(r"(\r\n|\r|\n)\Z")  # type: ignore[attr-defined]
    try:
        yield
    finally:
        feedparser.re, feedparser.NLCRE_eol = saved  # type: ignore[attr-defined]


def shape(msg: Message) -> tuple[Any, ...]:
    payload = msg._payload  # type: ignore[attr-defined]
    inner = [shape(p) for p in payload] if isinstance(payload, list) else payload
    defects = [type(d).__name__ for d in msg.defects]
    return (msg._headers, msg._unixfrom, msg.preamble, msg.epilogue, defects, msg._default_type, msg._charset, inner)  # type: ignore[attr-defined]


def both_ways(data: bytes) -> tuple[Any, Any]:
    def read(parse: Any) -> Any:
        try:
            return shape(parse(data))
        except RecursionError:  # a bomb of nested parts: both must give up alike
            return "RecursionError"

    with untouched_parser():
        theirs = read(lambda d: email.message_from_bytes(d, policy=compat32))
    return read(mime.message_from_bytes), theirs


def b64_lines(size: int, width: int = 76, eol: bytes = b"\r\n", seed: int = 1) -> bytes:
    text = base64.b64encode(random.Random(seed).randbytes(size))
    return eol.join(text[i : i + width] for i in range(0, len(text), width))


def multipart(
    body: bytes, eol: bytes = b"\r\n", ctype: bytes = b"application/octet-stream", tail: bytes = b""
) -> bytes:
    lines = [
        b"From: a@haiphong.edu.vn",
        b'Content-Type: multipart/mixed; boundary="==b=="',
        b"",
        b"--==b==",
        b"Content-Type: text/plain",
        b"",
        b"hello",
        b"--==b==",
        b"Content-Type: " + ctype,
        b"Content-Transfer-Encoding: base64",
        b"",
        body,
        tail + b"--==b==--",
        b"",
    ]
    return eol.join(lines)


REGULAR = {
    "crlf": multipart(b64_lines(30_000)),
    "lf": multipart(b64_lines(30_000, eol=b"\n"), eol=b"\n"),
    "width 72": multipart(b64_lines(30_000, width=72)),
    "blank line before the boundary": multipart(b64_lines(30_000), tail=b"\r\n\r\n"),
    "a short last line": multipart(b64_lines(30_001)),
    "the whole of a single-part message": b"Content-Transfer-Encoding: base64\r\n\r\n" + b64_lines(20_000) + b"\r\n",
    "at the end, no line end": b"Subject: x\r\n\r\n" + b64_lines(20_000),
    "the preamble": b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n'
    + b64_lines(9000)
    + b"\r\n--q\r\n\r\nx\r\n--q--\r\n",
    "the epilogue": b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n\r\nx\r\n--q--\r\n\r\n'
    + b64_lines(9000),
    "a forwarded message's body": multipart(
        b"Subject: inner\r\nContent-Transfer-Encoding: base64\r\n\r\n" + b64_lines(20_000), ctype=b"message/rfc822"
    ),
    "delivery-status blocks": multipart(b"Action: failed\r\n\r\n" + b64_lines(9000), ctype=b"message/delivery-status"),
    "no boundary": b"Content-Type: multipart/mixed\r\n\r\n" + b64_lines(9000) + b"\r\n",
    "no start boundary": b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n' + b64_lines(9000) + b"\r\n",
    "no close boundary": b'Content-Type: multipart/mixed; boundary="q"\r\n\r\n--q\r\n\r\n' + b64_lines(9000) + b"\r\n",
}


RUN = b64_lines(30_000)
AT = 40 * (RUN.index(b"\r\n") + 2)  # the start of the 41st line
IRREGULAR = {  # name: (inserted at a line's start, the part's type, what no folded run may then hold)
    "a blank line inside": (b"\r\n", "text/plain", "\r\n\r\n"),
    "a blank line inside, delivery-status": (b"\r\n", "message/delivery-status", "\r\n\r\n"),
    "a lone CR": (b"Q\rQ", "text/plain", "Q\rQ"),
    "a lone CR making a blank line": (b"\r", "text/plain", "\n\r"),
    "a line of another width": (b"QUJD\r\n", "text/plain", "\nQUJD\r"),
    "a header-like line": (b"X-Not:header\r\n", "text/plain", ":"),
    "a boundary inside": (b"--==b==\r\n", "text/plain", "-"),
    "a space-led line": (b" QUJD\r\n", "text/plain", " "),
}


def spoiled(name: str) -> bytes:
    insert, ctype, _ = IRREGULAR[name]
    return multipart(RUN[:AT] + insert + RUN[AT:], ctype=ctype.encode())


@pytest.mark.parametrize("name", sorted(REGULAR))
def test_a_regular_base64_run_is_folded_and_the_tree_is_the_parsers(name: str) -> None:
    data = REGULAR[name]
    assert mime._fold(data)[1], "nothing folded: the fast path was not taken"
    ours, theirs = both_ways(data)
    assert ours == theirs


@pytest.mark.parametrize("name", sorted(IRREGULAR))
def test_an_irregular_line_is_never_folded_and_the_tree_is_the_same(name: str) -> None:
    data = spoiled(name)
    runs = mime._fold(data)[1].values()
    assert all(IRREGULAR[name][2] not in run for run in runs)
    ours, theirs = both_ways(data)
    assert ours == theirs


def test_a_message_in_another_line_end_or_quoting_the_placeholder_is_read_as_it_is() -> None:
    lf_in_crlf = multipart(b64_lines(30_000, eol=b"\n"))
    quoting = multipart(RUN, tail=mime._FOLD_PREFIX.encode() + b"000000\r\n")
    for data in (lf_in_crlf, quoting):
        assert not mime._fold(data)[1]
        ours, theirs = both_ways(data)
        assert ours == theirs


def test_a_report_reads_the_same_bytes_after_folding() -> None:
    docx = random.Random(3).randbytes(40_000)
    data = multipart(base64.encodebytes(docx).replace(b"\n", b"\r\n").rstrip())
    assert mime._fold(data)[1]
    assert mime.message_from_bytes(data).get_payload(1).get_payload(decode=True) == docx


def test_every_generated_hostile_message_gives_the_same_tree() -> None:
    mails = corpus(SEED, 400)
    folded = 0
    for category, data in mails:
        folded += bool(mime._fold(data)[1])
        ours, theirs = both_ways(data)
        assert ours == theirs, category
    assert folded > 10  # the corpus does exercise the fast path


@pytest.mark.corpus
@needs_corpus
def test_every_corpus_message_gives_the_same_tree() -> None:
    messages = corpus_messages()
    folded = 0
    for data in messages:
        folded += bool(mime._fold(data)[1])
        ours, theirs = both_ways(data)
        assert ours == theirs, data[:300]
    assert len(messages) > 1000 and folded > 100


SEPARATORS = ["--b", "--==b==", "--a.b(c)*+?[x]{2}|^$\\", "--tab\tin", "--"]
ENDINGS = ["", "\n", "\r", "\r\n", "--", "--\n", "--\r\n", " \t\r\n", "-- \n", "---\n", "--x", " x\n", "x", "\t--\n"]


def test_a_boundary_matches_as_the_parsers_regular_expression_does() -> None:
    for sep in SEPARATORS:
        ours = feedparser.re.compile(  # type: ignore[attr-defined]
            "(?P<sep>" + re.escape(sep) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$"
        )
        theirs = re.compile("(?P<sep>" + re.escape(sep) + r")(?P<end>--)?(?P<ws>[ \t]*)(?P<linesep>\r\n|\r|\n)?$")
        assert isinstance(ours, mime._Boundary)
        for line in [sep + e for e in ENDINGS] + ["x" + sep, sep[:-1], "", "\n"]:
            a, b = ours.match(line), theirs.match(line)
            assert bool(a) == bool(b), (sep, line)
            if a and b:
                assert [a.group(g) for g in ("sep", "end", "ws", "linesep")] == list(
                    b.group("sep", "end", "ws", "linesep")
                )


def test_any_other_expression_is_compiled_by_re() -> None:
    assert isinstance(feedparser.re.compile(r"\r\n|\n"), re.Pattern)  # type: ignore[attr-defined]
    assert feedparser.re.escape("a.b") == re.escape("a.b")  # type: ignore[attr-defined]


# ---------------------------------------------------------------- a part's bytes


def decoded_both_ways(data: bytes) -> list[tuple[Any, ...]]:
    """Each part's bytes and the defects decoding them added, by ``decoded_payload`` and by the standard library
    (each on a tree of its own: decoding records its defects on the part)."""
    try:
        ours, theirs = mime.message_from_bytes(data), mime.message_from_bytes(data)
        pairs = list(zip(ours.walk(), theirs.walk(), strict=True))
    except RecursionError:  # a bomb of nested parts: no part is ever decoded
        return []
    found = []
    for a, b in pairs:
        got, expected = mime.decoded_payload(a), b.get_payload(decode=True)
        found.append((got, [type(d).__name__ for d in a.defects], expected, [type(d).__name__ for d in b.defects]))
    return found


def single_part(body: bytes, cte: bytes = b"base64") -> bytes:
    return b"Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: " + cte + b"\r\n\r\n" + body


BODIES = {
    "regular": b64_lines(30_000),
    "missing padding": b64_lines(30_001).rstrip(b"="),
    "excess padding": b64_lines(30_001) + b"==",
    "padding inside": b64_lines(3000)[:40] + b"==" + b64_lines(3000)[42:],
    "a stray character": b64_lines(3000)[:40] + b"*" + b64_lines(3000)[41:],
    "a space": b64_lines(3000)[:40] + b" " + b64_lines(3000)[41:],
    "8-bit bytes": b64_lines(3000)[:40] + b"\xc3\xa9" + b64_lines(3000)[42:],
    "lone CRs and LFs": b64_lines(3000, eol=b"\r").replace(b"\r", b"\n", 3),
    "empty": b"",
    "only padding": b"====",
    "non-canonical last bits": b"QR==\r\n",
}


@pytest.mark.parametrize("name", sorted(BODIES))
def test_a_part_decodes_to_the_bytes_and_defects_the_standard_library_gives(name: str) -> None:
    for data in (single_part(BODIES[name]), multipart(BODIES[name]), single_part(BODIES[name], b" BASE64 ")):
        for got, got_defects, expected, expected_defects in decoded_both_ways(data):
            assert got == expected
            assert got_defects == expected_defects


def test_the_fast_decoder_takes_a_report_and_leaves_a_faulty_body_to_the_standard_library(monkeypatch: Any) -> None:
    taken: list[bytes] = []
    fast = mime.pybase64.b64decode

    def spy(data: bytes, **kwargs: Any) -> bytes:
        taken.append(data)
        return fast(data, **kwargs)

    monkeypatch.setattr(mime.pybase64, "b64decode", spy)
    docx = random.Random(4).randbytes(40_000)
    report = multipart(base64.encodebytes(docx).replace(b"\n", b"\r\n").rstrip())
    assert mime.decoded_payload(mime.message_from_bytes(report).get_payload(1)) == docx
    assert len(taken) == 1
    for name in ("missing padding", "8-bit bytes"):
        assert mime.decoded_payload(mime.message_from_bytes(single_part(BODIES[name]))) is not None
    assert len(taken) == 1


def test_random_bodies_decode_as_the_standard_library_decodes_them() -> None:
    rnd = random.Random(SEED)
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    extra = [b"=", b"==", b"\r\n", b"\n", b"\r", b"-", b" ", b"\x00", b"\xff"]
    for _ in range(3000):
        body = b"".join(
            rnd.choice(extra) if rnd.random() < 0.08 else bytes([rnd.choice(alphabet)])
            for _ in range(rnd.randrange(40))
        )
        for got, got_defects, expected, expected_defects in decoded_both_ways(single_part(body)):
            assert (got, got_defects) == (expected, expected_defects), body


def test_every_generated_hostile_message_decodes_as_the_standard_library_decodes_it() -> None:
    decoded = 0
    for category, data in corpus(SEED, 400):
        for got, got_defects, expected, expected_defects in decoded_both_ways(data):
            assert (got, got_defects) == (expected, expected_defects), category
            decoded += bool(got)
    assert decoded > 100


@pytest.mark.corpus
@needs_corpus
def test_every_corpus_message_decodes_as_the_standard_library_decodes_it() -> None:
    decoded = 0
    for data in corpus_messages():
        for got, got_defects, expected, expected_defects in decoded_both_ways(data):
            assert (got, got_defects) == (expected, expected_defects), data[:300]
            decoded += bool(got)
    assert decoded > 1000
