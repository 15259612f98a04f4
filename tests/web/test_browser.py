"""The studio page in a real headless Chromium (Debian's ``chromium``, driven by playwright), against
a real server on a free port with a real worker process (tiny random network).

Screenshots go to ``$ARTSTYLE_SCREENSHOTS`` when it is set (to look at them), else to a temp folder.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason='the studio needs the web extra: pip install "artstyle[web]"')
pytest.importorskip("playwright", reason='browser tests need playwright: pip install "artstyle[browser]"')
import uvicorn
from playwright.sync_api import Page, expect, sync_playwright

from artstyle.apps.web.app import create_app
from tests.conftest import gradient_image, stripes_image

CHROMIUM = next(
    (p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "") if p and os.path.exists(p)),
    None,
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: apt-get install -y --no-install-recommends chromium"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(tmp_path_factory.mktemp("studio"), worker_init="tests.web.helpers:tiny_weights")
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    end = time.monotonic() + 60
    while not srv.started:
        assert time.monotonic() < end, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(30)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = os.environ.get("ARTSTYLE_SCREENSHOTS")
    p = Path(where) if where else tmp_path_factory.mktemp("screens")
    p.mkdir(parents=True, exist_ok=True)
    return p


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("files")
    out = {"photo": d / "photo.png", "painting": d / "painting.png", "bad": d / "bad.png"}
    for i in range(3):
        out[f"batch{i}"] = d / f"batch{i}.png"
        gradient_image(80, 64, seed=10 + i).save(out[f"batch{i}"])
    gradient_image(96, 72, seed=5).save(out["photo"])
    stripes_image(64, 64).save(out["painting"])
    out["bad"].write_text("this is not an image")
    return out


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[tuple[Page, list[str]]]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1360, "height": 900})
        problems: list[str] = []
        pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
        pg.on("pageerror", lambda e: problems.append(str(e)))
        pg.goto(server)
        yield pg, problems
        browser.close()


#: Opens every <details> around an element (a field's group, and Advanced around them all).
OPEN_DETAILS = (
    "e => { for (let d = e.closest('details'); d; d = d.parentElement.closest('details')) d.open = true; }"
)


def settings(pg: Page, **values: Any) -> None:
    for name, value in values.items():
        pg.eval_on_selector(f"#f-{name}", OPEN_DETAILS)
        pg.fill(f"#f-{name}", str(value))
    pg.wait_for_timeout(400)  # the form's check is debounced


def test_page_loads_clean_and_offline(page: tuple[Page, list[str]], shots: Path) -> None:
    pg, problems = page
    expect(pg.locator("#f-style_weight")).to_have_value("20")
    expect(pg.locator("#library .thumb")).to_have_count(2)  # the built-in photo and painting
    expect(pg.locator("#photo-img")).to_be_visible()
    pg.screenshot(path=shots / "01-loaded.png", full_page=True)
    assert problems == []


def test_upload_start_preview_gallery(
    page: tuple[Page, list[str]], files: dict[str, Path], shots: Path
) -> None:
    pg, problems = page
    pg.set_input_files("#photo-file", str(files["photo"]))
    expect(pg.locator("#photo-name")).to_contain_text("photo.png")
    pg.locator(".painting button").first.click()  # drop the built-in painting
    pg.set_input_files("#painting-file", str(files["painting"]))
    expect(pg.locator(".painting")).to_have_count(1)
    expect(pg.locator(".painting .name")).to_have_text("painting.png")
    settings(pg, size=64, scales=1, iterations=40, style_weight=33)
    expect(pg.locator("#start")).to_be_enabled()
    pg.click("#start")
    expect(pg.locator("#preview")).to_be_visible(timeout=60_000)
    seen = set()
    end = time.monotonic() + 60
    while time.monotonic() < end and len(seen) < 3:
        seen.add(pg.get_attribute("#preview", "src"))
        if "done" in (pg.text_content("#cur-status") or ""):
            break
        pg.wait_for_timeout(100)
    pg.screenshot(path=shots / "02-running.png", full_page=True)
    assert len(seen) >= 2, f"the preview did not change: {seen}"
    expect(pg.locator("#cur-status")).to_have_text("done", timeout=60_000)
    expect(pg.locator(".card .badge.done")).to_have_count(1, timeout=10_000)
    card = pg.locator(".card").first
    expect(card).to_contain_text("photo.png × painting.png")
    expect(card.locator("a", has_text="PNG")).to_have_attribute(
        "download", re.compile(r"^artstyle-\w{8}\.png$")
    )
    card.locator("input[type=range]").fill("60")  # the before/after slider
    pg.screenshot(path=shots / "03-gallery.png", full_page=True)
    assert problems == []


def test_cancel_keeps_the_image(page: tuple[Page, list[str]], shots: Path) -> None:
    pg, problems = page
    settings(pg, iterations=100000)
    pg.click("#start")
    expect(pg.locator("#cur-status")).to_have_text("running", timeout=60_000)
    expect(pg.locator("#preview")).to_be_visible(timeout=30_000)
    pg.wait_for_timeout(1500)
    pg.click("#cancel")
    expect(pg.locator("#cur-status")).to_have_text("cancelled", timeout=20_000)
    expect(pg.locator(".card .badge.cancelled")).to_have_count(1, timeout=10_000)
    card = pg.locator(".card").first
    card.scroll_into_view_if_needed()  # (gallery images load lazily)
    expect(card.locator(".compare img").first).to_be_visible()
    assert card.locator(".compare img").first.evaluate("e => e.naturalWidth") == 64
    pg.screenshot(path=shots / "04-cancelled.png", full_page=True)
    assert problems == []


def test_a_bad_file_and_a_bad_setting_say_so(page: tuple[Page, list[str]], files: dict[str, Path]) -> None:
    pg, problems = page
    pg.set_input_files("#photo-file", str(files["bad"]))
    expect(pg.locator("#photo-msg")).to_contain_text("not an image")
    assert problems and all("status of 400" in p for p in problems)  # only the refused upload
    problems.clear()
    settings(pg, beta1=2)
    expect(pg.locator("#err-beta1")).to_contain_text("beta1")
    expect(pg.locator("#start")).to_be_disabled()
    settings(pg, beta1=0.9)
    expect(pg.locator("#err-beta1")).to_have_text("")


def test_use_these_settings_again_fills_the_form(page: tuple[Page, list[str]], shots: Path) -> None:
    pg, problems = page
    settings(pg, style_weight=1, iterations=7)
    pg.locator(".card", has=pg.locator(".badge.done")).locator(
        "button", has_text="Use these settings again"
    ).click()
    expect(pg.locator("#f-style_weight")).to_have_value("33")
    expect(pg.locator("#f-iterations")).to_have_value("40")
    expect(pg.locator("#photo-name")).to_contain_text("photo.png")
    expect(pg.locator(".painting .name")).to_have_text("painting.png")
    pg.set_viewport_size({"width": 390, "height": 844})  # a phone-sized window
    pg.wait_for_timeout(300)
    pg.screenshot(path=shots / "05-phone.png", full_page=False)
    assert problems == []


# ---- the studio for people who paint (issue 20) ------------------------------------------------------


def desktop(pg: Page) -> None:
    pg.set_viewport_size({"width": 1280, "height": 900})
    pg.wait_for_timeout(200)


def shoot(pg: Page, shots: Path, name: str, full_page: bool = True) -> None:
    """The state as it is, at desktop width and at a phone's 390 px (then back to the desktop)."""
    pg.screenshot(path=shots / f"{name}.png", full_page=full_page)
    pg.set_viewport_size({"width": 390, "height": 844})
    pg.wait_for_timeout(250)
    pg.screenshot(path=shots / f"{name}-390.png", full_page="viewer" not in name)  # (the page is one column)
    desktop(pg)


