"""Tests of the kvsim Python module (tools/python/kvsim) against the real kvsim binary.

Run with Debian's interpreter (it has pandas):
  KVSIM_BINARY=build/sim/kvsim PYTHONPATH=tools/python PYTHONDONTWRITEBYTECODE=1 \
      /usr/bin/python3 -m unittest discover -s tests/python -p "test_*.py" -v

Every expected value is computed here from the inputs the tests write or from kvsim's own
outputs (requests.csv against summary.json, a label's directory against compare.json), never
copied from an earlier run. A few tests use a stand-in executable (a shell script that records
its arguments) to check the argument lists and the search for the binary.
"""

import json
import math
import os
import pickle
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

import pandas as pd
from pandas.api import types as ptypes

SOURCE = Path(__file__).resolve().parent.parent.parent
try:
    import kvsim  # from PYTHONPATH (ctest: tools/python)
except ImportError:
    sys.path.insert(0, str(SOURCE / "tools" / "python"))
    import kvsim

QUICKSTART = SOURCE / "configs" / "quickstart.yaml"
DEFAULT_LABELS = ["static", "paged", "vattention_2MiB", "vattention_64KiB"]  # README: compare
REQUEST_COLUMNS = ["id", "replica", "arrival_s", "first_scheduled_s", "first_token_s", "finish_s",
                   "prompt_tokens", "output_tokens", "preemptions"]
INTERVAL_COLUMNS = ["time_s", "replica", "interval_s", "iterations", "busy_s", "mean_running",
                    "max_running", "max_waiting", "prefill_tokens", "decode_tokens",
                    "mean_allocated_bytes", "peak_allocated_bytes", "mean_live_bytes",
                    "mean_cached_bytes", "exposed_overhead_s"]
ITERATION_COLUMNS = ["time_s", "replica", "duration_s", "running", "waiting", "prefill_tokens",
                     "decode_tokens", "allocated_bytes", "live_bytes", "cached_bytes",
                     "exposed_overhead_s"]
SMALL = {"workload.max_requests": 50}

WORK = None
BINARY = None


def setUpModule():
    global WORK, BINARY
    BINARY = str(kvsim.find_binary())  # $KVSIM_BINARY under ctest
    WORK = Path(tempfile.mkdtemp(prefix="kvsim_python_test_"))


def tearDownModule():
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


def forget(result):
    """Removes the temporary directory a call with out=None made (its parent)."""
    shutil.rmtree(result.dir.parent, ignore_errors=True)


def nearest_rank(values, q):
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def same_number(a, b):
    return (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)) \
        or a == b


def write_fake(path, record, status, message="kvsim: error: internal: stand-in"):
    """A stand-in kvsim: writes its arguments to `record`, one a line, prints `message` to
    stderr and exits with `status`."""
    path.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{record}'\n"
                    f"echo '{message}' >&2\nexit {status}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def binary_supports_force():
    done = subprocess.run([BINARY, "run", "--help"], capture_output=True, text=True)
    return "--force" in done.stdout + done.stderr


class RunTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.run_ = kvsim.run(QUICKSTART, set=SMALL)

    @classmethod
    def tearDownClass(cls):
        forget(cls.run_)

    def test_outputs_in_a_kept_temporary_directory(self):
        r = self.run_
        self.assertIsInstance(r, kvsim.Run)
        self.assertTrue((r.dir / "summary.json").is_file())
        self.assertTrue(str(r.dir).startswith(tempfile.gettempdir()))
        argv = r.command
        self.assertEqual(argv[1:3], ["run", str(QUICKSTART)])
        self.assertEqual(argv[argv.index("--out") + 1], str(r.dir))
        self.assertIn("-q", argv)
        self.assertNotIn("--force", argv)
        self.assertEqual(argv[argv.index("--set") + 1], "workload.max_requests=50")

    def test_requests_has_one_numeric_row_per_completed_request(self):
        s, df = self.run_.summary, self.run_.requests
        self.assertEqual(s["requests_total"], 50)
        self.assertGreater(s["requests_completed"], 0)
        self.assertEqual(len(df), s["requests_completed"])
        self.assertEqual(list(df.columns), REQUEST_COLUMNS)
        for column in REQUEST_COLUMNS:
            self.assertTrue(ptypes.is_numeric_dtype(df[column]), column)
        for column in ("id", "replica", "prompt_tokens", "output_tokens", "preemptions"):
            self.assertTrue(ptypes.is_integer_dtype(df[column]), column)
        self.assertTrue(df["id"].is_unique)
        self.assertTrue((df["first_token_s"] >= df["arrival_s"]).all())
        self.assertTrue((df["finish_s"] >= df["first_token_s"]).all())

    def test_latencies_from_requests_match_summary(self):
        s, df = self.run_.summary, self.run_.requests
        ttft = df["first_token_s"] - df["arrival_s"]
        self.assertAlmostEqual(ttft.mean(), s["ttft_s"]["mean"], delta=1e-9 + 1e-9 * ttft.mean())
        e2e = (df["finish_s"] - df["arrival_s"]).tolist()
        queue = (df["first_scheduled_s"] - df["arrival_s"]).tolist()
        for q, key in ((0.5, "p50"), (0.9, "p90"), (0.99, "p99")):
            self.assertAlmostEqual(nearest_rank(ttft.tolist(), q), s["ttft_s"][key], delta=1e-9)
            self.assertAlmostEqual(nearest_rank(e2e, q), s["e2e_s"][key], delta=1e-9)
            self.assertAlmostEqual(nearest_rank(queue, q), s["queue_s"][key], delta=1e-9)

    def test_summary_row_is_flat(self):
        s, row = self.run_.summary, self.run_.summary_row
        self.assertEqual(len(row), 1)
        self.assertEqual(row.loc[0, "ttft_s.p99"], s["ttft_s"]["p99"])
        self.assertEqual(row.loc[0, "kv.peak_allocated_bytes"], s["kv"]["peak_allocated_bytes"])
        self.assertEqual(row.loc[0, "scenario.model"], s["scenario"]["model"])
        self.assertEqual(row.loc[0, "requests_completed"], s["requests_completed"])
        for column in row.columns:
            self.assertNotIsInstance(row.loc[0, column], dict, column)

    def test_timeseries_interval_layout_agrees_with_summary(self):
        r = self.run_
        self.assertEqual(r.timeseries_layout, "interval")
        ts = r.timeseries
        self.assertEqual(list(ts.columns), INTERVAL_COLUMNS)
        for column in INTERVAL_COLUMNS:
            self.assertTrue(ptypes.is_numeric_dtype(ts[column]), column)
        self.assertEqual(ts["iterations"].sum(), r.summary["batch"]["iterations"])
        self.assertEqual(ts["max_running"].max(), r.summary["batch"]["max_running"])
        self.assertEqual(ts["peak_allocated_bytes"].max(), r.summary["kv"]["peak_allocated_bytes"])

    def test_config_is_the_resolved_yaml(self):
        self.assertRegex(self.run_.config, r"max_requests:\s*50\b")

    def test_load_gives_the_same_run(self):
        loaded = kvsim.load(self.run_.dir)
        self.assertIsInstance(loaded, kvsim.Run)
        self.assertEqual(json.dumps(loaded.summary, sort_keys=True),
                         json.dumps(self.run_.summary, sort_keys=True))
        pd.testing.assert_frame_equal(loaded.requests, self.run_.requests)
        pd.testing.assert_frame_equal(loaded.timeseries, self.run_.timeseries)


