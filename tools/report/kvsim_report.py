#!/usr/bin/python3
"""Turn a kvsim output directory into DIR/report.html, DIR/report.md and DIR/report_files/*.png.

Usage: /usr/bin/python3 tools/report/kvsim_report.py DIR

DIR is one of (detected in this order):
  plan dir         plan.json (+ plan.csv)                        written by `kvsim plan`
  sweep dir        sweep.json                                    written by `kvsim sweep`
  compare dir      compare.json and DIR/<label>/{requests,timeseries}.csv   `kvsim compare`
  run dir          summary.json, requests.csv, timeseries.csv               `kvsim run`
  calibration dir  profile.txt (tools/kvprobe/PROFILE_FORMAT.md)            kvprobe

Every fact in a report comes from the files kvsim wrote into DIR (JSON, CSV, manifest.json), so a
directory reports the same wherever it is moved and from whatever working directory. A run's
config.yaml is shown verbatim, never parsed. A CSV the directory's manifest.json does not list was
not written (output switched off, or a sweep point); a fact the JSON does not hold is reported as
"not recorded".

Each page opens with a verdict: one or two sentences stating the result, computed from the data
(the lowest and highest p99 TTFT of a comparison, the highest load each manager of a sweep
sustains, a plan's recommendation, its cost and the SLO that binds). Latency distributions are
complementary CDFs on a log scale with p50/p90/p99 marked; plan charts end their axes past the bulk
of the candidates and label the few beyond; tables wrap to the page width.

timeseries.csv has one row per iteration or, with output.timeseries_interval_s > 0, one row per
replica per interval; the layout is told from its header. The KV memory chart draws allocated and
live bytes, and cached bytes (kept for reuse, held for no running request) for runs that have any.

report.html is self-contained: the charts are embedded as base64 PNG data URIs. report.md
references the same charts under report_files/. Output is deterministic for given inputs.

Exit status: 0 on success; 2 for bad input (a missing or malformed file, named with its line
where there is one) or bad usage; 1 when the outputs cannot be written.
"""

import base64
import contextlib
import csv
import html
import json
import math
import os
import re
import sys

PROG = "kvsim_report"
GIB = 1024.0 ** 3
MIB = 1024.0 ** 2

# Section headings, per kind of directory (the tests check for them).
H_SCENARIO = "Scenario"
H_SUMMARY = "Summary"
H_COMPARISON = "Comparison"
H_KV_MEMORY = "KV memory over time"
H_BATCH = "Running batch over time"
H_LATENCY = "Latency distributions"
H_CONFIG = "Configuration"
H_SWEEP_TABLE = "Sweep results"
H_SWEEP_THROUGHPUT = "Throughput against offered load"
H_SWEEP_LATENCY = "p99 latency against offered load"
H_RECOMMENDATION = "Recommendation"
H_CANDIDATES = "Candidates"
H_PLAN_QPS = "Max QPS per replica"
H_PLAN_COST = "Cost per hour"
H_PLAN_PARETO = "Cost against p99 TTFT"
H_PLAN_SAVINGS = "KV manager savings"
H_VMM = "VMM call latency"
H_GEMM = "GEMM throughput"
H_DECODE = "Decode attention bandwidth"
H_PAGED = "Paged against contiguous attention"
H_VATTENTION = "vAttention mechanism"
H_ALLREDUCE = "All-reduce"


class InputError(Exception):
    """Bad input: printed as one line, exit status 2."""


class OutputError(Exception):
    """Outputs cannot be written: printed as one line, exit status 1."""


# ---------------------------------------------------------------------------
# Reading files


def read_text(path):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise InputError(f"{path}: missing")
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file")
    except OSError as e:
        raise InputError(f"{path}: cannot read: {e.strerror or e}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{path}:{line}: not UTF-8 text")


def _reject_constant(name):
    raise ValueError(f"{name} is not allowed")


def load_json(path):
    text = read_text(path)
    if not text.strip():
        raise InputError(f"{path}: empty file")
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}:{e.lineno}: not valid JSON: {e.msg}")
    except (ValueError, RecursionError) as e:
        raise InputError(f"{path}: not valid JSON: {e}")


class Node:
    """A JSON value with the file and key path it came from, for error messages."""

    def __init__(self, value, file, where=""):
        self.value = value
        self.file = file
        self.where = where

    def _fail(self, what):
        at = f" {self.where}:" if self.where else ""
        raise InputError(f"{self.file}:{at} {what}")

    def _child_where(self, key):
        if isinstance(key, int):
            return f"{self.where}[{key}]"
        return f"{self.where}.{key}" if self.where else key

    def has(self, key):
        return isinstance(self.value, dict) and key in self.value

    def __getitem__(self, key):
        if not isinstance(self.value, dict):
            self._fail("expected an object")
        if key not in self.value:
            Node(None, self.file, self._child_where(key))._fail("missing")
        return Node(self.value[key], self.file, self._child_where(key))

    def get(self, key):
        if isinstance(self.value, dict) and key in self.value:
            return Node(self.value[key], self.file, self._child_where(key))
        return None

    def items(self):
        if not isinstance(self.value, list):
            self._fail("expected a list")
        return [Node(v, self.file, self._child_where(i)) for i, v in enumerate(self.value)]

    def num(self, allow_null=False):
        v = self.value
        if v is None and allow_null:
            return float("nan")
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            self._fail(f"expected a number, got {_describe(v)}")
        if not math.isfinite(float(v)):
            self._fail("expected a finite number")
        return float(v)

    def nonneg(self):
        x = self.num()
        if x < 0:
            self._fail(f"expected a number >= 0, got {x:g}")
        return x

    def int(self):
        v = self.value
        if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
            self._fail(f"expected an integer, got {_describe(v)}")
        return int(v)

    def str(self):
        if not isinstance(self.value, str):
            self._fail(f"expected a string, got {_describe(self.value)}")
        return self.value

    def bool(self):
        if not isinstance(self.value, bool):
            self._fail(f"expected true or false, got {_describe(self.value)}")
        return self.value


def _describe(v):
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, str):
        return f"the string {json.dumps(v[:40])}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return repr(v)


def load_csv(path, columns, ints=(), texts=(), checks=None):
    """Reads a CSV with a header holding at least `columns`; returns {column: [values]}.

    Columns in `ints` are integers, those in `texts` strings, the rest finite floats. `checks`
    is a function (row dict) -> error text or None, applied to every row."""
    reader, header = open_csv(path)
    return read_csv_rows(path, reader, header, columns, ints, texts, checks)


def open_csv(path):
    """(a csv reader past the header, the header's stripped column names) of a CSV file."""
    text = read_text(path)
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        raise InputError(f"{path}:1: empty file (no CSV header)")
    reader = csv.reader(lines)
    try:
        header = [h.strip() for h in next(reader)]
    except csv.Error as e:
        raise InputError(f"{path}:1: bad CSV header: {e}")
    return reader, header


def read_csv_rows(path, reader, header, columns, ints=(), texts=(), checks=None):
    """The rows after the header of open_csv's `reader`, as load_csv returns them."""
    missing = [c for c in columns if c not in header]
    if missing:
        raise InputError(f"{path}:1: header lacks column(s) {', '.join(missing)}")
    index = {c: header.index(c) for c in columns}
    out = {c: [] for c in columns}
    lineno = 1
    try:
        for row in reader:
            lineno = reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            if len(row) != len(header):
                raise InputError(
                    f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
            parsed = {}
            for c in columns:
                field = row[index[c]].strip()
                try:
                    if c in texts:
                        value = field
                    elif c in ints:
                        value = int(field)
                    else:
                        value = float(field)
                        if not math.isfinite(value):
                            raise ValueError
                except ValueError:
                    kind = "an integer" if c in ints else "a finite number"
                    raise InputError(
                        f"{path}:{lineno}: column {c}: {field[:40]!r} is not {kind}")
                parsed[c] = value
            if checks:
                problem = checks(parsed)
                if problem:
                    raise InputError(f"{path}:{lineno}: {problem}")
            for c in columns:
                out[c].append(parsed[c])
    except csv.Error as e:
        raise InputError(f"{path}:{reader.line_num}: bad CSV: {e}")
    return out


# ---------------------------------------------------------------------------
# Formatting


def is_num(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def fnum(x, digits=3):
    if not is_num(x):
        return "—"
    return f"{x:.{digits}f}"


def fgen(x, sig=4):
    if not is_num(x):
        return "—"
    if x != 0 and (abs(x) >= 1e6 or abs(x) < 1e-3):
        return f"{x:.{sig - 1}e}"
    return f"{x:.{sig}g}" if abs(x) < 10 ** sig else f"{x:.0f}"


def fint(x):
    return f"{int(x):,}" if is_num(x) else "—"


def fbytes(b):
    if not is_num(b):
        return "—"
    for unit, size in (("TiB", 1024.0 ** 4), ("GiB", GIB), ("MiB", MIB), ("KiB", 1024.0)):
        if abs(b) >= size:
            v = b / size
            return f"{v:g} {unit}" if v == int(v) else f"{v:.2f} {unit}"
    return f"{b:g} B"


def fmoney(x):
    return f"${x:,.2f}" if is_num(x) else "—"


# ---------------------------------------------------------------------------
# The document: blocks rendered both to HTML and to Markdown.


class Doc:
    def __init__(self, title):
        self.title = title
        self.blocks = []
        self.charts = []  # (file name, png bytes)
        self._stack = []  # the block lists of open details elements

    def _add(self, block):
        (self._stack[-1] if self._stack else self.blocks).append(block)

    def verdict(self, text):
        """The page's opening sentences: the result, stated plainly."""
        self._add(("verdict", text))

    def h2(self, text):
        self._add(("h2", text))

    def h3(self, text):
        self._add(("h3", text))

    def p(self, text):
        self._add(("p", text))

    def note(self, text):
        self._add(("note", text))

    def bullets(self, items):
        self._add(("ul", list(items)))

    def table(self, headers, rows, right=None, small=False):
        """right: indices of right-aligned columns (default: all but the first); small: a
        smaller font, for tables of many columns."""
        if right is None:
            right = set(range(1, len(headers)))
        self._add(("table", list(headers), [list(r) for r in rows], set(right), small))

    def verbatim(self, text):
        """Text shown as it is (a file's content), in a monospaced block."""
        self._add(("pre", text))

    @contextlib.contextmanager
    def details(self, summary):
        """Blocks added inside `with doc.details(...)` are folded away under `summary`."""
        inner = []
        self._add(("details", summary, inner))
        self._stack.append(inner)
        try:
            yield
        finally:
            self._stack.pop()

    def chart(self, name, png, title, caption):
        self.charts.append((name, png))
        self._add(("img", name, png, title, caption))


def _md_escape(text):
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_blocks(blocks, out):
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out += [f"## {b[1]}", ""]
        elif kind == "h3":
            out += [f"### {b[1]}", ""]
        elif kind in ("p", "verdict"):
            out += [b[1], ""]
        elif kind == "note":
            out += [f"_{b[1]}_", ""]
        elif kind == "ul":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            headers, rows, right = b[1], b[2], b[3]
            out.append("| " + " | ".join(_md_escape(h) for h in headers) + " |")
            out.append("|" + "|".join("---:" if i in right else "---"
                                      for i in range(len(headers))) + "|")
            for r in rows:
                out.append("| " + " | ".join(_md_escape(c) for c in r) + " |")
            out.append("")
        elif kind == "pre":
            longest = max((len(m) for m in re.findall(r"`+", b[1])), default=0)
            fence = "`" * max(3, longest + 1)
            out += [fence, b[1].rstrip("\n"), fence, ""]
        elif kind == "details":
            out += [f"<details><summary>{html.escape(b[1])}</summary>", ""]
            _md_blocks(b[2], out)
            out += ["</details>", ""]
        elif kind == "img":
            name, _, title, caption = b[1], b[2], b[3], b[4]
            out += [f"![{title}](report_files/{name})", ""]
            if caption:
                out += [f"_{caption}_", ""]


def render_markdown(doc):
    out = [f"# {doc.title}", ""]
    _md_blocks(doc.blocks, out)
    return "\n".join(out).rstrip() + "\n"


# Tables never widen the page: text cells wrap (after a '/' first, anywhere if they must), wide
# tables use a smaller font, and each table sits in a container that scrolls sideways only as a
# last resort.
_STYLE = """
body{font-family:'DejaVu Sans',Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;
line-height:1.4;padding:0 16px}
h1{font-size:1.6em;border-bottom:2px solid #444;padding-bottom:4px}
h2{font-size:1.3em;margin-top:1.8em;border-bottom:1px solid #bbb}
h3{font-size:1.1em}
p.verdict{font-size:1.05em;background:#f3f6fa;border-left:4px solid #1f77b4;padding:8px 12px}
div.table-wrap{max-width:100%;overflow-x:auto;margin:8px 0 16px}
table{border-collapse:collapse;font-size:0.9em}
table.small{font-size:0.78em}
th,td{border:1px solid #ccc;padding:3px 8px;vertical-align:top}
td.w{overflow-wrap:anywhere}
table.small th,table.small td{padding:2px 5px}
th{background:#eee;text-align:left}
td.r{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
pre{background:#f7f7f7;border:1px solid #ddd;padding:8px;font-size:0.85em;
white-space:pre-wrap;overflow-wrap:anywhere}
details{margin:8px 0 16px}
summary{cursor:pointer;color:#1f4e79}
figure{margin:12px 0 24px}
figure img{max-width:100%;height:auto;border:1px solid #ddd}
figcaption{font-size:0.9em;color:#444;margin-top:4px}
p.note{font-size:0.9em;color:#555;font-style:italic}
"""

# Records script errors and, once every image has loaded, how many decoded (naturalWidth > 0).
_SCRIPT = """
(function(){
  var errors = [];
  function mark(){
    var root = document.documentElement;
    root.setAttribute('data-script-errors', String(errors.length));
    if (errors.length) root.setAttribute('data-script-error-text', errors.join(' | '));
  }
  window.onerror = function(msg, src, line){
    errors.push(String(msg) + ' at ' + line); mark(); return false;
  };
  window.addEventListener('error', function(e){ if (e.target && e.target.tagName === 'IMG') {
    errors.push('image failed to load: ' + (e.target.alt || '')); mark(); } }, true);
  mark();
  window.addEventListener('load', function(){
    var imgs = document.getElementsByTagName('img'), ok = 0;
    for (var i = 0; i < imgs.length; i++) {
      if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
    }
    var root = document.documentElement;
    root.setAttribute('data-images-total', String(imgs.length));
    root.setAttribute('data-images-loaded', String(ok));
    root.setAttribute('data-report-ready', '1');
    mark();
  });
})();
"""


def _cell_html(text):
    """A table cell's text, escaped, with a line-break opportunity after each '/' (candidate
    names and paths wrap there rather than mid-word)."""
    return html.escape(str(text)).replace("/", "/<wbr>")


def _text_td(text):
    """A text cell; one holding a word over 24 characters (between spaces and '/') may also
    break inside words, so that it cannot widen the table past the page."""
    long_word = max((len(w) for w in re.split(r"[\s/]+", str(text))), default=0) > 24
    return ('<td class="w">' if long_word else "<td>") + f"{_cell_html(text)}</td>"


def _html_blocks(blocks, out):
    e = html.escape
    for b in blocks:
        kind = b[0]
        if kind == "h2":
            out.append(f"<h2>{e(b[1])}</h2>")
        elif kind == "h3":
            out.append(f"<h3>{e(b[1])}</h3>")
        elif kind == "verdict":
            out.append(f'<p class="verdict">{_inline_html(b[1])}</p>')
        elif kind == "p":
            out.append(f"<p>{_inline_html(b[1])}</p>")
        elif kind == "note":
            out.append(f'<p class="note">{_inline_html(b[1])}</p>')
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            headers, rows, right, small = b[1], b[2], b[3], b[4]
            out.append('<div class="table-wrap"><table' + (' class="small"' if small else "")
                       + "><thead><tr>"
                       + "".join(f"<th>{_cell_html(h)}</th>" for h in headers)
                       + "</tr></thead><tbody>")
            for r in rows:
                cells = "".join(
                    (f'<td class="r">{e(str(c))}</td>' if i in right else _text_td(c))
                    for i, c in enumerate(r))
                out.append(f"<tr>{cells}</tr>")
            out.append("</tbody></table></div>")
        elif kind == "pre":
            out.append(f"<pre>{e(b[1])}</pre>")
        elif kind == "details":
            out.append(f"<details><summary>{e(b[1])}</summary>")
            _html_blocks(b[2], out)
            out.append("</details>")
        elif kind == "img":
            name, png, title, caption = b[1], b[2], b[3], b[4]
            width, height = png_size(png)
            data = base64.b64encode(png).decode("ascii")
            out.append(f'<figure id="{e(name[:-4])}"><img src="data:image/png;base64,{data}" '
                       f'alt="{e(title)}" width="{width}" height="{height}">'
                       f"<figcaption>{e(title)}" + (f". {_inline_html(caption)}" if caption else "")
                       + "</figcaption></figure>")


def render_html(doc):
    e = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{e(doc.title)}</title>", f"<style>{_STYLE}</style>",
           f"<script>{_SCRIPT}</script>", "</head>", "<body>", f"<h1>{e(doc.title)}</h1>"]
    _html_blocks(doc.blocks, out)
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _inline_html(text):
    """Escapes text; `code` spans become <code>."""
    parts = str(text).split("`")
    return "".join(html.escape(p) if i % 2 == 0 else f"<code>{html.escape(p)}</code>"
                   for i, p in enumerate(parts))


def png_size(png):
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        return 0, 0
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


# ---------------------------------------------------------------------------
# Charts (matplotlib is imported only once every input has been read and checked).

_plt = None


def plt():
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

# The percentiles the latency charts mark: (name, q); each is drawn where the fraction of
# requests above it, 1 - q, is at least 1/n (below that it is simply the slowest request).
CCDF_MARKS = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999))


