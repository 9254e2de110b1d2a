"""Where a campaign stands: per institution the Word file (on time / late / missing) and the stamped copy, plus
the review queue."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.engine import Connection

from mailbot import store
from mailbot.errors import NotFound
from mailbot.models import Campaign, Notice, PaperMode
from mailbot.reports import stamps
from mailbot.reports.stamps import OK, Stamp, WordRef

WORD, STAMPED = "word", "stamped"  # what an institution may still owe a campaign

ANNOUNCE = "announce"  # the outbox kind of the call for reports (notify/announce.py)


@dataclass(frozen=True)
class FileRow:
    name: str
    kind: str
    sha256: str
    size: int
    path: str
    warnings: tuple[Notice, ...]
    meta: dict[str, Any] = field(default_factory=dict)
    id: int = 0
    stamp: Stamp | None = None  # a PDF's verdict as the stamped copy (None: not a PDF)


@dataclass(frozen=True)
class Submission:
    pk: int
    message_id: str
    sender: str
    subject: str
    received_at: datetime
    identified_by: str
    late: bool
    files: tuple[FileRow, ...]
    warnings: tuple[Notice, ...]


@dataclass(frozen=True)
class InstitutionStatus:
    code: str
    name: str
    group: str
    submissions: tuple[Submission, ...]  # oldest first
    deadline: datetime  # the campaign's, or the extension staff granted
    emails: tuple[str, ...] = ()
    extended: bool = False
    signed_copy: bool = False  # a PDF scan (the stamped copy) has arrived, with or without the Word file
    active: bool = True  # False: deactivated by a roster import, listed only for the reports it sent, never counted
    announced_at: datetime | None = None  # when the call for reports was queued for it
    paper_mode: PaperMode = PaperMode.NONE  # the campaign's: whether (and how) it asks for the stamped copy
    paper_on: date | None = None  # the day staff ticked its paper copy as received by post
    stamps: tuple[Stamp, ...] = ()  # the verdict on each PDF it sent for the campaign, oldest first
    stamp_accepted: datetime | None = None  # when staff accepted its stamped copy by hand

    @property
    def stamp_ok(self) -> bool:
        """A verified PDF (signed by itself, or a scan with its seal and the Word file's number), or staff's word."""
        return self.stamp_accepted is not None or any(s.verdict == OK for s in self.stamps)

    @property
    def stamp(self) -> Stamp | None:
        """The PDF that speaks for it: the first verified one, else the latest."""
        return next((s for s in self.stamps if s.verdict == OK), self.stamps[-1] if self.stamps else None)

    @property
    def status(self) -> str:
        """The Word file: on_time | late | missing ("submitted" always means the Word file)."""
        if not self.submissions:
            return "missing"
        return "late" if self.submissions[0].received_at > self.deadline else "on_time"

    @property
    def stamped(self) -> bool | None:
        """Whether the stamped copy is in, the way the campaign accepts it; None when it does not ask for one."""
        mode = self.paper_mode
        if mode is PaperMode.NONE:
            return None
        # Any PDF used to count; now only one that was verified, or one staff accepted after looking at it.
        by_mail = self.stamp_ok and (mode in (PaperMode.PDF, PaperMode.EITHER) or self.stamp_accepted is not None)
        by_post = self.paper_on is not None and mode in (PaperMode.POST, PaperMode.EITHER)
        return by_mail or by_post

    @property
    def missing(self) -> tuple[str, ...]:
        """What is still owed, in order: ``word`` and/or ``stamped`` (empty when complete)."""
        return tuple(p for p, owed in ((WORD, self.status == "missing"), (STAMPED, self.stamped is False)) if owed)

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def submitted_at(self) -> datetime | None:
        return self.submissions[0].received_at if self.submissions else None

    def notices(self) -> list[Notice]:
        """Every warning of every submission and its files, in order (the tracker and the console word them)."""
        return [w for s in self.submissions for w in (*s.warnings, *(x for f in s.files for x in f.warnings))]


@dataclass(frozen=True)
class ReviewItem:
    pk: int
    message_id: str
    sender: str
    subject: str
    received_at: datetime
    reason: str
    state: str
    files: tuple[FileRow, ...]
    inbox: str = ""  # where it was fetched from (``imap://user@host:port/FOLDER`` or ``maildir:/path``)


@dataclass(frozen=True)
class CampaignStatus:
    campaign: Campaign
    institutions: tuple[InstitutionStatus, ...]
    review: tuple[ReviewItem, ...]

    @property
    def counted(self) -> tuple[InstitutionStatus, ...]:
        """The institutions that must report: what on time / late / missing and reminders are about."""
        return tuple(i for i in self.institutions if i.active)

    def groups(self) -> dict[str, list[InstitutionStatus]]:
        """The counted institutions by group (a deactivated one is in no count and no missing list)."""
        out: dict[str, list[InstitutionStatus]] = defaultdict(list)
        for inst in self.counted:
            out[inst.group].append(inst)
        return dict(out)


def pick_campaign(campaigns: tuple[Campaign, ...], campaign_id: str | None, now: datetime) -> Campaign:
    """The named campaign (closed ones too), or the open one whose deadline is nearest to now."""
    if not campaigns:
        raise NotFound("no campaign yet: create one in the web pages or with `mailbot campaign add`")
    if campaign_id:
        for c in campaigns:
            if c.id == campaign_id:
                return c
        raise NotFound(f"no campaign {campaign_id!r} (known: {', '.join(c.id for c in campaigns)})")
    candidates = [c for c in campaigns if c.closed is None] or list(campaigns)
    return min(candidates, key=lambda c: abs((c.deadline - now).total_seconds()))


def _files(conn: Connection, message_pks: list[int]) -> dict[int, list[FileRow]]:
    out: dict[int, list[FileRow]] = defaultdict(list)
    if not message_pks:
        return out
    query = select(store.files).where(store.files.c.message_pk.in_(message_pks)).order_by(store.files.c.id)
    for r in conn.execute(query):
        out[r.message_pk].append(
            FileRow(r.name, r.kind, r.sha256, r.size, r.path, tuple(r.warnings), r.meta or {}, r.id)
        )
    return out


def _pdf_messages(conn: Connection, campaign_id: str) -> list[Any]:
    """Messages of the campaign that carried only the stamped copy (a PDF on its own: no Word report)."""
    m = store.messages
    query = select(m).where(m.c.campaign_id == campaign_id, m.c.state == "no_report").order_by(m.c.received_at, m.c.id)
    return list(conn.execute(query))


def _judged(
    subs: list[Submission], name: str, facts: dict[int, dict[str, Any]]
) -> tuple[list[Submission], tuple[Stamp, ...]]:
    """Each PDF given its verdict, against the Word file of its own message or else of any of its messages."""
    everywhere = tuple(_words(s) for s in subs)
    all_words = tuple(w for ws in everywhere for w in ws)
    out: list[Submission] = []
    found: list[Stamp] = []
    for sub, own in zip(subs, everywhere):
        files = []
        for f in sub.files:
            if f.kind == "pdf" and f.path:
                f = replace(f, stamp=stamps.judge(facts.get(f.id), name, own or all_words))
                found.append(f.stamp)  # type: ignore[arg-type]
            files.append(f)
        out.append(replace(sub, files=tuple(files)))
    return out, tuple(found)


def _words(sub: Submission) -> tuple[WordRef, ...]:
    return tuple(stamps.word_ref(f.meta) for f in sub.files if f.kind != "pdf" and f.meta)


def extensions(conn: Connection, campaign_id: str) -> dict[int, datetime]:
    """institution pk → its own deadline."""
    e = store.extensions
    return {r.institution_id: r.until for r in conn.execute(select(e).where(e.c.campaign_id == campaign_id))}


def _submissions(rows: list[Any], files: dict[int, list[FileRow]]) -> dict[int, list[Submission]]:
    """institution pk → its submissions, in the order of ``rows``."""
    by_inst: dict[int, list[Submission]] = defaultdict(list)
    for r in rows:
        by_inst[r.institution_id].append(
            Submission(
                r.id,
                r.message_id,
                r.sender,
                r.subject,
                r.received_at,
                r.identified_by or "",
                r.late,
                tuple(files[r.id]),
                tuple(r.warnings),
            )
        )
    return by_inst


def _stamps_of(
    insts: list[Any],
    by_inst: dict[int, list[Submission]],
    pdf_only: dict[int, list[Submission]],
    facts: dict[int, dict[str, Any]],
) -> dict[int, tuple[list[Submission], tuple[Stamp, ...]]]:
    """institution pk → its submissions with their PDFs judged, and the verdicts on all its PDFs (alone ones too)."""
    out: dict[int, tuple[list[Submission], tuple[Stamp, ...]]] = {}
    for i in insts:
        reports = {s.pk for s in by_inst.get(i.id, [])}
        every = sorted([*by_inst.get(i.id, []), *pdf_only.get(i.id, [])], key=lambda s: (s.received_at, s.pk))
        judged, found = _judged(every, i.name, facts)
        out[i.id] = ([s for s in judged if s.pk in reports], found)
    return out


def campaign_status(engine: Engine, campaign: Campaign) -> CampaignStatus:
    with engine.connect() as conn:
        insts = list(conn.execute(select(store.institutions).order_by(store.institutions.c.id)))
        learned: dict[str, list[str]] = defaultdict(list)
        for address, code in store.learned_addresses(conn).items():
            learned[code].append(address)
        extended = extensions(conn, campaign.id)
        scanned = store.signed_copies(conn, campaign.id)
        announced = store.first_queued(conn, ANNOUNCE, campaign.id)
        posted = store.paper_received(conn, campaign.id)
        m = store.messages
        rows = list(
            conn.execute(
                select(m)
                .where(m.c.campaign_id == campaign.id, m.c.state == "submission")
                .order_by(m.c.received_at, m.c.id)
            )
        )
        review = list(conn.execute(select(m).where(m.c.state.in_(("review", "error"))).order_by(m.c.received_at)))
        pdf_only = _pdf_messages(conn, campaign.id)
        files = _files(conn, [r.id for r in rows + review + pdf_only])
        sources = store.sources_of(conn, [r.id for r in review])
        facts = store.stamp_facts(conn, [f.id for fs in files.values() for f in fs if f.kind == "pdf"])
        accepted = store.stamp_accepted_by(conn, campaign.id)
    by_inst = _submissions(rows, files)
    judged = _stamps_of(insts, by_inst, _submissions(pdf_only, files), facts)
    # A deactivated institution stays listed where it did report (its reports are kept and shown), nowhere else.
    insts = [i for i in insts if campaign.concerns(i.grp) and (i.active or by_inst.get(i.id))]
    return CampaignStatus(
        campaign,
        tuple(
            InstitutionStatus(
                i.code,
                i.name,
                i.grp,
                tuple(judged.get(i.id, ((), ()))[0]),
                extended.get(i.id, campaign.deadline),
                tuple(dict.fromkeys([*i.emails, *learned[i.code]])),
                i.id in extended,
                i.id in scanned,
                bool(i.active),
                announced.get(i.code),
                campaign.paper,
                posted.get(i.id),
                judged.get(i.id, ((), ()))[1],
                accepted.get(i.id),
            )
            for i in insts
        ),
        _review_items(review, files, sources),
    )


def _review_items(rows: list[Any], files: dict[int, list[FileRow]], sources: dict[int, str]) -> tuple[ReviewItem, ...]:
    return tuple(
        ReviewItem(
            r.id,
            r.message_id,
            r.sender,
            r.subject,
            r.received_at,
            r.reason,
            r.state,
            tuple(files[r.id]),
            sources.get(r.id, ""),
        )  # fmt: skip
        for r in rows
    )


def _review_json(r: ReviewItem, zone: Any) -> dict[str, Any]:
    return {
        "message_id": r.message_id,
        "from": r.sender,
        "subject": r.subject,
        "received_at": _iso(r.received_at, zone),
        "reason": r.reason,
        "inbox": r.inbox,
    }


def _iso(moment: datetime | None, zone: Any = None) -> str | None:
    return moment.astimezone(zone).isoformat() if moment else None


def as_json(cs: CampaignStatus) -> dict[str, Any]:
    """The documented ``status --json`` shape."""
    c = cs.campaign
    zone = c.deadline.tzinfo  # every time in the configured zone, as staff think of it
    return {
        "campaign": {"id": c.id, "title": c.title, "deadline": c.deadline.isoformat(), "paper": c.paper.value},
        "institutions": [
            {
                "code": i.code,
                "name": i.name,
                "group": i.group,
                "status": i.status,
                "active": i.active,
                "deadline": _iso(i.deadline, zone),
                "submitted_at": _iso(i.submitted_at, zone),
                "identified_by": i.submissions[0].identified_by if i.submissions else None,
                "signed_copy": i.signed_copy,
                "announced_at": _iso(i.announced_at, zone),
                "paper": i.paper_on.isoformat() if i.paper_on else None,
                "stamped": i.stamped,
                "stamp": i.stamp.as_json() if i.stamp else None,
                "stamp_accepted": _iso(i.stamp_accepted, zone),
                "complete": i.complete,
                "missing": list(i.missing),
                "submissions": [
                    {
                        "message_id": s.message_id,
                        "from": s.sender,
                        "received_at": _iso(s.received_at, zone),
                        "files": [
                            {
                                "name": f.name,
                                "kind": f.kind,
                                "sha256": f.sha256,
                                "size": f.size,
                                "path": f.path,
                                **({"meta": f.meta} if f.meta else {}),
                                **({"stamp": f.stamp.as_json()} if f.stamp else {}),
                            }
                            for f in s.files
                            if f.path
                        ],
                        "warnings": [str(w) for w in (*s.warnings, *(w for f in s.files for w in f.warnings))],
                    }
                    for s in i.submissions
                ],
            }
            for i in cs.institutions
        ],
        "review": [_review_json(r, zone) for r in cs.review],
    }
