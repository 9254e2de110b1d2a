"""Consolidation benchmark: 1,500 filled copies of the demo campaign's report template consolidated by it.

    python bench/compile.py [-n 1500] [--size 40000]

Writes N reports of about --size bytes (mailbot.demo.samples.make_report_docx: the demo's sample report, which
follows the demo template, a different institution each) to a temporary directory, in a process of its own. A fresh
worker process then times, from the files on disk:

  (a) the consolidation (mailbot.reports.consolidate.consolidate): every file read, its tables matched to the
      template's, its texts gathered by section;
  (b) the workbook (consolidation_xlsx.workbook_bytes): tables as =SUM formulas over the per-institution detail;
  (c) the texts by section (.docx) and the drafted report (.docx).

It prints the time of each part and in total, and the worker's peak RSS (ru_maxrss; VmHWM as a cross-check), and
checks that every city-wide total equals the sum of the figures the reports were built with
(samples.statistics). Start-up and imports are not timed. Target (issue #13): under 30 s and 200 MB for 1,500.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

GROUPS = ("Phòng GDĐT", "THPT", "GDNN-GDTX", "Đơn vị trực thuộc", "Đại học")
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")


def _names(n: int) -> list[str]:
    kinds = ("Trường THPT", "Trường THCS", "Trung tâm GDNN-GDTX", "Phòng GDĐT")
    return [f"{kinds[i % len(kinds)]} số {i}" for i in range(n)]


def _number(i: int) -> str:
    return f"{i + 1}/BC-HP"


def _date(i: int) -> dt.date:
    return dt.date(2023, 12, 1 + i % 28)


def generate(directory: Path, n: int, size: int) -> None:
    from mailbot.demo.samples import make_report_docx

    for i, name in enumerate(_names(n)):
        (directory / f"{i:05d}.docx").write_bytes(make_report_docx(name, number=_number(i), date=_date(i), pad_to=size))


def worker(directory: Path) -> dict[str, object]:
    from mailbot.demo.samples import demo_template_docx, statistics
    from mailbot.models import Campaign
    from mailbot.reports.consolidate import Member, Report, Source, consolidate
    from mailbot.reports.consolidation_xlsx import workbook_bytes
    from mailbot.reports.matching import Aliases
    from mailbot.reports.narrative import draft_bytes, texts_bytes
    from mailbot.reports.template import read_template

    files = sorted(directory.glob("*.docx"))
    names = _names(len(files))
    now = dt.datetime(2023, 12, 7, 7, 30, tzinfo=ZONE)
    campaign = Campaign("bench", "Báo cáo sơ kết phong trào toàn dân bảo vệ an ninh Tổ quốc năm 2023", now)
    members = tuple(Member(f"DV{i:05d}", names[i], GROUPS[i % len(GROUPS)], "on_time", now) for i in range(len(files)))

    def load(path: Path) -> tuple[bytes | None, str]:
        return path.read_bytes(), ""

    reports = [
        Report(m.code, m.name, m.group, ((Source(p.name, p.name, i + 1), lambda p=p: load(p)),))
        for i, (m, p) in enumerate(zip(members, files))
    ]
    times: dict[str, float] = {}
    start = time.perf_counter()
    template = read_template(demo_template_docx(), "Mẫu báo cáo ANTQ 2023.docx")
    comp = consolidate(campaign, template, reports, GROUPS, members, Aliases(), now, ZONE)
    times["consolidate"] = time.perf_counter() - start
    mark = time.perf_counter()
    workbook = workbook_bytes(comp, lambda s: f"https://mailbot.example/files/{s.file_id}")
    times["workbook"] = time.perf_counter() - mark
    mark = time.perf_counter()
    texts = texts_bytes(comp)
    draft, _ = draft_bytes(comp, None)
    times["documents"] = time.perf_counter() - mark
    times["total"] = time.perf_counter() - start
    expected = [[0, 0] for _ in template.tables[0].rows]
    for i in range(len(files)):
        for r, (sessions, people) in enumerate(statistics(names[i], _number(i), _date(i))):
            expected[r][0] += sessions
            expected[r][1] += people
    result = comp.tables[0]
    got = [[int(result.total(r, c)) for c in range(2)] for r in range(len(expected))]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "files": len(files),
        "entries": len(result.entries),
        "unmatched": len(comp.items),
        "totals_right": got == expected,
        "seconds": {k: round(v, 2) for k, v in times.items()},
        "bytes": {"workbook": len(workbook), "texts": len(texts), "draft": len(draft)},
        "peak_rss_mb": round(peak, 1),
        "vm_hwm_mb": _vm_hwm(),
    }


def _vm_hwm() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1500)
    parser.add_argument("--size", type=int, default=40_000, help="bytes per report (appendix padding)")
    parser.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--generate", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker)))
        return
    if args.generate:
        generate(args.generate, args.n, args.size)
        return
    with tempfile.TemporaryDirectory(prefix="mailbot-bench-compile-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate", str(folder), "-n", str(args.n), "--size", str(args.size)],
            check=True,
        )
        print(f"generated {args.n} reports of ~{args.size} bytes in {time.perf_counter() - started:.1f} s")
        out = subprocess.run(
            [sys.executable, __file__, "--worker", str(folder)], check=True, capture_output=True, text=True
        )
        result = json.loads(out.stdout)
    seconds = result["seconds"]
    print(
        f"consolidated {result['files']} reports ({result['entries']} matched, {result['unmatched']} unmatched "
        f"item(s), totals {'right' if result['totals_right'] else 'WRONG'}): {seconds['total']:.1f} s "
        f"(consolidation {seconds['consolidate']:.1f} s, workbook {seconds['workbook']:.1f} s, "
        f"texts and draft {seconds['documents']:.1f} s); peak RSS {result['peak_rss_mb']} MB "
        f"(VmHWM {result['vm_hwm_mb']} MB); target < 30 s, < 200 MB"
    )
    if not result["totals_right"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