def nearest_rank(sorted_values, q):
    """The nearest-rank q-quantile of ascending values (what summary.json reports)."""
    n = len(sorted_values)
    return sorted_values[min(n, max(1, math.ceil(q * n - 1e-9))) - 1]


def ccdf_points(values, max_points=4000, tail=2000):
    """(xs, ys) of the complementary CDF, the fraction of values above x, as a step function to
    draw with where='post': it starts at 1 before the smallest value and ends at 0 at the largest.
    Beyond max_points values the `tail` largest are kept exactly and the rest sampled evenly."""
    vals = sorted(values)
    n = len(vals)
    if not n:
        return [], []
    if n > max_points:
        body = n - tail
        keep = max_points - tail
        idx = sorted(set(round(i * (body - 1) / (keep - 1)) for i in range(keep))
                     | set(range(body, n)))
    else:
        idx = range(n)
    xs = [vals[0]] + [vals[i] for i in idx]
    ys = [1.0] + [(n - 1 - i) / n for i in idx]
    return xs, ys


def sig3(x):
    """x to three significant digits, trailing zeros kept (0.0500, 6.00, 183)."""
    if not is_num(x):
        return "—"
    if abs(x) >= 1000:
        return f"{x:.0f}"
    text = f"{x:#.3g}"
    if "e" in text:
        return f"{x:.2e}"
    return text.rstrip(".")


def plot_ccdf(ax, series, unit=""):
    """Draws complementary CDFs of series [(label, color, values)] on `ax`, log-scaled in y (and in
    x where the values span more than 30x), each with its p50/p90/p99 marked in its own marker and
    line style. Returns {"bottom": y floor, "marks": {label: {name: x}}, "n": {label: count}}."""
    present = [(i, s) for i, s in enumerate(series) if len(s[2])]
    info = {"bottom": None, "marks": {}, "n": {label: len(v) for label, _, v in series}}
    if not present:
        ax.text(0.5, 0.5, "no completed requests", ha="center", va="center",
                transform=ax.transAxes)
        ax.set_yscale("log")
        ax.set_ylim(1e-2, 1.3)
        return info
    n_max = max(len(s[2]) for _, s in present)
    # A decade below the smallest fraction the data can show (1/n), so the slowest request's
    # step is visible; the final drop to 0 is drawn to this floor.
    bottom = 10.0 ** math.floor(math.log10(0.5 / n_max))
    info["bottom"] = bottom
    ax.set_yscale("log")
    levels = [(name, q) for name, q in CCDF_MARKS if 1 - q >= 1.0 / n_max - 1e-12]
    for name, q in levels:
        ax.axhline(1 - q, color="#999", lw=0.8, ls=(0, (2, 3)), zorder=1)
        ax.text(1.005, 1 - q, name, transform=ax.get_yaxis_transform(), va="center",
                fontsize=8, color="#555")
    every = []
    for k, (i, (label, c, values)) in enumerate(present):
        vals = sorted(values)
        n = len(vals)
        xs, ys = ccdf_points(vals)
        ys = [y if y > 0 else bottom for y in ys]
        every += [vals[0], vals[-1]]
        marks = {name: nearest_rank(vals, q) for name, q in CCDF_MARKS[:3]}
        info["marks"][label] = marks
        text = ", ".join(f"{name} {sig3(marks[name])}" for name in ("p50", "p90", "p99")) + \
            (f" {unit}" if unit else "")
        marker = MARKERS[i % len(MARKERS)]
        ax.step(xs, ys, where="post", color=c, lw=1.6, ls=LINESTYLES[i % len(LINESTYLES)],
                label=f"{label} (n={n:,}; {text})", zorder=3)
        shown = [(nearest_rank(vals, q), 1 - q) for name, q in levels if n * (1 - q) >= 1 - 1e-9]
        if shown:
            ax.plot([x for x, _ in shown], [y for _, y in shown], ls="none", marker=marker,
                    ms=6.5, color=c, markeredgecolor="#222", markeredgewidth=0.6, zorder=4)
    _log_if_wide(ax, every, ratio=30.0)
    ax.set_ylim(bottom, 1.3)
    ax.legend(loc="lower left", fontsize=8)
    return info


def chart_ccdf(series, title, xlabel, unit="", note=None):
    """A complementary CDF chart of series [(label, color, values)], as PNG bytes."""
    fig, ax = plt().subplots(figsize=(9, 4.8))
    plot_ccdf(ax, series, unit)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of requests above x (log)")
    if note:
        fig.text(0.01, -0.02, note, fontsize=8, color="#444", va="top")
    return fig_to_png(fig)


# ---------------------------------------------------------------------------
# Verdicts: the sentences each page opens with, computed from the JSON kvsim wrote.
# Values that read the same at three significant digits count as tied.

# A load is sustained while p99 TTFT stays within this factor of its lowest-load value.
SWEEP_TTFT_FACTOR = 5.0


def _names(items):
    """'a', 'a and b', 'a, b and c'."""
    items = [str(i) for i in items]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _secs(x):
    return f"{fgen(x, 3)} s"


def _rate(x):
    return f"{fgen(x, 3)} req/s"


def _same(a, b):
    return f"{a:.3g}" == f"{b:.3g}"


def _ties(items, key, pick):
    """The items whose key reads the same as pick() of all keys (min or max)."""
    best = pick(key(it) for it in items)
    return [it for it in items if _same(key(it), best)]


def has_latency(s):
    """Whether a summary has request latencies (none without completed requests: JSON null)."""
    return s["requests_completed"] > 0 and is_num(s["ttft_s"]["p99"])


def is_overloaded(s):
    return s["load"] is not None and s["load"]["overloaded"]


def offered_rate(s):
    """The offered load of a run: the configured rate, else the measured arrival rate; None if
    neither is recorded."""
    rate = s["scenario"]["rate_qps"]
    if is_num(rate) and rate > 0:
        return rate
    if s["load"] is not None and is_num(s["load"]["offered_qps"]) and s["load"]["offered_qps"] > 0:
        return s["load"]["offered_qps"]
    return None


def _queueing_text(s):
    ld = s["load"]
    return (f"requests arriving in the last quarter queued {_secs(ld['queue_last_quarter_s'])} "
            f"on average against {_secs(ld['queue_first_quarter_s'])} in the first")


def paged_base(runs):
    """The run ratios are taken to: the one labelled paged, else the first paged one, else
    None."""
    for r in runs:
        if r["label"] == "paged":
            return r
    for r in runs:
        if r["summary"]["kv_manager"] == "paged":
            return r
    return None


def verdict_run(label, s):
    total, done = s["requests_total"], s["requests_completed"]
    rejected = s["requests_rejected"] or 0
    rej = f" ({fint(rejected)} rejected: prompt at least max_model_len)" if rejected else ""
    if not has_latency(s):
        return (f"{label} completed none of its {fint(total)} requests{rej}, so it has no latency "
                "statistics.")
    rate = offered_rate(s)
    offered = f" offered at {_rate(rate)}" if rate else ""
    first = (f"{label} completed {fint(done)} of {fint(total)} requests{offered}{rej} "
             f"({_rate(s['requests_per_s'])} over the whole run, the last requests' drain "
             f"included), with p99 TTFT {_secs(s['ttft_s']['p99'])} and p99 E2E "
             f"{_secs(s['e2e_s']['p99'])}.")
    if s["load"] is None:
        return first + " Whether it keeps up with the load is not recorded."
    if s["load"]["overloaded"]:
        return first + f" It does not keep up: {_queueing_text(s)}."
    return first + f" It keeps up with the load: {_queueing_text(s)}."


def verdict_compare(runs, base=None):
    """runs: [{label, summary}]; base: the run ratios are to (paged_base), or None."""
    if len(runs) == 1:
        return verdict_run(runs[0]["label"], runs[0]["summary"])
    done = [r for r in runs if has_latency(r["summary"])]
    idle = [r["label"] for r in runs if not has_latency(r["summary"])]
    if not done:
        return (f"No run completed a request ({_names(idle)}), so there are no latencies to "
                "compare.")
    idle_text = ""
    if idle:
        idle_text = (f" {_names(idle)} completed no requests, so "
                     + ("it has" if len(idle) == 1 else "they have") + " no latency statistics.")

    def ttft(r):
        return r["summary"]["ttft_s"]["p99"]

    ref = base if base is not None and base in done and ttft(base) > 0 else None

    def versus(group):
        if ref is None or ref in group:
            return ""
        return f", {ttft(group[0]) / ttft(ref):.2f}x {ref['label']}"

    if len(done) == 1:
        first = (f"Only {done[0]['label']} completed requests: p99 TTFT {_secs(ttft(done[0]))}.")
    else:
        low = _ties(done, ttft, min)
        high = _ties(done, ttft, max)
        if len(low) == len(done):
            who = "Both runs" if len(done) == 2 else f"All {len(done)} runs"
            if idle:
                who += " that completed requests"
            first = f"{who} have the same p99 TTFT ({_secs(ttft(done[0]))})."
        else:
            first = (f"{_names(r['label'] for r in low)} "
                     + ("has" if len(low) == 1 else "share") + " the lowest p99 TTFT "
                     f"({_secs(ttft(low[0]))}{versus(low)}), {_names(r['label'] for r in high)} "
                     f"the highest ({_secs(ttft(high[0]))}{versus(high)}).")

    rates = [offered_rate(r["summary"]) for r in runs]
    at = f" at {_rate(rates[0])}" if rates[0] and all(
        x and _same(x, rates[0]) for x in rates) else ""
    best_p50 = min(r["summary"]["ttft_s"]["p50"] for r in done)
    queue = [r for r in done if is_overloaded(r["summary"]) or (
        r["summary"]["ttft_s"]["p50"] > 1.0 and r["summary"]["ttft_s"]["p50"] > 10 * best_p50)]
    if queue:
        keeping = [r for r in done if r not in queue]
        ref2 = ref if ref is not None and ref not in queue else (
            min(keeping, key=ttft) if keeping else None)
        parts = []
        for r in queue:
            why = "kvsim flags it overloaded" if is_overloaded(r["summary"]) else \
                "TTFT p50 above 1 s and 10x the best"
            if ref2 is not None and ttft(ref2) > 0:
                size = f"p99 TTFT {ttft(r) / ttft(ref2):.1f}x {ref2['label']}'s"
            else:
                size = f"p99 TTFT {_secs(ttft(r))}"
            parts.append(f"{r['label']} ({size}; {why})")
        second = f"{_names(parts)} " + ("queues" if len(queue) == 1 else "queue") + at
        second += "; the others keep up" if keeping else "; no run keeps up"
    elif all(r["summary"]["load"] is not None for r in done):
        second = "Every run keeps up with the offered load" + at
    else:
        second = "No run queues (TTFT p50 above 1 s and 10x the best)" + at
    kv = [r for r in runs if is_num(r["summary"]["kv_peak_allocated_bytes"])]
    if len(kv) > 1:
        def peak(r):
            return r["summary"]["kv_peak_allocated_bytes"]
        lean = _ties(kv, peak, min)
        if len(lean) < len(kv):
            ratio = ""
            if base is not None and base in kv and base not in lean and peak(base) > 0:
                ratio = f", {peak(lean[0]) / peak(base):.2f}x {base['label']}"
            second += (f"; {_names(r['label'] for r in lean)} "
                       + ("holds" if len(lean) == 1 else "hold")
                       + f" the least KV memory at peak ({fbytes(peak(lean[0]))}{ratio})")
    rejected = [(r["label"], r["summary"]["requests_rejected"] or 0,
                 r["summary"]["requests_total"]) for r in runs]
    rejected_text = ""
    if any(n for _, n, _ in rejected):
        if len(set((n, t) for _, n, t in rejected)) == 1:
            rejected_text = (f" Every run rejected {fint(rejected[0][1])} of its "
                             f"{fint(rejected[0][2])} requests (prompt at least max_model_len).")
        else:
            rejected_text = (" Requests rejected (prompt at least max_model_len): "
                             + ", ".join(f"{label} {fint(n)} of {fint(t)}"
                                         for label, n, t in rejected) + ".")
    return f"{first} {second}.{idle_text}{rejected_text}"


