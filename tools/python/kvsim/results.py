"""kvsim's output directories as Python objects holding pandas DataFrames.

Units follow kvsim's names: ``_s`` seconds (simulated time unless stated), ``_bytes`` bytes,
``_tokens`` tokens, ``_qps`` requests per second. A JSON ``null`` in kvsim's outputs is a
number with no value (for example a latency percentile of a run in which no request
finished); everywhere in this module it becomes ``float('nan')``, never 0 or None.
"""

import functools
import json
import math
from pathlib import Path

import pandas as pd

__all__ = ["OutputError", "Run", "Compare", "Sweep", "Plan", "load", "flatten"]


class OutputError(ValueError):
    """An output directory is not one kvsim writes, or one of its files cannot be read.
    The message names the directory or file."""


# Columns of requests.csv (one row per finished request, in the order they finished).
REQUEST_COLUMNS = {
    "id": "int64",
    "replica": "int64",
    "arrival_s": "float64",
    "first_scheduled_s": "float64",
    "first_token_s": "float64",
    "finish_s": "float64",
    "prompt_tokens": "int64",
    "output_tokens": "int64",
    "preemptions": "int64",
}

# timeseries.csv with output.timeseries_interval_s > 0: one row per replica per interval.
TIMESERIES_INTERVAL_COLUMNS = {
    "time_s": "float64",
    "replica": "int64",
    "interval_s": "float64",
    "iterations": "int64",
    "busy_s": "float64",
    "mean_running": "float64",
    "max_running": "int64",
    "max_waiting": "int64",
    "prefill_tokens": "int64",
    "decode_tokens": "int64",
    "mean_allocated_bytes": "int64",
    "peak_allocated_bytes": "int64",
    "mean_live_bytes": "int64",
    "mean_cached_bytes": "int64",
    "exposed_overhead_s": "float64",
}

# timeseries.csv with output.timeseries_interval_s: 0: one row per iteration.
TIMESERIES_ITERATION_COLUMNS = {
    "time_s": "float64",
    "replica": "int64",
    "duration_s": "float64",
    "running": "int64",
    "waiting": "int64",
    "prefill_tokens": "int64",
    "decode_tokens": "int64",
    "allocated_bytes": "int64",
    "live_bytes": "int64",
    "cached_bytes": "int64",
    "exposed_overhead_s": "float64",
}


# Text columns of plan.csv (the others are numbers or true/false).
PLAN_TEXT_COLUMNS = ("candidate", "gpu", "kv_manager", "scheduler", "status", "binding_slo",
                     "note")


def _nulls_to_nan(value):
    if value is None:
        return math.nan
    if isinstance(value, dict):
        return {k: _nulls_to_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nulls_to_nan(v) for v in value]
    return value


def _read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return _nulls_to_nan(json.load(f))
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise OutputError(f"{path}: cannot read JSON: {e}") from e


def _expect(value, kind, path, what):
    if not isinstance(value, kind):
        raise OutputError(f"{path}: {what} is not a JSON {kind.__name__}")
    return value


def _read_output(dir, name, kind, command):
    """DIR/name read as JSON of type `kind`; OutputError when `command` did not write it."""
    path = dir / name
    if not path.is_file():
        raise OutputError(f"{dir}: no {name}: not the output of kvsim {command}")
    return _expect(_read_json(path), kind, path, name)


def _read_csv(path, known_columns):
    """Reads a kvsim CSV; columns named in known_columns get their dtype (so an empty table
    still has numeric columns), any others are inferred."""
    try:
        with open(path, encoding="utf-8") as f:
            header = f.readline().rstrip("\r\n").split(",")
        dtypes = {c: known_columns[c] for c in header if c in known_columns}
        return pd.read_csv(path, dtype=dtypes)
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as e:
        raise OutputError(f"{path}: cannot read CSV: {e}") from e


def flatten(mapping, prefix=""):
    """Flattens nested dicts into one dict with dotted keys, e.g. ``{"ttft_s": {"p99": x}}``
    becomes ``{"ttft_s.p99": x}``. Lists are kept as values."""
    flat = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


