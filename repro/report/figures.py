"""The report's figures: the paper's plots redrawn from results Tables, as inline SVG strings.

Every figure has one column per evidence source: the original study on the left, this session on the right
(only the original when the report is of the original study itself). Absolute accuracies keep their own
y-axis per column, since ILSVRC-2012 at 62% and a CPU-scale study are not on one scale; every plot relative to
a network's own base (the base of its target half, same split and replicate) shares its y-axis across columns,
so the two studies can be read against each other.

Matplotlib's object API (`Figure`, no pyplot), so no backend or global figure state is touched; text is
written as paths, so the SVG needs no fonts.
"""
from __future__ import annotations

import io
import math
from collections import defaultdict

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from repro.profiles import MAX_LAYER
from repro.results import Row, Table, family, relative_to_base
from repro.runs import TRANSFERRED

# The paper's Figure 2 colours: selffer in blues, transfer in reds, fine-tuned in the lighter shade.
COLORS = {"base": "#ffffff", "BnB": "#1d3f91", "BnB+": "#6ea6f0", "AnB": "#a3161b", "AnB+": "#f28b82",
          "random": "#555555"}
OFFSET = {"base": 0.0, "BnB": -0.21, "BnB+": -0.07, "AnB": 0.07, "AnB+": 0.21}  # side by side at each n
NAT_TO_MAN = "#2f7d4f"  # target man-made (B), layers from natural (A)
MAN_TO_NAT = "#7b4fb8"  # target natural (A), layers from man-made (B)
EMPTY = "no runs of this kind in this session"
RC = {"font.size": 9.5, "axes.spines.top": False, "axes.spines.right": False, "axes.titlesize": 10.5,
      "axes.titleweight": "bold", "legend.frameon": False, "svg.fonttype": "path"}


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def is_random_split(row: Row) -> bool:
    return family(row.split) == "random"


def bases_by_pair(table: Table) -> dict[tuple, Row]:
    return {r.pair_key: r for r in table.rows if r.treatment == "base"}


def relative(row: Row, bases: dict[tuple, Row]) -> float | None:
    """Top-1 relative to the base of the row's own target half (repro.results.relative_to_base), or None where
    there is nothing to draw: no usable base, or a diverged network or base (shown in Figure 2's absolute panel
    and the run table; relative to base it would only set the scale)."""
    base = bases.get(row.pair_key)
    if base is None or base.diverged or row.diverged:
        return None
    value = relative_to_base(row.top1, base.top1)
    return value if math.isfinite(value) else None


def relative_points(rows, bases) -> list[tuple[int, float]]:
    """(n, top-1 relative to own base in %) of every row that has a usable base and did not diverge."""
    points = [(r.n, relative(r, bases)) for r in rows]
    return [(n, y) for n, y in points if y is not None]


def mean_by_n(points) -> tuple[list[int], list[float]]:
    """[(n, y)] -> (sorted n, mean y at each n)."""
    by_n = defaultdict(list)
    for n, y in points:
        by_n[n].append(y)
    ns = sorted(by_n)
    return ns, [float(np.mean(by_n[n])) for n in ns]


def plot_means(ax, ns: list[int], means: list[float], color: str) -> None:
    """The mean at each n as a short dash, joined by a line only between adjacent n: a study that trained
    n = 1, 2 and 7 shows nothing between 2 and 7, where no network was trained."""
    xs, ys = [], []
    for n, y in zip(ns, means):
        if xs and n - xs[-1] > 1:
            xs.append(math.nan)
            ys.append(math.nan)
        xs.append(n)
        ys.append(y)
    ax.plot(xs, ys, color=color, linewidth=1.8, marker="_", markersize=12, markeredgewidth=1.8, zorder=2)


def to_svg(fig: Figure, salt: str) -> str:
    """The figure as an <svg> element for inline use (no XML prolog, no doctype, no metadata).

    The hash salt makes the ids of clip paths and markers differ between figures of one page.
    """
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": salt, "svg.fonttype": "path"}):
        fig.savefig(buf, format="svg", bbox_inches="tight",
                    metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _new(panels, rows: int, height: float, sharey_rows=()) -> tuple[Figure, np.ndarray]:
    width = 5.6 * len(panels) + 0.6 if len(panels) > 1 else 6.4
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(rows, len(panels), squeeze=False)
    for r in sharey_rows:
        for ax in axes[r][1:]:
            ax.sharey(axes[r][0])
    for col, (title, _) in enumerate(panels):
        axes[0][col].set_title(title)
    return fig, axes


def _empty(ax, message: str = EMPTY):
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color="#777777")
    ax.set_xticks([])
    ax.set_yticks([])


