"""What an unsigned PDF is made of (a scan: pages that are images; an export: text, no image), the red seal on a
scan's first page, and its document number and date read by OCR. Poppler and Tesseract run as child processes with
a time limit each, on the first page only, at a bounded resolution."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

LONG_SIDE_PX = 1754  # A4 at 150 dpi: the seal and a 13-point header read well, the cost stays bounded
SCAN_COVERAGE = 0.5  # images covering at least half of the first page: a scan (or a photo of the paper)
OCR_TOP = 0.45  # the number and the date sit in the header, in the top part of the first page
ImageArray = npt.NDArray[np.uint8]


class ToolFailed(Exception):
    """A Poppler or Tesseract run failed or ran out of time: the file cannot be read within its budget."""


@dataclass(frozen=True)
class Layout:
    pages: int
    text_chars: int  # characters of text on the first page
    image_coverage: float  # fraction of the first page covered by images


@dataclass(frozen=True)
class Deadline:
    """The time left for one file: every child process gets what remains, never more."""

    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(time.monotonic() + seconds)

    def left(self) -> float:
        remaining = self.at - time.monotonic()
        if remaining <= 0:
            raise ToolFailed("time limit reached")
        return remaining


def run(args: list[str], deadline: Deadline, env: dict[str, str] | None = None) -> bytes:
    """A tool's standard output; its failure or timeout as ToolFailed (never a hang, never a traceback)."""
    try:
        done = subprocess.run(args, capture_output=True, timeout=deadline.left(), check=False, env=env)
    except subprocess.TimeoutExpired:
        raise ToolFailed(f"{args[0]}: time limit reached") from None
    except OSError as exc:
        raise ToolFailed(f"{args[0]}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        raise ToolFailed(f"{args[0]} exited {done.returncode}: {done.stderr.decode(errors='replace')[:200].strip()}")
    return done.stdout


def layout(pdf: Path, deadline: Deadline) -> Layout:
    info = run(["pdfinfo", "-l", "1", str(pdf)], deadline).decode(errors="replace")
    pages = int(_field(info, r"^Pages:\s+(\d+)") or 0)
    size = re.search(r"^Page\s+1 size:\s+([\d.]+) x ([\d.]+)", info, re.M) or re.search(
        r"^Page size:\s+([\d.]+) x ([\d.]+)", info, re.M
    )
    page_area = float(size.group(1)) * float(size.group(2)) if size else 595.0 * 842.0
    text = run(["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(pdf), "-"], deadline).decode(errors="replace")
    images = run(["pdfimages", "-f", "1", "-l", "1", "-list", str(pdf)], deadline).decode(errors="replace")
    return Layout(pages, len("".join(text.split())), min(1.0, _image_area(images) / page_area))


def _field(text: str, pattern: str) -> str | None:
    match = re.search(pattern, text, re.M)
    return match.group(1) if match else None


def _image_area(listing: str) -> float:
    """The area in points² that the images of ``pdfimages -list`` cover, from their pixels and resolution."""
    area = 0.0
    for line in listing.splitlines()[2:]:
        cols = line.split()
        if len(cols) < 14 or cols[2] not in ("image", "stencil"):
            continue
        try:
            width, height, xppi, yppi = int(cols[3]), int(cols[4]), float(cols[12]), float(cols[13])
        except ValueError:
            continue
        if xppi > 0 and yppi > 0:
            area += (width / xppi * 72) * (height / yppi * 72)
    return area


def first_page(pdf: Path, deadline: Deadline, workdir: Path) -> ImageArray:
    """The first page as RGB pixels, its long side at most LONG_SIDE_PX (whatever the page size claims)."""
    out = workdir / "page"
    run(
        ["pdftoppm", "-f", "1", "-l", "1", "-singlefile", "-scale-to", str(LONG_SIDE_PX), str(pdf), str(out)],
        deadline,
    )
    with Image.open(out.with_suffix(".ppm")) as image:
        return np.asarray(image.convert("RGB"), dtype=np.uint8)


def red_seal(pixels: ImageArray) -> bool:
    """A roughly circular red region the size of a seal: a ring of red around a centre, closed on most sides."""
    from scipy import ndimage  # only scans need it (most of a second to load)

    rgb = pixels.astype(np.int16)
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mask = (red > 120) & (red - green > 50) & (red - blue > 40)
    if mask.sum() < 200:
        return False
    labels, _ = ndimage.label(ndimage.binary_closing(mask, iterations=3))
    width = pixels.shape[1]
    for index, box in enumerate(ndimage.find_objects(labels), 1):
        if box is not None and _is_ring(labels[box] == index, width):
            return True
    return False


def _is_ring(region: npt.NDArray[np.bool_], page_width: int) -> bool:
    height, width = region.shape
    # A round seal is 3.5-4.5 cm across on a 21 cm page; allow a generous range for reduced or enlarged scans.
    if not (0.08 * page_width <= max(height, width) <= 0.45 * page_width) or not 0.75 <= height / width <= 1.33:
        return False
    ys, xs = np.nonzero(region)
    cy, cx, radius = (height - 1) / 2, (width - 1) / 2, (height + width) / 4
    dist = np.hypot(ys - cy, xs - cx)
    ring = (dist >= 0.78 * radius) & (dist <= 1.08 * radius)
    sectors = np.unique((np.degrees(np.arctan2(ys[ring] - cy, xs[ring] - cx)) // 10).astype(int))
    return len(sectors) >= 30  # the outer circle is there on at least 300 of 360 degrees


def ocr_header(pixels: ImageArray, deadline: Deadline, workdir: Path) -> str:
    """The text of the top of the first page, read by Tesseract with its Vietnamese data ("" when not installed)."""
    if not ocr_available():
        return ""
    top = Image.fromarray(pixels[: int(pixels.shape[0] * OCR_TOP)]).convert("L")
    source = workdir / "top.png"
    top.save(source)
    # One thread: Tesseract's OpenMP threads spin against the service's own work on a small server and make one page
    # take many times longer (Tesseract's FAQ advises OMP_THREAD_LIMIT=1 whenever other work shares the cores).
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    args = ["tesseract", str(source), "stdout", "-l", "vie", "--psm", "3"]
    return run(args, deadline, env).decode(errors="replace")


@cache
def ocr_available() -> bool:
    """Tesseract is installed with the Vietnamese data (Debian: tesseract-ocr, tesseract-ocr-vie)."""
    if not shutil.which("tesseract"):
        return False
    try:
        listing = subprocess.run(["tesseract", "--list-langs"], capture_output=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "vie" in listing.stdout.decode(errors="replace").split()


def page_text(pdf: Path, deadline: Deadline) -> str:
    return run(["pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", str(pdf), "-"], deadline).decode(errors="replace")


def scratch() -> tempfile.TemporaryDirectory[str]:
    return tempfile.TemporaryDirectory(prefix="mailbot-pdf-")