class Run:
    """One simulated scenario: the outputs of ``kvsim run`` (also each label of a compare
    and each (label, rate) of a sweep).

    Attributes and properties (files are read on first access, then cached):

    - ``dir``: pathlib.Path of the output directory.
    - ``summary``: summary.json as a dict (nested as in the file; nulls are NaN). Latencies
      (``ttft_s``, ``tbt_s``, ``tpot_s``, ``e2e_s``, ``queue_s``) are dicts of ``mean``,
      ``p50``, ``p90``, ``p99`` in seconds; ``kv`` is in bytes per GPU.
    - ``summary_row``: summary.json as a one-row DataFrame with dotted column names
      (``ttft_s.p99``, ``kv.peak_allocated_bytes``, ``scenario.model``, ...).
    - ``requests``: requests.csv as a DataFrame, or None when the run wrote none
      (``output.requests_csv: false``, and every sweep point). One row per finished request
      in the order they finished; columns ``id``, ``replica``, ``arrival_s``,
      ``first_scheduled_s``, ``first_token_s``, ``finish_s`` (simulated seconds from the
      start of the run), ``prompt_tokens``, ``output_tokens``, ``preemptions``; all
      numeric. Rejected requests have no row. TTFT = first_token_s - arrival_s, E2E =
      finish_s - arrival_s, queueing = first_scheduled_s - arrival_s.
    - ``timeseries``: timeseries.csv as a DataFrame, or None when the run wrote none.
      ``timeseries_layout`` says which layout it has: ``"interval"`` (one row per replica
      per interval: time_s, replica, interval_s, iterations, busy_s, mean_running, ...,
      peak_allocated_bytes, ...) or ``"iteration"`` (one row per iteration: time_s,
      replica, duration_s, running, waiting, ..., allocated_bytes, ...).
    - ``config``: the resolved config.yaml as text (None if absent).
    - ``label``, ``rate_qps``: the compare/sweep label and the sweep rate, else None.
    """

    kind = "run"
    command = None  # the argument list that made it, when made by this module
    stderr = None

    def __init__(self, dir, *, label=None, rate_qps=None, summary=None):
        self.dir = Path(dir)
        self.label = label
        self.rate_qps = rate_qps
        if summary is None:
            if not (self.dir / "summary.json").is_file():
                raise OutputError(f"{self.dir}: no summary.json: not the output of a kvsim run")
        else:
            # Given by the compare.json or sweep.json that lists this run.
            if not self.dir.is_dir():
                raise OutputError(f"{self.dir}: missing (listed by its parent's JSON)")
            self.__dict__["summary"] = summary

    def __repr__(self):
        extra = "".join(f", {k}={v!r}" for k, v in (("label", self.label),
                                                    ("rate_qps", self.rate_qps)) if v is not None)
        return f"Run({str(self.dir)!r}{extra})"

    @functools.cached_property
    def summary(self):
        return _expect(_read_json(self.dir / "summary.json"), dict,
                       self.dir / "summary.json", "the summary")

    @property
    def summary_row(self):
        """summary.json flattened into a one-row DataFrame (dotted column names)."""
        return pd.DataFrame([flatten(self.summary)])

    @functools.cached_property
    def requests(self):
        path = self.dir / "requests.csv"
        return _read_csv(path, REQUEST_COLUMNS) if path.is_file() else None

    @functools.cached_property
    def timeseries(self):
        path = self.dir / "timeseries.csv"
        if not path.is_file():
            return None
        columns = (TIMESERIES_INTERVAL_COLUMNS if self._timeseries_header_has("interval_s")
                   else TIMESERIES_ITERATION_COLUMNS)
        return _read_csv(path, columns)

    @property
    def timeseries_layout(self):
        """``"interval"``, ``"iteration"``, or None when there is no timeseries.csv."""
        if not (self.dir / "timeseries.csv").is_file():
            return None
        return "interval" if self._timeseries_header_has("interval_s") else "iteration"

    def _timeseries_header_has(self, column):
        path = self.dir / "timeseries.csv"
        try:
            with open(path, encoding="utf-8") as f:
                return column in f.readline().rstrip("\r\n").split(",")
        except (OSError, UnicodeDecodeError) as e:
            raise OutputError(f"{path}: cannot read CSV: {e}") from e

    @functools.cached_property
    def config(self):
        path = self.dir / "config.yaml"
        return path.read_text(encoding="utf-8") if path.is_file() else None


