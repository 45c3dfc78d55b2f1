"""The modules depend on each other in one direction (DESIGN.md: profile -> plan -> execute -> train -> store
-> ...): a module low in the flow never reaches up, not even through an import inside a function.

The dependency map is read from the source (every `import` and `from ... import`, at the top of a module or
inside a function, relative imports resolved), so an import that only a rare path runs counts as much as one
that every path runs."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.smoke

PACKAGE = Path(__file__).resolve().parents[1] / "repro"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str) -> dict[str, int]:
    """The repro modules that module `name` imports, each with the line of its first import. `from repro.a
    import b` is the module repro.a.b where there is one, else repro.a; importing repro.a.b also runs the
    package repro.a (unless `name` is inside it)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: `from . import x`, `from ..a import x`
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        for target in targets:
            parts = target.split(".")
            for k in range(2, len(parts) + 1):  # the module and the packages above it
                module = ".".join(parts[:k])
                if module in MODULES and module != name and not name.startswith(module + "."):
                    found.setdefault(module, node.lineno)
    return found


IMPORTS = {name: imports_of(name) for name in MODULES}


def cycles(graph: dict[str, dict]) -> list[tuple[list[str], list[str]]]:
    """The strongly connected components of more than one module (Tarjan): (its modules, one cycle through
    them)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append((sorted(component), cycle_through(v, component, graph)))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def cycle_through(start: str, component: set[str], graph: dict[str, dict]) -> list[str]:
    """The shortest path start -> ... -> start inside the component (breadth first)."""
    came_from = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in sorted(graph[v]):
                if w == start:
                    path = [v]
                    while came_from[path[-1]] is not None:
                        path.append(came_from[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w in component and w not in came_from:
                    came_from[w] = v
                    following.append(w)
        frontier = following
    raise AssertionError(f"{start} is on no cycle of {component}")


def test_the_dependency_map_has_no_cycle():
    found = cycles(IMPORTS)
    described = [f"{', '.join(component)} import each other, e.g.:\n    " +
                 "\n    ".join(f"{a} -> {b}   ({MODULES[a].relative_to(PACKAGE.parent)}:{IMPORTS[a][b]})"
                                for a, b in zip(cycle, cycle[1:])) for component, cycle in found]
    assert not found, "import cycles in repro/:\n  " + "\n  ".join(described)


def test_the_cycle_finder_finds_a_cycle_and_the_imports_it_reads():
    assert cycles({"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1, "d": 1}, "d": {}}) == [
        (["a", "b", "c"], ["a", "b", "c", "a"])]
    assert cycles({"a": {"b": 1}, "b": {}}) == []
    # relative, function-level and package imports all count
    assert {"repro.report.compare", "repro.report.session"} <= set(IMPORTS["repro.report"])
    assert "repro.execute" in IMPORTS["repro.study"]  # inside train_study
    assert "repro.report" in IMPORTS["repro.study"]  # `from repro.report import ...`, inside a function


def test_the_command_line_and_the_judging_start_without_torch():
    """`repro --help`, `repro plan`'s option checks and judging a results.json need no torch: the command line
    starts quickly, and a report's header says a session that never loaded torch trained nothing
    (repro.report.session). The first module that loads it is named."""
    light = ["repro.cli", "repro.study", "repro.profiles", "repro.runs", "repro.budget", "repro.numerics",
             "repro.provenance", "repro.replicates", "repro.results", "repro.paper", "repro.premises",
             "repro.stats", "repro.claims", "repro.summary", "repro.planned_power", "repro.report"]
    script = ("import importlib, sys\n"
              f"for name in {light!r}:\n"
              "    importlib.import_module(name)\n"
              "    if 'torch' in sys.modules:\n"
              "        print(name)\n"
              "        break\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {out.stdout.strip()} loads torch"


def test_the_input_pipeline_does_not_import_the_training_loop():
    assert "repro.train" not in IMPORTS["repro.loader"]
    assert "repro.loader" in IMPORTS["repro.train"]


def test_the_cost_model_and_the_schedule_are_apart():
    """repro.cost gives a group its time; repro.schedule simulates the executor with it; the CPU measurement
    (repro.cpu_steps) feeds the cost model and knows nothing of the schedule."""
    assert "repro.cost" in IMPORTS["repro.schedule"] and "repro.schedule" not in IMPORTS["repro.cost"]
    assert "repro.schedule" not in IMPORTS["repro.cpu_steps"]


def test_the_batch_order_is_the_one_the_training_loop_used():
    """A pure move: the permutation of an epoch is the same numbers as before it moved (EPOCH_7_3)."""
    from repro.loader import batch_indices, epoch_order

    assert epoch_order(7, 3, 10).tolist() == EPOCH_7_3
    assert batch_indices(7, 3, 10, 4, 1).tolist() == EPOCH_7_3[4:8]


EPOCH_7_3 = [2, 5, 3, 1, 7, 4, 0, 8, 6, 9]  # repro.train.epoch_order(7, 3, 10) before the move


def test_the_networks_know_nothing_of_the_study():
    """An architecture module builds a network from its `arch` (repro.profiles.Arch, read by attribute) and
    imports nothing of the study: adding one touches its module and the registry (docs/extending.md)."""
    networks = [name for name in MODULES if name.startswith("repro.models")]
    assert len(networks) >= 3
    for name in networks:
        assert set(IMPORTS[name]) <= {"repro.models", "repro.models.stack"}, (name, IMPORTS[name])


# The layers of repro/, from the bottom: a module imports only from its own layer and the ones below. This is the
# call hierarchy under DESIGN.md's data flow (profile -> plan -> execute -> train -> store -> results -> claims ->
# report): the executor sits above the training loop and the store it drives; the claims and the report read
# the results table. A new module is placed here (the test names any that is not).
LAYERS = [
    ("foundations", ["errors", "files", "format", "provenance", "numerics", "split_names", "reference", "models",
                     "stats.power", "claims.protocol"]),
    ("profiles and data", ["profiles", "settings", "budget", "data", "data.base", "data.cache", "data.splits",
                           "data.synthetic", "data.folder", "data.imagenet", "data.tiny_imagenet"]),
    ("plan", ["runs", "replicates"]),
    ("train", ["models.alexnet8", "models.resnet", "models.stack", "transfer", "train", "loader"]),
    ("store", ["store"]),
    ("execute", ["execute", "backends", "backends.inline", "backends.pool", "backends.slurm", "cost", "schedule",
                 "cpu_steps", "worker"]),
    ("results", ["results", "paper"]),
    ("claims", ["claims", "claims.coadaptation_dip", "claims.distance_penalty", "claims.early_layer_generality",
                "claims.finetune_boost", "claims.random_features", "premises", "stats", "stats.samples",
                "stats.tests", "stats.verdicts", "planned_power", "summary", "simulated_tables"]),
    ("report", ["report", "report.figures", "report.session", "report.schema", "report.compare", "report.document",
                "report.page"]),
    ("commands", ["study", "cli", "pytest_plugin"]),
]
LAYER_OF = {f"repro.{module}": k for k, (_, modules) in enumerate(LAYERS) for module in modules}


def test_no_module_imports_one_above_its_layer():
    unplaced = sorted(set(MODULES) - set(LAYER_OF) - {"repro"})
    assert not unplaced, f"place these modules in a layer of LAYERS: {unplaced}"
    up = [f"{a} ({LAYERS[LAYER_OF[a]][0]}) -> {b} ({LAYERS[LAYER_OF[b]][0]})   "
          f"({MODULES[a].relative_to(PACKAGE.parent)}:{line})"
          for a, targets in sorted(IMPORTS.items()) if a in LAYER_OF
          for b, line in targets.items() if b in LAYER_OF and LAYER_OF[b] > LAYER_OF[a]]
    assert not up, "imports back up:\n  " + "\n  ".join(up)
