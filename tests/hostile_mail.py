"""A seeded generator of hostile and broken mail, for tests/test_hostile.py.

``corpus(seed, random_trees)`` returns ``[(category, raw bytes)]``: random MIME trees (random multipart
subtypes and depths, bad boundaries, wrong or unknown transfer encodings, bad charsets, lying names and types,
NULs, 8-bit garbage, missing or doubled headers, bare LF/CR), plus handpicked cases: huge headers, deep
nesting, zip bombs, billion-laughs and XXE Word files, path traversal names, header injection attempts, forged
senders (several From addresses, results hidden in Authentication-Results property values: category
``forged_sender``, every one of which must be held and get no reply), raw 8-bit (UTF-8 and Windows-1258) headers
and file names, zips named in cp1258 without the UTF-8 flag (category ``eight_bit``), and the bad messages of the
earlier issues. The same seed always gives the same bytes.

Traversal names aim at files called ``CANARY*``; after a run none may exist outside the archive.
"""

from __future__ import annotations

import base64
import binascii
import functools
import io
import quopri
import random
import struct
import unicodedata
import zipfile
import zlib
from urllib.parse import quote

from mailbot.demo import samples

CANARY = "mailbot-hostile-canary"
DOMAIN = "hostile.test"
ROSTER = [r for r in samples.load_demo_roster() if r["emails"]]
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
    b'content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/'
    b'document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
    b'document.main+xml"/></Types>'
)
GB = 1 << 30
MB = 1 << 20

# Names that try to leave the archive (or overwrite what is beside it).
TRAVERSAL_NAMES = (
    f"../../../../../../../../tmp/{CANARY}-1.docx",
    f"/tmp/{CANARY}-2.docx",
    f"C:\\..\\..\\tmp\\{CANARY}-3.docx",
    f"..\\..\\..\\..\\..\\..\\tmp\\{CANARY}-4.docx",
    f"....//....//....//tmp/{CANARY}-5.docx",
    f"%2e%2e%2f%2e%2e%2f%2e%2e%2ftmp%2f{CANARY}-6.docx",
    f"..\u2215..\u2215..\u2215tmp\u2215{CANARY}-7.docx",
    f"..\uff0f..\uff0ftmp\uff0f{CANARY}-8.docx",
    f"../../../../../../../../etc/{CANARY}-9.docx",
    "../../etc/passwd.docx",
    "/etc/passwd.docx",
    "C:\\..\\x.docx",
    "../../mailbot.toml",
    "../../../roster.csv",
    "../mailbot.sqlite3",
    "../secret.key",
    "..",
    ".",
    "",
    "/",
    "\\\\server\\share\\x.docx",
    f"\x00../../tmp/{CANARY}-10.docx",
    f"a\r\nContent-Type: text/html\r\n\r\n{CANARY}-11.docx",
    "CON.docx",
    "aux",
    "nul.docx",
    "x" * 5000 + ".docx",
    "\u202egnp.docx",  # device names, very long, RTL override
)


# Authentication-Results as our server would write them for a forged roster address: DMARC fails, but a
# sender-chosen value (envelope address, comment, quoted string, encoded-word) or trailing text says "pass".
MX = "mx.haiphong.edu.vn"
FORGED_AUTH_RESULTS: tuple[str | bytes, ...] = (
    f"{MX}; spf=fail smtp.mailfrom=dmarc=pass@{DOMAIN}; dmarc=fail",
    f'{MX}; spf=fail smtp.mailfrom="x;dmarc=pass"@{DOMAIN}; dmarc=fail',
    f"{MX}; spf=fail (domain of x;dmarc=pass@{DOMAIN}) smtp.mailfrom={DOMAIN}; dmarc=fail",
    f"{MX}; spf=fail (a (b \\) ; dmarc=pass) c) smtp.mailfrom={DOMAIN}; dmarc=fail",
    f"{MX}; spf=fail smtp.mailfrom==?utf-8?Q?x=3B_dmarc=3Dpass?=@{DOMAIN}; dmarc=fail",
    f"{MX}; spf=fail smtp.mailfrom={DOMAIN} dmarc=pass; dmarc=fail header.from=haiphong.edu.vn dmarc=pass",
    f"{MX}; spf=pass smtp.mailfrom={DOMAIN}; dmarc=pass header.from={DOMAIN}",  # a pass, for another domain
    f"{MX}; dkim=pass header.d={DOMAIN} (" + "; dmarc=pass" * 20_000 + "); dmarc=fail",
    f"{MX}; spf=fail smtp.mailfrom=".encode() + b"\xc4\x91\xff;dmarc=pass@" + f"{DOMAIN}; dmarc=fail".encode(),  # 8-bit
)


