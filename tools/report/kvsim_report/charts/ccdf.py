"""Latency distributions as complementary CDFs (the fraction of requests slower than x) on a log
scale, so that the tail reads off directly, each series' p50/p90/p99 marked."""

import math

from ..fmt import sig3
from .mpl import LINESTYLES, MARKERS, _log_if_wide, fig_to_png, plt


# The percentiles the latency charts mark: (name, q); each is drawn where the fraction of
# requests above it, 1 - q, is at least 1/n (below that it is simply the slowest request).
CCDF_MARKS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def nearest_rank(sorted_values, q):
    """The nearest-rank q-quantile of ascending values (what summary.json reports)."""
    n = len(sorted_values)
    return sorted_values[min(n, max(1, math.ceil(q * n - 1e-9))) - 1]


def ccdf_points(values, max_points=4000, tail=2000):
    """(xs, ys) of the complementary CDF, the fraction of values above x, as a step function to
    draw with where='post': it starts at 1 before the smallest value and ends at 0 at the largest.
    Beyond max_points values the `tail` largest are kept exactly and the rest sampled evenly."""
    vals = sorted(values)
    n = len(vals)
    if not n:
        return [], []
    if n > max_points:
        body = n - tail
        keep = max_points - tail
        idx = sorted(set(round(i * (body - 1) / (keep - 1)) for i in range(keep))
                     | set(range(body, n)))
    else:
        idx = range(n)
    xs = [vals[0]] + [vals[i] for i in idx]
    ys = [1.0] + [(n - 1 - i) / n for i in idx]
    return xs, ys


def plot_ccdf(ax, series, unit=""):
    """Draws complementary CDFs of series [(label, color, values)] on `ax`, log-scaled in y (and in
    x where the values span more than 30x), each with its p50/p90/p99 marked in its own marker and
    line style. Returns {"bottom": y floor, "marks": {label: {name: x}}, "n": {label: count}}."""
    present = [(i, s) for i, s in enumerate(series) if len(s[2])]
    info = {"bottom": None, "marks": {}, "n": {label: len(v) for label, _, v in series}}
    if not present:
        ax.text(0.5, 0.5, "no completed requests", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yscale("log")
        ax.set_ylim(1e-2, 1.3)
        return info
    n_max = max(len(s[2]) for _, s in present)
    # A decade below the smallest fraction the data can show (1/n), so the slowest request's
    # step is visible; the final drop to 0 is drawn to this floor.
    bottom = 10.0 ** math.floor(math.log10(0.5 / n_max))
    info["bottom"] = bottom
    ax.set_yscale("log")
    levels = [(name, q) for name, q in CCDF_MARKS if 1 - q >= 1.0 / n_max - 1e-12]
    for name, q in levels:
        ax.axhline(1 - q, color="#999", lw=0.8, ls=(0, (2, 3)), zorder=1)
        ax.text(1.005, 1 - q, name, transform=ax.get_yaxis_transform(), va="center",
                fontsize=8, color="#555")
    every = []
    for k, (i, (label, c, values)) in enumerate(present):
        vals = sorted(values)
        n = len(vals)
        xs, ys = ccdf_points(vals)
        ys = [y if y > 0 else bottom for y in ys]
        every += [vals[0], vals[-1]]
        marks = {name: nearest_rank(vals, q) for name, q in CCDF_MARKS[:3]}
        info["marks"][label] = marks
        text = ", ".join(f"{name} {sig3(marks[name])}" for name in ("p50", "p90", "p99")) + \
            (f" {unit}" if unit else "")
        marker = MARKERS[i % len(MARKERS)]
        ax.step(xs, ys, where="post", color=c, lw=1.6, ls=LINESTYLES[i % len(LINESTYLES)],
                label=f"{label} (n={n:,}; {text})", zorder=3)
        shown = [(nearest_rank(vals, q), 1 - q) for name, q in levels if n * (1 - q) >= 1 - 1e-9]
        if shown:
            ax.plot([x for x, _ in shown], [y for _, y in shown], ls="none", marker=marker,
                    ms=6.5, color=c, markeredgecolor="#222", markeredgewidth=0.6, zorder=4)
    _log_if_wide(ax, every, ratio=30.0)
    ax.set_ylim(bottom, 1.3)
    ax.legend(loc="lower left", fontsize=8)
    return info


def chart_ccdf(series, title, xlabel, unit="", note=None):
    """A complementary CDF chart of series [(label, color, values)], as PNG bytes."""
    fig, ax = plt().subplots(figsize=(9, 4.8))
    plot_ccdf(ax, series, unit)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests above x (log)")
    if note:
        fig.text(0.01, -0.02, note, fontsize=8, color="#444", va="top")
    return fig_to_png(fig)
