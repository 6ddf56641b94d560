"""Tests of tools/report/kvsim_report.py and the kvsim_report package beside it.

Run with Debian's interpreter (it has matplotlib):
  KVSIM_BINARY=build/sim/kvsim KVSIM_SOURCE_DIR=. /usr/bin/python3 -m unittest discover \
      -s tests/report -p "test_*.py" -v

The module builds small kvsim outputs once (a run, a comparison, a sweep, three plans and a copy
of the committed H100 profile) in a temporary directory, generates their reports, and checks the
HTML, the Markdown and the PNG charts, renders each report in headless Chromium (where no table
may be wider than the page in a 1280 px wide window), and feeds the script broken inputs (among
them kvprobe 0.3.16's committed profile cut short, refused with kvsim's own message). The
opening verdicts are checked on hand-made summaries (ties, null latencies, one run, identical
runs), the latency charts' axes and the plan charts' outlier handling on the functions that draw
them, and plan reports on a directory moved away from the plan file it was made from. The binary
may write timeseries.csv in either layout (per iteration or per interval); a copy of the run with
a hand-written interval-layout timeseries.csv covers the interval layout whichever the binary
writes, and the series of both layouts are checked by hand on tiny tables, among them the cached
bytes (kept for reuse) summed over two replicas, also through hand-made comparisons where one run
has cached bytes and the other none (no cached line for it).
"""

import copy
import importlib
import importlib.util
import json
import os
import pkgutil
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import types
import unittest
import zlib

from PIL import Image

CHROMIUM = "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Section headings each kind of report must have, and how many charts it draws.
EXPECTED = {
    "run": (["Scenario", "Summary", "KV memory over time", "Running batch over time",
             "Latency distributions", "Configuration"], 5),
    "run_interval": (["Scenario", "Summary", "KV memory over time", "Running batch over time",
                      "Latency distributions", "Configuration"], 5),
    "compare": (["Scenario", "Comparison", "KV memory over time", "Running batch over time",
                 "Latency distributions"], 5),
    "sweep": (["Scenario", "Sweep results", "Throughput against offered load",
               "p99 latency against offered load"], 4),
    "plan": (["Scenario", "Recommendation", "Candidates", "Max QPS per replica", "Cost per hour",
              "Cost against p99 TTFT", "KV manager savings"], 3),
    "calibration": (["Scenario", "VMM call latency", "GEMM throughput",
                     "Decode attention bandwidth", "Paged against contiguous attention",
                     "All-reduce", "vAttention mechanism"], 5),
}

PLAN_TEMPLATE = """\
scenario: {scenario}
set: {{workload.arrival.process: trace}}
slo:
  ttft_s: {{p99: {ttft_p99}}}
  tbt_s: {{p99: 0.25}}
target: {{qps: 20}}
search: {{initial_qps: 4, tolerance: 0.1, max_qps: 200, probe_requests: 300}}
candidates:
  gpus: [H100-SXM, A100-80GB]
  tensor_parallel: [1]
  kv_managers:
    - {{type: static}}
    - {{type: paged, block_tokens: 16}}
    - {{type: vattention, page_bytes: 2MiB}}
  schedulers: [{{type: vllm, max_num_seqs: 256}}]
verify: true
"""

INTERVAL_HEADER = ("time_s,replica,interval_s,iterations,busy_s,mean_running,max_running,"
                   "max_waiting,prefill_tokens,decode_tokens,mean_allocated_bytes,"
                   "peak_allocated_bytes,mean_live_bytes,mean_cached_bytes,exposed_overhead_s")
PER_ITERATION_HEADER = ("time_s,replica,duration_s,running,waiting,prefill_tokens,decode_tokens,"
                        "allocated_bytes,live_bytes,cached_bytes,exposed_overhead_s")
MIB = 1 << 20

ENV = {}
WORK = None
DIRS = {}
RESULTS = {}


def _env(name):
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"set {name} (the kvsim binary / the repository root); ctest sets both")
    return value


def run_cmd(args, timeout=120, cwd=None):
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=cwd)


def kvsim(*args, status=0):
    """Runs kvsim quietly; raises unless it exits with `status` (5: an infeasible plan)."""
    r = run_cmd([ENV["kvsim"], *args, "-q"])
    if r.returncode != status:
        raise RuntimeError(f"kvsim {' '.join(args)} failed ({r.returncode}): {r.stderr.strip()}")
    return r


def report(directory, cwd=None):
    return run_cmd([sys.executable, ENV["script"], directory], cwd=cwd)


def csv_text(header, rows):
    """A CSV file's text: `header`, then one line per row (a tuple of fields)."""
    return header + "\n" + "".join(",".join(str(f) for f in row) + "\n" for row in rows)