def _layer_axis(ax, blocks: int, label=True, with_base=True):
    """n = 1..blocks of the panel's network (repro.models.blocks), after its base."""
    first = 0 if with_base else 1
    ax.set_xticks(range(first, blocks + 1))
    ax.set_xticklabels((["base"] if with_base else []) + [str(n) for n in range(1, blocks + 1)])
    ax.set_xlim(first - 0.5, blocks + 0.5)
    if label:
        ax.set_xlabel("n: layers copied from the base (1-5 conv, 6-7 fc)" if blocks == MAX_LAYER
                      else "n: blocks copied from the base")
    ax.grid(axis="y", color="#e6e6e6", linewidth=0.8)


def _scatter(ax, xs, ys, diverged, color, marker="o", size=22, zorder=3):
    """Networks as points; diverged networks as crosses (they do not enter the mean lines)."""
    xs, ys, diverged = np.asarray(xs, float), np.asarray(ys, float), np.asarray(diverged, bool)
    edge = "#222222" if color == "#ffffff" else "white"
    ax.scatter(xs[~diverged], ys[~diverged], s=size, c=color, edgecolors=edge, linewidths=0.6, marker=marker,
               zorder=zorder)
    if diverged.any():
        ax.scatter(xs[diverged], ys[diverged], s=size * 1.6, c=color if color != "#ffffff" else "#222222",
                   marker="x", linewidths=1.4, zorder=zorder)


def figure2(panels: list[tuple[str, Table]]) -> Figure:
    """The paper's Figure 2 on the random splits: top, every network's top-1 and the mean line of each
    treatment over n; bottom, the same relative to the base of each network's own target half."""
    fig, axes = _new(panels, rows=2, height=7.4, sharey_rows=(1,))
    for col, (_, table) in enumerate(panels):
        top, bottom = axes[0][col], axes[1][col]
        rows = [r for r in table.rows if is_random_split(r) and r.treatment in ("base",) + TRANSFERRED]
        bases = bases_by_pair(table)
        _layer_axis(top, table.blocks, label=False)
        _layer_axis(bottom, table.blocks)
        if not rows:
            _empty(top), _empty(bottom)
            continue
        base_rows = [r for r in rows if r.treatment == "base" and _finite(r.top1)]
        ok_bases = [r.top1 for r in base_rows if not r.diverged]
        if ok_bases:
            top.axhline(float(np.mean(ok_bases)), color="#222222", linestyle="--", linewidth=1, zorder=1)
        bottom.axhline(0.0, color="#222222", linestyle="--", linewidth=1, zorder=1)
        _scatter(top, [0] * len(base_rows), [r.top1 for r in base_rows], [r.diverged for r in base_rows],
                 COLORS["base"], size=30)
        for treatment in TRANSFERRED:
            group = [r for r in rows if r.treatment == treatment and _finite(r.top1)]
            if not group:
                continue
            color = COLORS[treatment]
            _scatter(top, [r.n + OFFSET[treatment] for r in group], [r.top1 for r in group],
                     [r.diverged for r in group], color)
            plot_means(top, *mean_by_n([(r.n, r.top1) for r in group if not r.diverged]), color)
            rel = relative_points(group, bases)
            _scatter(bottom, [n + OFFSET[treatment] for n, _ in rel], [y for _, y in rel], [False] * len(rel),
                     color, size=16)
            plot_means(bottom, *mean_by_n(rel), color)
        top.set_ylabel("top-1 accuracy")
        bottom.set_ylabel("top-1 vs own base (%)")
    handles = [Line2D([], [], color="#222222", linestyle="--", marker="o", markerfacecolor="white",
                      label="base (dashed: mean)")]
    handles += [Line2D([], [], color=COLORS[t], marker="o", markeredgecolor="white", label=t) for t in TRANSFERRED]
    handles += [Line2D([], [], color="#222222", marker="x", linestyle="none", label="diverged (not in means)")]
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles) if len(panels) > 1 else 3)
    return fig


def figure_natman(panels: list[tuple[str, Table]]) -> Figure:
    """Frozen transfer between dissimilar halves (natural <-> man-made) against the random splits, each
    network relative to its own base (the paper's Figure 3, top, in relative form)."""
    series = [
        ("natural → man-made", NAT_TO_MAN, lambda r: r.split == "natman" and r.target == "B"),
        ("man-made → natural", MAN_TO_NAT, lambda r: r.split == "natman" and r.target == "A"),
        ("random splits", COLORS["AnB"], is_random_split),
    ]
    fig, axes = _new(panels, rows=1, height=3.9, sharey_rows=(0,))
    for col, (_, table) in enumerate(panels):
        ax = axes[0][col]
        _layer_axis(ax, table.blocks, with_base=False)
        rows = [r for r in table.rows if r.treatment == "AnB"]
        if not _relative_lines(ax, table, [(color, [r for r in rows if pick(r)]) for _, color, pick in series]):
            _empty(ax)
            continue
        ax.set_ylabel("AnB: top-1 vs own base (%)")
    _line_legend(fig, [(label, color) for label, color, _ in series])
    return fig


