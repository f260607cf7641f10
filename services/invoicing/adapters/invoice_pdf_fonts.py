"""The invoice PDF's font: one that draws the names customers have.

reportlab's standard Helvetica covers only Latin-1, so a customer named "Łódź Sp. z o.o." would print black
boxes. Invoices embed a TrueType font instead: DejaVu Sans where the system has it (Debian's
``fonts-dejavu-core``: Latin, Greek, Cyrillic, Hebrew, Arabic), else Bitstream Vera, which ships inside reportlab
and so is always there (Western European Latin).
"""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

import reportlab
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

_DEJAVU = Path("/usr/share/fonts/truetype/dejavu")
_VERA = Path(reportlab.__file__).parent / "fonts"


@functools.cache
def fonts() -> tuple[str, str]:
    """Register the invoice font family once per process; returns the (regular, bold) font names."""
    candidates = [
        ("InvoiceDejaVu", _DEJAVU / "DejaVuSans.ttf", _DEJAVU / "DejaVuSans-Bold.ttf"),
        ("InvoiceVera", _VERA / "Vera.ttf", _VERA / "VeraBd.ttf"),
    ]
    for name, regular, bold in candidates:
        if regular.is_file() and bold.is_file():
            pdfmetrics.registerFont(TTFont(name, str(regular)))
            pdfmetrics.registerFont(TTFont(f"{name}-Bold", str(bold)))
            pdfmetrics.registerFontFamily(name, normal=name, bold=f"{name}-Bold")
            return name, f"{name}-Bold"
    raise RuntimeError(f"no TrueType font for invoices: neither DejaVu in {_DEJAVU} nor reportlab's Vera in {_VERA}")


@functools.cache
def glyphs(font_name: str) -> frozenset[int]:
    """Code points the font can draw."""
    return frozenset(pdfmetrics.getFont(font_name).face.charToGlyph)


def printable(text: str, font_name: str) -> str:
    """``text`` with each character the font lacks replaced by its base letter where it has one ("ź" -> "z"
    in Vera): "Łódz" reads better than a box. Characters with no such letter (CJK) are kept, and print as
    the font's box."""
    drawable = glyphs(font_name)
    if all(ord(char) in drawable for char in text):
        return text
    out = []
    for char in text:
        if ord(char) in drawable or char in "\n\t":
            out.append(char)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if ord(c) in drawable)
        out.append(base or char)
    return "".join(out)
