"""RFC 8601 Authentication-Results → AuthResult values: `method=result` is read only where a resinfo starts.

Why not a regular expression over the whole value: the receiving server copies sender-chosen text into property
values (``smtp.mailfrom=dmarc=pass@evil.example`` is a valid address), into comments and into quoted strings.
So the value is cut at the ``;`` that lie outside comments and quoted strings; each piece is one resinfo, whose
first word is ``method[/version]=result``; what follows is ``reason=`` and ``ptype.property=value`` pairs and is
never read as a result. The text is never RFC 2047-decoded: an encoded-word in a copied address would otherwise
turn into a ``;`` and a forged resinfo. A malformed resinfo is dropped on its own; the others still count.

(The PyPI ``authres`` package was considered: unreleased since 2019, and one malformed resinfo makes it reject
the whole header.)
"""

from __future__ import annotations

import re

from mailbot.models import AuthHeader, AuthResult

_METHODSPEC = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9_-]*)\s*(?:/\s*\d+\s*)?=\s*([A-Za-z0-9][A-Za-z0-9_-]*)(?=\s|$)\s*")
_QUOTED = r'"(?:[^"\\]|\\.)*"'
# A value is a token, a quoted string, or an address whose local part may be quoted ("a b"@example.vn).
_PROPSPEC = re.compile(rf"([A-Za-z0-9_-]+)\s*\.\s*([A-Za-z0-9_.-]+)\s*=\s*((?:{_QUOTED}|[^\s\"])*)(?=\s|$)\s*")
# reason=..., and pairs outside RFC 8601 that Microsoft 365 writes ("dmarc=pass action=none header.from=..."):
# skipped, never read as a result.
_OTHER = re.compile(rf"[A-Za-z0-9_-]+\s*=\s*(?:{_QUOTED}|[^\s\"])*(?=\s|$)\s*")
_AUTHSERV_ID = re.compile(rf"{_QUOTED}|\S+")


def split(value: str) -> list[str]:
    """The value cut at top-level ``;``, with comments (nested, with quoted-pairs) replaced by a space and
    quoted strings kept whole."""
    return _split(value)[0]


def _split(value: str) -> tuple[list[str], bool]:
    """``split``, and whether the value ended inside a comment or a quoted string (malformed)."""
    pieces, current, depth, quoted, escaped = [], [], 0, False, False
    for ch in value:
        if escaped:
            escaped = False
            if depth == 0:
                current.append(ch)
        elif ch == "\\" and (quoted or depth):
            escaped = True
            if depth == 0:
                current.append(ch)
        elif quoted:
            current.append(ch)
            quoted = ch != '"'
        elif ch == "(":
            depth += 1
        elif ch == ")" and depth:
            depth -= 1
            if depth == 0:
                current.append(" ")  # a comment separates what is around it
        elif depth:
            continue
        elif ch == ";":
            pieces.append("".join(current))
            current = []
        else:
            current.append(ch)
            quoted = ch == '"'
    pieces.append("".join(current))
    return [" ".join(p.split()) for p in pieces], bool(depth or quoted)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value


def resinfo(text: str) -> AuthResult | None:
    """One resinfo: ``method=result`` first, then properties; None when it does not start with a methodspec."""
    head = _METHODSPEC.match(text)
    if head is None:
        return None
    props: list[tuple[str, str]] = []
    at = head.end()
    while at < len(text):
        prop = _PROPSPEC.match(text, at)
        if prop:
            props.append((f"{prop.group(1)}.{prop.group(2)}".lower(), _unquote(prop.group(3))))
        step = prop or _OTHER.match(text, at)
        if not step:
            break  # not RFC 8601: what follows is not trusted to mean anything
        at = step.end()
    return AuthResult(head.group(1).lower(), head.group(2).lower(), tuple(props))


def parse_header(value: str) -> AuthHeader:
    """One Authentication-Results value: its authserv-id ("" when none) and every well-formed resinfo, in order."""
    (first, *rest), malformed = _split(" ".join(value.split()))
    found = _AUTHSERV_ID.match(first)
    authserv_id = _unquote(found.group(0)).lower() if found else ""
    return AuthHeader(authserv_id, tuple(r for r in map(resinfo, rest) if r is not None), malformed)
