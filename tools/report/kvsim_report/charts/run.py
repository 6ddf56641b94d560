"""The charts of a run or comparison drawn from timeseries.csv: KV memory over time (allocated,
live and, where a run has any, cached) and the running batch over time."""

from ..fmt import GIB, fint, fnum, is_num
from ..inputs.run_dir import is_interval_layout
from ..series import _bin_max, _moving_mean
from .mpl import color, fig_to_png, plt


CACHED_LABEL = "cached (kept for reuse)"


def plot_kv_memory(ax, run, replicas):
    """Draws a run's KV memory over time (run["series"], from run_series) on `ax`: allocated,
    live, cached where the run has any (no line, no legend entry otherwise) and the KV budget of
    `replicas` GPUs. Returns the bin width of _bin_max in seconds (None when not binned)."""
    t, alloc, live, cached, _ = run["series"]
    lines = [alloc, live] + ([] if cached is None else [cached])
    t, binned, width = _bin_max(t, lines)
    alloc, live = ([v / GIB for v in ys] for ys in binned[:2])
    c = color(run["index"])
    ax.fill_between(t, alloc, step="post", color=c, alpha=0.18, lw=0)
    ax.step(t, alloc, where="post", color=c, lw=1.4, label="allocated")
    ax.step(t, live, where="post", color="#222", lw=1.0, ls="--", label="live (tokens stored)")
    if cached is not None:
        ax.step(t, [v / GIB for v in binned[2]], where="post", color="#b8860b", lw=1.1, ls="-.",
                label=CACHED_LABEL)
    cap = run["summary"]["kv_capacity_bytes"]
    if is_num(cap) and cap > 0:
        ax.axhline(cap * replicas / GIB, color="#888", ls=":", lw=1.2, label="KV capacity")
    ax.set_title(run["label"])
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("KV memory (GiB)")
    ax.legend(loc="upper right" if cached is None else "best")
    ax.set_ylim(bottom=0)
    return width


def any_cached(runs):
    """Whether any of the runs (with run["series"]) kept KV bytes cached for reuse."""
    return any(r["series"][3] is not None for r in runs)


def chart_kv_memory(runs, replicas):
    """(PNG, bin width in seconds or None): each run's KV memory over time (plot_kv_memory), one
    panel per run."""
    n = len(runs)
    cols = 1 if n == 1 else 2
    rows = (n + cols - 1) // cols
    size = (9, 4.4) if n == 1 else (11, 3.4 * rows)
    fig, axes = plt().subplots(rows, cols, figsize=size,
                               squeeze=False, sharex=True, sharey=True)
    binned_width = None
    for k, run in enumerate(runs):
        binned_width = plot_kv_memory(axes[k // cols][k % cols], run, replicas) or binned_width
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    scope = "per GPU" if replicas == 1 else \
        f"summed over {replicas} replicas (one GPU's share each)"
    what = "allocated, live and cached" if any_cached(runs) else "allocated vs live"
    fig.suptitle(f"KV memory over time: {what}, {scope}")
    fig.tight_layout()
    png = fig_to_png(fig)
    return png, binned_width


def chart_running(runs):
    """(PNG, bin width in seconds or None, the moving mean's window in seconds): the running batch
    of each run (run["series"][4]) over time, faint, and its time-weighted moving mean, bold."""
    fig, ax = plt().subplots(figsize=(9, 4.6))
    binned_width = None
    window = 0.0
    for run in runs:
        t, running = run["series"][4]
        mt, my, window = _moving_mean(t, running)
        bt, (br,), width = _bin_max(t, [running])
        binned_width = width or binned_width
        c = color(run["index"])
        peak = max(running) if running else 0
        if is_interval_layout(run["timeseries"]):
            peak_text = f"interval mean {fnum(peak, 1)}"
        else:
            peak_text = fint(peak)
        ax.step(bt, br, where="post", color=c, lw=0.6, alpha=0.3)
        ax.plot(mt, my, color=c, lw=2.0, label=f"{run['label']}, mean running (peak {peak_text})")
    ax.set_title("Running batch size over time")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("running sequences (all replicas)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return fig_to_png(fig), binned_width, window
