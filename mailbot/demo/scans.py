"""Sample stamped copies for the demo and the tests: a report's first page drawn as a scanner would deliver it (an
image-only PDF), with the Decree 30 header, the signature block and, if asked, the red seal."""

from __future__ import annotations

import io
import time
from datetime import date
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

FONT_PATHS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSerif.ttf"),
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationSerif-Regular.ttf"),
)
WIDTH, HEIGHT, DPI = 1240, 1754, 150  # A4 at 150 dpi, what office scanners send by default
RED = (205, 30, 40)


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for path in FONT_PATHS:
        if path.exists():
            return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size)


def scan_page(issuer: str, number: str, day: date, *, seal: bool = True, signer: str = "Nguyễn Văn An") -> Image.Image:
    """The first page of a report, scanned: header, title, a few lines, the signature and (if asked) the seal."""
    page = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(page)
    text, bold = _font(26), _font(28)
    left = ("SỞ GD&ĐT HẢI PHÒNG", issuer.upper(), "", f"Số: {number}")
    right = ("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc", "", _dated(day))
    for row, (a, b) in enumerate(zip(left, right)):
        draw.text((90, 110 + row * 44), a, fill="black", font=text)
        draw.text((600, 110 + row * 44), b, fill="black", font=text)
    draw.text((500, 420), "BÁO CÁO", fill="black", font=bold)
    for row in range(8):
        draw.text(
            (110, 520 + row * 44),
            "Kết quả thực hiện nhiệm vụ năm học, số liệu theo biểu mẫu kèm theo.",
            font=text,
            fill="black",
        )
    draw.text((800, 1000), "HIỆU TRƯỞNG", fill="black", font=bold)
    draw.text((780, 1250), signer, fill="black", font=text)
    if seal:
        _seal(draw, (860, 1130), 150, issuer)
    return page


def _dated(day: date) -> str:
    return f"Hải Phòng, ngày {day.day:02d} tháng {day.month:02d} năm {day.year}"


def _seal(draw: ImageDraw.ImageDraw, centre: tuple[int, int], radius: int, issuer: str) -> None:
    """Two red rings, a star and the name inside, over the signature as a real seal is."""
    x, y = centre
    for r, w in ((radius, 7), (radius - 22, 4)):
        draw.ellipse((x - r, y - r, x + r, y + r), outline=RED, width=w)
    draw.regular_polygon((x, y, 28), 5, fill=RED)
    draw.text((x - radius + 40, y + 40), issuer.upper()[:18], fill=RED, font=_font(18))


def scan_pdf(issuer: str, number: str, day: date, *, seal: bool = True, pages: int = 1) -> bytes:
    """The page as a scanner's PDF (JPEG images, no text); further pages are plain images of the body.

    The same arguments always give the same bytes (the PDF is dated on ``day``, not when it is made)."""
    first = scan_page(issuer, number, day, seal=seal)
    rest = [Image.new("RGB", (WIDTH // 4, HEIGHT // 4), "white") for _ in range(pages - 1)]
    # Pillow dates the PDF with the current time unless told otherwise, which made two builds of the same demo
    # message differ whenever a second boundary fell between them. 01:00 UTC is 08:00 in Hải Phòng.
    stamp = time.strptime(f"{day.isoformat()} 01:00:00", "%Y-%m-%d %H:%M:%S")
    out = io.BytesIO()
    first.save(
        out,
        "PDF",
        resolution=DPI,
        save_all=True,
        append_images=rest,
        quality=80,
        creationDate=stamp,
        modDate=stamp,
    )
    return out.getvalue()