def _relative_lines(ax, table: Table, series) -> bool:
    """Each network relative to its own base as a point, and the mean over networks at each n as a line;
    False when nothing could be drawn."""
    bases = bases_by_pair(table)
    drawn = False
    for color, rows in series:
        rel = relative_points(rows, bases)
        if not rel:
            continue
        drawn = True
        _scatter(ax, [n for n, _ in rel], [y for _, y in rel], [False] * len(rel), color, size=14)
        plot_means(ax, *mean_by_n(rel), color)
    if drawn:
        ax.axhline(0.0, color="#222222", linestyle="--", linewidth=1, zorder=1)
    return drawn


def _line_legend(fig: Figure, entries, extra=()):
    handles = [Line2D([], [], color=color, marker="o", markeredgecolor="white", label=label)
               for label, color in entries]
    handles += list(extra)
    ncols = len(handles) if fig.get_figwidth() > 8 else 2  # a single column has room for two entries a line
    fig.legend(handles=handles, loc="outside lower center", ncols=ncols)


def figure_random(panels: list[tuple[str, Table]]) -> Figure:
    """Random frozen layers against frozen transfer, relative to each network's own base (the paper's
    Figure 3, bottom)."""
    series = [
        ("random frozen layers", COLORS["random"], lambda r: r.treatment == "random"),
        ("transfer, dissimilar halves (natman AnB)", NAT_TO_MAN,
         lambda r: r.treatment == "AnB" and r.split == "natman"),
        ("transfer, random splits (AnB)", COLORS["AnB"],
         lambda r: r.treatment == "AnB" and is_random_split(r)),
    ]
    fig, axes = _new(panels, rows=1, height=3.9, sharey_rows=(0,))
    for col, (_, table) in enumerate(panels):
        ax = axes[0][col]
        _layer_axis(ax, table.blocks, with_base=False)
        if not _relative_lines(ax, table, [(color, list(filter(pick, table.rows))) for _, color, pick in series]):
            _empty(ax)
            continue
        bases = bases_by_pair(table)
        chance = [100.0 * ((1.0 / r.num_classes) / bases[r.pair_key].top1 - 1.0)
                  for r in table.rows if r.treatment == "random" and r.num_classes > 0
                  and relative(r, bases) is not None]
        if chance:
            ax.axhline(float(np.mean(chance)), color="#999999", linestyle=":", linewidth=1.2)
        ax.set_ylabel("top-1 vs own base (%)")
    chance_handle = Line2D([], [], color="#999999", linestyle=":", label="chance")
    _line_legend(fig, [(label, color) for label, color, _ in series], extra=[chance_handle])
    return fig


def _curve_style(row: Row) -> tuple[str, str]:
    if row.split == "natman":
        return ("natman A (natural)", MAN_TO_NAT) if row.target == "A" else ("natman B (man-made)", NAT_TO_MAN)
    if is_random_split(row):
        return "random-split halves", COLORS["BnB"]
    return f"{row.split} ({row.target})", "#444444"


def figure_curves(panels: list[tuple[str, Table]]) -> Figure:
    """Validation top-1 over training of every base network."""
    fig, axes = _new(panels, rows=1, height=3.6)
    for col, (_, table) in enumerate(panels):
        ax = axes[0][col]
        seen = set()
        for r in table.rows:
            curve = table.curves.get(r.key) if r.treatment == "base" else None
            if not curve:
                continue
            label, color = _curve_style(r)
            xs, ys = zip(*sorted(curve))
            ax.plot(xs, ys, color=color, linewidth=1.1, alpha=0.85, linestyle=":" if r.diverged else "-",
                    label=None if label in seen else label)
            seen.add(label)
        if not seen:
            _empty(ax, "no validation curves of base networks recorded")
            continue
        ax.set_xlabel("training iteration")
        ax.set_ylabel("validation top-1")
        ax.grid(color="#eeeeee", linewidth=0.8)
        ax.legend(loc="lower right")
    return fig


