"""Metadata benchmark: mailbot.documents.decree30.read_meta against opening each report with python-docx.

    python bench/docmeta.py [-n 1000] [--size 40000] [--repeat 3]

Writes N Decree 30 reports of about --size bytes (mailbot.demo.samples.make_report_docx, a different school
name each) to a temporary directory and compares

  (a) read_meta(data) on every file (heading, number, date, type, title, signer, tables, word count);
  (b) docx.Document(io.BytesIO(data)) and the text of every paragraph, what one would write by hand.

Each contender runs alone in a fresh process, so that its speed and peak memory are its own (in one
process, read_meta would pay for the garbage collector walking python-docx's heap); with --repeat the
two take turns and the fastest run of each is kept. Peak RSS is the worker's ru_maxrss (getrusage),
with VmHWM from /proc/self/status as a cross-check: on Linux ru_maxrss survives exec, so the files are
generated in a process of their own and the orchestrating process stays small. "imports only" is a
worker that does nothing else. Files are read from disk inside the timed loop; start-up and imports
are not timed. Every read_meta result is checked against what the report was built with.
Target (from the brief): read_meta at least 4x faster than (b).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _names(n: int) -> list[str]:
    places = (
        "Ngô Quyền",
        "Trần Phú",
        "Lê Quý Đôn",
        "Thái Phiên",
        "Hồng Bàng",
        "Kiến An",
        "Vĩnh Bảo",
        "Tiên Lãng",
        "An Dương",
        "Thủy Nguyên",
        "Đồ Sơn",
        "Cát Bà",
        "Hải An",
        "Dương Kinh",
        "Lê Chân",
        "Kiến Thụy",
    )
    kinds = ("Trường THPT", "Trường THCS", "Trường Tiểu học", "Trường Mầm non")
    return [f"{kinds[i % len(kinds)]} {places[i % len(places)]} số {i}" for i in range(n)]


def generate(directory: Path, n: int, size: int) -> None:
    from mailbot.demo.samples import make_report_docx

    for i, name in enumerate(_names(n)):
        data = make_report_docx(name, number=f"{i + 1}/BC-HP", date=dt.date(2023, 12, 1 + i % 28), pad_to=size)
        (directory / f"{i:05d}.docx").write_bytes(data)


def _python_docx(data: bytes) -> int:
    import docx

    document = docx.Document(io.BytesIO(data))
    return sum(1 for p in document.paragraphs if p.text)


def worker(kind: str, directory: Path) -> dict:
    files = sorted(directory.glob("*.docx"))
    if kind == "read_meta":
        from mailbot.documents.decree30 import read_meta

        names = _names(len(files))
        bad = 0
        start = time.perf_counter()
        for i, path in enumerate(files):
            meta = read_meta(path.read_bytes())
            bad += (
                meta.issuer != names[i].upper()
                or meta.number != f"{i + 1}/BC-HP"
                or meta.warnings
                or meta.date != dt.date(2023, 12, 1 + i % 28)
                or meta.signer_name != "Nguyễn Văn A"
            )
        elapsed = time.perf_counter() - start
        check = {"wrong": bad}
    elif kind == "python-docx":
        import docx  # noqa: F401

        paragraphs = 0
        start = time.perf_counter()
        for path in files:
            paragraphs += _python_docx(path.read_bytes())
        elapsed = time.perf_counter() - start
        check = {"paragraphs": paragraphs}
    elif kind == "idle-read_meta":
        from mailbot.documents.decree30 import read_meta  # noqa: F401

        elapsed, check = 0.0, {}
    else:  # idle-python-docx
        import docx  # noqa: F401

        elapsed, check = 0.0, {}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    return {
        "kind": kind,
        "files": len(files),
        "seconds": elapsed,
        "peak_rss_mb": round(peak, 1),
        "vm_hwm_mb": _vm_hwm(),
        **check,
    }


def _vm_hwm() -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _run_worker(kind: str, directory: Path) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", kind, str(directory)], check=True, capture_output=True, text=True
    ).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=1000)
    parser.add_argument("--size", type=int, default=40_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--generate", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker[0], Path(args.worker[1]))))
        return
    if args.generate:
        generate(Path(args.generate), args.n, args.size)
        return
    with tempfile.TemporaryDirectory(prefix="mailbot-docmeta-") as tmp:
        directory = Path(tmp)
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, __file__, "--generate", tmp, "-n", str(args.n), "--size", str(args.size)], check=True
        )
        sizes = [p.stat().st_size for p in directory.glob("*.docx")]
        print(
            f"{args.n} reports, {min(sizes):,}-{max(sizes):,} bytes (mean {sum(sizes) // len(sizes):,}), "
            f"generated in {time.perf_counter() - start:.1f} s; {os.cpu_count()} CPUs, "
            f"load average {os.getloadavg()[0]:.1f}"
        )
        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for kind in ("read_meta", "python-docx"):
                result = _run_worker(kind, directory)
                if kind not in best or result["seconds"] < best[kind]["seconds"]:
                    best[kind] = result
        idle = {kind: _run_worker(f"idle-{kind}", directory) for kind in ("read_meta", "python-docx")}
    fast, slow = best["read_meta"], best["python-docx"]
    print(f"best of {args.repeat} runs, each alone in a fresh process:")
    for result in (fast, slow):
        rate = result["files"] / result["seconds"]
        extra = f"wrong results: {result['wrong']}" if "wrong" in result else f"paragraphs: {result['paragraphs']}"
        base = idle[result["kind"]]
        print(
            f"  {result['kind']:>11}: {rate:6.0f} files/s {1000 * result['seconds'] / result['files']:6.2f} ms/file"
            f"  peak RSS {result['peak_rss_mb']:5.1f} MB (VmHWM {result['vm_hwm_mb']} MB; imports only"
            f" {base['peak_rss_mb']:.1f} MB)  {extra}"
        )
    ratio = slow["seconds"] / fast["seconds"]
    print(f"  read_meta is {ratio:.1f}x faster than python-docx (target: 4x){'' if ratio >= 4 else '  BELOW TARGET'}")
    if fast["wrong"]:
        sys.exit(f"read_meta got {fast['wrong']} reports wrong")


if __name__ == "__main__":
    main()
