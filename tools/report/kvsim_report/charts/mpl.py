"""matplotlib, imported on first use (plt()), and what every chart shares: PNG output, colours,
markers, line styles and axis helpers."""

import os

# Charts (matplotlib is imported only once every input has been read and checked).
_plt = None


def plt():
    """matplotlib.pyplot, set up for the report (Agg backend, the report's fonts and sizes) on the
    first call."""
    global _plt
    if _plt is None:
        _writable_matplotlib_dirs()
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
        matplotlib.rcParams.update({
            "figure.dpi": 100, "savefig.dpi": 100, "font.size": 9.5, "axes.grid": True,
            "grid.alpha": 0.3, "axes.titlesize": 10.5, "legend.fontsize": 8.5,
            "figure.titlesize": 12, "path.simplify": True, "svg.hashsalt": "kvsim",
        })
        _plt = pyplot
    return _plt


def _writable_matplotlib_dirs():
    """Without a writable config/cache directory matplotlib warns on stderr; use a temporary one
    (removed at exit) instead."""
    if os.environ.get("MPLCONFIGDIR"):
        return
    home = os.path.expanduser("~")
    dirs = [os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
                         "matplotlib"),
            os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.join(home, ".cache"),
                         "matplotlib")]
    for d in dirs:
        try:
            os.makedirs(d, exist_ok=True)
            if os.access(d, os.W_OK):
                continue
        except OSError:
            pass
        import atexit
        import shutil
        import tempfile
        tmp = tempfile.mkdtemp(prefix="kvsim_report_mpl_")
        atexit.register(shutil.rmtree, tmp, True)
        os.environ["MPLCONFIGDIR"] = tmp
        return


def fig_to_png(fig):
    """The figure as PNG bytes (no timestamp or software name, so the same chart gives the same
    bytes); the figure is closed."""
    import io
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None}, bbox_inches="tight",
                pad_inches=0.15, facecolor="white")
    plt().close(fig)
    return buf.getvalue()


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">"]


def color(i):
    return COLORS[i % len(COLORS)]


def _human_count(x):
    for div, suffix in ((1 << 40, "T"), (1 << 30, "G"), (1 << 20, "M"), (1 << 10, "K")):
        if x >= div and x % div == 0:
            return f"{int(x // div)}{suffix}"
    return f"{x:g}"


def _pow2_axis(ax, values, axis="x", human=True):
    """Log2 axis with ticks at the measured values, labelled 256, 1K, 16K ..."""
    (ax.set_xscale if axis == "x" else ax.set_yscale)("log", base=2)
    ticks = sorted(set(v for v in values if v > 0))
    while len(ticks) > 10:
        ticks = ticks[::2]
    from matplotlib.ticker import NullLocator
    target = ax.xaxis if axis == "x" else ax.yaxis
    target.set_minor_locator(NullLocator())
    (ax.set_xticks if axis == "x" else ax.set_yticks)(ticks)
    (ax.set_xticklabels if axis == "x" else ax.set_yticklabels)(
        [_human_count(v) if human else f"{v:g}" for v in ticks])


def _log_if_wide(ax, values, axis="x", ratio=50.0):
    pos = [v for v in values if v > 0]
    if pos and max(pos) / min(pos) > ratio:
        (ax.set_xscale if axis == "x" else ax.set_yscale)("log")
        return True
    return False


LINESTYLES = ["-", "--", "-.", ":"]
