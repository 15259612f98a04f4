"""The report's templates: the HTML escapes what the experiment names, and embeds every picture."""

from types import SimpleNamespace

from PIL import Image

from artstyle.apps.study.report import Summary, _html, _markdown


def test_the_report_escapes_names_and_embeds_pictures(tmp_path):
    (tmp_path / "sheets").mkdir()
    Image.new("RGB", (8, 8), "red").save(tmp_path / "sheets" / "g.png")
    sheet = tmp_path / "sheets" / "g.png"
    exp = SimpleNamespace(name="<script>x</script>", description="a & b", source="e.toml")
    rows = [{"content": "a", "status": "done", "note": "1|2"}]
    rows.append({"content": "b", "status": "failed", "note": ""})
    sm = Summary(exp, tmp_path, [("v", sheet)], [("a × b", sheet, None)], rows)  # type: ignore[arg-type]
    page = _html(sm)
    assert "<script>" not in page and "&lt;script&gt;" in page and "a &amp; b" in page
    assert page.count("data:image/jpeg;base64,") == 2 and 'class="failed"' in page
    md = _markdown(sm)
    assert "![v](sheets/g.png)" in md and "| a | done | 1/2 |" in md and "<script>" in md
