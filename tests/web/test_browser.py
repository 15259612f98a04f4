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

from artstyle.web.app import create_app
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


def settings(pg: Page, **values: Any) -> None:
    for name, value in values.items():
        pg.eval_on_selector(f"#f-{name}", "e => { e.closest('details').open = true; }")
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