def sweep_limit(points, factor=SWEEP_TTFT_FACTOR):
    """One manager's points [(rate, summary)] in rate order: (the highest rate sustained before
    the first that is not, or None; (that first failing rate, why) or None when every rate is
    sustained). A rate is sustained when requests completed, kvsim does not flag the run
    overloaded (completions falling behind arrivals: summary.json load.overloaded), and p99 TTFT
    is at most `factor` x its value at the lowest rate."""
    base = None
    sustained = None
    for rate, s in points:
        if not has_latency(s):
            return sustained, (rate, "no completed requests")
        if is_overloaded(s):
            return sustained, (rate, f"overloaded, completions fall behind arrivals "
                                     f"({_queueing_text(s)})")
        p99 = s["ttft_s"]["p99"]
        if base is None:
            base = (rate, p99)
        elif p99 > factor * base[1]:
            ratio = f"{p99 / base[1]:.1f}x" if base[1] > 0 else "above"
            return sustained, (rate, f"p99 TTFT {_secs(p99)}, {ratio} its value at "
                                     f"{_rate(base[0])}")
        sustained = rate
    return sustained, None


def verdict_sweep(runs, labels, factor=SWEEP_TTFT_FACTOR):
    """runs: [{label, rate, summary}]; labels: the managers in order."""
    results = {}
    for lab in labels:
        pts = sorted(((r["rate"], r["summary"]) for r in runs if r["label"] == lab),
                     key=lambda p: p[0])
        results[lab] = sweep_limit(pts, factor)
    groups = {}
    for lab in labels:
        sustained, failure = results[lab]
        groups.setdefault((sustained, failure is None), []).append(lab)
    order = sorted(groups, key=lambda k: (k[0] is None, -(k[0] or 0.0), not k[1]))
    parts = []
    for sustained, clean in order:
        labs = groups[(sustained, clean)]
        verb = "sustains" if len(labs) == 1 else "sustain"
        if sustained is None:
            parts.append(f"{_names(labs)} {verb} none of the loads tested")
        else:
            parts.append(f"{_names(labs)} {verb} {_rate(sustained)}"
                         + (" (every load tested)" if clean else ""))
    rates = sorted(set(r["rate"] for r in runs))
    lead = (f"Highest offered load sustained (p99 TTFT within {factor:g}x its lowest-load value, "
            "completions keeping up with arrivals): ")
    if len(rates) == 1:
        lead = (f"Only one offered load was tested ({_rate(rates[0])}), so p99 TTFT is not "
                "compared across loads. Sustained (completions keeping up with arrivals): ")
    text = lead + "; ".join(parts) + "."
    fails = [f"{lab} at {_rate(results[lab][1][0])}: {results[lab][1][1]}" for lab in labels
             if results[lab][1] is not None]
    if fails:
        text += " First load not sustained: " + "; ".join(fails) + "."
    return text


SLO_METRIC_NAMES = {"ttft_s": "TTFT", "tbt_s": "TBT", "tpot_s": "TPOT", "e2e_s": "E2E"}


def slo_text(name, slo):
    """A binding_slo name of plan.json ('ttft_s.p99', 'attainment', 'stability') in words, with
    its bound from plan.json's `slo` object: 'the p99 TTFT SLO (at most 2 s)'."""
    metric, _, q = name.partition(".")
    if metric in SLO_METRIC_NAMES and q:
        bounds = slo.get(metric)
        bound = bounds.get(q) if isinstance(bounds, dict) else None
        return (f"the {q} {SLO_METRIC_NAMES[metric]} SLO ("
                + (f"at most {fgen(bound)} s" if is_num(bound) else "bound not recorded") + ")")
    if name == "attainment":
        a = slo.get("attainment")
        share = f"{100 * a:g}%" if is_num(a) else "a share (not recorded)"
        return f"the attainment SLO (at least {share} of requests within every per-request bound)"
    if name == "stability":
        slack = slo.get("stability_slack_s")
        return ("the stability SLO (" + (
            f"mean queueing of the last quarter of requests at most max({fgen(slack)} s, 2x the "
            "first quarter's)" if is_num(slack) else "queueing must not grow over the run") + ")")
    return f"`{name}`"


def slo_rows(slo):
    """Each SLO of plan.json's `slo` object as text, in the file's order."""
    out = []
    request = []
    for key, value in slo.items():
        if key in SLO_METRIC_NAMES and isinstance(value, dict):
            out += [f"{key}.{q} ≤ {fgen(v)} s" if is_num(v) else f"{key}.{q} = {v}"
                    for q, v in value.items()]
        elif key.startswith("request_") and key[8:] in SLO_METRIC_NAMES:
            request.append(f"{key[8:]} ≤ {fgen(value)} s" if is_num(value) else
                           f"{key[8:]} = {value}")
        elif key == "attainment":
            out.append(f"attainment ≥ {fgen(value)} (share of requests within every "
                       "per-request bound)" if is_num(value) else f"attainment = {value}")
        elif key == "stability":
            if value is True:
                slack = slo.get("stability_slack_s")
                out.append("stability: mean queueing of the last quarter of requests ≤ "
                           "max(slack, 2x the first quarter's), slack "
                           + (f"{fgen(slack)} s" if is_num(slack) else "not recorded"))
            elif value is False:
                out.append("stability: off")
        elif key == "stability_slack_s":
            continue
        else:
            out.append(f"{key} = {json.dumps(value)}")
    if request:
        out.append("per request: " + ", ".join(request))
    return out


def verdict_plan(cands, rec, target, slo, infeasible_text=None):
    meet = [c for c in cands if c["meets_slo"]]
    if rec is None:
        broken = [c for c in cands if c["status"] == "infeasible"]
        text = (f"No candidate meets the SLOs at {_rate(target)}: "
                f"{_plural(len(cands), 'candidate')} tried")
        if broken:
            text += f", {len(broken)} of which cannot be built"
        counts = {}
        for c in cands:
            if c["status"] != "infeasible" and c["binding_slo"]:
                counts[c["binding_slo"]] = counts.get(c["binding_slo"], 0) + 1
        if counts:
            top = max(counts.values())
            most = [k for k, v in counts.items() if v == top]
            tried = len(cands) - len(broken)
            text += (f"; the SLO that binds most often, for {top} of {tried}, is " if len(most) == 1
                     else f"; the SLOs that bind most often, for {top} of {tried} each, are ")
            text += _names(slo_text(k, slo) for k in most)
        return text + "."
    gpu_text = _plural(rec["gpus"], "GPU")
    first = (f"Recommended: {rec['replicas']} x `{rec['candidate']}` ({gpu_text}, "
             f"{fmoney(rec['cost_per_hour'])}/hour, "
             f"${rec['cost_per_million_output_tokens']:,.3f} per million output tokens at "
             f"{_rate(target)})")
    if rec["verified"]:
        first += "; a simulation of the whole fleet at that load met the SLOs."
    else:
        first += ("; NOT verified: the whole-fleet simulation missed "
                  + (slo_text(rec["verify_binding_slo"], slo) if rec["verify_binding_slo"]
                     else "an SLO") + ".")
    if rec["binding_slo"]:
        second = (f"One replica sustains {_rate(rec['max_qps_per_replica'])} before "
                  f"{slo_text(rec['binding_slo'], slo)} binds")
    else:
        second = (f"One replica meets the SLOs at every rate tried, up to "
                  f"{_rate(rec['max_qps_per_replica'])}")
    second += (f"; {len(meet)} of {_plural(len(cands), 'candidate')} "
               + ("meets" if len(meet) == 1 else "meet") + " the SLOs")
    same = [c for c in meet if c["candidate"] != rec["candidate"]
            and fmoney(c["cost_per_hour"]) == fmoney(rec["cost_per_hour"])]
    if same:
        second += (f", and {_plural(len(same), 'other')} cost" + ("s" if len(same) == 1 else "")
                   + " the same per hour")
    return f"{first} {second}."


def verdict_calibration(meta, t):
    gpu = meta.get("gpu_name", "this GPU")
    parts = []
    copy_max = max(r["gbps"] for r in t["copy"])
    parts.append(f"device copies reach {copy_max:,.0f} GB/s")
    vmm = t["vmm"]
    sizes = sorted(set(r["handle_bytes"] for r in vmm if r["call"] == "map_set_access_pooled"))
    if sizes:
        size = 2 * MIB if 2 * MIB in sizes else sizes[0]
        mapped = next(r for r in vmm if r["call"] == "map_set_access_pooled"
                      and r["handle_bytes"] == size)
        text = (f"mapping a {fbytes(size)} page (cuMemMap + cuMemSetAccess) takes "
                f"{fgen(mapped['p50_us'], 3)} µs at p50")
        malloc = [r for r in vmm if r["call"] == "cudaMalloc" and r["handle_bytes"] == size]
        if malloc:
            text += f" against {fgen(malloc[0]['p50_us'], 3)} µs for cudaMalloc"
        parts.append(text)
    dec = t["decode_attention"]
    base = {(r["batch"], r["context_tokens"], r["q_heads"], r["kv_heads"], r["head_dim"]):
            r["time_us"] for r in dec if r["layout"] == "contiguous"}
    ratios = {}
    for r in dec:
        key = (r["batch"], r["context_tokens"], r["q_heads"], r["kv_heads"], r["head_dim"])
        if r["layout"] == "paged" and base.get(key, 0) > 0:
            ratios.setdefault(r["block_tokens"], []).append(r["time_us"] / base[key])
    if ratios:
        bt = min(ratios)
        vals = ratios[bt]
        parts.append(f"paged decode attention ({int(bt)}-token blocks) takes "
                     f"{sum(vals) / len(vals):.2f}x the contiguous kernel's time on average "
                     f"({min(vals):.2f}x to {max(vals):.2f}x)")
    return f"On {gpu}, " + "; ".join(parts) + "."


# ---------------------------------------------------------------------------
# Run and compare directories

SUMMARY_PERCENTILES = ("ttft_s", "tbt_s", "tpot_s", "e2e_s")


def read_summary(node):
    """Checks a summary.json object and returns a plain dict of what the report uses."""
    s = {"kv_manager": node["kv_manager"].str()}
    sc = node["scenario"]
    s["scenario"] = {
        "model": sc["model"].str(), "gpu": sc["gpu"].str(),
        "tensor_parallel": sc["tensor_parallel"].int(), "replicas": sc["replicas"].int(),
        "scheduler": sc["scheduler"].str(), "max_model_len": sc["max_model_len"].int(),
        "seed": sc["seed"].int(),
        "trace": sc["trace"].str() if sc.has("trace") else None,
        "arrival_process": sc["arrival_process"].str() if sc.has("arrival_process") else None,
        "rate_qps": sc["rate_qps"].num() if sc.has("rate_qps") else None,
    }
    for k in ("requests_total", "requests_completed", "preemptions"):
        s[k] = node[k].int()
    for k in ("requests_rejected", "requests_truncated"):
        s[k] = node[k].int() if node.has(k) else None
    s["makespan_s"] = node["makespan_s"].nonneg()
    t = node["throughput"]
    s["requests_per_s"] = t["requests_per_s"].nonneg()
    s["output_tokens_per_s"] = t["output_tokens_per_s"].nonneg()
    for k in SUMMARY_PERCENTILES:
        p = node[k]
        s[k] = {q: p[q].num(allow_null=True) for q in ("mean", "p50", "p90", "p99")}
    kv = node["kv"]
    for k in ("capacity_bytes", "peak_allocated_bytes", "mean_allocated_bytes",
              "mean_live_bytes", "fragmentation"):
        s["kv_" + k] = kv[k].num(allow_null=True)
    b = node["batch"]
    s["max_running"] = b["max_running"].int()
    s["mean_running"] = b["mean_running"].num(allow_null=True)
    pc = node.get("prefix_cache")  # absent in outputs of a kvsim without prefix sharing
    s["prefix_cache"] = None if pc is None else {
        "enabled": pc["enabled"].bool(), "token_hit_rate": pc["token_hit_rate"].nonneg(),
        "request_hit_rate": pc["request_hit_rate"].nonneg(),
        "recomputed_tokens": pc["recomputed_tokens"].int()}
    v = node.get("vattention")
    s["exposed_overhead_s"] = v["exposed_overhead_s"].num() if v is not None else 0.0
    s["page_bytes"] = v["page_bytes"].num() if v is not None else None
    s["timing_caveats"] = _caveats(node)
    s["timing_assumptions"] = _assumptions(node)
    s["timing"] = _timing_text(node)
    s["load"] = None  # absent in older outputs
    if node.has("load"):
        ld = node["load"]
        s["load"] = {"offered_qps": ld["offered_qps"].num(allow_null=True),
                     "queue_first_quarter_s": ld["queue_first_quarter_s"].num(allow_null=True),
                     "queue_last_quarter_s": ld["queue_last_quarter_s"].num(allow_null=True),
                     "overloaded": ld["overloaded"].bool()}
    return s


