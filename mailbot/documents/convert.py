"""Legacy Word 97-2003 (.doc) files converted to .docx by LibreOffice, when it is installed."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path


def converter() -> str | None:
    """The LibreOffice program, or None when it is not installed."""
    return shutil.which("soffice") or shutil.which("libreoffice")


def doc_to_docx(data: bytes, timeout: float = 120.0) -> bytes | None:
    """A legacy .doc converted by LibreOffice (headless) when it is installed; None otherwise or on failure."""
    soffice = converter()
    if not soffice:
        return None
    with tempfile.TemporaryDirectory(prefix="mailbot-doc-") as tmp:
        source = Path(tmp) / "report.doc"
        source.write_bytes(data)
        profile = Path(tmp) / "profile"  # a private profile: several conversions may run at once
        command = [
            soffice,
            f"-env:UserInstallation={profile.as_uri()}",
            "--headless",
            "--norestore",
            "--convert-to",
            "docx",
            "--outdir",
            tmp,
            str(source),
        ]
        try:
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (subprocess.TimeoutExpired, OSError):
            return None
        converted = Path(tmp) / "report.docx"
        return converted.read_bytes() if converted.exists() else None
