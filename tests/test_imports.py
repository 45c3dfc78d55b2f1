"""The modules depend on each other in one direction (DESIGN.md: profile -> plan -> execute -> train -> store
-> ...): a module low in the flow never reaches up, not even through an import inside a function."""
import ast
from pathlib import Path

import pytest



pytestmark = pytest.mark.smoke

PACKAGE = Path(__file__).resolve().parents[1] / "repro"


def imported_modules(path: Path) -> set[str]:
    """Every repro module `path` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("repro"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("repro")}
    return found


def test_the_input_pipeline_does_not_import_the_training_loop():
    assert "repro.train" not in imported_modules(PACKAGE / "loader.py")
    assert "repro.loader" in imported_modules(PACKAGE / "train.py")


def test_the_batch_order_is_the_one_the_training_loop_used():
    """A pure move: the permutation of an epoch is the same numbers as before it moved (EPOCH_7_3)."""
    from repro.loader import batch_indices, epoch_order

    assert epoch_order(7, 3, 10).tolist() == EPOCH_7_3
    assert batch_indices(7, 3, 10, 4, 1).tolist() == EPOCH_7_3[4:8]
EPOCH_7_3 = [2, 5, 3, 1, 7, 4, 0, 8, 6, 9]  # repro.train.epoch_order(7, 3, 10) before the move