class RunOptionsTest(unittest.TestCase):
    def test_set_values_reach_kvsim(self):
        r = kvsim.run(QUICKSTART, out=WORK / "options",
                      set={"workload.max_requests": 30, "output.requests_csv": False,
                           "output.timeseries_interval_s": 0, "kv_cache.type": "vattention",
                           "kv_cache.page_bytes": "64KiB"})
        self.assertEqual(r.dir, WORK / "options")
        self.assertEqual(r.summary["requests_total"], 30)
        self.assertEqual(r.summary["kv_manager"], "vattention")
        self.assertEqual(r.summary["vattention"]["page_bytes"], 64 * 1024)
        self.assertIsNone(r.requests)
        self.assertFalse((r.dir / "requests.csv").exists())
        self.assertEqual(r.timeseries_layout, "iteration")
        ts = r.timeseries
        self.assertEqual(list(ts.columns), ITERATION_COLUMNS)
        self.assertEqual(len(ts), r.summary["batch"]["iterations"])
        self.assertEqual(ts["running"].max(), r.summary["batch"]["max_running"])
        self.assertEqual(ts["allocated_bytes"].max(), r.summary["kv"]["peak_allocated_bytes"])

    def test_unknown_set_key_is_an_input_error(self):
        out = WORK / "bad_key"
        with self.assertRaises(kvsim.KvsimError) as caught:
            kvsim.run(QUICKSTART, out=out, set={"workload.no_such_key": 1})
        e = caught.exception
        self.assertIsInstance(e, kvsim.KvsimInputError)
        self.assertEqual(e.returncode, 2)
        self.assertIn("workload.no_such_key", e.stderr)
        self.assertIn("workload.no_such_key", str(e))
        self.assertTrue(e.stderr.startswith("kvsim: error: "), e.stderr)
        self.assertFalse(out.exists())

    def test_bad_value_names_its_key(self):
        with self.assertRaises(kvsim.KvsimError) as caught:
            kvsim.run(QUICKSTART, out=WORK / "bad_value", set={"kv_cache.type": "no_such_manager"})
        self.assertEqual(caught.exception.returncode, 2)
        self.assertIn("kv_cache.type", caught.exception.stderr)

    def test_missing_config_is_an_input_error(self):
        with self.assertRaises(kvsim.KvsimError) as caught:
            kvsim.run(WORK / "no_such_config.yaml")
        self.assertEqual(caught.exception.returncode, 2)
        self.assertIn("no_such_config.yaml", str(caught.exception))

    def test_force_replaces_an_earlier_run(self):
        if not binary_supports_force():
            self.skipTest("this kvsim has no --force option")
        out = WORK / "forced"
        first = kvsim.run(QUICKSTART, out=out, set={"workload.max_requests": 20})
        self.assertEqual(first.summary["requests_total"], 20)
        with self.assertRaises(kvsim.KvsimError) as caught:
            kvsim.run(QUICKSTART, out=out, set={"workload.max_requests": 30})
        self.assertEqual(caught.exception.returncode, 2)
        self.assertEqual(kvsim.load(out).summary["requests_total"], 20)
        second = kvsim.run(QUICKSTART, out=out, set={"workload.max_requests": 30}, force=True)
        self.assertIn("--force", second.command)
        self.assertEqual(second.summary["requests_total"], 30)
        self.assertEqual(kvsim.load(out).summary["requests_total"], 30)


class NullTest(unittest.TestCase):
    """A trace whose every prompt exceeds max_model_len: every request is rejected, so the
    latency statistics have no values and kvsim writes null for them."""

    @classmethod
    def setUpClass(cls):
        cls.trace = WORK / "huge_prompts.csv"
        rows = [f"2023-11-16 18:15:{10 + 2 * i:02d}.0000000,900000,{20 + i}" for i in range(6)]
        cls.trace.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n" + "\n".join(rows) + "\n")
        cls.overrides = {"workload.trace": str(cls.trace), "workload.max_requests": 0}
        cls.run_ = kvsim.run(QUICKSTART, out=WORK / "nulls", set=cls.overrides)

    def test_kvsim_writes_null(self):
        with open(self.run_.dir / "summary.json") as f:
            raw = json.load(f)
        self.assertEqual(raw["requests_total"], 6)
        self.assertEqual(raw["requests_rejected"], 6)
        self.assertEqual(raw["requests_completed"], 0)
        self.assertIsNone(raw["ttft_s"]["p99"])

    def test_nulls_become_nan(self):
        s = self.run_.summary
        for metric in ("ttft_s", "tpot_s", "e2e_s", "queue_s"):
            for key in ("mean", "p50", "p90", "p99"):
                self.assertIsInstance(s[metric][key], float, f"{metric}.{key}")
                self.assertTrue(math.isnan(s[metric][key]), f"{metric}.{key}")
        row = self.run_.summary_row
        self.assertTrue(ptypes.is_float_dtype(row["ttft_s.p99"]))
        self.assertTrue(row["ttft_s.p99"].isna().all())
        self.assertTrue(row["e2e_s.mean"].isna().all())

    def test_empty_requests_are_still_numeric(self):
        df = self.run_.requests
        self.assertEqual(len(df), 0)
        self.assertEqual(list(df.columns), REQUEST_COLUMNS)
        for column in REQUEST_COLUMNS:
            self.assertTrue(ptypes.is_numeric_dtype(df[column]), column)

    def test_nulls_in_compare_become_nan(self):
        c = kvsim.compare(QUICKSTART, out=WORK / "nulls_compare", set=self.overrides, jobs=1)
        table = c.summaries
        self.assertTrue(ptypes.is_float_dtype(table["ttft_s.p99"]))
        self.assertTrue(table["ttft_s.p99"].isna().all())
        self.assertTrue((table["requests_completed"] == 0).all())


class CompareTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.compare_ = kvsim.compare(QUICKSTART, set=SMALL, jobs=1)

    @classmethod
    def tearDownClass(cls):
        forget(cls.compare_)

    def test_default_labels(self):
        c = self.compare_
        self.assertIsInstance(c, kvsim.Compare)
        self.assertEqual(c.labels, DEFAULT_LABELS)
        self.assertEqual(list(c.summaries.index), DEFAULT_LABELS)
        self.assertEqual(c.summaries.index.name, "label")
        self.assertEqual(c.command[1], "compare")
        for label, manager in zip(c.labels, c.summaries["kv_manager"]):
            self.assertTrue(label.startswith(manager), (label, manager))

    def test_each_label_is_a_run_matching_the_table(self):
        c = self.compare_
        table = c.summaries
        for label in c.labels:
            run = kvsim.load(c.dir / label)  # the label's own summary.json, not compare.json
            self.assertIsInstance(run, kvsim.Run)
            row = run.summary_row.iloc[0]
            for column in ("ttft_s.p99", "e2e_s.mean", "kv.peak_allocated_bytes",
                           "requests_completed", "batch.max_running"):
                self.assertTrue(same_number(row[column], table.loc[label, column]),
                                (label, column))
            self.assertEqual(len(c[label].requests), table.loc[label, "requests_completed"])

    def test_load(self):
        loaded = kvsim.load(self.compare_.dir)
        self.assertIsInstance(loaded, kvsim.Compare)
        self.assertEqual(loaded.labels, DEFAULT_LABELS)
        pd.testing.assert_frame_equal(loaded.summaries, self.compare_.summaries)


class SweepTest(unittest.TestCase):
    RATES = [4, 8.5]

    @classmethod
    def setUpClass(cls):
        cls.sweep_ = kvsim.sweep(QUICKSTART, cls.RATES, set={"workload.max_requests": 40}, jobs=1)

    @classmethod
    def tearDownClass(cls):
        forget(cls.sweep_)

    def test_one_row_per_label_and_rate(self):
        s = self.sweep_
        self.assertIsInstance(s, kvsim.Sweep)
        argv = s.command
        self.assertEqual(argv[argv.index("--rates") + 1], "4,8.5")
        table = s.summaries
        self.assertEqual(s.labels, DEFAULT_LABELS)
        self.assertEqual(len(table), len(self.RATES) * len(s.labels))
        self.assertEqual(list(table.columns[:2]), ["label", "rate_qps"])
        pairs = set(zip(table["label"], table["rate_qps"]))
        self.assertEqual(pairs, {(label, float(rate)) for label in s.labels for rate in self.RATES})
        self.assertTrue((table["scenario.rate_qps"] == table["rate_qps"]).all())
        self.assertTrue((table["requests_total"] == 40).all())

    def test_run_of_one_point(self):
        s = self.sweep_
        row = s.summaries.set_index(["label", "rate_qps"]).loc[("paged", 8.5)]
        point = s.run("paged", 8.5)
        self.assertTrue(point.dir.name.startswith("rate_"))
        self.assertEqual(point.dir.parent.name, "paged")
        from_disk = kvsim.load(point.dir)
        self.assertEqual(from_disk.summary["scenario"]["rate_qps"], 8.5)
        self.assertTrue(same_number(from_disk.summary["ttft_s"]["p99"], row["ttft_s.p99"]))
        self.assertIsNone(point.requests)  # sweeps write no CSVs
        self.assertIsNotNone(point.config)
        with self.assertRaises(KeyError):
            s.run("paged", 3)

    def test_load(self):
        loaded = kvsim.load(self.sweep_.dir)
        self.assertIsInstance(loaded, kvsim.Sweep)
        self.assertEqual(loaded.rates_qps, [float(r) for r in self.RATES])
        pd.testing.assert_frame_equal(loaded.summaries, self.sweep_.summaries)


