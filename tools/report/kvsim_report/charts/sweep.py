"""The charts of a sweep: completed against offered load, and p99 latencies against offered
load, one line per KV manager."""

from ..fmt import is_num
from .mpl import MARKERS, _log_if_wide, color, fig_to_png, plt


def chart_sweep_throughput(labels, by_label):
    """PNG: completed requests/s against offered load per KV manager (`by_label`: each label's
    runs {rate, summary} in rate order), with the completed = offered diagonal."""
    fig, ax = plt().subplots(figsize=(9, 4.6))
    top = 0.0
    for i, lab in enumerate(labels):
        xs = [r["rate"] for r in by_label[lab]]
        ys = [r["summary"]["requests_per_s"] for r in by_label[lab]]
        top = max([top] + xs + ys)
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.6, label=lab)
    ax.plot([0, top], [0, top], color="#888", ls=":", lw=1.2, label="completed = offered")
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.set_title("Throughput against offered load")
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel("completed requests/s")
    ax.legend(loc="upper left")
    return fig_to_png(fig)


def chart_sweep_p99(labels, by_label, key, name, scale, unit):
    """PNG: the p99 of summary key `key` (x `scale`, in `unit`) against offered load per KV
    manager, the y axis log-scaled where the values span over 100x."""
    fig, ax = plt().subplots(figsize=(9, 4.4))
    allv = []
    for i, lab in enumerate(labels):
        xs = [r["rate"] for r in by_label[lab]]
        ys = [r["summary"][key]["p99"] * scale for r in by_label[lab]]
        allv += [y for y in ys if is_num(y)]
        ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.6,
                label=lab)
    _log_if_wide(ax, allv, axis="y", ratio=100.0)
    ax.set_xlim(left=0)
    ax.set_title(f"p99 {name} against offered load")
    ax.set_xlabel("offered load (requests/s)")
    ax.set_ylabel(f"p99 {name} ({unit})")
    ax.legend(loc="upper left")
    return fig_to_png(fig)