def _caveats(node):
    """The node's timing_caveats strings (absent in older outputs: none)."""
    if not node.has("timing_caveats"):
        return []
    return [c.str() for c in node["timing_caveats"].items()]


def _timing_text(node):
    """'roofline, engine vllm_v1, paged kernel flash_paged' from summary.json's timing
    object (absent in older outputs: 'not recorded')."""
    if not node.has("timing"):
        return "not recorded"
    t = node["timing"]
    text = t["model"].str()
    if t.has("profile") and t["profile"].str():
        text += f" ({t['profile'].str()})"
    if t.has("engine_preset"):
        text += f", engine {t['engine_preset'].str()}"
    if t.has("paged_kernel"):
        text += f", paged kernel {t['paged_kernel'].str()}"
    return text


def _assumptions(node):
    """The terms the run assumed rather than measured: timing.assumptions of a
    summary, timing_assumptions of a plan candidate (absent in older outputs: none)."""
    if node.has("timing") and node["timing"].has("assumptions"):
        return [c.str() for c in node["timing"]["assumptions"].items()]
    if node.has("timing_assumptions"):
        return [c.str() for c in node["timing_assumptions"].items()]
    return []


def note_caveats(doc, labelled, kind="Timing caveat"):
    """One note per distinct timing caveat of (label, caveats) pairs, naming the labels
    it concerns when it does not concern them all; `kind` starts each note."""
    seen = {}
    for label, caveats in labelled:
        for text in caveats:
            seen.setdefault(text, [])
            if label not in seen[text]:
                seen[text].append(label)
    everyone = list(dict.fromkeys(label for label, _ in labelled))
    for text, labels in seen.items():
        which = "" if len(labels) == len(everyone) else f" ({', '.join(labels)})"
        doc.note(f"{kind}{which}: {text}")


def _check_request(r):
    if r["replica"] < 0:
        return "replica < 0"
    if r["first_scheduled_s"] < r["arrival_s"] - 1e-9:
        return "first_scheduled_s is before arrival_s"
    if r["first_token_s"] < r["arrival_s"] - 1e-9:
        return "first_token_s is before arrival_s"
    if r["finish_s"] < r["first_token_s"] - 1e-9:
        return "finish_s is before first_token_s"
    if r["output_tokens"] < 1 or r["prompt_tokens"] < 0 or r["preemptions"] < 0:
        return "token or preemption count out of range"
    return None


REQUEST_COLUMNS = ("id", "replica", "arrival_s", "first_scheduled_s", "first_token_s",
                   "finish_s", "prompt_tokens", "output_tokens", "preemptions")
# timeseries.csv comes in two layouts, told apart by the header. Per iteration
# (output.timeseries_interval_s: 0): one row per iteration of each replica.
TIMESERIES_COLUMNS = ("time_s", "replica", "duration_s", "running", "waiting", "prefill_tokens",
                      "decode_tokens", "allocated_bytes", "live_bytes", "cached_bytes",
                      "exposed_overhead_s")
TIMESERIES_INTS = ("replica", "running", "waiting", "prefill_tokens", "decode_tokens",
                   "allocated_bytes", "live_bytes", "cached_bytes")
# Per interval (output.timeseries_interval_s: I > 0): one row per replica per interval
# [k*I, (k+1)*I) in which at least one of its iterations starts, each iteration counted wholly in
# the interval it starts in; means are weighted by iteration duration, bytes rounded.
TIMESERIES_INTERVAL_COLUMNS = ("time_s", "replica", "interval_s", "iterations", "busy_s",
                               "mean_running", "max_running", "max_waiting", "prefill_tokens",
                               "decode_tokens", "mean_allocated_bytes", "peak_allocated_bytes",
                               "mean_live_bytes", "mean_cached_bytes", "exposed_overhead_s")
TIMESERIES_INTERVAL_INTS = ("replica", "iterations", "max_running", "max_waiting",
                            "prefill_tokens", "decode_tokens", "mean_allocated_bytes",
                            "peak_allocated_bytes", "mean_live_bytes", "mean_cached_bytes")


def _check_sample(r):
    if r["replica"] < 0 or r["duration_s"] < 0 or r["time_s"] < 0:
        return "negative time, duration or replica"
    if r["running"] < 0 or r["waiting"] < 0:
        return "negative request count"
    if r["allocated_bytes"] < 0 or r["live_bytes"] < 0 or r["cached_bytes"] < 0:
        return "negative byte count"
    return None


def _interval_checks():
    """A `checks` function for the interval layout. It remembers the rows before it: interval_s
    must be the same on every row, and each replica's rows must be in time order."""
    interval = None
    last_time = {}

    def check(r):
        nonlocal interval
        for c in TIMESERIES_INTERVAL_COLUMNS:
            if r[c] < 0:
                return f"{c} is negative ({r[c]:g})"
        if r["interval_s"] <= 0:
            return "interval_s is 0, not > 0"
        if interval is not None and r["interval_s"] != interval:
            return f"interval_s is {r['interval_s']:g}, but {interval:g} on the rows before"
        if r["iterations"] < 1:
            return "iterations is 0 (an interval without iterations has no row)"
        before = last_time.get(r["replica"])
        if before is not None and r["time_s"] <= before:
            return (f"replica {r['replica']}: time_s {r['time_s']:g} is not after its row "
                    f"before ({before:g})")
        interval = r["interval_s"]
        last_time[r["replica"]] = r["time_s"]
        return None

    return check


def load_timeseries(path):
    """timeseries.csv in either layout, picked by its header: {column: [values]} with the
    layout's columns (is_interval_layout tells which)."""
    reader, header = open_csv(path)
    layouts = (("interval", TIMESERIES_INTERVAL_COLUMNS, TIMESERIES_INTERVAL_INTS,
                _interval_checks()),
               ("per-iteration", TIMESERIES_COLUMNS, TIMESERIES_INTS, _check_sample))
    lacking = []
    for name, columns, ints, checks in layouts:
        missing = [c for c in columns if c not in header]
        if not missing:
            return read_csv_rows(path, reader, header, columns, ints, checks=checks)
        lacking.append((len(missing), name, missing))
    _, nearer, missing = min(lacking)
    raise InputError(
        f"{path}:1: header is neither timeseries layout (it lacks {', '.join(missing)} of the "
        f"nearer, {nearer} one); expected the per-iteration header "
        f"{','.join(TIMESERIES_COLUMNS)} or the interval header "
        f"{','.join(TIMESERIES_INTERVAL_COLUMNS)}")


def is_interval_layout(ts):
    """Whether a table from load_timeseries is in the interval layout."""
    return "interval_s" in ts


def _interval_text(ts):
    """'1 s interval' for an interval-layout table ('interval' when it has no rows)."""
    return f"{fgen(ts['interval_s'][0])} s interval" if ts["interval_s"] else "interval"


def manifest_names(d):
    """The file names DIR/manifest.json lists (the files kvsim wrote there), or None when the
    directory has no manifest (outputs of an older kvsim, or files copied by hand)."""
    path = os.path.join(d, "manifest.json")
    if not os.path.isfile(path):
        return None
    manifest = Node(load_json(path), path)
    return {entry["name"].str() for entry in manifest["files"].items()}


def load_run_dir(run_dir, label, summary=None):
    """A run directory: {label, summary, requests, timeseries, notes}; the timeseries in either
    layout (load_timeseries). A CSV that kvsim's manifest.json does not list was not written
    (output switched off, or a sweep point); one missing without a manifest is an error."""
    if summary is None:
        path = os.path.join(run_dir, "summary.json")
        summary = read_summary(Node(load_json(path), path))
    written = manifest_names(run_dir)
    run = {"label": label, "dir": run_dir, "summary": summary,
           "requests": None, "timeseries": None, "notes": []}
    for key, name, load in (
            ("requests", "requests.csv",
             lambda path: load_csv(
                 path, REQUEST_COLUMNS,
                 ints=("id", "replica", "prompt_tokens", "output_tokens", "preemptions"),
                 checks=_check_request)),
            ("timeseries", "timeseries.csv", load_timeseries)):
        path = os.path.join(run_dir, name)
        if not os.path.exists(path) and written is not None and name not in written:
            run["notes"].append(f"{label}: {name} was not written (the directory's "
                                "manifest.json does not list it)")
            continue
        run[key] = load(path)
    if run["requests"] is not None:
        n = len(run["requests"]["id"])
        if n != summary["requests_completed"]:
            raise InputError(
                f"{os.path.join(run_dir, 'requests.csv')}: {n} request rows, but summary.json "
                f"says {summary['requests_completed']} completed")
    return run


def _total_over_replicas(times, replicas, values, durations=None):
    """Sum over replicas of each replica's latest value, as a step function (sorted times).

    With `durations`, a replica's value drops to 0 at the end of its iteration unless its next
    iteration starts then (for quantities that exist only while an iteration runs)."""
    events = [(times[i], 1, replicas[i], values[i]) for i in range(len(times))]
    if durations is not None:
        events += [(times[i] + durations[i], 0, replicas[i], 0) for i in range(len(times))]
    events.sort(key=lambda e: (e[0], e[1], e[2]))
    last = {}
    total = 0.0
    ts, ys = [], []
    for t, _, r, v in events:
        total += v - last.get(r, 0.0)
        last[r] = v
        if ts and ts[-1] == t:
            ys[-1] = total
        else:
            ts.append(t)
            ys.append(total)
    return ts, ys


def _moving_mean(ts, ys, points=600, windows=60):
    """Time-weighted mean of a step function over a sliding window of span/windows seconds."""
    import bisect
    if len(ts) < 2 or ts[-1] <= ts[0]:
        return list(ts), list(ys), 0.0
    t0, t1 = ts[0], ts[-1]
    width = (t1 - t0) / windows
    cum = [0.0]
    for i in range(1, len(ts)):
        cum.append(cum[-1] + ys[i - 1] * (ts[i] - ts[i - 1]))

    def integral(x):
        x = min(max(x, t0), t1)
        k = bisect.bisect_right(ts, x) - 1
        return cum[k] + ys[k] * (x - ts[k])

    gx, gy = [], []
    for j in range(points + 1):
        x = t0 + (t1 - t0) * j / points
        a, b = max(t0, x - width / 2), min(t1, x + width / 2)
        gx.append(x)
        gy.append((integral(b) - integral(a)) / (b - a) if b > a else ys[0])
    return gx, gy, width


def _bin_max(ts, ys_list, bins=2000):
    """At most `bins` points per series: the maximum of each time bin (an upper envelope)."""
    if len(ts) <= 2 * bins:
        return ts, ys_list, None
    t0, t1 = ts[0], ts[-1]
    width = (t1 - t0) / bins or 1.0
    out_t, out = [], [[] for _ in ys_list]
    current = None
    for i, t in enumerate(ts):
        b = min(int((t - t0) / width), bins - 1)
        if b != current:
            current = b
            out_t.append(t0 + b * width)
            for k, ys in enumerate(ys_list):
                out[k].append(ys[i])
        else:
            for k, ys in enumerate(ys_list):
                if ys[i] > out[k][-1]:
                    out[k][-1] = ys[i]
    return out_t, out, width


def run_series(run):
    """(times, allocated, live, cached, (times, running)) of a run's timeseries, each summed over
    replicas as a step function; allocated, live and cached hold their last value to the end of
    the last iteration (or interval). Cached: the KV bytes kept for reuse, held for no running
    request (cached_bytes; None when every row's is 0, so that the chart draws no line for it)."""
    ts = run["timeseries"]
    if is_interval_layout(ts):
        return _interval_series(ts)
    times, reps = ts["time_s"], ts["replica"]
    t, alloc = _total_over_replicas(times, reps, ts["allocated_bytes"])
    _, live = _total_over_replicas(times, reps, ts["live_bytes"])
    cached = _total_over_replicas(times, reps, ts["cached_bytes"])[1] \
        if any(ts["cached_bytes"]) else None
    running = _total_over_replicas(times, reps, ts["running"], ts["duration_s"])
    end = max((a + d for a, d in zip(times, ts["duration_s"])), default=0.0)
    t, (alloc, live, cached) = _hold_to_end(t, end, (alloc, live, cached))
    return t, alloc, live, cached, running


def _hold_to_end(t, end, series):
    """(times, series) with a last step at `end` where `end` is after the last time, each series
    (a list of values at `t`, or None, kept as None) holding its last value there."""
    if not t or end <= t[-1]:
        return t, list(series)
    return t + [end], [None if ys is None else ys + [ys[-1]] for ys in series]


