"""Plan reports of plans with several scenarios (kvsim_report's inputs/plan_scenarios.py and
reports/plan_scenarios.py), on the committed outputs of a small two-scenario plan,
tests/data/report/plan_scenarios/ (made by kvsim from tests/data/report/plan_scenarios.yaml: one
GPU, two KV managers, one scheduler, 200 requests per probe, chat at 30 QPS and code at 4 QPS on
separate fleets): the reader against the JSON, the report's scenarios, combine rule, ranked
candidates with their combined cost, per-scenario sizing and verification, charts and page width
in headless Chromium; a one-fleet plan made by kvsim at test time; and broken inputs, each error
naming the file and key.

Run with Debian's interpreter (it has matplotlib):
  KVSIM_BINARY=build/sim/kvsim KVSIM_SOURCE_DIR=. /usr/bin/python3 -m unittest discover \
      -s tests/report -p "test_plan_scenarios.py" -v
"""

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import test_report  # noqa: E402 - its Chromium helpers

SOURCE = os.path.abspath(os.environ.get("KVSIM_SOURCE_DIR") or os.path.dirname(os.path.dirname(
    HERE)))
SCRIPT = os.path.join(SOURCE, "tools", "report", "kvsim_report.py")
FIXTURE = os.path.join(SOURCE, "tests", "data", "report", "plan_scenarios")
FIXTURE_PLAN = os.path.join(SOURCE, "tests", "data", "report", "plan_scenarios.yaml")
HEADINGS = ["Scenarios", "Recommendation", "Candidates", "Max QPS per replica", "Cost per hour",
            "Cost against p99 TTFT", "KV manager savings"]

WORK = None


def setUpModule():
    global WORK
    WORK = tempfile.mkdtemp(prefix="kvsim_plan_scenarios_test_")


def tearDownModule():
    if WORK:
        shutil.rmtree(WORK, ignore_errors=True)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def report(directory):
    return subprocess.run([sys.executable, SCRIPT, directory], capture_output=True, text=True,
                          timeout=120)


def fixture_copy(name, keep_manifest=True):
    """A copy of the fixture directory under WORK (reports write into the directory they
    report); without manifest.json when its files are to be edited."""
    d = os.path.join(WORK, name)
    shutil.copytree(FIXTURE, d)
    if not keep_manifest:
        os.remove(os.path.join(d, "manifest.json"))
    return d


def package():
    """The kvsim_report package's modules the tests call: (plan_scenarios reader, InputError)."""
    directory = os.path.dirname(SCRIPT)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    import importlib
    reader = importlib.import_module("kvsim_report.inputs.plan_scenarios")
    plan = importlib.import_module("kvsim_report.inputs.plan")
    errors = importlib.import_module("kvsim_report.errors")
    return reader, plan, errors.InputError


def cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def md_rows(md, first_cell):
    """The cells of every Markdown table row of `md` whose first cell is `first_cell`."""
    return [c for c in (cells(line) for line in md.splitlines() if line.startswith("| "))
            if c[0] == first_cell]


def md_table(md, headers):
    """The rows (lists of cells) of the one Markdown table of `md` whose header is `headers`."""
    lines = md.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("| ")
              and cells(line) == headers]
    if len(starts) != 1:
        raise AssertionError(f"{len(starts)} tables headed {headers}")
    rows = []
    for line in lines[starts[0] + 2:]:
        if not line.startswith("| "):
            break
        rows.append(cells(line))
    return rows


SIZING = ["scenario", "target (req/s)", "QPS / replica", "binding SLO", "replicas (sizing)",
          "replicas (whole-fleet check)", "whole-fleet check"]
LATENCY = ["scenario", "TTFT p99, one replica (s)", "TTFT p99, whole fleet (s)",
           "TBT p99, one replica (ms)", "TBT p99, whole fleet (ms)", "E2E p99, one replica (s)",
           "E2E p99, whole fleet (s)"]
BRIEF = ["candidate", "meets SLOs", "QPS / replica", "binding SLO", "replicas x GPUs", "$/hour",
         "TTFT p99 (s)", "Pareto"]
ALONE = ["candidate", "scenario", "meets SLOs", "QPS / replica", "binding SLO", "replicas",
         "$/hour", "TTFT p99 (s)", "note"]


