"""The report opens in a real browser, offline: headless Chromium renders the page, its scorecard and figures.

Needs Debian's `chromium` at /usr/bin/chromium (`.ci/run` installs it); without it these tests fail.
"""
import dataclasses
import json
import re
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


def chromium(page: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not CHROMIUM.exists():
        pytest.fail(f"headless Chromium not found at {CHROMIUM}: install Debian's chromium "
                    "(apt-get install chromium), as .ci/run does, to check that the report renders")
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={tmp_path / 'profile'}", *args,
           page.resolve().as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def screenshot(html: Path, tmp_path: Path, width: int = WIDTH, height: int = HEIGHT, png: Path | None = None) -> np.ndarray:
    png = png or tmp_path / "page.png"
    done = chromium(html, tmp_path, f"--screenshot={png}", f"--window-size={width},{height}")
    assert png.exists(), f"chromium wrote no screenshot (exit {done.returncode}):\n{done.stderr[-2000:]}"
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def page_size(html: Path, tmp_path: Path, width: int) -> tuple[int, int]:
    """(width, height) of the whole page laid out in a window `width` pixels wide: a copy of the page with a
    script that writes them into its title, read back from the DOM Chromium dumps."""
    probe = tmp_path / "probe.html"
    probe.write_text(html.read_text().replace(
        "</body>", "<script>document.title = [document.documentElement.scrollWidth, "
                   "document.documentElement.scrollHeight].join('x')</script></body>"))
    done = chromium(probe, tmp_path, "--dump-dom", f"--window-size={width},1000")
    found = re.search(r"<title>(\d+)x(\d+)</title>", done.stdout)
    assert found, f"chromium did not lay the page out (exit {done.returncode}):\n{done.stderr[-2000:]}"
    return int(found[1]), int(found[2])


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


COMMITTED = Path(__file__).parents[1] / "reports" / "cpu-tiny-imagenet-1.5-epochs-fp32" / "results.json"


@pytest.mark.parametrize("width", [900, 1400])
def test_the_report_of_a_study_fits_the_window_its_tables_scroll_inside(tmp_path, width):
    """The committed cpu study judged again: at 900 and 1,400 pixels the page is no wider than the window."""
    from repro.cli import main

    assert main(["report", "--results", str(COMMITTED), "--report-dir", str(tmp_path / "report")]) == 0
    assert page_size(tmp_path / "report" / "index.html", tmp_path, width)[0] == width


def write_screenshots(out: Path, one_replicate: Path | None = None) -> list[Path]:
    """docs/screenshots/: the committed 1.5-epoch study judged again (whole page), a one-replicate study's first
    screen (`one_replicate`: the folder of its report, e.g. a cpu-quick study's; by default replicate 0 of the
    committed study judged alone) and the 2.5-epoch study judged again (a report written from a full store), at
    900 and 1,400 pixels."""
    import tempfile

    from repro.cli import main

    written = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def judged(results: Path, name: str) -> Path:
            assert main(["report", "--results", str(results), "--report-dir", str(tmp / name)]) in (0, 1)
            return tmp / name / "index.html"

        if one_replicate is None:
            doc = json.loads(COMMITTED.read_text())
            doc["runs"] = [r for r in doc["runs"] if r["replicate"] == min(r["replicate"] for r in doc["runs"])]
            (tmp / "replicate-0.json").write_text(json.dumps(doc))
        pages = {"cpu-1.5-epochs": (judged(COMMITTED, "cpu-1.5"), None),
                 "one-replicate": (one_replicate / "index.html" if one_replicate else
                                   judged(tmp / "replicate-0.json", "replicate-0"), 1500),
                 "cpu-2.5-epochs-rejudged": (judged(COMMITTED.parents[1] / "cpu-tiny-imagenet" / "results.json",
                                                    "cpu-2.5"), 1000)}
        for name, (html, height) in pages.items():
            for width in (900, 1400):
                png = out / f"report-{name}-{width}px.png"
                screenshot(html, tmp, width, height or page_size(html, tmp, width)[1], png)
                Image.open(png).convert("RGB").quantize(colors=128).save(png, optimize=True)
                written.append(png)
    return written


if __name__ == "__main__":
    import sys

    given = Path(sys.argv[1]) if len(sys.argv) > 1 else None
    for path in write_screenshots(Path(__file__).parents[1] / "docs" / "screenshots", given):
        print(path)