def _interval_series(ts):
    """run_series of the interval layout. Allocated, live and cached: each replica's
    mean_allocated_bytes, mean_live_bytes and mean_cached_bytes, held until its next row (cached
    None when every row's is 0). Running: each row's time-averaged batch,
    mean_running * min(1, busy_s / interval_s), held over [time_s, time_s + interval_s), then 0
    until the replica's next row. An interval's end within interval_s / 1e6 of a row's time_s is
    taken as that time_s, so that float rounding adds no sliver steps."""
    import bisect
    times, reps, widths = ts["time_s"], ts["replica"], ts["interval_s"]
    starts = sorted(set(times))

    def snap(x, tol):
        k = bisect.bisect_left(starts, x - tol)
        return starts[k] if k < len(starts) and starts[k] <= x + tol else x

    ends = [snap(t + w, w * 1e-6) for t, w in zip(times, widths)]
    after = [None] * len(times)  # the time_s of the replica's next row
    following = {}
    for i in reversed(range(len(times))):
        after[i] = following.get(reps[i])
        following[reps[i]] = times[i]
    rt, rr, rv = [], [], []
    for i, (m, busy, w) in enumerate(zip(ts["mean_running"], ts["busy_s"], widths)):
        rt.append(times[i])
        rr.append(reps[i])
        rv.append(m * min(1.0, busy / w))
        if after[i] is None or after[i] > ends[i] + w * 1e-6:
            rt.append(ends[i])
            rr.append(reps[i])
            rv.append(0.0)
    t, alloc = _total_over_replicas(times, reps, ts["mean_allocated_bytes"])
    _, live = _total_over_replicas(times, reps, ts["mean_live_bytes"])
    cached = _total_over_replicas(times, reps, ts["mean_cached_bytes"])[1] \
        if any(ts["mean_cached_bytes"]) else None
    # held to the end of the last interval
    t, (alloc, live, cached) = _hold_to_end(t, max(ends, default=0.0), (alloc, live, cached))
    return t, alloc, live, cached, _total_over_replicas(rt, rr, rv)


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


def request_latencies(run):
    r = run["requests"]
    ttft = [f - a for a, f in zip(r["arrival_s"], r["first_token_s"])]
    e2e = [f - a for a, f in zip(r["arrival_s"], r["finish_s"])]
    tbt = [(fin - ft) / (n - 1) * 1e3
           for ft, fin, n in zip(r["first_token_s"], r["finish_s"], r["output_tokens"]) if n >= 2]
    return ttft, tbt, e2e


COMPARE_ROWS = [
    # name, getter, format, ratio
    ("throughput (req/s)", lambda s: s["requests_per_s"], lambda x: fnum(x, 2), True),
    ("output tokens/s", lambda s: s["output_tokens_per_s"], lambda x: fnum(x, 0), True),
    ("TTFT p50 (s)", lambda s: s["ttft_s"]["p50"], lambda x: fnum(x, 3), True),
    ("TTFT p99 (s)", lambda s: s["ttft_s"]["p99"], lambda x: fnum(x, 3), True),
    ("TBT p50 (ms, all tokens)", lambda s: s["tbt_s"]["p50"] * 1e3, lambda x: fnum(x, 2), True),
    ("TBT p99 (ms, all tokens)", lambda s: s["tbt_s"]["p99"] * 1e3, lambda x: fnum(x, 2), True),
    ("E2E p50 (s)", lambda s: s["e2e_s"]["p50"], lambda x: fnum(x, 3), True),
    ("E2E p99 (s)", lambda s: s["e2e_s"]["p99"], lambda x: fnum(x, 3), True),
    ("max running batch", lambda s: s["max_running"], fint, True),
    ("mean running batch", lambda s: s["mean_running"], lambda x: fnum(x, 1), True),
    ("KV fragmentation (%)", lambda s: s["kv_fragmentation"] * 100, lambda x: fnum(x, 1), True),
    ("KV peak allocated (GiB)", lambda s: s["kv_peak_allocated_bytes"] / GIB,
     lambda x: fnum(x, 2), True),
    ("preemptions", lambda s: s["preemptions"], fint, True),
    ("exposed mapping overhead (s)", lambda s: s["exposed_overhead_s"], lambda x: fnum(x, 3), True),
    ("requests completed / offered",
     lambda s: (s["requests_completed"], s["requests_total"]), None, False),
]

# Shown in a comparison when some run caches prefixes (summary.json `prefix_cache`).
PREFIX_CACHE_ROWS = [
    ("prefix hit (% of prompt tokens)",
     lambda s: s["prefix_cache"]["token_hit_rate"] * 100 if s["prefix_cache"] else 0.0,
     lambda x: fnum(x, 1), False),
    ("requests with a prefix hit (%)",
     lambda s: s["prefix_cache"]["request_hit_rate"] * 100 if s["prefix_cache"] else 0.0,
     lambda x: fnum(x, 1), False),
    ("tokens recomputed after preemption",
     lambda s: s["prefix_cache"]["recomputed_tokens"] if s["prefix_cache"] else 0, fint, False),
]


def _metric_table(runs, base):
    headers = ["metric"] + [r["label"] for r in runs]
    rows = []
    caching = any((r["summary"].get("prefix_cache") or {}).get("enabled") for r in runs)
    for name, get, form, ratio in COMPARE_ROWS + (PREFIX_CACHE_ROWS if caching else []):
        row = [name]
        for r in runs:
            v = get(r["summary"])
            if form is None:
                row.append(f"{v[0]:,} / {v[1]:,}")
                continue
            cell = form(v)
            if ratio and base is not None and r is not base:
                b = get(base["summary"])
                if is_num(b) and is_num(v) and b != 0:
                    cell += f" ({v / b:.2f}x)"
            row.append(cell)
        rows.append(row)
    return headers, rows


def _scenario_rows(runs, extra=None):
    """Scenario fields; a field that differs between runs lists each run's value."""
    def trace_of(run):
        t = run["summary"]["scenario"]["trace"]
        return t if t else "not recorded"

    def arrival_of(run):
        sc = run["summary"]["scenario"]
        proc, rate = sc["arrival_process"], sc["rate_qps"]
        if not proc:
            return "not recorded"
        if is_num(rate) and rate > 0:
            scaled = " (trace time-scaled)" if proc == "trace" else ""
            return f"{proc}, {fgen(rate)} requests/s{scaled}"
        return proc

    fields = [
        ("model", lambda r: r["summary"]["scenario"]["model"]),
        ("GPU", lambda r: r["summary"]["scenario"]["gpu"]),
        ("tensor parallel (GPUs per replica)",
         lambda r: str(r["summary"]["scenario"]["tensor_parallel"])),
        ("replicas", lambda r: str(r["summary"]["scenario"]["replicas"])),
        ("trace", trace_of),
        ("arrivals", arrival_of),
        ("scheduler", lambda r: r["summary"]["scenario"]["scheduler"]),
        ("max_model_len (tokens)", lambda r: fint(r["summary"]["scenario"]["max_model_len"])),
        ("seed", lambda r: str(r["summary"]["scenario"]["seed"])),
        ("timing", lambda r: r["summary"]["timing"]),
    ]
    if extra:
        fields += extra
    rows = []
    for name, get in fields:
        values = [get(r) for r in runs]
        if all(v == values[0] for v in values):
            rows.append([name, values[0]])
        else:
            rows.append([name, "; ".join(f"{r['label']}: {v}" for r, v in zip(runs, values))])
    return rows


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _scenario_sentence(s):
    sc = s["scenario"]
    where = f"{sc['tensor_parallel']} x {sc['gpu']} (TP {sc['tensor_parallel']})"
    if sc["replicas"] != 1:
        where = f"{sc['replicas']} replicas of {where}"
    return f"{sc['model']} on {where}, scheduler {sc['scheduler']}"


# The KV memory caption's sentence on the cached line (where some run has one).
CACHED_TEXT = (
    "Cached (kept for reuse, the dash-dot line): KV bytes held for no running request but kept "
    "as free capacity the scheduler can reuse, beside allocated (allocated + cached stays within "
    "the budget): vAttention pages left mapped by deferred reclamation and, with prefix caching, "
    "unreferenced cached prefix blocks kept for reuse and evicted least recently used first "
    "(cached_bytes, in the interval layout mean_cached_bytes).")


def _timeseries_text(runs, per_iteration, per_interval):
    """What the runs' timeseries.csv rows are, for a caption: `per_iteration` for the
    per-iteration layout, per_interval(table) for the interval one; where the runs differ, each
    text follows the labels of its runs."""
    texts = {}
    for r in runs:
        ts = r["timeseries"]
        text = per_interval(ts) if is_interval_layout(ts) else per_iteration
        texts.setdefault(text, []).append(r["label"])
    if len(texts) == 1:
        return next(iter(texts))
    return "; ".join(f"{', '.join(labels)}: {text}" for text, labels in texts.items())


def build_run_or_compare(doc, runs, compare):
    for i, r in enumerate(runs):
        r["index"] = i
    first = runs[0]["summary"]
    replicas = first["scenario"]["replicas"]
    doc.h2(H_SCENARIO)
    doc.table(["", "value"], _scenario_rows(runs), right=set())
    notes = [n for r in runs for n in r["notes"]]
    base = None
    if compare:
        base = paged_base(runs)
        doc.h2(H_COMPARISON)
        headers, rows = _metric_table(runs, base)
        doc.table(headers, rows)
        if base is not None:
            doc.note(f"Ratios in brackets are to `{base['label']}`. TBT in this table is over all "
                     "tokens (summary.json, from a log-bucketed histogram, within 0.4%); the other "
                     "percentiles are nearest-rank over requests.")
        else:
            doc.note("No paged run in this comparison, so no ratios are shown.")
    else:
        doc.h2(H_SUMMARY)
        headers, rows = _metric_table(runs, None)
        headers[1] = f"{runs[0]['label']}"
        doc.table(headers, rows)
        doc.note("TBT in this table is over all tokens (summary.json); the other percentiles are "
                 "nearest-rank over requests.")
    for n in notes:
        doc.note(n)
    note_caveats(doc, [(r["label"], r["summary"]["timing_caveats"]) for r in runs])
    note_caveats(doc, [(r["label"], r["summary"]["timing_assumptions"]) for r in runs],
                 "Assumed")

    with_ts = [r for r in runs if r["timeseries"] is not None]
    with_req = [r for r in runs if r["requests"] is not None]
    for r in with_ts:
        r["series"] = run_series(r)

    doc.h2(H_KV_MEMORY)
    if with_ts:
        png, width = chart_kv_memory(with_ts, replicas)
        rows = _timeseries_text(
            with_ts, "one sample per iteration",
            lambda ts: f"one row per {_interval_text(ts)} (each replica's duration-weighted "
                       "means over the iterations starting in it, held until its next row)")
        cap = "Allocated: the reservation, blocks or pages each admitted request holds; live: " \
              "what " \
              f"its tokens occupy; the dotted line is the KV budget. From timeseries.csv, {rows}."
        what = "allocated vs live"
        if any_cached(with_ts):
            what = "allocated, live and cached"
            drawn = ", ".join(f"`{r['label']}`" for r in with_ts if r["series"][3] is not None)
            cap += f" {CACHED_TEXT} Drawn for {drawn}."
        if width:
            cap += f" Long runs are drawn as the maximum of each {fgen(width)} s bin."
        doc.chart("kv_memory.png", png, f"KV memory over time, {what}, per manager", cap)
    else:
        doc.p("No timeseries.csv was written, so there is no KV memory chart.")

    doc.h2(H_BATCH)
    if with_ts:
        png, width, window = chart_running(with_ts)
        rows = _timeseries_text(
            with_ts, "the sequences in each iteration (timeseries.csv; 0 while idle)",
            lambda ts: f"the time-averaged batch of each {_interval_text(ts)}, mean_running x "
                       f"min(1, busy_s / interval_s) (timeseries.csv, one row per "
                       f"{_interval_text(ts)}; 0 where a replica has no row)")
        cap = (f"Faint lines: {rows}; "
               f"bold lines: their time-weighted mean over a sliding {fgen(window)} s window.")
        if width:
            cap += f" Long runs are drawn as the maximum of each {fgen(width)} s bin."
        doc.chart("running_batch.png", png, "Running batch size over time", cap)
    else:
        doc.p("No timeseries.csv was written, so there is no batch-size chart.")

    doc.h2(H_LATENCY)
    if with_req:
        lat = {r["label"]: request_latencies(r) for r in with_req}
        how = ("Complementary CDFs: the fraction of requests slower than x, on a log scale, so "
               "the tail reads off the lower lines: p50 where a curve crosses 0.5, p90 at 0.1, "
               "p99 at 0.01 (the dotted guides; each run's percentiles are marked with its "
               "marker and listed in the legend, nearest rank). ")
        doc.chart("ccdf_ttft.png", chart_ccdf(
            [(r["label"], color(r["index"]), lat[r["label"]][0]) for r in with_req],
            "Time to first token (TTFT): fraction of requests above x",
            "TTFT: arrival to first token (s)", "s"),
            "TTFT distribution (complementary CDF)",
            how + "From requests.csv: first_token_s - arrival_s of every completed request.")
        excluded = {r["label"]: sum(1 for n in r["requests"]["output_tokens"] if n < 2)
                    for r in with_req}
        doc.chart("ccdf_tpot.png", chart_ccdf(
            [(r["label"], color(r["index"]), lat[r["label"]][1]) for r in with_req],
            "Per-request mean time between tokens (TPOT): fraction of requests above x",
            "per-request mean time between tokens (ms)", "ms"),
            "TPOT: per-request mean time between tokens (complementary CDF)",
            how + "requests.csv has no per-token times, so this is each request's mean gap "
            "(finish_s - first_token_s) / (output_tokens - 1), the same quantity as "
            "summary.json's TPOT; it hides the spread between a request's tokens that the "
            "all-token TBT percentiles in the table include. Requests with one output token are "
            "left out"
            + (" (" + ", ".join(f"{k}: {v}" for k, v in excluded.items() if v) + ")"
               if any(excluded.values()) else "") + ".")
        doc.chart("ccdf_e2e.png", chart_ccdf(
            [(r["label"], color(r["index"]), lat[r["label"]][2]) for r in with_req],
            "End-to-end latency (E2E): fraction of requests above x",
            "E2E: arrival to last token (s)", "s"),
            "End-to-end latency distribution (complementary CDF)",
            how + "From requests.csv: finish_s - arrival_s.")
    else:
        doc.p("No requests.csv was written, so there are no latency distributions.")