class ReaderTest(unittest.TestCase):
    """read_plan_scenarios gives plan.json's values."""

    @classmethod
    def setUpClass(cls):
        reader, plan, _ = package()
        cls.raw = json.loads(read(os.path.join(FIXTURE, "plan.json")))
        cls.root = plan.load_plan_json(FIXTURE)
        cls.plan = reader.read_plan_scenarios(FIXTURE, cls.root)

    def test_scenarios_and_combine(self):
        reader, _, _ = package()
        self.assertTrue(reader.is_scenarios_plan(self.root))
        self.assertEqual(self.plan["combine"], "separate_fleets")
        self.assertEqual([(s["name"], s["target"]) for s in self.plan["scenarios"]],
                         [("chat", 30.0), ("code", 4.0)])
        self.assertEqual([s["target"] for s in self.plan["scenarios"]],
                         [s["target_qps"] for s in self.raw["scenarios"]])
        code = self.plan["scenarios"][1]
        self.assertTrue(code["scenario"]["trace"].endswith("AzureLLMInferenceTrace_code.csv"))
        self.assertEqual(code["scenario"]["probe_requests"], 200)
        self.assertEqual(code["slo"]["ttft_s"], {"p99": 4.0})
        self.assertEqual(code["slo_applied"], self.raw["scenarios"][1]["slo_applied"])

    def test_candidates_by_scenario_are_the_json_s(self):
        self.assertEqual(len(self.plan["cands"]), 2)
        for c, raw in zip(self.plan["cands"], self.raw["candidates"]):
            self.assertEqual(c["candidate"], raw["candidate"])
            self.assertEqual(c["scenario"], raw["scenario"])
            self.assertEqual(c["cost_per_hour"], raw["cost_per_hour"])
            self.assertEqual([(b["scenario"], b["replicas"], b["max_qps_per_replica"],
                               b["binding_slo"]) for b in c["by"]],
                             [(b["scenario"], b["replicas"], b["max_qps_per_replica"],
                               b["binding_slo"]) for b in raw["by_scenario"]])
            self.assertEqual(c["replicas"], sum(b["replicas"] for b in c["by"]))  # separate

    def test_recommendation_checks_are_the_json_s(self):
        rec, raw = self.plan["rec"], self.raw["recommendation"]
        self.assertEqual((rec["candidate"], rec["replicas"], rec["estimated_replicas"]),
                         (raw["candidate"], raw["replicas"], raw["estimated_replicas"]))
        self.assertEqual([(c["scenario"], c["replicas"], c["verified"], c["verify_replicas"],
                           c["verify_requests_completed"]) for c in rec["checks"]],
                         [(c["scenario"], c["replicas"], c["verified"], c["verify_replicas"],
                           c["verify_requests_completed"]) for c in raw["checks"]])
        self.assertEqual(rec["checks"][1]["verify"]["ttft_s"]["p99"],
                         raw["checks"][1]["verify_latencies"]["ttft_s"]["p99"])
        self.assertEqual(rec["by"], next(c["by"] for c in self.plan["cands"]
                                         if c["candidate"] == rec["candidate"]))

    def test_single_scenario_reader_still_needs_target_qps(self):
        _, plan, input_error = package()
        with self.assertRaisesRegex(input_error, r"plan\.json: target_qps: missing"):
            plan.read_plan(FIXTURE)