# Llama-3-70B needs more than one H100's memory: the TP 1 candidates are infeasible.
PLAN = """\
scenario: {scenario}
set: {{workload.arrival.process: trace, model: Llama-3-70B}}
slo:
  ttft_s: {{p99: 2.0}}
target: {{qps: 20}}
search: {{initial_qps: 4, tolerance: 0.2, max_qps: 100, probe_requests: 200}}
candidates:
  gpus: [H100-SXM]
  tensor_parallel: [1, 4]
  kv_managers: [{{type: static}}, {{type: paged, block_tokens: 16}}]
  schedulers: [{{type: vllm, max_num_seqs: 256}}]
verify: false
"""


class PlanTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        plan_file = WORK / "small_plan.yaml"
        plan_file.write_text(PLAN.format(scenario=QUICKSTART))
        cls.plan_ = kvsim.plan(plan_file, out=WORK / "plan", jobs=1)

    def test_candidates(self):
        p = self.plan_
        self.assertIsInstance(p, kvsim.Plan)
        table = p.candidates
        self.assertEqual(len(table), 4)  # 1 GPU x 2 TP x 2 KV managers x 1 scheduler
        self.assertEqual(list(table["candidate"]), [c["candidate"] for c in p.plan["candidates"]])
        self.assertEqual(sorted(table["kv_manager"]), ["paged", "paged", "static", "static"])
        for column in ("max_qps_per_replica", "cost_per_hour", "ttft_p99_s", "replicas"):
            self.assertTrue(ptypes.is_numeric_dtype(table[column]), column)
        self.assertTrue(ptypes.is_bool_dtype(table["meets_slo"]))
        for column in ("candidate", "gpu", "kv_manager", "scheduler", "status", "binding_slo"):
            self.assertTrue(all(isinstance(v, str) for v in table[column]), column)
        self.assertIsInstance(p.recommendation, (dict, str))

    def test_infeasible_candidates_have_nan_not_zero(self):
        table, entries = self.plan_.candidates, self.plan_.plan["candidates"]
        statuses = dict(zip(table["tensor_parallel"], table["status"]))
        self.assertEqual(statuses[1], "infeasible")
        self.assertNotEqual(statuses[4], "infeasible")
        for row, entry in zip(table.itertuples(), entries):
            json_p99 = entry["latencies_at_max"]["ttft_s"]["p99"]
            if row.status == "infeasible":
                self.assertTrue(math.isnan(row.ttft_p99_s), row.candidate)
                self.assertTrue(math.isnan(json_p99), row.candidate)
            else:
                self.assertAlmostEqual(row.ttft_p99_s, json_p99, delta=1e-5 * json_p99)
                self.assertAlmostEqual(row.max_qps_per_replica, entry["max_qps_per_replica"],
                                       delta=1e-5 * entry["max_qps_per_replica"])

    def test_load(self):
        loaded = kvsim.load(self.plan_.dir)
        self.assertIsInstance(loaded, kvsim.Plan)
        pd.testing.assert_frame_equal(loaded.candidates, self.plan_.candidates)
        self.assertEqual(loaded.plan["target_qps"], 20)


class LoadErrorsTest(unittest.TestCase):
    def test_missing_directory(self):
        with self.assertRaises(FileNotFoundError):
            kvsim.load(WORK / "no_such_directory")

    def test_directory_of_other_files(self):
        d = WORK / "not_output"
        d.mkdir(exist_ok=True)
        (d / "notes.txt").write_text("x\n")
        with self.assertRaises(kvsim.OutputError):
            kvsim.load(d)

    def test_plan_without_csv(self):
        d = WORK / "half_plan"
        d.mkdir(exist_ok=True)
        (d / "plan.json").write_text("{}\n")
        with self.assertRaisesRegex(kvsim.OutputError, "plan.csv"):
            kvsim.load(d)

    def test_corrupt_summary_names_the_file(self):
        d = WORK / "corrupt"
        d.mkdir(exist_ok=True)
        (d / "summary.json").write_text('{"ttft_s": ')
        with self.assertRaisesRegex(kvsim.OutputError, "summary.json"):
            kvsim.load(d).summary