def report_run(d):
    summary_path = os.path.join(d, "summary.json")
    summary = read_summary(Node(load_json(summary_path), summary_path))
    run = load_run_dir(d, summary["kv_manager"], summary)
    manager = summary["kv_manager"]
    if summary["page_bytes"]:
        manager += f" ({fbytes(summary['page_bytes'])} pages)"
    title = f"kvsim run: {_scenario_sentence(summary)}, KV manager {manager}"
    doc = Doc(title)
    doc.verdict(verdict_run(run["label"], summary))
    doc.p(f"Run directory `{os.path.basename(os.path.abspath(d))}`: summary.json, requests.csv "
          "and timeseries.csv written by `kvsim run`.")
    config = _config_text(d)

    def build():
        build_run_or_compare(doc, [run], compare=False)
        if config is not None:
            doc.h2(H_CONFIG)
            with doc.details("config.yaml, as kvsim wrote it"):
                doc.verbatim(config)
            doc.note("The configuration after overrides, shown as written; the figures above "
                     "come from summary.json and the CSVs.")

    return doc, build


def _config_text(d):
    """DIR/config.yaml as text, to show verbatim (never parsed); None when absent or not
    readable as UTF-8 text."""
    try:
        with open(os.path.join(d, "config.yaml"), "rb") as f:
            data = f.read(1 << 20)
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def report_compare(d):
    path = os.path.join(d, "compare.json")
    root = Node(load_json(path), path)
    entries = root.items()
    if not entries:
        raise InputError(f"{path}: empty list (no runs)")
    runs = []
    seen = set()
    for e in entries:
        label = e["label"].str()
        if not label or "/" in label or label in (".", ".."):
            e["label"]._fail(f"not a usable directory name: {label!r}")
        if label in seen:
            e["label"]._fail(f"duplicate label {label!r}")
        seen.add(label)
        summary = read_summary(e["summary"])
        runs.append(load_run_dir(os.path.join(d, label), label, summary))
    first = runs[0]["summary"]
    doc = Doc(f"kvsim compare: {_scenario_sentence(first)}, {len(runs)} KV managers")
    doc.verdict(verdict_compare(runs, paged_base(runs)))
    doc.p(f"Comparison directory `{os.path.basename(os.path.abspath(d))}` written by "
          f"`kvsim compare`: compare.json and one run directory per label "
          f"({', '.join(r['label'] for r in runs)}).")
    return doc, lambda: build_run_or_compare(doc, runs, compare=True)


# ---------------------------------------------------------------------------
# Sweep directories


def report_sweep(d):
    path = os.path.join(d, "sweep.json")
    root = Node(load_json(path), path)
    rates = [n.nonneg() for n in root["rates_qps"].items()]
    runs = []
    labels = []
    for e in root["runs"].items():
        label = e["label"].str()
        rate = e["rate_qps"].nonneg()
        summary = read_summary(e["summary"])
        if label not in labels:
            labels.append(label)
        runs.append({"label": label, "rate": rate, "summary": summary})
    if not runs:
        raise InputError(f"{path}: runs: empty list")
    seen = set()
    for r in runs:
        key = (r["label"], r["rate"])
        if key in seen:
            raise InputError(f"{path}: runs: label {r['label']!r} at {fgen(r['rate'])} QPS twice")
        seen.add(key)
    first = runs[0]["summary"]
    doc = Doc(f"kvsim sweep: {_scenario_sentence(first)}, {len(labels)} KV managers at "
              f"{len(set(r['rate'] for r in runs))} offered loads")

    def build():
        doc.verdict(verdict_sweep(runs, labels))
        doc.p(f"Sweep directory `{os.path.basename(os.path.abspath(d))}` written by `kvsim sweep`:"
              f" offered loads {', '.join(fgen(r) for r in rates)} requests/s, managers "
              f"{', '.join(labels)}.")
        doc.h2(H_SCENARIO)
        pseudo = [{"label": f"{r['label']}@{fgen(r['rate'])}", "summary": r["summary"]}
                  for r in runs]
        rows = [row for row in _scenario_rows(pseudo) if row[0] != "arrivals"]
        procs = sorted(set(r["summary"]["scenario"]["arrival_process"] or "not recorded"
                           for r in runs))
        rows.append(["arrivals", f"{', '.join(procs)}, at each offered load"
                     + (" (trace time-scaled)" if procs == ["trace"] else "")])
        rows.append(["requests per run", ", ".join(sorted(set(
            fint(r["summary"]["requests_total"]) for r in runs)))])
        doc.table(["", "value"], rows, right=set())

        doc.h2(H_SWEEP_TABLE)
        headers = ["KV manager", "offered (req/s)", "completed (req/s)", "output tok/s",
                   "TTFT p99 (s)", "TBT p99 (ms)", "E2E p99 (s)", "max batch", "preemptions",
                   "completed / offered"]
        rows = []
        by_label = {lab: sorted((r for r in runs if r["label"] == lab), key=lambda r: r["rate"])
                    for lab in labels}
        for lab in labels:
            for r in by_label[lab]:
                s = r["summary"]
                rows.append([lab, fgen(r["rate"]), fnum(s["requests_per_s"], 2),
                             fnum(s["output_tokens_per_s"], 0), fnum(s["ttft_s"]["p99"], 3),
                             fnum(s["tbt_s"]["p99"] * 1e3, 2), fnum(s["e2e_s"]["p99"], 3),
                             fint(s["max_running"]), fint(s["preemptions"]),
                             f"{s['requests_completed']:,} / {s['requests_total']:,}"])
        doc.table(headers, rows)
        doc.note("Completed requests/s is completed requests over the makespan (last completion); "
                 "TBT p99 is over all tokens.")
        note_caveats(doc, [(r["label"], r["summary"]["timing_caveats"]) for r in runs])
        note_caveats(doc, [(r["label"], r["summary"]["timing_assumptions"]) for r in runs],
                     "Assumed")

        doc.h2(H_SWEEP_THROUGHPUT)
        fig, ax = plt().subplots(figsize=(9, 4.6))
        top = 0.0
        for i, lab in enumerate(labels):
            xs = [r["rate"] for r in by_label[lab]]
            ys = [r["summary"]["requests_per_s"] for r in by_label[lab]]
            top = max([top] + xs + ys)
            ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.6, label=lab)
        ax.plot([0, top], [0, top], color="#888", ls=":", lw=1.2, label="completed = offered")
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)
        ax.set_title("Throughput against offered load")
        ax.set_xlabel("offered load (requests/s)")
        ax.set_ylabel("completed requests/s")
        ax.legend(loc="upper left")
        doc.chart("sweep_throughput.png", fig_to_png(fig), "Throughput against offered load",
                  "Completed requests over the makespan. Where a manager's line falls away from "
                  "the dotted diagonal it no longer keeps up; with a finite request set it sits "
                  "a little below the diagonal even then, while the last requests drain.")

        doc.h2(H_SWEEP_LATENCY)
        for key, name, scale, unit, fname in (
                ("ttft_s", "TTFT", 1.0, "s", "sweep_ttft_p99.png"),
                ("tbt_s", "TBT (all tokens)", 1e3, "ms", "sweep_tbt_p99.png"),
                ("e2e_s", "E2E", 1.0, "s", "sweep_e2e_p99.png")):
            fig, ax = plt().subplots(figsize=(9, 4.4))
            allv = []
            for i, lab in enumerate(labels):
                xs = [r["rate"] for r in by_label[lab]]
                ys = [r["summary"][key]["p99"] * scale for r in by_label[lab]]
                allv += [y for y in ys if is_num(y)]
                ax.plot(xs, ys, marker=MARKERS[i % len(MARKERS)], color=color(i), lw=1.6,
                        label=lab)
            _log_if_wide(ax, allv, axis="y", ratio=100.0)
            ax.set_xlim(left=0)
            ax.set_title(f"p99 {name} against offered load")
            ax.set_xlabel("offered load (requests/s)")
            ax.set_ylabel(f"p99 {name} ({unit})")
            ax.legend(loc="upper left")
            doc.chart(fname, fig_to_png(fig), f"p99 {name} against offered load", "")
    return doc, build


# ---------------------------------------------------------------------------
# Plan directories


def _read_candidate(n):
    c = {
        "candidate": n["candidate"].str(), "gpu": n["gpu"].str(),
        "tensor_parallel": n["tensor_parallel"].int(), "kv_manager": n["kv_manager"].str(),
        "kv_label": n["kv_label"].str(), "scheduler": n["scheduler"].str(),
        "status": n["status"].str(), "note": n["note"].str(),
        "max_qps_per_replica": n["max_qps_per_replica"].nonneg(),
        "max_qps_per_gpu": n["max_qps_per_gpu"].nonneg(),
        "binding_slo": n["binding_slo"].str(), "replicas": n["replicas"].int(),
        "gpus": n["gpus"].int(), "cost_per_hour": n["cost_per_hour"].nonneg(),
        "cost_per_million_output_tokens": n["cost_per_million_output_tokens"].nonneg(),
        "meets_slo": n["meets_slo"].bool(), "pareto": n["pareto"].bool(),
        "timing_caveats": _caveats(n),
        "timing_assumptions": _assumptions(n),
    }
    lat = n["latencies_at_max"]
    c["lat"] = {k: {q: lat[k][q].num(allow_null=True) for q in ("p50", "p90", "p99")}
                for k in ("ttft_s", "tbt_s", "e2e_s")}
    return c


# plan.csv repeats plan.json's rows; the report reads plan.json and checks only that plan.csv is
# a well-formed table of the same candidates.
PLAN_CSV_COLUMNS = ("candidate", "max_qps_per_replica", "cost_per_hour", "meets_slo")


def _read_plan_scenario(node):
    """plan.json's `scenario` object (absent in older outputs: None): what the plan's base
    scenario was. Fields a kvsim may not write are None."""
    if node is None:
        return None

    def text(key):
        return node[key].str() if node.has(key) else None

    return {"config": text("config"), "model_card": text("model_card"), "model": text("model"),
            "trace": text("trace"), "arrival_process": text("arrival_process"),
            "seed": node["seed"].int() if node.has("seed") else None,
            "probe_requests": node["probe_requests"].int() if node.has("probe_requests")
            else None}


def _read_slo(node):
    """plan.json's `slo` object as plain values (absent in older outputs: None)."""
    if node is None:
        return None
    if not isinstance(node.value, dict):
        node._fail("expected an object")
    slo = {}
    for key, value in node.value.items():
        child = node[key]
        if isinstance(value, dict):
            slo[key] = {q: child[q].num() for q in value}
        elif isinstance(value, bool):
            slo[key] = value
        else:
            slo[key] = child.num()
    return slo


def plan_model_name(scenario):
    """The model of a plan: plan.json's scenario.model, else its model card's file name."""
    if scenario is None:
        return None
    if scenario["model"]:
        return scenario["model"]
    if scenario["model_card"]:
        return os.path.splitext(os.path.basename(scenario["model_card"]))[0]
    return None


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


def candidate_ranker(rec):
    """A sort key (candidate, index in plan.json) for candidates as kvsim ranks them: those that
    meet the SLOs first, cheapest first; at equal cost the recommended one, then the higher max
    QPS per replica, the lower p99 TTFT, the plan's order."""
    chosen = rec["candidate"] if rec is not None else None

    def key(c, i):
        ttft = c["lat"]["ttft_s"]["p99"]
        return (not c["meets_slo"], c["cost_per_hour"], c["candidate"] != chosen,
                -c["max_qps_per_replica"], ttft if is_num(ttft) else math.inf, i)

    return key


def _off_scale_note(cands, names, what):
    if not names:
        return ""
    byname = {c["candidate"]: c for c in cands}
    return (" Off scale (cut at the axis end, so the others stay readable; the value is "
            "written on it): " + "; ".join(f"`{n}` ({what(byname[n])})" for n in names) + ".")