class ReportTest(unittest.TestCase):
    """The report of the fixture: its sections, scenarios, candidates and recommendation."""

    @classmethod
    def setUpClass(cls):
        cls.dir = fixture_copy("report")
        cls.result = report(cls.dir)
        cls.raw = json.loads(read(os.path.join(FIXTURE, "plan.json")))
        if cls.result.returncode == 0:
            cls.md = read(os.path.join(cls.dir, "report.md"))
            cls.page = read(os.path.join(cls.dir, "report.html"))

    def setUp(self):
        self.assertEqual(self.result.returncode, 0, self.result.stderr)
        self.assertEqual(self.result.stderr, "")

    def test_title_verdict_and_sections(self):
        self.assertTrue(self.md.startswith(
            "# kvsim plan: Llama-3-8B, chat 30 QPS, code 4 QPS, 2 candidates\n"), self.md[:200])
        for h in HEADINGS:
            self.assertIn(f"\n## {h}\n", self.md)
            self.assertIn(f"<h2>{h}</h2>", self.page)
        verdict = self.md.split("\n\n")[1]
        self.assertIn("Recommended: 6 x `H100-SXM/tp1/paged16/sarathi512-256seqs` (6 GPUs, "
                      "$23.70/hour) as separate fleets: chat at 30 req/s on 2 replicas and code "
                      "at 4 req/s on 4 replicas; a simulation of each scenario's whole fleet at "
                      "its load met its SLOs.", verdict)
        self.assertIn("The code scenario needs the most replicas", verdict)
        self.assertIn("code's stability SLO", verdict)
        self.assertIn("plan.json, plan.csv and plan_scenarios.csv", self.md)

    def test_scenarios_side_by_side_with_the_combine_rule(self):
        self.assertEqual(md_rows(self.md, "")[0], ["", "chat", "code"])
        self.assertEqual(md_rows(self.md, "target load"),
                         [["target load", "30 requests/s", "4 requests/s"]])
        trace = md_rows(self.md, "trace")[0]
        self.assertTrue(trace[1].endswith("AzureLLMInferenceTrace_conv.csv"), trace)
        self.assertTrue(trace[2].endswith("AzureLLMInferenceTrace_code.csv"), trace)
        model = md_rows(self.md, "model")[0]
        self.assertTrue(all(m.startswith("Llama-3-8B (card ") for m in model[1:]), model)
        slos = md_rows(self.md, "SLOs")[0]
        self.assertIn("ttft_s.p99 ≤ 2 s", slos[1])
        self.assertIn("ttft_s.p99 ≤ 4 s", slos[2])
        self.assertEqual(md_rows(self.md, "requests per probe"),
                         [["requests per probe", "200", "200"]])
        self.assertIn("Each scenario has its own fleet of the same deployment: replicas, GPUs "
                      "and cost per hour are the sums of the scenarios' fleets.", self.md)
        self.assertEqual(md_rows(self.md, "KV managers"), [["KV managers", "static, paged16"]])
        for s in self.raw["scenarios"]:
            for line in s["slo_applied"]:
                self.assertIn(f"- {line}\n", self.md)

    def test_recommendation_per_scenario_sizing_and_checks(self):
        self.assertIn("6 x `H100-SXM/tp1/paged16/sarathi512-256seqs` (6 GPUs, $23.70/hour): "
                      "separate fleets, 2 for chat + 4 for code; verified", self.md)
        rec = self.raw["recommendation"]
        chosen = next(c for c in self.raw["candidates"] if c["candidate"] == rec["candidate"])
        checks = {c["scenario"]: c for c in rec["checks"]}
        sizing = md_table(self.md, SIZING)
        self.assertEqual([r[:2] for r in sizing], [["chat", "30"], ["code", "4"]])
        for row, b in zip(sizing, chosen["by_scenario"]):
            check = checks[b["scenario"]]
            self.assertEqual(row[0], b["scenario"])
            self.assertEqual(row[4:6], [str(b["replicas"]), str(check["replicas"])])
            self.assertEqual(row[3], b["binding_slo"])
            self.assertEqual(float(row[2]), float(f"{b['max_qps_per_replica']:.4g}"))
            self.assertEqual(row[6], f"verified: {check['verify_replicas']} replicas, "
                                     f"{check['verify_requests_completed']:,} requests completed")
        self.assertEqual([r[4] for r in sizing], ["2", "4"])
        latency = md_table(self.md, LATENCY)
        for row, b in zip(latency, chosen["by_scenario"]):
            fleet = checks[b["scenario"]]["verify_latencies"]
            self.assertEqual(row[0], b["scenario"])
            self.assertEqual(row[1:3], [f"{b['latencies_at_max']['ttft_s']['p99']:.3f}",
                                        f"{fleet['ttft_s']['p99']:.3f}"])
            self.assertEqual(row[6], f"{fleet['e2e_s']['p99']:.3f}")

    def test_candidates_ranked_with_combined_cost(self):
        brief = md_table(self.md, BRIEF)
        by_cost = sorted(self.raw["candidates"], key=lambda c: c["cost_per_hour"])
        self.assertEqual([r[0] for r in brief], [c["candidate"] for c in by_cost])
        for c, row in zip(by_cost, brief):
            self.assertEqual(row[4], f"{c['replicas']} x 1")
            self.assertEqual(row[5], f"${c['cost_per_hour']:,.2f}")
            self.assertEqual(row[3], c["binding_slo"])
            self.assertEqual(c["replicas"], sum(b["replicas"] for b in c["by_scenario"]))
        self.assertEqual([r[4:6] for r in brief], [["6 x 1", "$23.70"], ["7 x 1", "$27.64"]])
        # each candidate on each scenario alone, folded away, in the same order
        alone = md_table(self.md, ALONE)
        self.assertEqual([(r[0], r[1], r[5], r[6]) for r in alone],
                         [(c["candidate"], b["scenario"], str(b["replicas"]),
                           f"${b['cost_per_hour']:,.2f}")
                          for c in by_cost for b in c["by_scenario"]])

    def test_charts_one_qps_chart_per_scenario(self):
        files = sorted(os.listdir(os.path.join(self.dir, "report_files")))
        self.assertEqual(files, ["plan_cost.png", "plan_max_qps_1.png", "plan_max_qps_2.png",
                                 "plan_pareto.png"])
        self.assertEqual(self.page.count("<img"), 4)
        self.assertIn("Max QPS per replica on chat", self.md)
        self.assertIn("Max QPS per replica on code", self.md)
        for name in files:
            self.assertIn(f"](report_files/{name})", self.md)

    def test_kvsim_report_command(self):
        binary = os.environ.get("KVSIM_BINARY")
        if not binary:
            self.skipTest("KVSIM_BINARY not set (ctest sets it)")
        d = fixture_copy("kvsim_report_command")
        r = subprocess.run([binary, "report", d], capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(read(os.path.join(d, "report.md")).replace(
            "`kvsim_report_command`", "`report`"), self.md)

    def test_tables_fit_the_page_and_charts_decode_in_chromium(self):
        chromium = test_report.CHROMIUM
        if not (os.path.isfile(chromium) and os.access(chromium, os.X_OK)):
            self.fail(f"{chromium} not found: install Debian's chromium package")
        copy = os.path.join(WORK, "measure.html")
        with open(copy, "w", encoding="utf-8") as f:
            f.write(self.page.replace("</body>",
                                      test_report.ChromiumRenderTest.MEASURE + "</body>"))
        with tempfile.TemporaryDirectory(prefix="chromium_") as profile:
            dom = subprocess.run(test_report.chromium_args(profile) + [
                "--window-size=1280,1000", "--dump-dom", "file://" + copy],
                capture_output=True, text=True, timeout=90)
        self.assertEqual(dom.returncode, 0, dom.stderr[-2000:])
        m = re.search(r"<html[^>]*>", dom.stdout)
        self.assertIsNotNone(m)
        attrs = dict(re.findall(r'(data-[a-z-]+)="([^"]*)"', m.group(0)))
        self.assertEqual(attrs.get("data-script-errors"), "0", attrs)
        self.assertEqual(attrs.get("data-images-loaded"), "4", attrs)
        self.assertEqual(attrs.get("data-too-wide"), "", attrs)
        self.assertLessEqual(int(attrs["data-page-width"]), int(attrs["data-window-width"]))


class OneFleetTest(unittest.TestCase):
    """The fixture's plan with `combine: one_fleet`, made by kvsim here: one fleet as large as
    the largest scenario's."""

    def test_one_fleet_report(self):
        binary = os.environ.get("KVSIM_BINARY")
        if not binary:
            self.skipTest("KVSIM_BINARY not set (ctest sets it)")
        text = read(FIXTURE_PLAN).replace("combine: separate_fleets", "combine: one_fleet")
        text = text.replace("../../../configs/", os.path.join(SOURCE, "configs") + "/")
        plan_file = os.path.join(WORK, "one_fleet.yaml")
        with open(plan_file, "w") as f:
            f.write(text)
        d = os.path.join(WORK, "one_fleet")
        r = subprocess.run([binary, "plan", plan_file, "--out", d, "-q"], capture_output=True,
                           text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr)
        raw = json.loads(read(os.path.join(d, "plan.json")))
        self.assertEqual(raw["combine"], "one_fleet")
        r = report(d)
        self.assertEqual(r.returncode, 0, r.stderr)
        md = read(os.path.join(d, "report.md"))
        self.assertIn("One fleet serves every scenario, each in turn", md)
        for c in raw["candidates"]:
            want = max(b["replicas"] for b in c["by_scenario"])
            self.assertEqual(c["replicas"], want)
            self.assertEqual(md_rows(md, c["candidate"])[0][4], f"{want} x 1")
        rec = raw["recommendation"]
        self.assertIn(f"{rec['replicas']} x `{rec['candidate']}`", md)
        self.assertIn("as one fleet serving chat at 30 req/s and code at 4 req/s in turn", md)
        sizing = ", ".join(f"{b['replicas']} for {b['scenario']}" for b in next(
            c for c in raw["candidates"] if c["candidate"] == rec["candidate"])["by_scenario"])
        self.assertIn(f"sized for the most any needs ({sizing})", md)


class BrokenInputTest(unittest.TestCase):
    """Broken multi-scenario inputs: exit status 2 and one line naming the file and key."""

    def broken(self, name, edit, csv_edit=None):
        """The script's result on a fixture copy whose plan.json `edit` changed (and whose
        plan_scenarios.csv text csv_edit changed)."""
        d = fixture_copy(name, keep_manifest=False)
        path = os.path.join(d, "plan.json")
        plan = json.loads(read(path))
        edit(plan)
        with open(path, "w") as f:
            json.dump(plan, f)
        if csv_edit:
            csv_path = os.path.join(d, "plan_scenarios.csv")
            text = csv_edit(read(csv_path))
            with open(csv_path, "w") as f:
                f.write(text)
        r = report(d)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1, r.stderr)
        self.assertFalse(os.path.exists(os.path.join(d, "report.md")))
        return d, r.stderr

    def test_missing_target_qps_of_the_second_scenario(self):
        d, err = self.broken("no_target", lambda p: p["scenarios"][1].pop("target_qps"))
        self.assertIn(f"{os.path.join(d, 'plan.json')}: scenarios[1].target_qps: missing", err)
        reader, plan, input_error = package()
        with self.assertRaisesRegex(input_error,
                                    re.escape(f"{d}/plan.json: scenarios[1].target_qps: missing")):
            reader.read_plan_scenarios(d, plan.load_plan_json(d))

    def test_unknown_combine_rule(self):
        _, err = self.broken("bad_combine", lambda p: p.update(combine="both"))
        self.assertIn("plan.json: combine: expected one of one_fleet, separate_fleets, got "
                      "'both'", err)

    def test_scenario_fields_are_required(self):
        _, err = self.broken("no_trace", lambda p: p["scenarios"][0]["scenario"].pop("trace"))
        self.assertIn("plan.json: scenarios[0].scenario.trace: missing", err)
        _, err = self.broken("bad_applied",
                             lambda p: p["scenarios"][1]["slo_applied"].append(3))
        self.assertIn("plan.json: scenarios[1].slo_applied[3]: expected a string, got 3", err)

    def test_duplicate_scenario_name(self):
        _, err = self.broken("twice", lambda p: p["scenarios"][1].update(name="chat"))
        self.assertIn("plan.json: scenarios[1].name: names another scenario again: 'chat'", err)

    def test_by_scenario_out_of_order(self):
        def swap(p):
            p["candidates"][0]["by_scenario"].reverse()
        _, err = self.broken("swapped", swap)
        self.assertIn("plan.json: candidates[0].by_scenario[0].scenario: expected 'chat' (the "
                      "scenarios' order), got 'code'", err)

    def test_by_scenario_missing_an_entry(self):
        _, err = self.broken("short", lambda p: p["candidates"][1]["by_scenario"].pop())
        self.assertIn("plan.json: candidates[1].by_scenario: 1 entries, expected one per "
                      "scenario (2)", err)

    def test_combined_replicas_must_add_up(self):
        _, err = self.broken("sum", lambda p: p["candidates"][1].update(replicas=5))
        self.assertIn("plan.json: candidates[1].replicas: 5, but separate_fleets of the "
                      "scenarios' replicas (2, 4) gives 6", err)

    def test_binding_scenario_must_be_a_scenario(self):
        _, err = self.broken("binding", lambda p: p["candidates"][0].update(scenario="batch"))
        self.assertIn("plan.json: candidates[0].scenario: names no scenario: 'batch'", err)

    def test_recommendation_checks(self):
        _, err = self.broken("no_checks", lambda p: p["recommendation"].pop("checks"))
        self.assertIn("plan.json: recommendation.checks: missing", err)
        _, err = self.broken("check_twice", lambda p: p["recommendation"]["checks"][1].update(
            scenario="chat"))
        self.assertIn("plan.json: recommendation.checks[1].scenario: a second check of 'chat'",
                      err)
        _, err = self.broken("check_field", lambda p: p["recommendation"]["checks"][0].update(
            verified="yes"))
        self.assertIn("plan.json: recommendation.checks[0].verified: expected true or false",
                      err)

    def test_plan_scenarios_csv_must_list_the_candidates_by_scenario(self):
        def drop_last_row(text):
            rows = list(csv.reader(io.StringIO(text)))
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerows(rows[:-1])
            return out.getvalue()
        d, err = self.broken("csv_short", lambda p: None, drop_last_row)
        self.assertIn(f"{os.path.join(d, 'plan_scenarios.csv')}: 3 rows, plan.json has 2 "
                      "candidates x 2 scenarios", err)


if __name__ == "__main__":
    unittest.main()