def test_the_simple_panel_shows_four_controls_and_advanced_is_folded(
    page: tuple[Page, list[str]], shots: Path
) -> None:
    pg, problems = page
    desktop(pg)
    pg.reload()
    expect(pg.locator("#strength")).to_be_visible()
    expect(pg.locator("#sizes input")).to_have_count(5)  # Preview ... Poster XL (4096, the studio's limit)
    expect(pg.locator("#colors")).to_be_visible()
    expect(pg.locator("#preset")).to_have_value("default")
    expect(pg.locator("#f-style_weight")).to_be_hidden()  # folded under Advanced
    shoot(pg, shots, "10-simple")
    height = pg.evaluate("document.querySelector('#settings').getBoundingClientRect().height")
    assert height < 900, f"the settings panel is {height} px tall"
    assert problems == []


def test_the_strength_slider_changes_the_settings_sent(page: tuple[Page, list[str]]) -> None:
    pg, problems = page
    pg.locator("#strength").fill("30")
    expect(pg.locator("#strength-out")).to_have_text("30 %")
    expect(pg.locator("#f-style_strength")).to_have_value("30")
    expect(pg.locator("#strength-help")).to_contain_text("style weight 20")
    with pg.expect_request(lambda r: r.url.endswith("/api/jobs/estimate") and r.method == "POST") as req:
        pg.locator("#strength").fill("31")
    assert '"style_strength": 31' in (req.value.post_data or "").replace('":31', '": 31')
    assert problems == []


