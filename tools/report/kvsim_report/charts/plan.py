"""The charts of a plan: max QPS per replica and fleet cost per candidate, and cost against p99
TTFT with the Pareto frontier. A few values far above the rest are drawn at the axis end, marked
and labelled with their value."""

from ..fmt import fgen, fmoney, is_num
from .mpl import MARKERS, fig_to_png, plt


# Charts robust to outliers: a few values far above the rest would squash the others against
# the axis. The axis then ends just past the bulk, and each value beyond it is drawn at the axis
# end, marked and labelled with its value: no candidate leaves a chart unseen.

OUTLIER_FACTOR = 5.0  # a value above this x the median of the positive values is an outlier


def outlier_limit(values, factor=OUTLIER_FACTOR, room=1.15):
    """An axis end for `values` that leaves out a few outliers: when at least one and at most a
    quarter of the (3 or more) positive values exceed factor x their median, the largest of the
    others x `room`; else None (the axis can show every value)."""
    pos = sorted(v for v in values if is_num(v) and v > 0)
    n = len(pos)
    if n < 3:
        return None
    half = n // 2
    median = pos[half] if n % 2 else (pos[half - 1] + pos[half]) / 2
    bulk = [v for v in pos if v <= factor * median]
    outliers = n - len(bulk)
    if outliers == 0 or outliers > max(1, n // 4):
        return None
    return max(bulk) * room


def _spans(values, ratio=20.0):
    pos = [v for v in values if is_num(v) and v > 0]
    return len(pos) == len([v for v in values if is_num(v)]) and bool(pos) and \
        max(pos) / min(pos) > ratio


_OFF = dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="#444", lw=0.6)


def plot_plan_qps(ax, cands, target, kv_color):
    """Max QPS per replica, one bar per candidate (file order, top down). Returns
    {"limit": axis end or None, "clipped": [candidate names drawn cut at the axis end]}."""
    n = len(cands)
    ys = list(range(n))[::-1]
    values = [c["max_qps_per_replica"] for c in cands]
    limit = outlier_limit(values, room=1.3)
    if limit is not None:
        limit = max(limit, target * 1.1)
        if not any(v > limit for v in values):
            limit = None
    clipped = []
    for y, c in zip(ys, cands):
        v = c["max_qps_per_replica"]
        feasible = c["status"] != "infeasible" and v > 0
        ax.barh(y, min(v, limit) if limit else v, color=kv_color[c["kv_label"]],
                hatch="" if c["meets_slo"] else "//", edgecolor="#333", lw=0.5)
        if limit and v > limit:
            clipped.append(c["candidate"])
            ax.text(limit, y, f"{fgen(v, 3)} req/s ▶", ha="right", va="center", fontsize=7,
                    bbox=_OFF, zorder=5)
        if not feasible:
            ax.text(0, y, f"  {c['status']}", va="center", fontsize=7.5, color="#a00")
    ax.set_yticks(ys)
    ax.set_yticklabels([c["candidate"] for c in cands], fontsize=7.5)
    ax.axvline(target, color="#444", ls=":", lw=1.2)
    if limit:
        ax.set_xlim(0, limit)
    return {"limit": limit, "clipped": clipped}


def plot_plan_cost(ax, meet, rec, kv_color):
    """Fleet cost per hour of the candidates that meet the SLOs, cheapest on top; `meet` in
    that order. Returns {"limit", "clipped"} as plot_plan_qps."""
    ys = list(range(len(meet)))[::-1]
    values = [c["cost_per_hour"] for c in meet]
    limit = outlier_limit(values, room=1.45)  # room for the fleet labels
    clipped = []
    for y, c in zip(ys, meet):
        v = c["cost_per_hour"]
        chosen = rec is not None and c["candidate"] == rec["candidate"]
        fleet = f"{c['replicas']} x {c['tensor_parallel']} GPU" + ("  (recommended)" if chosen
                                                                    else "")
        ax.barh(y, min(v, limit) if limit else v, color=kv_color[c["kv_label"]], edgecolor="#333",
                lw=0.5)
        if limit and v > limit:
            clipped.append(c["candidate"])
            ax.text(limit, y, f"{fmoney(v)}/h, {fleet} ▶", ha="right", va="center", fontsize=7,
                    bbox=_OFF, zorder=5, fontweight="bold" if chosen else "normal")
        else:
            ax.text(v, y, f" {fleet}", va="center", fontsize=7,
                    fontweight="bold" if chosen else "normal")
    ax.set_yticks(ys)
    ax.set_yticklabels([c["candidate"] for c in meet], fontsize=7.5)
    if limit:
        ax.set_xlim(0, limit)
    else:
        ax.margins(x=0.12)
    return {"limit": limit, "clipped": clipped}


