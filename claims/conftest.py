"""Fixtures of the claim tests. `study` and `record_verdict` come from the repro pytest plugin
(repro.pytest_plugin): each module names its claim with `pytestmark = pytest.mark.claim(claim)`, and `study`
trains the runs of the claims of the selected tests. `original` is the original study's own numbers, the
positive control."""
import pytest

from repro.paper import original_table


@pytest.fixture(scope="session")
def original():
    """The original study's 136 networks (Yosinski et al. 2014) as a results Table."""
    return original_table()