def report_plan(d):
    path = os.path.join(d, "plan.json")
    root = Node(load_json(path), path)
    target = root["target_qps"].nonneg()
    plan_file = root["plan"].str() if root.has("plan") else ""
    scenario = _read_plan_scenario(root.get("scenario"))
    slo = _read_slo(root.get("slo"))
    cands = [_read_candidate(n) for n in root["candidates"].items()]
    if not cands:
        raise InputError(f"{path}: candidates: empty list")
    names = [c["candidate"] for c in cands]
    for p in root["pareto"].items():
        if p.str() not in names:
            p._fail(f"names no candidate: {p.str()!r}")
    savings = []
    for s in root["kv_savings"].items():
        savings.append({"manager": s["manager"].str(), "versus": s["versus"].str(),
                        "cost": s["cost_per_hour"].nonneg(),
                        "versus_cost": s["versus_cost_per_hour"].nonneg(),
                        "saving": s["saving"].num()})
    # Written by newer kvsim versions only: absent, they are left out.
    warnings = [w.str() for w in root["warnings"].items()] if root.has("warnings") else []
    ranking_rule = root["ranking_rule"].str() if root.has("ranking_rule") else ""
    tie = root["tie"].str() if root.has("tie") else ""
    recn = root["recommendation"]
    rec = None
    infeasible_text = None
    if isinstance(recn.value, str):
        infeasible_text = recn.value
    else:
        rec = _read_candidate(recn)
        rec["verified"] = recn["verified"].bool()
        rec["verify_binding_slo"] = recn["verify_binding_slo"].str() \
            if recn.has("verify_binding_slo") else ""
        rec["verify_requests_completed"] = recn["verify_requests_completed"].int() \
            if recn.has("verify_requests_completed") else None
        vl = recn["verify_latencies"]
        rec["verify"] = {k: {q: vl[k][q].num(allow_null=True) for q in ("p50", "p90", "p99")}
                         for k in ("ttft_s", "tbt_s", "e2e_s")}
        if rec["candidate"] not in names:
            recn["candidate"]._fail(f"names no candidate: {rec['candidate']!r}")
    csv_path = os.path.join(d, "plan.csv")
    if os.path.exists(csv_path):
        rows = load_csv(csv_path, PLAN_CSV_COLUMNS, texts=PLAN_CSV_COLUMNS)
        if len(rows["candidate"]) != len(cands):
            raise InputError(f"{csv_path}: {len(rows['candidate'])} candidate rows, plan.json "
                             f"has {len(cands)}")
        if rows["candidate"] != names:
            raise InputError(f"{csv_path}: its candidates are not plan.json's, in its order")
    rank_key = candidate_ranker(rec)
    model = plan_model_name(scenario)
    title = f"kvsim plan: {model + ', ' if model else ''}target {fgen(target)} QPS, " \
            f"{len(cands)} candidates"
    doc = Doc(title)

    def build():
        doc.verdict(verdict_plan(cands, rec, target, slo or {}, infeasible_text))
        doc.p(f"Plan directory `{os.path.basename(os.path.abspath(d))}` written by `kvsim plan`"
              + (f" from `{plan_file}`" if plan_file else "") + ": plan.json and plan.csv.")
        doc.h2(H_SCENARIO)
        sc = scenario or {}
        unrecorded = []

        def fact(key, name, show=str):
            value = sc.get(key)
            if value is None:
                unrecorded.append(name)
                return "not recorded"
            return show(value)

        card = sc.get("model_card")
        if sc.get("model"):
            model_text = sc["model"] + (f" (card {card})" if card else "")
        elif card:
            model_text = f"{model} (the file name of its model card, {card})"
        else:
            unrecorded.append("model")
            model_text = "not recorded"
        uniq = lambda key: ", ".join(dict.fromkeys(str(c[key]) for c in cands))  # noqa: E731
        rows = [["model", model_text],
                ["scenario file", fact("config", "scenario file")],
                ["trace", fact("trace", "trace")],
                ["arrivals", fact("arrival_process", "arrival process",
                                  lambda p: f"{p}, at each probe's rate"
                                  + (" (trace time-scaled)" if p == "trace" else ""))],
                ["seed", fact("seed", "seed")],
                ["requests per probe", fact("probe_requests", "requests per probe", fint)],
                ["GPUs (candidates)", uniq("gpu")],
                ["tensor parallel (candidates)", uniq("tensor_parallel")],
                ["KV managers (candidates)", uniq("kv_label")],
                ["schedulers (candidates)", uniq("scheduler")],
                ["target load", f"{fgen(target)} requests/s"]]
        if slo is None:
            unrecorded.append("SLOs")
            rows.append(["SLOs", "not recorded"])
        else:
            rows.append(["SLOs", "; ".join(slo_rows(slo)) or "none"])
            if slo.get("stability") is True and "stability_slack_s" not in slo:
                unrecorded.append("stability slack")
        doc.table(["", "value"], rows, right=set())
        if unrecorded:
            doc.note(f"plan.json does not record the {_names(unrecorded)}, so "
                     + ("it is" if len(unrecorded) == 1 else "they are")
                     + " shown as not recorded.")
        for w in warnings:
            doc.note(f"Plan warning: {w}")

        doc.h2(H_RECOMMENDATION)
        if rec is None:
            doc.p(f"{infeasible_text}.")
        else:
            sized = next(c for c in cands if c["candidate"] == rec["candidate"])["replicas"]
            added = (f" with {rec['replicas'] - sized} replica(s) added to the {sized} the "
                     "sizing gave" if rec["replicas"] > sized else "")
            verdict = ("verified: the whole fleet, simulated at the target load behind a "
                       f"least-outstanding router, met the SLOs{added}" if rec["verified"] else
                       "NOT verified: the whole-fleet run missed "
                       + (rec["verify_binding_slo"] or "an SLO")
                       + " even with the replicas added")
            doc.p(f"{rec['replicas']} x `{rec['candidate']}` ({_plural(rec['gpus'], 'GPU')}, "
                  f"{fmoney(rec['cost_per_hour'])}/hour, "
                  f"{fmoney(rec['cost_per_million_output_tokens'])} per million output tokens); "
                  f"{verdict}.")
            vrows = []
            for k, name, scale, unit in (("ttft_s", "TTFT", 1, "s"), ("tbt_s", "TBT", 1e3, "ms"),
                                         ("e2e_s", "E2E", 1, "s")):
                for q in ("p50", "p90", "p99"):
                    vrows.append([f"{name} {q} ({unit})",
                                  fnum(rec["lat"][k][q] * scale, 3),
                                  fnum(rec["verify"][k][q] * scale, 3)])
            doc.table(["latency", "one replica at its max QPS",
                       f"whole fleet at {fgen(target)} QPS"], vrows)
            if rec["verify_requests_completed"] is not None:
                doc.note(f"The whole-fleet run completed {rec['verify_requests_completed']:,} "
                         "requests.")
            if tie:
                doc.note(f"Tie: {tie}.")

        doc.h2(H_CANDIDATES)
        order = sorted(range(len(cands)), key=lambda i: rank_key(cands[i], i))
        brief = []
        full = []
        for i in order:
            c = cands[i]
            ok = c["meets_slo"]
            brief.append([c["candidate"], "yes" if ok else "no", fgen(c["max_qps_per_replica"]),
                          c["binding_slo"] or "—",
                          f"{c['replicas']} x {c['tensor_parallel']}" if ok else "—",
                          fmoney(c["cost_per_hour"]) if ok else "—",
                          fnum(c["lat"]["ttft_s"]["p99"], 3), "yes" if c["pareto"] else ""])
            full.append([c["candidate"], c["status"], fgen(c["max_qps_per_replica"]),
                         fgen(c["max_qps_per_gpu"]), c["binding_slo"] or "—",
                         str(c["replicas"]) if ok else "—", str(c["gpus"]) if ok else "—",
                         fmoney(c["cost_per_hour"]) if ok else "—",
                         fnum(c["cost_per_million_output_tokens"], 3) if ok else "—",
                         fnum(c["lat"]["ttft_s"]["p99"], 3),
                         fnum(c["lat"]["tbt_s"]["p99"] * 1e3, 1),
                         fnum(c["lat"]["e2e_s"]["p99"], 2), "yes" if ok else "no",
                         "yes" if c["pareto"] else "", c["note"]])
        doc.table(["candidate", "meets SLOs", "QPS / replica", "binding SLO",
                   "replicas x GPUs", "$/hour", "TTFT p99 (s)", "Pareto"], brief,
                  right={2, 4, 5, 6})
        doc.note("Listed by cost per hour, those that meet the SLOs first"
                 + (f" (kvsim's ranking: {ranking_rule})" if ranking_rule else "")
                 + "; candidates are named GPU/TP/KV manager/scheduler; latencies are those of "
                 "one replica at its highest passing rate. The binding SLO is the one missed at "
                 "the lowest failing rate.")
        with doc.details("Every column of plan.json, per candidate"):
            doc.table(["candidate", "status", "QPS / replica", "QPS / GPU", "binding SLO",
                       "replicas", "GPUs", "$/hour", "$/M output tok", "TTFT p99 (s)",
                       "TBT p99 (ms)", "E2E p99 (s)", "meets SLOs", "Pareto", "note"], full,
                      right={2, 3, 5, 6, 7, 8, 9, 10, 11}, small=True)
        note_caveats(doc, [(c["candidate"], c["timing_caveats"]) for c in cands])
        note_caveats(doc, [(c["candidate"], c["timing_assumptions"]) for c in cands], "Assumed")

        gpus = list(dict.fromkeys(c["gpu"] for c in cands))
        kvs = list(dict.fromkeys(c["kv_label"] for c in cands))
        kv_color = {k: color(i) for i, k in enumerate(kvs)}
        from matplotlib.patches import Patch
        from matplotlib.lines import Line2D

        doc.h2(H_PLAN_QPS)
        n = len(cands)
        fig, ax = plt().subplots(figsize=(10, max(3.2, 0.28 * n + 1.4)))
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
        doc.chart("plan_max_qps.png", fig_to_png(fig), "Max QPS per replica per candidate",
                  "Candidates are named GPU/TP/KV manager/scheduler. Colour: KV manager; "
                  "hatched bars miss the SLOs."
                  + _off_scale_note(cands, info["clipped"],
                                    lambda c: f"{fgen(c['max_qps_per_replica'], 3)} req/s"))

        doc.h2(H_PLAN_COST)
        meet = [cands[i] for i in order if cands[i]["meets_slo"]]  # cheapest first
        if meet:
            fig, ax = plt().subplots(figsize=(10, max(3.2, 0.28 * len(meet) + 1.4)))
            info = plot_plan_cost(ax, meet, rec, kv_color)
            handles = [Patch(facecolor=kv_color[k], edgecolor="#333", label=k) for k in kvs
                       if any(c["kv_label"] == k for c in meet)]
            ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0))
            ax.set_title(f"Fleet cost at {fgen(target)} QPS, candidates that meet the SLOs")
            ax.set_xlabel("cost of the fleet (USD per hour)")
            ax.set_ylabel("candidate")
            ax.grid(axis="y", alpha=0)
            doc.chart("plan_cost.png", fig_to_png(fig), "Cost per hour per candidate",
                      "Cheapest first; bars are labelled replicas x GPUs per replica, as sized "
                      "from one replica's max QPS (before the whole-fleet check)."
                      + _off_scale_note(cands, info["clipped"],
                                        lambda c: f"{fmoney(c['cost_per_hour'])}/hour, "
                                                  f"{_plural(c['gpus'], 'GPU')}"))
        else:
            doc.p("No candidate meets the SLOs, so no fleet is priced.")
        missing = [c["candidate"] for c in cands if not c["meets_slo"]]
        if missing:
            doc.note(f"Not priced (missing the SLOs or infeasible): {', '.join(missing)}.")

        doc.h2(H_PLAN_PARETO)
        pts = [c for c in meet if is_num(c["lat"]["ttft_s"]["p99"])]
        if pts:
            fig, ax = plt().subplots(figsize=(9, 5))
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
            ax.set_title("Fleet cost against p99 TTFT (one replica at its max QPS)")
            ax.set_xlabel("p99 TTFT at the replica's max QPS (s)"
                          + (", log scale" if info["xscale"] == "log" else ""))
            ax.set_ylabel("fleet cost (USD per hour)"
                          + (", log scale" if info["yscale"] == "log" else ""))
            unplotted = [c["candidate"] for c in meet if c not in pts]
            doc.chart("plan_pareto.png", fig_to_png(fig), "Cost against p99 TTFT",
                      "Colour: KV manager; marker: GPU. Circled points are the Pareto frontier "
                      "(no other candidate is both cheaper and lower in p99 TTFT)."
                      + _off_scale_note(cands, info["clipped"],
                                        lambda c: f"{fgen(c['lat']['ttft_s']['p99'], 3)} s, "
                                                  f"{fmoney(c['cost_per_hour'])}/hour")
                      + (f" Not drawn (no p99 TTFT): {', '.join(unplotted)}." if unplotted
                         else ""))
        else:
            doc.p("No candidate meets the SLOs, so there is no cost/latency frontier.")

        doc.h2(H_PLAN_SAVINGS)
        if savings:
            doc.table(["KV manager", "against", "its cheapest fleet", "the other's cheapest",
                       "saving"],
                      [[s["manager"], s["versus"], fmoney(s["cost"]) + "/h",
                        fmoney(s["versus_cost"]) + "/h", f"{100 * s['saving']:.0f}%"]
                       for s in savings])
        else:
            doc.p("No savings: fewer than two KV managers have a fleet that meets the SLOs.")
    return doc, build


# ---------------------------------------------------------------------------
# Calibration directories (kvprobe profile.txt)

PROFILE_TABLES = {
    # name: (required, columns, text columns)
    "vmm": (True, ("call", "handle_bytes", "samples", "p10_us", "p50_us", "p90_us", "p99_us"),
            ("call",)),
    "vmm_under_load": (False, ("metric", "value"), ("metric",)),
    "copy": (True, ("bytes", "time_us", "gbps"), ()),
    "gemm": (True, ("model", "layer", "tensor_parallel", "tokens", "m", "n", "k", "time_us",
                    "tflops"), ("model", "layer")),
    "decode_attention": (True, ("layout", "block_tokens", "batch", "context_tokens", "q_heads",
                                "kv_heads", "head_dim", "time_us", "kv_gbps"), ("layout",)),
    "prefill_attention": (True, ("layout", "block_tokens", "batch", "tokens", "q_heads",
                                 "kv_heads", "head_dim", "time_us", "tflops"), ("layout",)),
    "allreduce": (False, ("gpus", "bytes", "time_us", "algbw_gbps", "busbw_gbps"), ()),
    "vattention": (False, ("overlap", "page_bytes", "batch", "iterations", "mean_iteration_us",
                           "p50_iteration_us", "p99_iteration_us", "mean_exposed_map_us",
                           "max_exposed_map_us", "map_calls"), ()),
    # Whole-model iterations (kvprobe --only step); read for `kvsim validate`, not charted.
    "step": (False, ("model", "tensor_parallel", "layout", "block_tokens", "decode_seqs",
                     "context_tokens", "prefill_tokens", "time_us", "graph"), ("model", "layout")),
}


def load_profile(path):
    text = read_text(path)
    meta = {}
    tables = {}
    section = None
    header = None
    seen = set()
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"\[([a-z_][a-z0-9_]*)\]", line)
        if m:
            section = m.group(1)
            if section != "meta" and section not in PROFILE_TABLES:
                raise InputError(f"{path}:{lineno}: unknown section [{section}]")
            if section in seen:
                raise InputError(f"{path}:{lineno}: duplicate section [{section}]")
            seen.add(section)
            header = None
            if section != "meta":
                tables[section] = []
            continue
        if section is None:
            raise InputError(f"{path}:{lineno}: text before the first [section]")
        if section == "meta":
            if ":" not in line:
                raise InputError(f"{path}:{lineno}: [meta] line is not 'key: value'")
            k, v = line.split(":", 1)
            meta[k.strip()] = v.strip()
            continue
        fields = [f.strip() for f in line.split(",")]
        if header is None:
            header = fields
            need = PROFILE_TABLES[section][1]
            missing = [c for c in need if c not in header]
            if missing:
                raise InputError(f"{path}:{lineno}: [{section}] header lacks column(s) "
                                 f"{', '.join(missing)}")
            continue
        if len(fields) != len(header):
            raise InputError(f"{path}:{lineno}: [{section}] row has {len(fields)} fields, the "
                             f"header {len(header)}")
        _, need, text_cols = PROFILE_TABLES[section]
        row = {}
        for c in need:
            v = fields[header.index(c)]
            if c in text_cols:
                if not v:
                    raise InputError(f"{path}:{lineno}: [{section}] column {c} is empty")
                row[c] = v
            else:
                try:
                    x = float(v)
                    if not math.isfinite(x):
                        raise ValueError
                except ValueError:
                    raise InputError(f"{path}:{lineno}: [{section}] column {c}: {v[:40]!r} is "
                                     "not a number")
                row[c] = x
        row["_line"] = lineno
        tables[section].append(row)
    if "meta" not in seen:
        raise InputError(f"{path}: no [meta] section (is this a kvprobe profile.txt?)")
    for name, (required, _, _) in PROFILE_TABLES.items():
        if required and name not in tables:
            raise InputError(f"{path}: required section [{name}] is missing")
        if required and not tables[name]:
            raise InputError(f"{path}: section [{name}] has no rows")
    if meta.get("format_version", "1") != "1":
        raise InputError(f"{path}: format_version {meta.get('format_version')!r}; this report "
                         "reads version 1")
    return meta, tables