def zip_of(entries: list[tuple[str, bytes]], *, flag_utf8: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            if flag_utf8:
                info.flag_bits |= 0x800
            z.writestr(info, data)
    return buffer.getvalue()


def cp1258(text: str) -> bytes:
    """``text`` as Windows in Vietnamese writes it: precomposed where the code page has the letter, else the
    letter without its tone followed by the combining tone (Python's codec does not decompose by itself)."""
    out = bytearray()
    for ch in unicodedata.normalize("NFC", text):
        try:
            out += ch.encode("cp1258")
        except UnicodeEncodeError:
            decomposed = unicodedata.normalize("NFD", ch)
            tone = next(m for m in decomposed if m in "\u0300\u0301\u0303\u0309\u0323")
            out += unicodedata.normalize("NFC", decomposed.replace(tone, "")).encode("cp1258") + tone.encode("cp1258")
    return bytes(out)


class _LegacyName(zipfile.ZipInfo):
    """An entry whose name is written as given bytes, without the UTF-8 flag (as old Windows tools do)."""

    raw_name = b""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 - zipfile's own name
        return self.raw_name, self.flag_bits & ~0x800


def legacy_zip(entries: list[tuple[str, bytes]], encode=cp1258) -> bytes:  # type: ignore[no-untyped-def]
    """A zip whose entry names are ``encode(name)`` bytes with no UTF-8 flag (default: Windows-1258)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries:
            info = _LegacyName(name, (1980, 1, 1, 0, 0, 0))
            info.raw_name, info.compress_type = encode(name), zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return buffer.getvalue()


def raw_zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, deflated data, crc32, declared uncompressed size, declared compressed size)."""
    out, central = io.BytesIO(), io.BytesIO()
    for name, data, crc, size, csize in entries:
        encoded = name.encode()
        offset = out.tell()
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0x800, 8, 0, 0x21, crc, csize, size, len(encoded), 0))
        out.write(encoded + data)
        central.write(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                20,
                20,
                0x800,
                8,
                0,
                0x21,
                crc,
                csize,
                size,
                len(encoded),
                0,
                0,
                0,
                0,
                0,
                offset,
            )
            + encoded
        )
    cd = central.getvalue()
    count = len(entries)
    return out.getvalue() + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(cd), out.tell(), 0)


