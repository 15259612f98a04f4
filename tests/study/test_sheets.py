from PIL import Image, ImageDraw

from artstyle.apps.study.sheets import _font, _wrap, grid_sheet


def test_long_captions_wrap_onto_two_lines():
    draw = ImageDraw.Draw(Image.new("RGB", (10, 10)))
    font = _font(13)
    width = round(draw.textlength("style_layers=relu1_1+relu2_1, ", font=font))
    lines = _wrap(draw, "style_layers=relu1_1+relu2_1, initial=content", font, width)
    assert lines == ["style_layers=relu1_1+relu2_1,", "initial=content"]
    assert _wrap(draw, "short", font, 190) == ["short"]
    long = _wrap(draw, "style_layers=relu1_1+relu2_1+relu3_1+relu4_1+relu5_1, initial=noise", font, 190)
    assert len(long) == 2 and all(draw.textlength(line, font=font) <= 190 for line in long)
    assert _wrap(draw, "x" * 200, font, 100)[-1].endswith("…")


def test_sheet_size_and_missing_cell():
    red = Image.new("RGB", (50, 30), (255, 0, 0))
    sheet = grid_sheet([[(None, ""), (red, "a")], [(red, "b"), (None, "failed")]], cell=64, pad=4)
    assert sheet.width == 2 * (64 + 8)
    # a failed cell is grey, a result cell shows the image
    grey = sheet.getpixel((sheet.width - 72 + 4 + 32, sheet.height - 70))
    assert grey == (200, 200, 200)


def test_titles_and_captions_have_every_glyph():
    """A character the font lacks is drawn as its 'missing glyph' box (that of a private-use code
    point); the sheets' titles use an em dash, × and ·, and names may have accents."""
    font = _font(20)

    def drawn(c: str) -> bytes:
        im = Image.new("L", (40, 40))
        ImageDraw.Draw(im).text((5, 5), c, font=font, fill=255)
        return im.tobytes()

    box = drawn("\ue000")
    for c in "A—–×·…éüøñçÅ":
        assert drawn(c) != box, c
