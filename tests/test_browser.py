"""The report opens in a real browser, offline: headless Chromium renders the page, its scorecard and figures.

Needs Debian's `chromium` at /usr/bin/chromium (`.ci/run` installs it); without it these tests fail.
"""
import dataclasses
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repro.paper import original_table
from repro.profiles import CPU
from repro.report import report_original, session_info, write_report
from repro.report.figures import COLORS
from repro.results import Table
from repro.stats import VERDICTS, Verdict

pytestmark = pytest.mark.smoke

CHROMIUM = Path("/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 4000  # the first figures sit below six premises and the scorecard
BADGES = {"reproduced": "#1a7f37", "not_reproduced": "#cf222e", "inconclusive": "#b76e00",
          "premise_not_met": "#6e7781"}  # the template's


def screenshot(html: Path, tmp_path: Path) -> np.ndarray:
    if not CHROMIUM.exists():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium "
                    "(apt-get install chromium), as .ci/run does, to check that the report renders")
    png = tmp_path / "page.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}",
           f"--screenshot={png}", f"--window-size={WIDTH},{HEIGHT}", html.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}"
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def pixels_of(image: np.ndarray, hex_color: str) -> int:
    rgb = np.array([int(hex_color[i:i + 2], 16) for i in (1, 3, 5)])
    return int((np.abs(image - rgb).max(axis=2) <= 3).sum())


def assert_rendered(image: np.ndarray, results: Path):
    assert image.shape == (HEIGHT, WIDTH, 3)
    packed = (image[..., 0] << 16) | (image[..., 1] << 8) | image[..., 2]
    assert len(np.unique(packed)) > 1000, "the page looks blank: too few distinct colours"
    for kind in {c["verdict"] for c in json.loads(results.read_text())["claims"]}:
        assert pixels_of(image, BADGES[kind]) > 1000, f"no {kind} badge visible in the screenshot"
    # the figures below the scorecard: points and lines of the frozen-transfer treatments
    for treatment in ("AnB", "BnB"):
        assert pixels_of(image, COLORS[treatment]) > 300, f"no {treatment} marks: did the SVG figures render?"


def test_report_of_the_original_study_renders_offline(tmp_path):
    html, results = report_original(tmp_path / "report")
    assert_rendered(screenshot(html, tmp_path), results)


def test_report_beside_the_original_renders_every_verdict(tmp_path):
    original = original_table()
    ours = Table([dataclasses.replace(r, evidence="cpu", cached=True) for r in original.rows], original.curves)
    verdicts = [Verdict(claim, VERDICTS[i % 4], 1.0, "points", (0.5, 1.5), 0.01, 1.2, 3, 4, "hand-made", "cpu")
                for i, claim in enumerate(["first", "second", "third", "fourth"])]
    html, results = write_report(tmp_path / "report", profile_name="cpu", table=ours, verdicts=verdicts,
                                 session=session_info("repro report --profile cpu", CPU), original=original)
    assert {c["verdict"] for c in json.loads(results.read_text())["claims"]} == set(VERDICTS)
    assert_rendered(screenshot(html, tmp_path), results)
