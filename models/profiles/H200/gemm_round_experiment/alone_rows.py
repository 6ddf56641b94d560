#!/usr/bin/env python3
"""Writes run1/profile.txt with every [gemm] row's time replaced by the same cell's
time alone (run1/gemm_clocks.csv): the rows kvprobe's default build writes from the
same measurements. Usage: alone_rows.py [OUT] (default alone_profile.txt beside it)."""
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
alone = {}
with open(os.path.join(HERE, "run1", "gemm_clocks.csv")) as f:
    for r in csv.DictReader(f):
        alone[(r["m"], r["n"], r["k"])] = float(r["time_us"])
out, section, header = [], None, None
with open(os.path.join(HERE, "run1", "profile.txt")) as f:
    for line in f:
        text = line.rstrip("\n")
        if text.startswith("["):
            section, header = text, None
        elif section == "[gemm]" and text and not text.startswith("#"):
            if header is None:
                header = text.split(",")
            else:
                row = dict(zip(header, text.split(",")))
                us = alone[(row["m"], row["n"], row["k"])]
                flops = 2 * int(row["m"]) * int(row["n"]) * int(row["k"])
                row["time_us"] = f"{us:.5g}"
                row["tflops"] = f"{flops / (us * 1e-6) / 1e12:.4g}"
                text = ",".join(row[h] for h in header)
        out.append(text)
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "alone_profile.txt")
with open(path, "w") as f:
    f.write("\n".join(out) + "\n")