def _segment(data: bytes) -> bytes:
    """Raw deflate ending on a byte boundary with no reference backwards: segments can be concatenated."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    return comp.compress(data) + comp.flush(zlib.Z_FULL_FLUSH)


@functools.cache
def deflated(prefix: bytes, fill: bytes, total: int, suffix: bytes = b"") -> tuple[bytes, int, int]:
    """Raw deflate of prefix + fill repeated up to ``total`` bytes + suffix: (data, crc32, size), without
    ever holding the expanded bytes (one compressed megabyte, repeated)."""
    chunk = (fill * (MB // len(fill) + 1))[:MB]
    remaining = total - len(prefix) - len(suffix)
    full, rest = divmod(remaining, MB)
    crc = zlib.crc32(prefix)
    for _ in range(full):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(suffix, zlib.crc32(chunk[:rest], crc))
    data = _segment(prefix) + _segment(chunk) * full + _segment(chunk[:rest]) + _segment(suffix) + b"\x03\x00"
    return data, crc, total


def bomb_docx(prefix: bytes, fill: bytes, total: int, suffix: bytes = b"", *, lie: bool = False) -> bytes:
    """A .docx whose word/document.xml expands to ``total`` bytes (``lie``: its header claims 1 KB)."""
    data, crc, size = deflated(prefix, fill, total, suffix)
    ct, ct_crc, ct_size = deflated(CONTENT_TYPES, b" ", len(CONTENT_TYPES))
    return raw_zip(
        [
            ("[Content_Types].xml", ct, ct_crc, ct_size, len(ct)),
            ("word/document.xml", data, crc, 1024 if lie else size, len(data)),
        ]
    )


def docx_with(parts: dict[str, bytes]) -> bytes:
    return zip_of([("[Content_Types].xml", CONTENT_TYPES), *parts.items()])


def billion_laughs(levels: int = 10) -> bytes:
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">' for i in range(1, levels)
    ]
    return (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{"".join(entities)}]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>&lol{levels - 1};</w:t></w:r></w:p></w:body>'
        f"</w:document>"
    ).encode()


def quadratic_blowup() -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY a "{"A" * 100_000}">]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>{"&a;" * 20_000}</w:t></w:r></w:p></w:body>'
        f"</w:document>"
    ).encode()


def xxe(target: str = "file:///etc/passwd") -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY x SYSTEM "{target}">]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>&x;</w:t></w:r></w:p></w:body></w:document>'
    ).encode()


def plain_document(text: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>{text}'
        f"</w:t></w:r></w:p></w:body></w:document>"
    ).encode()


# --------------------------------------------------------------------------- building messages by hand


def b64(data: bytes) -> bytes:
    return base64.encodebytes(data).replace(b"\n", b"\r\n")


def encoded_word(text: str, charset: str = "utf-8", q: bool = False) -> str:
    try:
        data = text.encode(charset, "replace")
    except LookupError:  # a charset nobody knows: the label lies about UTF-8 bytes
        data = text.encode("utf-8")
    if q:
        return f"=?{charset}?Q?{''.join(chr(c) if chr(c).isalnum() else f'={c:02X}' for c in data)}?="
    return f"=?{charset}?B?{base64.b64encode(data).decode()}?="


def message(headers: list[tuple[str, str | bytes]], body: bytes, eol: bytes = b"\r\n") -> bytes:
    lines = [
        name.encode() + b": " + (value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape"))
        for name, value in headers
    ]
    return eol.join(lines) + eol + eol + body


def attachment_part(name: str, data: bytes, ctype: str = "application/octet-stream", style: str = "rfc2231") -> bytes:
    if style == "rfc2231":
        disp = f"attachment; filename*=utf-8''{quote(name, safe='')}"
    elif style == "rfc2047":
        disp = f'attachment; filename="{encoded_word(name)}"'
    else:
        disp = f'attachment; filename="{name}"'
    return message(
        [
            ("Content-Type", f'{ctype}; name="{name if style == "raw" else encoded_word(name)}"'),
            ("Content-Disposition", disp),
            ("Content-Transfer-Encoding", "base64"),
        ],
        b64(data),
    )


def multipart(parts: list[bytes], boundary: str = "b0und4ry", subtype: str = "mixed") -> tuple[str, bytes]:
    body = (
        b"".join(b"--" + boundary.encode() + b"\r\n" + p + b"\r\n" for p in parts)
        + b"--"
        + boundary.encode()
        + b"--\r\n"
    )
    return f'multipart/{subtype}; boundary="{boundary}"', body


def eight_bit_mail(
    encode,
    address: str,
    message_id: str,
    docx: bytes,  # type: ignore[no-untyped-def]
    subject: str = "Báo cáo ANTQ - Trường THPT Ngô Quyền",
    name: str = "Báo cáo Trường THPT Ngô Quyền.docx",
) -> bytes:
    """A message written by old software: From, Subject and the file name as raw ``encode(text)`` bytes."""
    raw_name = encode(name)
    return message(
        [
            ("From", encode("Trường THPT Ngô Quyền") + b" " + address.encode()),
            ("Subject", encode(subject)),
            ("Message-ID", message_id),
            ("MIME-Version", "1.0"),
            ("Content-Type", b'application/octet-stream; name="' + raw_name + b'"'),
            ("Content-Disposition", b'attachment; filename="' + raw_name + b'"'),
            ("Content-Transfer-Encoding", "base64"),
        ],
        b64(docx),
    )


class Generator:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)
        self.count = 0
        self.docx = samples.make_report_docx("Trường THPT Ngô Quyền")
        self.legacy = samples.fake_legacy_doc()
        self.pdf = samples.minimal_pdf()
        self.png = b"\x89PNG\r\n\x1a\n" + bytes(64)

    # --- headers ------------------------------------------------------------------------------------

    def mid(self) -> str:
        self.count += 1
        return f"<hostile-{self.count}@{DOMAIN}>"

    def sender(self) -> str | bytes:
        r = self.r
        row = r.choice(ROSTER)
        choice = r.randrange(10)
        if choice < 4:
            return f"{encoded_word(row['name'])} <{row['emails'][0]}>"
        if choice == 4:
            return row["emails"][0].upper()
        if choice == 5:
            return f"{self.garbage(20)!r} <stranger{r.randrange(1000)}@gmail.com>"
        if choice == 6:
            return b"\xc4\x90\xff\xfe Tr\xe6\xf8ng <" + row["emails"][0].encode() + b">"
        if choice == 7:
            return "undisclosed-recipients:;"
        if choice == 8:
            return f"<{row['emails'][0]}>, <other@x>, {encoded_word('a, b <c@d>')} <e@f>"
        return "MAILER-DAEMON@" + DOMAIN

    def subject(self) -> str | bytes:
        r = self.r
        text = r.choice(["Báo cáo ANTQ", "Re: Fw: báo cáo", "", "BC", "Báo cáo\u0000null", "Bao cao " * 50])
        style = r.randrange(6)
        if style == 0:
            return encoded_word(text)
        if style == 1:
            return encoded_word(text, "windows-1258" if r.random() < 0.5 else "x-unknown-charset")
        if style == 2:
            return text.encode("utf-8")  # raw 8-bit
        if style == 3:
            return "=?utf-8?B?!!!not-base64!!!?= " + "=?utf-8?Q?broken=ZZ=?="
        if style == 4:
            return encoded_word("a\r\nBcc: victim@example.com\r\nX-Injected: 1")
        return text

    def garbage(self, n: int) -> bytes:
        return bytes(self.r.randrange(256) for _ in range(n))

    def name(self) -> str:
        r = self.r
        choice = r.randrange(8)
        if choice == 0:
            return r.choice(TRAVERSAL_NAMES)
        if choice == 1:
            return "Báo cáo ANTQ.docx"
        if choice == 2:
            return "ba\u0301o ca\u0301o.docx"  # NFD
        if choice == 3:
            return r.choice(["baocao.pdf", "scan.jpg", "x.exe", "report.zip", "bc.doc", "bc.docm", "bc"])
        if choice == 4:
            return "".join(chr(r.randrange(32, 0x3000)) for _ in range(r.randrange(1, 40))) + ".docx"
        if choice == 5:
            return "bc.docx" + " " * r.randrange(5) + "." * r.randrange(3)
        if choice == 6:
            return "x" * r.randrange(200, 600) + ".docx"
        return ""

    # --- leaves -------------------------------------------------------------------------------------

    def leaf_data(self) -> tuple[str, bytes]:
        r = self.r
        kind = r.choice(
            [
                "text",
                "html",
                "docx",
                "truncated_docx",
                "legacy",
                "pdf",
                "png",
                "zip",
                "garbage",
                "empty",
                "rfc822",
                "docx_png",
                "nested_zip",
            ]
        )
        if kind == "text":
            return "text/plain", "Kính gửi Sở\r\n".encode(
                r.choice(["utf-8", "utf-16", "latin-1"]), "replace"
            ) * r.randrange(1, 20)
        if kind == "html":
            return "text/html", b"<html><body><p>B\xe1o c\xe1o<script>alert(1)</script></body>" + self.garbage(
                r.randrange(50)
            )
        if kind == "docx":
            small = docx_with({"word/document.xml": plain_document(r.choice(ROSTER)["name"])})
            return (
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                self.docx if r.random() < 0.2 else small,
            )
        if kind == "truncated_docx":
            return "application/msword", self.docx[: r.randrange(10, len(self.docx))]
        if kind == "legacy":
            return "application/msword", self.legacy
        if kind == "pdf":
            return "application/pdf", self.pdf
        if kind == "png":
            return "image/png", self.png
        if kind == "zip":
            return "application/zip", zip_of(
                [(self.name() or "a.docx", self.docx), ("b.txt", b"x")], flag_utf8=r.random() < 0.5
            )
        if kind == "nested_zip":
            return "application/zip", zip_of(
                [("inner.zip", zip_of([("deep.zip", zip_of([("bc.docx", self.docx[:2000])]))]))]
            )
        if kind == "garbage":
            return r.choice(["application/octet-stream", "application/x-garbage", "bogus", "text/plain"]), self.garbage(
                r.randrange(1, 3000)
            )
        if kind == "rfc822":
            return "message/rfc822", self.simple(depth=1)
        if kind == "docx_png":
            return "application/vnd.openxmlformats-officedocument.wordprocessingml.document", self.png  # lies
        return "application/octet-stream", b""

    def encode(self, data: bytes) -> tuple[str, bytes]:
        """A transfer encoding, sometimes not the one declared."""
        r = self.r
        declared = r.choice(
            ["base64", "base64", "quoted-printable", "7bit", "8bit", "binary", "x-uuencode", "bogus", ""]
        )
        actual = declared if r.random() < 0.8 else r.choice(["base64", "quoted-printable", "raw"])
        if actual == "base64":
            body = b64(data)
            if r.random() < 0.1:
                body = body[: len(body) // 2] + b"!!*not base64*!!\r\n" + body[len(body) // 2 :]
            if r.random() < 0.05:
                body = body.rstrip(b"=\r\n")  # missing padding
        elif actual == "quoted-printable":
            body = quopri.encodestring(data).replace(b"\n", b"\r\n")
            if r.random() < 0.2:
                body += b"=ZZ=\r\n=4"
        elif actual == "x-uuencode":
            body = (
                b"begin 644 x\r\n"
                + b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
                + b"`\r\nend\r\n"
            )
        else:
            body = data
        return declared, body

    def leaf(self) -> bytes:
        r = self.r
        ctype, data = self.leaf_data()
        headers: list[tuple[str, str | bytes]] = []
        charset = r.choice(["utf-8", "windows-1258", "x-unknown", "utf-7", "", "us-ascii", "a" * 300, "utf-8\x00"])
        params = f'; charset="{charset}"' if charset and ctype.startswith("text") else ""
        name = self.name() if ctype != "message/rfc822" else ""
        if name:
            style = r.choice(["rfc2231", "rfc2047", "raw", "name_only"])
            if style == "rfc2231":
                headers.append(("Content-Disposition", f"attachment; filename*=utf-8''{quote(name, safe='')}"))
            elif style == "rfc2047":
                headers.append(("Content-Disposition", f'attachment; filename="{encoded_word(name)}"'))
            elif style == "raw":
                headers.append(
                    ("Content-Disposition", b'attachment; filename="' + name.encode("utf-8", "replace") + b'"')
                )
            else:
                params += f'; name="{encoded_word(name)}"'
            if r.random() < 0.1:  # RFC 2231 continuations, out of order or with holes
                headers.append(
                    (
                        "Content-Disposition",
                        "attachment; filename*3*=x.docx; filename*0*=utf-8''%E1%BA; filename*1=..%2F",
                    )
                )
        if r.random() < 0.05:
            ctype = r.choice(["", "text", "application/", "/", "multipart/mixed"])  # broken or lying types
        headers.insert(0, ("Content-Type", ctype + params))
        if ctype == "message/rfc822":
            return message(headers, data)
        declared, body = self.encode(data)
        if declared:
            headers.append(("Content-Transfer-Encoding", declared))
        return message(headers, body)

    # --- trees --------------------------------------------------------------------------------------

    def boundary(self) -> str:
        r = self.r
        choice = r.randrange(10)
        if choice == 0:
            return "b" * 2000
        if choice == 1:
            return ""
        if choice == 2:
            return 'with space and "quote'
        return f"=_b{r.randrange(10**9)}"

    def tree(self, depth: int) -> tuple[str, bytes]:
        r = self.r
        if depth <= 0 or r.random() < 0.3:
            part = self.leaf()
            head, _, body = part.partition(b"\r\n\r\n")
            ctype = next(
                (
                    line.split(b": ", 1)[1].decode("utf-8", "replace")
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-type")
                ),
                "text/plain",
            )
            return ctype, part
        boundary = self.boundary()
        subtype = r.choice(["mixed", "alternative", "related", "signed", "report", "digest", "x-weird"])
        children = [self.tree(depth - 1)[1] for _ in range(r.randrange(0, 4))]
        sep = boundary.encode()
        body = self.garbage(r.randrange(3)) if r.random() < 0.2 else b"This is a multi-part message.\r\n"
        body += b"".join(b"--" + sep + b"\r\n" + c + b"\r\n" for c in children)
        mutation = r.randrange(8)
        if mutation == 0:
            pass  # no closing boundary
        elif mutation == 1:
            body += b"--" + sep + b"-\r\n"  # closing boundary mistyped
        else:
            body += b"--" + sep + b"--\r\nepilogue " + self.garbage(r.randrange(10)) + b"\r\n"
        header_boundary = boundary
        if r.random() < 0.1:
            header_boundary = "not-the-boundary"
        ctype = f'multipart/{subtype}; boundary="{header_boundary}"' if r.random() > 0.05 else f"multipart/{subtype}"
        return ctype, message([("Content-Type", ctype)], body)

    def top(self, ctype: str, body: bytes, *, extra: list[tuple[str, str | bytes]] | None = None) -> bytes:
        r = self.r
        headers: list[tuple[str, str | bytes]] = [
            ("From", self.sender()),
            ("To", "gdtx@haiphong.edu.vn"),
            ("Subject", self.subject()),
            ("Date", r.choice(["Fri, 1 Dec 2023 09:00:00 +0700", "yesterday", "", "Mon, 32 Foo 99999 25:61:61 +9999"])),
            ("Message-ID", self.mid()),
            ("MIME-Version", "1.0"),
        ]
        for _ in range(r.randrange(3)):  # missing and doubled headers
            victim = r.randrange(len(headers))
            if r.random() < 0.5:
                headers.pop(victim)
            else:
                headers.append(headers[victim])
        headers += extra or []
        if r.random() < 0.1:
            headers.append(("X-Garbage", self.garbage(r.randrange(1, 200)).replace(b"\r", b"").replace(b"\n", b"")))
        head, _, content = message([("Content-Type", ctype)], body).partition(b"\r\n\r\n")
        raw = message(headers, b"")[:-2] + head + b"\r\n\r\n" + content
        if r.random() < 0.05:
            raw = raw.replace(b"\r\n", b"\n")  # bare LF
        if r.random() < 0.02:
            raw = raw.replace(b"\r\n", b"\r")  # bare CR
        if r.random() < 0.05:
            at = r.randrange(len(raw))
            raw = raw[:at] + b"\x00" * r.randrange(1, 5) + raw[at:]
        return raw

    def simple(self, depth: int = 4) -> bytes:
        ctype, body = self.tree(depth)
        _, _, content = body.partition(b"\r\n\r\n")
        return self.top(ctype, content)

    # --- handpicked ---------------------------------------------------------------------------------

    def mail(
        self,
        attachments: list[tuple[str, bytes, str]],
        *,
        subject: str = "Báo cáo ANTQ",
        sender: str | None = None,
        extra: list[tuple[str, str | bytes]] | None = None,
        style: str = "rfc2231",
    ) -> bytes:
        row = ROSTER[self.count % len(ROSTER)]
        parts = [message([("Content-Type", 'text/plain; charset="utf-8"')], "Kính gửi Sở".encode())]
        parts += [attachment_part(name, data, ctype, style) for name, data, ctype in attachments]
        ctype, body = multipart(parts, boundary=f"=_hand{self.count}")
        headers: list[tuple[str, str | bytes]] = [
            ("From", sender or f"{encoded_word(row['name'])} <{row['emails'][0]}>"),
            ("To", "gdtx@haiphong.edu.vn"),
            ("Subject", encoded_word(subject)),
            ("Message-ID", self.mid()),
            ("MIME-Version", "1.0"),
            ("Content-Type", ctype),
            *(extra or []),
        ]
        return message(headers, body)

    def handpicked(self) -> list[tuple[str, bytes]]:
        out: list[tuple[str, bytes]] = []
        add = lambda category, raw: out.append((category, raw))  # noqa: E731
        docx = self.docx

        # huge headers
        add(
            "huge_header",
            self.mail([("bc.docx", docx, "application/octet-stream")], subject="Báo cáo " + "A" * 200_000),
        )
        add(
            "huge_header",
            message([("From", "a@b"), ("Subject", "x" * 1_000_000), ("Message-ID", self.mid())], b"one line"),
        )
        add(
            "huge_header",
            message([("From", ", ".join(f"u{i}@x.vn" for i in range(20_000))), ("Message-ID", self.mid())], b"x"),
        )
        add(
            "huge_header",
            message(
                [("Received", f"from h{i} by h{i + 1}") for i in range(5_000)]
                + [("From", ROSTER[0]["emails"][0]), ("Message-ID", self.mid())],
                b"x",
            ),
        )
        add(
            "huge_header",
            message(
                [
                    ("From", ROSTER[1]["emails"][0]),
                    ("Message-ID", self.mid()),
                    ("References", " ".join(f"<r{i}@x>" for i in range(30_000))),
                ],
                b"x",
            ),
        )
        add(
            "huge_header",
            message([("From", ROSTER[2]["emails"][0]), ("Message-ID", "<" + "m" * 100_000 + "@x>")], b"x"),
        )
        add("huge_header", self.mail([("x" * 100_000 + ".docx", docx, "application/octet-stream")], style="rfc2231"))
        add(
            "huge_header", message([("X-Folded", "a\r\n " * 50_000), ("From", "z@x"), ("Message-ID", self.mid())], b"x")
        )

        # deep nesting
        for depth in (50, 200, 1000, 5000):
            body, ctype = attachment_part("bc.docx", docx), "application/octet-stream"
            inner = body
            for level in range(depth):
                ctype, content = multipart([inner], boundary=f"=_n{level}")
                inner = message([("Content-Type", ctype)], content)
            head, _, content = inner.partition(b"\r\n\r\n")
            add(
                "deep_nesting",
                message(
                    [("From", ROSTER[3]["emails"][0]), ("Message-ID", self.mid()), ("Content-Type", ctype)], content
                ),
            )
        for depth in (100, 1000):
            inner = self.mail([("bc.docx", docx, "application/octet-stream")])
            for _ in range(depth):
                inner = message(
                    [("From", "fw@x"), ("Message-ID", self.mid()), ("Content-Type", "message/rfc822")], inner
                )
            add("deep_nesting", inner)
        add(
            "deep_nesting",
            message(
                [
                    ("From", ROSTER[4]["emails"][0]),
                    ("Message-ID", self.mid()),
                    ("Content-Type", 'multipart/mixed; boundary="x"'),
                ],
                b'--x\r\nContent-Type: multipart/mixed; boundary="x"\r\n\r\n' * 3000,
            ),
        )
        ctype, content = multipart([attachment_part(f"f{i}.docx", b"PK\x03\x04") for i in range(5000)], boundary="many")
        add(
            "many_parts",
            message([("From", ROSTER[5]["emails"][0]), ("Message-ID", self.mid()), ("Content-Type", ctype)], content),
        )

        # zip bombs and Word bombs
        zeros, zcrc, zsize = deflated(b"", b"\0", 2 * GB)
        add(
            "zip_bomb",
            self.mail([("bom.zip", raw_zip([("zeros.docx", zeros, zcrc, zsize, len(zeros))]), "application/zip")]),
        )
        add(
            "zip_bomb",
            self.mail([("bom.zip", raw_zip([("zeros.docx", zeros, zcrc, 1000, len(zeros))]), "application/zip")]),
        )
        add(
            "zip_bomb",
            self.mail(
                [
                    (
                        "bom.zip",
                        raw_zip([(f"z{i}.bin", zeros, zcrc, zsize, len(zeros)) for i in range(3)]),
                        "application/zip",
                    )
                ]
            ),
        )
        small, scrc, ssize = deflated(b"", b"\0", 20 * MB)
        add(
            "zip_bomb",
            self.mail(
                [
                    (
                        "overlap.zip",
                        raw_zip([(f"bc{i}.docx", small, scrc, ssize, len(small)) for i in range(150)]),
                        "application/zip",
                    )
                ]
            ),
        )
        mb, mb_crc, _ = deflated(b"", b"\0", MB)
        leaves = raw_zip([(f"bc{k}.docx", mb, mb_crc, MB, len(mb)) for k in range(10)])
        nested = zip_of([(f"l1-{i}.zip", zip_of([(f"l2-{j}.zip", leaves) for j in range(10)])) for i in range(10)])
        add("zip_bomb", self.mail([("42.zip", nested, "application/zip")]))
        add("docx_bomb", self.mail([("zeros.docx", bomb_docx(b"", b"\0", 2 * GB), "application/octet-stream")]))
        add(
            "docx_bomb",
            self.mail([("zeros-lying.docx", bomb_docx(b"", b"\0", 2 * GB, lie=True), "application/octet-stream")]),
        )
        prefix = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>'.encode()
        add("docx_bomb", self.mail([("text.docx", bomb_docx(prefix, b"A", GB), "application/octet-stream")]))
        add(
            "docx_bomb",
            self.mail([("text-lying.docx", bomb_docx(prefix, b"A", GB, lie=True), "application/octet-stream")]),
        )
        body_prefix = f'<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="{W_NS}"><w:body>'.encode()
        add(
            "docx_bomb",
            self.mail([("space.docx", bomb_docx(body_prefix, b" ", GB, lie=True), "application/octet-stream")]),
        )
        add(
            "docx_bomb",
            self.mail(
                [
                    (
                        "paras.docx",
                        bomb_docx(body_prefix, b"<w:p><w:r><w:t>x</w:t></w:r></w:p>", GB // 4),
                        "application/octet-stream",
                    )
                ]
            ),
        )
        add(
            "docx_bomb",
            self.mail(
                [
                    (
                        "attrs.docx",
                        bomb_docx(body_prefix + b'<w:p w:x="', b"A", GB // 2, lie=True),
                        "application/octet-stream",
                    )
                ]
            ),
        )
        add(
            "docx_bomb",
            self.mail(
                [
                    (
                        "deep.docx",
                        docx_with({"word/document.xml": body_prefix + b"<w:p>" * 200_000}),
                        "application/octet-stream",
                    )
                ]
            ),
        )
        add(
            "billion_laughs",
            self.mail([("lol.docx", docx_with({"word/document.xml": billion_laughs()}), "application/octet-stream")]),
        )
        add(
            "billion_laughs",
            self.mail(
                [("quad.docx", docx_with({"word/document.xml": quadratic_blowup()}), "application/octet-stream")]
            ),
        )
        add(
            "billion_laughs",
            self.mail([("xxe.docx", docx_with({"word/document.xml": xxe()}), "application/octet-stream")]),
        )
        add(
            "billion_laughs",
            self.mail(
                [
                    (
                        "xxe-net.docx",
                        docx_with({"word/document.xml": xxe("http://127.0.0.1:9/x")}),
                        "application/octet-stream",
                    )
                ]
            ),
        )
        add(
            "billion_laughs",
            self.mail(
                [
                    (
                        "styles.docx",
                        docx_with(
                            {"word/document.xml": plain_document("TRƯỜNG THPT"), "word/styles.xml": billion_laughs()}
                        ),
                        "application/octet-stream",
                    )
                ]
            ),
        )
        add(
            "billion_laughs",
            self.mail(
                [
                    (
                        "rels.docx",
                        docx_with(
                            {
                                "word/document.xml": plain_document("x"),
                                "_rels/.rels": billion_laughs(),
                                "docProps/core.xml": xxe(),
                            }
                        ),
                        "application/octet-stream",
                    )
                ]
            ),
        )

        # names that try to leave the archive, as attachments and inside zips
        for i, name in enumerate(TRAVERSAL_NAMES):
            style = ("rfc2231", "rfc2047", "raw")[i % 3]
            add("path_traversal", self.mail([(name, docx, "application/octet-stream")], style=style))
        add(
            "path_traversal",
            self.mail(
                [("evil.zip", zip_of([(n, docx) for n in TRAVERSAL_NAMES if n and "\x00" not in n]), "application/zip")]
            ),
        )
        add(
            "path_traversal",
            self.mail(
                [
                    (
                        "evil-cp437.zip",
                        zip_of([(f"../../tmp/{CANARY}-zip.docx", docx)], flag_utf8=False),
                        "application/zip",
                    )
                ]
            ),
        )

        # raw 8-bit headers (no RFC 2047) and zips named in the Vietnamese Windows code page
        for encode in (lambda t: t.encode("utf-8"), cp1258):
            add("eight_bit", eight_bit_mail(encode, f"<{ROSTER[10]['emails'][0]}>", self.mid(), docx))
        for encode in (cp1258, lambda t: t.encode("utf-8"), lambda t: t.encode("cp437", "replace")):
            add(
                "eight_bit",
                self.mail(
                    [
                        (
                            "bc.zip",
                            legacy_zip(
                                [("Báo cáo Trường THPT Ngô Quyền.docx", docx), ("Bảng số liệu ĐÃ DUYỆT.docx", docx)],
                                encode,
                            ),
                            "application/zip",
                        )
                    ]
                ),
            )

        # attachments whose names or types lie
        for name, data, ctype in (
            ("baocao.docx", self.png, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            ("baocao.pdf", docx, "application/pdf"),
            ("baocao.docx", b"MZ\x90\x00" + bytes(500), "application/msword"),
            ("baocao.docx", self.legacy, "application/octet-stream"),
            ("baocao.jpg", docx, "image/jpeg"),
            ("baocao.docx", zip_of([("x.txt", b"x")]), "application/zip"),
            (
                "baocao.docx",
                docx_with({"word/document.xml": plain_document("x"), "word/vbaProject.bin": b"\0" * 100}),
                "application/octet-stream",
            ),
            ("baocao.docx", b"PK\x03\x04" + self.garbage(300), "application/octet-stream"),
            ("baocao.docx", b"\x78\x9f\x3e\x22" + self.garbage(100), "application/ms-tnef"),
            ("baocao.docx", b"%PDF-1.4\n" + self.garbage(100), "application/octet-stream"),
        ):
            add("lying_type", self.mail([(name, data, ctype)]))

        # headers that try to inject, or to be something else
        add(
            "injection",
            self.mail(
                [("bc.docx", docx, "application/octet-stream")], subject="x\r\nBcc: victim@example.com\r\nX-Evil: 1"
            ),
        )
        add(
            "injection",
            self.mail(
                [(f"a\r\nBcc: victim@example.com\r\n\r\n{CANARY}.docx", docx, "application/octet-stream")],
                style="rfc2047",
            ),
        )
        add(
            "injection",
            self.mail(
                [("bc.docx", docx, "application/octet-stream")],
                sender=f"{encoded_word('x' + chr(13) + chr(10) + 'Bcc: victim@example.com')} <{ROSTER[6]['emails'][0]}>",
            ),
        )
        add(
            "injection",
            self.mail(
                [("{{ 7*7 }}{% for x in range(10**9) %}.docx", docx, "application/octet-stream")],
                subject="{{ config }}{{ ''.__class__.__mro__ }}",
            ),
        )
        add(
            "injection",
            self.mail(
                [("<script>alert(1)</script>.docx", docx, "application/octet-stream")],
                subject="<img src=x onerror=alert(1)>",
            ),
        )
        add(
            "machine",
            self.mail([("bc.docx", docx, "application/octet-stream")], extra=[("Auto-Submitted", "auto-replied")]),
        )
        add("machine", self.mail([("bc.docx", docx, "application/octet-stream")], sender="gdtx@haiphong.edu.vn"))
        add(
            "machine",
            message(
                [
                    ("From", "MAILER-DAEMON@x"),
                    ("Message-ID", self.mid()),
                    ("Content-Type", 'multipart/report; report-type=delivery-status; boundary="r"'),
                ],
                b"--r\r\nContent-Type: message/delivery-status\r\n\r\n" + self.garbage(500) + b"\r\n--r--\r\n",
            ),
        )

        # forged senders: a roster address with a trick in Authentication-Results, or several From addresses
        report = [("bc.docx", docx, "application/octet-stream")]
        for i, value in enumerate(FORGED_AUTH_RESULTS):
            add(
                "forged_sender",
                self.mail(
                    report, sender=ROSTER[i % len(ROSTER)]["emails"][0], extra=[("Authentication-Results", value)]
                ),
            )
        school = ROSTER[0]["emails"][0]
        for from_header in (
            f"{school}, lures@{DOMAIN}",
            f"<{school}>, <lures@{DOMAIN}>",
            f"Nhóm: {school}, lures@{DOMAIN};",
            f"{encoded_word('Trường THPT, THCS')} <{school}>, {encoded_word('Nhà trường')} <lures@{DOMAIN}>",
            f"{school},lures@{DOMAIN}",
        ):
            add("forged_sender", self.mail(report, sender=from_header))
        add("forged_sender", self.mail(report, sender=school, extra=[("From", f"lures@{DOMAIN}")]))  # two From fields

        # degenerate messages
        add("degenerate", b"\r\n")
        add("degenerate", b"x")
        add("degenerate", b"From: " + ROSTER[7]["emails"][0].encode() + b"\r\n")
        add("degenerate", b"\r\n\r\nbody without headers")
        add("degenerate", b"A" * (2 * MB))
        add("degenerate", b"Subject: " + b"\x00" * 1000 + b"\r\n\r\n" + b"\x00" * 10_000)
        add("degenerate", self.garbage(100_000))
        add(
            "degenerate",
            message(
                [("From", ROSTER[8]["emails"][0]), ("Content-Type", 'multipart/mixed; boundary=""')],
                b"--\r\n\r\n--\r\n",
            ),
        )
        add(
            "degenerate",
            message([("From", ROSTER[9]["emails"][0]), ("Content-Type", "text/plain; charset=" + "x" * 10_000)], b"x"),
        )
        add(
            "degenerate",
            message(
                [
                    ("From", "a@b"),
                    ("Content-Type", "application/octet-stream"),
                    ("Content-Transfer-Encoding", "base64"),
                ],
                b"=" * 100_000,
            ),
        )
        return out


def corpus(seed: int, random_trees: int) -> list[tuple[str, bytes]]:
    gen = Generator(seed)
    out = gen.handpicked()
    for _ in range(random_trees):
        out.append(("random_tree", gen.simple(depth=gen.r.randrange(0, 6))))
    return out
