"""One way to write a number: the terminal table, the HTML page and a comparison of sessions write the same
effect and the same p-value the same way (repro.format)."""
import json

import pytest

from repro.format import duration, p_phrase, p_value, signed
from repro.profiles import SMOKE
from repro.report import compare, format_comparison, session_info, write_report
from repro.results import Table
from repro.stats import Verdict
from repro.summary import verdict_table

pytestmark = pytest.mark.smoke


def test_the_formatter_writes_signed_numbers_p_values_and_durations():
    assert [signed(1.234), signed(-13.2), signed(None), signed(float("nan"))] == ["+1.23", "-13.20", "—", "—"]
    assert signed(-0.5, typographic=True) == "−0.50"
    assert [p_value(0.0004), p_value(0.02), p_value(None)] == ["< 0.001", "0.020", "—"]
    assert [p_phrase(0.0004), p_phrase(0.02), p_phrase(float("nan"))] == ["p < 0.001", "p = 0.020", ""]
    assert [duration(0), duration(5), duration(90), duration(7500)] == ["—", "5.0 s", "1.5 min", "2 h 05 min"]


def test_terminal_page_and_comparison_write_an_effect_and_p_the_same_way(tmp_path):
    verdict = Verdict(claim="coadaptation_dip", verdict="reproduced", effect=-13.2, ci=(-14.0, -12.5), p=0.0004,
                      paper_effect=-12.0, replicates=4, replicates_needed=3, explanation="x", unit="points",
                      evidence="smoke")
    terminal = verdict_table([verdict])
    html, js = write_report(tmp_path, profile_name="smoke", table=Table([]), verdicts=[verdict],
                            session=session_info("x", SMOKE))
    page = html.read_text()
    comparison = format_comparison(compare(json.loads(js.read_text()), json.loads(js.read_text())))
    assert "-13.20 points [-14.00, -12.50]" in terminal and "< 0.001" in terminal
    assert "−13.20 pts" in page and "[−14.00, −12.50]" in page and "&lt; 0.001" in page
    assert "-13.20 points" in comparison