def test_size_sets_the_size_and_the_estimate_is_shown_or_refused(
    page: tuple[Page, list[str]], shots: Path
) -> None:
    pg, problems = page
    pg.check("#size-1024")
    expect(pg.locator("#f-size")).to_have_value("1024")
    pg.check("#size-256")
    expect(pg.locator("#f-size")).to_have_value("256")
    expect(pg.locator("#estimate")).to_contain_text("about", timeout=10_000)
    expect(pg.locator("#estimate")).to_contain_text("peak memory")
    expect(pg.locator("#estimate")).to_contain_text("painting 1 px per picture px")  # (not enlarged)
    shoot(pg, shots, "11-estimate", full_page=False)
    settings(pg, max_memory=0.5)
    pg.check("#size-4096")
    expect(pg.locator("#estimate")).to_contain_text("memory", timeout=10_000)
    expect(pg.locator("#estimate")).to_have_class(re.compile("err"))
    expect(pg.locator("#start")).to_be_disabled()
    shoot(pg, shots, "12-refused", full_page=False)
    settings(pg, max_memory=0)
    pg.check("#size-256")
    expect(pg.locator("#estimate")).not_to_have_class(re.compile("err"), timeout=10_000)
    assert problems == []


def test_adding_a_painting_replaces_the_built_in(
    page: tuple[Page, list[str]], files: dict[str, Path]
) -> None:
    pg, problems = page
    pg.reload()
    expect(pg.locator(".painting")).to_have_count(1)
    expect(pg.locator(".painting .name")).to_contain_text("built-in")
    pg.set_input_files("#painting-file", str(files["painting"]))
    expect(pg.locator(".painting")).to_have_count(1)
    expect(pg.locator(".painting .name")).to_have_text("painting.png")
    expect(pg.locator(".painting input[type=number]")).to_have_count(0)  # no blend weight for one painting
    pg.locator("#library .thumb", has_text="built-in painting").locator(
        "button", has_text="+ painting"
    ).click()
    expect(pg.locator(".painting")).to_have_count(2)  # a deliberate blend, with its weights
    expect(pg.locator(".painting input[type=number]")).to_have_count(2)
    pg.locator(".painting").nth(1).locator("button").click()
    expect(pg.locator(".painting")).to_have_count(1)
    assert problems == []


def test_a_batch_of_three_photos_gives_three_results_and_one_zip(
    page: tuple[Page, list[str]], files: dict[str, Path], shots: Path
) -> None:
    import io
    import zipfile

    pg, problems = page
    pg.set_input_files("#photo-file", [str(files[f"batch{i}"]) for i in range(3)])
    expect(pg.locator("#photos li")).to_have_count(3)
    settings(pg, size=64, scales=1, iterations=6)
    expect(pg.locator("#start")).to_have_text("Start 3 pictures")
    expect(pg.locator("#estimate")).to_contain_text("3 pictures", timeout=10_000)
    pg.click("#start")
    group = pg.locator(".group").first
    expect(group).to_contain_text("Batch of 3 photos")
    expect(group.locator(".group-count")).to_have_text("3/3 finished", timeout=90_000)
    expect(pg.locator(".card .badge.done")).to_have_count(4, timeout=10_000)  # (and the first test's)
    shoot(pg, shots, "13-batch")
    with pg.expect_download() as dl:
        group.locator("a", has_text="zip").click()
    names = zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())).namelist()
    assert sorted(n for n in names if n.endswith(".png")) == [
        "001-batch0.png",
        "002-batch1.png",
        "003-batch2.png",
    ]
    assert len(names) == 6
    assert problems == []


def test_the_viewer_opens_zooms_and_closes_with_the_keyboard(
    page: tuple[Page, list[str]], shots: Path
) -> None:
    pg, problems = page
    pg.locator(".card button.open").first.click()
    expect(pg.locator("#viewer")).to_be_visible()
    first = pg.text_content("#viewer-title")
    pg.keyboard.press("ArrowRight")
    expect(pg.locator("#viewer-title")).not_to_have_text(first or "")
    pg.keyboard.press("ArrowLeft")
    expect(pg.locator("#viewer-title")).to_have_text(first or "")
    pg.locator("#viewer-slider").fill("50")
    shoot(pg, shots, "14-viewer", full_page=False)
    pg.keyboard.press("z")
    expect(pg.locator("#viewer-stage")).to_have_class(re.compile("actual"))
    width = pg.evaluate("document.querySelector('#viewer-result').getBoundingClientRect().width")
    natural = pg.evaluate("document.querySelector('#viewer-result').naturalWidth")
    assert abs(width - natural) < 1, (width, natural)  # 1:1
    shoot(pg, shots, "15-viewer-1to1", full_page=False)
    pg.keyboard.press("Escape")
    expect(pg.locator("#viewer")).to_be_hidden()
    assert problems == []


def test_phone_width_has_no_horizontal_scroll(page: tuple[Page, list[str]], shots: Path) -> None:
    pg, problems = page
    pg.set_viewport_size({"width": 390, "height": 844})
    pg.wait_for_timeout(300)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    pg.locator(".card button.open").first.click()
    expect(pg.locator("#viewer")).to_be_visible()
    assert pg.evaluate("document.documentElement.scrollWidth") <= 390
    pg.screenshot(path=shots / "16-phone-viewer.png", full_page=False)
    pg.keyboard.press("Escape")
    pg.screenshot(path=shots / "17-phone.png", full_page=True)
    desktop(pg)
    assert problems == []