class Compare:
    """The outputs of ``kvsim compare``: one run per entry of the config's compare list.

    - ``dir``: pathlib.Path of the output directory.
    - ``summaries``: DataFrame of the flattened summaries (columns as ``Run.summary_row``),
      one row per label, indexed by ``label`` in compare.json's order.
    - ``labels``: the labels, in that order.
    - ``runs``: dict label -> Run of ``DIR/<label>/``; also ``compare[label]``.
    - ``raw``: compare.json as parsed (a list of ``{label, summary}``; nulls are NaN).
    """

    kind = "compare"
    command = None  # the argument list that made it, when made by this module
    stderr = None

    def __init__(self, dir):
        self.dir = Path(dir)
        path = self.dir / "compare.json"
        self.raw = _read_output(self.dir, "compare.json", list, "compare")
        for entry in self.raw:
            if not (isinstance(entry, dict) and isinstance(entry.get("label"), str)
                    and isinstance(entry.get("summary"), dict)):
                raise OutputError(f"{path}: an entry is not {{label, summary}}")
        self.labels = [e["label"] for e in self.raw]
        self.runs = {e["label"]: Run(self.dir / e["label"], label=e["label"],
                                     summary=e["summary"]) for e in self.raw}

    def __repr__(self):
        return f"Compare({str(self.dir)!r}, labels={self.labels!r})"

    def __getitem__(self, label):
        return self.runs[label]

    @property
    def summaries(self):
        frame = pd.DataFrame([flatten(e["summary"]) for e in self.raw],
                             index=pd.Index(self.labels, name="label"))
        return frame


def _rate_dir(label_dir, rate):
    """DIR/<label>/rate_<qps>: kvsim names it with the shortest text of the rate, so the
    folder is matched by value rather than by re-creating the text."""
    best = None
    if label_dir.is_dir():
        for child in label_dir.iterdir():
            if not (child.is_dir() and child.name.startswith("rate_")):
                continue
            try:
                value = float(child.name[len("rate_"):])
            except ValueError:
                continue
            if math.isclose(value, rate, rel_tol=1e-8):
                if best is None or abs(value - rate) < abs(best[0] - rate):
                    best = (value, child)
    return None if best is None else best[1]