def figure_confound(panels: list[tuple[str, Table]]) -> Figure:
    """The fine-tune boost against each network's own base: x = the top-1 of the base of its own target
    half, y = its own top-1; above the diagonal = better than its own base. The dotted vertical line is the
    mean of all bases, the single reference that a comparison without pairing uses."""
    fig, axes = _new(panels, rows=1, height=4.2)
    for col, (_, table) in enumerate(panels):
        ax = axes[0][col]
        bases = bases_by_pair(table)
        mean_base = [r.top1 for r in table.rows if r.treatment == "base" and is_random_split(r)
                     and not r.diverged and _finite(r.top1)]
        mean_base = float(np.mean(mean_base)) if mean_base else None
        values = [] if mean_base is None else [mean_base]
        for treatment, marker in (("BnB+", "s"), ("AnB+", "o")):
            pairs = [(bases[r.pair_key].top1, r.top1) for r in table.rows
                     if r.treatment == treatment and is_random_split(r) and relative(r, bases) is not None]
            if not pairs:
                continue
            xs, ys = zip(*pairs)
            label = f"{treatment} ({len(pairs)}): {100 * np.mean(np.subtract(ys, xs)):+.1f} pts vs own base"
            if mean_base is not None:
                label += f", {100 * (np.mean(ys) - mean_base):+.1f} vs mean base"
            ax.scatter(xs, ys, s=34, c=COLORS[treatment], marker=marker, edgecolors="white", linewidths=0.6,
                       label=label, zorder=3)
            values += xs + ys
        if len(values) <= (mean_base is not None):
            _empty(ax)
            continue
        lo, hi = min(values), max(values)
        pad = 0.08 * (hi - lo) + 1e-3
        lo, hi = lo - pad, hi + pad
        ax.plot([lo, hi], [lo, hi], color="#222222", linewidth=1, linestyle="--", label="as good as own base",
                zorder=1)
        if mean_base is not None:
            ax.axvline(mean_base, color="#999999", linestyle=":", linewidth=1.2, label="mean of all bases")
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_xlabel("top-1 of its own target's base")
        ax.set_ylabel("top-1 of the fine-tuned network")
        ax.grid(color="#eeeeee", linewidth=0.8)
        ax.legend(loc="lower right", fontsize=8.5)
    return fig


FIGURES = [
    ("figure2", "Figure 2 of the paper: frozen and fine-tuned transfer over n (random splits)", figure2,
     "Top: every network as a point at n, with the mean line of each treatment; the white points at n = 0 and "
     "the dashed line are the base networks. Bottom: each network relative to the base of its own target half "
     "(same split and replicate); the bottom row shares its y-axis between the original study and this session. "
     "BnB: frozen selffer (layers from the target's own base); AnB: frozen transfer from the other half; "
     "+: fine-tuned. Crosses: diverged networks, left out of the means and of every plot relative to base. "
     "Dashes: the mean at each n, joined only between adjacent n that were trained."),
    ("natman", "Dissimilar halves: natural / man-made against the random splits", figure_natman,
     "Frozen transfer AnB relative to its own base, in both directions of the natural / man-made split "
     "(the paper's Figure 3, top) beside the mean over the random splits. The paper: transfer gets worse as "
     "the tasks grow apart, most at the top layers."),
    ("random", "Random frozen layers against transferred layers", figure_random,
     "Layers 1..n random and frozen (the rest trained), against frozen transfer from a dissimilar and from a "
     "similar half, each relative to its own base (the paper's Figure 3, bottom). The original control trained "
     "on all 1000 classes."),
    ("confound", "The fine-tune boost, each network against its own base", figure_confound,
     "Every fine-tuned network (AnB+, BnB+ on the random splits) against the base of its own target half. "
     "Points above the diagonal beat their own base. In the original study most AnB+ networks target the "
     "strongest base and most BnB+ networks the weakest, so comparing both with the mean of all bases (dotted) "
     "overstates the gap between them; the legend gives both readings."),
    ("curves", "Validation curves of the base networks", figure_curves,
     "Validation top-1 of every base network over training; the score of a network is the mean of its k best "
     "tests (the paper: k = 10 of 450). Dotted: diverged."),
]


def render_figures(table: Table, original: Table | None) -> list[dict]:
    """Every figure of the report as {'id', 'title', 'caption', 'svg'}.

    `original` None: the table is the original study itself, drawn alone.
    """
    if original is None:
        panels = [("Original study (ILSVRC-2012)", table)]
    else:
        evidence = sorted({r.evidence for r in table.rows}) or ["this session"]
        panels = [("Original study (ILSVRC-2012)", original), (f"This session ({', '.join(evidence)})", table)]
    out = []
    with matplotlib.rc_context(RC):
        for i, (fid, title, draw, caption) in enumerate(FIGURES):
            fig = draw(panels)
            out.append({"id": fid, "title": title, "caption": caption, "svg": to_svg(fig, f"{fid}-{i}")})
    return out
