"""`mailbot check` says which document programs are missing (LibreOffice, Poppler, Tesseract with Vietnamese),
with what is lost and the Debian packages, as a warning: mail is still received and kept."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailbot.demo.build import build_demo


def _check(root: Path, path: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailbot", "--config", str(root / "mailbot.toml"), "check"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PATH": path},
    )
    assert "Traceback" not in done.stderr, done.stderr
    return next(line for line in done.stdout.splitlines() if "document tools" in line)


def test_check_names_the_missing_document_programs_and_their_packages(tmp_path: Path) -> None:
    build_demo(tmp_path / "demo")
    installed = _check(tmp_path / "demo", os.environ["PATH"])  # the test machine has them all
    assert installed.startswith("ok   document tools: LibreOffice (") and "Tesseract (vie)" in installed

    empty = tmp_path / "bin"
    empty.mkdir()
    missing = _check(tmp_path / "demo", str(empty))  # none of them on PATH
    assert missing.startswith("warn document tools: LibreOffice not found")
    for package in ("libreoffice-writer-nogui", "poppler-utils", "tesseract-ocr tesseract-ocr-vie"):
        assert package in missing
    assert "pdftotext and pdftoppm not found" in missing
