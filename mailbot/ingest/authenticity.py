"""Is a message really from the address it shows? Read what our server recorded (RFC 8601), for that address.

Display names never identify a sender; the address does. Only our server's Authentication-Results count (the
headers with the configured authserv-id, else with the topmost one's: a sender can forge any header below it),
and a result counts for the From address only when it is about that address's domain:
- DMARC: ``dmarc=pass`` whose ``header.from`` is the From's domain;
- SPF and DKIM: a pass whose domain (``smtp.mailfrom``, ``header.d``) is aligned with the From's domain.
A From with several addresses is never believed: a server may have checked another one than mailbot reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from mailbot.config import SecuritySettings
from mailbot.models import AuthHeader, AuthResult, InboundMail, State, Verdict

_PASS = "pass"
_METHODS = ("spf", "dkim", "dmarc")


@dataclass(frozen=True)
class Evidence:
    """What our server recorded about the sender's address."""

    recorded: bool  # our server's header records SPF, DKIM or DMARC for this message
    authentic: bool  # ... and shows the From address authentic (DMARC pass, or SPF/DKIM pass aligned with it)


def trusted_server(headers: tuple[AuthHeader, ...], security: SecuritySettings) -> str:
    """The authserv-id whose headers are believed: the configured one, else the topmost header's."""
    return security.authserv_id.lower() or (headers[0].authserv_id if headers else "")


def trusted_results(headers: tuple[AuthHeader, ...], security: SecuritySettings) -> dict[str, tuple[AuthResult, ...]]:
    """method → its results, taken from the topmost header of our server that records the method."""
    server = trusted_server(headers, security)
    found: dict[str, tuple[AuthResult, ...]] = {}
    for header in (h for h in headers if server and h.authserv_id == server):
        for method in dict.fromkeys(r.method for r in header.results):
            found.setdefault(method, tuple(r for r in header.results if r.method == method))
    return found


def unreadable(headers: tuple[AuthHeader, ...], security: SecuritySettings) -> bool:
    """Our server's header ends inside a comment or quoted string: fail closed, as if nothing passed."""
    server = trusted_server(headers, security)
    return any(h.malformed for h in headers if server and h.authserv_id == server)


def records_checks(headers: tuple[AuthHeader, ...], security: SecuritySettings) -> bool:
    """Whether our server recorded SPF, DKIM or DMARC at all (else any From can be forged unseen)."""
    return any(m in _METHODS for m in trusted_results(headers, security))


def domain_of(value: str) -> str:
    """The domain of an address, ``@domain`` or bare domain, lower-case and without a final dot."""
    return value.strip().strip("<>").rpartition("@")[2].lower().rstrip(".")


def aligned(checked: str, sender: str) -> bool:
    """Relaxed alignment, simplified. DMARC (RFC 7489 §3.1) compares organisational domains, which needs the
    Public Suffix List; here two domains align when they are equal or one is a subdomain of the other, and the
    shorter one has at least two labels (a bare "vn" never aligns; "edu.vn" does, but only its registry can
    pass SPF or DKIM for it). This is stricter than DMARC for sibling subdomains (a.example.vn and b.example.vn
    do not align) and never aligns unrelated domains."""
    if not checked or not sender:
        return False
    shorter, longer = sorted((checked, sender), key=len)
    return "." in shorter and (longer == shorter or longer.endswith("." + shorter))


def _dkim_domain(result: AuthResult) -> str:
    return domain_of(result.prop("header.d") or result.prop("header.i"))


def evidence(mail: InboundMail, security: SecuritySettings) -> Evidence:
    """Whether our server recorded anything, and whether that shows the From address authentic. A DMARC
    fail for the From's domain outweighs an SPF/DKIM pass that the simplified alignment would accept."""
    results = trusted_results(mail.auth_headers, security)
    domain = domain_of(mail.sender)
    dmarc = results.get("dmarc", ())[:1]
    spf = results.get("spf", ())[:1]
    dmarc_failed = any(r.result == "fail" and domain_of(r.prop("header.from") or domain) == domain for r in dmarc)
    passed = (
        any(r.result == _PASS and domain_of(r.prop("header.from")) == domain for r in dmarc)
        or any(r.result == _PASS and aligned(domain_of(r.prop("smtp.mailfrom")), domain) for r in spf)
        or any(r.result == _PASS and aligned(_dkim_domain(r), domain) for r in results.get("dkim", ()))
    )
    authentic = bool(domain) and not mail.several_senders and not dmarc_failed and passed
    authentic = authentic and not unreadable(mail.auth_headers, security)
    return Evidence(records_checks(mail.auth_headers, security), authentic)


def problem(mail: InboundMail, security: SecuritySettings) -> str:
    """Why the From address is not to be believed, or "" when it is (or nothing was recorded)."""
    if mail.several_senders:
        shown = ", ".join(mail.from_addresses[:5]) + (", ..." if len(mail.from_addresses) > 5 else "")
        return f"thư ghi nhiều địa chỉ người gửi ({shown}), không xác định được ai là người gửi"
    results = trusted_results(mail.auth_headers, security)
    if security.require_auth == "off":
        return ""
    if unreadable(mail.auth_headers, security):
        return f"kết quả xác thực của máy chủ thư cho địa chỉ {mail.sender} bị cắt dở, không đọc được trọn vẹn"
    if not records_checks(mail.auth_headers, security):
        return ""
    domain = domain_of(mail.sender)
    if security.require_auth == "dmarc":
        return _dmarc_problem(mail.sender, domain, results.get("dmarc", ())[:1])
    if not evidence(mail, security).authentic:
        got = ", ".join(f"{m}={rs[0].result}" for m, rs in sorted(results.items()) if m in _METHODS)
        return f"không xác thực được địa chỉ {mail.sender} (DKIM và SPF đều không đạt cho tên miền {domain}: {got})"
    return ""


def _dmarc_problem(sender: str, domain: str, dmarc: tuple[AuthResult, ...]) -> str:
    for result in dmarc:
        about = domain_of(result.prop("header.from"))
        if about and about != domain:
            return f"máy chủ thư kiểm tra DMARC cho tên miền {about}, không phải cho tên miền của địa chỉ {sender}"
        if result.result == "fail":
            return f"kiểm tra DMARC thất bại cho địa chỉ {sender}"
    return ""


def hold_if_forged(verdict: Verdict, mail: InboundMail, security: SecuritySettings) -> Verdict:
    """A message whose From is not to be believed goes to review with the reason instead of counting, however
    it was identified: an address match means nothing then, and a name in a forged message proves nothing."""
    why = problem(mail, security)
    if not why:
        return verdict
    return replace(verdict, institution=None, identified_by=None, campaign=None, reason=why, state=State.REVIEW)
