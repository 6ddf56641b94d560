#!/usr/bin/env python3
"""Holds the clocks kvprobe 0.3.4 recorded against the Llama-3-8B TP 1 prefill passes.

Usage: python3 analyze.py  (reads run1/ and run2/ beside it, and the small-kernel rows of the
committed profile, ../profile.txt, measured on another lease; prints analysis.txt).

For each run and prefill length it prints:
  - the pass's GEMMs timed alone (the [step] gemm_us graph) and the SM clock they ran at,
    against the sum of the [gemm] rows of the same shapes (32 layers), as timed and scaled
    to the GEMM graph's clock (time x own clock / graph clock: compute-bound time taken
    as inversely proportional to the SM clock);
  - the pass's own clock against the clock a power-limited pass would settle at if each
    kernel kept the dynamic power it draws at its own settled clock (f_k), with power
    proportional to f^alpha: the clock f at which sum_k w_k (f / f_k)^alpha = 1, w_k the
    kernels' time shares at f (small kernels taken at the 1,980 MHz maximum), and the pass
    time that clock gives.
"""
import csv
import os

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = [(6144, 4096), (4096, 4096), (28672, 4096), (4096, 14336)]  # qkv, o, gate_up, down
LAYERS = 32
F_MAX = 1980.0


def read(run, name):
    path = os.path.join(HERE, run, name)
    return list(csv.DictReader(open(path))) if os.path.exists(path) else []


def small_kernels_us():
    """Llama-3-8B TP 1 small kernels per layer by tokens, from the committed profile."""
    out, section = {}, None
    for line in open(os.path.join(HERE, "..", "profile.txt")):
        line = line.strip()
        if line.startswith("["):
            section = line
            continue
        f = line.split(",")
        if section == "[small_kernels]" and f[0] == "Llama-3-8B" and f[1] == "1":
            out[int(f[2])] = float(f[3])
    return out


def pass_clock(kernels, alpha):
    """kernels: (us at own clock, own clock MHz, compute-bound). Returns (clock, pass us)."""
    f = 1600.0
    for _ in range(100):
        times = [t * fk / f if cb else t for t, fk, cb in kernels]
        total = sum(times)
        s = sum(ti / total * fk ** -alpha for ti, (t, fk, cb) in zip(times, kernels))
        f = min(F_MAX, s ** (-1.0 / alpha))
    return f, sum(t * fk / f if cb else t for t, fk, cb in kernels)


def main():
    small = small_kernels_us()
    for run in ("run1", "run2"):
        gemm = {(int(r["m"]), int(r["n"]), int(r["k"])): (float(r["time_us"]), float(r["sm_mhz"]))
                for r in read(run, "gemm_clocks.csv")}
        prefill = {int(r["tokens"]): (float(r["time_us"]), float(r["sm_mhz"]))
                   for r in read(run, "prefill_clocks.csv")
                   if r["block_tokens"] == "0" and r["kv_heads"] == "8"}
        print(f"{run}: GEMMs of contiguous TP 1 prefill passes")
        print(f"{'tokens':>7} {'alone ms':>9} {'MHz':>5} {'rows ms':>8} {'err':>6} "
              f"{'rows MHz':>10} {'at alone MHz':>12} {'err':>6} {'pass MHz':>8}")
        steps = [r for r in read(run, "step_clocks.csv")
                 if r["layout"] == "contiguous" and r["decode_seqs"] == "0"]
        for r in steps:
            n, alone, f_alone = int(r["prefill_tokens"]), float(r["gemm_us"]), float(r["gemm_sm_mhz"])
            rows = [gemm[(n, N, K)] for N, K in SHAPES]
            raw = LAYERS * sum(t for t, _ in rows)
            scaled = LAYERS * sum(t * f / f_alone for t, f in rows)
            clocks = f"{min(f for _, f in rows):.0f}-{max(f for _, f in rows):.0f}"
            print(f"{n:7d} {alone / 1e3:9.2f} {f_alone:5.0f} {raw / 1e3:8.2f} "
                  f"{100 * (raw / alone - 1):+5.1f}% {clocks:>10} {scaled / 1e3:12.2f} "
                  f"{100 * (scaled / alone - 1):+5.1f}% {float(r['sm_mhz']):8.0f}")
        if not prefill:
            print()
            continue
        print(f"{run}: pass clock and time, measured and from the kernels' own clocks")
        for alpha in (1, 2, 3):
            for r in steps:
                n = int(r["prefill_tokens"])
                if n not in prefill:
                    continue
                kernels = [(LAYERS * gemm[(n, N, K)][0], gemm[(n, N, K)][1], True) for N, K in SHAPES]
                kernels.append((LAYERS * prefill[n][0], prefill[n][1], True))
                kernels.append((LAYERS * small[n], F_MAX, False))
                measured = float(r["time_us"])
                raw = sum(t for t, _, _ in kernels)
                f, at_f = pass_clock(kernels, alpha)
                print(f"  alpha {alpha} {n:6d}: pass {float(r['sm_mhz']):5.0f} MHz, model {f:5.0f}; "
                      f"{measured / 1e3:7.2f} ms measured, rows {100 * (raw / measured - 1):+5.1f}%, "
                      f"at the model's clock {100 * (at_f / measured - 1):+5.1f}%")
        print()


if __name__ == "__main__":
    main()
