"""Stamped-copy verification benchmark (issue 17): time per signed PDF and per one-page scan, and peak memory.

    python bench/stamps.py [-n 5]

Makes a signed PDF (a throwaway CA, tests/pdf_samples.py) and a one-page scan with its seal
(mailbot.demo.scans), then checks each N times

  (a) in process: mailbot.documents.pdfcheck.check (what the child does, without its start-up);
  (b) as the service does it: mailbot.stamping.check_file, a child process with its time and memory limits.

Prints the median seconds of each and the children's peak RSS (ru_maxrss of RUSAGE_CHILDREN, which includes
Poppler and Tesseract). Every result is checked (signed and intact; scan with its seal and number).
Targets (from the issue): under 0.5 s per signed PDF and 5 s per one-page scan, on the 2-core machine.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailbot import config, stamping  # noqa: E402
from mailbot.demo.scans import scan_pdf  # noqa: E402
from mailbot.documents import pdfcheck, pdfsign  # noqa: E402
from tests.pdf_samples import EXPORT_LINES, Authority, text_pdf  # noqa: E402

NQ = "Trường THPT Ngô Quyền"


def timed(runs: int, work: object) -> float:
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        work()  # type: ignore[operator]
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5, help="checks of each file (the median is printed)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ca = Authority.make()
        anchor = ca.pem(folder / "ca.pem")
        signed, scan = folder / "signed.pdf", folder / "scan.pdf"
        signed.write_bytes(ca.issue(NQ, "Nguyễn Văn An").sign(text_pdf(EXPORT_LINES)))
        scan.write_bytes(scan_pdf(NQ, "15/BC-THPTNQ", date(2023, 12, 5)))
        toml = folder / "mailbot.toml"
        toml.write_text(
            f'[inbox]\nkind = "maildir"\npath = "m"\n[documents]\ntrust_anchors = ["{anchor}"]\n', encoding="utf-8"
        )
        settings = config.load(toml)
        budget = pdfcheck.Budget(30, pdfsign.load_anchors((anchor,)))

        facts = pdfcheck.check(signed, budget)
        assert facts.kind == "signed" and facts.signatures[0].intact and facts.signatures[0].trusted, facts
        facts = pdfcheck.check(scan, budget)
        assert facts.kind == "scan" and facts.seal and facts.number == "15/BC-THPTNQ", facts

        rows = [
            ("signed PDF, in process", timed(args.n, lambda: pdfcheck.check(signed, budget)), 0.5),
            ("signed PDF, child process", timed(args.n, lambda: stamping.check_file(settings, signed)), 0.5),
            ("1-page scan, in process", timed(args.n, lambda: pdfcheck.check(scan, budget)), 5.0),
            ("1-page scan, child process", timed(args.n, lambda: stamping.check_file(settings, scan)), 5.0),
        ]
    for name, seconds, target in rows:
        print(f"{name:28} {seconds:6.2f} s  (target {target:g} s: {'met' if seconds < target else 'MISSED'})")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{'peak RSS of the children':28} {peak:6.0f} MB (Poppler, Tesseract, the check's process)")


if __name__ == "__main__":
    main()
