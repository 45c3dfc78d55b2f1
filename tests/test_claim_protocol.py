"""The claims are one extension point: every shipped claim module satisfies repro.claims.protocol.Claim, and
a module that does not is refused, saying what it lacks."""
from types import ModuleType

import pytest

from repro.claims import CLAIMS, early_layer_generality, finetune_boost
from repro.claims.protocol import OPTIONAL, Claim, check_claim, member, problems

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize("claim", CLAIMS, ids=[c.ID for c in CLAIMS])
def test_every_shipped_claim_satisfies_the_protocol(claim):
    assert isinstance(claim, Claim) and problems(claim) == [] and check_claim(claim) is claim
    assert claim.__name__ == f"repro.claims.{claim.ID}"


def test_optional_members_default_in_one_place():
    assert member(finetune_boost, "controls") is finetune_boost.controls
    assert member(early_layer_generality, "controls") is OPTIONAL["controls"]
    assert member(early_layer_generality, "controls")(None, {}) == []
    assert member(early_layer_generality, "caveat")(None) is None


def _module(**members) -> ModuleType:
    module = ModuleType("repro.claims.made_up")
    for name in ("ID", "ORDER", "TITLE", "SENTENCE", "NEEDS", "PREMISES", "SMALLEST", "measure"):
        setattr(module, name, getattr(early_layer_generality, name))
    for name, value in members.items():
        if value is None:
            delattr(module, name)
        else:
            setattr(module, name, value)
    return module


def test_a_module_without_measure_is_refused_saying_what_it_lacks():
    module = _module(measure=None)
    assert not isinstance(module, Claim)
    with pytest.raises(TypeError, match=r"repro\.claims\.made_up is not a claim .*: measure must be a function "
                                        r"\(it has none\)"):
        check_claim(module)


def test_mistyped_members_are_named():
    assert problems(_module(PREMISES=["trained_alike"], controls="none")) == [
        "PREMISES must be a tuple", "controls must be a function"]
    assert check_claim(_module()).ID == early_layer_generality.ID


def test_the_claims_are_every_module_of_the_package_in_the_papers_order():
    """Adding a claim is its module in repro/claims/ (found by the package, placed by its ORDER) and its test
    module in claims/ (docs/extending.md): no list to edit."""
    import pkgutil

    import repro.claims

    found = {info.name for info in pkgutil.iter_modules(repro.claims.__path__)} - {"protocol"}
    assert [c.ID for c in CLAIMS] == ["early_layer_generality", "coadaptation_dip", "distance_penalty",
                                      "finetune_boost", "random_features"]
    assert {c.ID for c in CLAIMS} == found and [c.ORDER for c in CLAIMS] == [1, 2, 3, 4, 5]
