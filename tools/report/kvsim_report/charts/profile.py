"""The charts of a kvprobe calibration profile: VMM call latencies, GEMM throughput, decode
attention bandwidth, paged against contiguous attention, NCCL all-reduce."""

from ..fmt import GIB, MIB
from .mpl import MARKERS, _pow2_axis, color, fig_to_png, plt


def chart_vmm(handle_rows, addr_rows):
    """PNG: p50 latency (bars p10 to p90) per VMM call against handle size (`handle_rows`, [vmm]
    rows) and, where there are any, address reservations against range size (`addr_rows`)."""
    panels = 2 if addr_rows else 1
    fig, axes = plt().subplots(1, panels, figsize=(11 if panels == 2 else 9, 4.8),
                               squeeze=False, gridspec_kw={"width_ratios": [2, 1][:panels]})
    for pi, (rows_, xunit, xscale, ttl) in enumerate(
            [(handle_rows, "handle size (MiB)", MIB, "per handle size"),
             (addr_rows, "reserved address range (GiB)", GIB,
              "address reservations")][:panels]):
        ax = axes[0][pi]
        calls = list(dict.fromkeys(r["call"] for r in rows_))
        for i, call in enumerate(calls):
            rs = sorted((r for r in rows_ if r["call"] == call),
                        key=lambda r: r["handle_bytes"])
            xs = [r["handle_bytes"] / xscale for r in rs]
            ys = [r["p50_us"] for r in rs]
            lo = [max(0.0, r["p50_us"] - r["p10_us"]) for r in rs]
            hi = [max(0.0, r["p90_us"] - r["p50_us"]) for r in rs]
            ax.errorbar(xs, ys, yerr=[lo, hi], marker=MARKERS[i % len(MARKERS)],
                        color=color(i), lw=1.3, ms=4, capsize=2.5, label=call)
        _pow2_axis(ax, [r["handle_bytes"] / xscale for r in rows_], human=False)
        if pi == 0:
            ax.set_yscale("log")
        else:
            ax.set_ylim(bottom=0)
        ax.set_xlabel(xunit)
        ax.set_ylabel("latency per call, p50 (µs)")
        ax.set_title(f"CUDA VMM calls, {ttl}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), fontsize=7.5,
                  ncol=3 if len(calls) > 2 else len(calls))
    fig.suptitle("CUDA virtual memory call latency (p50, bars p10 to p90)")
    fig.tight_layout()
    return fig_to_png(fig)


def chart_gemm(rows_, layers, model, tp):
    """PNG: TFLOP/s against tokens of each layer's GEMM (`rows_`: the [gemm] rows of `model` at
    tensor parallelism `tp`)."""
    fig, ax = plt().subplots(figsize=(9, 4.8))
    for i, layer in enumerate(layers):
        rs = sorted((r for r in rows_ if r["layer"] == layer), key=lambda r: r["tokens"])
        r0 = rs[0]
        ax.plot([r["tokens"] for r in rs], [r["tflops"] for r in rs],
                marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.5, ms=4,
                label=f"{layer} (n={int(r0['n'])}, k={int(r0['k'])})")
    _pow2_axis(ax, [r["tokens"] for r in rows_])
    ax.set_title(f"bf16 GEMM throughput, {model} layers at TP {int(tp)} (cuBLASLt)")
    ax.set_xlabel("tokens (GEMM m)")
    ax.set_ylabel("throughput (TFLOP/s)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left")
    return fig_to_png(fig)


