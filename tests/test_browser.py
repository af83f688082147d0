"""The headless-Chromium helper works: a page with a table and an SVG gives a screenshot with content, a blank
page gives a trivial one (so the check can fail), a hung page is killed in time, and a missing browser skips
(or fails under FTBENCH_REQUIRE_INSTALLED=1)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from .browser import REQUIRE_ENV, assert_nontrivial, find_chromium, image_stats, require_chromium, screenshot

SVG_BLUE = (0x33, 0x66, 0xCC)
PAGE = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>report</title>
<style>body {{ font-family: sans-serif; }} td, th {{ border: 1px solid #999; padding: 4px 8px; }}</style></head>
<body><h1>Leaderboard</h1>
<table><tr><th>model</th><th>exec_acc</th></tr><tr><td>LoRA</td><td>0.81</td></tr><tr><td>GPT-3.5</td><td>0.83</td></tr>
</table>
<svg width="300" height="120" xmlns="http://www.w3.org/2000/svg">
  <rect x="0" y="20" width="240" height="30" fill="rgb{SVG_BLUE}"/>
  <rect x="0" y="70" width="260" height="30" fill="#cc6633"/>
</svg></body></html>
"""
BLANK = "<!doctype html><html><body></body></html>"
LATE = ("<!doctype html><html><body><div id=late></div><script>setTimeout(() => {"
        "document.getElementById('late').innerHTML = '<div style=\"width:400px;height:300px;background:#c00\"></div>'"
        "}, 1500)</script></body></html>")


@pytest.fixture
def chromium() -> str:
    return require_chromium()


def render(tmp_path: Path, html: str, width: int = 800, height: int = 600) -> Path:
    page, png = tmp_path / "page.html", tmp_path / "page.png"
    page.write_text(html, encoding="utf-8")
    screenshot(page, png, width=width, height=height)
    return png


def has_colour(png: Path, rgb: tuple[int, int, int]) -> bool:
    pixels = np.rint(np.asarray(mpimg.imread(png))[..., :3] * 255).astype(int)
    return bool(np.all(pixels == np.array(rgb), axis=-1).any())


def test_page_with_table_and_svg_has_content(chromium: str, tmp_path: Path) -> None:
    started = time.perf_counter()
    png = render(tmp_path, PAGE, width=1280, height=2000)
    elapsed = time.perf_counter() - started
    stats = assert_nontrivial(png)
    assert (stats.width, stats.height, stats.background) == (1280, 2000, (255, 255, 255))
    assert stats.content_fraction > 0.005 and stats.colours > 16, stats
    assert has_colour(png, SVG_BLUE), "the inline SVG's bar is not in the screenshot"
    assert elapsed < 60


def test_blank_page_is_trivial(chromium: str, tmp_path: Path) -> None:
    png = render(tmp_path, BLANK)
    stats = image_stats(png)
    assert (stats.content_fraction, stats.colours) == (0.0, 1)
    assert stats.is_trivial()
    with pytest.raises(AssertionError, match="looks blank"):
        assert_nontrivial(png)


def test_content_drawn_by_script_is_captured(chromium: str, tmp_path: Path) -> None:
    png = render(tmp_path, LATE)
    assert has_colour(png, (0xCC, 0, 0)), "the element added by a 1.5 s timer is missing"


def test_hung_page_times_out(chromium: str, tmp_path: Path) -> None:
    page = tmp_path / "hang.html"
    page.write_text("<!doctype html><html><body>x<script>while (true) {}</script></body></html>", encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(AssertionError, match="took longer than 3 s"):
        screenshot(page, tmp_path / "hang.png", timeout_s=3)
    assert time.perf_counter() - started < 13


def test_missing_page_is_named(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="no HTML file to render"):
        screenshot(tmp_path / "nope.html", tmp_path / "nope.png")


def test_missing_browser_skips_or_fails(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_chromium() is None
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        require_chromium()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"{REQUIRE_ENV}=1"):
        require_chromium()