def plot_plan_pareto(ax, pts, rec, kv_color, gpu_marker):
    """Fleet cost against p99 TTFT, one point per candidate in `pts`.
    An axis whose values have a few outliers ends past the bulk, the outliers drawn at its end
    with an arrow marker and labelled; without a bulk to tell (under 3 points) an axis spanning
    over 20x is log-scaled. Returns {"xlimit", "ylimit", "xscale", "yscale", "clipped"}."""
    xs = [c["lat"]["ttft_s"]["p99"] for c in pts]
    ys = [c["cost_per_hour"] for c in pts]
    xl, yl = outlier_limit(xs), outlier_limit(ys)
    xscale = "log" if xl is None and len(pts) < 3 and _spans(xs) else "linear"
    yscale = "log" if yl is None and len(pts) < 3 and _spans(ys) else "linear"

    def place(x, y):
        return (min(x, xl) if xl else x), (min(y, yl) if yl else y)

    clipped = []
    for c, x, y in zip(pts, xs, ys):
        px, py = place(x, y)
        off_x, off_y = bool(xl and x > xl), bool(yl and y > yl)
        ax.scatter(px, py, s=46, color=kv_color[c["kv_label"]], marker=gpu_marker[c["gpu"]],
                   edgecolor="#222", lw=0.5, zorder=3)
        if off_x or off_y:
            ax.scatter(px, py, s=120, marker=">" if off_x else "^", facecolor="none",
                       edgecolor="#c00", lw=1.2, zorder=4)
            ax.annotate(f"{c['candidate']}: {fgen(x, 3)} s, {fmoney(y)}/h",
                        xy=(px, py), xytext=(-10, -14 - 12 * len(clipped)),
                        textcoords="offset points", ha="right", va="top", fontsize=7,
                        bbox=_OFF, zorder=6,
                        arrowprops=dict(arrowstyle="-", color="#c00", lw=0.6))
            clipped.append(c["candidate"])
    front = sorted((c for c in pts if c["pareto"]),
                   key=lambda c: (c["lat"]["ttft_s"]["p99"], c["cost_per_hour"]))
    if front:
        placed = [place(c["lat"]["ttft_s"]["p99"], c["cost_per_hour"]) for c in front]
        fx, fy = [p[0] for p in placed], [p[1] for p in placed]
        ax.step(fx, fy, where="post", color="#000", lw=1.2, ls="--", zorder=2)
        ax.scatter(fx, fy, s=160, facecolor="none", edgecolor="#000", lw=1.4, zorder=4,
                   clip_on=False)
    if rec is not None and is_num(rec["lat"]["ttft_s"]["p99"]):
        rx, ry = place(rec["lat"]["ttft_s"]["p99"], rec["cost_per_hour"])
        ax.scatter([rx], [ry], s=520, marker="*", color="gold", edgecolor="#000", lw=0.8,
                   zorder=1, clip_on=False)
    ax.set_xscale(xscale)
    ax.set_yscale(yscale)
    ax.margins(0.08)
    if xl:  # a little past the off-scale points, so their markers stay inside
        ax.set_xlim(ax.get_xlim()[0], xl * 1.04)
    if yl:
        ax.set_ylim(ax.get_ylim()[0], yl * 1.04)
    return {"xlimit": xl, "ylimit": yl, "xscale": xscale, "yscale": yscale, "clipped": clipped}


