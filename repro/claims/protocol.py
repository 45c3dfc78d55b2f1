"""What a claim module is: the `Claim` protocol, its optional members' defaults, and the check that refuses a
module that does not satisfy it (repro.claims runs it on every module of its package when it is imported)."""
from __future__ import annotations

from types import ModuleType
from typing import Callable, Protocol, runtime_checkable


@runtime_checkable
class Claim(Protocol):
    """One of the paper's claims, as a module (repro.claims.early_layer_generality and the others)."""

    ID: str
    """The claim's id: its scorecard row, its test module (claims/test_<ID>.py), `--claims ID`."""

    ORDER: int
    """Its place in the scorecard (the paper's five: 1-5, in the paper's order); repro.claims sorts by it."""

    TITLE: str
    """A few words the report shows as the claim's heading."""

    SENTENCE: str
    """The paper's own words, quoted."""

    NEEDS: list
    """The runs the claim reads (repro.runs.Need: a split family and a treatment)."""

    PREMISES: tuple
    """The ids of the premises (repro.premises) the claim rests on; one that does not hold blocks it."""

    SMALLEST: dict
    """{test name: the smallest effect that counts as the claim}, stated before any data."""

    def measure(self, table, paper_effects: dict) -> tuple:
        """(combined test, headline test, details) on a results table (repro.results.Table); `paper_effects`:
        {test name: the original study's effect of that test}, measured by this same function."""


def no_controls(table, paper_effects: dict) -> list:
    """The default of `controls(table, paper_effects) -> [(test, meaning)]`: controls shown under the claim,
    each with its own verdict. None."""
    return []


def no_caveat(table) -> str | None:
    """The default of `caveat(table) -> str`: a sentence the report shows under the claim. None."""
    return None


OPTIONAL: dict[str, Callable] = {"controls": no_controls, "caveat": no_caveat}
"""The optional members of a claim module, each with its default (the one place the driver reads them)."""

_TYPES = {"ID": str, "ORDER": int, "TITLE": str, "SENTENCE": str, "NEEDS": list, "PREMISES": tuple, "SMALLEST": dict}


def member(claim, name: str) -> Callable:
    """A claim's optional member `name` (of OPTIONAL), or its default."""
    return getattr(claim, name, OPTIONAL[name])


def problems(claim) -> list[str]:
    """What a module lacks to be a Claim: each missing or mistyped member, in words ([] when it is one)."""
    found = [f"{name} must be a {kind.__name__}" + ("" if hasattr(claim, name) else " (it has none)")
             for name, kind in _TYPES.items() if not isinstance(getattr(claim, name, None), kind)]
    for name in ("measure", *OPTIONAL):
        if (name == "measure" or hasattr(claim, name)) and not callable(getattr(claim, name, None)):
            found.append(f"{name} must be a function" + ("" if hasattr(claim, name) else " (it has none)"))
    return found


def check_claim(claim: ModuleType) -> ModuleType:
    """The module itself if it satisfies Claim; else a TypeError naming what it lacks."""
    wrong = problems(claim)
    if wrong:
        name = getattr(claim, "__name__", repr(claim))
        raise TypeError(f"{name} is not a claim (repro.claims.protocol.Claim): {'; '.join(wrong)}. A claim module "
                        f"has ID, ORDER, TITLE, SENTENCE, NEEDS, PREMISES, SMALLEST and "
                        f"measure(table, paper_effects) -> (combined test, headline test, details); "
                        f"docs/extending.md")
    return claim
