"""Is a message really from the roster address it claims? Read what our server recorded (RFC 8601).

Display names never identify a sender; the address does, and a failing SPF/DKIM/DMARC result recorded
by the receiving server turns an address match into a message held for staff, with the reason.
"""

from __future__ import annotations

from dataclasses import replace

from mailbot.config import SecuritySettings
from mailbot.models import IdentifiedBy, InboundMail, Verdict

_PASS = "pass"


def trusted_results(mail: InboundMail, security: SecuritySettings) -> dict[str, str]:
    """method → result from our server's header only: a sender can forge any header below it."""
    if not mail.auth_results:
        return {}
    server = security.authserv_id.lower() or mail.auth_results[0][0]
    found: dict[str, str] = {}
    for authserv, method, result in mail.auth_results:
        if authserv == server:
            found.setdefault(method, result)
    return found


def problem(mail: InboundMail, security: SecuritySettings) -> str:
    """Why the claimed address is not to be believed, or "" when it is (or nothing was recorded)."""
    results = trusted_results(mail, security)
    if security.require_auth == "off" or not results:
        return ""
    if security.require_auth == "dmarc" and results.get("dmarc") == "fail":
        return f"kiểm tra DMARC thất bại cho địa chỉ {mail.sender}"
    if security.require_auth == "dkim_or_spf" and _PASS not in (results.get("dkim"), results.get("spf")):
        got = ", ".join(f"{m}={r}" for m, r in sorted(results.items()))
        return f"không xác thực được địa chỉ {mail.sender} (DKIM và SPF đều không đạt: {got})"
    return ""


def hold_if_forged(verdict: Verdict, mail: InboundMail, security: SecuritySettings) -> Verdict:
    """An address match that fails authentication goes to review instead of counting."""
    if verdict.identified_by is not IdentifiedBy.ADDRESS:
        return verdict
    why = problem(mail, security)
    if not why:
        return verdict
    return replace(verdict, institution=None, identified_by=None, campaign_id=None, reason=why)