def chart_allreduce(doc, rows, meta):
    """The [allreduce] section: time and bus bandwidth against message size per GPU count."""
    doc.h2(H_ALLREDUCE)
    by_gpus = {}
    for r in rows:
        by_gpus.setdefault(int(r["gpus"]), []).append(r)
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
    doc.chart("allreduce.png", fig_to_png(fig), "NCCL all-reduce",
              "Measured with one process per GPU; each point is the slowest rank's time.")
    table = []
    for n, rr in sorted(by_gpus.items()):
        rr = sorted(rr, key=lambda r: r["bytes"])
        table.append([str(n), fbytes(rr[0]["bytes"]), fgen(rr[0]["time_us"]),
                      fbytes(rr[-1]["bytes"]), fgen(rr[-1]["time_us"]),
                      fgen(rr[-1]["busbw_gbps"])])
    doc.table(["GPUs", "smallest size", "time (µs)", "largest size", "time (µs)",
               "bus bandwidth (GB/s)"], table)
    measured = ", ".join(str(n) for n in sorted(by_gpus))
    doc.note(f"Measured GPU counts: {measured}. At a tensor_parallel the profile did not measure, "
             "kvsim estimates the all-reduce from these counts (time linear in the ring factor "
             "2(n-1)/n at each size; README, Profiled timing) and every run says so in a caveat."
             + (" NVLink multicast was off." if meta.get("nccl_nvls_enable") == "0" else ""))


def report_calibration(d):
    path = os.path.join(d, "profile.txt")
    meta, t = load_profile(path)
    gpu = meta.get("gpu_name", "unknown GPU")
    doc = Doc(f"kvprobe calibration profile: {gpu}")

    def build():
        doc.verdict(verdict_calibration(meta, t))
        doc.p(f"Calibration directory `{os.path.basename(os.path.abspath(d))}`: profile.txt "
              "measured by kvprobe (format: tools/kvprobe/PROFILE_FORMAT.md).")
        doc.h2(H_SCENARIO)
        copy_max = max(r["gbps"] for r in t["copy"])
        rows = [["what", "a GPU profile: it has no model, trace, tensor parallelism, scheduler or "
                 "seed of its own; kvsim uses it with `timing.type: profiled`"]]
        for key, name in (("gpu_name", "GPU"), ("gpu_memory_bytes", "GPU memory"),
                          ("sm_count", "SMs"), ("sm_clock_mhz", "highest SM clock (MHz)"),
                          ("driver_version", "driver"), ("cuda_runtime_version", "CUDA runtime"),
                          ("kvprobe_version", "kvprobe"), ("mode", "mode"),
                          ("date_utc", "measured (UTC)"), ("probe_seconds", "probe time (s)"),
                          ("allocation_granularity_bytes", "VMM allocation granularity"),
                          ("attention_verified_max_relative_error",
                           "attention check, worst relative error")):
            if key in meta:
                v = meta[key]
                if key.endswith("_bytes"):
                    try:
                        v = f"{fbytes(float(v))} ({int(float(v)):,} bytes)"
                    except ValueError:
                        pass
                rows.append([name, v])
        rows.append(["device copy bandwidth (best)", f"{copy_max:,.0f} GB/s (read + write)"])
        doc.table(["", "value"], rows, right=set())

        # VMM latencies
        doc.h2(H_VMM)
        vmm = t["vmm"]
        addr_calls = ("cuMemAddressReserve", "cuMemAddressFree")
        handle_rows = [r for r in vmm if r["call"] not in addr_calls]
        addr_rows = [r for r in vmm if r["call"] in addr_calls]
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
        doc.chart("vmm_latency.png", fig_to_png(fig), "VMM call latencies by handle size",
                  "map_set_access_pooled is cuMemMap + cuMemSetAccess of a handle created once; "
                  "cudaMalloc and cudaFree are shown for comparison.")
        sizes = sorted(set(r["handle_bytes"] for r in handle_rows))
        if sizes:
            s0 = sizes[0]
            doc.table(["call", "p10 (µs)", "p50 (µs)", "p90 (µs)", "p99 (µs)", "samples"],
                      [[r["call"], fgen(r["p10_us"]), fgen(r["p50_us"]), fgen(r["p90_us"]),
                        fgen(r["p99_us"]), fint(r["samples"])]
                       for r in handle_rows if r["handle_bytes"] == s0])
            doc.note(f"The table is for {fbytes(s0)} handles.")
        if "vmm_under_load" in t and t["vmm_under_load"]:
            doc.table(["under load", "value"],
                      [[r["metric"], fgen(r["value"])] for r in t["vmm_under_load"]])

        # GEMM
        doc.h2(H_GEMM)
        gemm = t["gemm"]
        models = list(dict.fromkeys(r["model"] for r in gemm))
        model = "Llama-3-8B" if "Llama-3-8B" in models else models[0]
        tps = sorted(set(r["tensor_parallel"] for r in gemm if r["model"] == model))
        tp = tps[0]
        all_tps = ", ".join(str(int(x)) for x in sorted(set(r["tensor_parallel"] for r in gemm)))
        rows_ = [r for r in gemm if r["model"] == model and r["tensor_parallel"] == tp]
        layers = list(dict.fromkeys(r["layer"] for r in rows_))
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
        doc.chart("gemm_tflops.png", fig_to_png(fig), f"GEMM TFLOP/s against tokens, {model}",
                  f"The profile holds {len(models)} model(s) at TP {all_tps}; {model} at TP "
                  f"{int(tp)} is shown; n and k are the per-rank output and input widths.")

        # Decode attention bandwidth
        doc.h2(H_DECODE)
        dec = t["decode_attention"]
        contiguous = [r for r in dec if r["layout"] == "contiguous"]
        paged_blocks = sorted(set(r["block_tokens"] for r in dec if r["layout"] == "paged"))
        panels = [("contiguous KV", contiguous)]
        if paged_blocks:
            b0 = paged_blocks[0]
            panels.append((f"paged KV, {int(b0)}-token blocks",
                           [r for r in dec if r["layout"] == "paged" and r["block_tokens"] == b0]))
        panels = [p for p in panels if p[1]]
        batches = sorted(set(r["batch"] for r in dec))
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
        doc.chart("decode_attention_gbps.png", fig_to_png(fig),
                  "Decode attention GB/s against batch x context",
                  "kv_gbps = K and V bytes read / kernel time.")

        # Paged vs contiguous
        doc.h2(H_PAGED)
        pre = t["prefill_attention"]

        def ratios(rows_, keys):
            base = {tuple(r[k] for k in keys): r["time_us"] for r in rows_
                    if r["layout"] == "contiguous"}
            out = {}
            for r in rows_:
                if r["layout"] != "paged":
                    continue
                key = tuple(r[k] for k in keys)
                if key in base and base[key] > 0:
                    out.setdefault(r["block_tokens"], []).append((key, r["time_us"] / base[key]))
            return out

        dec_keys = ("batch", "context_tokens", "q_heads", "kv_heads", "head_dim")
        pre_keys = ("batch", "tokens", "q_heads", "kv_heads", "head_dim")
        dr = ratios(dec, dec_keys)
        pr = ratios(pre, pre_keys)
        if dr or pr:
            panels = [(n, r) for n, r in (("decode", dr), ("prefill", pr)) if r]
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
            doc.chart("paged_vs_contiguous.png", fig_to_png(fig),
                      "Paged against contiguous attention",
                      "Above 1: the paged kernel is slower. Decode points with the same "
                      "batch x context product come from different batch/context splits.")
            rows_ = []
            for name, rr in (("decode", dr), ("prefill", pr)):
                for bt in sorted(rr):
                    vals = [p[1] for p in rr[bt]]
                    rows_.append([name, str(int(bt)), fnum(min(vals), 3),
                                  fnum(sum(vals) / len(vals), 3), fnum(max(vals), 3),
                                  str(len(vals))])
            doc.table(["attention", "block tokens", "min ratio", "mean ratio", "max ratio",
                       "shapes"], rows_)
        else:
            doc.p("The profile has no paged and contiguous rows of the same shape to compare.")

        if t.get("allreduce"):
            chart_allreduce(doc, t["allreduce"], meta)

        if t.get("vattention"):
            doc.h2(H_VATTENTION)
            doc.table(["overlap", "page size", "batch", "iterations", "mean iteration (µs)",
                       "p99 iteration (µs)", "mean exposed map (µs)", "max exposed map (µs)",
                       "map calls"],
                      [["on" if r["overlap"] else "off", fbytes(r["page_bytes"]),
                        fint(r["batch"]), fint(r["iterations"]), fgen(r["mean_iteration_us"]),
                        fgen(r["p99_iteration_us"]), fgen(r["mean_exposed_map_us"]),
                        fgen(r["max_exposed_map_us"]), fint(r["map_calls"])]
                       for r in t["vattention"]])
            doc.note("The vAttention mechanism run for real on a fixed decode schedule: pages "
                     "mapped on demand one iteration ahead (overlap on) or synchronously.")
    return doc, build


# ---------------------------------------------------------------------------
# Main


def detect(d):
    def has(name):
        return os.path.lexists(os.path.join(d, name))
    if has("plan.json"):
        return report_plan
    if has("sweep.json"):
        return report_sweep
    if has("compare.json"):
        return report_compare
    if has("summary.json") or has("requests.csv") or has("timeseries.csv"):
        return report_run
    if has("profile.txt"):
        return report_calibration
    raise InputError(f"{d}: holds none of plan.json, sweep.json, compare.json, summary.json "
                     "(with requests.csv and timeseries.csv) or profile.txt")


def write_outputs(d, doc):
    files_dir = os.path.join(d, "report_files")
    try:
        os.makedirs(files_dir, exist_ok=True)
        for name in sorted(os.listdir(files_dir)):  # charts of an earlier report
            if name.endswith(".png"):
                os.remove(os.path.join(files_dir, name))
        for name, png in doc.charts:
            with open(os.path.join(files_dir, name), "wb") as f:
                f.write(png)
        for name, text in (("report.md", render_markdown(doc)),
                           ("report.html", render_html(doc))):
            tmp = os.path.join(d, name + ".tmp")
            with open(tmp, "w", encoding="utf-8", newline="\n") as f:
                f.write(text)
            os.replace(tmp, os.path.join(d, name))
    except OSError as e:
        raise OutputError(f"{e.filename or d}: cannot write: {e.strerror or e}")


def verify_manifests(root):
    """Checks every manifest.json under `root` (kvsim writes one last in each output
    directory): each file it lists must exist with the listed size and CRC-32. A
    directory without one is taken as it is (outputs of an older kvsim)."""
    import zlib
    for d, _, files in os.walk(root):
        if "manifest.json" not in files or os.path.basename(d) == "report_files":
            continue
        path = os.path.join(d, "manifest.json")
        manifest = Node(load_json(path), path)
        for entry in manifest["files"].items():
            name = entry["name"].str()
            if not name or "/" in name or name in (".", ".."):
                entry["name"]._fail(f"not a file name: {name!r}")
            target = os.path.join(d, name)
            want_bytes = entry["bytes"].nonneg()
            want_crc = entry["crc32"].str()
            if not os.path.isfile(target):
                raise InputError(f"{target}: missing, though {path} lists it")
            crc = 0
            size = 0
            with open(target, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    crc = zlib.crc32(chunk, crc)
                    size += len(chunk)
            if size != want_bytes or f"{crc:08x}" != want_crc:
                raise InputError(
                    f"{target}: {size} bytes, CRC-32 {crc:08x}, but {path} lists {want_bytes:g} "
                    f"bytes, {want_crc}: changed or cut short after kvsim wrote it")


def main(argv):
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(f"usage: {os.path.basename(argv[0])} DIR\n"
                         "  writes DIR/report.html, DIR/report.md and DIR/report_files/*.png from "
                         "the kvsim run, compare, sweep, plan or kvprobe calibration outputs in "
                         "DIR\n")
        return 0 if len(argv) == 2 else 2
    d = argv[1]
    try:
        if not os.path.isdir(d):
            raise InputError(f"{d}: no such directory")
        make = detect(d)
        verify_manifests(d)
        try:
            doc, build = make(d)  # reads and checks every input
            build()  # draws
        except (KeyError, TypeError, ValueError, IndexError, ZeroDivisionError,
                OverflowError, AttributeError, RecursionError) as e:
            raise InputError(f"{d}: unexpected content in the inputs ({type(e).__name__}: {e})")
        write_outputs(d, doc)
    except InputError as e:
        sys.stderr.write(f"{PROG}: error: {_one_line(str(e))}\n")
        return 2
    except OutputError as e:
        sys.stderr.write(f"{PROG}: error: {_one_line(str(e))}\n")
        return 1
    except MemoryError:
        sys.stderr.write(f"{PROG}: error: {d}: out of memory reading the inputs\n")
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - one line, never a traceback
        sys.stderr.write(f"{PROG}: error: {d}: {type(e).__name__}: {_one_line(str(e))}\n")
        return 1
    print(f"wrote {os.path.join(d, 'report.html')}, {os.path.join(d, 'report.md')} and "
          f"{len(doc.charts)} chart(s) in {os.path.join(d, 'report_files')}/")
    return 0


def _one_line(text):
    return " ".join(str(text).split())


if __name__ == "__main__":
    sys.exit(main(sys.argv))