class ArgumentsTest(unittest.TestCase):
    """Argument lists and exit statuses, through a stand-in executable."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=WORK))
        self.record = self.dir / "argv.txt"

    def argv(self):
        return self.record.read_text().splitlines()

    def test_internal_error(self):
        fake = write_fake(self.dir / "kvsim", self.record, 3, "kvsim: internal error: boom")
        with self.assertRaises(kvsim.KvsimInternalError) as caught:
            kvsim.run("some.yaml", out=self.dir / "out", binary=fake)
        self.assertEqual(caught.exception.returncode, 3)
        self.assertIn("boom", caught.exception.stderr)
        self.assertIn("internal error", str(caught.exception))
        copy = pickle.loads(pickle.dumps(caught.exception))
        self.assertIsInstance(copy, kvsim.KvsimInternalError)
        self.assertEqual((copy.returncode, str(copy)), (3, str(caught.exception)))

    def test_run_arguments(self):
        fake = write_fake(self.dir / "kvsim", self.record, 2)
        out = self.dir / "out"
        with self.assertRaises(kvsim.KvsimInputError):
            kvsim.run("c.yaml", out=out, binary=fake,
                      set={"a.on": True, "a.off": False, "a.n": 8, "a.x": 2.5, "a.size": "64KiB",
                           "a.list": [1, "two"]})
        self.assertEqual(self.argv(), ["run", "c.yaml", "--out", str(out), "-q",
                                       "--set", "a.on=true", "--set", "a.off=false",
                                       "--set", "a.n=8", "--set", "a.x=2.5",
                                       "--set", "a.size=64KiB", "--set", 'a.list=[1, "two"]'])
        with self.assertRaises(kvsim.KvsimInputError):
            kvsim.run("c.yaml", out=out, binary=fake, force=True)
        self.assertEqual(self.argv().count("--force"), 1)

    def test_compare_sweep_plan_arguments(self):
        fake = write_fake(self.dir / "kvsim", self.record, 2)
        with self.assertRaises(kvsim.KvsimError):
            kvsim.compare("c.yaml", binary=fake, jobs=2)
        argv = self.argv()
        self.assertEqual(argv[:2], ["compare", "c.yaml"])
        self.assertEqual(argv[argv.index("--jobs") + 1], "2")
        self.assertNotIn("--force", argv)
        # out=None: the temporary directory of a failed call is removed.
        self.assertFalse(Path(argv[argv.index("--out") + 1]).parent.exists())
        with self.assertRaises(kvsim.KvsimError):
            kvsim.sweep("c.yaml", [1, 2, 0.25], binary=fake, force=True)
        argv = self.argv()
        self.assertEqual(argv[argv.index("--rates") + 1], "1,2,0.25")
        self.assertIn("--force", argv)
        with self.assertRaises(kvsim.KvsimError):
            kvsim.plan("p.yaml", binary=fake)
        self.assertEqual(self.argv()[:2], ["plan", "p.yaml"])

    def test_bad_arguments_are_refused_before_running(self):
        fake = write_fake(self.dir / "kvsim", self.record, 0)
        with self.assertRaises(ValueError):
            kvsim.run("c.yaml", binary=fake, set={"a=b": 1})
        with self.assertRaises(TypeError):
            kvsim.run("c.yaml", binary=fake, set=["a.b=1"])
        with self.assertRaises(ValueError):
            kvsim.sweep("c.yaml", [], binary=fake)
        self.assertFalse(self.record.exists())

    def test_yaml_values(self):
        self.assertEqual(kvsim.yaml_value(True), "true")
        self.assertEqual(kvsim.yaml_value(False), "false")
        self.assertEqual(kvsim.yaml_value(None), "null")
        self.assertEqual(kvsim.yaml_value(0.1), "0.1")
        self.assertEqual(kvsim.yaml_value(float("inf")), ".inf")
        self.assertEqual(kvsim.yaml_value(Path("/a/b")), "/a/b")
        self.assertEqual(kvsim.yaml_value({"label": "p32", "n": 3}), '{"label": "p32", "n": 3}')
        try:
            import numpy as np
        except ImportError:
            return
        self.assertEqual(kvsim.yaml_value(np.bool_(True)), "true")
        self.assertEqual(kvsim.yaml_value(np.int64(7)), "7")
        self.assertEqual(kvsim.yaml_value(np.float64(1.5)), "1.5")


class FindBinaryTest(unittest.TestCase):
    """The search order of find_binary, on copies of the package in made-up layouts, each
    checked in a fresh interpreter without $KVSIM_BINARY."""

    def setUp(self):
        self.dir = Path(tempfile.mkdtemp(dir=WORK))
        self.empty_path = self.dir / "empty_bin"
        self.empty_path.mkdir()

    def place_package(self, parent):
        parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(Path(kvsim.__file__).parent, parent / "kvsim",
                        ignore=shutil.ignore_patterns("__pycache__"))
        return parent

    def fake(self, path):
        path.parent.mkdir(parents=True, exist_ok=True)
        return write_fake(path, self.dir / "unused.txt", 0)

    def find(self, python_dir, path_dirs=(), binary_env=None):
        env = {k: v for k, v in os.environ.items() if k != "KVSIM_BINARY"}
        env.update(PYTHONPATH=str(python_dir), PYTHONDONTWRITEBYTECODE="1",
                   PATH=os.pathsep.join(str(p) for p in path_dirs) or str(self.empty_path))
        if binary_env is not None:
            env["KVSIM_BINARY"] = binary_env
        code = ("import kvsim\ntry:\n    print(kvsim.find_binary())\n"
                "except kvsim.BinaryNotFoundError as e:\n    print('NOT FOUND:', e)\n")
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, cwd=str(self.dir))
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout.strip()

    def test_source_tree_build(self):
        repo = self.dir / "repo"
        python_dir = self.place_package(repo / "tools" / "python")
        binary = self.fake(repo / "build" / "sim" / "kvsim")
        on_path = self.fake(self.dir / "pathbin" / "kvsim")
        self.assertEqual(self.find(python_dir, [on_path.parent]), str(binary.resolve()))

    def test_installed_prefix(self):
        prefix = self.dir / "prefix"
        python_dir = self.place_package(prefix / "share" / "kvsim" / "python")
        binary = self.fake(prefix / "bin" / "kvsim")
        on_path = self.fake(self.dir / "pathbin" / "kvsim")
        self.assertEqual(self.find(python_dir, [on_path.parent]), str(binary.resolve()))

    def test_path_then_nothing(self):
        python_dir = self.place_package(self.dir / "elsewhere")
        on_path = self.fake(self.dir / "pathbin" / "kvsim")
        self.assertEqual(self.find(python_dir, [on_path.parent]), str(on_path.resolve()))
        missing = self.find(python_dir)
        self.assertTrue(missing.startswith("NOT FOUND:"), missing)
        self.assertIn("KVSIM_BINARY", missing)

    def test_environment_and_argument_come_first(self):
        repo = self.dir / "repo"
        python_dir = self.place_package(repo / "tools" / "python")
        self.fake(repo / "build" / "sim" / "kvsim")
        chosen = self.fake(self.dir / "chosen" / "kvsim")
        self.assertEqual(self.find(python_dir, binary_env=str(chosen)), str(chosen.resolve()))
        wrong = self.find(python_dir, binary_env=str(self.dir / "no_such_kvsim"))
        self.assertTrue(wrong.startswith("NOT FOUND:"), wrong)
        self.assertIn("KVSIM_BINARY", wrong)
        other = self.fake(self.dir / "other" / "kvsim")
        self.assertEqual(kvsim.find_binary(other), other.resolve())
        with self.assertRaises(kvsim.BinaryNotFoundError):
            kvsim.find_binary(self.dir / "no_such_kvsim")


if __name__ == "__main__":
    unittest.main()