class Sweep:
    """The outputs of ``kvsim sweep``: every compare entry at every offered load.

    - ``dir``: pathlib.Path of the output directory.
    - ``summaries``: DataFrame with one row per (label, rate_qps): columns ``label``,
      ``rate_qps`` (the offered load asked for, requests/s), then the flattened summary
      (as ``Run.summary_row``); rows in sweep.json's order (label-major).
    - ``rates_qps``: the rates of --rates; ``labels``: the labels, in order.
    - ``run(label, rate_qps)``: the Run of ``DIR/<label>/rate_<qps>/`` (summary.json and
      config.yaml only: sweeps write no CSVs).
    - ``raw``: sweep.json as parsed (nulls are NaN).
    """

    kind = "sweep"
    command = None  # the argument list that made it, when made by this module
    stderr = None

    def __init__(self, dir):
        self.dir = Path(dir)
        path = self.dir / "sweep.json"
        self.raw = _read_output(self.dir, "sweep.json", dict, "sweep")
        runs = self.raw.get("runs")
        if not isinstance(runs, list) or not isinstance(self.raw.get("rates_qps"), list):
            raise OutputError(f"{path}: no 'rates_qps' and 'runs' lists")
        for entry in runs:
            if not (isinstance(entry, dict) and isinstance(entry.get("label"), str)
                    and isinstance(entry.get("rate_qps"), (int, float))
                    and isinstance(entry.get("summary"), dict)):
                raise OutputError(f"{path}: a run is not {{label, rate_qps, summary}}")
        self.rates_qps = [float(r) for r in self.raw["rates_qps"]]
        self.labels = list(dict.fromkeys(e["label"] for e in runs))

    def __repr__(self):
        return (f"Sweep({str(self.dir)!r}, labels={self.labels!r}, "
                f"rates_qps={self.rates_qps!r})")

    @property
    def summaries(self):
        rows = []
        for e in self.raw["runs"]:
            row = {"label": e["label"], "rate_qps": float(e["rate_qps"])}
            row.update(flatten(e["summary"]))
            rows.append(row)
        return pd.DataFrame(rows)

    def run(self, label, rate_qps):
        """The Run of one label at one offered load (matched within 1e-8 relative)."""
        for e in self.raw["runs"]:
            if e["label"] == label and math.isclose(float(e["rate_qps"]), rate_qps,
                                                    rel_tol=1e-8):
                folder = _rate_dir(self.dir / label, float(e["rate_qps"]))
                if folder is None:
                    raise OutputError(f"{self.dir / label}: no rate_ folder for {rate_qps:g} QPS")
                return Run(folder, label=label, rate_qps=float(e["rate_qps"]),
                           summary=e["summary"])
        raise KeyError(f"no run of label {label!r} at {rate_qps!r} QPS in {self.dir}")


class Plan:
    """The outputs of ``kvsim plan``.

    - ``dir``: pathlib.Path of the output directory.
    - ``candidates``: plan.csv as a DataFrame, one row per candidate (candidate, gpu,
      tensor_parallel, kv_manager, block_tokens, page_bytes, scheduler, status,
      max_qps_per_replica, max_qps_per_gpu, binding_slo, replicas, gpus, cost_per_hour
      (USD), cost_per_million_output_tokens (USD), ttft_p99_s, tbt_p99_s, e2e_p99_s at the
      highest passing rate, meets_slo, pareto, and whatever else this kvsim writes). A
      number with no value (an infeasible candidate's rate, an empty field) is NaN; an
      empty text field is "".
    - ``plan``: plan.json as a dict (nulls are NaN).
    - ``recommendation``: plan.json's recommendation: a dict (the chosen fleet, with
      ``verified``), or a string when no candidate meets the SLOs.
    """

    kind = "plan"
    command = None  # the argument list that made it, when made by this module
    stderr = None

    def __init__(self, dir):
        self.dir = Path(dir)
        if not (self.dir / "plan.csv").is_file() and (self.dir / "plan.json").is_file():
            raise OutputError(f"{self.dir}: no plan.csv: not the output of kvsim plan")
        self.plan = _read_output(self.dir, "plan.json", dict, "plan")

    def __repr__(self):
        return f"Plan({str(self.dir)!r})"

    @functools.cached_property
    def candidates(self):
        path = self.dir / "plan.csv"
        table = _read_csv(path, {name: "str" for name in PLAN_TEXT_COLUMNS})
        for name in PLAN_TEXT_COLUMNS:
            if name in table.columns:
                table[name] = table[name].fillna("")
        return table

    @property
    def recommendation(self):
        return self.plan.get("recommendation")


def load(dir):
    """Loads an existing kvsim output directory and returns a Compare (it holds
    compare.json), a Sweep (sweep.json), a Plan (plan.json and plan.csv) or a Run
    (summary.json), checked in that order. Raises FileNotFoundError when ``dir`` is not a
    directory, OutputError when it holds none of these."""
    path = Path(dir)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such directory")
    if (path / "compare.json").is_file():
        return Compare(path)
    if (path / "sweep.json").is_file():
        return Sweep(path)
    if (path / "plan.json").is_file() or (path / "plan.csv").is_file():
        return Plan(path)
    if (path / "summary.json").is_file():
        return Run(path)
    raise OutputError(f"{path}: not a kvsim output directory (no summary.json, compare.json, "
                      "sweep.json or plan.json)")