def hand_interval_rows():
    """Interval-layout rows for the one-replica quickstart run: 1 s intervals over 20 s, the load
    ramping up and down, no row for the idle intervals 7 and 8."""
    rows = []
    for k in range(20):
        if k in (7, 8):
            continue
        load = min(k, 19 - k) + 1  # 1 to 10
        busy = 0.4 if load == 1 else 0.97
        allocated = load * 400 * MIB
        rows.append((f"{k:.9f}", 0, "1.000000000", 40 * load, f"{busy:.9f}", f"{3.5 * load:g}",
                     4 * load, load - 1, 350 * load, 30 * load, allocated, allocated + 64 * MIB,
                     allocated * 7 // 8, 0, "0.000000000"))
    return rows


def relist_manifests(directory):
    """Rewrites every manifest.json under `directory` to list its files as they now are (sizes
    and CRC-32s), as kvsim would have after writing the hand-edited files itself. An entry whose
    file is gone stays, so a deleted file still reads as missing."""
    for root, _, files in os.walk(directory):
        if "manifest.json" not in files:
            continue
        path = os.path.join(root, "manifest.json")
        manifest = json.loads(read(path))
        for entry in manifest["files"]:
            target = os.path.join(root, entry["name"])
            if os.path.isfile(target):
                data = read(target, "rb")
                entry["bytes"] = len(data)
                entry["crc32"] = f"{zlib.crc32(data):08x}"
        with open(path, "w") as f:
            json.dump(manifest, f, indent=2)


def as_before_manifests(directory):
    """Makes the outputs in `directory` those of a kvsim before manifest.json: no manifests, and
    none of the fields that came after them (the kvsim_version of sweep.json and plan.json, the
    load object of every summary)."""
    def strip(value):
        if isinstance(value, list):
            for v in value:
                strip(v)
        elif isinstance(value, dict):
            value.pop("kvsim_version", None)
            if "kv_manager" in value and "makespan_s" in value:  # a summary
                value.pop("load", None)
            for v in value.values():
                strip(v)

    for root, _, files in os.walk(directory):
        for name in files:
            path = os.path.join(root, name)
            if name == "manifest.json":
                os.remove(path)
            elif name.endswith(".json"):
                data = json.loads(read(path))
                strip(data)
                with open(path, "w") as f:
                    json.dump(data, f, indent=2)


def table_note(directory):
    """The note under the summary or comparison table of DIRECTORY/report.md."""
    md = read(os.path.join(directory, "report.md"))
    return next(line for line in md.splitlines() if "TBT in this table" in line).strip("_")


def timeseries_layout(directory):
    """'interval' or 'per-iteration': the layout of DIRECTORY/timeseries.csv, from its header."""
    with open(os.path.join(directory, "timeseries.csv")) as f:
        header = f.readline().strip()
    if header == INTERVAL_HEADER:
        return "interval"
    if header == PER_ITERATION_HEADER:
        return "per-iteration"
    raise AssertionError(f"timeseries.csv header of neither layout: {header!r}")


# The modules of the kvsim_report package the tests call into, by the names they use here.
REPORT_MODULES = {
    "fmt": "kvsim_report.fmt",
    "files": "kvsim_report.inputs.files",
    "summary": "kvsim_report.inputs.summary",
    "run_dir": "kvsim_report.inputs.run_dir",
    "plan": "kvsim_report.inputs.plan",
    "series": "kvsim_report.series",
    "verdicts": "kvsim_report.verdicts",
    "mpl": "kvsim_report.charts.mpl",
    "ccdf": "kvsim_report.charts.ccdf",
    "run_charts": "kvsim_report.charts.run",
    "plan_charts": "kvsim_report.charts.plan",
}


def report_package():
    """The kvsim_report package beside the entry script (tools/report/kvsim_report/), imported
    from the directory the script puts on sys.path. Returns a namespace of the modules in
    REPORT_MODULES, and `every`: all of the package's modules, the entry script's among them."""
    directory = os.path.dirname(ENV["script"])
    if directory not in sys.path:
        sys.path.insert(0, directory)
    package = importlib.import_module("kvsim_report")
    ns = types.SimpleNamespace(**{k: importlib.import_module(v)
                                  for k, v in REPORT_MODULES.items()})
    ns.every = [package] + [importlib.import_module(info.name) for info in
                            pkgutil.walk_packages(package.__path__, "kvsim_report.")]
    spec = importlib.util.spec_from_file_location("kvsim_report_script", ENV["script"])
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    ns.every.append(script)
    return ns


def setUpModule():
    global WORK
    ENV["kvsim"] = _env("KVSIM_BINARY")
    ENV["source"] = os.path.abspath(_env("KVSIM_SOURCE_DIR"))  # plan files name it from /tmp
    ENV["script"] = os.path.join(ENV["source"], "tools", "report", "kvsim_report.py")
    for path in (ENV["kvsim"], ENV["script"]):
        if not os.path.isfile(path):
            raise RuntimeError(f"{path}: not found")
    WORK = tempfile.mkdtemp(prefix="kvsim_report_test_")
    quickstart = os.path.join(ENV["source"], "configs", "quickstart.yaml")
    small = ["--set", "workload.max_requests=200"]

    DIRS["run"] = os.path.join(WORK, "run")
    kvsim("run", quickstart, *small, "--out", DIRS["run"])
    DIRS["run_interval"] = os.path.join(WORK, "run_interval")
    shutil.copytree(DIRS["run"], DIRS["run_interval"])
    # A hand-written timeseries, the run's manifest relisted to it.
    with open(os.path.join(DIRS["run_interval"], "timeseries.csv"), "w") as f:
        f.write(csv_text(INTERVAL_HEADER, hand_interval_rows()))
    relist_manifests(DIRS["run_interval"])
    DIRS["compare"] = os.path.join(WORK, "compare")
    kvsim("compare", quickstart, *small, "--out", DIRS["compare"])
    DIRS["compare_tp8"] = os.path.join(WORK, "compare_tp8")
    kvsim("compare", quickstart, *small, "--set", "model=Llama-3-70B",
          "--set", "deployment.tensor_parallel=8", "--set", "timing.type=profiled",
          "--out", DIRS["compare_tp8"])
    DIRS["compare_prefix"] = os.path.join(WORK, "compare_prefix")
    kvsim("compare", os.path.join(ENV["source"], "configs", "multiturn_sessions.yaml"),
          "--set", "workload.max_requests=200", "--set",
          "compare=[{label: paged, set: {kv_cache.prefix_caching: false}}, "
          "{label: paged_prefix, set: {kv_cache.prefix_caching: true}}]",
          "--out", DIRS["compare_prefix"])
    DIRS["sweep"] = os.path.join(WORK, "sweep")
    kvsim("sweep", quickstart, "--rates", "4,16", *small, "--out", DIRS["sweep"])
    DIRS["plan_bench"] = os.path.join(WORK, "plan_bench")
    kvsim("plan", os.path.join(ENV["source"], "configs", "plans", "bench_48_candidates.yaml"),
          "--out", DIRS["plan_bench"])
    for name, ttft in (("plan", "2.0"), ("plan_infeasible", "0.000001")):
        plan_file = os.path.join(WORK, f"{name}.yaml")
        with open(plan_file, "w") as f:
            f.write(PLAN_TEMPLATE.format(scenario=quickstart, ttft_p99=ttft))
        DIRS[name] = os.path.join(WORK, name)
        kvsim("plan", plan_file, "--out", DIRS[name], status=5 if name == "plan_infeasible" else 0)
    DIRS["calibration"] = os.path.join(WORK, "calibration")
    shutil.copytree(os.path.join(ENV["source"], "models", "profiles", "H100-SXM"),
                    DIRS["calibration"])
    for kind in ("run", "run_interval", "compare", "compare_tp8", "compare_prefix", "sweep",
                 "plan", "plan_infeasible", "calibration"):
        RESULTS[kind] = report(DIRS[kind])


def tearDownModule():
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def chart_files(directory):
    d = os.path.join(directory, "report_files")
    if not os.path.isdir(d):
        return []
    return sorted(os.path.join(d, n) for n in os.listdir(d) if n.endswith(".png"))


def png_header(data):
    """(width, height) from the IHDR chunk, after checking the signature and its CRC."""
    if data[:8] != PNG_SIGNATURE:
        raise AssertionError("no PNG signature")
    length, kind = struct.unpack(">I4s", data[8:16])
    if kind != b"IHDR" or length != 13:
        raise AssertionError("first chunk is not IHDR")
    body = data[16:29]
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(kind + body) != crc:
        raise AssertionError("IHDR CRC mismatch")
    return struct.unpack(">II", body[:8])


# ---------------------------------------------------------------------------


class ReportContentTest(unittest.TestCase):
    """report.html, report.md and the charts of each kind of directory."""

    def check_kind(self, kind):
        headings, charts = EXPECTED[kind]
        result = RESULTS[kind]
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr.strip(), "")
        d = DIRS[kind]
        page = read(os.path.join(d, "report.html"))
        md = read(os.path.join(d, "report.md"))
        for h in headings:
            self.assertIn(f"<h2>{h}</h2>", page, f"{kind}: heading {h!r} missing in report.html")
            self.assertIn(f"\n## {h}\n", md, f"{kind}: heading {h!r} missing in report.md")

        files = chart_files(d)
        self.assertEqual(len(files), charts, f"{kind}: chart files {files}")
        contents = {}
        for path in files:
            data = read(path, "rb")
            width, height = png_header(data)
            self.assertGreater(width, 0, path)
            self.assertGreater(height, 0, path)
            with Image.open(path) as im:
                im.verify()
            with Image.open(path) as im:
                im.load()
                self.assertEqual(im.size, (width, height), path)
                self.assertGreater(len(im.convert("RGB").getcolors(1 << 20) or [0] * 1000), 8,
                                   f"{path}: too few colours for a chart")
            contents[data] = os.path.basename(path)
            self.assertIn(f"](report_files/{os.path.basename(path)})", md, path)

        embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
        self.assertEqual(len(embedded), len(files), f"{kind}: images embedded in report.html")
        self.assertEqual(page.count("<img"), len(files))
        import base64
        decoded = {base64.b64decode(b) for b in embedded}
        self.assertEqual(decoded, set(contents), f"{kind}: embedded images differ from files")
        # Self-contained: nothing is fetched from elsewhere.
        self.assertNotRegex(page, r'(src|href)="(https?:|file:|//)')
        return page, md

    def check_scenario(self, page, *words):
        for w in words:
            self.assertIn(w, page)

    def test_run(self):
        page, _ = self.check_kind("run")
        self.check_scenario(page, "Llama-3-8B", "H100-SXM", "vllm", "seed",
                            "AzureLLMInferenceTrace_conv.csv", "tensor parallel", "42")
        self.assertIn("per-request mean time between tokens", page)
        md = read(os.path.join(DIRS["run"], "report.md"))
        if timeseries_layout(DIRS["run"]) == "per-iteration":
            self.assertIn("From timeseries.csv, one sample per iteration.", md)
            self.assertIn("Faint lines: the sequences in each iteration", md)
        else:
            self.assertIn("From timeseries.csv, one row per ", md)
            self.assertNotIn("one sample per iteration", md)

    def test_run_with_interval_layout(self):
        page, md = self.check_kind("run_interval")
        self.check_scenario(page, "Llama-3-8B", "H100-SXM", "vllm")
        self.assertIn("From timeseries.csv, one row per 1 s interval (each replica's "
                      "duration-weighted means", md)
        self.assertIn("Faint lines: the time-averaged batch of each 1 s interval, mean_running x "
                      "min(1, busy_s / interval_s)", md)
        self.assertNotIn("iteration (timeseries.csv", md)
        self.assertNotIn("one sample per iteration", md)

    def test_compare_with_prefix_caching_shows_the_hit_rate_of_each_run(self):
        self.assertEqual(RESULTS["compare_prefix"].returncode, 0, RESULTS["compare_prefix"].stderr)
        md = read(os.path.join(DIRS["compare_prefix"], "report.md"))
        summary = json.loads(read(os.path.join(DIRS["compare_prefix"], "paged_prefix",
                                               "summary.json")))
        rate = summary["prefix_cache"]["token_hit_rate"] * 100
        self.assertGreater(rate, 0)
        row = next(line for line in md.splitlines() if "prefix hit (% of prompt tokens)" in line)
        self.assertIn(f"| 0.0 |", row)  # paged without the cache
        self.assertIn(f"{rate:.1f}", row)
        # Comparisons without prefix caching do not carry the rows.
        self.assertNotIn("prefix hit", read(os.path.join(DIRS["compare"], "report.md")))

    def test_compare(self):
        page, md = self.check_kind("compare")
        self.check_scenario(page, "Llama-3-8B", "H100-SXM", "vllm", "seed",
                            "AzureLLMInferenceTrace_conv.csv")
        for label in ("static", "paged", "vattention_2MiB", "vattention_64KiB"):
            self.assertIn(label, page)
        for row in ("throughput (req/s)", "TTFT p50 (s)", "TTFT p99 (s)", "TBT p99 (ms",
                    "E2E p99 (s)", "max running batch", "mean running batch",
                    "KV fragmentation (%)", "preemptions", "exposed mapping overhead (s)"):
            self.assertIn(row, md)
        self.assertRegex(md, r"\(\d+\.\d\dx\)", "ratios to paged")
        self.assertIn("Ratios in brackets are to `paged`", md)

    def test_roofline_runs_have_no_timing_caveat(self):
        for kind in ("run", "compare", "sweep", "plan"):
            self.assertNotIn("Timing caveat", read(os.path.join(DIRS[kind], "report.md")), kind)

    def test_compare_at_tp8_on_the_h100_profile_says_the_all_reduce_is_extrapolated(self):
        result = RESULTS["compare_tp8"]
        self.assertEqual(result.returncode, 0, result.stderr)
        md = read(os.path.join(DIRS["compare_tp8"], "report.md"))
        # Each caveat once for all four runs, not once per run: the extrapolation to 8
        # GPUs, that the H100 profile timed its all-reduces back to back, and that its
        # decode rows (8 KV heads) start above one sequence's single KV head per rank.
        self.assertEqual(md.count("Timing caveat"), 3, md)
        self.assertRegex(md, r"Timing caveat: timing\.profile \S+profile\.txt: its "
                             r"\[decode_attention\] rows start at 8 sequence-heads")
        self.assertRegex(md, r"Timing caveat: timing\.profile \S+profile\.txt: all-reduce on 8 "
                             r"GPUs is not in the profile \(measured: 2, 3 and 4 GPUs\); it is "
                             r"extrapolated")
        self.assertRegex(md, r"Timing caveat: timing\.profile \S+profile\.txt: its \[allreduce\] "
                             r"rows time all-reduces back to back")

    def test_sweep(self):
        page, md = self.check_kind("sweep")
        self.check_scenario(page, "Llama-3-8B", "H100-SXM", "vllm", "seed")
        self.assertIn("| paged | 4 |", md)
        self.assertIn("| vattention_64KiB | 16 |", md)

    def test_plan(self):
        page, md = self.check_kind("plan")
        self.check_scenario(page, "Llama-3-8B", "H100-SXM", "A100-80GB", "vllm-256seqs", "seed",
                            "AzureLLMInferenceTrace_conv.csv", "ttft_s.p99 ≤ 2 s")
        self.assertRegex(md, r"## Recommendation\n\n\d+ x `[^`]+` \(\d+ GPUs?, \$[\d.,]+/hour")
        self.assertRegex(md, r"(verified|NOT verified)")

    def test_infeasible_plan(self):
        result = RESULTS["plan_infeasible"]
        self.assertEqual(result.returncode, 0, result.stderr)
        md = read(os.path.join(DIRS["plan_infeasible"], "report.md"))
        self.assertIn("infeasible: no candidate meets the SLOs", md)
        page = read(os.path.join(DIRS["plan_infeasible"], "report.html"))
        files = chart_files(DIRS["plan_infeasible"])
        self.assertGreaterEqual(len(files), 1)
        self.assertEqual(page.count("<img"), len(files))

    def test_calibration(self):
        page, md = self.check_kind("calibration")
        self.check_scenario(page, "NVIDIA H100 80GB HBM3", "580.159.04", "cuMemSetAccess")
        self.assertIn("Llama-3-8B", md)  # the GEMM chart's model
        self.assertIn("| 2 | 64 KiB |", md)  # all-reduce rows per GPU count
        self.assertIn("| 4 | 64 KiB |", md)
        self.assertIn("Measured GPU counts: 2, 3, 4.", md)

    def test_output_is_deterministic(self):
        d = os.path.join(WORK, "compare_again")
        shutil.copytree(DIRS["compare"], d)
        self.assertEqual(report(d).returncode, 0)  # the page names its directory
        names = ["report.html", "report.md"] + [
            os.path.join("report_files", os.path.basename(p)) for p in chart_files(d)]
        before = {n: read(os.path.join(d, n), "rb") for n in names}
        shutil.rmtree(os.path.join(d, "report_files"))
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(chart_files(d)), len(names) - 2)
        for n in names:
            self.assertEqual(read(os.path.join(d, n), "rb"), before[n], n)

    def test_no_software_metadata_in_pngs(self):
        for path in chart_files(DIRS["run"]):
            data = read(path, "rb")
            self.assertNotIn(b"Software", data, path)
            self.assertNotIn(b"tIME", data, path)

    def test_rerun_replaces_old_charts(self):
        d = os.path.join(WORK, "run_again")
        shutil.copytree(DIRS["run"], d)
        stale = os.path.join(d, "report_files", "old_chart.png")
        shutil.copy(chart_files(d)[0], stale)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertFalse(os.path.exists(stale))
        self.assertEqual(len(chart_files(d)), EXPECTED["run"][1])

    def test_single_run_from_compare_label_dir(self):
        d = os.path.join(WORK, "one_label")
        shutil.copytree(os.path.join(DIRS["compare"], "vattention_2MiB"), d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("KV manager vattention", read(os.path.join(d, "report.md")))

    def test_sweep_label_dir_without_csvs(self):
        label_dir = os.path.join(DIRS["sweep"], "paged")
        rate_dirs = sorted(os.listdir(label_dir))
        d = os.path.join(WORK, "sweep_point")
        shutil.copytree(os.path.join(label_dir, rate_dirs[0]), d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = read(os.path.join(d, "report.md"))
        self.assertIn("requests.csv was not written", md)
        self.assertEqual(chart_files(d), [])
        self.assertEqual(read(os.path.join(d, "report.html")).count("<img"), 0)

    def test_kvsim_report_command(self):
        d = os.path.join(WORK, "via_kvsim")
        shutil.copytree(DIRS["run"], d)
        shutil.rmtree(os.path.join(d, "report_files"))
        os.remove(os.path.join(d, "report.html"))
        r = run_cmd([ENV["kvsim"], "report", d])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(os.path.isfile(os.path.join(d, "report.html")))
        self.assertEqual(len(chart_files(d)), EXPECTED["run"][1])


# ---------------------------------------------------------------------------


def chromium_args(profile_dir):
    return [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}"]


class ChromiumRenderTest(unittest.TestCase):
    """Each report opens in headless Chromium: every chart decodes, no script error, not blank."""

    @classmethod
    def setUpClass(cls):
        if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
            raise AssertionError(f"{CHROMIUM} not found: install Debian's chromium package "
                                 "(apt-get install chromium); the report tests need it")

    def render(self, kind):
        d = DIRS[kind]
        self.assertEqual(RESULTS[kind].returncode, 0, RESULTS[kind].stderr)
        url = "file://" + os.path.abspath(os.path.join(d, "report.html"))
        charts = len(chart_files(d))
        with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
            dom = run_cmd(chromium_args(profile) + ["--dump-dom", url], timeout=90)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        m = re.search(r"<html[^>]*>", dom.stdout)
        self.assertIsNotNone(m, "no <html> element in the dumped DOM")
        attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(0)))
        self.assertEqual(attrs.get("data-report-ready"), "1",
                         f"{kind}: the page's load handler did not run: {m.group(0)}")
        self.assertEqual(attrs.get("data-script-errors"), "0",
                         f"{kind}: script errors: {attrs.get('data-script-error-text')}")
        self.assertEqual(attrs.get("data-images-total"), str(charts))
        self.assertEqual(attrs.get("data-images-loaded"), str(charts),
                         f"{kind}: images that decoded in Chromium")

        shot = os.path.join(WORK, f"screenshot_{kind}.png")
        with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
            r = run_cmd(chromium_args(profile) + [
                f"--screenshot={shot}", "--window-size=1200,1800", "--hide-scrollbars", url],
                timeout=90)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertTrue(os.path.isfile(shot), f"{kind}: Chromium wrote no screenshot")
        with Image.open(shot) as im:
            rgb = im.convert("RGB")
            self.assertEqual(rgb.size, (1200, 1800))
            colours = rgb.getcolors(1 << 24)
            self.assertGreater(len(colours), 200, f"{kind}: the screenshot looks blank")
            white = max(colours)[0] / (rgb.size[0] * rgb.size[1])
            self.assertLess(white, 0.97, f"{kind}: the screenshot is almost one colour")

    # Injected into a copy of a report: opens every details element, then records each table
    # wider than the body's content box (named by its first header cells) and the page's
    # scrollable width against the window's.
    MEASURE = """<script>
window.addEventListener('load', function(){
  var folds = document.getElementsByTagName('details');
  for (var i = 0; i < folds.length; i++) folds[i].open = true;
  var body = document.body, style = getComputedStyle(body);
  var room = body.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  var tables = document.getElementsByTagName('table'), wide = [];
  for (var i = 0; i < tables.length; i++) {
    var width = Math.max(tables[i].scrollWidth, tables[i].getBoundingClientRect().width);
    if (width > room + 1) {
      var heads = tables[i].getElementsByTagName('th'), name = [];
      for (var k = 0; k < heads.length && k < 3; k++) name.push(heads[k].textContent);
      wide.push(name.join('/') + ' ' + Math.round(width) + 'px');
    }
  }
  var root = document.documentElement;
  root.setAttribute('data-measured-tables', String(tables.length));
  root.setAttribute('data-too-wide', wide.join('; '));
  root.setAttribute('data-room', String(Math.round(room)));
  root.setAttribute('data-page-width', String(root.scrollWidth));
  root.setAttribute('data-window-width', String(root.clientWidth));
});
</script>"""

    def measure_tables(self, directory, width=1280):
        """The attributes MEASURE sets on a copy of DIRECTORY/report.html rendered in a window
        `width` px wide."""
        page = read(os.path.join(directory, "report.html"))
        self.assertIn("</body>", page)
        copy = os.path.join(WORK, f"measure_{os.path.basename(directory)}.html")
        with open(copy, "w") as f:
            f.write(page.replace("</body>", self.MEASURE + "</body>"))
        with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
            dom = run_cmd(chromium_args(profile) + [f"--window-size={width},1000", "--dump-dom",
                                                    "file://" + copy], timeout=90)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        m = re.search(r"<html[^>]*>", dom.stdout)
        self.assertIsNotNone(m, "no <html> element in the dumped DOM")
        return dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(0)))

    def check_tables_fit(self, directory):
        attrs = self.measure_tables(directory)
        self.assertIn("data-too-wide", attrs, f"the measuring script did not run: {attrs}")
        self.assertGreater(int(attrs["data-measured-tables"]), 0)
        self.assertEqual(attrs["data-too-wide"], "",
                         f"{directory}: tables wider than the page's {attrs['data-room']} px")
        self.assertLessEqual(int(attrs["data-page-width"]), int(attrs["data-window-width"]),
                             f"{directory}: the page scrolls sideways")

    def test_tables_fit_the_page_width(self):
        for kind in ("run", "compare", "sweep", "plan", "plan_infeasible", "calibration"):
            with self.subTest(kind=kind):
                self.assertEqual(RESULTS[kind].returncode, 0, RESULTS[kind].stderr)
                self.check_tables_fit(DIRS[kind])

    def test_plan_with_long_candidate_names_fits_the_page_width(self):
        # The widest tables: 48 candidates with long names, one of them with a long note.
        d = os.path.join(WORK, "plan_long_names")
        shutil.copytree(DIRS["plan_bench"], d)
        path = os.path.join(d, "plan.json")
        plan = json.loads(read(path))
        plan["candidates"][-1]["note"] = ("model does not fit: weights need 140.0 GiB per GPU "
                                          "at tensor_parallel 1, the card has 80 GiB; "
                                          "AVeryLongUnbrokenIdentifierThatMustWrapSomewhere" * 2)
        with open(path, "w") as f:
            json.dump(plan, f)
        relist_manifests(d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.check_tables_fit(d)

    def test_run(self):
        self.render("run")

    def test_run_with_interval_layout(self):
        self.render("run_interval")

    def test_compare(self):
        self.render("compare")

    def test_sweep(self):
        self.render("sweep")

    def test_plan(self):
        self.render("plan")

    def test_calibration(self):
        self.render("calibration")


# ---------------------------------------------------------------------------


class TimeseriesSeriesTest(unittest.TestCase):
    """The step functions the KV memory and running-batch charts draw, computed by hand on tiny
    tables of each timeseries.csv layout."""

    @classmethod
    def setUpClass(cls):
        cls.pkg = report_package()

    def series(self, name, header, rows):
        path = os.path.join(WORK, name)
        with open(path, "w") as f:
            f.write(csv_text(header, rows))
        return self.pkg.series.run_series({"timeseries": self.pkg.run_dir.load_timeseries(path)})

    def assertSteps(self, got, times, values, what):
        got_times, got_values = got
        self.assertEqual(len(got_times), len(times), f"{what}: times {got_times}")
        self.assertEqual(len(got_values), len(values), f"{what}: values {got_values}")
        for g, e in zip(got_times, times):
            self.assertAlmostEqual(g, e, places=9, msg=f"{what}: times {got_times}")
        for g, e in zip(got_values, values):
            self.assertAlmostEqual(g, e, places=9, msg=f"{what}: values {got_values}")

    def test_interval_series_by_hand(self):
        # 0.1 s intervals, two replicas, rows interleaved. Replica 0 has no row in [0.2, 0.3);
        # replica 1 has rows at 0.1 and 0.2 only. 0.2 + 0.1 is 0.30000000000000004 in floats, and
        # must not leave a sliver step before replica 0's row at 0.3.
        r = "0.100000000"
        t, allocated, live, cached, running = self.series("interval_by_hand.csv", INTERVAL_HEADER, [
            # time_s, replica, interval_s, iterations, busy_s, mean_running, max_running,
            # max_waiting, prefill, decode, mean_allocated, peak_allocated, mean_live,
            # mean_cached, exposed_overhead_s
            ("0.000000000", 0, r, 3, "0.050000000", 4, 5, 0, 900, 8, 100, 120, 60, 0, "0"),
            ("0.100000000", 1, r, 2, "0.025000000", 8, 8, 1, 0, 16, 1000, 1000, 500, 0, "0"),
            ("0.100000000", 0, r, 9, "0.100000000", 6, 7, 0, 0, 54, 200, 210, 150, 0, "0"),
            ("0.200000000", 1, r, 7, "0.100000000", 3, 4, 0, 0, 21, 2000, 2100, 1500, 0, "0"),
            ("0.300000000", 0, r, 12, "0.120000000", 2, 2, 0, 0, 24, 50, 60, 40, 0, "0.001"),
        ])
        times = [0.0, 0.1, 0.2, 0.3, 0.4]
        # Held until the replica's next row, to the end of the last interval:
        #   0: 100; 0.1: 200 + 1000; 0.2: 200 + 2000; 0.3: 50 + 2000; 0.4: held.
        self.assertSteps((t, allocated), times, [100, 1200, 2200, 2050, 2050], "allocated")
        self.assertSteps((t, live), times, [60, 650, 1650, 1540, 1540], "live")
        # mean_running * min(1, busy_s / interval_s), 0 after a row's interval until the next:
        #   0: 4 * 0.5; 0.1: 6 * 1 + 8 * 0.25; 0.2: replica 0 idle, 3 * 1;
        #   0.3: 2 * min(1, 1.2), replica 1 gone; 0.4: both idle.
        self.assertSteps(running, times, [2, 8, 3, 2, 0], "running")
        self.assertIsNone(cached, "no cached bytes: no cached series")

    def test_per_iteration_series_by_hand(self):
        t, allocated, live, cached, running = self.series("iteration_by_hand.csv",
                                                          PER_ITERATION_HEADER, [
            # time_s, replica, duration_s, running, waiting, prefill, decode, allocated, live,
            # cached, exposed_overhead_s
            ("0.000000000", 0, "0.500000000", 2, 0, 100, 0, 100, 90, 0, "0"),
            ("0.250000000", 1, "0.250000000", 5, 1, 300, 0, 1000, 800, 0, "0"),
            ("0.500000000", 0, "0.500000000", 3, 0, 0, 3, 200, 180, 0, "0"),
        ])
        # Latest value per replica, held to the end of the last iteration (1.0).
        self.assertSteps((t, allocated), [0.0, 0.25, 0.5, 1.0], [100, 1100, 1200, 1200],
                         "allocated")
        self.assertSteps((t, live), [0.0, 0.25, 0.5, 1.0], [90, 890, 980, 980], "live")
        # Sequences while an iteration runs, 0 once it ends unless the next one starts then.
        self.assertSteps(running, [0.0, 0.25, 0.5, 1.0], [2, 7, 3, 0], "running")
        self.assertIsNone(cached, "no cached bytes: no cached series")

    def test_interval_cached_series_by_hand(self):
        t, allocated, _, cached, _ = self.series("interval_cached.csv", INTERVAL_HEADER,
                                                 CACHED_INTERVAL_ROWS)
        times = [0.0, 0.1, 0.2, 0.3, 0.4]
        self.assertSteps((t, allocated), times, [100, 1200, 2200, 2050, 2050], "allocated")
        self.assertSteps((t, cached), times, CACHED_INTERVAL_SUM, "cached")

    def test_per_iteration_cached_series_by_hand(self):
        t, allocated, _, cached, _ = self.series("iteration_cached.csv", PER_ITERATION_HEADER,
                                                 CACHED_ITERATION_ROWS)
        times = [0.0, 0.25, 0.5, 0.6, 1.0]
        self.assertSteps((t, allocated), times, [100, 1100, 1200, 1700, 1700], "allocated")
        self.assertSteps((t, cached), times, CACHED_ITERATION_SUM, "cached")


# Two replicas with cached bytes, interval layout (0.1 s intervals, rows as in
# test_interval_series_by_hand). Each replica's mean_cached_bytes is held until its next row:
#   0: 10 (replica 1 has no row yet); 0.1: 20 + 300; 0.2: 20 + 0 (replica 1 dropped to 0);
#   0.3: 5 + 0; 0.4: held to the end of the last interval.
CACHED_INTERVAL_ROWS = [
    # time_s, replica, interval_s, iterations, busy_s, mean_running, max_running, max_waiting,
    # prefill, decode, mean_allocated, peak_allocated, mean_live, mean_cached, exposed_overhead_s
    ("0.000000000", 0, "0.100000000", 3, "0.050000000", 4, 5, 0, 900, 8, 100, 120, 60, 10, "0"),
    ("0.100000000", 1, "0.100000000", 2, "0.025000000", 8, 8, 1, 0, 16, 1000, 1000, 500, 300, "0"),
    ("0.100000000", 0, "0.100000000", 9, "0.100000000", 6, 7, 0, 0, 54, 200, 210, 150, 20, "0"),
    ("0.200000000", 1, "0.100000000", 7, "0.100000000", 3, 4, 0, 0, 21, 2000, 2100, 1500, 0, "0"),
    ("0.300000000", 0, "0.100000000", 12, "0.120000000", 2, 2, 0, 0, 24, 50, 60, 40, 5, "0"),
]
CACHED_INTERVAL_SUM = [10, 320, 20, 5, 5]
# Two replicas with cached bytes, per iteration. Each replica's latest cached_bytes:
#   0: 30; 0.25: 30 + 400; 0.5: 0 + 400; 0.6: 0 + 700; 1.0: held to the end of replica 0's
#   iteration at 0.5 (0.6 + 0.2 ends before it).
CACHED_ITERATION_ROWS = [
    # time_s, replica, duration_s, running, waiting, prefill, decode, allocated, live, cached,
    # exposed_overhead_s
    ("0.000000000", 0, "0.500000000", 2, 0, 100, 0, 100, 90, 30, "0"),
    ("0.250000000", 1, "0.250000000", 5, 1, 300, 0, 1000, 800, 400, "0"),
    ("0.500000000", 0, "0.500000000", 3, 0, 0, 3, 200, 180, 0, "0"),
    ("0.600000000", 1, "0.200000000", 6, 0, 0, 6, 1500, 1200, 700, "0"),
]
CACHED_ITERATION_SUM = [30, 430, 400, 700, 700]


def without_cached(rows, column):
    """The rows with field `column` (the cached bytes) set to 0."""
    return [row[:column] + (0,) + row[column + 1:] for row in rows]


class KvMemoryCachedTest(unittest.TestCase):
    """The KV memory chart's cached (kept for reuse) line, on hand-made compare directories of
    each timeseries layout: a copy of the prefix-caching comparison (paged, paged_prefix) whose
    runs' timeseries.csv are replaced by two-replica tables, cached bytes in paged_prefix's only
    (or in neither)."""

    @classmethod
    def setUpClass(cls):
        cls.pkg = report_package()

    def compare_dir(self, name, header, by_label):
        """A copy of the prefix-caching comparison with each label's timeseries.csv holding
        by_label[label] (rows of `header`), its report generated; returns the directory."""
        d = os.path.join(WORK, "cached", name)
        shutil.copytree(DIRS["compare_prefix"], d)
        for label, rows in by_label.items():
            with open(os.path.join(d, label, "timeseries.csv"), "w") as f:
                f.write(csv_text(header, rows))
        relist_manifests(d)  # hand-written timeseries
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        return d

    def runs(self, d):
        """The comparison's runs as the report reads them, each with its series and index."""
        m = self.pkg
        labels = [e["label"] for e in json.loads(read(os.path.join(d, "compare.json")))]
        runs = [m.run_dir.load_run_dir(os.path.join(d, label), label) for label in labels]
        for i, r in enumerate(runs):
            r["index"] = i
            r["series"] = m.series.run_series(r)
        return {r["label"]: r for r in runs}

    def drawn(self, run):
        """{legend label: y data in bytes} of the lines plot_kv_memory draws for `run`."""
        fig, ax = self.pkg.mpl.plt().subplots()
        self.addCleanup(self.pkg.mpl.plt().close, fig)
        self.pkg.run_charts.plot_kv_memory(ax, run, 1)
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        lines = {l.get_label(): [y * self.pkg.fmt.GIB for y in l.get_ydata()]
                 for l in ax.get_lines() if not l.get_label().startswith("_")}
        self.assertEqual(sorted(legend), sorted(lines))
        return lines

    def check(self, name, header, rows, column, times, cached_sum):
        d = self.compare_dir(name, header, {"paged": without_cached(rows, column),
                                            "paged_prefix": rows})
        runs = self.runs(d)
        t, _, _, cached, _ = runs["paged_prefix"]["series"]
        self.assertEqual(len(t), len(times), t)
        for g, e in zip(t, times):
            self.assertAlmostEqual(g, e, places=9)
        self.assertEqual(cached, cached_sum, "cached, summed over replicas")
        self.assertIsNone(runs["paged"]["series"][3], "paged has no cached bytes")
        # The chart: a cached line for paged_prefix only, with the summed values.
        label = self.pkg.run_charts.CACHED_LABEL
        with_cached, without = self.drawn(runs["paged_prefix"]), self.drawn(runs["paged"])
        for v, e in zip(with_cached[label], cached_sum):
            self.assertAlmostEqual(v, e, places=3)
        self.assertNotIn(label, without)
        self.assertEqual(sorted(without), ["KV capacity", "allocated", "live (tokens stored)"])
        md = read(os.path.join(d, "report.md"))
        self.assertIn("![KV memory over time, allocated, live and cached, per manager]", md)
        self.assertIn("Cached (kept for reuse, the dash-dot line): KV bytes held for no running "
                      "request", md)
        self.assertIn("Drawn for `paged_prefix`.", md)
        self.assertIn("allocated, live and cached, per manager. Allocated: the reservation",
                      read(os.path.join(d, "report.html")))

    def test_interval_layout(self):
        self.check("interval", INTERVAL_HEADER, CACHED_INTERVAL_ROWS, 13,
                   [0.0, 0.1, 0.2, 0.3, 0.4], CACHED_INTERVAL_SUM)

    def test_per_iteration_layout(self):
        self.check("per_iteration", PER_ITERATION_HEADER, CACHED_ITERATION_ROWS, 9,
                   [0.0, 0.25, 0.5, 0.6, 1.0], CACHED_ITERATION_SUM)

    def test_runs_without_cached_bytes_draw_no_cached_line(self):
        for name, header, rows, column in (
                ("none_interval", INTERVAL_HEADER, CACHED_INTERVAL_ROWS, 13),
                ("none_per_iteration", PER_ITERATION_HEADER, CACHED_ITERATION_ROWS, 9)):
            rows = without_cached(rows, column)
            d = self.compare_dir(name, header, {"paged": rows, "paged_prefix": rows})
            for run in self.runs(d).values():
                self.assertIsNone(run["series"][3], f"{name}: {run['label']}")
                self.assertEqual(sorted(self.drawn(run)),
                                 ["KV capacity", "allocated", "live (tokens stored)"])
            md = read(os.path.join(d, "report.md"))
            self.assertIn("![KV memory over time, allocated vs live, per manager]", md)
            self.assertNotIn("ached (kept for reuse", md)
            self.assertNotIn("allocated, live and cached", md)

    def test_prefix_caching_comparison_draws_cached_for_the_caching_run(self):
        # kvsim's own outputs: paged without the prefix cache keeps nothing cached.
        md = read(os.path.join(DIRS["compare_prefix"], "report.md"))
        self.assertIn("allocated, live and cached, per manager", md)
        self.assertIn("Drawn for `paged_prefix`.", md)


# ---------------------------------------------------------------------------


def hand_summary(ttft_p99=0.2, completed=200, total=200, overloaded=False, kv_manager="paged",
                 rate=12, peak_gib=10.0):
    """A summary.json object (the run's, edited): the given p99 TTFT (its other percentiles in
    proportion), requests and load; with completed == 0 every latency is null, as kvsim writes."""
    s = copy.deepcopy(BASE_SUMMARY)
    s["kv_manager"] = kv_manager
    s["requests_total"] = total
    s["requests_completed"] = completed
    s["scenario"]["rate_qps"] = rate
    s["load"]["offered_qps"] = rate
    s["load"]["overloaded"] = overloaded
    s["load"]["queue_first_quarter_s"] = 0.01
    s["load"]["queue_last_quarter_s"] = 2.5 if overloaded else 0.02
    s["load"]["arrival_span_s"] = 100.0
    s["load"]["backlog_age_s"] = 90.0 if overloaded else 0.0
    s["kv"]["peak_allocated_bytes"] = int(peak_gib * (1 << 30))
    for key in ("ttft_s", "tbt_s", "tpot_s", "e2e_s", "queue_s"):
        for q, share in (("mean", 0.3), ("p50", 0.25), ("p90", 0.6), ("p99", 1.0)):
            s[key][q] = None if completed == 0 else ttft_p99 * share * (
                1 if key == "ttft_s" else 10)
    return s


def runs_of(pkg, **summaries):
    """[{label, summary}] for compare verdicts, summaries read as the report reads them."""
    return [{"label": label,
             "summary": pkg.summary.read_summary(pkg.files.Node(s, f"{label}.json"))}
            for label, s in summaries.items()]


BASE_SUMMARY = {}


class VerdictTest(unittest.TestCase):
    """The sentences each page opens with: the right run named, ties, null latencies (no completed
    requests), one run, identical runs; and every report kind opens with one."""

    @classmethod
    def setUpClass(cls):
        cls.pkg = report_package()
        BASE_SUMMARY.clear()
        BASE_SUMMARY.update(json.loads(read(os.path.join(DIRS["run"], "summary.json"))))

    def compare(self, **summaries):
        runs = runs_of(self.pkg, **summaries)
        return self.pkg.verdicts.verdict_compare(runs, self.pkg.verdicts.paged_base(runs))

    def test_compare_names_the_lowest_and_highest_p99_ttft_with_ratios_to_paged(self):
        text = self.compare(static=hand_summary(1.5, kv_manager="static", peak_gib=54),
                            paged=hand_summary(0.5, peak_gib=14),
                            vattention_2MiB=hand_summary(0.41, kv_manager="vattention",
                                                         peak_gib=19))
        self.assertTrue(text.startswith(
            "vattention_2MiB has the lowest p99 TTFT (0.41 s, 0.82x paged), static the highest "
            "(1.5 s, 3.00x paged)."), text)
        self.assertIn("Every run keeps up with the offered load at 12 req/s", text)
        self.assertIn("paged holds the least KV memory at peak (14 GiB)", text)

    def test_compare_says_the_cache_filled_in_every_run_not_the_least_peak(self):
        # Capacity 4 GiB: peaks of 3.75 and 3.9 GiB (94%, 98%) both filled it.
        a = hand_summary(0.5, peak_gib=3.9)
        b = hand_summary(0.6, kv_manager="vattention", peak_gib=3.75)
        for s in (a, b):
            s["kv"]["capacity_bytes"] = 4 << 30
        text = self.compare(paged=a, vattention_2MiB=b)
        self.assertIn("the KV cache filled in every run (peak within 10% of its capacity: "
                      "memory binds)", text)
        self.assertNotIn("least KV memory", text)

    def test_compare_names_a_queueing_run_against_paged(self):
        text = self.compare(static=hand_summary(1.55, kv_manager="static", overloaded=True),
                            paged=hand_summary(0.5))
        self.assertIn("paged has the lowest p99 TTFT (0.5 s), static the highest (1.55 s, "
                      "3.10x paged).", text)
        self.assertIn("static (p99 TTFT 3.1x paged's; kvsim flags it overloaded) queues at "
                      "12 req/s; the others keep up", text)

    def test_compare_ties_are_named_together(self):
        text = self.compare(static=hand_summary(0.9, kv_manager="static"),
                            paged=hand_summary(0.5), vattention_2MiB=hand_summary(0.5004))
        self.assertTrue(text.startswith("paged and vattention_2MiB share the lowest p99 TTFT "
                                        "(0.5 s), static the highest (0.9 s, 1.80x paged)."), text)

    def test_compare_of_identical_runs(self):
        text = self.compare(a=hand_summary(0.3), b=hand_summary(0.3), c=hand_summary(0.3))
        self.assertTrue(text.startswith("All 3 runs have the same p99 TTFT (0.3 s)."), text)
        self.assertNotIn("least KV", text)  # all hold the same

    def test_compare_skips_runs_without_completed_requests(self):
        text = self.compare(static=hand_summary(completed=0, kv_manager="static"),
                            paged=hand_summary(0.5), vattention_2MiB=hand_summary(0.7))
        self.assertTrue(text.startswith("paged has the lowest p99 TTFT (0.5 s), "
                                        "vattention_2MiB the highest (0.7 s, 1.40x paged)."), text)
        self.assertIn("static completed no requests, so it has no latency statistics.", text)

    def test_compare_where_no_run_completed_a_request(self):
        text = self.compare(static=hand_summary(completed=0, kv_manager="static"),
                            paged=hand_summary(completed=0))
        self.assertEqual(text, "No run completed a request (static and paged), so there are no "
                               "latencies to compare.")

    def test_compare_of_one_run_and_a_run(self):
        text = self.compare(paged=hand_summary(0.25))
        self.assertTrue(text.startswith("paged completed 200 of 200 requests offered at 12 req/s"),
                        text)
        self.assertIn("p99 TTFT 0.25 s", text)
        self.assertIn("It keeps up with the load", text)
        read_summary, Node = self.pkg.summary.read_summary, self.pkg.files.Node
        s = read_summary(Node(hand_summary(overloaded=True), "s.json"))
        self.assertIn("It does not keep up", self.pkg.verdicts.verdict_run("static", s))
        # The backlog kvsim's overload rule reads: 90 s without draining of 100 s.
        self.assertIn("requests had waited without a break for 90 s of the 100 s of arrivals",
                      self.pkg.verdicts.verdict_run("static", s))
        # An older summary.json has no backlog figures: the sentence leaves them out.
        older = hand_summary(overloaded=True)
        del older["load"]["arrival_span_s"], older["load"]["backlog_age_s"]
        s = read_summary(Node(older, "s.json"))
        self.assertNotIn("without a break", self.pkg.verdicts.verdict_run("static", s))
        s = read_summary(Node(hand_summary(completed=0), "s.json"))
        self.assertEqual(self.pkg.verdicts.verdict_run("paged", s),
                         "paged completed none of its 200 requests, so it has no latency "
                         "statistics.")

    def sweep(self, points):
        """points: {label: [(rate, summary kwargs)]}."""
        read_summary, Node = self.pkg.summary.read_summary, self.pkg.files.Node
        runs = [{"label": label, "rate": rate,
                 "summary": read_summary(Node(hand_summary(**kw), "s"))}
                for label, pts in points.items() for rate, kw in pts]
        return self.pkg.verdicts.verdict_sweep(runs, list(points))

    def test_sweep_names_the_highest_load_each_manager_sustains(self):
        text = self.sweep({
            "static": [(1, {}), (2, {}), (4, {"overloaded": True}), (8, {"overloaded": True})],
            "paged": [(1, {"ttft_p99": 0.1}), (2, {"ttft_p99": 0.12}), (4, {"ttft_p99": 0.45}),
                      (8, {"ttft_p99": 0.9})],
            "vattention_2MiB": [(1, {}), (2, {}), (4, {}), (8, {})],
            "broken": [(1, {"completed": 0}), (2, {}), (4, {}), (8, {})],
        })
        self.assertIn("vattention_2MiB sustains 8 req/s (every load tested); paged sustains "
                      "4 req/s; static sustains 2 req/s; broken sustains none of the loads "
                      "tested.", text)
        self.assertIn("paged at 8 req/s: p99 TTFT 0.9 s, 9.0x its value at 1 req/s", text)
        self.assertIn("static at 4 req/s: overloaded", text)
        self.assertIn("broken at 1 req/s: no completed requests", text)

    def test_sweep_of_identical_managers_and_of_one_rate(self):
        text = self.sweep({"a": [(2, {}), (4, {})], "b": [(2, {}), (4, {})]})
        self.assertIn("a and b sustain 4 req/s (every load tested).", text)
        self.assertNotIn("First load not sustained", text)
        text = self.sweep({"a": [(3, {})], "b": [(3, {"overloaded": True})]})
        self.assertTrue(text.startswith("Only one offered load was tested (3 req/s)"), text)
        self.assertIn("a sustains 3 req/s (every load tested); b sustains none", text)

    def first_paragraph(self, kind):
        md = read(os.path.join(DIRS[kind], "report.md"))
        blocks = md.split("\n\n")
        self.assertTrue(blocks[0].startswith("# "), blocks[0])
        page = read(os.path.join(DIRS[kind], "report.html"))
        self.assertRegex(page, r"</h1>\n<p class=\"verdict\">", f"{kind}: no verdict first")
        return blocks[1]

    def test_every_page_opens_with_a_verdict(self):
        self.assertTrue(self.first_paragraph("run").startswith("paged completed "))
        text = self.first_paragraph("compare")
        self.assertRegex(text, r"(has|share) the lowest p99 TTFT")
        text = self.first_paragraph("sweep")
        self.assertTrue(text.startswith("Highest offered load sustained"), text)
        self.assertTrue(self.first_paragraph("calibration").startswith(
            "On NVIDIA H100 80GB HBM3, device copies reach "))
        text = self.first_paragraph("plan_infeasible")
        self.assertTrue(text.startswith("No candidate meets the SLOs at 20 req/s: "
                                        "6 candidates tried"), text)

    def test_compare_verdict_names_the_run_with_the_lowest_p99_ttft(self):
        compare = json.loads(read(os.path.join(DIRS["compare"], "compare.json")))
        best = min(compare, key=lambda e: e["summary"]["ttft_s"]["p99"])
        self.assertTrue(self.first_paragraph("compare").startswith(best["label"] + " "))

    def test_plan_verdict_names_the_recommendation_its_cost_and_binding_slo(self):
        plan = json.loads(read(os.path.join(DIRS["plan"], "plan.json")))
        rec = plan["recommendation"]
        text = self.first_paragraph("plan")
        self.assertTrue(text.startswith(f"Recommended: {rec['replicas']} x "
                                        f"`{rec['candidate']}`"), text)
        self.assertIn(f"${rec['cost_per_hour']:,.2f}/hour", text)
        self.assertTrue(rec["binding_slo"])
        self.assertIn(self.pkg.verdicts.slo_text(rec["binding_slo"], plan["slo"]), text)
        self.assertNotIn("`" + rec["binding_slo"] + "`", text)  # put in words


class LatencyChartTest(unittest.TestCase):
    """Latency distributions are complementary CDFs on a log y axis, percentiles marked."""

    @classmethod
    def setUpClass(cls):
        cls.pkg = report_package()

    def draw(self, series):
        fig, ax = self.pkg.mpl.plt().subplots()
        info = self.pkg.ccdf.plot_ccdf(ax, series)
        self.addCleanup(self.pkg.mpl.plt().close, fig)
        return ax, info

    def test_ccdf_is_the_fraction_above_on_a_log_axis(self):
        ax, info = self.draw([("four", "#000000", [4.0, 1.0, 3.0, 2.0]),
                              ("many", "#ff0000", [float(v) for v in range(1, 1001)])])
        self.assertEqual(ax.get_yscale(), "log")
        self.assertEqual(ax.get_xscale(), "log")  # 1 to 1000: three decades
        bottom = info["bottom"]
        self.assertLessEqual(bottom, 1 / 1000)  # the slowest of 1000 requests is visible
        self.assertAlmostEqual(ax.get_ylim()[0], bottom)
        four = ax.get_lines()[[l.get_label() for l in ax.get_lines()].index(
            next(l.get_label() for l in ax.get_lines() if l.get_label().startswith("four")))]
        self.assertEqual(list(four.get_xdata()), [1.0, 1.0, 2.0, 3.0, 4.0])
        self.assertEqual(list(four.get_ydata()), [1.0, 0.75, 0.5, 0.25, bottom])
        self.assertEqual(info["marks"]["many"], {"p50": 500.0, "p90": 900.0, "p99": 990.0})
        self.assertIn("p50 500, p90 900, p99 990", " ".join(l.get_label() for l in
                                                             ax.get_lines()))
        guides = sorted(round(l.get_ydata()[0], 6) for l in ax.get_lines()
                        if l.get_label().startswith("_") and len(set(l.get_ydata())) == 1
                        and len(l.get_ydata()) == 2)
        self.assertEqual(guides, [0.001, 0.01, 0.1, 0.5])

    def test_narrow_latencies_keep_a_linear_x_axis_and_distinct_styles(self):
        ax, _ = self.draw([("a", "#000000", [1.0, 1.1, 1.2]), ("b", "#000000", [1.0, 1.3]),
                           ("c", "#000000", [])])
        self.assertEqual(ax.get_yscale(), "log")
        self.assertEqual(ax.get_xscale(), "linear")
        curves = [l for l in ax.get_lines() if not l.get_label().startswith("_")]
        self.assertEqual(len(curves), 2)  # c has no requests
        self.assertNotEqual(curves[0].get_linestyle(), curves[1].get_linestyle())

    def test_reports_draw_ccdfs(self):
        md = read(os.path.join(DIRS["compare"], "report.md"))
        for name in ("ccdf_ttft.png", "ccdf_tpot.png", "ccdf_e2e.png"):
            self.assertIn(f"](report_files/{name})", md)
        self.assertIn("the fraction of requests slower than x, on a log scale", md)
        self.assertNotIn("cdf_ttft.png", md.replace("ccdf_ttft.png", ""))


class PlanOutlierTest(unittest.TestCase):
    """One candidate far above the rest does not set the plan charts' axes, and is still drawn,
    labelled with its value."""

    @classmethod
    def setUpClass(cls):
        cls.pkg = report_package()
        plan = json.loads(read(os.path.join(DIRS["plan_bench"], "plan.json")))
        cls.raw = plan

    def candidates(self, outlier=True, qps_outlier=False):
        m = self.pkg
        cands = [m.plan._read_candidate(m.files.Node(c, "plan.json"))
                 for c in self.raw["candidates"]]
        cands = [c for c in cands if c["meets_slo"]]
        self.assertGreater(len(cands), 10)
        big = cands[5]
        if outlier:
            big.update(replicas=730, gpus=730, cost_per_hour=2883.35)
            big["lat"]["ttft_s"]["p99"] = 14.2
        if qps_outlier:
            big["max_qps_per_replica"] = 500.0
        kv_color = {c["kv_label"]: m.mpl.color(i) for i, c in enumerate(cands)}
        gpu_marker = {c["gpu"]: "o" for c in cands}
        return cands, big, kv_color, gpu_marker

    def axes(self):
        fig, ax = self.pkg.mpl.plt().subplots()
        self.addCleanup(self.pkg.mpl.plt().close, fig)
        return ax

    def texts(self, ax):
        return " | ".join(t.get_text() for t in ax.texts)

    def test_cost_chart_ends_at_the_bulk_and_labels_the_outlier(self):
        cands, big, kv_color, _ = self.candidates()
        bulk = max(c["cost_per_hour"] for c in cands if c is not big)
        ax = self.axes()
        info = self.pkg.plan_charts.plot_plan_cost(
            ax, sorted(cands, key=lambda c: c["cost_per_hour"]), None, kv_color)
        self.assertEqual(info["clipped"], [big["candidate"]])
        self.assertLess(ax.get_xlim()[1], 2 * bulk)
        self.assertGreater(ax.get_xlim()[1], bulk)
        self.assertIn(big["candidate"], [t.get_text() for t in ax.get_yticklabels()])
        self.assertIn("$2,883.35/h, 730 x 1 GPU", self.texts(ax))

    def test_pareto_chart_ends_at_the_bulk_and_labels_the_outlier(self):
        cands, big, kv_color, gpu_marker = self.candidates()
        ax = self.axes()
        info = self.pkg.plan_charts.plot_plan_pareto(ax, cands, None, kv_color, gpu_marker)
        self.assertEqual(info["clipped"], [big["candidate"]])
        bulk_cost = max(c["cost_per_hour"] for c in cands if c is not big)
        bulk_ttft = max(c["lat"]["ttft_s"]["p99"] for c in cands if c is not big)
        self.assertLess(ax.get_ylim()[1], 2 * bulk_cost)
        self.assertLess(ax.get_xlim()[1], 2 * bulk_ttft)
        self.assertIn(f"{big['candidate']}: 14.2 s, $2,883.35/h", self.texts(ax))
        points = sum(len(c.get_offsets()) for c in ax.collections)
        self.assertGreaterEqual(points, len(cands))  # every candidate drawn

    def test_qps_chart_ends_at_the_bulk(self):
        cands, big, kv_color, _ = self.candidates(outlier=False, qps_outlier=True)
        ax = self.axes()
        info = self.pkg.plan_charts.plot_plan_qps(ax, cands, 30.0, kv_color)
        self.assertEqual(info["clipped"], [big["candidate"]])
        self.assertLess(ax.get_xlim()[1], 100)
        self.assertIn("500 req/s", self.texts(ax))

    def test_no_outlier_no_clipping(self):
        cands, _, kv_color, gpu_marker = self.candidates(outlier=False)
        ax = self.axes()
        info = self.pkg.plan_charts.plot_plan_pareto(ax, cands, None, kv_color, gpu_marker)
        self.assertEqual(info["clipped"], [])
        self.assertIsNone(info["xlimit"])
        self.assertIsNone(info["ylimit"])
        costs = [c["cost_per_hour"] for c in cands]
        self.assertGreaterEqual(ax.get_ylim()[1], max(costs))
        self.assertIsNone(self.pkg.plan_charts.outlier_limit([3.0, 900.0]))  # no bulk to tell

    def test_report_of_a_plan_with_a_730_gpu_candidate(self):
        d = os.path.join(WORK, "plan_outlier")
        shutil.copytree(DIRS["plan_bench"], d)
        plan = copy.deepcopy(self.raw)
        big = plan["candidates"][5]
        big.update(replicas=730, gpus=730, cost_per_hour=2883.35)
        with open(os.path.join(d, "plan.json"), "w") as f:
            json.dump(plan, f)
        relist_manifests(d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = read(os.path.join(d, "report.md"))
        self.assertIn(f"Off scale (cut at the axis end, so the others stay readable; the value "
                      f"is written on it): `{big['candidate']}` ($2,883.35/hour, 730 GPUs).", md)
        self.assertEqual(len(chart_files(d)), EXPECTED["plan"][1])


class RequestPercentilesNoteTest(unittest.TestCase):
    """The note under a run's or comparison's table says how the request percentiles (TTFT, TPOT,
    E2E) were computed, as each run's summary.json says: exact up to kvsim's limit of 2^17
    requests, from a log histogram beyond it. A comparison of a run within the limit and a run
    past it (CSVs off, two-token requests, to stay quick) shows both kinds."""

    PAST_EXACT_LIMIT = (1 << 17) + 1

    @classmethod
    def setUpClass(cls):
        cls.d = os.path.join(WORK, "percentiles")
        entries = (f"[{{label: few, set: {{workload.max_requests: 200}}}}, "
                   f"{{label: many, set: {{workload.max_requests: {cls.PAST_EXACT_LIMIT}}}}}]")
        kvsim("compare", os.path.join(ENV["source"], "configs", "quickstart.yaml"),
              "--set", "workload.arrival.process=poisson", "--set", "workload.lengths.source=fixed",
              "--set", "workload.lengths.prompt_tokens=16",
              "--set", "workload.lengths.output_tokens=2",
              "--set", "output.requests_csv=false", "--set", "output.timeseries_csv=false",
              "--set", f"compare={entries}", "--out", cls.d)
        compare = json.loads(read(os.path.join(cls.d, "compare.json")))
        cls.says = {e["label"]: e["summary"]["percentiles"] for e in compare}

    def test_runs_within_the_limit_are_said_to_have_exact_percentiles(self):
        for kind in ("run", "compare"):
            with self.subTest(kind=kind):
                self.assertEqual(RESULTS[kind].returncode, 0, RESULTS[kind].stderr)
                summaries = [json.loads(read(os.path.join(root, "summary.json")))
                             for root, _, files in os.walk(DIRS[kind]) if "summary.json" in files]
                self.assertEqual({s["percentiles"] for s in summaries}, {"exact"})
                self.assertTrue(table_note(DIRS[kind]).endswith(
                    "the other percentiles are over requests, exact (nearest rank)."),
                    table_note(DIRS[kind]))

    def test_a_comparison_names_the_runs_whose_percentiles_come_from_the_histogram(self):
        self.assertEqual(self.says["few"], "exact")
        self.assertNotEqual(self.says["many"], "exact")
        r = report(self.d)
        self.assertEqual(r.returncode, 0, r.stderr)
        note = table_note(self.d)
        self.assertIn("as each run's summary.json says: ", note)
        self.assertIn("for `few` exact (nearest rank)", note)
        self.assertIn(f"for `many` from a {self.says['many']}", note)

    def test_a_run_past_the_limit_says_its_percentiles_come_from_the_histogram(self):
        d = os.path.join(WORK, "percentiles_many")
        shutil.copytree(os.path.join(self.d, "many"), d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(table_note(d).endswith(
            f"the other percentiles are over requests, from a {self.says['many']}."),
            table_note(d))
        self.assertNotIn("exact", table_note(d))


# ---------------------------------------------------------------------------


class JsonOnlyTest(unittest.TestCase):
    """Every fact comes from the JSON and CSV files kvsim wrote: a plan directory moved away from
    its plan file, reported from another working directory, still names the model and SLOs; a
    run's config.yaml is shown, never read."""

    def test_moved_plan_directory_still_names_model_and_slos(self):
        where = tempfile.mkdtemp(prefix="plan_moved_", dir=WORK)
        plan_file = os.path.join(where, "gone.yaml")
        with open(plan_file, "w") as f:
            f.write(PLAN_TEMPLATE.format(scenario=os.path.join(ENV["source"], "configs",
                                                               "quickstart.yaml"),
                                         ttft_p99="2.0"))
        made = os.path.join(where, "made")
        kvsim("plan", plan_file, "--out", made)
        os.remove(plan_file)  # the plan file is gone, and so is the directory it was made in
        moved = os.path.join(WORK, "plan_moved_here")
        shutil.copytree(made, moved)
        shutil.rmtree(where)
        elsewhere = tempfile.mkdtemp(prefix="cwd_", dir=WORK)
        r = run_cmd([sys.executable, ENV["script"], os.path.relpath(moved, elsewhere)],
                    cwd=elsewhere)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = read(os.path.join(moved, "report.md"))
        self.assertTrue(md.startswith("# kvsim plan: Llama-3-8B, target 20 QPS"), md[:200])
        for fact in ("| model | Llama-3-8B", "| seed | 42 |", "AzureLLMInferenceTrace_conv.csv",
                     "| requests per probe | 300 |", "ttft_s.p99 ≤ 2 s", "tbt_s.p99 ≤ 0.25 s"):
            self.assertIn(fact, md)
        recorded = json.loads(read(os.path.join(moved, "plan.json")))["scenario"]
        if "arrival_process" in recorded:
            self.assertIn(f"| arrivals | {recorded['arrival_process']}, at each probe's rate", md)
        else:
            self.assertIn("| arrivals | not recorded |", md)

    def test_config_yaml_is_shown_verbatim_not_read(self):
        d = os.path.join(WORK, "run_misleading_config")
        shutil.copytree(DIRS["run"], d)
        with open(os.path.join(d, "config.yaml"), "a") as f:
            f.write("# edited by hand\nmodel: Some-Other-Model\noutput: {requests_csv: false}\n")
        relist_manifests(d)
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = read(os.path.join(d, "report.md"))
        self.assertIn("| model | Llama-3-8B |", md)
        self.assertIn("model: Some-Other-Model", md)  # shown, as written
        os.remove(os.path.join(d, "requests.csv"))
        r = report(d)  # config.yaml's output switch does not excuse a missing requests.csv
        self.assertEqual(r.returncode, 2, r.stdout)
        self.assertIn("requests.csv: missing", r.stderr)

    def test_the_script_has_no_yaml_reader(self):
        for module in report_package().every:
            for name in ("parse_yaml", "load_yaml_quietly", "_plan_context", "ydig"):
                self.assertFalse(hasattr(module, name), f"{module.__name__}.{name}")


# ---------------------------------------------------------------------------


class BadInputTest(unittest.TestCase):
    """Broken inputs exit with status 2 and one line naming the file, never a traceback."""

    def copy(self, kind, name, keep_manifests=False):
        """A copy of a built output directory (of DIRS, or a path) to break by hand. Unless kept
        as kvsim wrote them, its manifests are relisted to the hand-edited files when
        expect_error reports it: the edits are checked on their content, not against them."""
        d = os.path.join(WORK, "bad", name)
        shutil.copytree(DIRS.get(kind, kind), d)
        for leftover in ("report.html", "report.md"):
            if os.path.exists(os.path.join(d, leftover)):
                os.remove(os.path.join(d, leftover))
        shutil.rmtree(os.path.join(d, "report_files"), ignore_errors=True)
        self.relist = not keep_manifests
        return d

    def test_a_file_changed_after_kvsim_wrote_it_fails_its_manifest(self):
        d = self.copy("run", "tampered", keep_manifests=True)
        path = os.path.join(d, "requests.csv")
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(data[: len(data) // 2])  # cut short, as by a crash mid-write
        self.expect_error(d, "requests.csv", "changed or cut short")

    def test_a_file_the_manifest_lists_but_missing_fails(self):
        d = self.copy("compare", "listed_missing", keep_manifests=True)
        label = sorted(x for x in os.listdir(d) if os.path.isdir(os.path.join(d, x)))[0]
        os.remove(os.path.join(d, label, "timeseries.csv"))
        self.expect_error(d, "timeseries.csv", "missing")

    def expect_error(self, d, *needles):
        if getattr(self, "relist", False):
            relist_manifests(d)
        r = report(d)
        self.assertEqual(r.returncode, 2, f"stdout: {r.stdout}\nstderr: {r.stderr}")
        err = r.stderr.strip()
        self.assertNotIn("Traceback", r.stderr)
        self.assertEqual(len(err.splitlines()), 1, f"not one line: {r.stderr!r}")
        self.assertTrue(err.startswith("kvsim_report: error: "), err)
        for n in needles:
            self.assertIn(n, err)
        self.assertFalse(os.path.exists(os.path.join(d, "report.html")))
        return err

    @staticmethod
    def edit(path, fn):
        with open(path, "rb") as f:
            data = f.read()
        with open(path, "wb") as f:
            f.write(fn(data))

    @staticmethod
    def set_field(path, line, column, value):
        """Sets `column` (by its header name) on line `line` (1-based) of the CSV file `path`."""
        lines = read(path).splitlines(True)
        header = lines[0].rstrip("\n").split(",")
        fields = lines[line - 1].rstrip("\n").split(",")
        fields[header.index(column)] = value
        lines[line - 1] = ",".join(fields) + "\n"
        with open(path, "w") as f:
            f.writelines(lines)

    def test_missing_directory(self):
        self.expect_error(os.path.join(WORK, "no_such_dir"), "no_such_dir",
                          "no such directory")

    def test_directory_with_nothing_known(self):
        d = os.path.join(WORK, "bad", "empty")
        os.makedirs(d)
        with open(os.path.join(d, "notes.txt"), "w") as f:
            f.write("hello\n")
        self.expect_error(d, "empty", "summary.json", "profile.txt")

    def test_run_missing_summary(self):
        d = self.copy("run", "no_summary")
        os.remove(os.path.join(d, "summary.json"))
        self.expect_error(d, os.path.join(d, "summary.json"), "missing")

    def test_run_truncated_summary(self):
        d = self.copy("run", "truncated_summary")
        self.edit(os.path.join(d, "summary.json"), lambda b: b[: len(b) // 2])
        self.expect_error(d, "summary.json:", "not valid JSON")

    def test_run_summary_with_wrong_type(self):
        d = self.copy("run", "typed_summary")
        self.edit(os.path.join(d, "summary.json"),
                  lambda b: re.sub(rb'("p99": )[0-9.e+-]+', rb'\1"fast"', b, count=1))
        self.expect_error(d, "summary.json", "ttft_s.p99", "expected a number")

    def test_run_summary_binary_garbage(self):
        d = self.copy("run", "garbage_summary")
        self.edit(os.path.join(d, "summary.json"), lambda b: b"\x00\xff\xfe" + b[:50])
        self.expect_error(d, "summary.json")

    def test_requests_csv_bad_number(self):
        d = self.copy("run", "bad_requests")
        path = os.path.join(d, "requests.csv")
        lines = read(path).splitlines(True)
        fields = lines[4].split(",")
        fields[2] = "soon"
        lines[4] = ",".join(fields)
        with open(path, "w") as f:
            f.writelines(lines)
        self.expect_error(d, "requests.csv:5", "arrival_s", "soon")

    def test_requests_csv_truncated_row(self):
        d = self.copy("run", "truncated_requests")
        path = os.path.join(d, "requests.csv")
        text = read(path)
        with open(path, "w") as f:
            f.write(text[: text.rstrip("\n").rfind(",")])
        n = len(text.rstrip("\n").splitlines())
        self.expect_error(d, f"requests.csv:{n}", "fields")

    def test_requests_csv_bad_header(self):
        d = self.copy("run", "header_requests")
        self.edit(os.path.join(d, "requests.csv"),
                  lambda b: b.replace(b"first_token_s", b"first_tok", 1))
        self.expect_error(d, "requests.csv:1", "first_token_s")

    def test_timeseries_missing(self):
        d = self.copy("run", "no_timeseries")
        os.remove(os.path.join(d, "timeseries.csv"))
        self.expect_error(d, "timeseries.csv", "missing")

    def test_timeseries_negative_bytes(self):
        d = self.copy("run", "negative_timeseries")
        column = "mean_allocated_bytes" if timeseries_layout(d) == "interval" else \
            "allocated_bytes"
        self.set_field(os.path.join(d, "timeseries.csv"), 10, column, "-5")
        self.expect_error(d, "timeseries.csv:10", "negative")

    def test_interval_timeseries_negative_bytes(self):
        d = self.copy("run_interval", "interval_negative_bytes")
        self.set_field(os.path.join(d, "timeseries.csv"), 4, "mean_allocated_bytes", "-5")
        self.expect_error(d, os.path.join(d, "timeseries.csv") + ":4", "mean_allocated_bytes",
                          "negative")

    def test_interval_timeseries_zero_iterations(self):
        d = self.copy("run_interval", "interval_zero_iterations")
        self.set_field(os.path.join(d, "timeseries.csv"), 6, "iterations", "0")
        self.expect_error(d, os.path.join(d, "timeseries.csv") + ":6", "iterations is 0")

    def test_interval_timeseries_differing_interval(self):
        d = self.copy("run_interval", "interval_differing_interval")
        self.set_field(os.path.join(d, "timeseries.csv"), 7, "interval_s", "0.500000000")
        self.expect_error(d, os.path.join(d, "timeseries.csv") + ":7", "interval_s is 0.5",
                          "1 on the rows before")

    def test_interval_timeseries_zero_interval(self):
        d = self.copy("run_interval", "interval_zero_interval")
        self.set_field(os.path.join(d, "timeseries.csv"), 2, "interval_s", "0")
        self.expect_error(d, os.path.join(d, "timeseries.csv") + ":2", "interval_s is 0")

    def test_interval_timeseries_out_of_time_order(self):
        d = self.copy("run_interval", "interval_out_of_order")
        path = os.path.join(d, "timeseries.csv")
        lines = read(path).splitlines(True)
        lines[4], lines[5] = lines[5], lines[4]
        with open(path, "w") as f:
            f.writelines(lines)
        self.expect_error(d, path + ":6", "replica 0", "time_s 3 is not after")

    def test_timeseries_unknown_header(self):
        d = self.copy("run_interval", "interval_unknown_header")
        path = os.path.join(d, "timeseries.csv")
        self.edit(path, lambda b: b.replace(b"mean_running", b"mean_batch", 1))
        self.expect_error(d, path + ":1", "neither timeseries layout", "lacks mean_running",
                          INTERVAL_HEADER, PER_ITERATION_HEADER)

    def test_compare_json_corrupted(self):
        d = self.copy("compare", "bad_compare_json")
        self.edit(os.path.join(d, "compare.json"), lambda b: b.replace(b"{", b"(", 3))
        self.expect_error(d, "compare.json:", "not valid JSON")

    def test_compare_json_not_a_list(self):
        d = self.copy("compare", "object_compare_json")
        with open(os.path.join(d, "compare.json"), "w") as f:
            f.write('{"label": "paged"}\n')
        self.expect_error(d, "compare.json", "expected a list")

    def test_compare_label_missing_csv(self):
        d = self.copy("compare", "compare_no_csv")
        os.remove(os.path.join(d, "paged", "requests.csv"))
        self.expect_error(d, os.path.join("paged", "requests.csv"), "missing")

    def test_compare_label_csv_count_mismatch(self):
        d = self.copy("compare", "compare_short_csv")
        path = os.path.join(d, "static", "requests.csv")
        lines = read(path).splitlines(True)
        with open(path, "w") as f:
            f.writelines(lines[:-3])
        self.expect_error(d, os.path.join("static", "requests.csv"), "summary.json")

    def test_sweep_json_corrupted(self):
        d = self.copy("sweep", "bad_sweep")
        self.edit(os.path.join(d, "sweep.json"), lambda b: b[:-40])
        self.expect_error(d, "sweep.json:", "not valid JSON")

    def test_sweep_json_missing_rate(self):
        d = self.copy("sweep", "sweep_no_rate")
        self.edit(os.path.join(d, "sweep.json"),
                  lambda b: re.sub(rb'"rate_qps": [0-9.e+]+,\s*', b"", b, count=1))
        self.expect_error(d, "sweep.json", "runs[0].rate_qps", "missing")

    def test_plan_json_corrupted(self):
        d = self.copy("plan", "bad_plan")
        self.edit(os.path.join(d, "plan.json"), lambda b: b.replace(b":", b"=", 5))
        self.expect_error(d, "plan.json:", "not valid JSON")

    def test_plan_json_missing_key(self):
        d = self.copy("plan", "plan_no_cost")
        self.edit(os.path.join(d, "plan.json"),
                  lambda b: b.replace(b'"cost_per_hour"', b'"cost_hourly"', 1))
        self.expect_error(d, "plan.json", "candidates[0].cost_per_hour", "missing")

    def test_plan_csv_corrupted(self):
        d = self.copy("plan", "bad_plan_csv")
        path = os.path.join(d, "plan.csv")
        lines = read(path).splitlines(True)
        lines[2] = lines[2].replace(",", ";", 4)
        with open(path, "w") as f:
            f.writelines(lines)
        self.expect_error(d, "plan.csv:3")

    def test_profile_bad_number(self):
        d = self.copy("calibration", "bad_profile")
        path = os.path.join(d, "profile.txt")
        lines = read(path).splitlines(True)
        i = next(k for k, line in enumerate(lines) if line.startswith("Llama-3-8B,o,1,64,"))
        lines[i] = lines[i].replace(",64,64,", ",64,sixty-four,", 1)
        with open(path, "w") as f:
            f.writelines(lines)
        self.expect_error(d, f"profile.txt:{i + 1}", "[gemm]", "sixty-four")

    def test_profile_missing_section(self):
        d = self.copy("calibration", "profile_no_decode")
        path = os.path.join(d, "profile.txt")
        text = read(path)
        start = text.index("[decode_attention]")
        end = text.index("[prefill_attention]")
        with open(path, "w") as f:
            f.write(text[:start] + text[end:])
        self.expect_error(d, "profile.txt", "[decode_attention]", "missing")

    def test_profile_wrong_field_count(self):
        d = self.copy("calibration", "profile_short_row")
        path = os.path.join(d, "profile.txt")
        lines = read(path).splitlines(True)
        i = next(k for k, line in enumerate(lines) if line.startswith("cuMemMap,"))
        lines[i] = lines[i].rsplit(",", 1)[0] + "\n"
        with open(path, "w") as f:
            f.writelines(lines)
        self.expect_error(d, f"profile.txt:{i + 1}", "fields")

    def test_profile_not_text(self):
        d = self.copy("calibration", "profile_binary")
        self.edit(os.path.join(d, "profile.txt"), lambda b: bytes(range(256)) * 4)
        self.expect_error(d, "profile.txt")

    def profile_refused_as_kvsim_refuses_it(self, name, cut):
        """Writes `cut` (the text of kvprobe 0.3.16's committed profile, edited) as profile.txt of
        a new directory; the report refuses it with kvsim's own message for that file (from
        `kvsim validate`, which reads the profile first). Returns the message."""
        d = os.path.join(WORK, "bad", name)
        os.makedirs(d)
        path = os.path.join(d, "profile.txt")
        with open(path, "w") as f:
            f.write(cut)
        r = run_cmd([ENV["kvsim"], "validate", path])
        self.assertNotEqual(r.returncode, 0, r.stdout)
        said = r.stderr.strip().splitlines()
        self.assertEqual(len(said), 1, r.stderr)
        message = said[0][said[0].index(path):]
        self.assertEqual(self.expect_error(d, path), f"kvsim_report: error: {message}")
        return message

    def test_profile_cut_short_is_refused_with_kvsims_words(self):
        # kvprobe 0.3.16 writes "# end of kvprobe profile" last; kvsim refuses a profile of it
        # without that line, and so does the report, with the same message.
        whole = read(os.path.join(ENV["source"], "models", "profiles", "H200", "repeat_1235Z",
                                  "profile.txt"))
        marker = "# end of kvprobe profile"
        self.assertTrue(whole.endswith(f"\n\n{marker}\n"))
        cut = whole[:whole.rindex(f"\n{marker}")]
        last = len(cut.rstrip("\n").split("\n"))
        message = self.profile_refused_as_kvsim_refuses_it("profile_cut_short", cut)
        self.assertTrue(message.endswith("profile.txt: ends without the end marker kvprobe writes "
                                         "last: the file is cut short (kvprobe_version 0.3.16 ends "
                                         f"every profile with the line '{marker}'; this file ends "
                                         f"at line {last})"), message)
        message = self.profile_refused_as_kvsim_refuses_it("profile_cut_in_row", cut[:-4])
        self.assertIn(f"this file ends at line {last})", message)
        after = whole + "# another copy\n"
        message = self.profile_refused_as_kvsim_refuses_it("profile_after_marker", after)
        self.assertTrue(message.endswith(f"profile.txt:{last + 3}: lines after the end marker of "
                                         f"line {last + 2} ('{marker}'), which kvprobe writes "
                                         "last: another file appended, or rows merged in by a "
                                         "kvprobe before 0.3.16"), message)

    def test_a_sweep_missing_the_folder_of_a_run_names_it_and_sweep_json(self):
        made = os.path.join(WORK, "sweep_fractional")
        kvsim("sweep", os.path.join(ENV["source"], "configs", "quickstart.yaml"),
              "--rates", "2.5,4", "--set", "workload.max_requests=50",
              "--set", "compare=[{label: paged}]", "--out", made)
        r = report(made)  # every run's folder found where kvsim wrote it, rate_2.5 among them
        self.assertEqual(r.returncode, 0, r.stderr)
        d = self.copy(made, "sweep_run_folder_deleted", keep_manifests=True)
        sweep_json = os.path.join(d, "sweep.json")
        run = json.loads(read(sweep_json))["runs"][0]
        label_dir = os.path.join(d, run["label"])
        folder = next(os.path.join(label_dir, name) for name in os.listdir(label_dir)
                      if float(name[len("rate_"):]) == run["rate_qps"])
        shutil.rmtree(folder)
        self.expect_error(d, f"{folder}: missing", sweep_json)

    def test_compare_json_edited_with_its_manifest_deleted_is_refused(self):
        d = self.copy("compare", "edited_unlisted", keep_manifests=True)
        path = os.path.join(d, "compare.json")
        runs = json.loads(read(path))
        runs[0]["summary"]["ttft_s"]["p99"] /= 10  # a better figure than kvsim's
        with open(path, "w") as f:
            json.dump(runs, f, indent=2)
        os.remove(os.path.join(d, "manifest.json"))
        self.expect_error(d, f"{d}: no manifest.json", path, "changed, or copied without it")

    def test_outputs_whose_files_say_kvsim_wrote_a_manifest_are_refused_without_it(self):
        point = os.path.join("paged", sorted(os.listdir(os.path.join(DIRS["sweep"], "paged")))[0])
        for kind, sub, source in (("run", "", "summary.json"), ("compare", "", "compare.json"),
                                  ("compare", "paged", "compare.json"),
                                  ("sweep", "", "sweep.json"), ("sweep", point, "sweep.json"),
                                  ("plan", "", "plan.json")):
            with self.subTest(kind=kind, directory=sub):
                name = f"unlisted_{kind}_{sub.replace(os.sep, '_')}"
                d = self.copy(kind, name, keep_manifests=True)
                bare = os.path.join(d, sub) if sub else d
                os.remove(os.path.join(bare, "manifest.json"))
                self.expect_error(d, f"{bare}: no manifest.json", os.path.join(d, source),
                                  "changed, or copied without it")

    def test_outputs_of_a_kvsim_before_manifests_are_taken_without_them(self):
        for kind in ("run", "compare", "sweep", "plan"):
            with self.subTest(kind=kind):
                d = self.copy(kind, f"before_manifests_{kind}", keep_manifests=True)
                as_before_manifests(d)
                r = report(d)
                self.assertEqual(r.returncode, 0, r.stderr)

    def test_usage(self):
        r = run_cmd([sys.executable, ENV["script"]])
        self.assertEqual(r.returncode, 2)
        self.assertIn("usage", r.stderr)
        self.assertNotIn("Traceback", r.stderr)


if __name__ == "__main__":
    unittest.main()
