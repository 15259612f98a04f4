"""Picture sheets: a grid of captioned images (contact sheets and comparison sheets)."""

from __future__ import annotations

import functools
import re

from PIL import Image, ImageDraw, ImageFont

Cell = tuple[Image.Image | None, str]

HEADER_BG = (236, 236, 240)
BG = (255, 255, 255)
MISSING_BG = (200, 200, 200)


@functools.cache
def _font_file() -> str | None:
    """DejaVu Sans, which matplotlib ships (every Latin letter, dashes, ×, ·, …); Pillow's own
    default font lacks the em dash and every accented letter."""
    try:
        from matplotlib import font_manager

        return font_manager.findfont(
            font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True
        )
    except (ImportError, ValueError):
        return None


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    path = _font_file()
    try:
        return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)
    except (OSError, TypeError, ImportError):  # (Pillow built without FreeType)
        return ImageFont.load_default()


def _fit(im: Image.Image, box: int) -> Image.Image:
    s = box / max(im.size)
    return im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """``text`` on at most two lines of ``width`` px, broken after a space, comma or plus sign;
    whatever does not fit is ellipsized."""
    if draw.textlength(text, font=font) <= width:
        return [text]
    pieces = re.findall(r"[^,+ ]+[,+ ]*|[,+ ]+", text)
    first = ""
    for i, piece in enumerate(pieces):
        if draw.textlength(first + piece, font=font) > width and first:
            return [first.strip(), _ellipsize(draw, "".join(pieces[i:]).strip(), font, width)]
        first += piece
    return [_ellipsize(draw, text, font, width)]


def _ellipsize(draw: ImageDraw.ImageDraw, text: str, font: ImageFont.ImageFont, width: int) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def grid_sheet(
    rows: list[list[Cell]],
    cell: int = 192,
    title: str = "",
    header_row: bool = True,
    header_col: bool = True,
    pad: int = 6,
) -> Image.Image:
    """Lay out ``rows`` of (image, caption) cells, each image fitted into ``cell`` x ``cell`` with
    its caption below. The first row and column are shaded as headers (the inputs); a cell whose
    image is None is drawn grey with its caption (e.g. a failed run)."""
    n_cols = max(len(r) for r in rows)
    font = _font(max(11, cell // 14))
    title_font = _font(max(14, cell // 10))
    line_h = font.size + 3 if hasattr(font, "size") else 13
    caption_h = 2 * line_h + 4
    title_h = (title_font.size + 14 if hasattr(title_font, "size") else 24) if title else 0
    cw, ch = cell + 2 * pad, cell + caption_h + 2 * pad
    sheet = Image.new("RGB", (n_cols * cw, title_h + len(rows) * ch), BG)
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text(
            (pad, 6),
            _ellipsize(draw, title, title_font, sheet.width - 2 * pad),
            fill=(0, 0, 0),
            font=title_font,
        )
    for i, row in enumerate(rows):
        for j, (im, caption) in enumerate(row):
            x0, y0 = j * cw, title_h + i * ch
            is_header = (header_row and i == 0) or (header_col and j == 0)
            if is_header:
                draw.rectangle([x0, y0, x0 + cw - 1, y0 + ch - 1], fill=HEADER_BG)
            if im is None:
                if caption:
                    draw.rectangle([x0 + pad, y0 + pad, x0 + pad + cell, y0 + pad + cell], fill=MISSING_BG)
            else:
                t = _fit(im.convert("RGB"), cell)
                sheet.paste(t, (x0 + pad + (cell - t.width) // 2, y0 + pad + (cell - t.height) // 2))
            if caption:
                for k, text in enumerate(_wrap(draw, caption, font, cw - 2 * pad)):
                    tw = draw.textlength(text, font=font)
                    draw.text(
                        (x0 + (cw - tw) / 2, y0 + pad + cell + 3 + k * line_h),
                        text,
                        fill=(20, 20, 20),
                        font=font,
                    )
    return sheet