def chart_plan_qps(cands, target, kv_color, kvs):
    """(PNG, plot_plan_qps's info): max QPS per replica of every candidate, coloured by KV
    manager (`kv_color`, legend in the order `kvs`), those missing the SLOs hatched."""
    n = len(cands)
    fig, ax = plt().subplots(figsize=(10, max(3.2, 0.28 * n + 1.4)))
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch
    info = plot_plan_qps(ax, cands, target, kv_color)
    handles = [Patch(facecolor=kv_color[k], edgecolor="#333", label=k) for k in kvs]
    handles.append(Patch(facecolor="white", edgecolor="#333", hatch="//",
                         label="misses the SLOs"))
    handles.append(Line2D([], [], color="#444", ls=":", label=f"target {fgen(target)} QPS"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Highest arrival rate one replica sustains within the SLOs")
    ax.set_xlabel("max QPS per replica (requests/s)")
    ax.set_ylabel("candidate")
    ax.grid(axis="y", alpha=0)
    return fig_to_png(fig), info


def chart_plan_cost(meet, rec, target, kv_color, kvs, title=None):
    """(PNG, plot_plan_cost's info): the fleet cost per hour of the candidates that meet the SLOs
    (`meet`, cheapest first), the recommended one in bold; `title` in place of the one naming
    the target load `target`."""
    fig, ax = plt().subplots(figsize=(10, max(3.2, 0.28 * len(meet) + 1.4)))
    from matplotlib.patches import Patch
    info = plot_plan_cost(ax, meet, rec, kv_color)
    handles = [Patch(facecolor=kv_color[k], edgecolor="#333", label=k) for k in kvs
               if any(c["kv_label"] == k for c in meet)]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title(title or f"Fleet cost at {fgen(target)} QPS, candidates that meet the SLOs")
    ax.set_xlabel("cost of the fleet (USD per hour)")
    ax.set_ylabel("candidate")
    ax.grid(axis="y", alpha=0)
    return fig_to_png(fig), info


def chart_plan_pareto(pts, rec, kv_color, kvs, gpus):
    """(PNG, plot_plan_pareto's info): fleet cost against p99 TTFT of the candidates `pts`,
    colour by KV manager, marker by GPU (in the order `gpus`), the Pareto frontier circled and the
    recommendation starred."""
    fig, ax = plt().subplots(figsize=(9, 5))
    from matplotlib.lines import Line2D
    gpu_marker = {g: MARKERS[i % len(MARKERS)] for i, g in enumerate(gpus)}
    info = plot_plan_pareto(ax, pts, rec, kv_color, gpu_marker)
    handles = [Line2D([], [], marker="s", ls="", color=kv_color[k], label=k) for k in kvs
               if any(c["kv_label"] == k for c in pts)]
    handles += [Line2D([], [], marker=gpu_marker[g], ls="", color="#888",
                       markeredgecolor="#222", label=g) for g in gpus
                if any(c["gpu"] == g for c in pts)]
    handles.append(Line2D([], [], marker="o", ls="--", color="#000", markerfacecolor="none",
                          markersize=10, label="Pareto frontier"))
    if rec is not None:
        handles.append(Line2D([], [], marker="*", ls="", color="gold",
                              markeredgecolor="#000", markersize=13,
                              label="recommendation (fleet cost)"))
    if info["clipped"]:
        handles.append(Line2D([], [], marker=">", ls="", color="none",
                              markeredgecolor="#c00", markersize=9,
                              label="off scale, drawn at the axis end"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.set_title("Fleet cost against p99 TTFT at the target (one replica at target / replicas)")
    ax.set_xlabel("p99 TTFT of one replica at its fleet's share of the target (s)"
                  + (", log scale" if info["xscale"] == "log" else ""))
    ax.set_ylabel("fleet cost (USD per hour)"
                  + (", log scale" if info["yscale"] == "log" else ""))
    return fig_to_png(fig), info
