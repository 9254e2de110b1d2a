"""Random WordprocessingML trees for comparing the two readings of document.xml (``wordwalk.Plain`` and
``wordwalk.Stream``): plain layouts and every kind of nesting and misplacement the reader must survive, drawn
from a seeded generator so that a failure can be reproduced from its seed."""

from __future__ import annotations

import random
from typing import Any

from lxml import etree

from mailbot.documents import wordwalk

W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
STRICT = "http://purl.oclc.org/ooxml/wordprocessingml/main"
MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
VML = "urn:schemas-microsoft-com:vml"
TEXTS = ("", " ", "Báo cáo", "a", "Sở GD&ĐT", "\u00ad", "x y", "Tr\u00adường", "ĐOÀN", "aù", "Vieät", " \t ")
FONTS = (".VnTime", "VNI-Times", "Times New Roman", "", "minorHAnsi")


class TreeMaker:
    """Builds one random document per call; ``odd`` ones also hold text boxes, fallbacks, ruby, nested tables and
    paragraphs, rows and cells out of place, runs outside paragraphs and a second body."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.odd = False

    def document(self) -> Any:
        rng = self.rng
        self.odd = rng.random() < 0.5
        root = etree.Element(f"{{{W}}}document", nsmap={"w": W, "mc": MC})
        if self.odd and rng.random() < 0.1:
            self.paragraph(root, 0)
        body = self.sub(root, "body")
        for _ in range(rng.randint(0, 8)):
            pick = rng.random()
            if pick < 0.55:
                self.paragraph(body, 0)
            elif pick < 0.8:
                self.table(body, 0)
            elif pick < 0.85:
                self.paragraph(self.sub(self.sub(body, "sdt"), "sdtContent"), 0)
            elif pick < 0.9:
                self.run(body, 0)
            elif pick < 0.95 and self.odd:
                self.sub(body, rng.choice(("body", "tr", "tc")))
            else:
                self.sub(body, "bookmarkEnd")
        self.sub(body, "sectPr")
        if self.odd and rng.random() < 0.1:
            self.paragraph(root, 0)
        return root

    def sub(self, parent: Any, name: str, namespace: str = W, **attributes: str) -> Any:
        elem = etree.SubElement(parent, f"{{{namespace}}}{name}")
        for key, value in attributes.items():
            elem.set(f"{{{W}}}{key}", value)
        return elem

    def maybe_val(self, choices: tuple[str, ...], chance: float = 0.8) -> dict[str, str]:
        return {"val": self.rng.choice(choices)} if self.rng.random() < chance else {}

    def run_properties(self, parent: Any) -> None:
        rng = self.rng
        props = self.sub(parent, "rPr")
        for _ in range(rng.randint(0, 3)):
            pick = rng.random()
            if pick < 0.3:
                fonts = self.sub(props, "rFonts")
                for slot in rng.sample(("ascii", "hAnsi", "eastAsia", "asciiTheme"), rng.randint(0, 3)):
                    fonts.set(f"{{{W}}}{slot}", rng.choice(FONTS))
            elif pick < 0.45:
                self.sub(props, "rStyle", **self.maybe_val(("S1", "", "Heading")))
            elif pick < 0.6:
                self.sub(
                    props, rng.choice(("caps", "smallCaps")), **self.maybe_val(("0", "false", "OFF", "1", "x"), 0.6)
                )
            elif pick < 0.7:  # the properties before a tracked change: not the run's
                self.sub(self.sub(self.sub(props, "rPrChange"), "rPr"), "rFonts", ascii=".VnArial")
            else:
                self.sub(props, rng.choice(("b", "sz", "lang")))

    def run(self, parent: Any, depth: int) -> None:
        rng = self.rng
        run = self.sub(parent, "r")
        for _ in range(rng.randint(0, 4)):
            pick = rng.random()
            if pick < 0.2:
                self.run_properties(run)
            elif pick < 0.6:
                text = self.sub(run, "t")
                text.text = rng.choice(TEXTS) or None
                if rng.random() < 0.05:
                    self.sub(text, "x")  # its text then stands before an element
            elif pick < 0.7:
                self.sub(run, rng.choice(("tab", "br", "cr", "softHyphen", "noBreakHyphen")))
            elif pick < 0.75:
                self.sub(run, "delText").text = "xoá"
            elif pick < 0.8 and self.odd and depth < 3:
                self.odd_run_content(run, depth + 1)
            elif pick < 0.85:  # not the run's own: in a wrapper, or properties out of their place
                self.sub(self.sub(run, "object"), rng.choice(("t", "tab", "br", "rFonts", "caps")))
            else:
                self.sub(run, "fldChar")

    def odd_run_content(self, run: Any, depth: int) -> None:
        rng = self.rng
        pick = rng.random()
        if pick < 0.3:  # a text box
            self.paragraph(self.sub(self.sub(self.sub(run, "pict"), "textbox", VML), "txbxContent"), depth)
        elif pick < 0.5:
            alternate = self.sub(run, "AlternateContent", MC)
            self.run(self.sub(alternate, "Choice", MC), depth)
            if rng.random() < 0.5:
                self.run(self.sub(alternate, "Fallback", MC), depth)
        elif pick < 0.7:
            ruby = self.sub(run, "ruby")
            self.run(self.sub(ruby, "rt"), depth)
            self.run(self.sub(ruby, "rubyBase"), depth)
        elif pick < 0.8:
            self.run(run, depth)
        elif pick < 0.9:
            self.paragraph(run, depth)
        else:
            self.sub(run, "t", STRICT).text = "strict"

    def paragraph_properties(self, para: Any) -> None:
        rng = self.rng
        props = self.sub(para, "pPr")
        for _ in range(rng.randint(0, 3)):
            pick = rng.random()
            if pick < 0.3:
                self.sub(props, "jc", **self.maybe_val(("center", "left", "both"), 0.9))
            elif pick < 0.5:
                self.sub(props, "pStyle", **self.maybe_val(("Title", "Normal", ""), 0.9))
            elif pick < 0.6:
                self.sub(self.sub(props, "tabs"), "tab")  # a tab stop, not a tab character
            elif pick < 0.7:
                self.run_properties(props)  # the paragraph mark's
            elif pick < 0.8:
                self.sub(self.sub(self.sub(props, "pPrChange"), "pPr"), "jc", val="center")
            else:
                self.sub(props, "spacing")
        if rng.random() < 0.1:
            para.insert(0, etree.Element(f"{{{W}}}bookmarkStart"))  # the properties no longer first

    def paragraph(self, parent: Any, depth: int) -> None:
        rng = self.rng
        para = self.sub(parent, "p")
        if rng.random() < 0.7:
            self.paragraph_properties(para)
        for _ in range(rng.randint(0, 4)):
            pick = rng.random()
            if pick < 0.6:
                self.run(para, depth)
            elif pick < 0.7:
                self.run(
                    self.sub(para, rng.choice(("hyperlink", "ins", "smartTag", "fldSimple", "del", "moveTo"))), depth
                )
            elif pick < 0.75:
                self.run(self.sub(self.sub(para, "sdt"), "sdtContent"), depth)
            elif pick < 0.8:  # stray elements, not in a run or not in the properties: no effect
                stray = self.sub(para, rng.choice(("jc", "t", "tab", "br", "rFonts", "gridSpan")), val="center")
                stray.text = "lạc"
            elif pick < 0.85 and self.odd and depth < 3:
                inner = rng.random()
                if inner < 0.4:
                    self.table(para, depth + 1)
                elif inner < 0.7:
                    self.paragraph(para, depth + 1)
                else:
                    self.sub(para, rng.choice(("tc", "tr")))
            else:
                self.sub(para, "proofErr")

    def table(self, parent: Any, depth: int) -> None:
        rng = self.rng
        table = self.sub(parent, "tbl")
        self.sub(self.sub(table, "tblPr"), "jc", val="center")
        for _ in range(rng.randint(0, 3)):
            if self.odd and rng.random() < 0.05:
                self.paragraph(table, depth)
                continue
            holder = self.sub(self.sub(table, "sdt"), "sdtContent") if self.odd and rng.random() < 0.1 else table
            row = self.sub(holder, "tr")
            for _ in range(rng.randint(0, 3)):
                self.cell(
                    self.sub(self.sub(row, "sdt"), "sdtContent") if self.odd and rng.random() < 0.05 else row, depth
                )

    def cell(self, row: Any, depth: int) -> None:
        rng = self.rng
        cell = self.sub(row, "tc")
        if rng.random() < 0.6:
            props = self.sub(cell, "tcPr")
            for _ in range(rng.randint(0, 3)):
                pick = rng.random()
                if pick < 0.4:
                    self.sub(props, "gridSpan", **self.maybe_val(("2", "3", "0", "100", "x", "-1"), 0.9))
                elif pick < 0.7:
                    self.sub(props, "vMerge", **self.maybe_val(("restart", "continue"), 0.7))
                elif pick < 0.8:
                    self.sub(self.sub(self.sub(props, "tcPrChange"), "tcPr"), "gridSpan", val="5")
                    self.sub(cell, "vMerge")  # out of the properties: no effect
                else:
                    self.sub(props, "tcW")
            if rng.random() < 0.1:
                cell.insert(0, etree.Element(f"{{{W}}}tcW"))  # the properties no longer first
        for _ in range(rng.randint(0, 3)):
            pick = rng.random()
            if pick < 0.7:
                self.paragraph(cell, depth)
            elif pick < 0.8:
                self.paragraph(self.sub(self.sub(cell, "sdt"), "sdtContent"), depth)
            elif pick < 0.9 and self.odd and depth < 3:
                self.table(cell, depth + 1)
            else:
                self.run(cell, depth)  # outside any paragraph: not read


def readings(root: Any, max_paragraphs: int | None, opening: int) -> tuple[Any, Any]:
    """(``_Plain``'s reading or None, ``_Stream``'s reading) of one tree, each as comparable nested tuples."""
    w = "{" + root.tag[1:].partition("}")[0] + "}"
    plain = wordwalk.Plain(w, max_paragraphs, opening).read(root)
    stream = wordwalk.Stream(w, max_paragraphs, opening, trim=False)
    stream.read(iter(etree.iterwalk(root, events=("start", "end"), tag=wordwalk.DOCUMENT_TAGS)))
    return (None if plain is None else comparable(plain)), comparable(stream.parsed())


def comparable(parsed: Any) -> tuple[Any, ...]:
    def para(p: Any) -> tuple[Any, ...]:
        return (p.style, p.centered, p.plain, tuple(p.runs))

    def block(b: Any) -> tuple[Any, ...]:
        if isinstance(b, wordwalk.Para):
            return ("p", para(b))
        rows = tuple(tuple((tuple(map(para, cell)), span, merged) for cell, span, merged in row) for row in b.rows)
        return ("tbl", rows)

    blocks = tuple(map(block, parsed.blocks))
    return (blocks, tuple(map(para, parsed.opening)), parsed.truncated, parsed.unstyled_runs, parsed.namespace)
