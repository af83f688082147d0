"""Headless Chromium for tests: find it, screenshot an HTML file, and judge whether the screenshot shows anything.

Tests that need a browser call :func:`require_chromium` (or :func:`screenshot`, which calls it): without
Chromium they are skipped, unless ``FTBENCH_REQUIRE_INSTALLED=1`` (CI sets it, after `.ci/run` installed the
Debian package ``chromium``), in which case they fail.

``--headless`` is Chromium's new headless mode (the old one left the browser binary in version 132). The
Debian launcher prints a harmless ``[: …: unexpected operator`` and headless Chromium logs D-Bus errors on
machines without a bus; failures quote stderr without the D-Bus lines.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
REQUIRE_ENV = "FTBENCH_REQUIRE_INSTALLED"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         # Small /dev/shm in containers crashes the renderer; Debian's launcher check for it misparses findmnt.
         "--disable-dev-shm-usage")
STDERR_LINES = 40


def find_chromium() -> str | None:
    """The path of a Chromium (or Chrome) executable on PATH, else ``None``."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def require_chromium() -> str:
    """Chromium's path; skips the test without it, or fails when ``FTBENCH_REQUIRE_INSTALLED=1``."""
    path = find_chromium()
    if path is None:
        message = f"headless Chromium not found (looked for {', '.join(BROWSERS)}); apt-get install chromium"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1)")
        pytest.skip(message)
    return path


def chromium_command(browser: str, html: Path, png: Path, profile: Path, width: int, height: int,
                     virtual_time_ms: int) -> list[str]:
    # --virtual-time-budget: capture after scripts and timers have run for that much (fast-forwarded) time.
    return [browser, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
            f"--virtual-time-budget={virtual_time_ms}", f"--screenshot={png.resolve()}", html.resolve().as_uri()]


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 2000, timeout_s: float = 60,
               virtual_time_ms: int = 5000) -> None:
    """Render ``html`` in headless Chromium at ``width`` × ``height`` and write the screenshot to ``png``.

    Raises AssertionError (with Chromium's stderr) when the page is missing, Chromium fails, or it takes
    longer than ``timeout_s`` (then the whole browser process group is killed).
    """
    if not html.is_file():
        raise AssertionError(f"no HTML file to render at {html}")
    browser = require_chromium()
    png.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="ftbench-chromium-", ignore_cleanup_errors=True) as profile:
        command = chromium_command(browser, html, png, Path(profile), width, height, virtual_time_ms)
        returncode, stderr = _run(command, timeout_s)
    if returncode != 0 or not png.is_file() or png.stat().st_size == 0:
        raise AssertionError(f"chromium did not write {png} (exit code {returncode}):\n"
                             f"$ {' '.join(command)}\n{stderr_tail(stderr)}")


def dump_dom(html: Path, timeout_s: float = 60, virtual_time_ms: int = 3000) -> str:
    """The page's DOM after its scripts ran, as headless Chromium serializes it (``--dump-dom``)."""
    if not html.is_file():
        raise AssertionError(f"no HTML file to render at {html}")
    browser = require_chromium()
    with tempfile.TemporaryDirectory(prefix="ftbench-chromium-", ignore_cleanup_errors=True) as profile:
        command = [browser, *FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={virtual_time_ms}",
                   "--dump-dom", html.resolve().as_uri()]
        process = subprocess.run(command, capture_output=True, text=True, errors="replace", timeout=timeout_s,
                                 stdin=subprocess.DEVNULL, check=False)
    if process.returncode != 0 or "<html" not in process.stdout:
        raise AssertionError(f"chromium --dump-dom failed (exit code {process.returncode}):\n"
                             f"{stderr_tail(process.stderr)}")
    return process.stdout


def _run(command: list[str], timeout_s: float) -> tuple[int | None, str]:
    """Run ``command`` in its own process group; on timeout kill the group (browser, zygote, renderers)."""
    process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, errors="replace", start_new_session=True)
    try:
        _, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        _, stderr = process.communicate()
        raise AssertionError(f"chromium took longer than {timeout_s:g} s, killed:\n$ {' '.join(command)}\n"
                             f"{stderr_tail(stderr)}") from None
    return process.returncode, stderr


def stderr_tail(stderr: str) -> str:
    """The last lines of Chromium's stderr, without the D-Bus complaints of machines that have no bus."""
    lines = [line for line in stderr.splitlines() if "dbus" not in line.lower()]
    return "\n".join(lines[-STDERR_LINES:]) or "(stderr empty apart from D-Bus noise)"


@dataclass(frozen=True)
class ImageStats:
    """What a screenshot shows, in numbers: its size, how much of it is not background, how many colours."""

    width: int
    height: int
    background: tuple[int, ...]  # the most common colour (RGB or RGBA, 0–255)
    content_fraction: float  # pixels that differ from the background
    colours: int  # distinct colours

    def is_trivial(self, min_content_fraction: float = 0.005, min_colours: int = 8) -> bool:
        """A blank (or nearly blank) page: almost everything background, or hardly any colours."""
        return self.content_fraction < min_content_fraction or self.colours < min_colours


def image_stats(png: Path) -> ImageStats:
    """Size, background, fraction of non-background pixels and number of distinct colours of ``png``."""
    pixels = _as_uint8(np.asarray(mpimg.imread(png)))
    height, width, channels = pixels.shape
    packed = _pack(pixels.reshape(-1, channels))
    colours, counts = np.unique(packed, return_counts=True)
    background = int(colours[np.argmax(counts)])
    return ImageStats(width=width, height=height, background=_unpack(background, channels),
                      content_fraction=float(np.mean(packed != background)), colours=int(colours.size))


def assert_nontrivial(png: Path, min_content_fraction: float = 0.005, min_colours: int = 8) -> ImageStats:
    """``png``'s stats, after checking that it shows something; the message says what was measured."""
    stats = image_stats(png)
    if stats.is_trivial(min_content_fraction, min_colours):
        raise AssertionError(f"{png} looks blank: {stats} (want content_fraction >= {min_content_fraction}, "
                             f"colours >= {min_colours})")
    return stats


def _as_uint8(pixels: np.ndarray) -> np.ndarray:
    """imread gives floats in [0, 1] for PNG; grey images get a channel axis."""
    if pixels.dtype.kind == "f":
        pixels = np.rint(pixels * 255)
    pixels = pixels.astype(np.uint32)
    return pixels[..., np.newaxis] if pixels.ndim == 2 else pixels


def _pack(pixels: np.ndarray) -> np.ndarray:
    """One integer per pixel (8 bits per channel) so that colours can be counted with np.unique."""
    packed = np.zeros(pixels.shape[0], dtype=np.uint64)
    for channel in range(pixels.shape[1]):
        packed = (packed << np.uint64(8)) | pixels[:, channel].astype(np.uint64)
    return packed


def _unpack(value: int, channels: int) -> tuple[int, ...]:
    return tuple((value >> (8 * (channels - 1 - channel))) & 0xFF for channel in range(channels))