def chart_decode(dec, panels, batches, copy_max):
    """PNG: K and V read bandwidth against context per batch size, one panel per (title, [decode
    attention rows]) of `panels`, beside the device copy bandwidth `copy_max`."""
    fig, axes = plt().subplots(1, len(panels), figsize=(11 if len(panels) > 1 else 9, 4.6),
                               squeeze=False, sharey=True)
    shape = dec[0]
    for pi, (ttl, rows_) in enumerate(panels):
        ax = axes[0][pi]
        for i, b in enumerate(batches):
            rs = sorted((r for r in rows_ if r["batch"] == b),
                        key=lambda r: r["context_tokens"])
            if rs:
                ax.plot([r["context_tokens"] for r in rs], [r["kv_gbps"] for r in rs],
                        marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.4, ms=4,
                        label=f"batch {int(b)}")
        ax.axhline(copy_max, color="#888", ls=":", lw=1.2, label="device copy bandwidth")
        _pow2_axis(ax, [r["context_tokens"] for r in dec])
        ax.set_ylim(bottom=0)
        ax.set_title(ttl)
        ax.set_xlabel("context tokens per sequence")
        ax.set_ylabel("K and V read bandwidth (GB/s)")
        ax.legend(loc="lower right", fontsize=7.5)
    fig.suptitle(f"Decode attention bandwidth against batch x context ({int(shape['q_heads'])} "
                 f"query heads, {int(shape['kv_heads'])} KV heads, head dim "
                 f"{int(shape['head_dim'])}, one layer)")
    fig.tight_layout()
    return fig_to_png(fig)


def chart_paged(panels):
    """PNG: paged over contiguous kernel time against batch x tokens, one panel per (name,
    {block tokens: [(shape key, ratio)]}) of `panels` (decode, prefill)."""
    fig, axes = plt().subplots(1, len(panels), figsize=(11 if len(panels) > 1 else 9, 4.6),
                               squeeze=False)
    for pi, (name, rr) in enumerate(panels):
        ax = axes[0][pi]
        for i, bt in enumerate(sorted(rr)):
            pts = rr[bt]
            pts = sorted(pts, key=lambda p: (p[0][0] * p[0][1], p[0][0]))
            xs = [p[0][0] * p[0][1] for p in pts]  # batch x tokens
            ax.plot(xs, [p[1] for p in pts], marker=MARKERS[i % len(MARKERS)],
                    color=color(i), lw=1.4, ls="none" if name == "decode" else "-",
                    ms=5 if name == "decode" else 4, alpha=0.85,
                    label=f"paged, {int(bt)}-token blocks")
        ax.axhline(1.0, color="#444", lw=1.0, label="contiguous (= 1)")
        _pow2_axis(ax, [p[0][0] * p[0][1] for pts in rr.values() for p in pts])
        ax.set_title(f"{name} attention")
        ax.set_xlabel("batch x context tokens (KV tokens read)" if name == "decode"
                      else "batch x prompt tokens")
        ax.set_ylabel("paged time / contiguous time")
        ax.legend(loc="lower right", fontsize=7.5)
    fig.suptitle("Paged KV against contiguous KV: kernel time ratio (same shapes)")
    fig.tight_layout()
    return fig_to_png(fig)


def chart_allreduce(by_gpus):
    """PNG: time and bus bandwidth of one all-reduce against message size, one line per GPU count
    (`by_gpus`: {GPUs: [allreduce rows]})."""
    fig, (ax_t, ax_b) = plt().subplots(1, 2, figsize=(11, 4.4))
    for i, (n, rr) in enumerate(sorted(by_gpus.items())):
        rr = sorted(rr, key=lambda r: r["bytes"])
        xs = [r["bytes"] for r in rr]
        ax_t.plot(xs, [r["time_us"] for r in rr], marker=MARKERS[i % len(MARKERS)],
                  color=color(i), lw=1.4, ms=4, label=f"{n} GPUs")
        ax_b.plot(xs, [r["busbw_gbps"] for r in rr], marker=MARKERS[i % len(MARKERS)],
                  color=color(i), lw=1.4, ms=4, label=f"{n} GPUs")
    for ax in (ax_t, ax_b):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("message bytes")
        ax.legend(loc="upper left", fontsize=8)
    ax_t.set_yscale("log")
    ax_t.set_ylabel("time (µs)")
    ax_t.set_title("time of one bf16 all-reduce")
    ax_b.set_ylabel("bus bandwidth (GB/s)")
    ax_b.set_title("bus bandwidth = bytes x 2(n-1)/n / time")
    fig.tight_layout()
    return fig_to_png(fig)
